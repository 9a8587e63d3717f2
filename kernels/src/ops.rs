//! What one ISA tier provides ([`TierOps`]), and the macro that compiles the
//! shared bodies (pooling, the fully connected layer, the Winograd transforms) for
//! a tier's target features. Each tier file fills one `TierOps`; `dispatch` picks
//! one by tier.

use crate::bands::Bands;
use crate::blocked::PoolKind;
use crate::geometry::PoolGeometry;
use crate::layout::{Image, ImageMut};
use crate::microkernel::ConvMicrokernel;
use crate::winograd::transforms::{InputJob, OutputJob};

/// Pooling of output rows `oy0..` (see [`crate::blocked`]); the last flag asks to
/// prefetch the output for writing.
pub(crate) type PoolFn = unsafe fn(Bands, &PoolGeometry, PoolKind, &mut ImageMut, usize, bool);
/// Global average pooling (see [`crate::blocked`]).
pub(crate) type GapFn = unsafe fn(Bands, &mut ImageMut);
/// The fully connected layer (see [`crate::blocked`]).
pub(crate) type LinearFn = unsafe fn(Image, &[f32], &[f32], bool, &mut ImageMut);

/// The kernels of one tier. Every function pointer is safe to call only on a CPU
/// that runs the tier (`available`), which a `Kernels` proves.
#[derive(Clone, Copy)]
pub(crate) struct TierOps {
    /// Whether this CPU runs the tier.
    pub(crate) available: fn() -> bool,
    /// The direct convolution microkernel.
    pub(crate) conv: ConvMicrokernel,
    /// Pooling.
    pub(crate) pool: PoolFn,
    /// Global average pooling.
    pub(crate) gap: GapFn,
    /// The fully connected layer.
    pub(crate) linear: LinearFn,
    /// Winograd input transform of one chunk.
    pub(crate) winograd_input: unsafe fn(&mut InputJob),
    /// Winograd output transform of one chunk and group of output blocks; its
    /// safety contract is `output_transform`'s.
    pub(crate) winograd_output: unsafe fn(&OutputJob),
    /// Copies an image convolution's window rows into its staged pixels (see
    /// `crate::image_stage`).
    pub(crate) image_stage: unsafe fn(&crate::image_stage::Stage, &mut [f32]),
    /// Rows of a `k x k` stride-2 convolution of a 3-channel image straight from
    /// its planes, without staging (see `crate::image_stage::ImageRow`), by `k`;
    /// the windows not listed are staged as any other image's.
    pub(crate) image_rows: &'static [crate::image_stage::ImageRows],
    /// FMA throughput loop (see [`crate::peak`]): runs `iters` iterations.
    pub(crate) peak: unsafe fn(u64) -> f32,
    /// FLOPs of one iteration of `peak`.
    pub(crate) peak_flops: u64,
}

/// Defines `pool`, `gap`, `linear`, `winograd_input`, `winograd_output` and
/// `image_stage` in the invoking tier's module: the shared bodies compiled inside
/// its `#[target_feature]` (none for the portable tier), so that the same loops
/// become that tier's vector code.
macro_rules! shared_bodies {
    ($($feature:literal)?) => {
        $(#[target_feature(enable = $feature)])?
        unsafe fn pool(
            i: crate::bands::Bands,
            g: &crate::geometry::PoolGeometry,
            kind: crate::blocked::PoolKind,
            o: &mut crate::layout::ImageMut,
            oy0: usize,
            ahead: bool,
        ) {
            crate::blocked::pool(i, g, kind, o, oy0, ahead)
        }
        $(#[target_feature(enable = $feature)])?
        unsafe fn gap(i: crate::bands::Bands, o: &mut crate::layout::ImageMut) {
            crate::blocked::global_avg_pool(i, o)
        }
        $(#[target_feature(enable = $feature)])?
        unsafe fn linear(
            i: crate::layout::Image,
            w: &[f32],
            b: &[f32],
            relu: bool,
            o: &mut crate::layout::ImageMut,
        ) {
            crate::blocked::linear(i, w, b, relu, o)
        }
        $(#[target_feature(enable = $feature)])?
        unsafe fn winograd_input(job: &mut crate::winograd::transforms::InputJob) {
            crate::winograd::transforms::input_transform(job)
        }
        $(#[target_feature(enable = $feature)])?
        unsafe fn image_stage(stage: &crate::image_stage::Stage, staged: &mut [f32]) {
            stage.copy(staged)
        }
        $(#[target_feature(enable = $feature)])?
        unsafe fn winograd_output(job: &crate::winograd::transforms::OutputJob) {
            // SAFETY: forwarded contract.
            unsafe { crate::winograd::transforms::output_transform(job) }
        }
    };
}
pub(crate) use shared_bodies;
