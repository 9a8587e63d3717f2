//! Direct convolution on NCHW16c images: the ISA-neutral driver.
//!
//! The driver pads the input into scratch when the window has padding (so every
//! tap of every tile is in bounds and the microkernels never branch on the border),
//! then walks the output in tiles of `ob` output blocks x `px` pixels of one row and
//! hands each tile to the tier's microkernel. A 1x1 stride-1 convolution has no row
//! structure to respect, so its whole image is one long row.

use std::ops::Range;

use crate::bands::{Bands, BandsMut, MAX_BANDS, RowSplit};
use crate::dispatch::Kernels;
use crate::pack::ConvShape;
use crate::parallel::{ParallelFor, Sequential, SharedMut, WorkerSlots, for_each_band};
use crate::{Activation, BLOCK, ConvGeometry, Dims, Image, ImageMut, Layout};

/// One output tile's worth of pointers and strides, in `f32` elements.
///
/// For output block `b < ob`, pixel `p < px`, input block `ib`, tap `(ky, kx)` and
/// input lane `i`, the microkernel sums
/// `input[ib * in_block + ky * in_row + kx * BLOCK + p * in_pixel + i]` times
/// `weights[b * w_block + t * BLOCK * BLOCK + i * BLOCK + lane]`, where
/// `t = (ib * kh + ky) * kw + kx` numbers the tile's taps (a tap: one input block at
/// one window position), into `output[b * out_block + p * BLOCK + lane]`, plus
/// `bias[b * BLOCK + lane]`, plus `residual` (same strides as `output`) if it is not
/// null, then applies ReLU if asked.
///
/// The sum runs in chunks of `chunk` taps (see [`chunk_taps`]), the same on every
/// tier: each chunk accumulates from zero in registers, and its store adds the
/// chunk to the partial sum so far, which lives in `output` itself. The first chunk
/// adds the bias instead (so `output` is written before it is read, and never read
/// outside the tile); the last one also adds the residual and applies the
/// activation. The rounding error of an output then grows with the chunk length
/// plus the number of chunks rather than with the whole reduction length.
#[derive(Clone, Copy, Debug)]
pub struct TileArgs {
    /// Input at (block 0, first tap row, first pixel's first tap column).
    pub input: *const f32,
    /// Step between output pixels (stride x 16).
    pub in_pixel: usize,
    /// Step between tap rows (input width x 16).
    pub in_row: usize,
    /// Step between input channel blocks.
    pub in_block: usize,
    /// Input channel blocks.
    pub ci_blocks: usize,
    /// Real lanes in the last input block (1..=16). Lanes past it hold zeros, so a
    /// kernel may ignore this and read all 16; skipping them saves the 13 wasted
    /// lanes of a 3-channel image stem.
    pub ci_tail: usize,
    /// Tap rows.
    pub kh: usize,
    /// Tap columns.
    pub kw: usize,
    /// Taps per chunk of the sum (at least 1).
    pub chunk: usize,
    /// Packed weights of the tile's first output block.
    pub weights: *const f32,
    /// Step between output blocks in the packed weights.
    pub w_block: usize,
    /// Bias of the tile's first output block (16 per block).
    pub bias: *const f32,
    /// Shortcut to add before the activation, or null.
    pub residual: *const f32,
    /// Output at (first block, first pixel).
    pub output: *mut f32,
    /// Step between output blocks (output height x width x 16).
    pub out_block: usize,
    /// Apply ReLU in the store.
    pub relu: bool,
    /// Prefetch, tap by tap, what the next tile along the row reads (the input `px`
    /// pixels on): the direct convolutions walk their rows tile by tile, and their
    /// input blocks are too many streams for the hardware prefetcher. Set by the
    /// direct drivers; Winograd's GEMMs read scratch they just wrote and leave it off.
    /// Only the x86 tiers act on it. A prefetch never faults, so it may point past
    /// the input.
    pub prefetch_next: bool,
    /// Prefetch for writing, once per tile, the output lines the next tile along the
    /// row stores. When threads share the layers, the lines a step writes were
    /// last held by whichever core used that part of the arena before; taking them
    /// a tile ahead hides the wait for the other core to let go of them (measured
    /// on inception_v3 at 2 threads: 1.5-1.8% faster, the stem's direct layers 4%).
    /// On one thread it hides the miss to memory of a layer whose output is large
    /// for its arithmetic (the weights streamed on every run evict the arena from
    /// cache): the 3-channel stems 7-30% faster. Only the x86 tiers act on it, and
    /// only where the CPU has PREFETCHW.
    pub prefetch_output: bool,
    /// The taps this call sums, `start..end` of `0..ci_blocks * kh * kw`, both on
    /// the chunk grid (multiples of `chunk`, or the last tap): a driver may compute
    /// a tile in several calls, in order, each adding its chunks to the partial sums
    /// in `output`. The first call (from tap 0) adds the bias, the last (to the last
    /// tap) the residual and activation, so the sums are those of one call.
    pub taps: (usize, usize),
    /// Weights a later call will read, to bring into cache while this one computes.
    pub prefetch: WeightPrefetch,
}

/// `blocks` runs of `lines` cache lines, `stride` floats apart from `start`: the
/// weights of the next piece of a layer, fetched a little per tap so that the
/// fetch from memory overlaps the arithmetic rather than stalling the first tile to
/// use them. Only the x86 tiers act on it; a prefetch never faults, so any address
/// will do. `blocks == 0` fetches nothing.
#[derive(Clone, Copy, Debug)]
pub struct WeightPrefetch {
    /// First line of the first run.
    pub start: *const f32,
    /// Floats between runs.
    pub stride: usize,
    /// Runs.
    pub blocks: usize,
    /// Cache lines per run.
    pub lines: usize,
}

impl WeightPrefetch {
    /// Nothing to fetch.
    pub const NONE: WeightPrefetch = WeightPrefetch { start: std::ptr::null(), stride: 0, blocks: 0, lines: 0 };

    /// Share `j` of `m` of fetching `blocks` runs of `lines` cache lines, `stride`
    /// floats apart from `start`: the calls of one piece of work split the next
    /// piece's weights evenly.
    pub(crate) fn share(start: *const f32, stride: usize, blocks: usize, lines: usize, j: usize, m: usize) -> Self {
        let (l0, l1) = (j * lines / m, (j + 1) * lines / m);
        WeightPrefetch { start: start.wrapping_add(l0 * BLOCK), stride, blocks, lines: l1 - l0 }
    }
}

/// A tier's convolution microkernel and its largest tile.
#[derive(Clone, Copy, Debug)]
pub struct ConvMicrokernel {
    /// Name: op, tile and ISA.
    pub name: &'static str,
    /// Largest number of pixels per tile for each number of output blocks:
    /// `max_px[ob]` (0 where `ob` blocks are not supported; `max_px[0]` is 0). The
    /// kernel computes any `ob x px` tile within these bounds; the driver picks the
    /// shape per layer.
    pub max_px: [usize; 5],
    /// Computes one tile of `ob` blocks and `px <= max_px[ob]` pixels.
    ///
    /// # Safety
    /// Every address the [`TileArgs`] formula reaches must be in bounds (read-only
    /// for inputs, writable for `output`), and the CPU must support the tier.
    pub tile: unsafe fn(args: &TileArgs, ob: usize, px: usize),
}

/// The fewest products an output accumulates in a register before the chunk is
/// added to its partial sum in memory. The rounding error of a float32 sum grows
/// with the length of the chain that accumulates it: one register chain over a
/// whole reduction (hundreds to thousands of terms) put the Inception models 1.3
/// to 1.7 times further from a float64 evaluation than ONNX Runtime, whose MLAS
/// kernels sum one input block (128 to 144 terms) per chunk. Each chunk costs a
/// load, an add and a store per accumulator, a little more than an FMA: measured
/// on Inception v3 (AVX-512, `incept peak`), 32-term chunks cost about 5% of the
/// convolution throughput, 48 from 1% to 3% (by layer kind), 128 about 1%; 48
/// brings the error to 0.64 to 0.85 times ONNX Runtime's, 64 only to 0.75 to 1.
pub const CHUNK_TERMS: usize = 48;

/// Taps per chunk for a convolution of `shape`. A chunk of `c` products has a
/// rounding error that grows with `c`, and the sum of the `K / c` chunks one that
/// grows with `K / c`; `c = sqrt(K)` balances the two, and [`CHUNK_TERMS`] bounds
/// the cost from below: `c = max(CHUNK_TERMS, sqrt(K))` real products (an input
/// with fewer than 16 channels has that many per tap), at least one tap, spread
/// evenly over the fewest chunks. Depends on the shape only, so every tier and tile
/// shape sums in the same order.
pub fn chunk_taps(shape: ConvShape) -> usize {
    let taps = shape.ci_blocks() * shape.kh * shape.kw;
    let terms = CHUNK_TERMS.max((shape.ci * shape.kh * shape.kw).isqrt());
    let per = (terms / shape.ci.clamp(1, BLOCK)).max(1);
    taps.div_ceil(taps.div_ceil(per).max(1)).max(1)
}

/// The taps of a tile, in order: each tap's input (block `ib`, row `ky`, column
/// `kx` of the tile's first pixel), its packed weights for the first output block,
/// and whether it is a whole block (all 16 lanes real) rather than the last,
/// partial one. A microkernel takes its chunks from one `Taps` with `take`.
pub(crate) struct Taps<'a> {
    a: &'a TileArgs,
    t: usize,
    end: usize,
    ib: usize,
    ky: usize,
    kx: usize,
}

impl<'a> Taps<'a> {
    /// The taps `a.taps` of the tile `a`.
    #[inline(always)]
    pub(crate) fn new(a: &'a TileArgs) -> Self {
        let (t, end) = a.taps;
        if t == 0 {
            // Most calls: no divisions, which small tiles (a 3-channel stem's) feel.
            return Taps { a, t, end, ib: 0, ky: 0, kx: 0 };
        }
        let (ib, k) = (t / (a.kh * a.kw), t % (a.kh * a.kw));
        Taps { a, t, end, ib, ky: k / a.kw, kx: k % a.kw }
    }
}

impl Iterator for Taps<'_> {
    type Item = (*const f32, *const f32, bool);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.t == self.end {
            return None;
        }
        let a = self.a;
        // Plain offsets: the pointers are only dereferenced by the microkernels,
        // within the TileArgs contract.
        let inp = a.input.wrapping_add(self.ib * a.in_block + self.ky * a.in_row + self.kx * BLOCK);
        let w = a.weights.wrapping_add(self.t * BLOCK * BLOCK);
        let whole = self.ib + 1 < a.ci_blocks || a.ci_tail == BLOCK;
        self.t += 1;
        self.kx += 1;
        if self.kx == a.kw {
            self.kx = 0;
            self.ky += 1;
            if self.ky == a.kh {
                self.ky = 0;
                self.ib += 1;
            }
        }
        Some((inp, w, whole))
    }
}

/// Scratch `f32` a convolution of an input of shape `input` needs (the padded copy).
pub fn conv2d_scratch_len(input: Dims, geom: &ConvGeometry) -> usize {
    let p = geom.pad;
    if p == Default::default() {
        return 0;
    }
    let padded = Dims::new(input.c, input.h + p.top + p.bottom, input.w + p.left + p.right);
    Layout::Nchw16c.image_len(padded)
}

/// Packed weights and bias of a convolution.
#[derive(Clone, Copy, Debug)]
pub struct PackedConv<'a> {
    /// Shape of the original weights.
    pub shape: ConvShape,
    /// Weights in the blocked layout of [`crate::pack`].
    pub weights: &'a [f32],
    /// Bias padded to whole blocks.
    pub bias: &'a [f32],
}

/// One convolution, `out = act(conv(input) + bias + residual)`: its operands and
/// window. The entry points ([`conv2d`], [`conv2d_image`] and
/// [`crate::winograd::conv2d_winograd`]) take it with the output, the scratch and
/// the threads.
#[derive(Clone, Copy, Debug)]
pub struct Conv2d<'a> {
    /// The input image, in bands (a plain image converts with `into`).
    pub input: Bands<'a>,
    /// Packed weights and bias: by [`crate::pack::pack_conv_weights`] for the direct
    /// convolutions, by [`crate::pack::pack_winograd_weights`] for Winograd.
    pub weights: PackedConv<'a>,
    /// The window.
    pub geom: ConvGeometry,
    /// A shortcut to add before the activation, in the output's bands.
    pub residual: Option<Bands<'a>>,
    /// The activation applied last.
    pub act: Activation,
}

/// Checks a convolution's operands (in any bands; a residual in the output's)
/// against its packed weights (`packed_len` floats of them) and window; `what`
/// names the kernel in the panic. Callers check the input's layout.
pub(crate) fn check_conv(
    what: &str,
    input: &Bands,
    w: &PackedConv,
    packed_len: usize,
    geom: &ConvGeometry,
    residual: Option<&Bands>,
    out: &Bands,
) {
    let s = w.shape;
    assert!(out.layout == Layout::Nchw16c, "{what}: output layout");
    assert!(input.dims.c == s.ci && out.dims.c == s.co && (geom.kh, geom.kw) == (s.kh, s.kw), "{what}: shape");
    assert_eq!(geom.output_hw(input.dims.h, input.dims.w), Some((out.dims.h, out.dims.w)), "{what}: size");
    assert!(w.weights.len() == packed_len && w.bias.len() == s.packed_bias_len(), "{what}: packing");
    if let Some(r) = residual {
        assert!(r.dims == out.dims && r.layout == Layout::Nchw16c && r.split == out.split, "{what}: residual");
    }
}

/// What every tile of one direct convolution shares: its weights, epilogue, output
/// and input strides. [`LayerTiles::run`] adds the input position and the tile.
struct LayerTiles<'a> {
    mk: &'a ConvMicrokernel,
    w: &'a PackedConv<'a>,
    residual: Option<&'a [f32]>,
    out: SharedMut,
    out_len: usize,
    out_block: usize,
    w_block: usize,
    in_pixel: usize,
    in_row: usize,
    in_block: usize,
    ci_blocks: usize,
    ci_tail: usize,
    chunk: usize,
    /// Taps of the whole sum.
    taps: usize,
    relu: bool,
    prefetch_next: bool,
    prefetch_output: bool,
}

/// The taps one call of a tile sums, and the weights it prefetches meanwhile.
#[derive(Clone, Copy)]
struct Piece {
    taps: (usize, usize),
    prefetch: WeightPrefetch,
}

impl<'a> LayerTiles<'a> {
    /// The tiles of `op` (its input's tap rows and channel blocks `in_row` and
    /// `in_block` floats apart; `residual` in `out`'s rows) into `out`, on `par`'s
    /// threads.
    fn new(
        kernels: &'a Kernels,
        op: &'a Conv2d<'a>,
        residual: Option<Image<'a>>,
        out: &mut ImageMut,
        in_row: usize,
        in_block: usize,
        par: &dyn ParallelFor,
    ) -> Self {
        let (w, geom, act) = (&op.weights, &op.geom, op.act);
        let s = w.shape;
        LayerTiles {
            mk: &kernels.conv,
            w,
            residual: residual.map(|r| r.data),
            out: SharedMut(out.data.as_mut_ptr()),
            out_len: out.data.len(),
            out_block: out.dims.h * out.dims.w * BLOCK,
            w_block: s.ci_blocks() * s.kh * s.kw * BLOCK * BLOCK,
            in_pixel: geom.stride_w * BLOCK,
            in_row,
            in_block,
            ci_blocks: s.ci_blocks(),
            ci_tail: s.ci - (s.ci_blocks() - 1) * BLOCK,
            chunk: chunk_taps(s),
            taps: s.ci_blocks() * s.kh * s.kw,
            relu: act == Activation::Relu,
            // The input lines to fetch are another core's only when threads share
            // the layers; alone, these prefetches cost about 1% (inception_v3).
            prefetch_next: par.threads() > 1,
            prefetch_output: kernels.prefetchw,
        }
    }

    /// Computes the tile of `ob` output blocks from `ob0` and `px` pixels from pixel
    /// `out_px` of each output block, reading the input from `input`.
    ///
    /// # Safety
    /// Every input element the [`TileArgs`] formula reaches from `input` (with this
    /// layer's strides, blocks and window) must be readable, and no other thread may
    /// write this tile meanwhile. Weights, bias, residual and output are checked here
    /// (their lengths by [`check_conv`]).
    #[inline]
    unsafe fn run(&self, input: *const f32, ob0: usize, ob: usize, out_px: usize, px: usize) {
        // SAFETY: forwarded.
        unsafe { self.run_from(input, self.in_block, ob0, ob, out_px, px, self.whole()) }
    }

    /// Every tap, nothing to prefetch: a tile in one call.
    fn whole(&self) -> Piece {
        Piece { taps: (0, self.taps), prefetch: WeightPrefetch::NONE }
    }

    /// Share `j` of `m` of prefetching the weights of output blocks `ob0..ob0 + ob`,
    /// taps `taps`.
    fn prefetch_share(&self, ob0: usize, ob: usize, taps: (usize, usize), j: usize, m: usize) -> WeightPrefetch {
        // A tap's weights for one block: 16 rows of 16 floats, a cache line each.
        let start = self.w.weights.as_ptr().wrapping_add(ob0 * self.w_block + taps.0 * BLOCK * BLOCK);
        WeightPrefetch::share(start, self.w_block, ob, (taps.1 - taps.0) * BLOCK, j, m)
    }

    /// [`run`](Self::run) from an input whose channel blocks are `in_block` floats
    /// apart (a band of rows, or a staged window, rather than the layer's input),
    /// summing the taps of `piece` (see [`TileArgs::taps`]).
    ///
    /// # Safety
    /// As [`run`](Self::run), with `in_block` for the input's block stride; the
    /// pieces of one tile must be run in order, by one thread.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    unsafe fn run_from(
        &self,
        input: *const f32,
        in_block: usize,
        ob0: usize,
        ob: usize,
        out_px: usize,
        px: usize,
        piece: Piece,
    ) {
        let s = self.w.shape;
        let out_off = ob0 * self.out_block + out_px * BLOCK;
        assert!(
            out_off + (ob - 1) * self.out_block + px * BLOCK <= self.out_len,
            "convolution: tile outside the output"
        );
        let (t0, t1) = piece.taps;
        assert!(t0 < t1 && t1 <= self.taps && t0 % self.chunk == 0, "convolution: taps off the chunk grid");
        assert!(t1 == self.taps || t1 % self.chunk == 0, "convolution: taps off the chunk grid");
        let args = TileArgs {
            input,
            in_pixel: self.in_pixel,
            in_row: self.in_row,
            in_block,
            ci_blocks: self.ci_blocks,
            ci_tail: self.ci_tail,
            kh: s.kh,
            kw: s.kw,
            chunk: self.chunk,
            weights: self.w.weights[ob0 * self.w_block..].as_ptr(),
            w_block: self.w_block,
            bias: self.w.bias[ob0 * BLOCK..].as_ptr(),
            residual: self.residual.map_or(std::ptr::null(), |r| r[out_off..].as_ptr()),
            // SAFETY: out_off is inside the output (asserted just above).
            output: unsafe { self.out.get().add(out_off) },
            out_block: self.out_block,
            relu: self.relu,
            prefetch_next: self.prefetch_next,
            prefetch_output: self.prefetch_output,
            taps: piece.taps,
            prefetch: piece.prefetch,
        };
        // SAFETY: `mk` comes from a `Kernels`, which proves the tier runs on this CPU.
        // Input reads are the caller's contract; weights, bias, residual and output
        // stay inside blocks ob0..ob0+ob of their images (whose lengths `check_conv`
        // asserted, and the output's end just above).
        unsafe { (self.mk.tile)(&args, ob, px) };
    }
}

/// `op` on an input and residual in one band each, into `out`, the output tiles
/// spread over `par`'s threads. `scratch` must hold [`conv2d_scratch_len`] values.
fn one_band(kernels: &Kernels, op: &Conv2d, out: &mut ImageMut, scratch: &mut [f32], par: &dyn ParallelFor) {
    let (input, w, geom) = (op.input.band(0), &op.weights, &op.geom);
    let residual = op.residual.map(|r| r.band(0));
    let s = w.shape;
    assert!(input.layout == Layout::Nchw16c, "conv2d: input layout");
    check_conv("conv2d", &op.input, w, s.packed_len(), geom, op.residual.as_ref(), &out.as_image().into());
    kernels.record_call();

    // Padding: copy into scratch with a zero border, then convolve without padding.
    let input = if geom.pad == Default::default() {
        input
    } else {
        let len = conv2d_scratch_len(input.dims, geom);
        let p = geom.pad;
        let d = input.dims;
        let pd = Dims::new(d.c, d.h + p.top + p.bottom, d.w + p.left + p.right);
        let padded = &mut scratch[..len];
        for (src, dst) in input.data.chunks_exact(d.h * d.w * BLOCK).zip(padded.chunks_exact_mut(pd.h * pd.w * BLOCK)) {
            dst[..p.top * pd.w * BLOCK].fill(0.0);
            dst[(p.top + d.h) * pd.w * BLOCK..].fill(0.0);
            for y in 0..d.h {
                let row = &mut dst[(p.top + y) * pd.w * BLOCK..][..pd.w * BLOCK];
                row[..p.left * BLOCK].fill(0.0);
                row[p.left * BLOCK..(p.left + d.w) * BLOCK].copy_from_slice(&src[y * d.w * BLOCK..][..d.w * BLOCK]);
                row[(p.left + d.w) * BLOCK..].fill(0.0);
            }
        }
        Image::new(&scratch[..len], pd, Layout::Nchw16c)
    };
    let (di, dout) = (input.dims, out.dims);

    // Rows of output pixels: a 1x1 stride-1 convolution is one row of h*w pixels.
    let pointwise = s.kh == 1 && s.kw == 1 && geom.stride_h == 1 && geom.stride_w == 1;
    let (rows, row_len) = if pointwise { (1, dout.h * dout.w) } else { (dout.h, dout.w) };

    let mk = &kernels.conv;
    let co_blocks = s.co_blocks();
    let tiles = LayerTiles::new(kernels, op, residual, out, di.w * BLOCK, di.h * di.w * BLOCK, par);
    // One tile: `ob` output blocks from `ob0`, `px` pixels from `ox0` of row `oy`.
    let tile = |ob0: usize, ob: usize, oy: usize, ox0: usize, px: usize, piece: Piece| {
        let in_off = if pointwise { ox0 * BLOCK } else { (oy * geom.stride_h * di.w + ox0 * geom.stride_w) * BLOCK };
        // SAFETY: the last input read is block ci_blocks-1, row (oy*sh + kh-1),
        // column ((ox0+px-1)*sw + kw-1) of the (padded by now) input, inside it
        // because the output size was checked against the geometry. Tiles are
        // disjoint, so concurrent tiles never write the same element; each task
        // runs the pieces of its tiles in order.
        unsafe {
            tiles.run_from(input.data[in_off..].as_ptr(), tiles.in_block, ob0, ob, oy * row_len + ox0, px, piece)
        };
    };

    let (ob_tile, px_tile) = choose_tile(mk, co_blocks, row_len);
    let n_taps = tiles.taps;
    let k_block = k_block_taps(n_taps, tiles.chunk, dout.h * dout.w);
    let k_taps = k_block.unwrap_or(n_taps);

    // Work units: a row of tiles, or for pointwise layers one tile of the long row,
    // for one group of output blocks. The units are ordered group-major and dealt to
    // the tasks in runs of equal work (a unit's work is its group's block count), so
    // that each thread keeps reusing the same weights and none waits on another's
    // leftover. A task walks its units of a group once per block of `k_taps` taps,
    // prefetching the next block's weights as it goes.
    let groups = co_blocks.div_ceil(ob_tile);
    let units = if pointwise { row_len.div_ceil(px_tile) } else { rows };
    let tiles_per_unit = if pointwise { 1 } else { row_len.div_ceil(px_tile) };
    let work = co_blocks * units;
    let tasks = (TASKS_PER_THREAD * par.threads()).min(groups * units);
    par.run(tasks, &|t| {
        let (lo, hi) = (t * work / tasks, (t + 1) * work / tasks);
        // Group g's units start at work ob0 * units and take ob each; this task
        // takes those that start in lo..hi.
        let group_units = |g: usize| {
            let ob0 = g * ob_tile;
            let ob = ob_tile.min(co_blocks - ob0);
            let first = |w: usize| w.saturating_sub(ob0 * units).div_ceil(ob).min(units);
            (ob0, ob, first(lo)..first(hi))
        };
        for g in 0..groups {
            let (ob0, ob, us) = group_units(g);
            if us.is_empty() {
                continue;
            }
            let m = us.len() * tiles_per_unit;
            for k0 in (0..n_taps).step_by(k_taps) {
                let taps = (k0, (k0 + k_taps).min(n_taps));
                // The weights this task reads next, in blocks: the group's next block
                // of taps, or the next group's first.
                let next = if k_block.is_none() {
                    // Large maps: each weight serves enough pixels.
                    None
                } else if taps.1 < n_taps {
                    Some((ob0, ob, (taps.1, (taps.1 + k_taps).min(n_taps))))
                } else if g + 1 < groups {
                    let (ob0, ob, us) = group_units(g + 1);
                    (!us.is_empty()).then_some((ob0, ob, (0, k_taps.min(n_taps))))
                } else {
                    None
                };
                let piece = |j: usize| Piece {
                    taps,
                    prefetch: next
                        .map_or(WeightPrefetch::NONE, |(ob0, ob, taps)| tiles.prefetch_share(ob0, ob, taps, j, m)),
                };
                for (i, u) in us.clone().enumerate() {
                    if pointwise {
                        let ox0 = u * px_tile;
                        tile(ob0, ob, 0, ox0, px_tile.min(row_len - ox0), piece(i));
                    } else {
                        for (x, ox0) in (0..row_len).step_by(px_tile).enumerate() {
                            tile(ob0, ob, u, ox0, px_tile.min(row_len - ox0), piece(i * tiles_per_unit + x));
                        }
                    }
                }
            }
        }
    });
}

/// Output pixels up to which a convolution sums its taps in blocks (see
/// [`k_block_taps`]): 17x17 and 8x8 maps. On 35x35 maps blocks measured no faster.
const K_BLOCK_MAX_PIXELS: usize = 20 * 20;

/// Taps per block, at most (rounded down to the chunk grid): 24 taps of 4 output
/// blocks are 96 KiB of weights. Measured on inception_v3 (one thread, blocks of 6
/// to 48 taps): 12 to 36 are alike, 6 pays too many calls, 48 prefetches too far.
const K_BLOCK_TAPS: usize = 24;

/// Taps per block (on the chunk grid) for a layer of `n_taps` taps in chunks of
/// `chunk` and `pixels` output pixels, or `None` for a large map, which takes every
/// tap in one call and prefetches nothing. A small map uses each weight only a few
/// dozen times, so the first tile to read a group's weights would wait for them to
/// stream from memory faster than memory delivers (inception_v3's 8x8 layers ran
/// 22% slower in the model than alone, their weights in cache). Walking the tiles
/// once per block of taps instead uses each block while it is in cache, and
/// prefetching the next block (or the next group's first) as it goes overlaps the
/// fetch with the arithmetic (without the prefetch, blocks alone are slower). The
/// blocks are as even as the chunk grid allows: a short last block (4 taps after
/// 24) leaves too little arithmetic to hide the next group's fetch.
pub fn k_block_taps(n_taps: usize, chunk: usize, pixels: usize) -> Option<usize> {
    if pixels > K_BLOCK_MAX_PIXELS {
        return None;
    }
    let blocks = n_taps.div_ceil((K_BLOCK_TAPS / chunk).max(1) * chunk);
    Some(n_taps.div_ceil(blocks).div_ceil(chunk) * chunk)
}

/// Input rows (from `lo`, negative above the image, to `hi`, past its end when
/// padded below) that output rows `rows` of a window read.
fn window_rows(rows: &Range<usize>, geom: &ConvGeometry) -> (isize, isize) {
    let lo = (rows.start * geom.stride_h) as isize - geom.pad.top as isize;
    let hi = ((rows.end - 1) * geom.stride_h + geom.kh) as isize - geom.pad.top as isize;
    (lo, hi)
}

/// The input band and its first row that output row `oy`'s whole window lies in,
/// if it lies inside one band (and the image).
fn window_band(oy: usize, geom: &ConvGeometry, split: &RowSplit) -> Option<(usize, usize)> {
    let (lo, hi) = window_rows(&(oy..oy + 1), geom);
    if lo < 0 || hi as usize > split.height() {
        return None;
    }
    let t = split.band_of(lo as usize);
    let r = split.rows(t);
    (hi as usize <= r.end).then_some((t, lo as usize - r.start))
}

/// The output rows among `rows` of an unpadded window whose window crosses an
/// input band boundary: [`RowTiles`] reads copies of their windows (staged), and
/// the other rows' windows in place.
fn staged_rows(geom: ConvGeometry, in_split: RowSplit, rows: Range<usize>) -> impl Iterator<Item = usize> {
    rows.filter(move |&oy| window_band(oy, &geom, &in_split).is_none())
}

/// Scratch a convolution in bands (see [`conv2d`]) of an input of shape
/// `input` split into `in_split` to an output split into `out_split` needs:
/// `(floats of the step's own scratch, floats per thread of par)`, one of them 0.
/// Its own for a padded copy of the whole input (when the output is one band);
/// per thread for the rows each output band reads (padded), or for the windows
/// that cross input band boundaries (unpadded).
pub fn conv2d_bands_scratch_len(
    input: Dims,
    in_split: RowSplit,
    geom: &ConvGeometry,
    out_split: RowSplit,
) -> (usize, usize) {
    let padded = geom.pad != Default::default();
    if out_split.bands() == 1 && (in_split.bands() == 1 || padded) {
        return (conv2d_scratch_len(input, geom), 0);
    }
    let block_len = input.c.div_ceil(BLOCK) * BLOCK;
    let p = geom.pad;
    let per_band = (0..out_split.bands()).map(|t| {
        let rows = out_split.rows(t);
        if padded {
            let (lo, hi) = window_rows(&rows, geom);
            (hi - lo) as usize * (input.w + p.left + p.right) * block_len
        } else {
            staged_rows(*geom, in_split, rows).count() * geom.kh * input.w * block_len
        }
    });
    (0, per_band.max().unwrap_or(0))
}

/// Copies input rows `lo..hi` (negative above the image, past it below: zeros)
/// of every channel block of `input` into `dst` as a plain NCHW16c image of
/// `hi - lo` rows, with `left` and `right` zero columns.
fn stage_rows(input: &Bands, lo: isize, hi: isize, left: usize, right: usize, dst: &mut [f32]) -> Dims {
    let d = input.dims;
    let (rows, width) = ((hi - lo) as usize, d.w + left + right);
    let staged = Dims::new(d.c, rows, width);
    let dst = &mut dst[..Layout::Nchw16c.image_len(staged)];
    for (cb, plane) in dst.chunks_exact_mut(rows * width * BLOCK).enumerate() {
        for (r, row) in plane.chunks_exact_mut(width * BLOCK).enumerate() {
            let y = lo + r as isize;
            if y < 0 || y as usize >= d.h {
                row.fill(0.0);
                continue;
            }
            let (band, by) = input.row(y as usize);
            let src = &band.data[(cb * band.dims.h + by) * d.w * BLOCK..][..d.w * BLOCK];
            row[..left * BLOCK].fill(0.0);
            row[left * BLOCK..(left + d.w) * BLOCK].copy_from_slice(src);
            row[(left + d.w) * BLOCK..].fill(0.0);
        }
    }
    staged
}

/// Direct convolution `op` on NCHW16c images in bands (see [`crate::bands`]; a
/// plain image is one band), with the tier's microkernel, into `out`. With several
/// output bands, one task per band computes its rows, writing only that band: a
/// padded window first copies the rows the band reads, zero-padded, into the
/// worker's slot of `scratch`; an unpadded one reads its input bands in place and
/// copies only the windows that cross a band boundary. Into one output band, the
/// tiles are spread over `par`'s threads by output channels (each thread then
/// reads only its share of the weights): an unpadded window reads the input bands
/// in place likewise, a padded one from a padded copy of the whole input.
/// `scratch` must hold what [`conv2d_bands_scratch_len`] asks: the step's own, or
/// that much per thread of `par`, split evenly into one slot per worker. The same
/// tiles and sums in every case, so the same bits.
pub fn conv2d(kernels: &Kernels, op: &Conv2d, out: &mut BandsMut, scratch: &mut [f32], par: &dyn ParallelFor) {
    let Conv2d { input, weights: w, geom, residual, .. } = *op;
    let geom = &geom;
    let s = w.shape;
    assert!(input.layout == Layout::Nchw16c, "conv2d: input layout");
    check_conv("conv2d", &input, &w, s.packed_len(), geom, residual.as_ref(), &out.as_bands());
    let (own, per_worker) = conv2d_bands_scratch_len(input.dims, input.split, geom, out.split);
    let padded = geom.pad != Default::default();
    let unpadded = ConvGeometry { pad: Default::default(), ..*geom };
    if out.split.bands() == 1 {
        let res = residual.map(|r| r.band(0));
        let out = &mut out.band(0);
        if input.split.bands() == 1 {
            return one_band(kernels, op, out, scratch, par);
        }
        if padded {
            // The whole input, padded, then the tiles of an unpadded window.
            let (top, bottom) = (geom.pad.top as isize, (input.dims.h + geom.pad.bottom) as isize);
            let staged = stage_rows(&input, -top, bottom, geom.pad.left, geom.pad.right, &mut scratch[..own]);
            let staged = Image::new(&scratch[..own], staged, Layout::Nchw16c);
            return one_band(kernels, &in_one_band(op, staged, unpadded, 0), out, &mut [], par);
        }
        let slots = WorkerSlots::new(scratch, par, per_worker, "conv2d");
        let rows = RowTiles::new(kernels, op, res, out, 0..out.dims.h, par);
        let units = rows.units();
        let tasks = (TASKS_PER_THREAD * par.threads()).min(units).max(1);
        par.run(tasks, &|t| {
            // SAFETY: taken once, inside this task.
            let slot = unsafe { slots.mine(par) };
            rows.run(t * units / tasks..(t + 1) * units / tasks, slot)
        });
        return;
    }
    let slots = WorkerSlots::new(scratch, par, per_worker, "conv2d");
    let pointwise = s.kh == 1 && s.kw == 1 && geom.stride_h == 1 && geom.stride_w == 1 && !padded;
    let out_split = out.split;
    for_each_band(out, par, &|t, mut band| {
        let rows = out_split.rows(t);
        // SAFETY: taken once, inside this task.
        let slot = unsafe { slots.mine(par) };
        if padded {
            let (lo, hi) = window_rows(&rows, geom);
            let staged = stage_rows(&input, lo, hi, geom.pad.left, geom.pad.right, slot);
            let staged = Image::new(&slot[..Layout::Nchw16c.image_len(staged)], staged, Layout::Nchw16c);
            one_band(kernels, &in_one_band(op, staged, unpadded, t), &mut band, &mut [], &Sequential);
        } else if pointwise && input.split.bands() > t && input.split.rows(t) == rows {
            one_band(kernels, &in_one_band(op, input.band(t), *geom, t), &mut band, &mut [], &Sequential);
        } else {
            let res = residual.map(|r| r.band(t));
            let tiles = RowTiles::new(kernels, op, res, &mut band, rows, &Sequential);
            tiles.run(0..tiles.units(), slot);
        }
    });
}

/// `op` on `input`, an image in one band, with `geom`, and output band `t`'s residual.
fn in_one_band<'b>(op: &Conv2d<'b>, input: Image<'b>, geom: ConvGeometry, t: usize) -> Conv2d<'b> {
    Conv2d { input: input.into(), geom, residual: op.residual.map(|r| r.band(t).into()), ..*op }
}

/// The tiles of output rows `rows` of an unpadded convolution, written to an
/// image of just those rows, each row's window read in place from the input band
/// that holds it, or from a copy when it crosses a band boundary, by `par`'s
/// threads (or by one). Work units are (group of output blocks, row) pairs,
/// group-major.
struct RowTiles<'a> {
    input: &'a Bands<'a>,
    geom: ConvGeometry,
    tiles: LayerTiles<'a>,
    rows: Range<usize>,
    co_blocks: usize,
    ob_tile: usize,
    px_tile: usize,
    ow: usize,
    /// Floats of one copied window: kh rows of every input block.
    staged_len: usize,
}

impl<'a> RowTiles<'a> {
    /// The tiles of output rows `rows` of `op` (unpadded; `residual` in `out`'s
    /// rows) into `out`, an image of those rows.
    fn new(
        kernels: &'a Kernels,
        op: &'a Conv2d<'a>,
        residual: Option<Image<'a>>,
        out: &mut ImageMut,
        rows: Range<usize>,
        par: &dyn ParallelFor,
    ) -> Self {
        let (input, w, geom) = (&op.input, &op.weights, &op.geom);
        let s = w.shape;
        kernels.record_call();
        let row_len = input.dims.w * BLOCK;
        let co_blocks = s.co_blocks();
        let (ob_tile, px_tile) = choose_tile(&kernels.conv, co_blocks, out.dims.w);
        RowTiles {
            input,
            geom: *geom,
            // The input block stride is the band's, given per row; the tiles prefetch
            // when the threads share the input (`par` has several).
            tiles: LayerTiles::new(kernels, op, residual, out, row_len, 0, par),
            rows,
            co_blocks,
            ob_tile,
            px_tile,
            ow: out.dims.w,
            staged_len: s.ci_blocks() * s.kh * row_len,
        }
    }

    /// (group, row) pairs.
    fn units(&self) -> usize {
        self.co_blocks.div_ceil(self.ob_tile) * self.rows.len()
    }

    /// Computes units `units`, copying the crossing windows into `slot` first.
    fn run(&self, units: Range<usize>, slot: &mut [f32]) {
        let (geom, input, n_rows) = (&self.geom, self.input, self.rows.len());
        let row_len = input.dims.w * BLOCK;
        let window_len = geom.kh * row_len;
        for (j, oy) in staged_rows(*geom, input.split, self.rows.clone()).enumerate() {
            let (lo, _) = window_rows(&(oy..oy + 1), geom);
            stage_rows(input, lo, lo + geom.kh as isize, 0, 0, &mut slot[j * self.staged_len..]);
        }
        // Windows copied before row r: rows of the range that cross, counted once per
        // group as the units go by.
        let mut staged_before = 0;
        let mut last_group = usize::MAX;
        for unit in units {
            let (g, r) = (unit / n_rows, unit % n_rows);
            if g != last_group {
                last_group = g;
                staged_before = staged_rows(*geom, input.split, self.rows.start..self.rows.start + r).count();
            }
            let oy = self.rows.start + r;
            let ob0 = g * self.ob_tile;
            let ob = self.ob_tile.min(self.co_blocks - ob0);
            // The window's first row and the distance between its blocks.
            let (window, in_block) = match window_band(oy, geom, &input.split) {
                Some((t, y)) => {
                    let band = input.band(t);
                    (&band.data[y * row_len..], band.dims.h * row_len)
                }
                None => {
                    staged_before += 1;
                    (&slot[(staged_before - 1) * self.staged_len..staged_before * self.staged_len], window_len)
                }
            };
            for ox0 in (0..self.ow).step_by(self.px_tile) {
                let px = self.px_tile.min(self.ow - ox0);
                let at = ox0 * geom.stride_w * BLOCK;
                // SAFETY: the tile reads blocks < ci_blocks (in_block apart), rows < kh
                // and columns < (ox0 + px - 1) * sw + kw <= input width of its window:
                // inside the band that holds it, or inside its copy. It writes its own
                // pixels of the output rows, which no other task writes.
                unsafe {
                    let whole = self.tiles.whole();
                    self.tiles.run_from(window[at..].as_ptr(), in_block, ob0, ob, r * self.ow + ox0, px, whole)
                };
            }
        }
    }
}

/// Output rows one task of [`conv2d_image`] expands the input for at a time.
const IMAGE_ROWS: usize = 4;

/// Input rows (and padded width) [`conv2d_image`] expands for [`IMAGE_ROWS`]
/// output rows.
fn image_staging(input: Dims, geom: &ConvGeometry) -> (usize, usize) {
    let rows = (IMAGE_ROWS - 1) * geom.stride_h + geom.kh;
    (rows, input.w + geom.pad.left + geom.pad.right)
}

/// Scratch `f32` [`conv2d_image`] needs for an input of shape `input` on
/// `threads` threads.
pub fn conv2d_image_scratch_len(input: Dims, geom: &ConvGeometry, threads: usize) -> usize {
    let (rows, width) = image_staging(input, geom);
    threads.max(1) * rows * width * BLOCK
}

/// [`conv2d`] on an NCHW image of at most 16 channels (a network's input, in
/// bands): each task expands the input rows that a few (`IMAGE_ROWS`) output rows
/// read into zero-padded NCHW16c rows in its worker's slot of `scratch` (which must
/// hold [`conv2d_image_scratch_len`] values, split evenly into one slot per worker),
/// so the image, 13 of whose 16 lanes are padding for an RGB input, is never
/// written out whole. With more than one output band, one task per band computes
/// its rows. The same tiles and sums as [`conv2d`]: the same bits.
pub fn conv2d_image(kernels: &Kernels, op: &Conv2d, out: &mut BandsMut, scratch: &mut [f32], par: &dyn ParallelFor) {
    let Conv2d { input, weights: w, geom, residual, .. } = *op;
    let (w, geom) = (&w, &geom);
    let s = w.shape;
    let (d, dout) = (input.dims, out.dims);
    assert!(input.layout == Layout::Nchw && s.ci <= BLOCK, "conv2d_image: not an NCHW image of one block");
    check_conv("conv2d_image", &input, w, s.packed_len(), geom, residual.as_ref(), &out.as_bands());
    let (rows, width) = image_staging(d, geom);
    let slot_len = rows * width * BLOCK;
    let slots = WorkerSlots::new(scratch, par, slot_len, "conv2d_image");
    kernels.record_call();

    let co_blocks = s.co_blocks();
    let (ob_tile, px_tile) = choose_tile(&kernels.conv, co_blocks, dout.w);
    let split = out.split;
    // One tiling per output band, each writing its own band.
    let tiles: [Option<LayerTiles>; MAX_BANDS] = std::array::from_fn(|t| {
        (t < split.bands()).then(|| {
            let res = residual.map(|r| r.band(t));
            LayerTiles::new(kernels, op, res, &mut out.band(t), width * BLOCK, slot_len, par)
        })
    });
    // Units of IMAGE_ROWS output rows, band by band; several bands take one task
    // each, one band is dealt to a few tasks per thread.
    let band_units = |t: usize| split.rows(t).len().div_ceil(IMAGE_ROWS);
    let tasks =
        if split.bands() > 1 { split.bands() } else { (TASKS_PER_THREAD * par.threads()).min(band_units(0)).max(1) };
    par.run(tasks, &|task| {
        // SAFETY: taken once, inside this task.
        let staging = unsafe { slots.mine(par) };
        // The lanes past the image's channels and the padding columns stay zero for
        // the whole call: zeroed once here, each row then writes only its pixels'
        // real lanes (rewriting all 16 lanes of every pixel per row made the stem
        // 2.5x slower than the same convolution on a staged input).
        staging.fill(0.0);
        let (band, units) = if split.bands() > 1 {
            (task, 0..band_units(task))
        } else {
            (0, task * band_units(0) / tasks..(task + 1) * band_units(0) / tasks)
        };
        let tiles = tiles[band].as_ref().expect("a tiling per band");
        let band_rows = split.rows(band);
        for unit in units {
            let oy0 = band_rows.start + unit * IMAGE_ROWS;
            let n_rows = IMAGE_ROWS.min(band_rows.end - oy0);
            // Expand input rows oy0 * sh - pad_top onwards, zero outside the image.
            let first = (oy0 * geom.stride_h) as isize - geom.pad.top as isize;
            for (r, row) in staging.chunks_exact_mut(width * BLOCK).enumerate() {
                let y = first + r as isize;
                if y < 0 || y as usize >= d.h {
                    row.fill(0.0);
                    continue;
                }
                let (src, y) = input.row(y as usize);
                let plane = src.dims.h * d.w;
                let pixels = &mut row[geom.pad.left * BLOCK..][..d.w * BLOCK];
                for c in 0..d.c {
                    let channel = &src.data[c * plane + y * d.w..][..d.w];
                    for (lanes, &v) in pixels.chunks_exact_mut(BLOCK).zip(channel) {
                        lanes[c] = v;
                    }
                }
            }
            for oy in oy0..oy0 + n_rows {
                let in_row0 = (oy - oy0) * geom.stride_h * width * BLOCK;
                for ob0 in (0..co_blocks).step_by(ob_tile) {
                    let ob = ob_tile.min(co_blocks - ob0);
                    for ox0 in (0..dout.w).step_by(px_tile) {
                        let px = px_tile.min(dout.w - ox0);
                        let at = in_row0 + ox0 * geom.stride_w * BLOCK;
                        let out_px = (oy - band_rows.start) * dout.w + ox0;
                        // SAFETY: the tile reads staging rows (oy - oy0) * sh + ky <
                        // rows and columns (ox0 + px - 1) * sw + kx < width (the output
                        // size was checked against the geometry), one block, all
                        // inside this task's slot; it writes this tile of its band of
                        // the output, which no other task writes (rows are split).
                        unsafe { tiles.run(staging[at..].as_ptr(), ob0, ob, out_px, px) };
                    }
                }
            }
        }
    });
}

/// Tasks per thread a parallel convolution is split into: equal runs of work, a
/// few per thread so that a thread slowed by something else hands some of its
/// share to the others.
const TASKS_PER_THREAD: usize = 2;

/// The tile shape (output blocks, pixels) for a layer of `co_blocks` output blocks
/// and rows of `row_len` pixels: the one with the least estimated time, counting the
/// partial tiles at the ends. Per input lane a tile issues `ob * px` FMAs and
/// `ob + px` loads (weight rows and input broadcasts) on two FMA and two load ports,
/// so its cost is the larger of the two; a tile also pays a fixed overhead (loop,
/// epilogue) that favours fewer, larger tiles.
pub(crate) fn choose_tile(mk: &ConvMicrokernel, co_blocks: usize, row_len: usize) -> (usize, usize) {
    let cost = |ob: usize, px: usize| (ob * px).max(ob + px) + 2;
    let mut best = (usize::MAX, (1, 1));
    for (ob, &max_px) in mk.max_px.iter().enumerate().filter(|(ob, m)| *ob > 0 && **m > 0) {
        for px in 1..=max_px {
            let (full_groups, ob_rem) = (co_blocks / ob, co_blocks % ob);
            let (full_tiles, px_rem) = (row_len / px, row_len % px);
            let row = |ob: usize| full_tiles * cost(ob, px) + if px_rem > 0 { cost(ob, px_rem) } else { 0 };
            let total = full_groups * row(ob) + if ob_rem > 0 { row(ob_rem) } else { 0 };
            if total < best.0 {
                best = (total, (ob, px));
            }
        }
    }
    best.1
}
