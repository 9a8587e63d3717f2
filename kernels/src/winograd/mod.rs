//! Winograd convolution on NCHW16c images: the ISA-neutral driver, for 3x3 windows
//! (F(2x2, 3x3) and F(4x4, 3x3)) and for the factorized 1xn / nx1 windows with
//! n = 3 or 7 (F(2, 3), and the 6-point F(4, 3) and F(3, 4+3)).
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
//! # The 6-point schemes along a row or a column
//!
//! With F(4x4, 3x3)'s interpolation points (0, 1, -1, 1/2, -2, ∞) in one
//! dimension, `bt6` transforms 6 inputs into 6 positions whatever the tile and
//! window lengths `m + r - 1 = 6`; only `A^T` (`m` rows) and `G` (`r` columns)
//! differ. A 1x3 window is F(4, 3): 4 outputs from 6 inputs, 6 multiplies instead
//! of 12. A 1x7 window is F(3, 4) on taps 0-3 (inputs 0-5) plus F(3, 4) on taps
//! 4-6 and a zero tap (inputs 4-9), summed in the transform domain like F(2, 3)'s
//! parts; at ∞ the second one's filter value is that zero tap, so position 5 needs
//! only the first (and input 9 is never read): 11 multiplies per 3 outputs and
//! input channel instead of 21 (F(2, 3): 10 per 2). Their terms grow as F(4x4,
//! 3x3)'s do in one dimension, about 3 times F(2, 3)'s (see the lowering rule).
//!
//! # The driver
//!
//! It walks the output tiles in chunks of a few times the L2 (see `chunk_floats`).
//! Per chunk it (1) transforms every input patch (adds only; borders
//! read as zeros, so no padded copy is made) into one image per position; then for
//! each group of output blocks (2) runs the positions' GEMMs with the microkernel
//! into small images and (3) transforms them back, adds the bias and the residual,
//! applies ReLU and stores the tile's pixels that lie inside the output. The
//! (chunk, group) pairs are dealt to the threads in runs, a slower thread's last
//! ones taken by the others: large maps split by chunks, small ones (a chunk or
//! two) by groups of output blocks. Each worker works in its own slot of the
//! scratch (see [`ParallelFor::worker`]).
//!
//! [`ParallelFor::worker`]: crate::parallel::ParallelFor::worker
//!
//! The transforms are written once over 16-lane blocks and compiled per tier (see
//! `crate::ops`), like [`crate::blocked`]. The transformed weights are
//! computed in f64 when packing ([`pack_winograd_weights`]).

pub(crate) mod scheme;
pub(crate) mod transforms;
pub(crate) mod weights;

pub use scheme::{ALL_SCHEMES, MAX_POSITIONS, Scheme, winograd_applies, winograd_scheme};
use transforms::{InputJob, MAX_OB, OutputJob, m_pos_stride, v_offset};
pub use weights::{
    pack_winograd_weights, unpack_winograd_2x2_weights, unpack_winograd_f2_weights, winograd_packed_len,
};

use crate::bands::Bands;
use crate::bands::BandsMut;
use crate::conv::op::{Conv2d, PackedConv, check};
use crate::dispatch::Kernels;
use crate::geometry::ConvGeometry;
use crate::geometry::{Activation, ConvShape};
use crate::layout::{BLOCK, Dims, Image, ImageMut, Layout};
use crate::microkernel::{RowWrap, TileAt, TileLayer, TileShapes, WeightPrefetch, choose_tile, chunk_taps};
use crate::parallel::{Claims, ParallelFor, Segments, SharedMut, WorkerSlots, for_each_band};

/// Floats of scratch a chunk fills at most (transformed input plus one group's
/// GEMM output), 2 MiB: the scratch is sized for it, whatever the CPU.
const MAX_CHUNK_FLOATS: usize = 512 * 1024;

/// Floats of scratch one chunk aims to fill on `kernels`' CPU: 4 times its L2, at
/// most [`MAX_CHUNK_FLOATS`]. A chunk's transformed weights serve only its tiles and
/// come from beyond the L2 for each of them, while its transformed input, re-read
/// for each group of output blocks, streams from the L3 in order; chunks of half
/// the L2 left each position's GEMM a few tile calls, waiting on its weights
/// (figures: `docs/winograd.md`).
fn chunk_floats(kernels: &Kernels) -> usize {
    (4 * kernels.l2_bytes / size_of::<f32>()).min(MAX_CHUNK_FLOATS)
}

/// Output tiles per chunk for `ci` input channels and `tiles` tiles: as many as fit
/// `budget` floats, from 8 to 128 (or all of them).
fn chunk_tiles(scheme: Scheme, ci: usize, tiles: usize, budget: usize) -> usize {
    let per_tile = BLOCK * (scheme.total_depth() * ci.div_ceil(BLOCK) + scheme.positions() * MAX_OB);
    (budget / per_tile).clamp(8, 128).min(tiles)
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

/// Output tiles per row and in all of an `oh x ow` output.
fn tile_counts(scheme: Scheme, oh: usize, ow: usize) -> (usize, usize) {
    let (th, tw) = scheme.tile();
    let tiles_w = ow.div_ceil(tw);
    (tiles_w, oh.div_ceil(th) * tiles_w)
}

/// How a layer of `ci` input channels and an `oh x ow` output is chunked for
/// `threads` threads, each with a scratch slot of its own, a chunk filling at most
/// `budget` floats. A smaller budget never takes a larger slot.
fn chunking(scheme: Scheme, ci: usize, oh: usize, ow: usize, threads: usize, budget: usize) -> Chunking {
    let tiles = tile_counts(scheme, oh, ow).1;
    let per_chunk = chunk_tiles(scheme, ci, tiles, budget);
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
    let c = chunking(scheme, input.c, oh, ow, threads, MAX_CHUNK_FLOATS);
    c.threads * c.slot_len
}

/// `op` by Winograd `scheme` (which must compute `op.geom`, see
/// [`Scheme::computes`]) on NCHW16c images in bands (see [`crate::bands`]; a plain
/// image is one band), into `out`. `op.weights` are packed by
/// [`pack_winograd_weights`] for `scheme`; `scratch` must hold
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
    let packed_len = winograd_packed_len(s, scheme);
    check("conv2d_winograd", &input, &w, packed_len, &geom, residual.as_ref(), &out.as_bands());
    let ch = chunking(scheme, s.ci, dout.h, dout.w, par.threads(), chunk_floats(kernels));
    let worker_slots = WorkerSlots::new(scratch, par, ch.slot_len, "conv2d_winograd");
    kernels.record_call();
    let split = out.split;
    if split.bands() == 1 {
        let layer = BandTiles::new(kernels, op, scheme, residual.map(|r| r.band(0)), &mut out.band(0), 0, ch);
        let items = Segments::new(layer.items, ch.threads);
        par.run(items.tasks(), &|task| {
            // SAFETY: taken once, inside this task.
            layer.run(items.claims(task), unsafe { worker_slots.mine(par) })
        });
    } else {
        for_each_band(out, par, &|t, mut band| {
            let (row0, res) = (split.rows(t).start, residual.map(|r| r.band(t)));
            let ch = Chunking { threads: 1, ..ch };
            let layer = BandTiles::new(kernels, op, scheme, res, &mut band, row0, ch);
            // SAFETY: taken once, inside this task.
            layer.run(Segments::new(layer.items, 1).claims(0), unsafe { worker_slots.mine(par) })
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
        let mk = &kernels.ops.conv;
        let per_chunk = ch.per_chunk.min(tiles);
        let groups = co_blocks.div_ceil(choose_tile(mk, co_blocks, per_chunk).0);
        let (per_chunk, chunks) = balanced_chunks(tiles, per_chunk, groups, threads);
        let (ob_tile, px_tile) = choose_tile(mk, co_blocks, per_chunk);
        assert!(ob_tile <= MAX_OB, "conv2d_winograd: microkernel tile wider than {MAX_OB} blocks");
        let k_blocks: [usize; MAX_POSITIONS] = std::array::from_fn(|p| scheme.depth(p) * ci_blocks);
        // Work items: (chunk, group of output blocks) pairs, chunk-major, dealt as
        // `Segments` (a segment per thread, the slower thread's last items taken by
        // the others); a task transforms the input of a chunk once for a run of its
        // items. Large maps split by chunks (each task owns whole chunks but one),
        // small ones by groups (a few chunks' transforms are repeated, which costs a
        // fraction of a percent, and each thread reads mostly its share of the
        // weights).
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
            k_blocks,
            v_at: std::array::from_fn(|p| v_offset(scheme, ci_blocks, per_chunk, p)),
            w_at: std::array::from_fn(|p| (0..p).map(|q| co_blocks * k_blocks[q] * BLOCK * BLOCK).sum()),
            // The per-position products sum over their inputs in the direct
            // convolution's chunks (a 1x1 layer's order).
            gemm_chunk: std::array::from_fn(|p| {
                chunk_taps(ConvShape { co: s.co, ci: s.ci * scheme.depth(p), kh: 1, kw: 1 })
            }),
            // Tasks of one band share its input (written by several threads).
            prefetch: threads > 1,
        }
    }

    /// The items `claims` hands out, in its worker's scratch slot `mine`.
    fn run(&self, mut claims: Claims, mine: &mut [f32]) {
        let (s, scheme, per_chunk, tiles) = (self.w.shape, self.scheme, self.per_chunk, self.tiles);
        let (ci_blocks, co_blocks, ob_tile, groups) = (s.ci_blocks(), s.co_blocks(), self.ob_tile, self.groups);
        let mk = &self.kernels.ops.conv;
        let mut shapes = TileShapes::default();
        let zeros = [0.0f32; MAX_OB * BLOCK];
        let (v, m) = mine.split_at_mut(self.ch.v_len);
        let mut transformed = None;
        while let Some(item) = claims.next() {
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
                unsafe { (self.kernels.ops.winograd_input)(&mut job) };
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
                // tile of each position would wait on memory (`docs/winograd.md`).
                let next = if p + 1 < scheme.positions() {
                    Some(slab(group, p + 1))
                } else {
                    claims.peek().map(|next| slab(next % groups, 0))
                };
                // The full tiles in one row call, then the partial one; each
                // fetches its share of the next weights.
                let m_tiles = n.div_ceil(self.px_tile);
                let full = n / self.px_tile;
                let layer = TileLayer {
                    in_pixel: BLOCK,
                    in_row: 0,
                    ci_blocks: self.k_blocks[p],
                    // Only the 3x3 schemes take a partial block, as the only one.
                    ci_tail: s.ci - (ci_blocks - 1) * BLOCK,
                    kh: 1,
                    kw: 1,
                    chunk: self.gemm_chunk[p],
                    w_block,
                    out_block: per_chunk * BLOCK,
                    relu: false,
                    prefetch_next: false,
                    prefetch_output: false,
                };
                let pieces = [(0, full, self.px_tile), (full, m_tiles, n - full * self.px_tile)];
                for (j0, j1, px) in pieces.into_iter().filter(|&(j0, j1, _)| j1 > j0) {
                    let px0 = j0 * self.px_tile;
                    let prefetch = next.map_or(WeightPrefetch::NONE, |(at, ob, q)| {
                        let start = self.w.weights.as_ptr().wrapping_add(at);
                        let k = self.k_blocks[q];
                        WeightPrefetch { start, stride: k * BLOCK * BLOCK, blocks: ob, lines: k * BLOCK }
                            .part(j0..j1, m_tiles)
                    });
                    let at = TileAt {
                        input: &v[self.v_at[p] + px0 * BLOCK..],
                        in_block: per_chunk * BLOCK,
                        weights: self.w.weights[self.w_at[p] + ob0 * w_block..].as_ptr(),
                        bias: zeros.as_ptr(),
                        residual: std::ptr::null(),
                        output: m_pos[px0 * BLOCK..].as_mut_ptr(),
                        ob,
                        px,
                        taps: (0, self.k_blocks[p]),
                        prefetch,
                        wrap: RowWrap::NONE,
                    };
                    // SAFETY: the tier runs on this CPU. Reads: input blocks
                    // 0..k_blocks[p] of position p's image, pixels px0.. up to n
                    // <= per_chunk; weights blocks ob0..ob0+ob of position p; ob*16
                    // zeros of bias. Writes: blocks 0..ob <= MAX_OB of m_pos,
                    // pixels px0.. up to n, all inside the slices taken above.
                    unsafe { layer.run(mk, at, j1 - j0, &mut shapes) };
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
            unsafe { (self.kernels.ops.winograd_output)(&job) };
        }
        self.kernels.record_tiles(shapes);
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
                    for scheme in ALL_SCHEMES {
                        let c = chunking(scheme, ci, oh, ow, threads, MAX_CHUNK_FLOATS);
                        let tiles = tile_counts(scheme, oh, ow).1;
                        assert!(c.per_chunk >= 1 && c.per_chunk <= 128 && c.threads >= 1 && c.threads <= threads);
                        // A CPU with a smaller L2 fits its chunks in the same scratch.
                        for budget in [1, 16 * 1024, 64 * 1024] {
                            assert!(chunking(scheme, ci, oh, ow, threads, budget).slot_len <= c.slot_len);
                        }
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
