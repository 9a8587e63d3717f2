//! A threaded `Session::run` allocates nothing either, on any thread.
//!
//! The counting allocator counts every thread of the process, so this test has its
//! own `main` (`harness = false` in Cargo.toml): under libtest, the harness's main
//! thread allocates when it reports a test running for over 60 seconds, which the
//! 100 runs do under emulation. Here nothing but the session runs meanwhile.

mod common;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

fn main() {
    // Under emulation (`INCEPT_TEST_MODELS=small`), NiN's 0.2 G multiply-adds keep
    // the runs to seconds; natively, GoogLeNet with its 9 Inception modules.
    // BF16 on the portable tier (a CPU without BF16 instructions) is as slow as
    // emulation; BF16 under emulation (on any tier) takes minutes, so a few runs
    // there (after the warm-up every run repeats the same code).
    let small = !common::model_fits_test_budget(u64::MAX);
    let portable = incept_kernels::bf16::Bf16Tier::best() == incept_kernels::bf16::Bf16Tier::Portable;
    for precision in incept::Precision::ALL {
        let (name, runs) = match (small, precision != incept::Precision::F32 && (portable || small)) {
            (true, true) => ("nin_cifar10", 3),
            (true, false) | (false, true) => ("nin_cifar10", 30),
            (false, false) => ("googlenet", 100),
        };
        check(&incept::Model::builtin(name).unwrap(), name, runs, precision);
    }
    println!("no_alloc_threaded: {} passed, 0 failed", incept::Precision::ALL.len());
}

fn check(model: &incept::Model, name: &str, runs: usize, precision: incept::Precision) {
    let options = incept::SessionOptions { precision: Some(precision), ..Default::default() };
    let mut one = model.session(options.clone()).unwrap();
    let mut two = model.session(incept::SessionOptions { threads: 2, ..options }).unwrap();
    let x = common::input(one.input_len(), 5);
    let (mut y1, mut y2) = (vec![0.0; one.output_len()], vec![0.0; two.output_len()]);
    one.run(&x, &mut y1).unwrap();
    // Warm up: the pool's threads start and size their queues on the first runs.
    for _ in 0..3 {
        two.run(&x, &mut y2).unwrap();
    }
    // Every output tile is computed by one microkernel call whichever thread runs it.
    assert_eq!(y1, y2, "{name} at {precision}: 2 threads differ from 1");
    let allocations = counting_alloc::on_all_threads(|| {
        for _ in 0..runs {
            two.run(&x, &mut y2).unwrap();
        }
    });
    assert_eq!(allocations, 0, "{name} at {precision}: allocations during {runs} threaded runs");
    println!("threaded_runs_allocate_nothing_and_match_one_thread ({name} at {precision}, {runs} runs, 2 threads): ok");
}
