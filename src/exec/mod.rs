//! The executor: runs a [`Plan`] on its arena. `Session::run` allocates nothing.

mod steps;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use incept_kernels::bf16::{Bf16Kernels, Bf16Tier};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::{AlignedVec, Kernels, Tier};

use crate::error::{Error, Result};
use crate::graph::InputLayout;
use crate::lower::{Precision, Program};
use crate::plan::{BAND_MIN_PIXELS, Plan};
use steps::{Context, State, run_plan};
use workers::Workers;

/// Options fixed when a session is planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Images per run (default 1).
    pub batch: usize,
    /// Worker threads (default 1).
    pub threads: usize,
    /// ISA tier of the kernels; `None` takes `INCEPT_TIER` or else the widest the CPU runs.
    pub tier: Option<Tier>,
    /// Precision of the convolutions (see [`Precision`]); `None` (the default) takes
    /// the model's own: float32, or BF16 for a model file converted to BF16.
    pub precision: Option<Precision>,
    /// ISA tier of the BF16 kernels, when the session has BF16 convolutions; `None`
    /// takes `INCEPT_BF16_TIER` or else the widest the CPU runs (the portable tier
    /// runs everywhere, slowly).
    pub bf16_tier: Option<Bf16Tier>,
    /// On several threads, the maps of at least this many pixels are split into
    /// bands of rows, one per thread (default [`BAND_MIN_PIXELS`]; 0 splits every
    /// map, `usize::MAX` none).
    pub band_min_pixels: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            batch: 1,
            threads: 1,
            tier: None,
            precision: None,
            bf16_tier: None,
            band_min_pixels: BAND_MIN_PIXELS,
        }
    }
}

/// A model planned for one batch size, with its own arena. Create one per thread;
/// sessions of the same model share its weights.
pub struct Session {
    program: Arc<Program>,
    plan: Arc<Plan>,
    options: SessionOptions,
    input_len: usize,
    output_len: usize,
    kernels: Kernels,
    bf16: Option<Bf16Kernels>,
    state: State,
    /// The helper threads, when the session has more than one thread.
    workers: Option<Workers>,
}

impl Session {
    /// Plans `program` with `options` and allocates the arena and the workers'
    /// scratch (the last allocations). `options.precision`, if given, must be the
    /// program's (see [`Model::session`](crate::Model::session), which picks the
    /// program).
    pub fn new(program: Arc<Program>, options: SessionOptions) -> Result<Session> {
        if options.threads == 0 {
            return Err(Error::Options("threads must be at least 1".into()));
        }
        if let Some(p) = options.precision.filter(|&p| p != program.precision) {
            return Err(Error::Options(format!("the program is lowered for {}, not {p}", program.precision)));
        }
        let tier = match options.tier {
            Some(t) => t,
            None => Tier::from_env().map_err(Error::Options)?,
        };
        let kernels = Kernels::new(tier)
            .ok_or_else(|| Error::Options(format!("this CPU cannot run the {} tier", tier.name())))?;
        let any_bf16 = program.steps.iter().any(|s| s.algorithm().is_some_and(|a| a.precision() != Precision::F32));
        let bf16 = match (any_bf16, options.bf16_tier) {
            (false, _) => None,
            (true, tier) => {
                let tier = match tier {
                    Some(t) => t,
                    None => Bf16Tier::from_env().map_err(Error::Options)?,
                };
                Some(
                    Bf16Kernels::new(tier)
                        .ok_or_else(|| Error::Options(format!("this CPU cannot run the {} tier", tier.name())))?,
                )
            }
        };
        let plan = Arc::new(Plan::with_bands(&program, options.batch, options.threads, options.band_min_pixels)?);
        let zeroed = |len: usize, what: &str| {
            AlignedVec::try_zeroed(len).ok_or_else(|| {
                Error::Options(format!(
                    "batch {}, {} thread(s): cannot allocate {} bytes for the {what}",
                    options.batch,
                    options.threads,
                    len.saturating_mul(4)
                ))
            })
        };
        let state = State {
            arenas: (0..plan.bands).map(|_| zeroed(plan.arena_len, "arena")).collect::<Result<_>>()?,
            workers: zeroed(steps::worker_buffer_len(&plan), "workers' scratch")?,
            step_nanos: Vec::new(),
            profiled_runs: 0,
            step_clock: steps::wall_clock,
        };
        let g = &program.graph;
        let (input_len, output_len) =
            (options.batch * g.dims(g.input).volume(), options.batch * g.dims(g.output).volume());
        let workers = if options.threads > 1 { Some(Workers::start(options.threads)?) } else { None };
        Ok(Session { program, plan, options, input_len, output_len, kernels, bf16, state, workers })
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The ISA tier the session's kernels run on.
    pub fn tier(&self) -> Tier {
        self.kernels.tier()
    }

    /// The precision of the session's convolutions (its program's).
    pub fn precision(&self) -> Precision {
        self.program.precision
    }

    /// The BF16 tier the session's BF16 convolutions run on; `None` when it has none.
    pub fn bf16_tier(&self) -> Option<Bf16Tier> {
        self.bf16.map(|k| k.tier())
    }

    /// The options the session was planned with.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Input shape in the order the session reads: `[N, C, H, W]`, or `[N, H, W, C]`
    /// when the [`input_layout`](Session::input_layout) is NHWC.
    pub fn input_shape(&self) -> [usize; 4] {
        let g = &self.program.graph;
        g.input_layout.shape(self.plan.batch, g.dims(g.input))
    }

    /// The order of the input's values this session expects (the model's own: NHWC
    /// for an ONNX graph that starts by transposing its input from NHWC).
    pub fn input_layout(&self) -> InputLayout {
        self.program.graph.input_layout
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

    /// Runs the model: `input` is `N x C x H x W` (NCHW, or `N x H x W x C` when the
    /// [`input_layout`](Session::input_layout) is NHWC), `output` receives the result
    /// in NCHW order. Allocates nothing.
    pub fn run(&mut self, input: &[f32], output: &mut [f32]) -> Result<()> {
        if input.len() != self.input_len() {
            return Err(Error::BufferSize { what: "input", got: input.len(), expected: self.input_len() });
        }
        if output.len() != self.output_len() {
            return Err(Error::BufferSize { what: "output", got: output.len(), expected: self.output_len() });
        }
        let Session { program, plan, kernels, bf16, state, workers, .. } = self;
        let mut run = |par: &dyn ParallelFor| {
            let cx = Context { program, kernels, bf16: bf16.as_ref(), par };
            run_plan(&cx, plan, state, input, output)
        };
        match workers {
            None => run(&Sequential),
            Some(w) => w.run(run),
        }
        Ok(())
    }

    /// Turns per-step timing on (and resets it) or off. Timing costs two clock reads
    /// per step and allocates nothing during runs.
    pub fn set_profiling(&mut self, on: bool) {
        self.state.step_nanos = if on { vec![0; self.plan.steps.len()] } else { Vec::new() };
        self.state.profiled_runs = 0;
    }

    /// Times the steps with `clock` from now on (and resets the timing): the wall
    /// clock by default. A clock of the calling thread's CPU time leaves out the time
    /// other processes take from its core, so it is steadier on a shared machine; it
    /// sees the calling thread only, which leads every run (at several threads a step
    /// then counts the leader's share, its wait for the helpers included, but not
    /// time it spent descheduled).
    pub fn set_profile_clock(&mut self, clock: ProfileClock) {
        self.state.step_clock = clock;
        let on = !self.state.step_nanos.is_empty();
        self.set_profiling(on);
    }

    /// Mean time per run of each step since profiling was turned on, in plan order.
    pub fn profile(&mut self) -> Vec<StepProfile> {
        let (runs, nanos) = (self.state.profiled_runs.max(1) as f64, &self.state.step_nanos);
        self.plan
            .steps
            .iter()
            .zip(nanos)
            .map(|(s, &ns)| StepProfile {
                name: s.name.clone(),
                kind: s.kind_name(),
                seconds: ns as f64 / runs / 1e9,
                macs: s.macs() * self.plan.batch as u64,
            })
            .collect()
    }
}

/// A clock for [`Session::set_profile_clock`]: time since a fixed start, read twice
/// per step; only differences count.
pub type ProfileClock = fn() -> Duration;

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
