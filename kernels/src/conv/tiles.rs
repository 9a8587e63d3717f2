//! The tiles of a direct convolution: what every tile of a layer shares
//! ([`LayerTiles`]), and the layer on an input in one band, its tiles dealt to the
//! threads by output channels and rows ([`one_band`]).

use super::op::{Conv2d, PackedConv, check};
use crate::dispatch::Kernels;
use crate::geometry::{Activation, ConvGeometry};
use crate::layout::{BLOCK, Dims, Image, ImageMut, Layout};
use crate::microkernel::{
    ConvMicrokernel, RowWrap, TileAt, TileLayer, TileShapes, WeightPrefetch, best_tile, choose_tile, chunk_taps,
};
use crate::parallel::{ParallelFor, Segments, SharedMut};

/// Scratch `f32` a convolution of an input of shape `input` needs (the padded copy).
pub fn conv2d_scratch_len(input: Dims, geom: &ConvGeometry) -> usize {
    let p = geom.pad;
    if p == Default::default() {
        return 0;
    }
    let padded = Dims::new(input.c, input.h + p.top + p.bottom, input.w + p.left + p.right);
    Layout::Nchw16c.image_len(padded)
}

/// What every tile of one direct convolution shares: its weights, epilogue, output
/// and input strides. [`LayerTiles::run`] adds the input position and the tile.
pub(super) struct LayerTiles<'a> {
    mk: &'a ConvMicrokernel,
    w: &'a PackedConv<'a>,
    residual: Option<&'a [f32]>,
    out: SharedMut,
    out_len: usize,
    layer: TileLayer,
    /// Step between the input's channel blocks (of the layer's input, not of a band
    /// or a staged copy of it).
    pub(super) in_block: usize,
    /// Taps of the whole sum.
    pub(super) taps: usize,
}

/// One tile: `ob` output blocks from `ob0`, `px` pixels from pixel `out_px` of each
/// output block.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tile {
    pub(super) ob0: usize,
    pub(super) ob: usize,
    pub(super) out_px: usize,
    pub(super) px: usize,
}

/// The taps one call of a tile sums, and the weights it prefetches meanwhile.
#[derive(Clone, Copy)]
pub(super) struct Piece {
    taps: (usize, usize),
    prefetch: WeightPrefetch,
}

impl<'a> LayerTiles<'a> {
    /// The tiles of `op` (its input's tap rows and channel blocks `in_row` and
    /// `in_block` floats apart: the layer's input, its padded copy or the rows
    /// staged for it; `residual` in `out`'s rows) into `out`, on `par`'s threads;
    /// `stream` when they walk a strided window row-major over an input beyond the
    /// L2 ([`strided_stream`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        kernels: &'a Kernels,
        op: &'a Conv2d<'a>,
        residual: Option<Image<'a>>,
        out: &mut ImageMut,
        in_row: usize,
        in_block: usize,
        stream: bool,
        par: &dyn ParallelFor,
    ) -> Self {
        let (w, geom, act) = (&op.weights, &op.geom, op.act);
        let s = w.shape;
        LayerTiles {
            mk: &kernels.ops.conv,
            w,
            residual: residual.map(|r| r.data),
            out: SharedMut(out.data.as_mut_ptr()),
            out_len: out.data.len(),
            layer: TileLayer {
                in_pixel: geom.stride_w * BLOCK,
                in_row,
                ci_blocks: s.ci_blocks(),
                ci_tail: s.ci - (s.ci_blocks() - 1) * BLOCK,
                kh: s.kh,
                kw: s.kw,
                chunk: chunk_taps(s),
                w_block: s.ci_blocks() * s.kh * s.kw * BLOCK * BLOCK,
                out_block: out.dims.h * out.dims.w * BLOCK,
                relu: act == Activation::Relu,
                prefetch_next: par.threads() > 1 || stream,
                prefetch_output: kernels.prefetchw,
            },
            in_block,
            taps: s.ci_blocks() * s.kh * s.kw,
        }
    }

    /// These tiles with their input pixels `in_pixel` floats apart (rather than
    /// the window's stride times a block): pixels staged with their channel blocks
    /// consecutive.
    pub(super) fn with_in_pixel(mut self, in_pixel: usize) -> Self {
        self.layer.in_pixel = in_pixel;
        self
    }

    /// Every tap, nothing to prefetch: a tile in one call.
    pub(super) fn whole(&self) -> Piece {
        Piece { taps: (0, self.taps), prefetch: WeightPrefetch::NONE }
    }

    /// Shares `js` of `m` of prefetching the weights of output blocks `ob0..ob0 +
    /// ob`, taps `taps`.
    pub(super) fn prefetch_share(
        &self,
        ob0: usize,
        ob: usize,
        taps: (usize, usize),
        js: std::ops::Range<usize>,
        m: usize,
    ) -> WeightPrefetch {
        // A tap's weights for one block: 16 rows of 16 floats, a cache line each.
        let w_block = self.layer.w_block;
        let start = self.w.weights.as_ptr().wrapping_add(ob0 * w_block + taps.0 * BLOCK * BLOCK);
        WeightPrefetch { start, stride: w_block, blocks: ob, lines: (taps.1 - taps.0) * BLOCK }.part(js, m)
    }

    /// Computes the taps of `piece` (see
    /// [`TileArgs::taps`](crate::microkernel::TileArgs::taps)) of `tile`, reading
    /// the input from `input` on, its channel blocks `in_block` floats apart (the
    /// layer's input, a band of rows, or a staged window), noting its shape in
    /// `shapes`.
    ///
    /// # Safety
    /// Every input element the [`TileArgs`](crate::microkernel::TileArgs) formula
    /// reaches from `input` (with this layer's strides, blocks and window, and
    /// `in_block`) must lie in `input`, and no other thread may write this tile
    /// meanwhile; the pieces of one tile must be run in order, by one thread.
    /// Weights, bias, residual and output are checked here (their lengths by
    /// [`check`]).
    #[inline]
    pub(super) unsafe fn run_from(
        &self,
        input: &[f32],
        in_block: usize,
        tile: Tile,
        piece: Piece,
        shapes: &mut TileShapes,
    ) {
        // SAFETY: forwarded.
        unsafe { self.run_row_from(input, in_block, tile, 1, piece, RowWrap::NONE, shapes) }
    }

    /// [`run_from`](Self::run_from) for `tile` and the `tiles - 1` tiles of its
    /// shape after it along a row of output pixels (and the input pixels under
    /// them), in one call where the microkernel has a row of the shape (see
    /// `TileLayer::run`); `piece.prefetch` is shared among them. The tiles cross
    /// output row ends as `wrap` says ([`RowWrap::NONE`] where they do not; a wrap
    /// with a skip only where [`raster`](Self::raster)).
    ///
    /// # Safety
    /// As [`run_from`](Self::run_from), for each of the tiles.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) unsafe fn run_row_from(
        &self,
        input: &[f32],
        in_block: usize,
        tile: Tile,
        tiles: usize,
        piece: Piece,
        wrap: RowWrap,
        shapes: &mut TileShapes,
    ) {
        let Tile { ob0, ob, out_px, px } = tile;
        let (out_block, w_block, chunk) = (self.layer.out_block, self.layer.w_block, self.layer.chunk);
        let out_off = ob0 * out_block + out_px * BLOCK;
        let end = out_off + (ob - 1) * out_block + tiles * px * BLOCK;
        assert!(tiles > 0 && end <= self.out_len, "convolution: tile outside the output");
        let (t0, t1) = piece.taps;
        assert!(t0 < t1 && t1 <= self.taps && t0 % chunk == 0, "convolution: taps off the chunk grid");
        assert!(t1 == self.taps || t1 % chunk == 0, "convolution: taps off the chunk grid");
        let at = TileAt {
            input,
            in_block,
            weights: self.w.weights[ob0 * w_block..].as_ptr(),
            bias: self.w.bias[ob0 * BLOCK..].as_ptr(),
            residual: self.residual.map_or(std::ptr::null(), |r| r[out_off..].as_ptr()),
            // SAFETY: out_off is inside the output (asserted just above).
            output: unsafe { self.out.get().add(out_off) },
            ob,
            px,
            taps: piece.taps,
            prefetch: piece.prefetch,
            wrap,
        };
        // SAFETY: `mk` comes from a `Kernels`, which proves the tier runs on this CPU.
        // Input reads are the caller's contract; weights, bias, residual and output
        // stay inside blocks ob0..ob0+ob of their images (whose lengths `check`
        // asserted, and the last tile's end just above).
        unsafe { self.layer.run(self.mk, at, tiles, shapes) };
    }

    /// Whether the microkernel computes these tiles as raster tiles, which may
    /// cross output row ends ([`RowWrap`]).
    pub(super) fn raster(&self) -> bool {
        self.layer.raster(self.mk)
    }
}

/// Whether a layer streams a strided window over an input larger than the L2: it
/// then walks its output row-major ([`one_band`]), unless it sums its taps in
/// blocks, and its tiles prefetch their next tile's input on one thread too (with
/// several, they always do: the lines are often another core's). Alone, the
/// hardware prefetcher keeps up with a stride-1 window and with an input the L2
/// holds, and the extra prefetches cost more than they save; a strided window
/// walked row-major reads every other line of a dozen rows and blocks from further
/// out, which it does not follow. A layer summing its taps in blocks reads a
/// block's share of the input, which the L2 holds (figures: `docs/kernels.md`).
pub(super) fn strided_stream(kernels: &Kernels, geom: &ConvGeometry, in_len: usize) -> bool {
    geom.stride_w > 1 && in_len * size_of::<f32>() > kernels.l2_bytes
}

/// `op` on an input and residual in one band each, into `out`, the output tiles
/// spread over `par`'s threads. `scratch` must hold [`conv2d_scratch_len`] values.
pub(super) fn one_band(kernels: &Kernels, op: &Conv2d, out: &mut ImageMut, scratch: &mut [f32], par: &dyn ParallelFor) {
    let (input, w, geom) = (op.input.band(0), &op.weights, &op.geom);
    let residual = op.residual.map(|r| r.band(0));
    let s = w.shape;
    assert!(input.layout == Layout::Nchw16c, "conv2d: input layout");
    assert_eq!(op.input.split.bands(), 1, "conv2d: an input in one band");
    check("conv2d", &op.input, w, s.packed_len(), geom, op.residual.as_ref(), &out.as_image().into());
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

    // Rows of output pixels: a window one tap wide at stride 1 without padding
    // left or right (1x1, 3x1, 7x1) reads output pixel y * w + x's taps at that
    // offset into each padded input row, so its output is one row of h * w pixels,
    // in whole tiles rather than a short one per row (an 8x8 map's rows of 8).
    let long_row = s.kw == 1 && geom.stride_h == 1 && geom.stride_w == 1 && geom.pad.left == 0 && geom.pad.right == 0;
    let mk = &kernels.ops.conv;
    let co_blocks = s.co_blocks();
    let n_taps = s.ci_blocks() * s.kh * s.kw;
    let k_block = k_block_taps(n_taps, chunk_taps(s), dout.h * dout.w);
    let k_taps = k_block.unwrap_or(n_taps);
    let stream = !long_row && k_block.is_none() && strided_stream(kernels, geom, input.data.len());
    let tiles = LayerTiles::new(kernels, op, residual, out, di.w * BLOCK, di.h * di.w * BLOCK, stream, par);
    // Other windows of a small map likewise, in raster tiles that the microkernel's
    // row walks across the row ends ([`RowWrap`]), where the tiles of one row of
    // h * w pixels cost less than h rows' (choose_tile's estimate): 49 = 8 x 6 + 1
    // pixels for a 7x7 map rather than 7 x (6 + 1). Only if those tiles are the
    // row's shape and no wider than an output row: the last, short tile then lies
    // in the last row, so no other tile crosses a row end.
    let (raster_cost, raster_tile) = best_tile(mk, co_blocks, dout.h * dout.w);
    let raster = long_row
        || (k_block.is_some()
            && mk.hand_scheduled == Some(raster_tile)
            && raster_tile.1 <= dout.w
            && tiles.raster()
            && raster_cost < dout.h * best_tile(mk, co_blocks, dout.w).0);
    let (rows, row_len) = if raster { (1, dout.h * dout.w) } else { (dout.h, dout.w) };
    if long_row && s.kh > 1 {
        kernels.record_long_row();
    }
    // One tile: `ob` output blocks from `ob0`, `px` pixels from `ox0` of row `oy`.
    // `n` tiles of `px` pixels along the row from pixel `ox0` of row `oy` (`n` > 1
    // only for a row's whole tiles). On one row of h * w pixels, pixel `ox0` is
    // pixel `ox0 % w` of output row `ox0 / w`, and the input moves on by `skip`
    // more at each row end (none on a long row).
    let skip = (geom.stride_h * di.w).wrapping_sub(dout.w * geom.stride_w).wrapping_mul(BLOCK);
    let tile =
        |ob0: usize, ob: usize, oy: usize, ox0: usize, px: usize, n: usize, piece: Piece, shapes: &mut TileShapes| {
            let (oy, ox, wrap) = if raster {
                (ox0 / dout.w, ox0 % dout.w, RowWrap { width: dout.w, col: ox0 % dout.w, skip })
            } else {
                (oy, ox0, RowWrap::NONE)
            };
            let in_off = (oy * geom.stride_h * di.w + ox * geom.stride_w) * BLOCK;
            // SAFETY: the last input read is block ci_blocks-1, row (oy'*sh + kh-1),
            // column (ox'*sw + kw-1) of the (padded by now) input for the last
            // pixel (oy', ox') of the tiles (on one row of h * w pixels, a pixel of
            // the map, reached from the first across the row ends by `wrap`), inside
            // it because the output size was checked against the geometry. Tiles
            // are disjoint, so concurrent tiles never write the same element; each
            // task runs the pieces of its tiles in order.
            unsafe {
                let tile = Tile { ob0, ob, out_px: oy * dout.w + ox, px };
                tiles.run_row_from(&input.data[in_off..], tiles.in_block, tile, n, piece, wrap, shapes)
            };
        };

    let (ob_tile, px_tile) = choose_tile(mk, co_blocks, row_len);

    // A strided window on an input the L2 cannot hold walks the output row by row,
    // every group of output blocks before the next row: the few input rows a row
    // reads then come from beyond the L2 once, rather than once per group, while
    // the weights stream in order. The rows are dealt as `Segments`.
    if stream {
        let rows_of = Segments::new(rows, par.threads());
        par.run(rows_of.tasks(), &|t| {
            let mut shapes = TileShapes::default();
            for oy in rows_of.claims(t) {
                for ob0 in (0..co_blocks).step_by(ob_tile) {
                    let ob = ob_tile.min(co_blocks - ob0);
                    for ox0 in (0..row_len).step_by(px_tile) {
                        tile(ob0, ob, oy, ox0, px_tile.min(row_len - ox0), 1, tiles.whole(), &mut shapes);
                    }
                }
            }
            kernels.record_tiles(shapes);
        });
        return;
    }

    // Work units: a row of tiles, or for a long row one tile of it,
    // for one group of output blocks. The units are ordered group-major and cut
    // into slices of equal work (a unit's work is its group's block count), dealt
    // as `Segments`, so that each thread reads mostly its share of the weights and
    // none waits on another's leftover. A slice walks its units panel by panel (see
    // [`panel_units`]); within a panel, block of `k_taps` taps by block, every
    // group in turn, prefetching the next piece's weights as it goes: a block's
    // share of the input then stays in cache for all the groups, rather than the
    // whole input streaming once per group.
    let groups = co_blocks.div_ceil(ob_tile);
    let units = if raster { row_len.div_ceil(px_tile) } else { rows };
    let tiles_per_unit = if raster { 1 } else { row_len.div_ceil(px_tile) };
    // The input one unit reads (all its taps): a row's new input rows, or a tile's
    // share of them.
    let row_in = size_of::<f32>() * s.ci_blocks() * BLOCK * geom.stride_h * di.w;
    let unit_in = if raster { row_in * px_tile / dout.w } else { row_in };
    // A small map's blocks of taps are walked by every group in turn (below), so
    // a block's share of the input is what must stay in cache.
    let slice = |bytes: usize| bytes * k_taps.min(n_taps) / n_taps;
    let unit_in = slice(unit_in);
    let weight_bytes = size_of_val(w.weights);
    let panel = panel_units(kernels, units, unit_in, slice(size_of_val(input.data)), weight_bytes, groups);
    if panel < units {
        kernels.record_panels();
    }
    let work = co_blocks * units;
    // One thread has nothing to balance, and more slices only restart the walk:
    // the tasks per thread there, as before the slices (one and four measured:
    // `docs/performance.md`).
    let per_thread = if par.threads() > 1 { SLICES_PER_THREAD } else { TASKS_PER_THREAD };
    let slices = (per_thread * par.threads()).min(groups * units);
    // Slice `i` of the work, walked as below.
    let walk = |i: usize, shapes: &mut TileShapes| {
        let (lo, hi) = (i * work / slices, (i + 1) * work / slices);
        // Group g's units start at work ob0 * units and take ob each; this task
        // takes those that start in lo..hi, of the panel starting at unit p0.
        let group_units = |g: usize, p0: usize| {
            let ob0 = g * ob_tile;
            let ob = ob_tile.min(co_blocks - ob0);
            let first = |w: usize| w.saturating_sub(ob0 * units).div_ceil(ob).min(units);
            let (a, b) = (first(lo).max(p0), first(hi).min(p0 + panel));
            (ob0, ob, a..b.max(a))
        };
        // The task's pieces of work in order: per panel, per block of taps, per
        // group (those with units of this task); each tile's blocks of taps come
        // in order, as they must.
        let k_blocks = n_taps.div_ceil(k_taps);
        let order = (0..units)
            .step_by(panel)
            .flat_map(|p0| (0..k_blocks * groups).map(move |i| (p0, i % groups, i / groups * k_taps)));
        let mut pieces = order
            .map(|(p0, g, k0)| (group_units(g, p0), (k0, (k0 + k_taps).min(n_taps))))
            .filter(|((_, _, us), _)| !us.is_empty())
            .peekable();
        while let Some(((ob0, ob, us), taps)) = pieces.next() {
            let m = us.len() * tiles_per_unit;
            // The weights this task reads next, fetched meanwhile (small maps only:
            // a large map's weights each serve enough pixels).
            let next = pieces.peek().filter(|_| k_block.is_some()).map(|&((ob0, ob, _), taps)| (ob0, ob, taps));
            let piece = |js: std::ops::Range<usize>| Piece {
                taps,
                prefetch: next
                    .map_or(WeightPrefetch::NONE, |(ob0, ob, taps)| tiles.prefetch_share(ob0, ob, taps, js, m)),
            };
            if raster {
                // The units' whole tiles along the one row in one call, then the
                // partial last one.
                let whole = us.end.min(row_len / px_tile).saturating_sub(us.start);
                if whole > 0 {
                    tile(ob0, ob, 0, us.start * px_tile, px_tile, whole, piece(0..whole), shapes);
                }
                for (i, u) in us.clone().enumerate().skip(whole) {
                    let ox0 = u * px_tile;
                    tile(ob0, ob, 0, ox0, px_tile.min(row_len - ox0), 1, piece(i..i + 1), shapes);
                }
                continue;
            }
            // A row's whole tiles in one call, then its partial last one: the
            // driver's and the call's fixed cost once per row rather than per tile
            // (1.02-1.08 on the layers walked by rows; figures: `docs/kernels.md`).
            let whole = row_len / px_tile;
            for (i, u) in us.enumerate() {
                let j = i * tiles_per_unit;
                if whole > 0 {
                    tile(ob0, ob, u, 0, px_tile, whole, piece(j..j + whole), shapes);
                }
                if whole < tiles_per_unit {
                    let ox0 = whole * px_tile;
                    tile(ob0, ob, u, ox0, row_len - ox0, 1, piece(j + whole..j + whole + 1), shapes);
                }
            }
        }
    };
    let slices_of = Segments::new(slices, par.threads());
    par.run(slices_of.tasks(), &|t| {
        let mut shapes = TileShapes::default();
        slices_of.claims(t).for_each(|i| walk(i, &mut shapes));
        kernels.record_tiles(shapes);
    });
}

/// Units (tiles of a 1x1 layer, rows otherwise) per panel for a layer of `units`
/// units, each reading `unit_in` bytes of input, of `input` bytes in all, with
/// `weights` bytes of weights in `groups` groups of output blocks. Each group walks
/// the whole input, so an input larger than the L2 comes from further out once
/// per group; walked in panels whose input fits half the L2, every group in turn
/// before the next panel, it comes once, and the weights once per panel instead.
/// Panels where that moves fewer bytes from beyond the L2 (figures:
/// `docs/kernels.md`); one panel of every unit otherwise.
fn panel_units(kernels: &Kernels, units: usize, unit_in: usize, input: usize, weights: usize, groups: usize) -> usize {
    let budget = kernels.l2_bytes / 2;
    if input <= budget || groups < 4 {
        return units;
    }
    let per = (budget / unit_in.max(1)).max(1);
    let panels = units.div_ceil(per);
    // Bytes from beyond the L2: weights once and the input per group, or the
    // input once and the weights per panel.
    if weights * (panels - 1) < input * (groups - 1) { units.div_ceil(panels) } else { units }
}

/// Output pixels up to which a convolution sums its taps in blocks (see
/// [`k_block_taps`]): 17x17 and 8x8 maps; larger maps use each weight often enough.
const K_BLOCK_MAX_PIXELS: usize = 20 * 20;

/// Taps per block, at most (rounded down to the chunk grid): 24 taps of 4 output
/// blocks are 96 KiB of weights, which stay in L2 while the next block streams in
/// (the sizes tried: `docs/kernels.md`).
const K_BLOCK_TAPS: usize = 24;

/// Taps per block (on the chunk grid) for a layer of `n_taps` taps in chunks of
/// `chunk` and `pixels` output pixels, or `None` for a large map, which takes every
/// tap in one call and prefetches nothing. A small map uses each weight only a few
/// dozen times, so the first tile to read a group's weights would wait for them to
/// stream from memory faster than memory delivers. Walking the tiles
/// once per block of taps instead uses each block while it is in cache, and
/// prefetching the next piece's weights (the next group's, or the next block's
/// first) as it goes overlaps the fetch with the arithmetic (without the prefetch,
/// blocks alone are slower). The
/// blocks are as even as the chunk grid allows: a short last block (4 taps after
/// 24) leaves too little arithmetic to hide the next group's fetch.
pub fn k_block_taps(n_taps: usize, chunk: usize, pixels: usize) -> Option<usize> {
    if pixels > K_BLOCK_MAX_PIXELS {
        return None;
    }
    let blocks = n_taps.div_ceil((K_BLOCK_TAPS / chunk).max(1) * chunk);
    Some(n_taps.div_ceil(blocks).div_ceil(chunk) * chunk)
}

/// Tasks per thread a parallel convolution is split into: equal runs of work, a
/// few per thread so that a thread slowed by something else hands some of its
/// share to the others.
pub(super) const TASKS_PER_THREAD: usize = 2;

/// Slices per thread a direct convolution's work is cut into, dealt as
/// [`Segments`]: a thread walks its own slices in order and then takes the last
/// ones of a slower thread (2 and 4 measured: `docs/performance.md`).
const SLICES_PER_THREAD: usize = 4;
