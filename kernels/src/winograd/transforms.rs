//! The Winograd input and output transforms, written once over 16-lane blocks and
//! compiled per tier (see [`crate::ops`]), and the scratch layout they share with
//! the driver.

// The transforms index 4x4 patches by (row, column) in lockstep.
#![allow(clippy::needless_range_loop)]

use super::scheme::Scheme;
use crate::bands::Bands;
use crate::layout::{BLOCK, Layout};
use crate::microkernel::prefetch;

type Lanes = [f32; BLOCK];

/// Most output blocks one microkernel tile covers on any tier (the GEMM scratch is
/// sized for that many).
pub(crate) const MAX_OB: usize = 4;

/// Where position `p`'s transformed input image starts, for `ci_blocks` input
/// blocks: each image is one block longer than it needs, so that the images'
/// pixels do not all fall in the same L1 sets (a power-of-two stride would make
/// the transform's streams conflict).
pub(crate) const fn v_offset(scheme: Scheme, ci_blocks: usize, per_chunk: usize, p: usize) -> usize {
    let mut at = 0;
    let mut q = 0;
    while q < p {
        at += scheme.depth(q) * ci_blocks * per_chunk * BLOCK + BLOCK;
        q += 1;
    }
    at
}

/// Distance between the GEMM outputs of two positions (padded likewise).
pub(crate) const fn m_pos_stride(per_chunk: usize) -> usize {
    MAX_OB * per_chunk * BLOCK + BLOCK
}

/// What the input transform of one chunk reads and writes.
pub(crate) struct InputJob<'a> {
    pub scheme: Scheme,
    /// The unpadded input image, in bands.
    pub input: Bands<'a>,
    /// Padding rows above, columns left.
    pub pad_top: usize,
    pub pad_left: usize,
    /// Tiles per output row.
    pub tiles_w: usize,
    /// First tile (row-major over the output's tiles) and number of tiles.
    pub t0: usize,
    pub n: usize,
    /// Tiles per chunk: the pixel count of each transformed image.
    pub per_chunk: usize,
    /// Per position `p` (from [`v_offset`]): `[depth(p) * ci blocks][per_chunk][16]`.
    pub v: &'a mut [f32],
    /// Prefetch, block by block, the pixels the next tile along the row adds: set
    /// when the threads share the input (another core wrote half of it), whose
    /// lines then take a few hundred nanoseconds to arrive.
    pub prefetch_next: bool,
}

/// What the output transform of one chunk and group of output blocks reads and writes.
pub(crate) struct OutputJob<'a> {
    pub scheme: Scheme,
    /// `[positions][MAX_OB blocks][per_chunk][16]`, blocks `0..ob` filled.
    pub m: &'a [f32],
    pub per_chunk: usize,
    /// First output block and number of blocks.
    pub ob0: usize,
    pub ob: usize,
    /// The whole padded bias.
    pub bias: &'a [f32],
    /// The shortcut, same shape as the output.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
    /// The output rows `row0..row0 + rows` (a band of them, or all; shared by the
    /// threads, which write disjoint pixels), their length and width. Pixels of the
    /// tiles outside these rows are not stored.
    pub out: *mut f32,
    pub out_len: usize,
    pub row0: usize,
    pub rows: usize,
    pub ow: usize,
    pub tiles_w: usize,
    pub t0: usize,
    pub n: usize,
}

#[inline(always)]
fn add(a: &Lanes, b: &Lanes) -> Lanes {
    let mut r = *a;
    r.iter_mut().zip(b).for_each(|(r, b)| *r += b);
    r
}

#[inline(always)]
fn sub(a: &Lanes, b: &Lanes) -> Lanes {
    let mut r = *a;
    r.iter_mut().zip(b).for_each(|(r, b)| *r -= b);
    r
}

/// F(2x2, 3x3)'s `B^T` applied to four blocks: `(d0 - d2, d1 + d2, d2 - d1, d1 - d3)`.
#[inline(always)]
fn bt(d: &[Lanes; 4]) -> [Lanes; 4] {
    [sub(&d[0], &d[2]), add(&d[1], &d[2]), sub(&d[2], &d[1]), sub(&d[1], &d[3])]
}

/// F(4x4, 3x3)'s `B^T` applied to six blocks. Interpolation points 0, 1, -1, 1/2,
/// -2 and ∞ (rows scaled to integers):
///
/// ```text
///  | 2 -3 -4  3  2  0 |
///  | 0 -2  1  5  2  0 |
///  | 0  2 -5  1  2  0 |
///  | 0 -2 -1  2  1  0 |
///  | 0  1 -2 -1  2  0 |
///  | 0  2 -3 -4  3  2 |
/// ```
///
/// Why these points: the transformed terms grow much larger than the outputs they
/// sum to, and the rounding error with them; with 1/2 and -2 in place of the usual
/// ±2 they grow less (Σ|A^T||G||B^T| per output 64 against 77), and so does the
/// error. It stays larger than F(2x2, 3x3)'s: `docs/winograd.md`.
#[inline(always)]
fn bt6(d: &[Lanes; 6]) -> [Lanes; 6] {
    let mut r = [[0.0; BLOCK]; 6];
    for l in 0..BLOCK {
        let (d0, d1, d2, d3, d4, d5) = (d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]);
        // Each row is 2 (...) + 3 (...) or a sum of p and q, shared by the rows.
        let (p, q) = (d4 - d2, d3 - d1);
        r[0][l] = 2.0 * (d0 - d2 + p) + 3.0 * q;
        r[1][l] = 2.0 * (p + q) + 3.0 * (d2 + d3);
        r[2][l] = 2.0 * (p - q) + 3.0 * (d3 - d2);
        r[3][l] = p + 2.0 * q;
        r[4][l] = 2.0 * p - q;
        r[5][l] = 2.0 * (d5 - d3 - q) + 3.0 * p;
    }
    r
}

/// F(2x2, 3x3)'s `A^T` applied to four blocks: `(m0 + m1 + m2, m1 - m2 - m3)`.
#[inline(always)]
fn at4(m: &[Lanes; 4]) -> [Lanes; 2] {
    [add(&add(&m[0], &m[1]), &m[2]), sub(&sub(&m[1], &m[2]), &m[3])]
}

/// F(4x4, 3x3)'s `A^T` applied to six blocks (the column of point 1/2 scaled by 8,
/// so that every multiply is by a power of two, exact):
///
/// ```text
///  | 1  1  1  8  1  0 |
///  | 0  1 -1  4 -2  0 |
///  | 0  1  1  2  4  0 |
///  | 0  1 -1  1 -8  1 |
/// ```
#[inline(always)]
fn at6(m: &[Lanes; 6]) -> [Lanes; 4] {
    let mut r = [[0.0; BLOCK]; 4];
    for l in 0..BLOCK {
        let (m0, m1, m2, m3, m4, m5) = (m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]);
        let (a, b) = (m1 + m2, m1 - m2);
        r[0][l] = (m0 + m4) + (a + 8.0 * m3);
        r[1][l] = b + (4.0 * m3 - 2.0 * m4);
        r[2][l] = a + (2.0 * m3 + 4.0 * m4);
        r[3][l] = (b + m5) + (m3 - 8.0 * m4);
    }
    r
}

/// F(3, 4)'s `A^T` in F(4x4, 3x3)'s points (the column of point 1/2 scaled by 4):
///
/// ```text
///  | 1  1  1  4  1  0 |
///  | 0  1 -1  2 -2  0 |
///  | 0  1  1  1  4  1 |
/// ```
#[inline(always)]
fn at3(m: &[Lanes; 6]) -> [Lanes; 3] {
    let mut r = [[0.0; BLOCK]; 3];
    for l in 0..BLOCK {
        let (m0, m1, m2, m3, m4, m5) = (m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]);
        let (a, b) = (m1 + m2, m1 - m2);
        r[0][l] = (m0 + m4) + (a + 4.0 * m3);
        r[1][l] = b + 2.0 * (m3 - m4);
        r[2][l] = (a + m5) + (m3 + 4.0 * m4);
    }
    r
}

/// `B^T d B` of the `N x N` patch `d(row, column)` (`bt` applies `B^T` to `N`
/// blocks), handing position `(ξ, ν)` to `store(N ξ + ν, value)`.
#[inline(always)]
fn patch_transform<const N: usize>(
    bt: impl Fn(&[Lanes; N]) -> [Lanes; N],
    d: impl Fn(usize, usize) -> Lanes,
    mut store: impl FnMut(usize, &Lanes),
) {
    // Plain loops and arrays, no closures handed to `std` (`array::from_fn`):
    // everything must inline into the tier's `#[target_feature]` function.
    let mut line = [[0.0; BLOCK]; N];
    // Row transform of each patch row: w[r] = (row r) B.
    let mut w = [[[0.0; BLOCK]; N]; N];
    for (r, wr) in w.iter_mut().enumerate() {
        for (c, px) in line.iter_mut().enumerate() {
            *px = d(r, c);
        }
        *wr = bt(&line);
    }
    // Column transform: v[.][c] = B^T w[.][c].
    for c in 0..N {
        for (r, px) in line.iter_mut().enumerate() {
            *px = w[r][c];
        }
        for (r, v) in bt(&line).iter().enumerate() {
            store(r * N + c, v);
        }
    }
}

/// Reads 16 lanes at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline(always)]
unsafe fn load(p: *const f32) -> Lanes {
    // SAFETY: forwarded; `[f32; 16]` has the alignment of `f32`.
    unsafe { p.cast::<Lanes>().read() }
}

/// `B^T` of a 1-D scheme applied to the inputs `d(0..span)` of a tile, handing
/// position `p`'s value for part `k` to `store(p, k, value)`: for F(2, 3) the
/// `k`-th F(2, 3), or the last tap's input (see [`f2_line_transform`]); for the
/// 6-point schemes the F(4, 3) or F(3, 4), and a 1x7's F(3, 3).
#[inline(always)]
fn line_transform(scheme: Scheme, d: impl Fn(usize) -> Lanes, mut store: impl FnMut(usize, usize, &Lanes)) {
    match scheme {
        Scheme::Line6 { taps, .. } => {
            for (p, v) in bt6(&[d(0), d(1), d(2), d(3), d(4), d(5)]).iter().enumerate() {
                store(p, 0, v);
            }
            if taps == 7 {
                // The F(3, 3) on taps 4-6 (a zero fourth tap) reads inputs 4-8: its
                // ∞ position, the only one of input 9, is multiplied by that zero.
                let second = bt6(&[d(4), d(5), d(6), d(7), d(8), [0.0; BLOCK]]);
                for (p, v) in second.iter().enumerate().take(5) {
                    store(p, 1, v);
                }
            }
        }
        Scheme::F2 { taps, .. } => f2_line_transform(taps, d, store),
        Scheme::F2x2 | Scheme::F4x4 => unreachable!("line_transform: a 3x3 scheme"),
    }
}

/// `B^T` of F(2, 3) applied to the inputs `d(0..taps + 1)` of a pair of outputs,
/// handing position `p`'s value for part `k` (the `k`-th F(2, 3), or the last
/// tap's input) to `store(p, k, value)`.
#[inline(always)]
fn f2_line_transform(taps: usize, d: impl Fn(usize) -> Lanes, mut store: impl FnMut(usize, usize, &Lanes)) {
    for k in 0..taps / 3 {
        let (a, b, c, e) = (d(3 * k), d(3 * k + 1), d(3 * k + 2), d(3 * k + 3));
        for (p, v) in bt(&[a, b, c, e]).iter().enumerate() {
            store(p, k, v);
        }
    }
    if taps % 3 == 1 {
        let k = taps / 3;
        store(0, k, &d(3 * k));
        store(3, k, &d(3 * k + 1));
    }
}

/// Transforms tiles `t0..t0 + n` of the input into `v`, per 16-channel block:
/// `B^T d B` of each square patch (F(2x2, 3x3), F(4x4, 3x3)) or `B^T d` of each
/// line of inputs under a tile of a 1-D scheme, reading zeros outside the image.
#[inline(always)]
pub(crate) fn input_transform(job: &mut InputJob) {
    match job.scheme {
        Scheme::F2x2 => patches_transform::<4>(job, bt),
        Scheme::F4x4 => patches_transform::<6>(job, bt6),
        Scheme::F2 { vertical, .. } | Scheme::Line6 { vertical, .. } => lines_transform(job, vertical),
    }
}

/// [`input_transform`] of F(2x2, 3x3) (`N` = 4) and F(4x4, 3x3) (`N` = 6): `B^T d B`
/// of each `N x N` patch under an `N - 2` square tile.
#[inline(always)]
fn patches_transform<const N: usize>(job: &mut InputJob, bt: impl Fn(&[Lanes; N]) -> [Lanes; N] + Copy) {
    let InputJob { scheme, input, pad_top, pad_left, tiles_w, t0, n, per_chunk, ref mut v, prefetch_next } = *job;
    let d = input.dims;
    let cb_count = d.c.div_ceil(BLOCK);
    let pos_stride = v_offset(scheme, cb_count, per_chunk, 1);
    assert!(n <= per_chunk && v.len() >= N * N * pos_stride, "winograd input transform: scratch");
    assert!(input.layout == Layout::Nchw16c, "winograd input transform: input layout");
    let dst = v.as_mut_ptr();
    const ZERO: Lanes = [0.0; BLOCK];
    let step = N - 2;
    // An image in one band needs no lookups.
    let whole = (input.split.bands() == 1).then(|| input.band(0));
    // Block by block, tile by tile: each position's stores then run along its
    // image, one stream per position, rather than jumping between the blocks'
    // images at every store (figures: `docs/winograd.md`).
    for cb in 0..cb_count {
        for t in 0..n {
            let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
            // The patch's first input row and column (negative in the padding).
            let y0 = (step * ty) as isize - pad_top as isize;
            let x0 = (step * tx) as isize - pad_left as isize;
            // A patch inside the image and inside one band reads that band in place.
            let inside = y0 >= 0 && x0 >= 0 && y0 as usize + N <= d.h && x0 as usize + N <= d.w;
            let band = inside.then(|| whole.map_or_else(|| input.row(y0 as usize), |b| (b, y0 as usize)));
            let band = band.filter(|(b, r)| r + N <= b.dims.h);
            // SAFETY: writes go to position p < N * N, block cb < cb_count, tile t <
            // per_chunk: below N * N * pos_stride <= v.len().
            let store = |p: usize, val: &Lanes| unsafe {
                dst.add(p * pos_stride + (cb * per_chunk + t) * BLOCK).cast::<Lanes>().write(*val)
            };
            if let Some((b, r)) = band {
                let base = ((cb * b.dims.h + r) * d.w + x0 as usize) * BLOCK;
                // SAFETY: rows r..r+N <= the band's rows and columns x0..x0+N <= w of
                // block cb < cb_count lie inside the band, whose length `Bands::new`
                // checked.
                let src = unsafe { b.data.as_ptr().add(base) };
                if prefetch_next {
                    // The next tile's patch starts `step` pixels on: its last `step` columns are new.
                    for r in 0..N {
                        for c in N..N + step {
                            prefetch(src.wrapping_add((r * d.w + c) * BLOCK));
                        }
                    }
                }
                // SAFETY: as just above.
                patch_transform(bt, |r, c| unsafe { load(src.add((r * d.w + c) * BLOCK)) }, store);
            } else {
                let mut patch = [[ZERO; N]; N];
                for (r, row) in patch.iter_mut().enumerate() {
                    let y = y0 + r as isize;
                    if y < 0 || y as usize >= d.h {
                        continue;
                    }
                    let (b, by) = input.row(y as usize);
                    for (c, px) in row.iter_mut().enumerate() {
                        let x = x0 + c as isize;
                        if x >= 0 && (x as usize) < d.w {
                            let at = ((cb * b.dims.h + by) * d.w + x as usize) * BLOCK;
                            *px = b.data[at..at + BLOCK].try_into().expect("a whole block");
                        }
                    }
                }
                patch_transform(bt, |r, c| patch[r][c], store);
            }
        }
    }
}

/// Most input pixels a tile of a 1-D scheme reads ([`Scheme::span`]).
const MAX_SPAN: usize = 9;

/// [`input_transform`] of the 1-D schemes: `B^T d` of each line under a tile.
#[inline(always)]
fn lines_transform(job: &mut InputJob, vertical: bool) {
    let InputJob { scheme, input, pad_top, pad_left, tiles_w, t0, n, per_chunk, ref mut v, prefetch_next } = *job;
    let d = input.dims;
    let cb_count = d.c.div_ceil(BLOCK);
    let positions = scheme.positions();
    let offsets: [usize; 6] = std::array::from_fn(|p| v_offset(scheme, cb_count, per_chunk, p));
    let v_len = v_offset(scheme, cb_count, per_chunk, positions);
    // Tile length and input pixels per tile, along the line.
    let (m, span) = (scheme.tile().0 * scheme.tile().1, scheme.span());
    assert!(positions <= 6 && span <= MAX_SPAN, "winograd input transform: a 1-D scheme");
    assert!(n <= per_chunk && v.len() >= v_len, "winograd input transform: scratch");
    assert!(input.layout == Layout::Nchw16c, "winograd input transform: input layout");
    let dst = v.as_mut_ptr();
    // An image in one band needs no lookups.
    let whole = (input.split.bands() == 1).then(|| input.band(0));
    // Block by block, tile by tile, as `patches_transform`.
    for cb in 0..cb_count {
        for t in 0..n {
            let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
            // The line's first input pixel (negative along it in the padding) and its
            // length; across the line there is no padding, so output row ty (column
            // tx) reads input row ty (column tx).
            let (y0, x0, len) = if vertical {
                ((m * ty) as isize - pad_top as isize, tx as isize, d.h)
            } else {
                (ty as isize, (m * tx) as isize - pad_left as isize, d.w)
            };
            let s = if vertical { y0 } else { x0 };
            // The band a line inside the image lies in (all of it, for a vertical one).
            let inside = s >= 0 && s as usize + span <= len;
            let band = inside.then(|| whole.map_or_else(|| input.row(y0 as usize), |b| (b, y0 as usize)));
            let band = band.filter(|(b, r)| !vertical || r + span <= b.dims.h);
            // SAFETY: writes go to position p < positions, part k < depth(p), block
            // cb < cb_count, tile t < per_chunk: below v_offset(positions) <= v.len().
            let store = |p: usize, k: usize, val: &Lanes| unsafe {
                dst.add(offsets[p] + ((k * cb_count + cb) * per_chunk + t) * BLOCK).cast::<Lanes>().write(*val)
            };
            if let Some((b, r)) = band {
                let (base, step) = ((cb * b.dims.h + r) * d.w + x0 as usize, if vertical { d.w } else { 1 });
                // SAFETY: the line's `span` pixels from (r, x0) of block cb <
                // cb_count, `step` pixels apart, lie inside the band (and the image),
                // whose length `Bands::new` checked.
                let src = unsafe { b.data.as_ptr().add(base * BLOCK) };
                if prefetch_next {
                    // The next tile along the row: a horizontal line m pixels on (its
                    // last m are new), a vertical one in the next column (all new).
                    let (next, news) = if vertical { (1, 0..span) } else { (m, span - m..span) };
                    for k in news {
                        prefetch(src.wrapping_add((next + k * step) * BLOCK));
                    }
                }
                // SAFETY: as just above (the transforms read d(0..span)).
                line_transform(scheme, |k| unsafe { load(src.add(k * step * BLOCK)) }, store);
            } else {
                let mut line = [[0.0; BLOCK]; MAX_SPAN];
                for (k, px) in line.iter_mut().enumerate().take(span) {
                    let at = s + k as isize;
                    if at < 0 || at as usize >= len {
                        continue;
                    }
                    let (y, x) = if vertical { (at as usize, x0 as usize) } else { (y0 as usize, at as usize) };
                    let (b, by) = input.row(y);
                    let i = ((cb * b.dims.h + by) * d.w + x) * BLOCK;
                    *px = b.data[i..i + BLOCK].try_into().expect("a whole block");
                }
                line_transform(scheme, |k| line[k], store);
            }
        }
    }
}

/// Transforms the GEMM output of tiles `t0..t0 + n` back (`A^T m A`, or `A^T m`
/// for the 1-D schemes), adds bias and residual, applies ReLU and stores the pixels inside
/// the output.
///
/// # Safety
/// `job.out` must be valid for writes of `job.out_len` floats, and no other thread
/// may access the pixels of these tiles in output blocks `ob0..ob0 + ob` meanwhile.
#[inline(always)]
pub(crate) unsafe fn output_transform(job: &OutputJob) {
    // SAFETY: forwarded.
    unsafe {
        match job.scheme {
            Scheme::F2x2 => tiles_output::<4, 2>(job, at4),
            Scheme::F4x4 => tiles_output::<6, 4>(job, at6),
            Scheme::F2 { vertical, .. } => line_output::<4, 2>(job, vertical, at4),
            Scheme::Line6 { vertical, taps: 3 } => line_output::<6, 4>(job, vertical, at6),
            Scheme::Line6 { vertical, .. } => line_output::<6, 3>(job, vertical, at3),
        }
    }
}

/// Checks an output job's scratch (`positions` GEMM outputs) and output bounds.
#[inline(always)]
fn check_output_job(job: &OutputJob, positions: usize) {
    let &OutputJob { m, per_chunk, ob0, ob, bias, residual, out_len, rows, ow, n, .. } = job;
    let end = (ob0 + ob) * rows * ow * BLOCK;
    let scratch_ok = n <= per_chunk && ob <= MAX_OB && m.len() >= positions * m_pos_stride(per_chunk);
    assert!(scratch_ok, "winograd output transform: scratch");
    assert!(end <= out_len && bias.len() >= (ob0 + ob) * BLOCK, "winograd output transform: blocks");
    if let Some(r) = residual {
        assert_eq!(r.len(), out_len, "winograd output transform: residual");
    }
}

/// Stores one output pixel's lanes `px` at `off`: adds `bias` and the
/// residual, applies ReLU.
///
/// # Safety
/// `off + 16` must not pass the output blocks [`check_output_job`] checked (nor, so,
/// the residual), and no other thread may access this pixel meanwhile.
#[inline(always)]
unsafe fn store_pixel(job: &OutputJob, px: &Lanes, bias: &Lanes, off: usize) {
    let mut v = add(px, bias);
    if let Some(r) = job.residual {
        // SAFETY: off + 16 <= out_len == r.len() (forwarded).
        v = add(&v, &unsafe { load(r.as_ptr().add(off)) });
    }
    if job.relu {
        v.iter_mut().for_each(|e| *e = e.max(0.0));
    }
    // SAFETY: forwarded.
    unsafe { job.out.add(off).cast::<Lanes>().write(v) };
}

/// [`output_transform`] of F(2x2, 3x3) (`N` = 4, `T` = 2) and F(4x4, 3x3) (`N` = 6,
/// `T` = 4): `A^T m A` (`at` applies `A^T` to `N` blocks).
///
/// # Safety
/// As [`output_transform`].
#[inline(always)]
unsafe fn tiles_output<const N: usize, const T: usize>(job: &OutputJob, at: impl Fn(&[Lanes; N]) -> [Lanes; T]) {
    let &OutputJob { m, per_chunk, ob0, ob, bias, row0, rows, ow, tiles_w, t0, n, .. } = job;
    let (plane, end) = (rows * ow * BLOCK, row0 + rows);
    let pos_stride = m_pos_stride(per_chunk);
    check_output_job(job, N * N);
    let mp = m.as_ptr();
    for b in 0..ob {
        let bias: Lanes = bias[(ob0 + b) * BLOCK..][..BLOCK].try_into().expect("a whole block");
        for t in 0..n {
            let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
            // SAFETY: position p < N * N, block b < ob <= MAX_OB, tile t < per_chunk:
            // below N * N * pos_stride <= m.len().
            let load_m = |p: usize| unsafe { load(mp.add(p * pos_stride + (b * per_chunk + t) * BLOCK)) };
            // s[.][c] = A^T m[.][c], column by column.
            let (mut s, mut col) = ([[[0.0; BLOCK]; N]; T], [[0.0; BLOCK]; N]);
            for c in 0..N {
                for (r, m) in col.iter_mut().enumerate() {
                    *m = load_m(r * N + c);
                }
                for (si, v) in s.iter_mut().zip(at(&col)) {
                    si[c] = v;
                }
            }
            let full = T * ty >= row0 && T * ty + T <= end && T * tx + T <= ow;
            for (i, si) in s.iter().enumerate() {
                let y = T * ty + i;
                if !full && (y < row0 || y >= end) {
                    continue;
                }
                let row = at(si);
                for (j, px) in row.iter().enumerate() {
                    let x = T * tx + j;
                    if !full && x >= ow {
                        break;
                    }
                    // SAFETY: row0 <= y < row0 + rows, x < ow and block ob0 + b < ob0 +
                    // ob, so the pixel ends within (ob0 + ob) * plane <= out_len
                    // (checked); the caller owns these tiles' pixels.
                    unsafe { store_pixel(job, px, &bias, (ob0 + b) * plane + ((y - row0) * ow + x) * BLOCK) };
                }
            }
        }
    }
}

/// [`output_transform`] of the 1-D schemes: `A^T m` (`at` applies `A^T` to `N`
/// positions, giving a tile of `T` pixels).
///
/// # Safety
/// As [`output_transform`].
#[inline(always)]
unsafe fn line_output<const N: usize, const T: usize>(
    job: &OutputJob,
    vertical: bool,
    at: impl Fn(&[Lanes; N]) -> [Lanes; T],
) {
    let &OutputJob { m, per_chunk, ob0, ob, bias, row0, rows, ow, tiles_w, t0, n, .. } = job;
    let (plane, end) = (rows * ow * BLOCK, row0 + rows);
    let pos_stride = m_pos_stride(per_chunk);
    check_output_job(job, N);
    let mp = m.as_ptr();
    for b in 0..ob {
        let bias: Lanes = bias[(ob0 + b) * BLOCK..][..BLOCK].try_into().expect("a whole block");
        for t in 0..n {
            let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
            let mut ms = [[0.0; BLOCK]; N];
            for (p, mv) in ms.iter_mut().enumerate() {
                // SAFETY: position p < N, block b < ob <= MAX_OB, tile t < per_chunk:
                // below N * pos_stride <= m.len().
                *mv = unsafe { load(mp.add(p * pos_stride + (b * per_chunk + t) * BLOCK)) };
            }
            for (i, px) in at(&ms).iter().enumerate() {
                let (y, x) = if vertical { (T * ty + i, tx) } else { (ty, T * tx + i) };
                if y < row0 || y >= end || x >= ow {
                    continue;
                }
                // SAFETY: row0 <= y < row0 + rows, x < ow and block ob0 + b < ob0 +
                // ob, so the pixel ends within (ob0 + ob) * plane <= out_len
                // (checked); the caller owns these tiles' pixels.
                unsafe { store_pixel(job, px, &bias, (ob0 + b) * plane + ((y - row0) * ow + x) * BLOCK) };
            }
        }
    }
}
