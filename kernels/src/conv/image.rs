//! A direct convolution of a network's NCHW input image of at most 16 channels,
//! its window's columns folded into the input channels a few rows at a time
//! ([`conv2d_image`]).
//!
//! A tap of an RGB image has 3 real lanes of 16, too little arithmetic for a tap's
//! fixed cost. Instead each output column's window row is staged as one pixel of
//! `kw * ci` channels: staged pixel `(y, x)` holds input
//! `[c][y][x * stride_w + kx - pad_left]` (zero outside the image) in lane
//! `kx * ci + c`. The convolution is then a `kh x 1` window with strides
//! `(stride_h, 1)` over the staged rows, with weights in the folded packing
//! ([`crate::pack::pack_conv_weights_image`]): every product a real one, in whole
//! blocks but for the last.

use super::op::{Conv2d, PackedConv, check};
use super::tiles::{LayerTiles, TASKS_PER_THREAD, Tile};
use crate::bands::{BandsMut, MAX_BANDS};
use crate::dispatch::Kernels;
use crate::geometry::{ConvGeometry, Padding};
use crate::layout::{BLOCK, Dims, Layout};
use crate::microkernel::{TileShapes, choose_tile};
use crate::pack::{image_folded_shape, image_packed_len};
use crate::parallel::{ParallelFor, WorkerSlots};

/// Output rows one task of [`conv2d_image`] stages the input for at a time.
const IMAGE_ROWS: usize = 4;

/// The window [`conv2d_image`] runs over the staged rows: the window's rows, one
/// column, the vertical stride and padding.
fn folded_geometry(geom: &ConvGeometry) -> ConvGeometry {
    let pad = Padding { top: geom.pad.top, bottom: geom.pad.bottom, left: 0, right: 0 };
    ConvGeometry { kh: geom.kh, kw: 1, stride_h: geom.stride_h, stride_w: 1, pad }
}

/// How [`conv2d_image`] stages an image of shape `input` in one worker's slot:
/// `rows` staged rows of `width` (the output's width) pixels of `blocks` channel
/// blocks, block by block, then one input row interleaved (`[x][c]`, zero-padded
/// left and right) of `hwc_len` values, from which the pixels are copied.
#[derive(Clone, Copy, Debug)]
struct Staging {
    rows: usize,
    width: usize,
    blocks: usize,
    hwc_len: usize,
}

impl Staging {
    fn new(input: Dims, geom: &ConvGeometry) -> Self {
        let width = geom.output_hw(input.h, input.w).map_or(0, |(_, w)| w);
        let blocks = (geom.kw * input.c).div_ceil(BLOCK);
        let padded_w = input.w + geom.pad.left + geom.pad.right;
        // A pixel's last block is copied whole (16 values) from the interleaved
        // row, so the row has a block more than its padded width.
        let hwc_len = (padded_w * input.c + BLOCK).next_multiple_of(BLOCK);
        Staging { rows: (IMAGE_ROWS - 1) * geom.stride_h + geom.kh, width, blocks, hwc_len }
    }

    /// Values of one staged block (all its rows).
    fn block_len(&self) -> usize {
        self.rows * self.width * BLOCK
    }

    /// Values of one worker's slot.
    fn slot_len(&self) -> usize {
        self.blocks * self.block_len() + self.hwc_len
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
/// stages the window rows that a few (`IMAGE_ROWS`) output rows read, each output
/// column's window row one pixel of `kw * ci` lanes (lane `kx * ci + c`), in its
/// worker's slot of `scratch` (which must hold [`conv2d_image_scratch_len`]
/// values, split evenly into one slot per worker), then runs the tiles of the
/// folded `kh x 1` window, strides `(stride_h, 1)`, on them. With more than one output
/// band, one task per band computes its rows. Sums as
/// [`conv2d`](crate::conv::conv2d) on the staged image with the folded weights:
/// the same bits at any thread count and band split.
pub fn conv2d_image(kernels: &Kernels, op: &Conv2d, out: &mut BandsMut, scratch: &mut [f32], par: &dyn ParallelFor) {
    let Conv2d { input, weights: w, geom, residual, .. } = *op;
    let s = w.shape;
    let (d, dout) = (input.dims, out.dims);
    assert!(input.layout == Layout::Nchw && s.ci <= BLOCK, "conv2d_image: not an NCHW image of one block");
    check("conv2d_image", &input, &w, image_packed_len(s), &geom, residual.as_ref(), &out.as_bands());
    let staging = Staging::new(d, &geom);
    let (block_len, row_len) = (staging.block_len(), staging.width * BLOCK);
    let slots = WorkerSlots::new(scratch, par, staging.slot_len(), "conv2d_image");
    kernels.record_call();

    let folded = image_folded_shape(s);
    let folded_op =
        Conv2d { weights: PackedConv { shape: folded, ..w }, geom: folded_geometry(&geom), input: op.input, ..*op };
    let lanes = folded.ci;
    // The last block's real lanes: the lanes past them stay zero.
    let tail_mask: [u32; BLOCK] =
        std::array::from_fn(|i| if (staging.blocks - 1) * BLOCK + i < lanes { u32::MAX } else { 0 });
    let co_blocks = s.co_blocks();
    let (ob_tile, px_tile) = choose_tile(&kernels.ops.conv, co_blocks, dout.w);
    let split = out.split;
    // One tiling per output band, each writing its own band.
    let tiles: [Option<LayerTiles>; MAX_BANDS] = std::array::from_fn(|t| {
        (t < split.bands()).then(|| {
            let res = residual.map(|r| r.band(t));
            LayerTiles::new(kernels, &folded_op, res, &mut out.band(t), row_len, block_len, false, par)
        })
    });
    // Units of IMAGE_ROWS output rows, band by band; several bands take one task
    // each, one band is dealt to a few tasks per thread.
    let band_units = |t: usize| split.rows(t).len().div_ceil(IMAGE_ROWS);
    let tasks =
        if split.bands() > 1 { split.bands() } else { (TASKS_PER_THREAD * par.threads()).min(band_units(0)).max(1) };
    par.run(tasks, &|task| {
        // SAFETY: taken once, inside this task.
        let slot = unsafe { slots.mine(par) };
        let (staged, hwc) = slot.split_at_mut(staging.blocks * block_len);
        // The last block's lanes past the window and the interleaved row's padding
        // stay zero for the whole call: zeroed once here.
        staged.fill(0.0);
        hwc.fill(0.0);
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
            // Stage input rows oy0 * sh - pad_top onwards, zero outside the image.
            let first = (oy0 * geom.stride_h) as isize - geom.pad.top as isize;
            for r in 0..staging.rows {
                let y = first + r as isize;
                if y < 0 || y as usize >= d.h {
                    for b in 0..staging.blocks {
                        staged[b * block_len + r * row_len..][..row_len].fill(0.0);
                    }
                    continue;
                }
                let (src, y) = input.row(y as usize);
                let plane = src.dims.h * d.w;
                let pixels = &mut hwc[geom.pad.left * d.c..][..d.w * d.c];
                let ch = |c: usize| &src.data[c * plane + y * d.w..][..d.w];
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
                // Output column x's window row is the interleaved row from column
                // x * sw on: `kw * ci` values, a block at a time.
                let px_step = geom.stride_w * d.c;
                for b in 0..staging.blocks {
                    let row = &mut staged[b * block_len + r * row_len..][..row_len];
                    let hwc = &hwc[b * BLOCK..];
                    if b + 1 < staging.blocks {
                        for (x, lanes) in row.chunks_exact_mut(BLOCK).enumerate() {
                            lanes.copy_from_slice(&hwc[x * px_step..][..BLOCK]);
                        }
                    } else {
                        for (x, lanes) in row.chunks_exact_mut(BLOCK).enumerate() {
                            let from = &hwc[x * px_step..][..BLOCK];
                            for ((l, &v), &m) in lanes.iter_mut().zip(from).zip(&tail_mask) {
                                *l = f32::from_bits(v.to_bits() & m);
                            }
                        }
                    }
                }
            }
            let whole = dout.w / px_tile;
            for oy in oy0..oy0 + n_rows {
                let in_row0 = (oy - oy0) * geom.stride_h * row_len;
                let out_row = (oy - band_rows.start) * dout.w;
                for ob0 in (0..co_blocks).step_by(ob_tile) {
                    let ob = ob_tile.min(co_blocks - ob0);
                    // The row's whole tiles in one call, then the partial last one.
                    let runs = [(0, px_tile, whole), (whole * px_tile, dout.w - whole * px_tile, 1)];
                    for (ox0, px, n) in runs.into_iter().filter(|&(_, px, n)| px > 0 && n > 0) {
                        let tile = Tile { ob0, ob, out_px: out_row + ox0, px };
                        // SAFETY: the tiles read staged blocks < blocks, rows (oy -
                        // oy0) * sh + ky < rows and pixels < width (the output's), all
                        // inside this task's slot; they write these tiles of their
                        // band of the output, which no other task writes (rows are
                        // split).
                        unsafe {
                            tiles.run_row_from(
                                &staged[in_row0 + ox0 * BLOCK..],
                                block_len,
                                tile,
                                n,
                                tiles.whole(),
                                &mut shapes,
                            )
                        };
                    }
                }
            }
        }
        kernels.record_tiles(shapes);
    });
}

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
