//! A direct convolution of a network's NCHW input image of at most 16 channels,
//! its whole window folded into the input channels ([`conv2d_image`]).
//!
//! A tap of an RGB image has 3 real lanes of 16, too little arithmetic for a tap's
//! fixed cost. Instead each output pixel's window is staged as one pixel of
//! `kh * kw * ci` channels (an im2col): staged pixel `(oy, ox)` holds input
//! `[c][oy * stride_h + ky - pad_top][ox * stride_w + kx - pad_left]` (zero outside
//! the image) in lane `(ky * kw + kx) * ci + c`, zero past the window. The
//! convolution is then a 1x1 window over the staged pixels, with weights in the
//! folded packing ([`crate::pack::pack_conv_weights_image`]): every product a real
//! one, every tap a whole block but the last (147 lanes of a 7x7 RGB window: 9
//! whole blocks and 3 lanes), so all but one tap run the tiles' whole-block path.

use super::op::{Conv2d, PackedConv, check};
use super::tiles::{LayerTiles, TASKS_PER_THREAD, Tile};
use crate::bands::{Bands, BandsMut, MAX_BANDS, RowSplit};
use crate::dispatch::Kernels;
use crate::geometry::Activation;
use crate::geometry::{ConvGeometry, Padding};
use crate::image_stage::{COPY, IMAGE_ROW_TILE, ImageRow, ImageRows, NextBlock, Stage};
use crate::layout::{BLOCK, Dims, Layout};
use crate::microkernel::{RowWrap, TileShapes, choose_tile};
use crate::pack::{image_folded_shape, image_packed_len};
use crate::parallel::{ParallelFor, SharedMut, WorkerSlots};

/// Bytes of staged pixels [`conv2d_image`] runs the tiles on at a time, at most:
/// staged and read again while still in L2 (96 KiB was a little faster than 24
/// and 48 on Zen 3: `docs/kernels.md`).
const STAGE_BYTES: usize = 96 << 10;

/// How [`conv2d_image`] stages an image of shape `input` in one worker's slot: a
/// chunk of `chunk` of an output row's `width` pixels, staged, `pixel` values each
/// (the window's lanes in whole blocks), then `rows` input rows interleaved
/// (`[x][c]`, zero-padded left and right) of `hwc_len` values each, the last one all
/// zeros (the rows above and below the image), from which the pixels are copied.
#[derive(Clone, Copy, Debug)]
struct Staging {
    width: usize,
    chunk: usize,
    pixel: usize,
    rows: usize,
    hwc_len: usize,
}

impl Staging {
    fn new(input: Dims, geom: &ConvGeometry) -> Self {
        let width = geom.output_hw(input.h, input.w).map_or(0, |(_, w)| w);
        // A pixel's last piece and its zeroing run up to COPY values past its
        // window, into the next pixel, which is copied after it; but a window
        // staged in several passes (taller than MAX_KH) has copied the next
        // pixel's first rows already, so its pixels have room for them.
        let slack = if geom.kh > MAX_KH { COPY } else { 0 };
        let pixel = (geom.kh * geom.kw * input.c + slack).next_multiple_of(BLOCK);
        let padded_w = input.w + geom.pad.left + geom.pad.right;
        // A window row's last piece runs up to COPY - 1 values past it.
        let hwc_len = (padded_w * input.c + COPY).next_multiple_of(BLOCK);
        // At least any tile's pixels (16), so that a chunk holds whole tiles.
        let chunk = (STAGE_BYTES / (pixel * size_of::<f32>())).max(BLOCK);
        // The input rows one output row reads (a ring of kh), and the zero row.
        Staging { width, chunk, pixel, rows: geom.kh + 1, hwc_len }
    }

    /// Values of the staged chunk of pixels: the last pixel's last piece may run
    /// a block past it.
    fn staged_len(&self) -> usize {
        self.chunk * self.pixel + BLOCK
    }

    /// Values of one worker's slot (whole cache lines).
    fn slot_len(&self) -> usize {
        self.staged_len() + self.rows * self.hwc_len
    }
}

/// Scratch `f32` [`conv2d_image`] needs for an input of shape `input` on
/// `threads` threads.
pub fn conv2d_image_scratch_len(input: Dims, geom: &ConvGeometry, threads: usize) -> usize {
    threads.max(1) * Staging::new(input, geom).slot_len()
}

/// [`conv2d`](crate::conv::conv2d) on an NCHW image of at most 16 channels (a
/// network's input, in bands), with weights in the image packing
/// ([`pack_conv_weights_image`](crate::pack::pack_conv_weights_image)): each task
/// stages, a chunk of an output row at a time, each output pixel's whole window as
/// one pixel of `kh * kw * ci` lanes (lane `(ky * kw + kx) * ci + c`, zero past
/// them) in its worker's slot of `scratch` (which must hold
/// [`conv2d_image_scratch_len`] values, split evenly into one slot per worker),
/// then runs the tiles of the folded 1x1 window on them. With more than one output
/// band, one task per band computes its rows. Sums as
/// [`conv2d`](crate::conv::conv2d) of the folded 1x1 window on the staged image:
/// the same bits at any thread count and band split.
pub fn conv2d_image(kernels: &Kernels, op: &Conv2d, out: &mut BandsMut, scratch: &mut [f32], par: &dyn ParallelFor) {
    let Conv2d { input, weights: w, geom, residual, .. } = *op;
    let s = w.shape;
    let (d, dout) = (input.dims, out.dims);
    assert!(input.layout == Layout::Nchw && s.ci <= BLOCK, "conv2d_image: not an NCHW image of one block");
    check("conv2d_image", &input, &w, image_packed_len(s), &geom, residual.as_ref(), &out.as_bands());
    let staging = Staging::new(d, &geom);
    let Staging { width, pixel, hwc_len, .. } = staging;
    let slots = WorkerSlots::new(scratch, par, staging.slot_len(), "conv2d_image");
    kernels.record_call();

    if let Some(rows) = image_rows(kernels, op, width) {
        kernels.record_image_rows();
        return from_rows(op, rows, out, &slots, staging, par);
    }

    let folded_op = Conv2d {
        weights: PackedConv { shape: image_folded_shape(s), ..w },
        geom: ConvGeometry { kh: 1, kw: 1, stride_h: 1, stride_w: 1, pad: Padding::default() },
        input: op.input,
        ..*op
    };
    let lanes = geom.kh * geom.kw * d.c;
    let run_len = geom.kw * d.c;
    let (px_step, pieces) = (geom.stride_w * d.c, run_len.div_ceil(COPY));
    let co_blocks = s.co_blocks();
    let (ob_tile, px_tile) = choose_tile(&kernels.ops.conv, co_blocks, dout.w);
    // Whole tiles per chunk.
    let chunk = staging.chunk / px_tile * px_tile;
    if chunk < width {
        kernels.record_image_chunks();
    }
    let split = out.split;
    // One tiling per output band, each writing its own band; a staged pixel's
    // blocks are consecutive, its pixels `pixel` values apart.
    let tiles: [Option<LayerTiles>; MAX_BANDS] = std::array::from_fn(|t| {
        (t < split.bands()).then(|| {
            let res = residual.map(|r| r.band(t));
            LayerTiles::new(kernels, &folded_op, res, &mut out.band(t), 0, BLOCK, false, par).with_in_pixel(pixel)
        })
    });
    let tasks = row_tasks(split, par);
    par.run(tasks, &|task| {
        // SAFETY: taken once, inside this task.
        let slot = unsafe { slots.mine(par) };
        let (staged, hwc) = slot.split_at_mut(staging.staged_len());
        // The staged pixels' padding lanes past the last run's last piece, the
        // interleaved rows' padding and the zero row stay zero for the whole call:
        // zeroed once here.
        staged.fill(0.0);
        hwc.fill(0.0);
        let (hwc, zero_row) = hwc.split_at_mut(geom.kh * hwc_len);
        let zero_row = &zero_row[..hwc_len];
        let (band, rows) = task_rows(split, tasks, task);
        let tiles = tiles[band].as_ref().expect("a tiling per band");
        let band_start = split.rows(band).start;
        let mut shapes = TileShapes::default();
        // Input rows below this one are interleaved already (in slot y % kh).
        let mut next_y = 0;
        // The task's output pixels, row after row (the band's pixels are one run,
        // `width` to a row), a chunk at a time: the tiles run along the chunk
        // across the rows' ends, so only the task's last tile is short.
        let (p_end, mut p0) = (rows.end * width, rows.start * width);
        while p0 < p_end {
            let p1 = (p0 + chunk).min(p_end);
            // Stage the chunk's pixels, the part in each output row at a time.
            let mut p = p0;
            while p < p1 {
                let (r, x0) = (p / width, p % width);
                let x1 = width.min(x0 + p1 - p);
                let oy = band_start + r;
                let first = (oy * geom.stride_h) as isize - geom.pad.top as isize;
                // Interleave the input rows the window reads that are not yet.
                let (lo, hi) = (first.max(0) as usize, ((first + geom.kh as isize).max(0) as usize).min(d.h));
                for y in lo.max(next_y)..hi {
                    interleave_row(&input, y, &mut hwc[y % geom.kh * hwc_len..][..hwc_len], geom.pad.left);
                }
                next_y = next_y.max(hi);
                // Output column x's window row ky is the interleaved row from
                // column x * sw on: `kw * ci` values, to lanes from ky * kw * ci;
                // ky in ascending order, so that a run's last piece is overwritten
                // by the next run, then the padding lanes it ran into zeroed.
                let from = x0 * px_step;
                for k0 in (0..geom.kh).step_by(MAX_KH) {
                    let k1 = (k0 + MAX_KH).min(geom.kh);
                    // The window's rows k0..k1: interleaved, or the zero row
                    // outside the image.
                    let rows: [&[f32]; MAX_KH] = std::array::from_fn(|i| {
                        let y = first + (k0 + i) as isize;
                        if k0 + i >= k1 || y < 0 || y as usize >= d.h {
                            &zero_row[from..]
                        } else {
                            &hwc[y as usize % geom.kh * hwc_len + from..][..hwc_len - from]
                        }
                    });
                    let rows = &rows[..k1 - k0];
                    let to = &mut staged[(p - p0) * pixel + k0 * run_len..];
                    let tail = (k1 == geom.kh).then_some(lanes - k0 * run_len);
                    let stage = Stage { rows, width: x1 - x0, pixel, px_step, run_len, pieces, tail };
                    // SAFETY: `kernels` proves that the CPU runs its tier.
                    unsafe { (kernels.ops.image_stage)(&stage, to) };
                }
                p += x1 - x0;
            }
            let n_px = p1 - p0;
            let whole = n_px / px_tile;
            for ob0 in (0..co_blocks).step_by(ob_tile) {
                let ob = ob_tile.min(co_blocks - ob0);
                // The chunk's whole tiles in one call, then the partial last one.
                let runs = [(0, px_tile, whole), (whole * px_tile, n_px - whole * px_tile, 1)];
                for (ox0, px, n) in runs.into_iter().filter(|&(_, px, n)| px > 0 && n > 0) {
                    let tile = Tile { ob0, ob, out_px: p0 + ox0, px };
                    // SAFETY: the tiles read the blocks < pixel / 16 of staged
                    // pixels < n_px, inside this task's slot; they write these
                    // tiles of their band of the output, which no other task
                    // writes (rows are split).
                    unsafe {
                        tiles.run_row_from(
                            &staged[ox0 * pixel..],
                            BLOCK,
                            tile,
                            n,
                            tiles.whole(),
                            RowWrap::NONE,
                            &mut shapes,
                        )
                    };
                }
            }
            p0 = p1;
        }
        kernels.record_tiles(shapes);
    });
}

/// Tasks an image convolution's output rows are dealt to: one per band of several,
/// a few per thread of one band.
fn row_tasks(split: RowSplit, par: &dyn ParallelFor) -> usize {
    if split.bands() > 1 { split.bands() } else { (TASKS_PER_THREAD * par.threads()).min(split.rows(0).len()).max(1) }
}

/// Task `task`'s band of `split` and its rows in that band, of `tasks` from
/// [`row_tasks`].
fn task_rows(split: RowSplit, tasks: usize, task: usize) -> (usize, std::ops::Range<usize>) {
    if split.bands() > 1 {
        (task, 0..split.rows(task).len())
    } else {
        let rows = split.rows(0).len();
        (0, task * rows / tasks..(task + 1) * rows / tasks)
    }
}

/// Writes input row `y` of the NCHW image `input` interleaved (`[x][c]`) into
/// `row`, from pixel `left` on (the left padding, zero already).
fn interleave_row(input: &Bands, y: usize, row: &mut [f32], left: usize) {
    let d = input.dims;
    let (src, yb) = input.row(y);
    let plane = src.dims.h * d.w;
    let pixels = &mut row[left * d.c..][..d.w * d.c];
    let ch = |c: usize| &src.data[c * plane + yb * d.w..][..d.w];
    match d.c {
        1 => interleave(pixels, [ch(0)]),
        2 => interleave(pixels, [ch(0), ch(1)]),
        3 => interleave(pixels, [ch(0), ch(1), ch(2)]),
        4 => interleave(pixels, [ch(0), ch(1), ch(2), ch(3)]),
        _ => {
            for c in 0..d.c {
                for (px, &v) in pixels.chunks_exact_mut(d.c).zip(ch(c)) {
                    px[c] = v;
                }
            }
        }
    }
}

/// The tier's rows of a `k x k` stride-2 window of 3 channels straight from the
/// image's planes ([`ImageRow`]), if `op` is one the tier has, without residual and
/// at least a tile wide (`width` output pixels a row).
fn image_rows(kernels: &Kernels, op: &Conv2d, width: usize) -> Option<ImageRows> {
    let g = &op.geom;
    let rows = kernels.ops.image_rows.iter().find(|r| (g.kh, g.kw) == (r.k, r.k))?;
    let fits = (g.stride_h, g.stride_w) == (2, 2) && op.input.dims.c == 3 && op.residual.is_none();
    (fits && width >= IMAGE_ROW_TILE).then_some(*rows)
}

/// [`conv2d_image`] by the tier's [`ImageRow`]s: each task runs its output rows'
/// tiles per output block (or pair of blocks), reading the image's planes where a row's window rows
/// are in one band and need no padding, else from a copy in its slot of the window
/// rows of several output rows, padded with zeros; the last tile of a row overlaps
/// the one before it when the row is not whole tiles, and a kernel of two blocks
/// computes the last block of an odd count twice (those pixels or blocks computed
/// twice, the same bits).
fn from_rows(
    op: &Conv2d,
    kernel: ImageRows,
    out: &mut BandsMut,
    slots: &WorkerSlots,
    staging: Staging,
    par: &dyn ParallelFor,
) {
    let (input, w, g) = (&op.input, &op.weights, &op.geom);
    let (d, width, kh) = (input.dims, staging.width, g.kh);
    let (split, co_blocks) = (out.split, w.shape.co_blocks());
    let w_block = image_folded_shape(w.shape).ci_blocks() * BLOCK * BLOCK;
    assert!(w.weights.len() >= co_blocks * w_block && w.bias.len() >= co_blocks * BLOCK, "conv2d_image: weights");
    assert!(matches!(kernel.blocks, 1 | 2), "conv2d_image: a kernel of one block or two");
    // The padded rows' width; output pixel x reads its columns 2 x..2 x + kh.
    let pw = g.pad.left + d.w + g.pad.right;
    assert!(pw >= 2 * (width - 1) + kh, "conv2d_image: input narrower than the window");
    // Output rows whose window rows a copy holds: 2 (n - 1) + kh rows of 3 planes.
    let per_copy = (staging.slot_len() / (3 * pw)).saturating_sub(kh) / 2 + 1;
    assert!(staging.slot_len() >= 3 * pw * kh, "conv2d_image: slot smaller than a window's rows");
    let bands: [(SharedMut, usize); MAX_BANDS] = std::array::from_fn(|t| {
        if t < split.bands() {
            let band = out.band(t);
            (SharedMut(band.data.as_mut_ptr()), band.data.len())
        } else {
            (SharedMut(std::ptr::null_mut()), 0)
        }
    });
    let tasks = row_tasks(split, par);
    let tail = width % IMAGE_ROW_TILE != 0;
    let relu = op.act == Activation::Relu;
    let padded = g.pad != Padding::default();
    par.run(tasks, &|task| {
        // SAFETY: taken once, inside this task.
        let slot = unsafe { slots.mine(par) };
        let (band, rows) = task_rows(split, tasks, task);
        let (band_start, (output, out_len)) = (split.rows(band).start, bands[band]);
        let out_block = split.rows(band).len() * width * BLOCK;
        // The output rows from `copied.start` on read the copy in the slot (its
        // planes `cap` rows long), up to `copied.end`.
        let (mut copied, cap) = (0..0, 2 * (per_copy - 1) + kh);
        for r in rows.clone() {
            let oy = band_start + r;
            // Input row of window row 0 (negative: in the padding above).
            let first = (2 * oy) as isize - g.pad.top as isize;
            let (src, yb) = input.row(first.max(0) as usize);
            let in_image = !padded && yb + kh <= src.dims.h;
            let (planes, row): ([*const f32; 3], usize) = if in_image {
                (std::array::from_fn(|c| src.data[(c * src.dims.h + yb) * d.w..][..kh * d.w].as_ptr()), d.w)
            } else {
                if !copied.contains(&r) {
                    // Copy the window rows of the next output rows, padded.
                    copied = r..(r + per_copy).min(rows.end);
                    for (i, plane) in slot.chunks_exact_mut(cap * pw).take(3).enumerate() {
                        for (k, to) in plane.chunks_exact_mut(pw).take(2 * (copied.len() - 1) + kh).enumerate() {
                            let y = first + k as isize;
                            to.fill(0.0);
                            if y >= 0 && (y as usize) < d.h {
                                let (src, yb) = input.row(y as usize);
                                let from = &src.data[(i * src.dims.h + yb) * d.w..][..d.w];
                                to[g.pad.left..][..d.w].copy_from_slice(from);
                            }
                        }
                    }
                }
                let at = 2 * (r - copied.start) * pw;
                (std::array::from_fn(|c| slot[c * cap * pw + at..][..kh * pw].as_ptr()), pw)
            };
            // The row's whole tiles from pixel 0, then its last 6 pixels if the
            // tiles leave some.
            let runs = [(0, width / IMAGE_ROW_TILE), (width - IMAGE_ROW_TILE, usize::from(tail))];
            for ob in (0..co_blocks).step_by(kernel.blocks) {
                // The second block of a kernel of two: the next, or this one again.
                let next = if kernel.blocks == 2 && ob + 1 < co_blocks {
                    NextBlock { weights: w_block, bias: BLOCK, output: out_block }
                } else {
                    NextBlock::SAME
                };
                for (x0, tiles) in runs.into_iter().filter(|&(_, n)| n > 0) {
                    let at = ob * out_block + (r * width + x0) * BLOCK;
                    let end = at + next.output + tiles * IMAGE_ROW_TILE * BLOCK;
                    assert!(end <= out_len, "conv2d_image: tile outside the output");
                    let args = ImageRow {
                        // Output pixel x0's window starts at column 2 x0.
                        planes: planes.map(|p| p.wrapping_add(2 * x0)),
                        row,
                        weights: w.weights[ob * w_block..].as_ptr(),
                        bias: w.bias[ob * BLOCK..].as_ptr(),
                        // SAFETY: `at` is inside the band (asserted just above).
                        output: unsafe { output.get().add(at) },
                        tiles,
                        relu,
                        next,
                    };
                    // SAFETY: `kernels` proved the CPU runs the tier; the tiles read
                    // columns up to 2 (x0 + 6 tiles - 1) + kh - 1 <= 2 (width - 1) +
                    // kh - 1 < the row's (asserted) of the kh rows of each plane from
                    // `planes` (in one band: checked above; or in the slot's copy of
                    // `cap` rows), kh x kh x 3 x 16 weights and 16 biases of block ob
                    // and of `next`'s (asserted), and write pixels x0.. of row r of
                    // those blocks, inside the band (asserted), which no other task
                    // writes (rows are split).
                    unsafe { (kernel.run)(&args) };
                }
            }
        }
    });
}

/// Window rows [`conv2d_image`] stages in one pass over a row's pixels.
const MAX_KH: usize = 8;

/// Writes the pixels of `C` channel rows interleaved (`[x][c]`) into `pixels`:
/// pixel by pixel, with the channel count known to the compiler (faster than one
/// pass per channel: `docs/kernels.md`).
#[inline(always)]
fn interleave<const C: usize>(pixels: &mut [f32], channels: [&[f32]; C]) {
    let n = pixels.len() / C;
    let channels = channels.map(|ch| &ch[..n]);
    for (x, px) in pixels.chunks_exact_mut(C).enumerate() {
        for c in 0..C {
            px[c] = channels[c][x];
        }
    }
}
