//! End-to-end batch-1 latency of every built-in model on its synthetic weights:
//! `Model::builtin` + `Session::run`, one thread, the tier `INCEPT_TIER` names or
//! else the widest this CPU runs. Throughput is in floating-point operations of the
//! convolutions and linear layers (two per multiply-add): `Gelem/s` reads as
//! GFLOP/s.
//!
//! Ten samples of one run each per model, so the whole bench takes a few minutes:
//! `cargo bench --bench models` (or `-- model/inception_v3` for one).
//!
//! `model_paced/*`: the four models the peers are compared on, frame-paced: 33 ms of
//! sleep before each run (a camera app at 30 frames a second idles between frames),
//! timing only the run, so it shows what a run costs after the core has idled
//! (`-- model_paced` for these alone; each takes ~10-20 s of wall time).

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use incept::{Model, SessionOptions, models};

mod common;

fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("model");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for m in models::BUILTIN {
        let model = Model::builtin(m.name).expect("built-in model");
        let options = SessionOptions { batch: 1, threads: 1, ..Default::default() };
        let mut session = model.session(options).expect("session");
        let x = common::values(session.input_len(), 1);
        let mut y = vec![0.0; session.output_len()];
        group.throughput(Throughput::Elements(2 * model.graph().macs()));
        group.bench_function(m.name, |b| b.iter(|| session.run(&x, &mut y).expect("run")));
    }
    group.finish();
}

/// The idle gap before each frame-paced run.
const FRAME_GAP: Duration = Duration::from_millis(33);

fn latency_paced(c: &mut Criterion) {
    let mut group = c.benchmark_group("model_paced");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for name in ["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"] {
        let model = Model::builtin(name).expect("built-in model");
        let options = SessionOptions { batch: 1, threads: 1, ..Default::default() };
        let mut session = model.session(options).expect("session");
        let x = common::values(session.input_len(), 1);
        let mut y = vec![0.0; session.output_len()];
        group.throughput(Throughput::Elements(2 * model.graph().macs()));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut busy = Duration::ZERO;
                for _ in 0..iters {
                    std::thread::sleep(FRAME_GAP);
                    let t = Instant::now();
                    session.run(&x, &mut y).expect("run");
                    busy += t.elapsed();
                }
                busy
            })
        });
    }
    group.finish();
}

criterion_group!(benches, latency, latency_paced);
criterion_main!(benches);
