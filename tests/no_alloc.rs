//! `Session::run` allocates nothing: proven with a counting global allocator on
//! Inception v3, at float32 and at BF16.

mod common;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn session_run_allocates_nothing_on_inception_v3() {
    let model = incept::Model::builtin("inception_v3").unwrap();
    let mut session = model.session(Default::default()).unwrap();
    let x = common::input(session.input_len(), 1);
    let mut y = vec![0.0; session.output_len()];
    // The counter works: creating a session allocates its arena.
    assert!(counting_alloc::on_this_thread(|| drop(model.session(Default::default()).unwrap())) > 0);
    assert_eq!(counting_alloc::on_this_thread(|| session.run(&x, &mut y).unwrap()), 0);
    assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v != 0.0));
}

/// BF16 on the portable tier (a CPU without BF16 instructions) or under emulation
/// (`INCEPT_TEST_MODELS=small`, where every tier is slow): the BF16 tests run NiN,
/// where Inception v3 or GoogLeNet would take minutes.
fn bf16_is_slow() -> bool {
    incept_kernels::bf16::Bf16Tier::best() == incept_kernels::bf16::Bf16Tier::Portable
        || !common::model_fits_test_budget(u64::MAX)
}

#[test]
fn bf16_session_run_allocates_nothing_on_inception_v3() {
    let small = bf16_is_slow();
    let model = incept::Model::builtin(if small { "nin_cifar10" } else { "inception_v3" }).unwrap();
    let options = incept::SessionOptions { precision: Some(incept::Precision::Bf16), ..Default::default() };
    let mut session = model.session(options.clone()).unwrap();
    assert!(session.bf16_tier().is_some());
    let x = common::input(session.input_len(), 1);
    let mut y = vec![0.0; session.output_len()];
    assert_eq!(counting_alloc::on_this_thread(|| session.run(&x, &mut y).unwrap()), 0);
    assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v != 0.0));
}

#[test]
fn bf16x3_session_run_allocates_nothing() {
    let small = bf16_is_slow();
    let model = incept::Model::builtin(if small { "nin_cifar10" } else { "googlenet" }).unwrap();
    let options = incept::SessionOptions { precision: Some(incept::Precision::Bf16x3), ..Default::default() };
    for threads in [1, 2] {
        let mut session = model.session(incept::SessionOptions { threads, ..options.clone() }).unwrap();
        assert_eq!(session.precision(), incept::Precision::Bf16x3);
        let x = common::input(session.input_len(), 1);
        let mut y = vec![0.0; session.output_len()];
        session.run(&x, &mut y).unwrap();
        assert_eq!(counting_alloc::on_this_thread(|| session.run(&x, &mut y).unwrap()), 0);
        assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v != 0.0));
    }
}

/// The BF16 convolution of the network's image (googlenet's 7x7/2 stem, read as
/// a BF16 NCHW copy) at batch 2 on 2 threads: nothing allocated, and each image of
/// the batch gives what it gives alone.
#[test]
fn bf16_image_convolution_at_batch_two_allocates_nothing() {
    let small = bf16_is_slow();
    let model = incept::Model::builtin(if small { "nin_cifar10" } else { "googlenet" }).unwrap();
    let program = model.program_at(incept::Precision::Bf16).unwrap();
    let first = program.steps.iter().find_map(|s| s.algorithm()).unwrap();
    assert_eq!(first, incept::lower::Algorithm::Bf16FromImage);
    let options = incept::SessionOptions { precision: Some(incept::Precision::Bf16), ..Default::default() };
    let mut two = model.session(incept::SessionOptions { batch: 2, threads: 2, ..options.clone() }).unwrap();
    let mut one = model.session(options).unwrap();
    let (x, x1) = (common::input(two.input_len(), 3), common::input(one.input_len(), 4));
    let x = [&x[..one.input_len()], &x1[..]].concat();
    let (mut y, mut y1) = (vec![0.0; two.output_len()], vec![0.0; one.output_len()]);
    two.run(&x, &mut y).unwrap();
    assert_eq!(counting_alloc::on_this_thread(|| two.run(&x, &mut y).unwrap()), 0);
    one.run(&x[one.input_len()..], &mut y1).unwrap();
    assert_eq!(&y[one.output_len()..], &y1[..], "the second image of the batch");
    assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v != 0.0));
}

/// A clock that moves 1 ms at every read.
fn ticking_clock() -> std::time::Duration {
    static MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::time::Duration::from_millis(MS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

#[test]
fn a_profiled_run_allocates_nothing_and_reads_the_given_clock() {
    let model = incept::Model::builtin("nin_cifar10").unwrap();
    let mut session = model.session(Default::default()).unwrap();
    let x = common::input(session.input_len(), 1);
    let mut y = vec![0.0; session.output_len()];
    session.set_profiling(true);
    session.set_profile_clock(ticking_clock);
    for _ in 0..3 {
        assert_eq!(counting_alloc::on_this_thread(|| session.run(&x, &mut y).unwrap()), 0);
    }
    // Two reads per step, one tick apart: every step took 1 ms per run.
    let steps = session.profile();
    assert!(steps.len() > 3);
    assert!(steps.iter().all(|s| s.seconds == 1e-3), "{steps:?}");
}
