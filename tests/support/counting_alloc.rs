//! A global allocator that counts allocations, for the tests proving that running a
//! model allocates nothing. A test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Forwards to the system allocator and counts `alloc` and `realloc` calls.
pub struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ALL_THREADS: AtomicBool = AtomicBool::new(false);

thread_local! {
    static THIS_THREAD: Cell<bool> = const { Cell::new(false) };
    /// This thread's count: a shared one would also count the allocations other
    /// test threads make while they count their own.
    static THIS_THREAD_ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    if ALL_THREADS.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
    if THIS_THREAD.with(Cell::get) {
        THIS_THREAD_ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by the calling thread while `f` runs (other test threads of
/// the harness do not count).
pub fn on_this_thread(f: impl FnOnce()) -> usize {
    let before = THIS_THREAD_ALLOCATIONS.with(Cell::get);
    THIS_THREAD.with(|c| c.set(true));
    f();
    THIS_THREAD.with(|c| c.set(false));
    THIS_THREAD_ALLOCATIONS.with(Cell::get) - before
}

/// Allocations made by any thread while `f` runs: only meaningful in a test binary
/// that runs nothing else meanwhile.
pub fn on_all_threads(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    ALL_THREADS.store(true, Ordering::SeqCst);
    f();
    ALL_THREADS.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}
