//! Direct convolution on NCHW16c images: the ISA-neutral driver.
//!
//! The driver pads the input into scratch when the window has padding (so every
//! tap of every tile is in bounds and the microkernels never branch on the border),
//! then walks the output in tiles of `ob` output blocks x `px` pixels of one row and
//! hands each tile to the tier's microkernel. A 1x1 stride-1 convolution has no row
//! structure to respect, so its whole image is one long row.
//!
//! - [`op`](Conv2d): a convolution's operands, shared with the Winograd driver;
//! - `tiles`: what every tile of a layer shares, the layer in one band;
//! - `bands`: the layer in bands of rows;
//! - `image`: the network's NCHW input image ([`conv2d_image`]).

mod bands;
mod image;
pub(crate) mod op;
mod tiles;

pub use bands::conv2d_bands_scratch_len;
use bands::{RowTiles, in_one_band, stage_rows};
pub use image::{conv2d_image, conv2d_image_scratch_len};
use op::check;
pub use op::{Conv2d, PackedConv};
use tiles::{TASKS_PER_THREAD, one_band};
pub use tiles::{conv2d_scratch_len, k_block_taps};

use crate::bands::BandsMut;
use crate::dispatch::Kernels;
use crate::geometry::ConvGeometry;
use crate::layout::{Image, Layout};
pub use crate::microkernel::{CHUNK_TERMS, chunk_taps};
use crate::parallel::{ParallelFor, Sequential, WorkerSlots, for_each_band};

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
    check("conv2d", &input, &w, s.packed_len(), geom, residual.as_ref(), &out.as_bands());
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
            let (lo, hi) = geom.window_rows(&rows);
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
