//! Winograd F(2x2, 3x3) convolution on NCHW16c images: the ISA-neutral driver.
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
//! The driver walks the output tiles in chunks small enough that a chunk's
//! transformed input stays in L2. Per chunk it (1) transforms every input patch
//! (adds only; borders read as zeros, so no padded copy is made) into 16 images,
//! one per position; then for each group of output blocks (2) runs the 16 GEMMs
//! with the microkernel into 16 small images and (3) transforms them back
//! (`A^T m A`), adds the bias and the residual, applies ReLU and stores the tile's
//! pixels that lie inside the output. The (chunk, group) pairs are dealt to the
//! threads in equal runs, each thread with its own part of the scratch: large maps
//! split by chunks, small ones (a chunk or two) by groups of output blocks.
//!
//! The transforms are written once over 16-lane blocks and compiled per tier (see
//! [`crate::dispatch`]), like [`crate::blocked`]. `U = G g G^T` is computed in f64
//! when packing ([`crate::pack::pack_winograd_weights`]).

// The transforms index 4x4 patches by (row, column) in lockstep.
#![allow(clippy::needless_range_loop)]

use crate::conv::{PackedConv, TileArgs, choose_tile};
use crate::dispatch::Kernels;
use crate::parallel::{ParallelFor, SharedMut};
use crate::{Activation, BLOCK, ConvGeometry, Dims, Image, ImageMut, Layout};

type Lanes = [f32; BLOCK];

/// Transform positions (4 x 4).
pub const POSITIONS: usize = 16;

/// Most output blocks one microkernel tile covers on any tier (the GEMM scratch is
/// sized for that many).
const MAX_OB: usize = 4;

/// Floats of scratch one chunk aims to fill (transformed input plus one group's
/// GEMM output): 512 KiB, half a Zen 4 / Ice Lake L2.
const CHUNK_FLOATS: usize = 128 * 1024;

/// Whether Winograd F(2x2, 3x3) computes a convolution of this window: 3x3,
/// stride 1 (any padding).
pub fn winograd_applies(geom: &ConvGeometry) -> bool {
    (geom.kh, geom.kw, geom.stride_h, geom.stride_w) == (3, 3, 1, 1)
}

/// Output tiles per chunk for `ci` input channels and `tiles` tiles: as many as fit
/// [`CHUNK_FLOATS`], from 8 to 64 (or all of them).
fn chunk_tiles(ci: usize, tiles: usize) -> usize {
    let per_tile = POSITIONS * BLOCK * (ci.div_ceil(BLOCK) + MAX_OB);
    (CHUNK_FLOATS / per_tile).clamp(8, 64).min(tiles)
}

/// The chunking of a layer: tiles per chunk, chunks, scratch slots, floats per slot.
#[derive(Clone, Copy, Debug)]
struct Chunking {
    per_chunk: usize,
    chunks: usize,
    slots: usize,
    slot_len: usize,
    /// Floats of a slot's transformed input (the rest holds GEMM output).
    v_len: usize,
}

/// Distance between the transformed input images of two positions: one block more
/// than an image, so that the 16 images' pixels do not all fall in the same L1 sets
/// (a power-of-two stride would make the transform's 16 streams conflict).
const fn v_pos_stride(ci_blocks: usize, per_chunk: usize) -> usize {
    ci_blocks * per_chunk * BLOCK + BLOCK
}

/// Distance between the GEMM outputs of two positions (padded likewise).
const fn m_pos_stride(per_chunk: usize) -> usize {
    MAX_OB * per_chunk * BLOCK + BLOCK
}

/// How a layer of `ci` input channels and an `oh x ow` output is chunked for
/// `threads` threads, each with a scratch slot of its own.
fn chunking(ci: usize, oh: usize, ow: usize, threads: usize) -> Chunking {
    let tiles = oh.div_ceil(2) * ow.div_ceil(2);
    let per_chunk = chunk_tiles(ci, tiles);
    let chunks = tiles.div_ceil(per_chunk);
    let v_len = POSITIONS * v_pos_stride(ci.div_ceil(BLOCK), per_chunk);
    let slot_len = v_len + POSITIONS * m_pos_stride(per_chunk);
    Chunking { per_chunk, chunks, slots: threads.max(1), slot_len, v_len }
}

/// Scratch `f32` a Winograd convolution of an input of shape `input` with `geom`
/// needs when run on `threads` threads (each busy thread transforms its own chunk).
pub fn winograd_scratch_len(input: Dims, geom: &ConvGeometry, threads: usize) -> usize {
    let Some((oh, ow)) = geom.output_hw(input.h, input.w) else { return 0 };
    let c = chunking(input.c, oh, ow, threads);
    c.slots * c.slot_len
}

/// What the input transform of one chunk reads and writes.
pub(crate) struct InputJob<'a> {
    /// The unpadded input image.
    pub input: Image<'a>,
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
    /// `[16 positions][ci blocks][per_chunk][16]`.
    pub v: &'a mut [f32],
}

/// What the output transform of one chunk and group of output blocks reads and writes.
pub(crate) struct OutputJob<'a> {
    /// `[16 positions][MAX_OB blocks][per_chunk][16]`, blocks `0..ob` filled.
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
    /// The output image (shared by the threads, which write disjoint tiles), its
    /// length and height and width.
    pub out: *mut f32,
    pub out_len: usize,
    pub oh: usize,
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

/// `B^T` applied to four blocks: `(d0 - d2, d1 + d2, d2 - d1, d1 - d3)`.
#[inline(always)]
fn bt(d: [&Lanes; 4]) -> [Lanes; 4] {
    [sub(d[0], d[2]), add(d[1], d[2]), sub(d[2], d[1]), sub(d[1], d[3])]
}

/// `B^T d B` of the 4x4 patch `d(row, column)`, handing position `(ξ, ν)` to
/// `store(4 ξ + ν, value)`.
#[inline(always)]
fn patch_transform(d: impl Fn(usize, usize) -> Lanes, mut store: impl FnMut(usize, &Lanes)) {
    // Row transform of each patch row: w[r] = (row r) B.
    let mut w = [[[0.0; BLOCK]; 4]; 4];
    for (r, wr) in w.iter_mut().enumerate() {
        let row = [d(r, 0), d(r, 1), d(r, 2), d(r, 3)];
        *wr = bt([&row[0], &row[1], &row[2], &row[3]]);
    }
    // Column transform: v[.][c] = B^T w[.][c].
    for c in 0..4 {
        let col = bt([&w[0][c], &w[1][c], &w[2][c], &w[3][c]]);
        for (r, v) in col.iter().enumerate() {
            store(r * 4 + c, v);
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

/// Transforms tiles `t0..t0 + n` of the input into `v`: `B^T d B` of each 4x4 patch
/// (zeros outside the image) per 16-channel block.
#[inline(always)]
pub(crate) fn input_transform(job: &mut InputJob) {
    let InputJob { input, pad_top, pad_left, tiles_w, t0, n, per_chunk, ref mut v } = *job;
    let d = input.dims;
    let cb_count = d.c.div_ceil(BLOCK);
    let (plane, pos_stride) = (d.h * d.w * BLOCK, v_pos_stride(cb_count, per_chunk));
    assert!(n <= per_chunk && v.len() >= POSITIONS * pos_stride, "winograd input transform: scratch");
    assert_eq!(input.data.len(), cb_count * plane, "winograd input transform: input");
    let (src, dst) = (input.data.as_ptr(), v.as_mut_ptr());
    const ZERO: Lanes = [0.0; BLOCK];
    for t in 0..n {
        let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
        // The patch's first input row and column (negative in the padding).
        let (y0, x0) = ((2 * ty) as isize - pad_top as isize, (2 * tx) as isize - pad_left as isize);
        let inside = y0 >= 0 && x0 >= 0 && y0 as usize + 4 <= d.h && x0 as usize + 4 <= d.w;
        for cb in 0..cb_count {
            // SAFETY: writes go to position p < 16, block cb < cb_count, tile t <
            // per_chunk: below POSITIONS * pos_stride <= v.len().
            let store = |p: usize, val: &Lanes| unsafe {
                dst.add(p * pos_stride + (cb * per_chunk + t) * BLOCK).cast::<Lanes>().write(*val)
            };
            if inside {
                let base = cb * plane + (y0 as usize * d.w + x0 as usize) * BLOCK;
                // SAFETY: rows y0..y0+4 < h and columns x0..x0+4 <= w of block cb are
                // inside the input (whose length was asserted).
                patch_transform(|r, c| unsafe { load(src.add(base + (r * d.w + c) * BLOCK)) }, store);
            } else {
                let mut patch = [[ZERO; 4]; 4];
                for (r, row) in patch.iter_mut().enumerate() {
                    let y = y0 + r as isize;
                    if y < 0 || y as usize >= d.h {
                        continue;
                    }
                    for (c, px) in row.iter_mut().enumerate() {
                        let x = x0 + c as isize;
                        if x >= 0 && (x as usize) < d.w {
                            let at = cb * plane + (y as usize * d.w + x as usize) * BLOCK;
                            *px = input.data[at..at + BLOCK].try_into().expect("a whole block");
                        }
                    }
                }
                patch_transform(|r, c| patch[r][c], store);
            }
        }
    }
}

/// Transforms the GEMM output of tiles `t0..t0 + n` back (`A^T m A`), adds bias and
/// residual, applies ReLU and stores the pixels inside the output.
///
/// # Safety
/// `job.out` must be valid for writes of `job.out_len` floats, and no other thread
/// may access the pixels of these tiles in output blocks `ob0..ob0 + ob` meanwhile.
#[inline(always)]
pub(crate) unsafe fn output_transform(job: &OutputJob) {
    let &OutputJob { m, per_chunk, ob0, ob, bias, residual, relu, out, out_len, oh, ow, tiles_w, t0, n } = job;
    let plane = oh * ow * BLOCK;
    let pos_stride = m_pos_stride(per_chunk);
    assert!(n <= per_chunk && ob <= MAX_OB && m.len() >= POSITIONS * pos_stride, "winograd output transform: scratch");
    assert!((ob0 + ob) * plane <= out_len && bias.len() >= (ob0 + ob) * BLOCK, "winograd output transform: blocks");
    if let Some(r) = residual {
        assert_eq!(r.len(), out_len, "winograd output transform: residual");
    }
    let mp = m.as_ptr();
    for b in 0..ob {
        let bias: Lanes = bias[(ob0 + b) * BLOCK..][..BLOCK].try_into().expect("a whole block");
        for t in 0..n {
            let (ty, tx) = ((t0 + t) / tiles_w, (t0 + t) % tiles_w);
            // SAFETY: position p < 16, block b < ob <= MAX_OB, tile t < per_chunk:
            // below POSITIONS * pos_stride <= m.len().
            let at = |p: usize| unsafe { load(mp.add(p * pos_stride + (b * per_chunk + t) * BLOCK)) };
            // s[i][c] = (A^T m)[i][c].
            let mut s = [[[0.0; BLOCK]; 4]; 2];
            for c in 0..4 {
                let (m0, m1, m2, m3) = (at(c), at(4 + c), at(8 + c), at(12 + c));
                s[0][c] = add(&add(&m0, &m1), &m2);
                s[1][c] = sub(&sub(&m1, &m2), &m3);
            }
            let full = 2 * ty + 2 <= oh && 2 * tx + 2 <= ow;
            for (i, si) in s.iter().enumerate() {
                let y = 2 * ty + i;
                if !full && y >= oh {
                    break;
                }
                let pair = [add(&add(&si[0], &si[1]), &si[2]), sub(&sub(&si[1], &si[2]), &si[3])];
                for (j, px) in pair.iter().enumerate() {
                    let x = 2 * tx + j;
                    if !full && x >= ow {
                        break;
                    }
                    let off = (ob0 + b) * plane + (y * ow + x) * BLOCK;
                    let mut v = add(px, &bias);
                    if let Some(r) = residual {
                        // SAFETY: off + 16 <= out_len == r.len().
                        v = add(&v, &unsafe { load(r.as_ptr().add(off)) });
                    }
                    if relu {
                        v.iter_mut().for_each(|e| *e = e.max(0.0));
                    }
                    // SAFETY: y < oh, x < ow and block ob0 + b < ob0 + ob, so off + 16 <=
                    // (ob0 + ob) * plane <= out_len (asserted above); the caller owns
                    // these tiles' pixels.
                    unsafe { out.add(off).cast::<Lanes>().write(v) };
                }
            }
        }
    }
}

/// Winograd weights and bias: [`PackedConv::weights`] holds
/// [`crate::pack::pack_winograd_weights`]'s layout.
pub type PackedWinograd<'a> = PackedConv<'a>;

/// `out = act(conv3x3(input) + bias + residual)` by Winograd F(2x2, 3x3), stride 1,
/// with the output chunks spread over `par`'s threads. `w.weights` are packed by
/// [`crate::pack::pack_winograd_weights`]; `scratch` must hold
/// [`winograd_scratch_len`]`(input.dims, geom, par.threads())` values.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_winograd_par(
    kernels: &Kernels,
    input: Image,
    w: &PackedWinograd,
    geom: &ConvGeometry,
    residual: Option<Image>,
    act: Activation,
    out: &mut ImageMut,
    scratch: &mut [f32],
    par: &dyn ParallelFor,
) {
    let s = w.shape;
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "conv2d_winograd: layouts");
    assert!(winograd_applies(geom) && (s.kh, s.kw) == (3, 3), "conv2d_winograd: not a 3x3 stride-1 window");
    assert!(input.dims.c == s.ci && out.dims.c == s.co, "conv2d_winograd: shape");
    assert_eq!(geom.output_hw(input.dims.h, input.dims.w), Some((out.dims.h, out.dims.w)), "conv2d_winograd: size");
    assert!(
        w.weights.len() == crate::pack::winograd_packed_len(s) && w.bias.len() == s.packed_bias_len(),
        "conv2d_winograd: packing"
    );
    if let Some(r) = &residual {
        assert!(r.dims == out.dims && r.layout == Layout::Nchw16c, "conv2d_winograd: residual");
    }
    let (oh, ow) = (out.dims.h, out.dims.w);
    let ch = chunking(s.ci, oh, ow, par.threads());
    assert!(
        scratch.len() >= ch.slots * ch.slot_len,
        "conv2d_winograd: scratch too small for {} threads",
        par.threads()
    );
    kernels.record_call();

    let tiles_w = ow.div_ceil(2);
    let tiles = oh.div_ceil(2) * tiles_w;
    let (ci_blocks, co_blocks) = (s.ci_blocks(), s.co_blocks());
    let mk = &kernels.conv;
    let (ob_tile, px_tile) = choose_tile(mk, co_blocks, ch.per_chunk);
    assert!(ob_tile <= MAX_OB, "conv2d_winograd: microkernel tile wider than {MAX_OB} blocks");
    let w_pos = co_blocks * ci_blocks * BLOCK * BLOCK;
    let w_block = ci_blocks * BLOCK * BLOCK;
    let zeros = [0.0f32; MAX_OB * BLOCK];
    // The per-position products sum over the input channels in the direct
    // convolution's chunks (a 1x1 layer's order).
    let gemm_chunk = crate::conv::chunk_taps(crate::pack::ConvShape { co: s.co, ci: s.ci, kh: 1, kw: 1 });
    let out_len = out.data.len();
    let out_ptr = SharedMut(out.data.as_mut_ptr());
    let (per_chunk, slots) = (ch.per_chunk, ch.slots);
    let scratch_ptr = SharedMut(scratch.as_mut_ptr());

    // Work items: (chunk, group of output blocks) pairs, chunk-major, dealt to one
    // task per scratch slot in equal runs. A task transforms the input of each chunk
    // it has items of once; large maps split by chunks (each task owns whole chunks
    // but one), small ones by groups (a few chunks' transforms are repeated, which
    // costs a fraction of a percent, and each thread reads only its share of the
    // weights).
    let groups = co_blocks.div_ceil(ob_tile);
    let items = ch.chunks * groups;
    let tasks = slots.min(items);
    par.run(tasks, &|slot| {
        // SAFETY: slot ranges of the scratch are disjoint and inside it (asserted
        // above), and each slot belongs to one task.
        let mine = unsafe { std::slice::from_raw_parts_mut(scratch_ptr.get().add(slot * ch.slot_len), ch.slot_len) };
        let (v, m) = mine.split_at_mut(ch.v_len);
        let mut transformed = None;
        for item in slot * items / tasks..(slot + 1) * items / tasks {
            let (chunk, group) = (item / groups, item % groups);
            let t0 = chunk * per_chunk;
            let n = per_chunk.min(tiles - t0);
            if transformed != Some(chunk) {
                let mut job = InputJob {
                    input,
                    pad_top: geom.pad.top,
                    pad_left: geom.pad.left,
                    tiles_w,
                    t0,
                    n,
                    per_chunk,
                    v: &mut *v,
                };
                // SAFETY: `kernels` proves the tier runs on this CPU.
                unsafe { (kernels.winograd.input)(&mut job) };
                transformed = Some(chunk);
            }
            let ob0 = group * ob_tile;
            let ob = ob_tile.min(co_blocks - ob0);
            for p in 0..POSITIONS {
                let m_pos = &mut m[p * m_pos_stride(per_chunk)..][..MAX_OB * per_chunk * BLOCK];
                for px0 in (0..n).step_by(px_tile) {
                    let px = px_tile.min(n - px0);
                    let args = TileArgs {
                        input: v[p * v_pos_stride(ci_blocks, per_chunk) + px0 * BLOCK..].as_ptr(),
                        in_pixel: BLOCK,
                        in_row: 0,
                        in_block: per_chunk * BLOCK,
                        ci_blocks,
                        ci_tail: s.ci - (ci_blocks - 1) * BLOCK,
                        kh: 1,
                        kw: 1,
                        chunk: gemm_chunk,
                        weights: w.weights[p * w_pos + ob0 * w_block..].as_ptr(),
                        w_block,
                        bias: zeros.as_ptr(),
                        residual: std::ptr::null(),
                        output: m_pos[px0 * BLOCK..].as_mut_ptr(),
                        out_block: per_chunk * BLOCK,
                        relu: false,
                    };
                    // SAFETY: the tier runs on this CPU. Reads: input blocks
                    // 0..ci_blocks of position p's image, pixels px0..px0+px <= n
                    // <= per_chunk; weights blocks ob0..ob0+ob of position p; ob*16
                    // zeros of bias. Writes: blocks 0..ob <= MAX_OB of m_pos,
                    // pixels px0..px0+px, all inside the slices taken above.
                    unsafe { (mk.tile)(&args, ob, px) };
                }
            }
            let job = OutputJob {
                m,
                per_chunk,
                ob0,
                ob,
                bias: w.bias,
                residual: residual.map(|r| r.data),
                relu: act == Activation::Relu,
                out: out_ptr.get(),
                out_len,
                oh,
                ow,
                tiles_w,
                t0,
                n,
            };
            // SAFETY: the tier runs on this CPU; `out` holds out_len floats and
            // this task alone writes blocks ob0..ob0+ob of this chunk's tiles.
            unsafe { (kernels.winograd.output)(&job) };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_tiles() {
        for ci in [1, 16, 96, 448, 2048] {
            for (oh, ow) in [(1, 1), (2, 2), (7, 7), (8, 8), (35, 35), (147, 147)] {
                for threads in 1..4 {
                    let c = chunking(ci, oh, ow, threads);
                    let tiles = oh.div_ceil(2) * ow.div_ceil(2);
                    assert!(c.per_chunk >= 1 && c.per_chunk <= 64 && c.chunks * c.per_chunk >= tiles);
                    assert!((c.chunks - 1) * c.per_chunk < tiles && c.slots >= 1 && c.slots <= threads);
                }
            }
        }
    }
}
