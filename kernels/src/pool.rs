//! Pooling on NCHW16c images: the ISA-neutral drivers of the tiers' pooling bodies
//! (see [`crate::blocked`]).

use crate::bands::{Bands, BandsMut};
use crate::dispatch::Kernels;
use crate::geometry::PoolGeometry;
use crate::layout::{BLOCK, ImageMut, Layout};
use crate::parallel::{ParallelFor, for_each_band, for_each_part};

/// Which pooling a window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// The largest value in the window; padding never wins.
    Max,
    /// The mean of the window; `count_include_pad` picks the divisor (the padded
    /// window's size, or the pixels inside the image).
    Avg {
        /// Whether padding counts in the divisor.
        count_include_pad: bool,
        /// Whether ReLU follows (fused: an average pool moved after its projection
        /// takes over the projection's ReLU).
        relu: bool,
    },
}

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
    let (avg, relu) = match kind {
        PoolKind::Max => (None, false),
        PoolKind::Avg { count_include_pad, relu } => (Some(count_include_pad), relu),
    };
    let (din, dout) = (input.dims, out.dims);
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "pool: layouts");
    assert!(din.c == dout.c && geom.output_hw(din.h, din.w) == Some((dout.h, dout.w)), "pool: shapes");
    let split = out.split;
    if split.bands() > 1 {
        for_each_band(out, par, &|t, mut band| {
            // SAFETY: a `Kernels` exists only for a tier this CPU runs.
            unsafe { (kernels.ops.pool)(input, geom, avg, relu, &mut band, split.rows(t).start, false) }
        });
        return;
    }
    let (out_plane, layout) = (dout.h * dout.w * BLOCK, out.layout);
    // Split by channels, each thread writes lines another may hold: ask early.
    let ahead = par.threads() > 1 && kernels.prefetchw;
    for_each_part(out.band(0).data, out_plane, par, &|blocks, part| {
        let src = input.blocks(blocks);
        let mut part = ImageMut::new(part, dout.with_c(src.dims.c), layout);
        // SAFETY: a `Kernels` exists only for a tier this CPU runs.
        unsafe { (kernels.ops.pool)(src, geom, avg, relu, &mut part, 0, ahead) }
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
