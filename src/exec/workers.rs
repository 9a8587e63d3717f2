//! A session's helper threads. The caller's thread leads every run: it runs the
//! plan itself, and the helpers join the plan's parallel loops while the run lasts.
//! So a run starts without waiting for another thread to wake (a helper that wakes
//! late only takes fewer tasks), and nothing is copied in or out. Between runs the
//! helpers sleep; during a run they poll for the next loop instead, because waking
//! a sleeping thread (a futex call, and on a VM a halted virtual CPU) costs more
//! than most of a layer's work. The loops hand out tasks through one atomic
//! counter, which allocates nothing.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use incept_kernels::parallel::ParallelFor;

use crate::error::{Error, Result};

/// The helpers of one session, parked in a rayon pool of their own.
pub(super) struct Workers {
    shared: Arc<Shared>,
    _pool: rayon::ThreadPool,
}

/// What the leader and the helpers share.
struct Shared {
    threads: usize,
    /// [`IDLE`], [`RUNNING`] or [`SHUTDOWN`].
    phase: AtomicU8,
    /// Guards the helpers' sleep, so that the leader's wake-up is never lost.
    sleep: Mutex<()>,
    wake: Condvar,
    /// The current loop's epoch, task count and next unclaimed task, packed so that
    /// a claim is one compare-and-swap (see [`Ticket`]).
    ticket: AtomicU64,
    /// The current loop's task: a `&(dyn Fn(usize) + Sync)` on the leader's stack.
    task: AtomicPtr<()>,
    /// Tasks of the current loop that have returned.
    done: AtomicUsize,
    /// The first panic of a helper's task, for the leader to resume.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const SHUTDOWN: u8 = 2;

/// A loop's identity and progress in one word: 24 bits of epoch (which loop), 20
/// of task count, 20 of next task to claim. A helper can only claim a task of the
/// loop whose ticket it read, so a late helper never takes a task of the next loop.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ticket(u64);

const FIELD: u32 = 20;
const MASK: u64 = (1 << FIELD) - 1;

impl Ticket {
    fn new(epoch: u64, n: usize) -> Ticket {
        Ticket((epoch & ((1 << 24) - 1)) << (2 * FIELD) | (n as u64) << FIELD)
    }
    fn epoch(self) -> u64 {
        self.0 >> (2 * FIELD)
    }
    fn n(self) -> usize {
        ((self.0 >> FIELD) & MASK) as usize
    }
    fn next(self) -> usize {
        (self.0 & MASK) as usize
    }
}

/// The most tasks one loop may have (the kernels make a few per thread).
const MAX_TASKS: usize = MASK as usize;

thread_local! {
    /// The calling thread's worker index in the session running on it: 0 for the
    /// leader, 1.. for helpers.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing guarded can be left inconsistent by a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Claims the next task of the loop `t` describes, if one is left.
    fn claim(&self, mut t: Ticket) -> Option<usize> {
        loop {
            if t.next() >= t.n() {
                return None;
            }
            match self.ticket.compare_exchange_weak(t.0, t.0 + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(t.next()),
                Err(now) if Ticket(now).epoch() == t.epoch() => t = Ticket(now),
                Err(_) => return None,
            }
        }
    }

    /// Runs task `i` of the current loop, which the caller has claimed.
    fn run_task(&self, i: usize) {
        let task = self.task.load(Ordering::Acquire).cast::<&(dyn Fn(usize) + Sync)>();
        // SAFETY: `task` points at the leader's `&dyn Fn` for the loop `i` was claimed
        // in (stored before that loop's ticket was published, and the claim's
        // compare-and-swap acquired the ticket). The leader's `run` does not return,
        // so the reference stays valid, until `done` counts this task.
        let task = unsafe { *task };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| task(i))) {
            lock(&self.panic).get_or_insert(p);
        }
        self.done.fetch_add(1, Ordering::Release);
    }

    /// A helper's life: sleep until a run, poll for tasks until it ends, again.
    fn help(&self, index: usize) {
        WORKER.set(index);
        loop {
            {
                let mut g = lock(&self.sleep);
                while self.phase.load(Ordering::Acquire) == IDLE {
                    g = self.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
            while self.phase.load(Ordering::Acquire) == RUNNING {
                let t = Ticket(self.ticket.load(Ordering::Acquire));
                match self.claim(t) {
                    Some(i) => self.run_task(i),
                    // Pauses a few hundred nanoseconds, so that polling does not keep
                    // the ticket's cache line away from the leader.
                    None => (0..32).for_each(|_| std::hint::spin_loop()),
                }
            }
            if self.phase.load(Ordering::Acquire) == SHUTDOWN {
                return;
            }
        }
    }
}

/// The [`ParallelFor`] a run's steps use: the leader's loops, shared with the helpers.
struct Loops<'a>(&'a Shared);

// SAFETY: `run` publishes each loop under a new ticket, claims hand out every index
// below `n` exactly once (the compare-and-swap on the ticket), and `run` returns
// only when `done` has counted all `n` of them. Worker indices: the leader is 0 and
// helper `i` is `i < threads`, one thread each.
unsafe impl ParallelFor for Loops<'_> {
    fn threads(&self) -> usize {
        self.0.threads
    }

    fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        let sh = self.0;
        if n <= 1 {
            (0..n).for_each(task);
            return;
        }
        assert!(n <= MAX_TASKS, "a parallel loop of {n} tasks exceeds {MAX_TASKS}");
        sh.task.store((&raw const task).cast_mut().cast(), Ordering::Relaxed);
        sh.done.store(0, Ordering::Relaxed);
        let t = Ticket::new(Ticket(sh.ticket.load(Ordering::Relaxed)).epoch() + 1, n);
        sh.ticket.store(t.0, Ordering::Release);
        let mut caught = None;
        while let Some(i) = sh.claim(Ticket(sh.ticket.load(Ordering::Acquire))) {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| task(i))) {
                caught.get_or_insert(p);
            }
            sh.done.fetch_add(1, Ordering::Release);
        }
        // The helpers' tasks still hold `task`: wait for them, even when unwinding.
        while sh.done.load(Ordering::Acquire) < n {
            std::hint::spin_loop();
        }
        let helper = lock(&sh.panic).take();
        if let Some(p) = caught.or(helper) {
            resume_unwind(p);
        }
    }

    fn worker(&self) -> usize {
        WORKER.get()
    }
}

impl Workers {
    /// Starts `threads - 1` helpers; the caller of [`run`](Self::run) is the other.
    pub(super) fn start(threads: usize) -> Result<Workers> {
        let helpers = threads.saturating_sub(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(helpers.max(1))
            .thread_name(|i| format!("incept-{}", i + 1))
            .build()
            .map_err(|e| Error::Options(format!("cannot start {threads} threads: {e}")))?;
        let shared = Arc::new(Shared {
            threads,
            phase: AtomicU8::new(IDLE),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            ticket: AtomicU64::new(Ticket::new(0, 0).0),
            task: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
        });
        for i in 1..=helpers {
            let sh = shared.clone();
            pool.spawn(move || sh.help(i));
        }
        Ok(Workers { shared, _pool: pool })
    }

    /// Runs `f` on the calling thread with the helpers awake; `f`'s parallel loops
    /// go through the [`ParallelFor`] it is given.
    pub(super) fn run<R>(&self, f: impl FnOnce(&dyn ParallelFor) -> R) -> R {
        let sh = &*self.shared;
        /// Ends the run even if `f` panics: the helpers go back to sleep.
        struct End<'a>(&'a Shared, usize);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                self.0.phase.store(IDLE, Ordering::Release);
                WORKER.set(self.1);
            }
        }
        let _end = End(sh, WORKER.replace(0));
        {
            let _g = lock(&sh.sleep);
            sh.phase.store(RUNNING, Ordering::Release);
            sh.wake.notify_all();
        }
        f(&Loops(sh))
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _g = lock(&self.shared.sleep);
        self.shared.phase.store(SHUTDOWN, Ordering::Release);
        self.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Every task runs once per loop, on distinct workers at a time, over many
    /// loops and runs (a late helper must never take a task of the next loop).
    #[test]
    fn every_task_runs_once_per_loop() {
        for threads in [2, 3, 4] {
            let w = Workers::start(threads).unwrap();
            for _run in 0..50 {
                w.run(|par| {
                    assert_eq!(par.threads(), threads);
                    for n in [2, 3, 7, 64] {
                        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                        let busy: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
                        par.run(n, &|i| {
                            let me = par.worker();
                            assert!(me < threads);
                            assert_eq!(busy[me].fetch_add(1, Ordering::SeqCst), 0, "worker {me} runs two tasks");
                            hits[i].fetch_add(1, Ordering::SeqCst);
                            busy[me].fetch_sub(1, Ordering::SeqCst);
                        });
                        assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1));
                    }
                });
            }
        }
    }

    /// A task's panic reaches the caller of the loop, and the session still runs.
    #[test]
    fn a_panicking_task_panics_the_loop_and_the_pool_survives() {
        let w = Workers::start(2).unwrap();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            w.run(|par| par.run(4, &|i| assert!(i != 3, "task 3 fails")));
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        w.run(|par| {
            par.run(8, &|_| {
                count.fetch_add(1, Ordering::SeqCst);
            })
        });
        assert_eq!(count.load(Ordering::SeqCst), 8);
    }
}
