//! A threaded `Session::run` allocates nothing either, on any thread: the counting
//! allocator here counts every thread (this file holds a single test, so nothing
//! else runs in the process meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod common;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn threaded_runs_allocate_nothing_and_match_one_thread() {
    let model = incept::Model::builtin("googlenet").unwrap();
    let mut one = model.session(Default::default()).unwrap();
    let mut two = model.session(incept::SessionOptions { threads: 2, ..Default::default() }).unwrap();
    let x = common::input(one.input_len(), 5);
    let (mut y1, mut y2) = (vec![0.0; one.output_len()], vec![0.0; two.output_len()]);
    one.run(&x, &mut y1).unwrap();
    // Warm up: the pool's threads start and size their queues on the first runs.
    for _ in 0..3 {
        two.run(&x, &mut y2).unwrap();
    }
    // Every output tile is computed by one microkernel call whichever thread runs it.
    assert_eq!(y1, y2);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..100 {
        two.run(&x, &mut y2).unwrap();
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "allocations during 100 threaded runs");
}
