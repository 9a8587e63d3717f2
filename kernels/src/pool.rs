//! Pooling on NCHW16c images: the ISA-neutral drivers of the tiers' pooling bodies
//! (see [`crate::blocked`]).

pub use crate::blocked::PoolKind;

use crate::bands::{Bands, BandsMut};
use crate::dispatch::Kernels;
use crate::geometry::PoolGeometry;
use crate::layout::{BLOCK, ImageMut, Layout};
use crate::parallel::{ParallelFor, for_each_band, for_each_part};

/// Max or average pooling on NCHW16c images in bands (a plain image is one band):
/// one task per output band, or, in one band, channel blocks spread over `par`'s
/// threads.
pub fn pool(
    kernels: &Kernels,
    input: Bands,
    geom: &PoolGeometry,
    kind: PoolKind,
    out: &mut BandsMut,
    par: &dyn ParallelFor,
) {
    kernels.record_call();
    let (din, dout) = (input.dims, out.dims);
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "pool: layouts");
    assert!(din.c == dout.c && geom.output_hw(din.h, din.w) == Some((dout.h, dout.w)), "pool: shapes");
    if let PoolKind::AvgPadded { pad, .. } = kind {
        assert_eq!(pad.len(), din.c, "pool: one padding value per channel");
    }
    let split = out.split;
    if split.bands() > 1 {
        for_each_band(out, par, &|t, mut band| {
            // SAFETY: a `Kernels` exists only for a tier this CPU runs.
            unsafe { (kernels.ops.pool)(input, geom, kind, &mut band, split.rows(t).start, false) }
        });
        return;
    }
    let (out_plane, layout) = (dout.h * dout.w * BLOCK, out.layout);
    // Split by channels, each thread writes lines another may hold: ask early.
    let ahead = par.threads() > 1 && kernels.prefetchw;
    for_each_part(out.band(0).data, out_plane, par, &|blocks, part| {
        let src = input.blocks(blocks.clone());
        let kind = kind.channels(blocks.start * BLOCK, src.dims.c);
        let mut part = ImageMut::new(part, dout.with_c(src.dims.c), layout);
        // SAFETY: a `Kernels` exists only for a tier this CPU runs.
        unsafe { (kernels.ops.pool)(src, geom, kind, &mut part, 0, ahead) }
    });
}

/// Global average pooling of an NCHW16c image in bands (a plain image is one
/// band) to `c x 1 x 1`, channel blocks spread over `par`'s threads.
pub fn global_avg_pool(kernels: &Kernels, input: Bands, out: &mut ImageMut, par: &dyn ParallelFor) {
    kernels.record_call();
    let d = input.dims;
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "global_avg_pool: layouts");
    assert!((out.dims.c, out.dims.h, out.dims.w) == (d.c, 1, 1), "global_avg_pool: shapes");
    for_each_part(out.data, BLOCK, par, &|blocks, part| {
        let src = input.blocks(blocks);
        // SAFETY: a `Kernels` exists only for a tier this CPU runs.
        unsafe { (kernels.ops.gap)(src, &mut ImageMut::new(part, out.dims.with_c(src.dims.c), out.layout)) }
    });
}
