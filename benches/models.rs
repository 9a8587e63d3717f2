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

/// A deterministic input in [-1, 1), like a normalised image.
fn input(len: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("model");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for m in models::BUILTIN {
        let model = Model::builtin(m.name).expect("built-in model");
        let options = SessionOptions { batch: 1, threads: 1, ..Default::default() };
        let mut session = model.session(options).expect("session");
        let x = input(session.input_len());
        let mut y = vec![0.0; session.output_len()];
        group.throughput(Throughput::Elements(2 * model.graph().macs()));
        group.bench_function(m.name, |b| b.iter(|| session.run(&x, &mut y).expect("run")));
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
