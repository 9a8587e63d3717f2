//! Worker threads for a session, handed work without allocating.
//!
//! Calling `rayon::ThreadPool::install` from outside a pool queues a job on the
//! pool's global injector, which allocates a new block every few dozen calls. So a
//! session instead parks one long-lived job inside its pool: a server that waits on
//! a condition variable, runs the plan when asked (its parallel loops then use the
//! workers' own deques, which do not allocate), and signals completion. Input and
//! output are copied through buffers owned by the server: a few hundred microseconds
//! at most, against runs of tens of milliseconds. Between runs every thread sleeps.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use incept_kernels::Kernels;
use incept_kernels::bf16::Bf16Kernels;
use incept_kernels::parallel::ParallelFor;

use super::steps::{Context, State, run_plan};
use crate::error::{Error, Result};
use crate::lower::Program;
use crate::plan::Plan;

/// Spreads kernel tasks over the rayon pool the server runs in.
struct RayonFor(usize);

// SAFETY: rayon's `for_each` calls the task once per index and returns when all
// calls have; the tasks run on the pool's `self.0` threads, whose indices are
// distinct, and never block inside rayon, so no thread runs two at once.
unsafe impl ParallelFor for RayonFor {
    fn threads(&self) -> usize {
        self.0
    }
    fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each(task);
    }
    fn worker(&self) -> usize {
        // Tasks run inside the pool, whose thread indices are 0..self.0.
        rayon::current_thread_index().expect("kernel tasks run on the session's pool")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Requested,
    Done,
    Shutdown,
}

/// What the caller and the server share.
struct Exchange {
    phase: Phase,
    state: State,
    input: Vec<f32>,
    output: Vec<f32>,
}

struct Shared {
    exchange: Mutex<Exchange>,
    changed: Condvar,
}

/// A rayon pool with the session's server parked in it.
pub(super) struct Workers {
    shared: Arc<Shared>,
    _pool: rayon::ThreadPool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Exchange> {
    // A panic inside a run poisons the lock; the data is still consistent (the next
    // run overwrites the arena), so carry on rather than cascade the panic.
    shared.exchange.lock().unwrap_or_else(|e| e.into_inner())
}

impl Workers {
    /// Starts `threads` workers (the server is one of them) for `plan`.
    pub(super) fn start(
        threads: usize,
        program: Arc<Program>,
        plan: Arc<Plan>,
        kernels: Kernels,
        bf16: Option<Bf16Kernels>,
        state: State,
        io_lens: (usize, usize),
    ) -> Result<Workers> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("incept-{i}"))
            .build()
            .map_err(|e| Error::Options(format!("cannot start {threads} threads: {e}")))?;
        let shared = Arc::new(Shared {
            exchange: Mutex::new(Exchange {
                phase: Phase::Idle,
                state,
                input: vec![0.0; io_lens.0],
                output: vec![0.0; io_lens.1],
            }),
            changed: Condvar::new(),
        });
        let server = shared.clone();
        pool.spawn(move || {
            let par = RayonFor(threads);
            let cx = Context { program: &program, kernels: &kernels, bf16: bf16.as_ref(), par: &par };
            let mut ex = lock(&server);
            loop {
                ex = server
                    .changed
                    .wait_while(ex, |e| e.phase == Phase::Idle || e.phase == Phase::Done)
                    .unwrap_or_else(|e| e.into_inner());
                if ex.phase == Phase::Shutdown {
                    return;
                }
                let Exchange { state, input, output, .. } = &mut *ex;
                let awake = Awake { running: AtomicBool::new(true), keepers: AtomicUsize::new(0), wanted: threads - 1 };
                lead(threads - 1, &awake, &mut || run_plan(&cx, &plan, state, input, output));
                ex.phase = Phase::Done;
                server.changed.notify_all();
            }
        });
        Ok(Workers { shared, _pool: pool })
    }

    /// Runs the plan on the workers; returns when the output is written.
    pub(super) fn run(&self, input: &[f32], output: &mut [f32]) {
        let mut ex = lock(&self.shared);
        ex.input.copy_from_slice(input);
        ex.phase = Phase::Requested;
        self.shared.changed.notify_all();
        ex = self.shared.changed.wait_while(ex, |e| e.phase == Phase::Requested).unwrap_or_else(|e| e.into_inner());
        output.copy_from_slice(&ex.output);
        ex.phase = Phase::Idle;
    }

    /// Runs `f` on the run state (arena and profile) between runs.
    pub(super) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut lock(&self.shared).state)
    }
}

/// What the leader of a run and its keepers share.
struct Awake {
    running: AtomicBool,
    /// Keepers started so far.
    keepers: AtomicUsize,
    wanted: usize,
}

/// Queues `k` keeper jobs (each `rayon::join` puts its second half where another
/// worker can take it, without allocating), runs `plan`, then ends the keepers.
fn lead(k: usize, awake: &Awake, plan: &mut (dyn FnMut() + Send)) {
    if k == 0 {
        // Ends the keepers even if the plan panics (the join would otherwise wait
        // for them forever before passing the panic on).
        struct End<'a>(&'a AtomicBool);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _end = End(&awake.running);
        plan();
    } else {
        rayon::join(|| lead(k - 1, awake, plan), || keep_awake(awake));
    }
}

/// Runs the pool's tasks until the run ends, spinning between them instead of
/// sleeping. Waits for every keeper to start first, so that no keeper takes
/// another's job while a worker is still waking up for it.
fn keep_awake(awake: &Awake) {
    awake.keepers.fetch_add(1, Ordering::AcqRel);
    while awake.running.load(Ordering::Acquire) {
        if awake.keepers.load(Ordering::Acquire) < awake.wanted || rayon::yield_now() != Some(rayon::Yield::Executed) {
            for _ in 0..SPINS {
                std::hint::spin_loop();
            }
        }
    }
}

/// Pauses between a keeper's polls of the pool (a few hundred nanoseconds), so that
/// polling does not keep the deques' cache lines away from their owners.
const SPINS: usize = 32;

impl Drop for Workers {
    fn drop(&mut self) {
        lock(&self.shared).phase = Phase::Shutdown;
        self.shared.changed.notify_all();
    }
}
