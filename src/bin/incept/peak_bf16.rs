//! `incept peak --bf16`: each convolution of a model on the best BF16 tier and on
//! the best float32 tier (both the direct convolution, one thread; the layer that
//! reads the network's image from NCHW, as the engine runs it), as a share of
//! the BF16 dot-product peak and of the FMA peak, per layer and per kind. Timed in
//! per-thread CPU time, which other processes on a shared machine disturb far less
//! than the wall clock.

use incept::graph::ConvLayer;
use incept_kernels::bf16::pack::{pack_conv_weights_bf16, pack_conv_weights_bf16_image};
use incept_kernels::bf16::{
    Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, bf16, conv2d_bf16_image, conv2d_bf16_image_scratch_len,
    conv2d_bf16_par, conv2d_bf16_scratch_len,
};
use incept_kernels::conv::{Conv2d, PackedConv, conv2d, conv2d_image, conv2d_image_scratch_len, conv2d_scratch_len};
use incept_kernels::pack::{ConvShape, pack_bias, pack_conv_weights, pack_conv_weights_image};
use incept_kernels::parallel::Sequential;
use incept_kernels::peak::fma_peak_gflops;
use incept_kernels::{Activation, AlignedVec, Image, ImageMut, Kernels, Layout, Tier};
use serde_json::json;

/// CPU time the calling thread has run, in seconds (the wall clock where the OS
/// has no thread clock): `incept peak`'s clock.
fn thread_cpu_seconds() -> f64 {
    (crate::peak::Clock::thread_cpu().now)()
}

/// Seconds of thread CPU time per call of `run`: the best of a dozen batches, each
/// at least `min_seconds` long.
fn best_seconds(mut run: impl FnMut(), min_seconds: f64) -> f64 {
    run();
    let (mut reps, mut best) = (1usize, f64::INFINITY);
    for _ in 0..12 {
        let t = thread_cpu_seconds();
        (0..reps).for_each(|_| run());
        let dt = thread_cpu_seconds() - t;
        best = best.min(dt / reps as f64);
        if dt < min_seconds {
            reps = (reps as f64 * (min_seconds / dt.max(1e-6)) * 1.2).ceil() as usize;
        }
    }
    best
}

/// Seconds per run of `layer` on float32 `k` and on BF16 `kb`, same weights and
/// input; an `image` layer (the network's input, at most 16 channels) by the image
/// kernels from NCHW.
fn time_layer(k: &Kernels, kb: &Bf16Kernels, layer: &ConvLayer, image: bool) -> (f64, f64) {
    let (din, dout, g) = (layer.input, layer.output(), layer.geom);
    let shape = ConvShape { co: layer.out_channels, ci: din.c, kh: g.kh, kw: g.kw };
    let oihw = super::peak::synthetic_weights(shape);
    let (mut w, mut wb, mut b) = (Vec::new(), Vec::new(), Vec::new());
    if image {
        pack_conv_weights_image(&oihw, shape, &mut w);
        pack_conv_weights_bf16_image(&oihw, shape, &mut wb);
    } else {
        pack_conv_weights(&oihw, shape, &mut w);
        pack_conv_weights_bf16(&oihw, shape, &mut wb);
    }
    pack_bias(&vec![0.1; shape.co], &mut b);
    let (w, b) = (AlignedVec::from_slice(&w), AlignedVec::from_slice(&b));
    let l = Layout::Nchw16c;
    let l_in = if image { Layout::Nchw } else { l };
    let x: Vec<f32> = (0..l_in.image_len(din)).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
    let x = AlignedVec::from_slice(&x);
    let mut y = AlignedVec::zeroed(l.image_len(dout));
    let mut scratch =
        AlignedVec::zeroed(if image { conv2d_image_scratch_len(din, &g, 1) } else { conv2d_scratch_len(din, &g) });
    let len_b = if image {
        conv2d_bf16_image_scratch_len(din, &g)
    } else {
        conv2d_bf16_scratch_len(din, &g, Bf16Terms::Rounded)
    };
    let mut scratch_b = vec![bf16::ZERO; len_b];
    let packed = PackedConv { shape, weights: w.as_slice(), bias: b.as_slice() };
    let packed_b = PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &wb, bias: b.as_slice() };
    let min = 0.01;
    let f32_secs = best_seconds(
        || {
            let out = &mut ImageMut::new(y.as_mut_slice(), dout, l);
            let input = Image::new(x.as_slice(), din, l_in).into();
            let op = Conv2d { input, weights: packed, geom: g, residual: None, act: Activation::Relu };
            match image {
                true => conv2d_image(k, &op, &mut out.into(), scratch.as_mut_slice(), &Sequential),
                false => conv2d(k, &op, &mut out.into(), scratch.as_mut_slice(), &Sequential),
            }
        },
        min,
    );
    let bf16_secs = best_seconds(
        || {
            let out = &mut ImageMut::new(y.as_mut_slice(), dout, l);
            let input = Image::new(x.as_slice(), din, l_in);
            let (act, scratch_b) = (Activation::Relu, &mut scratch_b[..]);
            match image {
                true => conv2d_bf16_image(
                    kb,
                    input.into(),
                    &packed_b,
                    &g,
                    None,
                    act,
                    &mut out.into(),
                    scratch_b,
                    &Sequential,
                ),
                false => conv2d_bf16_par(kb, input, &packed_b, &g, None, act, out, scratch_b, &Sequential),
            }
        },
        min,
    );
    (f32_secs, bf16_secs)
}

/// The kind of a layer: window, stride and input map (`3x3/2 @35x35`).
fn kind_of(l: &ConvLayer) -> String {
    format!("{} @{}x{}", l.window(), l.input.h, l.input.w)
}

/// Prints (or, with `as_json`, emits as JSON) each convolution of `graph` on the
/// best BF16 and float32 tiers, as shares of their peaks, per layer and per kind
/// (MAC-weighted, repeated layers counted). Each peak is measured before and after
/// the layers and the higher taken.
pub fn run(graph: &incept::graph::Graph, as_json: bool) -> Result<(), String> {
    let k = Kernels::new(Tier::best()).expect("the best tier is available");
    let kb = Bf16Kernels::new(Bf16Tier::best()).expect("the best BF16 tier is available");
    let peaks = || (fma_peak_gflops(&k, 0.3), kb.dot_peak_gflops(0.3));
    let before = peaks();
    let image_dims = graph.dims(graph.input);
    let rows: Vec<(ConvLayer, f64, f64)> = graph
        .conv_layers()
        .into_iter()
        .map(|layer| {
            let image = layer.input == image_dims && layer.input.c <= incept_kernels::BLOCK;
            let (f, b) = time_layer(&k, &kb, &layer, image);
            (layer, f, b)
        })
        .collect();
    let after = peaks();
    let fma_peak = before.0.max(after.0);
    let Some(bf16_peak) = before.1.zip(after.1).map(|(a, b)| a.max(b)) else {
        return Err(format!("the {} tier has no BF16 instruction to measure a peak of", kb.tier().name()));
    };
    // Per kind: MACs, f32 seconds, bf16 seconds (times counts).
    let mut kinds: Vec<(String, f64, f64, f64)> = Vec::new();
    for (l, f, b) in &rows {
        let (kind, n) = (kind_of(l), l.count as f64);
        let macs = l.macs() as f64 * n;
        match kinds.iter_mut().find(|r| r.0 == kind) {
            Some(r) => (r.1, r.2, r.3) = (r.1 + macs, r.2 + f * n, r.3 + b * n),
            None => kinds.push((kind, macs, f * n, b * n)),
        }
    }
    let gflops = |macs: f64, secs: f64| 2.0 * macs / secs / 1e9;
    let total = kinds.iter().fold((0.0, 0.0, 0.0), |s, r| (s.0 + r.1, s.1 + r.2, s.2 + r.3));
    if as_json {
        let layers: Vec<_> = rows
            .iter()
            .map(|(l, f, b)| {
                let macs = l.macs() as f64;
                json!({"kind": kind_of(l), "input": [l.input.c, l.input.h, l.input.w], "out_channels": l.out_channels,
                       "count": l.count, "f32_ms": f * 1e3, "bf16_ms": b * 1e3,
                       "f32_fraction_of_fma_peak": gflops(macs, *f) / fma_peak,
                       "bf16_fraction_of_bf16_peak": gflops(macs, *b) / bf16_peak})
            })
            .collect();
        let by_kind: Vec<_> = kinds
            .iter()
            .map(|(kind, macs, f, b)| {
                json!({"kind": kind, "f32_ms": f * 1e3, "bf16_ms": b * 1e3,
                       "f32_fraction_of_fma_peak": gflops(*macs, *f) / fma_peak,
                       "bf16_fraction_of_bf16_peak": gflops(*macs, *b) / bf16_peak})
            })
            .collect();
        let v = json!({"model": graph.name, "clock": "thread CPU time", "f32_tier": k.tier().name(),
                       "f32_kernel": k.conv_name(), "bf16_tier": kb.tier().name(), "bf16_kernel": kb.conv_name(),
                       "fma_peak_gflops": fma_peak, "bf16_peak_gflops": bf16_peak, "kinds": by_kind, "layers": layers});
        println!("{v:#}");
        return Ok(());
    }
    println!(
        "{}: direct convolutions, 1 thread, thread CPU time; peaks: FMA {fma_peak:.1} GFLOP/s ({}), \
         BF16 dot product {bf16_peak:.1} GFLOP/s ({})",
        graph.name,
        k.conv_name(),
        kb.conv_name()
    );
    println!(
        "{:<16} {:>14} {:>5} {:>3} {:>8} {:>8} {:>7} {:>8} {:>7} {:>6}",
        "kind", "input", "out", "x", "f32 ms", "GFLOP/s", "of FMA", "bf16 ms", "of BF16", "ratio"
    );
    for (l, f, b) in &rows {
        let (macs, input) = (l.macs() as f64, format!("{}x{}x{}", l.input.c, l.input.h, l.input.w));
        let (gf, gb) = (gflops(macs, *f), gflops(macs, *b));
        println!(
            "{:<16} {input:>14} {:>5} {:>3} {:>8.3} {gf:>8.1} {:>6.1}% {:>8.3} {:>6.1}% {:>5.2}x",
            kind_of(l),
            l.out_channels,
            l.count,
            f * 1e3,
            100.0 * gf / fma_peak,
            b * 1e3,
            100.0 * gb / bf16_peak,
            f / b
        );
    }
    println!("\nby kind ({}, repeated layers counted): GFLOP/s and share of each peak", graph.name);
    println!("{:<16} {:>8} {:>7} {:>8} {:>7} {:>6}", "kind", "f32", "of FMA", "bf16", "of BF16", "ratio");
    for (kind, macs, f, b) in kinds.iter().chain([&("all".to_string(), total.0, total.1, total.2)]) {
        let (gf, gb) = (gflops(*macs, *f), gflops(*macs, *b));
        println!(
            "{kind:<16} {gf:>8.1} {:>6.1}% {gb:>8.1} {:>6.1}% {:>5.2}x",
            100.0 * gf / fma_peak,
            100.0 * gb / bf16_peak,
            f / b
        );
    }
    Ok(())
}
