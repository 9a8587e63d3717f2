//! The BF16 direct convolution of images in bands (see [`crate::bands`]).
//!
//! With the output in bands, each task computes one output band: it rounds the
//! input rows its band's windows read (with the zero border of the padding) to BF16
//! in its worker's scratch, then runs the band's tiles, group of output blocks by
//! group. A thread then reads, besides a few rows across a band boundary, only the
//! rows it wrote in the layer before, and writes only its own. With the output in
//! one band, the whole input (in any bands) is rounded once and the tiles are
//! shared out as on a plain image ([`conv2d_bf16_par`](super::conv::conv2d_bf16_par)).
//! Every split computes the same tiles in the same order: the same bits.

use super::conv::{Bf16Kernels, PackedConvBf16, Tiles, by_rows, check, conv2d_bf16_scratch_len, padded, record_call};
use super::convert::bf16;
use super::stage::stage_row;
use super::terms::Bf16Terms;
use crate::bands::{Bands, BandsMut, RowSplit};
use crate::geometry::{Activation, ConvGeometry};
use crate::layout::{BLOCK, Dims};
use crate::microkernel::TileShapes;
use crate::parallel::{ParallelFor, WorkerSlots, for_each_band};

/// BF16 scratch values [`conv2d_bf16`] needs, for an input of shape `input` with
/// operands made as `terms` and an output in bands `out_split`, on `threads` threads: the
/// rounded copy of the whole input when the output is one band, else each
/// thread's slot for the windows of the largest output band (slots start on cache
/// lines of their own).
pub fn conv2d_bf16_bands_scratch_len(
    input: Dims,
    geom: &ConvGeometry,
    terms: Bf16Terms,
    out_split: RowSplit,
    threads: usize,
) -> usize {
    if out_split.bands() == 1 {
        return conv2d_bf16_scratch_len(input, geom, terms);
    }
    let row = padded(input, geom).w * BLOCK * input.c.div_ceil(BLOCK) * terms.groups();
    let most = (0..out_split.bands())
        .map(|t| {
            let (lo, hi) = geom.window_rows(&out_split.rows(t));
            (hi - lo) as usize * row
        })
        .max()
        .unwrap_or(0);
    // A slot starts on a 64-byte line: up to 31 values more each.
    threads.max(1) * (most + 2 * BLOCK)
}

/// `out = act(conv(bf16(input), w) + bias + residual)` on NCHW16c images in bands
/// (a plain image is one band; `residual` in `out`'s bands), over `par`'s threads,
/// with [`conv2d_bf16_bands_scratch_len`] values of `scratch`. The same bits as
/// [`conv2d_bf16_par`](super::conv::conv2d_bf16_par) on the whole images.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bf16(
    kernels: &Bf16Kernels,
    input: Bands,
    w: &PackedConvBf16,
    geom: &ConvGeometry,
    residual: Option<Bands>,
    act: Activation,
    out: &mut BandsMut,
    scratch: &mut [bf16],
    par: &dyn ParallelFor,
) {
    let (din, dout, split) = (input.dims, out.dims, out.split);
    check(input.layout, din, w, geom, out.layout, dout);
    if let Some(r) = residual {
        assert!(r.dims == dout && r.split == split && r.layout == out.layout, "conv2d_bf16: residual");
    }
    let len = conv2d_bf16_bands_scratch_len(din, geom, w.terms, split, par.threads());
    assert!(scratch.len() >= len, "conv2d_bf16: scratch holds {} of {len} values", scratch.len());
    record_call(kernels);
    if split.bands() == 1 {
        let tiles = Tiles::new(kernels, w, geom, act, residual.map(|r| r.band(0).data), &mut out.band(0));
        by_rows(&tiles, input, geom, &mut scratch[..len], par);
        return;
    }
    let slots = WorkerSlots::new(scratch, par, len / par.threads().max(1) - 2 * BLOCK, "conv2d_bf16");
    let pointwise = (geom.kh, geom.kw, geom.stride_h, geom.stride_w) == (1, 1, 1, 1);
    let pd_w = padded(din, geom).w;
    for_each_band(out, par, &|t, mut band| {
        let rows = split.rows(t);
        let window = geom.window_rows(&rows);
        let n = (window.1 - window.0) as usize;
        // SAFETY: taken once, inside this task.
        let slot = unsafe { slots.mine(par) };
        let staged = &mut slot[..w.terms.groups() * din.c.div_ceil(BLOCK) * n * pd_w * BLOCK];
        for (r, row) in staged.chunks_exact_mut(pd_w * BLOCK).enumerate() {
            stage_row(kernels.mk_to_bf16(), w.terms, &input, geom, window, r, row);
        }
        let staged: &[bf16] = staged;
        let tiles = Tiles::new(kernels, w, geom, act, residual.map(|r| r.band(t).data), &mut band);
        // A pointwise band is one row of its pixels.
        let (n_rows, row_len) = if pointwise { (1, rows.len() * dout.w) } else { (rows.len(), dout.w) };
        let tiling = tiles.tiling(row_len);
        let strides = (n * pd_w * BLOCK, pd_w * BLOCK);
        let mut shapes = TileShapes::default();
        for g in 0..tiling.groups {
            let (ob0, ob) = tiling.group(g);
            let step = tiling.px[ob];
            for r in 0..n_rows {
                for ox0 in (0..row_len).step_by(step) {
                    let px = step.min(row_len - ox0);
                    let in_off = (r * geom.stride_h * pd_w + ox0 * geom.stride_w) * BLOCK;
                    // SAFETY: the tile reads staged rows r*sh .. r*sh + kh - 1 < n (the
                    // window of the band's rows) and columns up to (ox0+px-1)*sw + kw - 1
                    // < the padded width (the output size was checked against the
                    // geometry; a pointwise band is one row of n * w pixels), every
                    // value of which was written above. The tile lies in the band's
                    // output, which only this task writes.
                    unsafe {
                        tiles.run(
                            (staged[in_off..].as_ptr(), std::ptr::null()),
                            strides,
                            (ob0, ob),
                            (r * row_len + ox0, px),
                            &mut shapes,
                        )
                    };
                }
            }
        }
        tiles.record(shapes);
    });
}
