//! Every distinct convolution layer of Inception v3 and Inception-ResNet v2, on
//! every ISA tier this CPU runs, through `conv::conv2d` with a fused ReLU.
//!
//! The shapes come from the model builders themselves (see [`layer_shapes`]), so
//! they follow the models. Throughput is in floating-point operations (two per
//! multiply-add): criterion's `Gelem/s` reads as GFLOP/s. Bench IDs are
//! `conv/{tier}/{ci}x{h}x{w}-{kh}x{kw}s{stride}-{co}`, with `-p{top}{left}{bottom}{right}`
//! appended where two layers differ only in padding.
//!
//! `cargo bench --bench kernels -- conv/avx2/` runs one tier.

mod common;

use std::time::Duration;

use common::{Chain, ConvLayer};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use incept::graph::Op;
use incept_kernels::{Kernels, Tier};

/// The models whose layers are benchmarked.
const MODELS: [&str; 2] = ["inception_v3", "inception_resnet_v2"];

/// Every distinct convolution shape of `models`, in order of first appearance.
fn layer_shapes(models: &[&str]) -> Vec<ConvLayer> {
    let mut shapes: Vec<ConvLayer> = Vec::new();
    for name in models {
        let graph = incept::models::build(name).expect("built-in model");
        for node in &graph.nodes {
            if let Op::Conv { geom, .. } = node.op {
                let (din, dout) = (graph.dims(node.inputs[0]), graph.dims(node.output));
                let layer = ConvLayer::new(din.c, dout.c, (din.h, din.w), geom);
                if !shapes.contains(&layer) {
                    shapes.push(layer);
                }
            }
        }
    }
    shapes
}

/// The bench ID of a layer (without the tier).
fn layer_id(l: &ConvLayer) -> String {
    let g = &l.geom;
    let stride =
        if g.stride_h == g.stride_w { g.stride_h.to_string() } else { format!("{}x{}", g.stride_h, g.stride_w) };
    format!("{}x{}x{}-{}x{}s{stride}-{}", l.ci, l.h, l.w, g.kh, g.kw, l.co)
}

/// Bench IDs of `shapes`, with the padding appended where the short ID is ambiguous.
fn layer_ids(shapes: &[ConvLayer]) -> Vec<String> {
    let short: Vec<String> = shapes.iter().map(layer_id).collect();
    shapes
        .iter()
        .zip(&short)
        .map(|(l, id)| {
            if short.iter().filter(|s| *s == id).count() == 1 {
                return id.clone();
            }
            let p = l.geom.pad;
            format!("{id}-p{}{}{}{}", p.top, p.left, p.bottom, p.right)
        })
        .collect()
}

fn conv_layers(c: &mut Criterion) {
    let shapes = layer_shapes(&MODELS);
    let ids = layer_ids(&shapes);
    for tier in Tier::available() {
        let kernels = Kernels::new(tier).expect("available tier");
        let mut group = c.benchmark_group(format!("conv/{}", tier.name()));
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
        for (layer, id) in shapes.iter().zip(&ids) {
            let mut chain = Chain::new(kernels, std::slice::from_ref(layer), 1);
            group.throughput(Throughput::Elements(layer.flops()));
            group.bench_function(id.as_str(), |b| b.iter(|| chain.run()));
        }
        group.finish();
    }
}

criterion_group!(benches, conv_layers);
criterion_main!(benches);
