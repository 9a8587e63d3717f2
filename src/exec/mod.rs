//! The executor: runs a [`Plan`] on its arena. `Session::run` allocates nothing.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use incept_kernels::conv::{PackedConv, conv2d_nchw16c};
use incept_kernels::{AlignedVec, Dims, Image, ImageMut, Kernels, Layout, Tier, reference as k};

use crate::error::{Error, Result};
use crate::plan::{Action, Kernel, Plan, PlannedStep, Program};

/// Options fixed when a session is planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Images per run (default 1).
    pub batch: usize,
    /// Worker threads (default 1).
    pub threads: usize,
    /// ISA tier of the kernels; `None` takes `INCEPT_TIER` or else the widest the CPU runs.
    pub tier: Option<Tier>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { batch: 1, threads: 1, tier: None }
    }
}

/// A model planned for one batch size, with its own arena. Create one per thread;
/// sessions of the same model share its weights.
pub struct Session {
    program: Arc<Program>,
    plan: Plan,
    arena: AlignedVec,
    /// Nanoseconds spent in each step, summed over profiled runs (empty when off).
    step_nanos: Vec<u64>,
    profiled_runs: u64,
    options: SessionOptions,
    input_len: usize,
    output_len: usize,
    kernels: Kernels,
}

impl Session {
    /// Plans `program` with `options` and allocates the arena (the last allocation).
    pub fn new(program: Arc<Program>, options: SessionOptions) -> Result<Session> {
        if options.threads == 0 {
            return Err(Error::Options("threads must be at least 1".into()));
        }
        let tier = match options.tier {
            Some(t) => t,
            None => Tier::from_env().map_err(Error::Options)?,
        };
        let kernels = Kernels::new(tier)
            .ok_or_else(|| Error::Options(format!("this CPU cannot run the {} tier", tier.name())))?;
        let plan = Plan::new(&program, options.batch)?;
        let arena = AlignedVec::zeroed(plan.arena_len);
        let g = &program.graph;
        let (input_len, output_len) =
            (options.batch * g.dims(g.input).volume(), options.batch * g.dims(g.output).volume());
        Ok(Session {
            program,
            plan,
            arena,
            step_nanos: Vec::new(),
            profiled_runs: 0,
            options,
            input_len,
            output_len,
            kernels,
        })
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The ISA tier the session's kernels run on.
    pub fn tier(&self) -> Tier {
        self.kernels.tier()
    }

    /// The options the session was planned with.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Input shape `[N, C, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        let d = self.program.graph.dims(self.program.graph.input);
        [self.plan.batch, d.c, d.h, d.w]
    }

    /// Output shape: `[N, C]` for feature vectors and logits, `[N, C, H, W]` otherwise.
    pub fn output_shape(&self) -> Vec<usize> {
        let g = &self.program.graph;
        let d = g.dims(g.output);
        if g.values[g.output.0].flat { vec![self.plan.batch, d.c] } else { vec![self.plan.batch, d.c, d.h, d.w] }
    }

    /// Number of `f32` in the input buffer.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Number of `f32` in the output buffer.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Runs the model: `input` is `N x C x H x W` (NCHW), `output` receives the
    /// result in NCHW order. Allocates nothing.
    pub fn run(&mut self, input: &[f32], output: &mut [f32]) -> Result<()> {
        if input.len() != self.input_len() {
            return Err(Error::BufferSize { what: "input", got: input.len(), expected: self.input_len() });
        }
        if output.len() != self.output_len() {
            return Err(Error::BufferSize { what: "output", got: output.len(), expected: self.output_len() });
        }
        let arena = self.arena.as_mut_slice();
        let cx = Context { program: &self.program, kernels: &self.kernels, layout: self.plan.layout };
        let profiling = !self.step_nanos.is_empty();
        for (i, step) in self.plan.steps.iter().enumerate() {
            let t0 = profiling.then(Instant::now);
            for n in 0..self.plan.batch {
                run_step(&cx, step, n, arena, input, output);
            }
            if let Some(t0) = t0 {
                self.step_nanos[i] += t0.elapsed().as_nanos() as u64;
            }
        }
        self.profiled_runs += profiling as u64;
        Ok(())
    }

    /// Turns per-step timing on (and resets it) or off. Timing costs two clock reads
    /// per step and allocates nothing during runs.
    pub fn set_profiling(&mut self, on: bool) {
        self.step_nanos = if on { vec![0; self.plan.steps.len()] } else { Vec::new() };
        self.profiled_runs = 0;
    }

    /// Mean time per run of each step since profiling was turned on, in plan order.
    pub fn profile(&self) -> Vec<StepProfile> {
        let runs = self.profiled_runs.max(1) as f64;
        self.plan
            .steps
            .iter()
            .zip(&self.step_nanos)
            .map(|(s, &ns)| StepProfile {
                name: s.name.clone(),
                kind: s.kind_name(),
                seconds: ns as f64 / runs / 1e9,
                macs: s.macs() * self.plan.batch as u64,
            })
            .collect()
    }
}

/// Time spent in one step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct StepProfile {
    /// The step's name (fused graph nodes joined by `+`).
    pub name: String,
    /// What it computes (`conv 3x3/2`, `max_pool`, ...).
    pub kind: String,
    /// Mean seconds per run.
    pub seconds: f64,
    /// Multiply-adds per run.
    pub macs: u64,
}

/// What every step of a run reads: the weights, the kernels, the layout.
struct Context<'a> {
    program: &'a Program,
    kernels: &'a Kernels,
    layout: Layout,
}

/// Runs `step` on image `n`.
fn run_step(cx: &Context, step: &PlannedStep, n: usize, arena: &mut [f32], input: &[f32], output: &mut [f32]) {
    let Context { program, kernels, layout } = *cx;
    let nchw_image = |d: Dims| n * d.volume()..(n + 1) * d.volume();
    match &step.action {
        Action::Input => {
            let d = step.output.dims;
            let src = Image::new(&input[nchw_image(d)], d, Layout::Nchw);
            k::copy(src, &mut ImageMut::new(&mut arena[step.output.range(layout, n)], d, layout));
        }
        Action::Output => {
            let d = step.output.dims;
            let src = Image::new(&arena[step.output.range(layout, n)], d, layout);
            k::copy(src, &mut ImageMut::new(&mut output[nchw_image(d)], d, Layout::Nchw));
        }
        Action::Copy { c0 } => with_views(arena, layout, step, n, |ins, out, _| k::copy_channels(ins[0], *c0, out)),
        Action::Kernel(kernel) => {
            let t = |id: crate::plan::TensorId| program.tensors[id.0].as_slice();
            with_views(arena, layout, step, n, |ins, out, scratch| match kernel {
                Kernel::Conv { weight, bias, shape, geom, act, residual } => {
                    let w = PackedConv { shape: *shape, weights: t(*weight), bias: t(*bias) };
                    conv2d_nchw16c(kernels, ins[0], &w, geom, residual.then_some(ins[1]), *act, out, scratch)
                }
                Kernel::Linear { weight, bias, act } if (ins[0].dims.h, ins[0].dims.w) == (1, 1) => {
                    kernels.linear(ins[0], t(*weight), t(*bias), *act, out)
                }
                Kernel::Linear { weight, bias, act } => k::linear(ins[0], t(*weight), Some(t(*bias)), *act, out),
                Kernel::BatchNorm { params: [g, b, m, v], eps } => {
                    k::batch_norm(ins[0], t(*g), t(*b), t(*m), t(*v), *eps, out)
                }
                Kernel::Relu => k::relu(ins[0], out),
                Kernel::MaxPool(g) => kernels.max_pool(ins[0], g, out),
                Kernel::AvgPool(g, count_include_pad) => kernels.avg_pool(ins[0], g, *count_include_pad, out),
                Kernel::GlobalAvgPool => kernels.global_avg_pool(ins[0], out),
                Kernel::ResidualAdd(scale, act) => k::residual_add(ins[0], ins[1], *scale, *act, out),
                Kernel::Lrn { size, alpha, beta, k: bias } => k::lrn(ins[0], *size, *alpha, *beta, *bias, out),
                Kernel::Softmax => k::softmax(ins[0], out),
                Kernel::Concat => unreachable!("the planner removes concatenations"),
            })
        }
    }
}

/// Borrows the output view of image `n` and the step's scratch mutably, and up to
/// two input views shared. The planner never lets a step's inputs, output and
/// scratch overlap, so the arena splits into the two writable ranges and three
/// read-only gaps around them, and each input lies inside one gap.
fn with_views(
    arena: &mut [f32],
    layout: Layout,
    step: &PlannedStep,
    n: usize,
    f: impl FnOnce([Image; 2], &mut ImageMut, &mut [f32]),
) {
    let out = step.output.range(layout, n);
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
    let empty = Image { data: &[], dims: Dims::new(0, 0, 0), layout };
    let mut ins = [empty; 2];
    for (slot, v) in ins.iter_mut().zip(&step.inputs) {
        *slot = Image::new(read(v.range(layout, n)), v.dims, layout);
    }
    f(ins, &mut ImageMut::new(out_data, step.output.dims, layout), scratch_data);
}
