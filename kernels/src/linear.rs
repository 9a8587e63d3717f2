//! The fully connected layer on NCHW16c images: the ISA-neutral driver of the
//! tiers' linear body (see [`crate::blocked`]).

use crate::dispatch::Kernels;
use crate::geometry::Activation;
use crate::layout::{BLOCK, Image, ImageMut, Layout};
use crate::parallel::{ParallelFor, for_each_part};

/// Fully connected layer on a `c x 1 x 1` NCHW16c image; weights `[out, in]`.
/// Blocks of 16 outputs are spread over `par`'s threads.
pub fn linear(
    kernels: &Kernels,
    input: Image,
    weights: &[f32],
    bias: &[f32],
    act: Activation,
    out: &mut ImageMut,
    par: &dyn ParallelFor,
) {
    kernels.record_call();
    let (k, n) = (input.dims.c, out.dims.c);
    assert!(out.layout == Layout::Nchw16c && (out.dims.h, out.dims.w) == (1, 1), "linear: output");
    assert!(weights.len() == n * k && bias.len() == n, "linear: weights are not [out, in]");
    assert_eq!(out.data.len(), n.div_ceil(BLOCK) * BLOCK, "linear: output length");
    for_each_part(out.data, BLOCK, par, &|blocks, part| {
        let rows = blocks.start * BLOCK..n.min(blocks.end * BLOCK);
        let w = &weights[rows.start * k..rows.end * k];
        let o = &mut ImageMut::new(part, out.dims.with_c(rows.len()), out.layout);
        // SAFETY: a `Kernels` exists only for a tier this CPU runs.
        unsafe { (kernels.linear)(input, w, &bias[rows], act == Activation::Relu, o) }
    });
}
