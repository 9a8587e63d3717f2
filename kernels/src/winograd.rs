//! Winograd convolution on NCHW16c images: the ISA-neutral driver, for 3x3 windows
//! (F(2x2, 3x3) and F(4x4, 3x3)) and for the factorized 1xn / nx1 windows with
//! n = 3 or 7 (F(2, 3)).
//!
//! # F(2x2, 3x3)
//!
//! A 3x3 stride-1 convolution computes each 2x2 block of output pixels (a *tile*)
//! from the 4x4 input patch under it. With `d` that patch, `g` one 3x3 filter and
//!
//! ```text
//!        | 1  0 -1  0 |        |  1    0    0  |        | 1  1  1  0 |
//!  B^T = | 0  1  1  0 |    G = | 1/2  1/2  1/2 |  A^T = | 0  1 -1 -1 |
//!        | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
//!        | 0  1  0 -1 |        |  0    0    1  |
//! ```
//!
//! the tile is `A^T [(G g G^T) ⊙ (B^T d B)] A`: 16 multiplies per input channel
//! instead of 36. Summed over input channels, the elementwise product becomes, for
//! each of the 16 transform positions `(ξ, ν)`, a matrix product `U[ξν] (co x ci)`
//! times `V[ξν] (ci x tiles)`: exactly a 1x1 convolution of a `ci x 1 x tiles`
//! NCHW16c image, which the tier's own direct-convolution microkernel computes.
//!
//! # F(4x4, 3x3)
//!
//! The same with 4x4 tiles from 6x6 patches: 36 multiplies per input channel
//! instead of 144, 36 positions. Its matrices (`bt6`, `at6` and the packing's
//! `G`) interpolate at 0, 1, -1, 1/2, -2 and ∞; the transforms share their code with
//! F(2x2, 3x3)'s, generic over the patch size. It rounds more (see the lowering
//! rule in the engine for where that is affordable).
//!
//! # F(2, 3) along a row or a column
//!
//! A 1x3 (or 3x1) window computes two neighbouring outputs from 4 inputs `d` as
//! `A^T [(G g) ⊙ (B^T d)]`: 4 multiplies instead of 6, in 4 positions. A 1x7
//! window is two such F(2, 3)s, on taps 0-2 (inputs 0-3) and taps 3-5 (inputs 3-6),
//! plus its last tap. The first two are summed in the transform domain: position
//! `p`'s GEMM takes both transformed inputs as one input twice as deep. The last tap
//! needs no transform: `m_0` reaches only the first output of the pair and `-m_3`
//! only the second, so `w_6 d_6` joins position 0 and `(-w_6) d_7` position 3, as a
//! third part of their inputs. That is 10 multiplies per pair and input channel
//! instead of 14; the positions' GEMMs are 3, 2, 2 and 3 input channels deep per
//! input channel of the layer, and so that the parts stack as whole blocks the
//! layer's input channels must fill whole 16-lane blocks.
//!
//! # The driver
//!
//! It walks the output tiles in chunks small enough that a chunk's transformed input
//! stays in L2. Per chunk it (1) transforms every input patch (adds only; borders
//! read as zeros, so no padded copy is made) into one image per position; then for
//! each group of output blocks (2) runs the positions' GEMMs with the microkernel
//! into small images and (3) transforms them back, adds the bias and the residual,
//! applies ReLU and stores the tile's pixels that lie inside the output. The
//! (chunk, group) pairs are dealt to the threads in runs of equal work: large maps
//! split by chunks, small ones (a chunk or two) by groups of output blocks. Each
//! worker works in its own slot of the scratch (see [`ParallelFor::worker`]).
//!
//! [`ParallelFor::worker`]: crate::parallel::ParallelFor::worker
//!
//! The transforms are written once over 16-lane blocks and compiled per tier (see
//! [`crate::dispatch`]), like [`crate::blocked`]. The transformed weights are
//! computed in f64 when packing ([`crate::pack::pack_winograd_weights`]).

// The transforms index 4x4 patches by (row, column) in lockstep.
#![allow(clippy::needless_range_loop)]

use crate::bands::{Bands, BandsMut};
use crate::conv::{Conv2d, PackedConv, TileArgs, WeightPrefetch, choose_tile};
use crate::dispatch::Kernels;
use crate::parallel::{ParallelFor, SharedMut, WorkerSlots, for_each_band};
use crate::prefetch;
use crate::{Activation, BLOCK, ConvGeometry, Dims, Image, ImageMut, Layout};

type Lanes = [f32; BLOCK];

/// Most transform positions of any scheme (F(4x4, 3x3)'s 6 x 6).
pub const MAX_POSITIONS: usize = 36;

/// Most output blocks one microkernel tile covers on any tier (the GEMM scratch is
/// sized for that many).
const MAX_OB: usize = 4;

/// Floats of scratch one chunk aims to fill (transformed input plus one group's
/// GEMM output): 512 KiB, half a Zen 4 / Ice Lake L2.
const CHUNK_FLOATS: usize = 128 * 1024;

/// A Winograd algorithm and the windows it computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// F(2x2, 3x3), for 3x3 windows: 2x2 output tiles, 16 positions.
    F2x2,
    /// F(4x4, 3x3), for 3x3 windows: 4x4 output tiles, 36 positions.
    F4x4,
    /// F(2, 3) along the width (1x3, 1x7) or, when `vertical`, the height (3x1,
    /// 7x1): tiles of two pixels, 4 positions; `taps` is 3 or 7.
    F2 { vertical: bool, taps: usize },
}

impl Scheme {
    /// The two-point-output scheme that computes a `kh x kw` window, if any
    /// (F(2x2, 3x3) for 3x3 windows; [`Scheme::F4x4`] computes them too).
    pub const fn for_window(kh: usize, kw: usize) -> Option<Scheme> {
        match (kh, kw) {
            (3, 3) => Some(Scheme::F2x2),
            (1, 3) | (1, 7) => Some(Scheme::F2 { vertical: false, taps: kw }),
            (3, 1) | (7, 1) => Some(Scheme::F2 { vertical: true, taps: kh }),
            _ => None,
        }
    }

    /// Transform positions.
    pub const fn positions(self) -> usize {
        match self {
            Scheme::F2x2 => 16,
            Scheme::F4x4 => 36,
            Scheme::F2 { .. } => 4,
        }
    }

    /// Output rows and columns of a tile.
    const fn tile(self) -> (usize, usize) {
        match self {
            Scheme::F2x2 => (2, 2),
            Scheme::F4x4 => (4, 4),
            Scheme::F2 { vertical: true, .. } => (2, 1),
            Scheme::F2 { vertical: false, .. } => (1, 2),
        }
    }

    /// Depth of position `p`'s GEMM, in input channels per input channel of the
    /// layer: one per F(2, 3) the window splits into, and one more at positions 0
    /// and 3 for a 1x7's last tap.
    pub const fn depth(self, p: usize) -> usize {
        match self {
            Scheme::F2x2 | Scheme::F4x4 => 1,
            Scheme::F2 { taps, .. } => taps / 3 + if p == 0 || p == 3 { taps % 3 } else { 0 },
        }
    }

    /// The sum of [`depth`](Self::depth) over the positions: multiplies per tile and
    /// input channel.
    pub const fn total_depth(self) -> usize {
        let mut sum = 0;
        let mut p = 0;
        while p < self.positions() {
            sum += self.depth(p);
            p += 1;
        }
        sum
    }

    /// A short name: `F(2x2,3x3)`, `F(4x4,3x3)` or `F(2,3)`.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::F2x2 => "F(2x2,3x3)",
            Scheme::F4x4 => "F(4x4,3x3)",
            Scheme::F2 { .. } => "F(2,3)",
        }
    }

    /// The `kh x kw` window the scheme computes (an F(2, 3) only with 3 or 7 taps:
    /// see [`Scheme::for_window`]).
    pub const fn window(self) -> (usize, usize) {
        match self {
            Scheme::F2x2 | Scheme::F4x4 => (3, 3),
            Scheme::F2 { vertical: false, taps } => (1, taps),
            Scheme::F2 { vertical: true, taps } => (taps, 1),
        }
    }

    /// Whether this scheme computes a convolution of `ci` input channels with
    /// `geom`: stride 1 and its window, any padding for a 3x3, none across the line
    /// and whole 16-channel input blocks for a 1xn or nx1.
    pub fn computes(self, geom: &ConvGeometry, ci: usize) -> bool {
        let (p, window) = (geom.pad, (geom.kh, geom.kw));
        let fits = match self {
            Scheme::F2x2 | Scheme::F4x4 => true,
            Scheme::F2 { vertical: false, .. } => p.top == 0 && p.bottom == 0 && ci.is_multiple_of(BLOCK),
            Scheme::F2 { vertical: true, .. } => p.left == 0 && p.right == 0 && ci.is_multiple_of(BLOCK),
        };
        let window_ok = window == self.window() && Scheme::for_window(geom.kh, geom.kw).is_some();
        (geom.stride_h, geom.stride_w) == (1, 1) && window_ok && fits
    }
}

/// The two-point Winograd scheme ([`Scheme::for_window`]) that computes a
/// convolution of `ci` input channels with `geom`, if any (see [`Scheme::computes`]).
pub fn winograd_scheme(geom: &ConvGeometry, ci: usize) -> Option<Scheme> {
    Scheme::for_window(geom.kh, geom.kw).filter(|s| s.computes(geom, ci))
}

/// Whether a Winograd scheme computes a convolution of `ci` input channels with
/// `geom` (see [`winograd_scheme`]).
pub fn winograd_applies(geom: &ConvGeometry, ci: usize) -> bool {
    winograd_scheme(geom, ci).is_some()
}

/// Output tiles per chunk for `ci` input channels and `tiles` tiles: as many as fit
/// [`CHUNK_FLOATS`], from 8 to 64 (or all of them).
fn chunk_tiles(scheme: Scheme, ci: usize, tiles: usize) -> usize {
    let per_tile = BLOCK * (scheme.total_depth() * ci.div_ceil(BLOCK) + scheme.positions() * MAX_OB);
    (CHUNK_FLOATS / per_tile).clamp(8, 64).min(tiles)
}

/// The chunking of a layer: most tiles per chunk, scratch slots, floats per slot.
#[derive(Clone, Copy, Debug)]
struct Chunking {
    per_chunk: usize,
    /// Threads the chunks are dealt to, each with a scratch slot of its own.
    threads: usize,
    slot_len: usize,
    /// Floats of a slot's transformed input (the rest holds GEMM output).
    v_len: usize,
}

/// Where position `p`'s transformed input image starts, for `ci_blocks` input
/// blocks: each image is one block longer than it needs, so that the images'
/// pixels do not all fall in the same L1 sets (a power-of-two stride would make
/// the transform's streams conflict).
const fn v_offset(scheme: Scheme, ci_blocks: usize, per_chunk: usize, p: usize) -> usize {
    let mut at = 0;
    let mut q = 0;
    while q < p {
        at += scheme.depth(q) * ci_blocks * per_chunk * BLOCK + BLOCK;
        q += 1;
    }
    at
}

/// Distance between the GEMM outputs of two positions (padded likewise).
const fn m_pos_stride(per_chunk: usize) -> usize {
    MAX_OB * per_chunk * BLOCK + BLOCK
}

/// Output tiles per row and in all of an `oh x ow` output.
fn tile_counts(scheme: Scheme, oh: usize, ow: usize) -> (usize, usize) {
    let (th, tw) = scheme.tile();
    let tiles_w = ow.div_ceil(tw);
    (tiles_w, oh.div_ceil(th) * tiles_w)
}

/// How a layer of `ci` input channels and an `oh x ow` output is chunked for
/// `threads` threads, each with a scratch slot of its own.
fn chunking(scheme: Scheme, ci: usize, oh: usize, ow: usize, threads: usize) -> Chunking {
    let tiles = tile_counts(scheme, oh, ow).1;
    let per_chunk = chunk_tiles(scheme, ci, tiles);
    let positions = scheme.positions();
    let v_len = v_offset(scheme, ci.div_ceil(BLOCK), per_chunk, positions);
    let slot_len = v_len + positions * m_pos_stride(per_chunk);
    Chunking { per_chunk, threads: threads.max(1), slot_len, v_len }
}

/// Tiles per chunk and chunks for `tiles` tiles in chunks of at most `per_chunk`,
/// with `groups` groups of output blocks per chunk, on `threads` threads: more,
/// smaller chunks when the (chunk, group) items would not split evenly over the
/// threads (17x17 maps: 3 chunks of 3 groups on 2 threads would split 5:4), and
/// all of about the same size.
fn balanced_chunks(tiles: usize, per_chunk: usize, groups: usize, threads: usize) -> (usize, usize) {
    let (least, threads) = (tiles.div_ceil(per_chunk), threads.max(1));
    let even = |chunks: usize| (chunks * groups).is_multiple_of(threads);
    let mut chunks = least;
    while !even(chunks) && chunks < tiles && chunks < 4 * least {
        chunks += 1;
    }
    // Chunks of equal size (a last chunk of 4 tiles after five of 64 would leave
    // one thread a third of the work less).
    let per = tiles.div_ceil(chunks);
    (per, tiles.div_ceil(per))
}

/// Scratch `f32` a Winograd convolution by `scheme` of an input of shape `input`
/// with `geom` needs when run on `threads` threads (each busy thread transforms its
/// own chunk); 0 if the scheme does not compute it.
pub fn winograd_scratch_len(input: Dims, geom: &ConvGeometry, scheme: Scheme, threads: usize) -> usize {
    if !scheme.computes(geom, input.c) {
        return 0;
    }
    let Some((oh, ow)) = geom.output_hw(input.h, input.w) else { return 0 };
    let c = chunking(scheme, input.c, oh, ow, threads);
    c.threads * c.slot_len
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
/// ±2 they grow less (Σ|A^T||G||B^T| per output 64 against 77), and a float32
/// simulation of a 64-channel tile errs 1.8x less. Still 6x F(2x2, 3x3)'s error: see
/// the lowering rule for where that is affordable.
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

/// `B^T` of the 1-D transform applied to the inputs `d(0..taps + 1)` of a pair of
/// outputs, handing position `p`'s value for part `k` (the `k`-th F(2, 3), or the
/// last tap's input) to `store(p, k, value)`.
#[inline(always)]
fn line_transform(taps: usize, d: impl Fn(usize) -> Lanes, mut store: impl FnMut(usize, usize, &Lanes)) {
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
/// `B^T d B` of each 4x4 patch (F(2x2, 3x3)) or `B^T d` of each line of inputs
/// under a pair of outputs (F(2, 3)), reading zeros outside the image.
#[inline(always)]
pub(crate) fn input_transform(job: &mut InputJob) {
    match job.scheme {
        Scheme::F2x2 => patches_transform::<4>(job, bt),
        Scheme::F4x4 => patches_transform::<6>(job, bt6),
        Scheme::F2 { vertical, taps } => lines_transform(job, vertical, taps),
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
    for t in 0..n {
        let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
        // The patch's first input row and column (negative in the padding).
        let y0 = (step * ty) as isize - pad_top as isize;
        let x0 = (step * tx) as isize - pad_left as isize;
        // A patch inside the image and inside one band reads that band in place.
        let inside = y0 >= 0 && x0 >= 0 && y0 as usize + N <= d.h && x0 as usize + N <= d.w;
        let band = inside.then(|| whole.map_or_else(|| input.row(y0 as usize), |b| (b, y0 as usize)));
        let band = band.filter(|(b, r)| r + N <= b.dims.h);
        for cb in 0..cb_count {
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

/// [`input_transform`] of F(2, 3): `B^T d` of each line under a pair of outputs.
#[inline(always)]
fn lines_transform(job: &mut InputJob, vertical: bool, taps: usize) {
    let InputJob { scheme, input, pad_top, pad_left, tiles_w, t0, n, per_chunk, ref mut v, prefetch_next } = *job;
    let d = input.dims;
    let cb_count = d.c.div_ceil(BLOCK);
    let offsets: [usize; 4] = std::array::from_fn(|p| v_offset(scheme, cb_count, per_chunk, p));
    let v_len = v_offset(scheme, cb_count, per_chunk, 4);
    assert!(taps < 8 && n <= per_chunk && v.len() >= v_len, "winograd input transform: scratch");
    assert!(input.layout == Layout::Nchw16c, "winograd input transform: input layout");
    let dst = v.as_mut_ptr();
    // An image in one band needs no lookups.
    let whole = (input.split.bands() == 1).then(|| input.band(0));
    for t in 0..n {
        let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
        // The line's first input pixel (negative along it in the padding) and its
        // length; across the line there is no padding, so output row ty (column
        // tx) reads input row ty (column tx).
        let (y0, x0, len) = if vertical {
            ((2 * ty) as isize - pad_top as isize, tx as isize, d.h)
        } else {
            (ty as isize, (2 * tx) as isize - pad_left as isize, d.w)
        };
        let s = if vertical { y0 } else { x0 };
        // The band a line inside the image lies in (all of it, for a vertical one).
        let inside = s >= 0 && s as usize + taps < len;
        let band = inside.then(|| whole.map_or_else(|| input.row(y0 as usize), |b| (b, y0 as usize)));
        let band = band.filter(|(b, r)| !vertical || r + taps < b.dims.h);
        for cb in 0..cb_count {
            // SAFETY: writes go to position p < 4, part k < depth(p), block cb <
            // cb_count, tile t < per_chunk: below v_offset(4) <= v.len().
            let store = |p: usize, k: usize, val: &Lanes| unsafe {
                dst.add(offsets[p] + ((k * cb_count + cb) * per_chunk + t) * BLOCK).cast::<Lanes>().write(*val)
            };
            if let Some((b, r)) = band {
                let (base, step) = ((cb * b.dims.h + r) * d.w + x0 as usize, if vertical { d.w } else { 1 });
                // SAFETY: the line's taps + 1 pixels from (r, x0) of block cb <
                // cb_count, `step` pixels apart, lie inside the band (and the image),
                // whose length `Bands::new` checked.
                let src = unsafe { b.data.as_ptr().add(base * BLOCK) };
                if prefetch_next {
                    // The next tile along the row: a horizontal line 2 pixels on (its
                    // last 2 are new), a vertical one in the next column (all new).
                    let (next, news) = if vertical { (1, 0..=taps) } else { (2, taps - 1..=taps) };
                    for k in news {
                        prefetch(src.wrapping_add((next + k * step) * BLOCK));
                    }
                }
                // SAFETY: as just above.
                line_transform(taps, |k| unsafe { load(src.add(k * step * BLOCK)) }, store);
            } else {
                let mut line = [[0.0; BLOCK]; 8];
                for (k, px) in line.iter_mut().enumerate().take(taps + 1) {
                    let at = s + k as isize;
                    if at < 0 || at as usize >= len {
                        continue;
                    }
                    let (y, x) = if vertical { (at as usize, x0 as usize) } else { (y0 as usize, at as usize) };
                    let (b, by) = input.row(y);
                    let i = ((cb * b.dims.h + by) * d.w + x) * BLOCK;
                    *px = b.data[i..i + BLOCK].try_into().expect("a whole block");
                }
                line_transform(taps, |k| line[k], store);
            }
        }
    }
}

/// Transforms the GEMM output of tiles `t0..t0 + n` back (`A^T m A`, or `A^T m`
/// for F(2, 3)), adds bias and residual, applies ReLU and stores the pixels inside
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
            Scheme::F2 { vertical, .. } => pairs_output(job, vertical),
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

/// [`output_transform`] of F(2, 3): `A^T m`.
///
/// # Safety
/// As [`output_transform`].
#[inline(always)]
unsafe fn pairs_output(job: &OutputJob, vertical: bool) {
    let &OutputJob { m, per_chunk, ob0, ob, bias, row0, rows, ow, tiles_w, t0, n, .. } = job;
    let (plane, end) = (rows * ow * BLOCK, row0 + rows);
    let pos_stride = m_pos_stride(per_chunk);
    check_output_job(job, 4);
    let mp = m.as_ptr();
    for b in 0..ob {
        let bias: Lanes = bias[(ob0 + b) * BLOCK..][..BLOCK].try_into().expect("a whole block");
        for t in 0..n {
            let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
            // SAFETY: position p < 4, block b < ob <= MAX_OB, tile t < per_chunk:
            // below 4 * pos_stride <= m.len().
            let at = |p: usize| unsafe { load(mp.add(p * pos_stride + (b * per_chunk + t) * BLOCK)) };
            let pair = at4(&[at(0), at(1), at(2), at(3)]);
            for (i, px) in pair.iter().enumerate() {
                let (y, x) = if vertical { (2 * ty + i, tx) } else { (ty, 2 * tx + i) };
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

/// `op` by Winograd `scheme` (which must compute `op.geom`, see
/// [`Scheme::computes`]) on NCHW16c images in bands (see [`crate::bands`]; a plain
/// image is one band), into `out`. `op.weights` are packed by
/// [`crate::pack::pack_winograd_weights`] for `scheme`; `scratch` must hold
/// [`winograd_scratch_len`]`(input.dims, geom, scheme, par.threads())` values, and is
/// split evenly into one slot per worker: given the same larger buffer for every
/// layer, each worker keeps working in the same cache lines. With more than one
/// output band, one task per band computes the tiles that cover its rows, reading
/// the few input rows its patches need from the neighbouring bands, and stores its
/// rows only (a tile across a band boundary is computed by both bands); with one,
/// the chunks are spread over `par`'s threads. The tiles are the whole image's in
/// every case, so the bits are the same.
pub fn conv2d_winograd(
    kernels: &Kernels,
    op: &Conv2d,
    scheme: Scheme,
    out: &mut BandsMut,
    scratch: &mut [f32],
    par: &dyn ParallelFor,
) {
    let Conv2d { input, weights: w, geom, residual, .. } = *op;
    let s = w.shape;
    let dout = out.dims;
    assert!(input.layout == Layout::Nchw16c, "conv2d_winograd: input layout");
    assert!(scheme.computes(&geom, s.ci), "conv2d_winograd: {scheme:?} does not compute this window");
    let packed_len = crate::pack::winograd_packed_len(s, scheme);
    crate::conv::check_conv("conv2d_winograd", &input, &w, packed_len, &geom, residual.as_ref(), &out.as_bands());
    let ch = chunking(scheme, s.ci, dout.h, dout.w, par.threads());
    let worker_slots = WorkerSlots::new(scratch, par, ch.slot_len, "conv2d_winograd");
    kernels.record_call();
    let split = out.split;
    if split.bands() == 1 {
        let layer = BandTiles::new(kernels, op, scheme, residual.map(|r| r.band(0)), &mut out.band(0), 0, ch);
        par.run(layer.tasks, &|task| {
            // SAFETY: taken once, inside this task.
            layer.run(task, unsafe { worker_slots.mine(par) })
        });
    } else {
        for_each_band(out, par, &|t, mut band| {
            let (row0, res) = (split.rows(t).start, residual.map(|r| r.band(t)));
            let ch = Chunking { threads: 1, ..ch };
            let layer = BandTiles::new(kernels, op, scheme, res, &mut band, row0, ch);
            // SAFETY: taken once, inside this task.
            layer.run(0, unsafe { worker_slots.mine(par) })
        });
    }
}

/// One Winograd convolution's tiles of one output band (or of the whole output),
/// dealt to `tasks` tasks.
struct BandTiles<'a> {
    kernels: &'a Kernels,
    input: Bands<'a>,
    w: &'a PackedConv<'a>,
    geom: ConvGeometry,
    scheme: Scheme,
    residual: Option<&'a [f32]>,
    relu: bool,
    out: SharedMut,
    out_len: usize,
    /// The output's first row and rows (of the band, or all), and columns.
    row0: usize,
    rows: usize,
    ow: usize,
    ch: Chunking,
    tiles_w: usize,
    /// The first tile (of the whole image's, row-major) that covers these rows,
    /// and how many do.
    first_tile: usize,
    tiles: usize,
    per_chunk: usize,
    ob_tile: usize,
    px_tile: usize,
    groups: usize,
    items: usize,
    tasks: usize,
    /// Per position: input blocks of its GEMM, where its image and its weights
    /// start, and its GEMM's chunk of the sum.
    k_blocks: [usize; MAX_POSITIONS],
    v_at: [usize; MAX_POSITIONS],
    w_at: [usize; MAX_POSITIONS],
    gemm_chunk: [usize; MAX_POSITIONS],
    /// Whether the input transforms prefetch (see [`InputJob::prefetch_next`]).
    prefetch: bool,
}

impl<'a> BandTiles<'a> {
    /// The tiles of `out`, output rows `row0..row0 + out.h` of `op` (`residual` in
    /// `out`'s rows), for `ch.threads` threads.
    fn new(
        kernels: &'a Kernels,
        op: &'a Conv2d<'a>,
        scheme: Scheme,
        residual: Option<Image<'a>>,
        out: &mut ImageMut,
        row0: usize,
        ch: Chunking,
    ) -> Self {
        let (input, w, geom, act, threads) = (op.input, &op.weights, &op.geom, op.act, ch.threads);
        let s = w.shape;
        let (rows, ow) = (out.dims.h, out.dims.w);
        let (th, tw) = scheme.tile();
        let tiles_w = ow.div_ceil(tw);
        let tile_rows = row0 / th..(row0 + rows).div_ceil(th);
        let (first_tile, tiles) = (tile_rows.start * tiles_w, tile_rows.len() * tiles_w);
        let (ci_blocks, co_blocks) = (s.ci_blocks(), s.co_blocks());
        let mk = &kernels.conv;
        let per_chunk = ch.per_chunk.min(tiles);
        let groups = co_blocks.div_ceil(choose_tile(mk, co_blocks, per_chunk).0);
        let (per_chunk, chunks) = balanced_chunks(tiles, per_chunk, groups, threads);
        let (ob_tile, px_tile) = choose_tile(mk, co_blocks, per_chunk);
        assert!(ob_tile <= MAX_OB, "conv2d_winograd: microkernel tile wider than {MAX_OB} blocks");
        let k_blocks: [usize; MAX_POSITIONS] = std::array::from_fn(|p| scheme.depth(p) * ci_blocks);
        // Work items: (chunk, group of output blocks) pairs, chunk-major, dealt to
        // one task per thread in runs of equal work; a task transforms the input of
        // each chunk it has items of once. Large maps split by chunks (each task
        // owns whole chunks but one), small ones by groups (a few chunks' transforms
        // are repeated, which costs a fraction of a percent, and each thread reads
        // only its share of the weights).
        let groups = co_blocks.div_ceil(ob_tile);
        let items = chunks * groups;
        BandTiles {
            kernels,
            input,
            w,
            geom: *geom,
            scheme,
            residual: residual.map(|r| r.data),
            relu: act == Activation::Relu,
            out: SharedMut(out.data.as_mut_ptr()),
            out_len: out.data.len(),
            row0,
            rows,
            ow,
            ch,
            tiles_w,
            first_tile,
            tiles,
            per_chunk,
            ob_tile,
            px_tile,
            groups,
            items,
            tasks: threads.max(1).min(items),
            k_blocks,
            v_at: std::array::from_fn(|p| v_offset(scheme, ci_blocks, per_chunk, p)),
            w_at: std::array::from_fn(|p| (0..p).map(|q| co_blocks * k_blocks[q] * BLOCK * BLOCK).sum()),
            // The per-position products sum over their inputs in the direct
            // convolution's chunks (a 1x1 layer's order).
            gemm_chunk: std::array::from_fn(|p| {
                crate::conv::chunk_taps(crate::pack::ConvShape { co: s.co, ci: s.ci * scheme.depth(p), kh: 1, kw: 1 })
            }),
            // Tasks of one band share its input (written by several threads).
            prefetch: threads > 1,
        }
    }

    /// Task `task`'s items, in its worker's scratch slot `mine`.
    fn run(&self, task: usize, mine: &mut [f32]) {
        let (s, scheme, per_chunk, tiles) = (self.w.shape, self.scheme, self.per_chunk, self.tiles);
        let (ci_blocks, co_blocks, ob_tile, groups) = (s.ci_blocks(), s.co_blocks(), self.ob_tile, self.groups);
        let (tasks, mk) = (self.tasks, &self.kernels.conv);
        let zeros = [0.0f32; MAX_OB * BLOCK];
        // An item's work: its group's blocks times its chunk's tiles; a task takes the
        // items whose work's midpoint falls in its equal share of the total.
        let work = |item: usize| {
            let (chunk, group) = (item / groups, item % groups);
            ob_tile.min(co_blocks - group * ob_tile) * per_chunk.min(tiles - chunk * per_chunk)
        };
        let total = co_blocks * tiles;
        let (v, m) = mine.split_at_mut(self.ch.v_len);
        let mut transformed = None;
        // The task's items: contiguous, as the midpoints grow with the item.
        let mut start = 0;
        let owned = (0..self.items).filter(|&item| {
            let item_work = work(item);
            let mid = 2 * start + item_work;
            start += item_work;
            // 2 * midpoint in [2 total task / tasks, 2 total (task + 1) / tasks).
            mid * tasks >= 2 * total * task && mid * tasks < 2 * total * (task + 1)
        });
        let (first, count) = owned.fold((usize::MAX, 0), |(f, c), i| (f.min(i), c + 1));
        let items = first.min(self.items)..first.min(self.items) + count;
        for item in items.clone() {
            let (chunk, group) = (item / groups, item % groups);
            let n = per_chunk.min(tiles - chunk * per_chunk);
            let t0 = self.first_tile + chunk * per_chunk;
            if transformed != Some(chunk) {
                let mut job = InputJob {
                    scheme,
                    input: self.input,
                    pad_top: self.geom.pad.top,
                    pad_left: self.geom.pad.left,
                    tiles_w: self.tiles_w,
                    t0,
                    n,
                    per_chunk,
                    v: &mut *v,
                    prefetch_next: self.prefetch,
                };
                // SAFETY: `kernels` proves the tier runs on this CPU.
                unsafe { (self.kernels.winograd.input)(&mut job) };
                transformed = Some(chunk);
            }
            let ob0 = group * ob_tile;
            let ob = ob_tile.min(co_blocks - ob0);
            let slab = |group: usize, p: usize| {
                let ob0 = group * ob_tile;
                (self.w_at[p] + ob0 * self.k_blocks[p] * BLOCK * BLOCK, ob_tile.min(co_blocks - ob0), p)
            };
            for p in 0..scheme.positions() {
                let m_pos = &mut m[p * m_pos_stride(per_chunk)..][..MAX_OB * per_chunk * BLOCK];
                let w_block = self.k_blocks[p] * BLOCK * BLOCK;
                // The weights read next, fetched while this position's tiles compute:
                // the next position's, or the next item's first. Each weight serves
                // only the chunk's tiles (16 on an 8x8 map), so unfetched, the first
                // tile of each position would wait on memory (measured: 1x7/7x1
                // layers 10% faster with the prefetch, 3x3 ones 6%).
                let next = if p + 1 < scheme.positions() {
                    Some(slab(group, p + 1))
                } else {
                    (item + 1 < items.end).then(|| slab((item + 1) % groups, 0))
                };
                let m_tiles = n.div_ceil(self.px_tile);
                for (j, px0) in (0..n).step_by(self.px_tile).enumerate() {
                    let px = self.px_tile.min(n - px0);
                    let prefetch = next.map_or(WeightPrefetch::NONE, |(at, ob, q)| {
                        let start = self.w.weights.as_ptr().wrapping_add(at);
                        let k = self.k_blocks[q];
                        WeightPrefetch::share(start, k * BLOCK * BLOCK, ob, k * BLOCK, j, m_tiles)
                    });
                    let args = TileArgs {
                        input: v[self.v_at[p] + px0 * BLOCK..].as_ptr(),
                        in_pixel: BLOCK,
                        in_row: 0,
                        in_block: per_chunk * BLOCK,
                        ci_blocks: self.k_blocks[p],
                        // Only the 3x3 schemes take a partial block, as the only one.
                        ci_tail: s.ci - (ci_blocks - 1) * BLOCK,
                        kh: 1,
                        kw: 1,
                        chunk: self.gemm_chunk[p],
                        weights: self.w.weights[self.w_at[p] + ob0 * w_block..].as_ptr(),
                        w_block,
                        bias: zeros.as_ptr(),
                        residual: std::ptr::null(),
                        output: m_pos[px0 * BLOCK..].as_mut_ptr(),
                        out_block: per_chunk * BLOCK,
                        relu: false,
                        prefetch_next: false,
                        prefetch_output: false,
                        taps: (0, self.k_blocks[p]),
                        prefetch,
                    };
                    // SAFETY: the tier runs on this CPU. Reads: input blocks
                    // 0..k_blocks[p] of position p's image, pixels px0..px0+px <= n
                    // <= per_chunk; weights blocks ob0..ob0+ob of position p; ob*16
                    // zeros of bias. Writes: blocks 0..ob <= MAX_OB of m_pos,
                    // pixels px0..px0+px, all inside the slices taken above.
                    unsafe { (mk.tile)(&args, ob, px) };
                }
            }
            let job = OutputJob {
                scheme,
                m,
                per_chunk,
                ob0,
                ob,
                bias: self.w.bias,
                residual: self.residual,
                relu: self.relu,
                out: self.out.get(),
                out_len: self.out_len,
                row0: self.row0,
                rows: self.rows,
                ow: self.ow,
                tiles_w: self.tiles_w,
                t0,
                n,
            };
            // SAFETY: the tier runs on this CPU; `out` holds out_len floats and
            // this task alone writes blocks ob0..ob0+ob of this chunk's tiles.
            unsafe { (self.kernels.winograd.output)(&job) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_tiles() {
        for ci in [1, 16, 96, 448, 2048] {
            for (oh, ow) in [(1, 1), (2, 2), (7, 7), (8, 8), (35, 35), (147, 147)] {
                for threads in 1..4 {
                    for scheme in
                        [Scheme::F2x2, Scheme::F2 { vertical: true, taps: 7 }, Scheme::F2 { vertical: false, taps: 3 }]
                    {
                        let c = chunking(scheme, ci, oh, ow, threads);
                        let tiles = tile_counts(scheme, oh, ow).1;
                        assert!(c.per_chunk >= 1 && c.per_chunk <= 64 && c.threads >= 1 && c.threads <= threads);
                        for groups in 1..8 {
                            let (per, chunks) = balanced_chunks(tiles, c.per_chunk, groups, threads);
                            assert!(
                                per >= 1 && per <= c.per_chunk && chunks * per >= tiles && (chunks - 1) * per < tiles
                            );
                        }
                    }
                }
            }
        }
    }
}
