//! End-to-end batch-1 latency of every built-in model on its synthetic weights:
//! `Model::builtin` + `Session::run`, one thread, the tier `INCEPT_TIER` names or
//! else the widest this CPU runs. Throughput is in floating-point operations of the
//! convolutions and linear layers (two per multiply-add): `Gelem/s` reads as
//! GFLOP/s.
//!
//! Ten samples of one run each per model, so the whole bench takes a few minutes:
//! `cargo bench --bench models` (or `-- model/inception_v3` for one).

use std::time::Duration;

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

criterion_group!(benches, latency);
criterion_main!(benches);
