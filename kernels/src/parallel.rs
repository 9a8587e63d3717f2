//! Lending the engine's threads to the kernels: this crate owns none.

use std::ops::Range;

use crate::bands::{BandsMut, MAX_BANDS};
use crate::layout::{BLOCK, ImageMut};

/// Runs tasks `0..n`, possibly in parallel: the engine lends its threads to the
/// kernels through this, so the kernels crate itself owns none.
///
/// # Safety
/// The kernels hand each task its own part of an output, and each worker its own
/// scratch, through raw pointers, so an implementation must keep these promises:
/// `run(n, task)` calls `task(i)` exactly once for every `i < n` and returns only
/// when all calls have returned; and inside a task, `worker()` is below `threads()`
/// and differs from that of every other task running at the same time.
pub unsafe trait ParallelFor: Sync {
    /// How many threads `run` may use.
    fn threads(&self) -> usize;
    /// Calls `task(i)` once for every `i < n`, in any order, and returns when all are done.
    fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync));
    /// The calling worker's index, below [`threads`](Self::threads): kernels pick
    /// their scratch by it rather than by task, so that each scratch line is only
    /// ever touched by one thread (a line another core has read must be taken
    /// back from that core's cache before it is written, which costs most when the
    /// cores are far apart).
    fn worker(&self) -> usize;
}

/// Runs every task on the calling thread, in order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

// SAFETY: one call per task, in order, on the calling thread; one worker.
unsafe impl ParallelFor for Sequential {
    fn threads(&self) -> usize {
        1
    }
    fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..n).for_each(task)
    }
    fn worker(&self) -> usize {
        0
    }
}

/// A buffer's pointer, shared by tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T = f32>(pub(crate) *mut T);
// SAFETY: every user hands it only to tasks that write disjoint ranges (each
// (block group, pixel range) of a convolution's output belongs to exactly one task;
// Winograd's chunks, `WorkerSlots`' slots, `for_each_part`'s parts and the BF16
// staging rows likewise) and
// read nothing another task writes.
unsafe impl<T> Sync for SharedMut<T> {}
impl<T> SharedMut<T> {
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// Splits `out` into one run of whole units of `unit` floats per thread of `par`
/// (as equal as the units allow) and calls `f(units, part)` on each, in parallel:
/// for kernels whose output splits into independent channel blocks or pixels.
pub(crate) fn for_each_part(
    out: &mut [f32],
    unit: usize,
    par: &dyn ParallelFor,
    f: &(dyn Fn(Range<usize>, &mut [f32]) + Sync),
) {
    let units = out.len() / unit.max(1);
    assert_eq!(units * unit, out.len(), "for_each_part: not whole units");
    let parts = par.threads().clamp(1, units.max(1));
    let base = SharedMut(out.as_mut_ptr());
    par.run(parts, &|t| {
        let r = t * units / parts..(t + 1) * units / parts;
        // SAFETY: the ranges of different parts are disjoint and inside `out`, which
        // stays mutably borrowed until every part is done.
        let part = unsafe { std::slice::from_raw_parts_mut(base.get().add(r.start * unit), r.len() * unit) };
        f(r, part)
    });
}

/// Calls `f(t, band)` on every band `t` of `out`, one task per band, in parallel:
/// for kernels that compute each band of their output on its own (see
/// [`crate::bands`]).
pub(crate) fn for_each_band(out: &mut BandsMut, par: &dyn ParallelFor, f: &(dyn Fn(usize, ImageMut) + Sync)) {
    let (dims, layout, split) = (out.dims, out.layout, out.split);
    let mut ptrs = [(SharedMut(std::ptr::null_mut()), 0); MAX_BANDS];
    for (p, part) in ptrs.iter_mut().zip(out.parts_mut()) {
        *p = (SharedMut(part.as_mut_ptr()), part.len());
    }
    par.run(split.bands(), &|t| {
        let (ptr, len) = ptrs[t];
        // SAFETY: band t's buffer, `len` floats from `ptr`, is borrowed mutably by
        // `out` until every task is done, and only task t makes a slice of it.
        let part = unsafe { std::slice::from_raw_parts_mut(ptr.get(), len) };
        f(t, ImageMut::new(part, split.band_dims(dims, t), layout))
    });
}

/// A scratch buffer split evenly, in whole 16-float cache lines, into one slot per
/// worker of a [`ParallelFor`]: handed the same buffer in every layer, a worker
/// keeps writing the same lines, which then never move between cores' caches.
pub(crate) struct WorkerSlots<'a, T = f32> {
    base: SharedMut<T>,
    stride: usize,
    len: usize,
    slots: usize,
    _scratch: std::marker::PhantomData<&'a mut [T]>,
}

impl<'a, T> WorkerSlots<'a, T> {
    /// Slots of `len` values in `scratch` for `par`'s workers, each starting on a
    /// cache line of its own; `what` names the kernel in the panic if `scratch` is
    /// too small.
    pub(crate) fn new(scratch: &'a mut [T], par: &dyn ParallelFor, len: usize, what: &str) -> Self {
        let slots = par.threads().max(1);
        let line = (BLOCK * size_of::<f32>() / size_of::<T>().max(1)).max(1);
        let stride = scratch.len() / slots / line * line;
        assert!(stride >= len, "{what}: scratch too small for {slots} threads");
        WorkerSlots { base: SharedMut(scratch.as_mut_ptr()), stride, len, slots, _scratch: std::marker::PhantomData }
    }

    /// The calling worker's slot.
    ///
    /// # Safety
    /// Call it once per task, from inside `par.run`, and drop the slot before the
    /// task ends: tasks that run at the same time have different workers (the
    /// [`ParallelFor`] contract), so their slots are disjoint.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn mine(&self, par: &dyn ParallelFor) -> &mut [T] {
        let w = par.worker();
        assert!(w < self.slots, "worker {w} of {}", self.slots);
        // SAFETY: slot w lies inside the scratch (w < slots and slots * stride <=
        // its length), which stays mutably borrowed for 'a; no other live slice
        // covers it (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.base.0.add(w * self.stride), self.len) }
    }
}
