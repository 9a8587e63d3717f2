//! Running the steps of a plan on an arena.

use std::ops::Range;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use incept_kernels::bands::MAX_BANDS;
use incept_kernels::bf16::{Bf16Kernels, PackedConvBf16, conv2d_bf16, conv2d_bf16_image};
use incept_kernels::blocked::reorder_bands;
use incept_kernels::conv::{Conv2d, PackedConv, conv2d, conv2d_image};
use incept_kernels::linear::linear;
use incept_kernels::nhwc::reorder_from_nhwc;
use incept_kernels::parallel::ParallelFor;
use incept_kernels::pool::{PoolKind, global_avg_pool, pool};
use incept_kernels::winograd::conv2d_winograd;
use incept_kernels::{
    Activation, AlignedVec, Bands, BandsMut, Dims, Image, ImageMut, Kernels, Layout, RowSplit, reference as k,
};

use crate::graph::InputLayout;
use crate::lower::{Algorithm, Kernel, Program, TensorId};
use crate::plan::{Action, Plan, PlannedStep, WORKER_SLOT_ALIGN};

/// What a run mutates: the arenas, the workers' scratch and the profile.
pub(super) struct State {
    /// One arena per band (see [`Plan::bands`]).
    pub(super) arenas: Vec<AlignedVec>,
    /// Scratch in one slot per worker, apart from the arena (see
    /// [`Plan::worker_scratch_len`]), from its first [`WORKER_SLOT_ALIGN`] boundary.
    pub(super) workers: AlignedVec,
    /// Nanoseconds spent in each step, summed over profiled runs (empty when off).
    pub(super) step_nanos: Vec<u64>,
    pub(super) profiled_runs: u64,
    /// What the steps are timed with (see `Session::set_profile_clock`).
    pub(super) step_clock: super::ProfileClock,
}

/// The default [`super::ProfileClock`]: the monotonic wall clock since its first read.
pub(super) fn wall_clock() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Runs every step of `plan` on `state`'s arenas.
pub(super) fn run_plan(cx: &Context, plan: &Plan, state: &mut State, input: &[f32], output: &mut [f32]) {
    let mut arenas: [&mut [f32]; MAX_BANDS] = Default::default();
    for (a, arena) in arenas.iter_mut().zip(&mut state.arenas) {
        *a = arena.as_mut_slice();
    }
    let arenas = &mut arenas[..plan.bands];
    let workers = aligned_slots(state.workers.as_mut_slice(), plan.worker_scratch_len);
    let profiling = !state.step_nanos.is_empty();
    for (i, step) in plan.steps.iter().enumerate() {
        let t0 = profiling.then(state.step_clock);
        for n in 0..plan.batch {
            run_step(cx, step, n, arenas, workers, input, output);
        }
        if let Some(t0) = t0 {
            state.step_nanos[i] += (state.step_clock)().saturating_sub(t0).as_nanos() as u64;
        }
    }
    state.profiled_runs += profiling as u64;
}

/// The `len` floats of `buf` from its first address that is a multiple of
/// [`WORKER_SLOT_ALIGN`] floats (`buf` has room for that many more).
fn aligned_slots(buf: &mut [f32], len: usize) -> &mut [f32] {
    if len == 0 {
        return &mut [];
    }
    let align = WORKER_SLOT_ALIGN * 4;
    let skip = (buf.as_ptr() as usize).next_multiple_of(align).wrapping_sub(buf.as_ptr() as usize) / 4;
    &mut buf[skip..skip + len]
}

/// Length of the workers' scratch buffer for `plan`: room for its slots from a
/// [`WORKER_SLOT_ALIGN`] boundary.
pub(super) fn worker_buffer_len(plan: &Plan) -> usize {
    if plan.worker_scratch_len == 0 { 0 } else { plan.worker_scratch_len.saturating_add(WORKER_SLOT_ALIGN) }
}

/// What every step of a run reads: the weights, the kernels, the threads (each
/// view carries its layout).
pub(super) struct Context<'a> {
    pub(super) program: &'a Program,
    pub(super) kernels: &'a Kernels,
    /// The BF16 kernels, for a program with BF16 convolutions.
    pub(super) bf16: Option<&'a Bf16Kernels>,
    pub(super) par: &'a dyn ParallelFor,
}

/// Runs `step` on image `n`.
fn run_step(
    cx: &Context,
    step: &PlannedStep,
    n: usize,
    arenas: &mut [&mut [f32]],
    workers: &mut [f32],
    input: &[f32],
    output: &mut [f32],
) {
    let Context { program, kernels, bf16, par } = *cx;
    let nchw_image = |d: Dims| n * d.volume()..(n + 1) * d.volume();
    match &step.action {
        Action::Input => {
            let d = step.output.dims;
            let src = &input[nchw_image(d)];
            match program.graph.input_layout {
                InputLayout::Nchw => with_views(arenas, step, n, |_, out, _| {
                    reorder_bands(Image::new(src, d, Layout::Nchw).into(), out, par)
                }),
                InputLayout::Nhwc => with_views(arenas, step, n, |_, out, _| reorder_from_nhwc(src, out, par)),
            }
        }
        Action::Output => {
            let (d, v) = (step.output.dims, step.output);
            let mut parts = [&[][..]; MAX_BANDS];
            for (t, part) in parts.iter_mut().enumerate().take(v.split.bands()) {
                *part = &arenas[t][v.band_range(n, t)];
            }
            let src = Bands::new(&parts[..v.split.bands()], d, v.layout, v.split);
            let dst = &mut ImageMut::new(&mut output[nchw_image(d)], d, Layout::Nchw);
            reorder_bands(src, &mut dst.into(), par);
        }
        Action::Copy { c0 } => with_views(arenas, step, n, |ins, out, _| {
            for_bands(ins, out, |ins, out| k::copy_channels(ins[0], *c0, out))
        }),
        Action::Kernel(kernel) => {
            let t = |id: TensorId| program.tensor(id);
            with_views(arenas, step, n, |ins, out, scratch| {
                // The whole workers' buffer: the kernel splits it evenly, so each
                // worker keeps the same lines from layer to layer.
                let scratch = if step.worker_scratch { &mut *workers } else { scratch };
                match kernel {
                    Kernel::Conv { weight, bias, shape, geom, act, residual, algorithm } => {
                        let weights = PackedConv { shape: *shape, weights: t(*weight), bias: t(*bias) };
                        let residual = residual.then_some(ins[1]);
                        let op = Conv2d { input: ins[0], weights, geom: *geom, residual, act: *act };
                        debug_assert_eq!(ins[0].layout, algorithm.input_layout(), "{}", step.name);
                        match *algorithm {
                            Algorithm::Direct => conv2d(kernels, &op, out, scratch, par),
                            Algorithm::FromImage => conv2d_image(kernels, &op, out, scratch, par),
                            Algorithm::Winograd(scheme) => conv2d_winograd(kernels, &op, scheme, out, scratch, par),
                            Algorithm::Bf16Direct | Algorithm::Bf16x3Direct | Algorithm::Bf16FromImage => {
                                let conv = match algorithm {
                                    Algorithm::Bf16FromImage => conv2d_bf16_image,
                                    _ => conv2d_bf16,
                                };
                                let terms = algorithm.precision().bf16_terms().expect("a BF16 algorithm");
                                conv(
                                    bf16.expect("a session of a BF16 program has BF16 kernels"),
                                    op.input,
                                    &PackedConvBf16 {
                                        shape: *shape,
                                        terms,
                                        weights: program.tensor_bf16(*weight),
                                        bias: t(*bias),
                                    },
                                    geom,
                                    op.residual,
                                    *act,
                                    out,
                                    bytemuck::cast_slice_mut(scratch),
                                    par,
                                )
                            }
                        }
                    }
                    Kernel::Linear { weight, bias, act } if (ins[0].dims.h, ins[0].dims.w) == (1, 1) => {
                        linear(kernels, ins[0].band(0), t(*weight), t(*bias), *act, &mut out.band(0), par)
                    }
                    Kernel::Linear { weight, bias, act } => {
                        // The planner keeps a map a fully connected layer reads in one band.
                        k::linear(ins[0].band(0), t(*weight), Some(t(*bias)), *act, &mut out.band(0))
                    }
                    Kernel::BatchNorm { params: [g, b, m, v], eps } => {
                        for_bands(ins, out, |ins, out| k::batch_norm(ins[0], t(*g), t(*b), t(*m), t(*v), *eps, out))
                    }
                    Kernel::Relu => for_bands(ins, out, |ins, out| k::relu(ins[0], out)),
                    Kernel::MaxPool(g) => pool(kernels, ins[0], g, PoolKind::Max, out, par),
                    Kernel::AvgPool(g, count_include_pad, pad, act) => {
                        let relu = *act == Activation::Relu;
                        let kind = match pad {
                            Some(pad) => PoolKind::AvgPadded { pad: &t(*pad)[..ins[0].dims.c], relu },
                            None => PoolKind::Avg { count_include_pad: *count_include_pad, relu },
                        };
                        pool(kernels, ins[0], g, kind, out, par)
                    }
                    Kernel::GlobalAvgPool => global_avg_pool(kernels, ins[0], &mut out.band(0), par),
                    Kernel::ResidualAdd(scale, act) => {
                        for_bands(ins, out, |ins, out| k::residual_add(ins[0], ins[1], *scale, *act, out))
                    }
                    Kernel::Lrn { size, alpha, beta, k: bias } => {
                        for_bands(ins, out, |ins, out| k::lrn(ins[0], *size, *alpha, *beta, *bias, out))
                    }
                    Kernel::Softmax => for_bands(ins, out, |ins, out| k::softmax(ins[0], out)),
                    Kernel::Pointwise(f) => for_bands(ins, out, |ins, out| k::pointwise(ins[0], |v| f.apply(v), out)),
                    Kernel::Concat => unreachable!("the planner removes concatenations"),
                }
            })
        }
    }
}

/// Runs a whole-image kernel (a reference one) band by band, on the calling
/// thread: its inputs and output are in the same bands (the planner sees to it).
fn for_bands(ins: [Bands; 2], out: &mut BandsMut, f: impl Fn([Image; 2], &mut ImageMut)) {
    let split = out.split;
    for t in 0..split.bands() {
        // An absent second input is an empty image in one band.
        f(ins.map(|b| if b.split == split { b.band(t) } else { b.band(0) }), &mut out.band(t));
    }
}

/// Borrows the output bands of image `n` and the step's scratch (in arena 0)
/// mutably, and up to two input views' bands shared. The planner never lets a
/// step's inputs, output and scratch overlap, so each arena splits into the
/// writable ranges and the read-only gaps around them, and each input band lies
/// inside one gap of its arena.
fn with_views(
    arenas: &mut [&mut [f32]],
    step: &PlannedStep,
    n: usize,
    f: impl FnOnce([Bands; 2], &mut BandsMut, &mut [f32]),
) {
    let view = step.output;
    let mut outs: [&mut [f32]; MAX_BANDS] = Default::default();
    let mut scratch: &mut [f32] = &mut [];
    let mut in_parts = [[&[][..]; MAX_BANDS]; 2];
    for (t, arena) in arenas.iter_mut().enumerate() {
        let out = if t < view.split.bands() { view.band_range(n, t) } else { 0..0 };
        let scratch_range = if t == 0 && !step.scratch.is_empty() { step.scratch.clone() } else { out.end..out.end };
        let (out_data, scratch_data, gaps) = split_arena(arena, out, scratch_range, &step.name);
        outs[t] = out_data;
        if t == 0 {
            scratch = scratch_data;
        }
        for (parts, v) in in_parts.iter_mut().zip(&step.inputs) {
            if t < v.split.bands() {
                parts[t] = gaps.read(v.band_range(n, t), &step.name);
            }
        }
    }
    let empty = Bands::new(&[&[]], Dims::new(0, 0, 0), step.output.layout, RowSplit::whole(0));
    let mut ins = [empty; 2];
    for ((slot, v), parts) in ins.iter_mut().zip(&step.inputs).zip(&in_parts) {
        *slot = Bands::new(&parts[..v.split.bands()], v.dims, v.layout, v.split);
    }
    let outs = outs.into_iter().take(view.split.bands());
    f(ins, &mut BandsMut::new(outs, view.dims, view.layout, view.split), scratch);
}

/// The read-only parts of an arena around a step's output and scratch.
struct Gaps<'a>([(&'a [f32], usize); 3]);

impl<'a> Gaps<'a> {
    /// `r`, which must lie inside one gap.
    fn read(&self, r: Range<usize>, step: &str) -> &'a [f32] {
        for &(gap, start) in &self.0 {
            if r.start >= start && r.end <= start + gap.len() {
                return &gap[r.start - start..r.end - start];
            }
        }
        unreachable!("plan bug: step '{step}' reads {r:?}, which overlaps what it writes")
    }
}

/// Splits `arena` into the writable `out` and `scratch` ranges (which must not
/// overlap) and the read-only gaps around them.
fn split_arena<'a>(
    arena: &'a mut [f32],
    out: Range<usize>,
    scratch: Range<usize>,
    step: &str,
) -> (&'a mut [f32], &'a mut [f32], Gaps<'a>) {
    let (lo, hi) =
        if out.start <= scratch.start { (out.clone(), scratch.clone()) } else { (scratch.clone(), out.clone()) };
    assert!(lo.end <= hi.start, "plan bug: step '{step}' has overlapping output and scratch");
    let (gap0, rest) = arena.split_at_mut(lo.start);
    let (lo_data, rest) = rest.split_at_mut(lo.len());
    let (gap1, rest) = rest.split_at_mut(hi.start - lo.end);
    let (hi_data, gap2) = rest.split_at_mut(hi.len());
    let (out_data, scratch_data) = if out.start <= scratch.start { (lo_data, hi_data) } else { (hi_data, lo_data) };
    (out_data, scratch_data, Gaps([(gap0, 0), (gap1, lo.end), (gap2, hi.end)]))
}
