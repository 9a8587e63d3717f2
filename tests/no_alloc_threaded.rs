//! A threaded `Session::run` allocates nothing either, on any thread: the counting
//! allocator here counts every thread (this file holds a single test, so nothing
//! else runs in the process meanwhile).

mod common;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

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
    let allocations = counting_alloc::on_all_threads(|| {
        for _ in 0..100 {
            two.run(&x, &mut y2).unwrap();
        }
    });
    assert_eq!(allocations, 0, "allocations during 100 threaded runs");
}
