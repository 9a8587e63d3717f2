//! Lending the engine's threads to the kernels: this crate owns none.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Most tasks a [`Segments`] deals items to: more threads share these segments.
const MAX_SEGMENTS: usize = 16;

/// One task's segment of items, `front..back` packed as `front << 32 | back`, on a
/// cache line of its own (its owner claims from it item by item).
#[repr(align(64))]
struct Segment(AtomicU64);

/// Items `0..n` dealt to tasks in contiguous segments of about equal length: a task
/// takes its own segment's items from the front, then, once it is empty, the items
/// of the segment with the most left, from the back, one at a time. So a thread that
/// starts late or runs slower (another process on its core, a slower phase of the
/// host) leaves its last items to the others instead of keeping them waiting at the
/// loop's end, and each thread still walks runs of neighbouring items: a segment
/// forward, a stolen run backward.
pub(crate) struct Segments {
    segments: [Segment; MAX_SEGMENTS],
    tasks: usize,
}

impl Segments {
    /// `n` items (fewer than 2^32) in one segment for each of at most `tasks` tasks
    /// (no more than [`MAX_SEGMENTS`], and none empty).
    pub(crate) fn new(n: usize, tasks: usize) -> Segments {
        assert!(u32::try_from(n).is_ok(), "Segments: {n} items");
        let tasks = tasks.min(n).clamp(1, MAX_SEGMENTS);
        let segments = std::array::from_fn(|t| {
            let (front, back) = if t < tasks { (t * n / tasks, (t + 1) * n / tasks) } else { (0, 0) };
            Segment(AtomicU64::new((front as u64) << 32 | back as u64))
        });
        Segments { segments, tasks }
    }

    /// How many tasks to run: `claims(t)` for every `t` below this.
    pub(crate) fn tasks(&self) -> usize {
        self.tasks
    }

    /// Task `task`'s items, in the order it claims them.
    pub(crate) fn claims(&self, task: usize) -> Claims<'_> {
        assert!(task < self.tasks, "Segments: task {task} of {}", self.tasks);
        Claims { segments: self, from: task, front: true }
    }

    /// Takes segment `s`'s first (`front`) or last item, if it has one left.
    fn take(&self, s: usize, front: bool) -> Option<usize> {
        let seg = &self.segments[s].0;
        let mut now = seg.load(Ordering::Relaxed);
        loop {
            let (f, b) = (now >> 32, now & u64::from(u32::MAX));
            if f >= b {
                return None;
            }
            let (new, item) = if front { (now + (1 << 32), f) } else { (now - 1, b - 1) };
            // Every claim of the segment is a compare-and-swap on this one word, so
            // no item is taken twice; the items' data needs no ordering from it (the
            // loop's end orders the tasks' writes).
            match seg.compare_exchange_weak(now, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(item as usize),
                Err(v) => now = v,
            }
        }
    }

    /// Items left in segment `s` (a snapshot).
    fn left(&self, s: usize) -> u64 {
        let now = self.segments[s].0.load(Ordering::Relaxed);
        (now & u64::from(u32::MAX)).saturating_sub(now >> 32)
    }
}

/// The items one task of a [`Segments`] claims (see there).
pub(crate) struct Claims<'a> {
    segments: &'a Segments,
    /// The segment it takes from: its own (`front`), then the one it steals from.
    from: usize,
    front: bool,
}

impl Claims<'_> {
    /// The item this task will likely claim next, for prefetching its data.
    pub(crate) fn peek(&self) -> Option<usize> {
        let now = self.segments.segments[self.from].0.load(Ordering::Relaxed);
        let (f, b) = ((now >> 32) as usize, (now & u64::from(u32::MAX)) as usize);
        (f < b).then(|| if self.front { f } else { b - 1 })
    }
}

impl Iterator for Claims<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let segs = self.segments;
        loop {
            if let Some(item) = segs.take(self.from, self.front) {
                return Some(item);
            }
            // Steal from the back of the segment with the most items left.
            let (most, left) = (0..segs.tasks).map(|s| (s, segs.left(s))).max_by_key(|&(_, l)| l)?;
            if left == 0 {
                return None;
            }
            (self.from, self.front) = (most, false);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each item is claimed exactly once, however the tasks interleave; a task
    /// starts at its own segment's front, in order.
    #[test]
    fn segments_hand_out_every_item_once() {
        for (n, tasks) in [(0, 2), (1, 2), (5, 1), (7, 2), (64, 3), (1000, 4), (40, 40)] {
            let segs = &Segments::new(n, tasks);
            let taken: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..segs.tasks()).map(|t| s.spawn(move || segs_claims(segs, t))).collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut all: Vec<usize> = taken.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "n {n}, tasks {tasks}");
            for (t, items) in taken.iter().enumerate() {
                // Its own segment's items first, from its front, one after another.
                let own = t * n / segs.tasks()..(t + 1) * n / segs.tasks();
                let k = items.iter().take_while(|i| own.contains(i)).count();
                assert!(items[..k].iter().enumerate().all(|(j, &i)| i == own.start + j), "task {t}: {items:?}");
            }
        }
    }

    /// A task that starts after the others have finished finds its segment taken
    /// from the back, and a task alone takes everything: its own segment forward,
    /// then the others' backward.
    #[test]
    fn a_late_task_finds_its_items_taken() {
        let segs = Segments::new(10, 2);
        let first: Vec<_> = segs.claims(0).collect();
        assert_eq!(first, [0, 1, 2, 3, 4, 9, 8, 7, 6, 5]);
        assert_eq!(segs.claims(1).next(), None);
        // Having taken the first segment's first item from its back, nothing to peek at.
        let segs = Segments::new(10, 2);
        let mut late = segs.claims(1);
        assert_eq!(late.by_ref().collect::<Vec<_>>(), [5, 6, 7, 8, 9, 4, 3, 2, 1, 0]);
        assert_eq!((late.peek(), segs.claims(0).peek()), (None, None));
    }

    fn segs_claims(segs: &Segments, t: usize) -> Vec<usize> {
        segs.claims(t).collect()
    }
}
