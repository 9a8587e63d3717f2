//! A direct convolution of a network's NCHW input image of at most 16 channels,
//! expanded to NCHW16c a few rows at a time ([`conv2d_image`]).

use super::op::{Conv2d, check};
use super::tiles::{LayerTiles, TASKS_PER_THREAD, Tile};
use crate::bands::{BandsMut, MAX_BANDS};
use crate::dispatch::Kernels;
use crate::geometry::ConvGeometry;
use crate::layout::{BLOCK, Dims, Layout};
use crate::microkernel::{TileShapes, choose_tile};
use crate::parallel::{ParallelFor, WorkerSlots};

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

/// [`conv2d`](crate::conv::conv2d) on an NCHW image of at most 16 channels (a network's input, in
/// bands): each task expands the input rows that a few (`IMAGE_ROWS`) output rows
/// read into zero-padded NCHW16c rows in its worker's slot of `scratch` (which must
/// hold [`conv2d_image_scratch_len`] values, split evenly into one slot per worker),
/// so the image, 13 of whose 16 lanes are padding for an RGB input, is never
/// written out whole. With more than one output band, one task per band computes
/// its rows. The same tiles and sums as [`conv2d`](crate::conv::conv2d): the same bits.
pub fn conv2d_image(kernels: &Kernels, op: &Conv2d, out: &mut BandsMut, scratch: &mut [f32], par: &dyn ParallelFor) {
    let Conv2d { input, weights: w, geom, residual, .. } = *op;
    let (w, geom) = (&w, &geom);
    let s = w.shape;
    let (d, dout) = (input.dims, out.dims);
    assert!(input.layout == Layout::Nchw && s.ci <= BLOCK, "conv2d_image: not an NCHW image of one block");
    check("conv2d_image", &input, w, s.packed_len(), geom, residual.as_ref(), &out.as_bands());
    let (rows, width) = image_staging(d, geom);
    let slot_len = rows * width * BLOCK;
    let slots = WorkerSlots::new(scratch, par, slot_len, "conv2d_image");
    kernels.record_call();

    let co_blocks = s.co_blocks();
    let (ob_tile, px_tile) = choose_tile(&kernels.ops.conv, co_blocks, dout.w);
    let split = out.split;
    // One tiling per output band, each writing its own band.
    let tiles: [Option<LayerTiles>; MAX_BANDS] = std::array::from_fn(|t| {
        (t < split.bands()).then(|| {
            let res = residual.map(|r| r.band(t));
            LayerTiles::new(kernels, op, res, &mut out.band(t), width * BLOCK, slot_len, slot_len, par)
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
        // real lanes (rewriting all 16 lanes per pixel would cost 16/3 times the
        // stores of an RGB image).
        staging.fill(0.0);
        let (band, units) = if split.bands() > 1 {
            (task, 0..band_units(task))
        } else {
            (0, task * band_units(0) / tasks..(task + 1) * band_units(0) / tasks)
        };
        let tiles = tiles[band].as_ref().expect("a tiling per band");
        let band_rows = split.rows(band);
        let mut shapes = TileShapes::default();
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
                let ch = |c: usize| &src.data[c * plane + y * d.w..][..d.w];
                match d.c {
                    1 => expand_pixels(pixels, [ch(0)]),
                    2 => expand_pixels(pixels, [ch(0), ch(1)]),
                    3 => expand_pixels(pixels, [ch(0), ch(1), ch(2)]),
                    4 => expand_pixels(pixels, [ch(0), ch(1), ch(2), ch(3)]),
                    _ => {
                        for c in 0..d.c {
                            for (lanes, &v) in pixels.chunks_exact_mut(BLOCK).zip(ch(c)) {
                                lanes[c] = v;
                            }
                        }
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
                        unsafe { tiles.run(&staging[at..], Tile { ob0, ob, out_px, px }, &mut shapes) };
                    }
                }
            }
        }
        kernels.record_tiles(shapes);
    });
}

/// Writes the first `C` lanes of each pixel's block of `pixels` from the `C`
/// channel rows: pixel by pixel, each block's line once, with the channel count
/// known to the compiler: faster than one pass per channel (figures:
/// `docs/kernels.md`).
#[inline(always)]
fn expand_pixels<const C: usize>(pixels: &mut [f32], channels: [&[f32]; C]) {
    let n = pixels.len() / BLOCK;
    let channels = channels.map(|ch| &ch[..n]);
    for (x, lanes) in pixels.chunks_exact_mut(BLOCK).enumerate() {
        for c in 0..C {
            lanes[c] = channels[c][x];
        }
    }
}
