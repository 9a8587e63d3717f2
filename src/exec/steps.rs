//! Running the steps of a plan on an arena.

use std::ops::Range;
use std::time::Instant;

use incept_kernels::blocked::reorder;
use incept_kernels::conv::{PackedConv, conv2d_image_par, conv2d_nchw16c_par};
use incept_kernels::parallel::ParallelFor;
use incept_kernels::winograd::conv2d_winograd_par;
use incept_kernels::{AlignedVec, Dims, Image, ImageMut, Kernels, Layout, reference as k};

use crate::plan::{Action, Kernel, Plan, PlannedStep, Program, WORKER_SLOT_ALIGN};

/// What a run mutates: the arena, the workers' scratch and the profile.
pub(super) struct State {
    pub(super) arena: AlignedVec,
    /// Scratch in one slot per worker, apart from the arena (see
    /// [`Plan::worker_scratch_len`]), from its first [`WORKER_SLOT_ALIGN`] boundary.
    pub(super) workers: AlignedVec,
    /// Nanoseconds spent in each step, summed over profiled runs (empty when off).
    pub(super) step_nanos: Vec<u64>,
    pub(super) profiled_runs: u64,
}

/// Runs every step of `plan` on `state`'s arena.
pub(super) fn run_plan(cx: &Context, plan: &Plan, state: &mut State, input: &[f32], output: &mut [f32]) {
    let arena = state.arena.as_mut_slice();
    let workers = aligned_slots(state.workers.as_mut_slice(), plan.worker_scratch_len);
    let profiling = !state.step_nanos.is_empty();
    for (i, step) in plan.steps.iter().enumerate() {
        let t0 = profiling.then(Instant::now);
        for n in 0..plan.batch {
            run_step(cx, step, n, arena, workers, input, output);
        }
        if let Some(t0) = t0 {
            state.step_nanos[i] += t0.elapsed().as_nanos() as u64;
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

/// The workers' scratch buffer for `plan`: room for its slots from a
/// [`WORKER_SLOT_ALIGN`] boundary.
pub(super) fn worker_buffer(plan: &Plan) -> AlignedVec {
    AlignedVec::zeroed(if plan.worker_scratch_len == 0 { 0 } else { plan.worker_scratch_len + WORKER_SLOT_ALIGN })
}

/// What every step of a run reads: the weights, the kernels, the threads (each
/// view carries its layout).
pub(super) struct Context<'a> {
    pub(super) program: &'a Program,
    pub(super) kernels: &'a Kernels,
    pub(super) par: &'a dyn ParallelFor,
}

/// Runs `step` on image `n`.
fn run_step(
    cx: &Context,
    step: &PlannedStep,
    n: usize,
    arena: &mut [f32],
    workers: &mut [f32],
    input: &[f32],
    output: &mut [f32],
) {
    let Context { program, kernels, par } = *cx;
    let nchw_image = |d: Dims| n * d.volume()..(n + 1) * d.volume();
    match &step.action {
        Action::Input => {
            let d = step.output.dims;
            let src = Image::new(&input[nchw_image(d)], d, Layout::Nchw);
            let out = step.output;
            reorder(src, &mut ImageMut::new(&mut arena[out.range(n)], d, out.layout), par);
        }
        Action::Output => {
            let d = step.output.dims;
            let src = Image::new(&arena[step.output.range(n)], d, step.output.layout);
            reorder(src, &mut ImageMut::new(&mut output[nchw_image(d)], d, Layout::Nchw), par);
        }
        Action::Copy { c0 } => with_views(arena, step, n, |ins, out, _| k::copy_channels(ins[0], *c0, out)),
        Action::Kernel(kernel) => {
            let t = |id: crate::plan::TensorId| program.tensor(id);
            with_views(arena, step, n, |ins, out, scratch| {
                // The whole workers' buffer: the kernel splits it evenly, so each
                // worker keeps the same lines from layer to layer.
                let scratch = if step.worker_scratch { &mut *workers } else { scratch };
                match kernel {
                    Kernel::Conv { weight, bias, shape, geom, act, residual, winograd } => {
                        let w = PackedConv { shape: *shape, weights: t(*weight), bias: t(*bias) };
                        let res = residual.then_some(ins[1]);
                        if ins[0].layout == Layout::Nchw {
                            conv2d_image_par(kernels, ins[0], &w, geom, res, *act, out, scratch, par)
                        } else if let Some(scheme) = *winograd {
                            conv2d_winograd_par(kernels, ins[0], &w, geom, scheme, res, *act, out, scratch, par)
                        } else {
                            conv2d_nchw16c_par(kernels, ins[0], &w, geom, res, *act, out, scratch, par)
                        }
                    }
                    Kernel::Linear { weight, bias, act } if (ins[0].dims.h, ins[0].dims.w) == (1, 1) => {
                        kernels.linear(ins[0], t(*weight), t(*bias), *act, out, par)
                    }
                    Kernel::Linear { weight, bias, act } => k::linear(ins[0], t(*weight), Some(t(*bias)), *act, out),
                    Kernel::BatchNorm { params: [g, b, m, v], eps } => {
                        k::batch_norm(ins[0], t(*g), t(*b), t(*m), t(*v), *eps, out)
                    }
                    Kernel::Relu => k::relu(ins[0], out),
                    Kernel::MaxPool(g) => kernels.max_pool(ins[0], g, out, par),
                    Kernel::AvgPool(g, count_include_pad) => kernels.avg_pool(ins[0], g, *count_include_pad, out, par),
                    Kernel::GlobalAvgPool => kernels.global_avg_pool(ins[0], out, par),
                    Kernel::ResidualAdd(scale, act) => k::residual_add(ins[0], ins[1], *scale, *act, out),
                    Kernel::Lrn { size, alpha, beta, k: bias } => k::lrn(ins[0], *size, *alpha, *beta, *bias, out),
                    Kernel::Softmax => k::softmax(ins[0], out),
                    Kernel::Concat => unreachable!("the planner removes concatenations"),
                }
            })
        }
    }
}

/// Borrows the output view of image `n` and the step's scratch mutably, and up to
/// two input views shared. The planner never lets a step's inputs, output and
/// scratch overlap, so the arena splits into the two writable ranges and three
/// read-only gaps around them, and each input lies inside one gap.
fn with_views(arena: &mut [f32], step: &PlannedStep, n: usize, f: impl FnOnce([Image; 2], &mut ImageMut, &mut [f32])) {
    let out = step.output.range(n);
    let scratch = if step.scratch.is_empty() { out.end..out.end } else { step.scratch.clone() };
    let (lo, hi) =
        if out.start <= scratch.start { (out.clone(), scratch.clone()) } else { (scratch.clone(), out.clone()) };
    assert!(lo.end <= hi.start, "plan bug: step '{}' has overlapping output and scratch", step.name);
    let (gap0, rest) = arena.split_at_mut(lo.start);
    let (lo_data, rest) = rest.split_at_mut(lo.len());
    let (gap1, rest) = rest.split_at_mut(hi.start - lo.end);
    let (hi_data, gap2) = rest.split_at_mut(hi.len());
    let (out_data, scratch_data) = if out.start <= scratch.start { (lo_data, hi_data) } else { (hi_data, lo_data) };
    let gaps: [(&[f32], usize); 3] = [(gap0, 0), (gap1, lo.end), (gap2, hi.end)];
    let read = |r: Range<usize>| -> &[f32] {
        for &(gap, start) in &gaps {
            if r.start >= start && r.end <= start + gap.len() {
                return &gap[r.start - start..r.end - start];
            }
        }
        unreachable!("plan bug: step '{}' reads {r:?}, which overlaps what it writes", step.name)
    };
    let empty = Image { data: &[], dims: Dims::new(0, 0, 0), layout: step.output.layout };
    let mut ins = [empty; 2];
    for (slot, v) in ins.iter_mut().zip(&step.inputs) {
        *slot = Image::new(read(v.range(n)), v.dims, v.layout);
    }
    f(ins, &mut ImageMut::new(out_data, step.output.dims, step.output.layout), scratch_data);
}
