//! The microkernel contract: what a tier's convolution microkernel computes
//! ([`TileArgs`], [`ConvMicrokernel`]) and in which order it sums ([`chunk_taps`]),
//! the one constructor the drivers call tiles through ([`TileLayer::run`]), and
//! the prefetch helpers. Every tier implements it; the direct and Winograd drivers
//! use it.

use crate::geometry::ConvShape;
use crate::layout::BLOCK;

mod row_wrap;
pub use row_wrap::RowWrap;

/// One output tile's worth of pointers and strides, in `f32` elements.
///
/// For output block `b < ob`, pixel `p < px`, input block `ib`, tap `(ky, kx)` and
/// input lane `i`, the microkernel sums
/// `input[ib * in_block + ky * in_row + kx * BLOCK + wrap.pixel(in_pixel, p) + i]` times
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
// Only the x86 tiers prefetch.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
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
    /// a tile ahead hides the wait for the other core to let go of them. On one
    /// thread it hides the miss to memory of a layer whose output is large for its
    /// arithmetic (the weights streamed on every run evict the arena from cache).
    /// Only the x86 tiers act on it, and only where the CPU has PREFETCHW (figures:
    /// `docs/kernels.md`).
    pub prefetch_output: bool,
    /// The taps this call sums, `start..end` of `0..ci_blocks * kh * kw`, both on
    /// the chunk grid (multiples of `chunk`, or the last tap): a driver may compute
    /// a tile in several calls, in order, each adding its chunks to the partial sums
    /// in `output`. The first call (from tap 0) adds the bias, the last (to the last
    /// tap) the residual and activation, so the sums are those of one call.
    pub taps: (usize, usize),
    /// Weights a later call will read, to bring into cache while this one computes.
    pub prefetch: WeightPrefetch,
    /// Output rows the tile's pixels cross: pixel `p`'s input is
    /// [`RowWrap::pixel`]`(in_pixel, p)` floats on from pixel 0's (`p * in_pixel`
    /// for [`RowWrap::NONE`] and on a long row, whose skip is 0). Only a microkernel
    /// whose [`ConvMicrokernel::raster`] takes the layer gets tiles with a skip.
    pub wrap: RowWrap,
}

impl TileArgs {
    /// Tile `i` of `tiles` of `px` pixels along the row from this one (see
    /// [`ConvMicrokernel::row`]): its input `i * px * in_pixel` floats further, its
    /// output and residual `i * px * 16`, share `i` of `tiles` of the prefetch.
    #[inline(always)]
    pub(crate) fn along_row(&self, i: usize, px: usize, tiles: usize) -> TileArgs {
        let step = i * px;
        // Plain offsets: the pointers are only dereferenced by the microkernels,
        // within the TileArgs contract.
        let residual = if self.residual.is_null() { self.residual } else { self.residual.wrapping_add(step * BLOCK) };
        TileArgs {
            input: self.input.wrapping_add(self.wrap.pixel(self.in_pixel, step)),
            output: self.output.wrapping_add(step * BLOCK),
            residual,
            prefetch: self.prefetch.part(i..i + 1, tiles),
            wrap: self.wrap.along(step),
            ..*self
        }
    }
}

/// `blocks` runs of `lines` cache lines, `stride` floats apart from `start`: the
/// weights of the next piece of a layer, fetched a little per tap so that the
/// fetch from memory overlaps the arithmetic rather than stalling the first tile to
/// use them. Only the x86 tiers act on it; a prefetch never faults, so any address
/// will do. `blocks == 0` fetches nothing.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
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

    /// Shares `js` of `m` of this fetch: the calls of one piece of work split the
    /// next piece's weights evenly.
    pub(crate) fn part(self, js: std::ops::Range<usize>, m: usize) -> Self {
        let (l0, l1) = (js.start * self.lines / m, js.end * self.lines / m);
        WeightPrefetch { start: self.start.wrapping_add(l0 * BLOCK), lines: l1 - l0, ..self }
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
    /// The tile shape `(ob, px)` whose loop is scheduled by hand (in asm), if any:
    /// its chunk boundaries cost less than the compiled shapes', which
    /// [`choose_tile`] counts.
    pub hand_scheduled: Option<(usize, usize)>,
    /// The least an input lane of any tile costs in [`choose_tile`]'s units (one
    /// per output block x pixel), however few its accumulators: a tile with fewer
    /// independent accumulators than the FMA units' latency times their number
    /// waits on the latency. 0 where not counted.
    pub min_lane_cost: usize,
    /// Computes one tile of `ob` blocks and `px <= max_px[ob]` pixels.
    ///
    /// # Safety
    /// Every address the [`TileArgs`] formula reaches must be in bounds (read-only
    /// for inputs, writable for `output`), and the CPU must support the tier.
    pub tile: unsafe fn(args: &TileArgs, ob: usize, px: usize),
    /// Computes `tiles` tiles of the [`hand_scheduled`](Self::hand_scheduled) shape
    /// along a row in one call, if the tier has it: tile `i` is the [`TileArgs`]
    /// tile moved `i * px` pixels on (its input `i * px * in_pixel` floats further,
    /// its output and residual `i * px * 16`), and prefetches share `i` of `tiles`
    /// of `args.prefetch`. Each call of a tile has a fixed cost (the dispatch, the
    /// arguments) that a short sum feels, as a Winograd GEMM of 32 input channels
    /// does (figures: `docs/winograd.md`).
    ///
    /// # Safety
    /// As [`tile`](Self::tile), for each of the tiles.
    pub row: Option<unsafe fn(args: &TileArgs, tiles: usize)>,
    /// Whether [`row`](Self::row) computes the tiles of a layer whose tiles'
    /// arguments are `args` (their `wrap` aside) as raster tiles ([`RowWrap`]), if
    /// the tier has them: a driver walks such a layer's output as one row of all its
    /// pixels where that leaves fewer short tiles.
    pub raster: Option<fn(args: &TileArgs) -> bool>,
}

/// Where a tile's chunk sums go: the output (and its block stride), the bias the
/// first chunk adds, the residual and ReLU the last one applies. The SIMD tiers'
/// float32 and BF16 tiles share it (the BF16 arguments convert in
/// `bf16::microkernel`).
#[derive(Clone, Copy)]
pub(crate) struct TileSums {
    pub output: *mut f32,
    pub out_block: usize,
    pub bias: *const f32,
    pub residual: *const f32,
    pub relu: bool,
}

impl From<&TileArgs> for TileSums {
    #[inline]
    fn from(a: &TileArgs) -> Self {
        TileSums { output: a.output, out_block: a.out_block, bias: a.bias, residual: a.residual, relu: a.relu }
    }
}

/// The fewest products an output accumulates in a register before the chunk is
/// added to its partial sum in memory: the rounding error of a float32 sum grows
/// with the length of the chain that accumulates it, and each chunk costs a load,
/// an add and a store per accumulator. 48 is where the error falls below ONNX
/// Runtime's at a cost of a few percent (the trade-off measured: `docs/kernels.md`).
pub const CHUNK_TERMS: usize = 48;

/// Taps per chunk for a convolution of `shape`. A chunk of `c` products has a
/// rounding error that grows with `c`, and the sum of the `K / c` chunks one that
/// grows with `K / c`; `c = sqrt(K)` balances the two, and [`CHUNK_TERMS`] bounds
/// the cost from below: `c = max(CHUNK_TERMS, sqrt(K))` real products (an input
/// with fewer than 16 channels has that many per tap), at least one tap, spread
/// evenly over the fewest chunks. Depends on the shape only, so every tier and tile
/// shape sums in the same order.
pub fn chunk_taps(shape: ConvShape) -> usize {
    chunk_taps_of(shape, CHUNK_TERMS)
}

/// [`chunk_taps`] with `min_terms` in place of [`CHUNK_TERMS`].
pub(crate) fn chunk_taps_of(shape: ConvShape, min_terms: usize) -> usize {
    let taps = shape.ci_blocks() * shape.kh * shape.kw;
    let terms = min_terms.max((shape.ci * shape.kh * shape.kw).isqrt());
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

/// What every tile of one layer (or of one Winograd position's GEMM) shares: the
/// [`TileArgs`] fields that do not move from tile to tile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileLayer {
    /// See [`TileArgs::in_pixel`].
    pub(crate) in_pixel: usize,
    /// See [`TileArgs::in_row`].
    pub(crate) in_row: usize,
    /// See [`TileArgs::ci_blocks`].
    pub(crate) ci_blocks: usize,
    /// See [`TileArgs::ci_tail`].
    pub(crate) ci_tail: usize,
    /// See [`TileArgs::kh`].
    pub(crate) kh: usize,
    /// See [`TileArgs::kw`].
    pub(crate) kw: usize,
    /// See [`TileArgs::chunk`].
    pub(crate) chunk: usize,
    /// See [`TileArgs::w_block`].
    pub(crate) w_block: usize,
    /// See [`TileArgs::out_block`].
    pub(crate) out_block: usize,
    /// See [`TileArgs::relu`].
    pub(crate) relu: bool,
    /// See [`TileArgs::prefetch_next`].
    pub(crate) prefetch_next: bool,
    /// See [`TileArgs::prefetch_output`].
    pub(crate) prefetch_output: bool,
}

/// Where one call of a tile reads and writes, and what it sums.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileAt<'a> {
    /// The input from the tile's first tap on: every input address the tile reads
    /// lies in it (checked in debug builds).
    pub(crate) input: &'a [f32],
    /// See [`TileArgs::in_block`].
    pub(crate) in_block: usize,
    /// See [`TileArgs::weights`].
    pub(crate) weights: *const f32,
    /// See [`TileArgs::bias`].
    pub(crate) bias: *const f32,
    /// See [`TileArgs::residual`].
    pub(crate) residual: *const f32,
    /// See [`TileArgs::output`].
    pub(crate) output: *mut f32,
    /// Output blocks of the tile.
    pub(crate) ob: usize,
    /// Pixels of the tile.
    pub(crate) px: usize,
    /// See [`TileArgs::taps`].
    pub(crate) taps: (usize, usize),
    /// See [`TileArgs::prefetch`].
    pub(crate) prefetch: WeightPrefetch,
    /// See [`TileArgs::wrap`].
    pub(crate) wrap: RowWrap,
}

impl TileLayer {
    /// Computes the tile `at` of this layer with `mk` and the `tiles - 1` tiles of
    /// its shape after it along the row (tile `i` `i * at.px` pixels on, with share
    /// `i` of `tiles` of `at.prefetch`), noting the shape in `shapes`: the one place
    /// the direct and Winograd drivers make a [`TileArgs`]. In one call where the
    /// microkernel has a row of that shape ([`ConvMicrokernel::row`]), else tile by
    /// tile; the same tiles and sums either way.
    ///
    /// # Safety
    /// `mk` must come from a `Kernels` (the CPU runs its tier), and every weight,
    /// bias, residual and output address the [`TileArgs`] formula reaches from each
    /// tile must be in bounds (writable for the output, which no other thread may
    /// access meanwhile); `at.input` bounds the input reads of all of them.
    #[inline(always)]
    pub(crate) unsafe fn run(&self, mk: &ConvMicrokernel, at: TileAt, tiles: usize, shapes: &mut TileShapes) {
        if tiles == 0 {
            return;
        }
        self.check_input(&at, tiles);
        shapes.add(at.ob, at.px);
        let args = self.args(&at);
        debug_assert!(at.wrap.skip == 0 || self.raster(mk), "raster tiles for a microkernel without them");
        match mk.row.filter(|_| mk.hand_scheduled == Some((at.ob, at.px))) {
            // SAFETY: the input reads stay in `at.input` (the drivers' window
            // arithmetic, checked in debug builds); the rest is the caller's contract.
            Some(row) => unsafe { row(&args, tiles) },
            None => {
                for i in 0..tiles {
                    // SAFETY: as for the row, for tile i.
                    unsafe { (mk.tile)(&args.along_row(i, at.px, tiles), at.ob, at.px) }
                }
            }
        }
    }

    /// Asserts, in debug builds, that `tiles` tiles of `at`'s shape from `at` on read
    /// their input inside `at.input`.
    #[inline(always)]
    fn check_input(&self, at: &TileAt, tiles: usize) {
        // The last input lane the last tile reads: the last block, tap row and column
        // of its last pixel (all 16 lanes of a partial block may be read).
        let last = (self.ci_blocks - 1) * at.in_block
            + (self.kh - 1) * self.in_row
            + (self.kw - 1) * BLOCK
            + at.wrap.pixel(self.in_pixel, tiles * at.px - 1)
            + BLOCK
            - 1;
        debug_assert!(last < at.input.len(), "tile reads input {last} of {}", at.input.len());
    }

    /// Whether `mk`'s row computes this layer's tiles as raster tiles (see
    /// [`ConvMicrokernel::raster`]).
    pub(crate) fn raster(&self, mk: &ConvMicrokernel) -> bool {
        let at = TileAt {
            input: &[],
            in_block: 0,
            weights: std::ptr::null(),
            bias: std::ptr::null(),
            residual: std::ptr::null(),
            output: std::ptr::null_mut(),
            ob: 1,
            px: 1,
            taps: (0, self.ci_blocks * self.kh * self.kw),
            prefetch: WeightPrefetch::NONE,
            wrap: RowWrap::NONE,
        };
        mk.raster.is_some_and(|takes| takes(&self.args(&at)))
    }

    /// The [`TileArgs`] of the tile `at` of this layer.
    #[inline(always)]
    fn args(&self, at: &TileAt) -> TileArgs {
        TileArgs {
            input: at.input.as_ptr(),
            in_pixel: self.in_pixel,
            in_row: self.in_row,
            in_block: at.in_block,
            ci_blocks: self.ci_blocks,
            ci_tail: self.ci_tail,
            kh: self.kh,
            kw: self.kw,
            chunk: self.chunk,
            weights: at.weights,
            w_block: self.w_block,
            bias: at.bias,
            residual: at.residual,
            output: at.output,
            out_block: self.out_block,
            relu: self.relu,
            prefetch_next: self.prefetch_next,
            prefetch_output: self.prefetch_output,
            taps: at.taps,
            prefetch: at.prefetch,
            wrap: at.wrap,
        }
    }
}

/// Most pixels of a tile on any tier, plus one (the bit width of a row of
/// [`TileShapes`]).
const PX_SLOTS: usize = 17;

/// The tile shapes (output blocks, pixels) a task has run, one bit each: noted per
/// tile at the cost of an `or`, counted once per task (see `tile_calls`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TileShapes(u128);

impl TileShapes {
    /// Notes a tile of `ob` blocks and `px` pixels.
    #[inline(always)]
    pub(crate) fn add(&mut self, ob: usize, px: usize) {
        debug_assert!(ob <= 4 && px < PX_SLOTS, "tile {ob}x{px}");
        self.0 |= 1 << (ob * PX_SLOTS + px);
    }

    /// The shapes noted.
    pub(crate) fn iter(self) -> impl Iterator<Item = (usize, usize)> {
        (0..128).filter(move |b| self.0 >> b & 1 == 1).map(|b| (b / PX_SLOTS, b % PX_SLOTS))
    }
}

/// The tile shape (output blocks, pixels) for a layer of `co_blocks` output blocks
/// and rows of `row_len` pixels: the one with the least estimated time, counting the
/// partial tiles at the ends. Per input lane a tile issues `ob * px` FMAs and
/// `ob + px` loads (weight rows and input broadcasts) on two FMA and two load ports,
/// so its cost is the larger of the two, and at least the microkernel's
/// [`ConvMicrokernel::min_lane_cost`]; a tile also pays a fixed overhead (loop,
/// chunk boundaries, epilogue) that favours fewer, larger tiles, half as much for
/// the hand-scheduled shape (figures: `docs/kernels.md`).
pub(crate) fn choose_tile(mk: &ConvMicrokernel, co_blocks: usize, row_len: usize) -> (usize, usize) {
    best_tile(mk, co_blocks, row_len).1
}

/// [`choose_tile`]'s tile shape and its estimated time for the row (in its units).
pub(crate) fn best_tile(mk: &ConvMicrokernel, co_blocks: usize, row_len: usize) -> (usize, (usize, usize)) {
    let cost = |ob: usize, px: usize| {
        (ob * px).max(ob + px).max(mk.min_lane_cost) + if mk.hand_scheduled == Some((ob, px)) { 1 } else { 2 }
    };
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
    best
}

/// Asks for the cache line at `p` (any address: a prefetch never faults). A no-op
/// off x86-64.
#[inline(always)]
pub(crate) fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults; SSE is
    // part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for the cache line at `p` for writing (PREFETCHW; any address: a prefetch
/// never faults). Only for CPUs that have it (`Kernels::prefetchw`); a no-op off
/// x86-64.
#[inline(always)]
pub(crate) fn prefetch_write(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHW never faults and changes nothing the program sees; callers
    // use it only on CPUs that have it.
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Set by the AVX2 tile (see [`prefetched_asm_chunks`](crate::prefetched_asm_chunks)):
/// read before it is written, so that the tiles share the line rather than bounce it
/// between cores.
pub(crate) static PREFETCHED_ASM_CHUNKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by the AVX2 tile (see [`window_asm_chunks`](crate::window_asm_chunks)), as
/// [`PREFETCHED_ASM_CHUNKS`].
pub(crate) static WINDOW_ASM_CHUNKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by the AVX2 tile (see
/// [`window_piece_asm_chunks`](crate::window_piece_asm_chunks)), as
/// [`PREFETCHED_ASM_CHUNKS`].
pub(crate) static WINDOW_PIECE_ASM_CHUNKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by the AVX2 tile (see [`next_tile_asm_chunks`](crate::next_tile_asm_chunks)),
/// read before it is written like [`PREFETCHED_ASM_CHUNKS`].
pub(crate) static NEXT_TILE_ASM_CHUNKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by the AVX2 tile (see
/// [`next_window_asm_chunks`](crate::next_window_asm_chunks)), read before it is
/// written like [`PREFETCHED_ASM_CHUNKS`].
pub(crate) static NEXT_WINDOW_ASM_CHUNKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by the AVX2 tile (see [`raster_asm_chunks`](crate::raster_asm_chunks)),
/// read before it is written like [`PREFETCHED_ASM_CHUNKS`].
pub(crate) static RASTER_ASM_CHUNKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
