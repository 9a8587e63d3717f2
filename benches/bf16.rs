//! FP32 against BF16 direct convolution, one layer of each kind of Inception v3,
//! on the best FP32 tier and the best BF16 tier this CPU runs, with a fused ReLU;
//! BF16 with rounded operands (`bf16`) and with split ones (`bf16x3`, three
//! products per multiply-add).
//! Both run the direct convolution (the engine computes some FP32 layers with
//! Winograd instead; that comparison is for the engine's integration).
//!
//! Bench IDs are `bf16/{kind}/{f32|bf16|bf16x3}`; criterion's `Gelem/s` reads as GFLOP/s.
//! After the criterion groups, a plain timing loop alternating the two prints the
//! BF16 speed-up per kind. `cargo bench --bench bf16`.

mod common;

use common::{Conv, ConvLayer, activation, layer_params, paired_medians_ms};
use criterion::{Criterion, SamplingMode, Throughput};
use incept_kernels::bf16::pack::pack_conv_weights_bf16_terms;
use incept_kernels::bf16::{
    Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, bf16, conv2d_bf16_par, conv2d_bf16_scratch_len,
};
use incept_kernels::pack::{ConvShape, pack_bias};
use incept_kernels::parallel::Sequential;
use incept_kernels::{Activation, AlignedVec, ConvGeometry, Image, ImageMut, Kernels, Layout, Padding, Tier};

/// One layer per kind of Inception v3's convolutions (window, stride, map: its
/// stem and each grid of mixed blocks).
fn layers() -> Vec<(&'static str, ConvLayer)> {
    let g = |kh, kw, s, ph, pw| ConvGeometry { kh, kw, stride_h: s, stride_w: s, pad: Padding::symmetric(ph, pw) };
    let l = ConvLayer::new;
    vec![
        ("stem-3x3s2", l(3, 32, (299, 299), g(3, 3, 2, 0, 0))),
        ("stem-3x3", l(32, 64, (147, 147), g(3, 3, 1, 1, 1))),
        ("1x1-35x35", l(288, 64, (35, 35), g(1, 1, 1, 0, 0))),
        ("5x5-35x35", l(48, 64, (35, 35), g(5, 5, 1, 2, 2))),
        ("3x3-35x35", l(64, 96, (35, 35), g(3, 3, 1, 1, 1))),
        ("3x3s2-35x35", l(288, 384, (35, 35), g(3, 3, 2, 0, 0))),
        ("1x1-17x17", l(768, 192, (17, 17), g(1, 1, 1, 0, 0))),
        ("3x3s2-17x17", l(192, 320, (17, 17), g(3, 3, 2, 0, 0))),
        ("1x7-17x17", l(160, 160, (17, 17), g(1, 7, 1, 0, 3))),
        ("7x1-17x17", l(160, 192, (17, 17), g(7, 1, 1, 3, 0))),
        ("1x1-8x8", l(2048, 320, (8, 8), g(1, 1, 1, 0, 0))),
        ("1x3-8x8", l(384, 384, (8, 8), g(1, 3, 1, 0, 1))),
        ("3x1-8x8", l(384, 384, (8, 8), g(3, 1, 1, 1, 0))),
        ("3x3-8x8", l(448, 384, (8, 8), g(3, 3, 1, 1, 1))),
    ]
}

/// A BF16 convolution with its packed weights and scratch (the weights as
/// [`Conv`]'s: the same seed).
struct ConvBf16 {
    layer: ConvLayer,
    terms: Bf16Terms,
    kernels: Bf16Kernels,
    shape: ConvShape,
    weights: Vec<bf16>,
    bias: AlignedVec,
    scratch: Vec<bf16>,
}

impl ConvBf16 {
    fn new(kernels: Bf16Kernels, layer: ConvLayer, terms: Bf16Terms, seed: u64) -> Self {
        let ConvLayer { ci, co, geom, .. } = layer;
        let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
        let (w, b) = layer_params(layer, seed);
        let (mut weights, mut pb) = (Vec::new(), Vec::new());
        pack_conv_weights_bf16_terms(&w, shape, terms, &mut weights);
        pack_bias(&b, &mut pb);
        let scratch = vec![bf16::ZERO; conv2d_bf16_scratch_len(layer.input(), &geom, terms)];
        ConvBf16 { layer, terms, kernels, shape, weights, bias: AlignedVec::from_slice(&pb), scratch }
    }

    fn run(&mut self, input: &[f32], out: &mut [f32]) {
        let w =
            PackedConvBf16 { shape: self.shape, terms: self.terms, weights: &self.weights, bias: self.bias.as_slice() };
        conv2d_bf16_par(
            &self.kernels,
            Image::new(input, self.layer.input(), Layout::Nchw16c),
            &w,
            &self.layer.geom,
            None,
            Activation::Relu,
            &mut ImageMut::new(out, self.layer.output(), Layout::Nchw16c),
            &mut self.scratch,
            &Sequential,
        );
    }
}

/// A layer's FP32, BF16 and BF16x3 convolutions with their input and outputs.
struct Pair {
    f32: Conv,
    bf16: ConvBf16,
    bf16x3: ConvBf16,
    input: AlignedVec,
    out: AlignedVec,
}

impl Pair {
    fn new(kernels: Kernels, bf16: Bf16Kernels, layer: ConvLayer) -> Self {
        Pair {
            f32: Conv::new(kernels, layer, 1),
            bf16: ConvBf16::new(bf16, layer, Bf16Terms::Rounded, 1),
            bf16x3: ConvBf16::new(bf16, layer, Bf16Terms::Split3, 1),
            input: activation(layer.input(), 7),
            out: AlignedVec::zeroed(Layout::Nchw16c.image_len(layer.output())),
        }
    }
    fn run_f32(&mut self) {
        self.f32.run(self.input.as_slice(), self.out.as_mut_slice());
    }
    fn run_bf16(&mut self) {
        self.bf16.run(self.input.as_slice(), self.out.as_mut_slice());
    }
    fn run_bf16x3(&mut self) {
        self.bf16x3.run(self.input.as_slice(), self.out.as_mut_slice());
    }
}

fn main() {
    let kernels = Kernels::new(Tier::best()).expect("the best tier is available");
    let bf16 = Bf16Kernels::new(Bf16Tier::best()).expect("the best BF16 tier is available");
    let mut c = Criterion::default().configure_from_args();
    for (kind, layer) in layers() {
        let mut pair = Pair::new(kernels, bf16, layer);
        let mut group = c.benchmark_group(format!("bf16/{kind}"));
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        group.warm_up_time(std::time::Duration::from_millis(300));
        group.measurement_time(std::time::Duration::from_secs(1));
        group.throughput(Throughput::Elements(layer.flops()));
        group.bench_function("f32", |b| b.iter(|| pair.run_f32()));
        group.bench_function("bf16", |b| b.iter(|| pair.run_bf16()));
        group.bench_function("bf16x3", |b| b.iter(|| pair.run_bf16x3()));
        group.finish();
    }
    c.final_summary();
    // `--list` and `--test` (what `cargo test --benches` passes) run no timing.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return;
    }
    println!("\nFP32 {} vs BF16 {} (medians of an alternating timing loop):", kernels.conv_name(), bf16.conv_name());
    for (kind, layer) in layers() {
        let pair = std::cell::RefCell::new(Pair::new(kernels, bf16, layer));
        let (f, b) = paired_medians_ms(|| pair.borrow_mut().run_f32(), || pair.borrow_mut().run_bf16());
        let gflops = |ms: f64| layer.flops() as f64 / ms / 1e6;
        println!(
            "{kind:<12} f32 {f:>8.3} ms {:>6.1} GFLOP/s   bf16 {b:>8.3} ms {:>6.1} GFLOP/s   speed-up {:.2}",
            gflops(f),
            gflops(b),
            f / b
        );
    }
}
