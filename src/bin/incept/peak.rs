//! `incept peak`: the machine's FMA peak per tier, and how close each convolution
//! of a model gets to it, measured in the same run.

use incept::graph::ConvLayer;
use incept_kernels::bf16::{Bf16Kernels, Bf16Tier};
use incept_kernels::conv::{Conv2d, PackedConv, conv2d, conv2d_image, conv2d_image_scratch_len, conv2d_scratch_len};
use incept_kernels::pack::{ConvShape, pack_bias, pack_conv_weights, pack_conv_weights_image};
use incept_kernels::parallel::Sequential;
use incept_kernels::peak::fma_peak_gflops_by;
use incept_kernels::{Activation, AlignedVec, BLOCK, Dims, Image, ImageMut, Kernels, Layout, Tier};
use serde_json::json;

/// The clock `incept peak` times with: the calling thread's CPU time where the OS
/// has one (Linux, macOS), so that time slices other processes take from the core do
/// not count, else the monotonic wall clock.
pub struct Clock {
    /// `thread_cpu` or `wall`, as the output names it.
    pub name: &'static str,
    /// Seconds since a fixed start.
    pub now: fn() -> f64,
}

impl Clock {
    /// The calling thread's CPU-time clock, or the wall clock where there is none.
    pub fn thread_cpu() -> Clock {
        #[cfg(any(target_os = "linux", target_os = "macos"))]
        return Clock { name: "thread_cpu", now: thread_cpu_seconds };
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        return Clock { name: "wall", now: wall_seconds };
    }
}

/// CPU time of the calling thread, in seconds.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is one these systems define.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Seconds of the monotonic wall clock since its first call.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn wall_seconds() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
}

/// Interleaved rounds per layer of `incept peak` without `--winograd`.
pub const PEAK_ROUNDS: usize = 8;

/// One layer timed against the peak beside it: seconds per run (the best batch)
/// and the FMA peak in GFLOP/s (the best window measured between its batches).
struct Timed {
    secs: f64,
    peak: f64,
}

/// OIHW weights of `shape` for timing: small, varied values (the arithmetic does not
/// depend on them, but zeros or denormals could make it faster or slower).
pub(crate) fn synthetic_weights(shape: ConvShape) -> Vec<f32> {
    (0..shape.co * shape.ci * shape.kh * shape.kw).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect()
}

/// Times one convolution layer on `kernels` as the engine runs it (a layer reading
/// an image of at most 16 channels, the network's input, by `conv2d_image` from
/// NCHW with its weights in the image packing; the others by `conv2d` on NCHW16c), interleaved with the tier's peak loop:
/// `rounds` rounds of a ~10 ms peak window and a batch of back-to-back runs of at
/// least `min_seconds`, all by `clock`. Best-of on both sides, because other
/// processes only ever make a batch slower; interleaved, so that a change of the
/// core's clock or of what shares the caches meanwhile hits both alike.
fn time_layer(
    kernels: &Kernels,
    layer: &ConvLayer,
    image: bool,
    rounds: usize,
    min_seconds: f64,
    clock: &Clock,
) -> Timed {
    let (din, dout, g) = (layer.input, layer.output(), layer.geom);
    let shape = ConvShape { co: layer.out_channels, ci: din.c, kh: g.kh, kw: g.kw };
    let oihw = synthetic_weights(shape);
    let (mut w, mut b) = (Vec::new(), Vec::new());
    if image {
        pack_conv_weights_image(&oihw, shape, &mut w);
    } else {
        pack_conv_weights(&oihw, shape, &mut w);
    }
    pack_bias(&vec![0.1; shape.co], &mut b);
    let (w, b) = (AlignedVec::from_slice(&w), AlignedVec::from_slice(&b));
    let l_in = if image { Layout::Nchw } else { Layout::Nchw16c };
    let l = Layout::Nchw16c;
    let x = AlignedVec::from_slice(&vec![0.5; l_in.image_len(din)]);
    let mut y = AlignedVec::zeroed(l.image_len(dout));
    let scratch_len = if image { conv2d_image_scratch_len(din, &g, 1) } else { conv2d_scratch_len(din, &g) };
    let mut scratch = AlignedVec::zeroed(scratch_len);
    let packed = PackedConv { shape, weights: w.as_slice(), bias: b.as_slice() };
    let mut run = || {
        let out = &mut ImageMut::new(y.as_mut_slice(), dout, l);
        let input = Image::new(x.as_slice(), din, l_in).into();
        let op = Conv2d { input, weights: packed, geom: g, residual: None, act: Activation::Relu };
        if image {
            conv2d_image(kernels, &op, &mut out.into(), scratch.as_mut_slice(), &Sequential);
        } else {
            conv2d(kernels, &op, &mut out.into(), scratch.as_mut_slice(), &Sequential);
        }
    };
    run();
    let now = clock.now;
    let mut reps = 1;
    let (mut secs, mut peak) = (f64::INFINITY, 0f64);
    // Two extra rounds first size the batch.
    for round in 0..rounds + 2 {
        let t = now();
        for _ in 0..reps {
            run();
        }
        let dt = now() - t;
        if round >= 2 {
            secs = secs.min(dt / reps as f64);
            peak = peak.max(fma_peak_gflops_by(kernels, 0.01, &now));
        } else if dt < min_seconds {
            reps = (reps as f64 * (min_seconds / dt.max(1e-6)) * 1.2).ceil() as usize;
        }
    }
    Timed { secs, peak }
}

/// Measures peaks and per-layer efficiency of `graph`'s convolutions on the widest
/// tier (or every tier with `all_tiers`), printing a table or JSON.
///
/// Each layer's share is of the peak measured between its own batches (see
/// [`time_layer`]); the tier's peak printed is the median of those, or, for a tier
/// whose layers are not timed, the best of 0.3 s.
pub fn run(graph: &incept::graph::Graph, all_tiers: bool, rounds: usize, as_json: bool) -> Result<(), String> {
    let tiers: Vec<Tier> = Tier::available().into_iter().filter(|t| *t != Tier::Portable || all_tiers).collect();
    let widest = Tier::best();
    let clock = Clock::thread_cpu();
    let image_dims = graph.dims(graph.input);
    let mut report = Vec::new();
    for tier in tiers {
        let k = Kernels::new(tier).expect("available");
        let rows: Vec<(ConvLayer, Timed)> = if all_tiers || tier == widest {
            graph
                .conv_layers()
                .into_iter()
                .map(|layer| {
                    let image = reads_image(&layer, image_dims);
                    let timed = time_layer(&k, &layer, image, rounds.max(1), 0.01, &clock);
                    (layer, timed)
                })
                .collect()
        } else {
            Vec::new()
        };
        let peak = if rows.is_empty() {
            fma_peak_gflops_by(&k, 0.3, &clock.now)
        } else {
            let mut peaks: Vec<f64> = rows.iter().map(|r| r.1.peak).collect();
            peaks.sort_by(f64::total_cmp);
            peaks[peaks.len() / 2]
        };
        report.push((tier, peak, rows, k.conv_name()));
    }
    // The BF16 dot-product peak of each BF16 tier that has an instruction for it.
    let bf16_peaks: Vec<(&str, f64)> = Bf16Tier::available()
        .into_iter()
        .filter_map(|t| Some((t.name(), Bf16Kernels::new(t)?.dot_peak_gflops(0.3)?)))
        .collect();
    // The BF16 tiers with an instruction of their own that this host lacks (AMX on most).
    let bf16_absent: Vec<(&str, String)> = incept_kernels::bf16::BF16_TIERS
        .into_iter()
        .filter(|&t| t != Bf16Tier::Portable)
        .filter_map(|t| Some((t.name(), t.unavailable_reason()?)))
        .collect();
    let l2_bytes = Kernels::new(widest).expect("available").l2_bytes();
    let gflops = |l: &ConvLayer, t: &Timed| 2.0 * l.macs() as f64 / t.secs / 1e9;
    if as_json {
        let mut bf16: Vec<_> = bf16_peaks.iter().map(|(tier, g)| json!({"tier": tier, "peak_gflops": g})).collect();
        bf16.extend(
            bf16_absent.iter().map(|(tier, why)| json!({"tier": tier, "peak_gflops": null, "unavailable": why})),
        );
        let v: Vec<_> = report
            .iter()
            .map(|(tier, peak, rows, name)| {
                let layers: Vec<_> = rows
                    .iter()
                    .map(|(l, t)| {
                        json!({"window": l.window(), "kind": kind_of(l, image_dims), "input": [l.input.c, l.input.h, l.input.w],
                               "out_channels": l.out_channels, "count": l.count, "ms": t.secs * 1e3,
                               "gflops": gflops(l, t), "peak_gflops": t.peak, "fraction_of_peak": gflops(l, t) / t.peak})
                    })
                    .collect();
                let kinds: serde_json::Map<String, serde_json::Value> = by_kind(rows, image_dims)
                    .into_iter()
                    .map(|(kind, g, f)| (kind, json!({"gflops": g, "fraction_of_peak": f})))
                    .collect();
                json!({"tier": tier.name(), "kernel": name, "peak_gflops": peak, "kinds": kinds, "layers": layers})
            })
            .collect();
        let v = json!({"model": graph.name, "clock": clock.name, "rounds": rounds, "l2_bytes": l2_bytes,
                       "tiers": v, "bf16_tiers": bf16});
        println!("{v:#}");
        return Ok(());
    }
    println!("timed by the {} clock, {rounds} rounds per layer interleaved with the peak loop", clock.name);
    println!("L2 per core, as the kernels assume it: {} KiB", l2_bytes / 1024);
    for (tier, peak, _, _) in &report {
        println!("peak FMA throughput, {:<7} {:>7.1} GFLOP/s per core", tier.name(), peak);
    }
    for (tier, g) in &bf16_peaks {
        println!("peak BF16 dot-product throughput, {tier} {g:>7.1} GFLOP/s per core");
    }
    for (tier, why) in &bf16_absent {
        println!("peak BF16 dot-product throughput, {tier}: not measured, {why}");
    }
    for (tier, peak, rows, name) in report.iter().filter(|r| !r.2.is_empty()) {
        println!("\n{} ({name}), peak {peak:.1} GFLOP/s (median of the layers' peaks)", graph.name);
        println!(
            "{:<8} {:>14} {:>5} {:>4} {:>9} {:>9} {:>7} {:>6}",
            "window", "input", "out", "x", "ms", "GFLOP/s", "peak", "share"
        );
        for (layer, t) in rows {
            let d = layer.input;
            let input = format!("{}x{}x{}", d.c, d.h, d.w);
            let (out, n, g) = (layer.out_channels, layer.count, gflops(layer, t));
            println!(
                "{:<8} {input:>14} {out:>5} {n:>4} {:>9.3} {g:>9.1} {:>7.1} {:>5.1}%",
                layer.window(),
                t.secs * 1e3,
                t.peak,
                100.0 * g / t.peak
            );
        }
        println!("\nby kind ({}): GFLOP/s and share of the {} peak", graph.name, tier.name());
        for (kind, g, f) in by_kind(rows, image_dims) {
            println!("{kind:<12} {g:>8.1} GFLOP/s {:>6.1}%", 100.0 * f);
        }
    }
    Ok(())
}

/// Per window kind, counting repeated layers: MAC-weighted GFLOP/s, and the share
/// of peak (FLOPs over the time each layer would take at its own peak, so a layer
/// timed in a slow phase weighs with the peak of that phase).
fn by_kind(rows: &[(ConvLayer, Timed)], image_dims: Dims) -> Vec<(String, f64, f64)> {
    let mut kinds: Vec<(String, f64, f64, f64)> = Vec::new();
    for (layer, t) in rows {
        let (kind, macs, secs) =
            (kind_of(layer, image_dims), layer.macs() as f64 * layer.count as f64, t.secs * layer.count as f64);
        let at_peak = secs * t.peak;
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => (k.1, k.2, k.3) = (k.1 + macs, k.2 + secs, k.3 + at_peak),
            None => kinds.push((kind, macs, secs, at_peak)),
        }
    }
    kinds
        .into_iter()
        .map(|(kind, macs, secs, at_peak)| (kind, 2.0 * macs / secs / 1e9, 2.0 * macs / at_peak / 1e9))
        .collect()
}

/// Whether `l` convolves the network's input image (`image_dims`, at most one
/// block of channels): `conv2d_image` computes it, from NCHW.
fn reads_image(l: &ConvLayer, image_dims: Dims) -> bool {
    l.input == image_dims && l.input.c <= BLOCK
}

/// The kernel family a layer belongs to, as the targets name them. The image's
/// convolution is a kind of its own ("image 3x3/2"): another kernel
/// (`conv2d_image`, staging the image's windows) than the same window deeper in.
fn kind_of(l: &ConvLayer, image_dims: Dims) -> String {
    let g = l.geom;
    if reads_image(l, image_dims) {
        return format!("image {}", l.window());
    }
    match (g.kh, g.kw, g.stride_h) {
        (1, 1, 1) => "1x1".into(),
        (3, 3, 1) => "3x3".into(),
        (3, 3, 2) => "3x3/2".into(),
        (1, 7, 1) | (7, 1, 1) => "1x7/7x1".into(),
        (1, 3, 1) | (3, 1, 1) => "1x3/3x1".into(),
        _ => l.window(),
    }
}

/// `incept peak --winograd`: every convolution of `graph` a Winograd scheme computes
/// (3x3, 1x3, 3x1, 1x7, 7x1 stride 1) timed by the direct kernel and by each scheme
/// (F(2x2, 3x3) and F(4x4, 3x3) for a 3x3, F(2, 3) and a 6-point one for the others) on the widest
/// tier (or `INCEPT_TIER`), interleaved: `rounds` rounds, each a batch of runs of
/// every candidate in turn (a few milliseconds each, the order rotating), and the
/// median of each round's ratio to the direct batch, so that a slow spell of a
/// shared machine hits all alike.
pub fn compare_winograd(graph: &incept::graph::Graph, rounds: usize, as_json: bool) -> Result<(), String> {
    use incept::lower::winograd_for;
    use incept_kernels::pack::pack_winograd_weights;
    use incept_kernels::winograd::{ALL_SCHEMES, Scheme, conv2d_winograd, winograd_scratch_len};

    let tier = Tier::from_env()?;
    let k = Kernels::new(tier).expect("available");
    let l = Layout::Nchw16c;
    let clock = Clock::thread_cpu();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Per layer: the direct kernel's best time, and per scheme its best time and
    // median ratio; the scheme lowering picks.
    type Row = (ConvLayer, f64, Vec<(Scheme, f64, f64)>, Option<Scheme>);
    let mut rows: Vec<Row> = Vec::new();
    for layer in graph.conv_layers() {
        let (din, dout, g) = (layer.input, layer.output(), layer.geom);
        let schemes: Vec<Scheme> = ALL_SCHEMES.into_iter().filter(|s| s.computes(&g, din.c)).collect();
        if schemes.is_empty() {
            continue;
        }
        let shape = ConvShape { co: layer.out_channels, ci: din.c, kh: g.kh, kw: g.kw };
        let oihw = synthetic_weights(shape);
        let (mut wd, mut b) = (Vec::new(), Vec::new());
        pack_conv_weights(&oihw, shape, &mut wd);
        pack_bias(&vec![0.1; shape.co], &mut b);
        let (wd, b) = (AlignedVec::from_slice(&wd), AlignedVec::from_slice(&b));
        let ww: Vec<AlignedVec> = schemes
            .iter()
            .map(|&scheme| {
                let mut ww = Vec::new();
                pack_winograd_weights(&oihw, shape, scheme, &mut ww);
                AlignedVec::from_slice(&ww)
            })
            .collect();
        let x = AlignedVec::from_slice(&vec![0.5; l.image_len(din)]);
        let mut y = AlignedVec::zeroed(l.image_len(dout));
        let mut s_direct = AlignedVec::zeroed(conv2d_scratch_len(din, &g));
        let wino_len = schemes.iter().map(|&s| winograd_scratch_len(din, &g, s, 1)).max().unwrap_or(0);
        let mut s_wino = AlignedVec::zeroed(wino_len);
        let direct = PackedConv { shape, weights: wd.as_slice(), bias: b.as_slice() };
        // Candidate 0 is the direct kernel, candidate i > 0 scheme i - 1.
        let mut run = |candidate: usize| {
            let (x, out) = (Image::new(x.as_slice(), din, l), &mut ImageMut::new(y.as_mut_slice(), dout, l));
            let op = Conv2d { input: x.into(), weights: direct, geom: g, residual: None, act: Activation::Relu };
            if candidate == 0 {
                conv2d(&k, &op, &mut out.into(), s_direct.as_mut_slice(), &Sequential);
            } else {
                let (scheme, ww) = (schemes[candidate - 1], &ww[candidate - 1]);
                let op = Conv2d { weights: PackedConv { weights: ww.as_slice(), ..direct }, ..op };
                conv2d_winograd(&k, &op, scheme, &mut out.into(), s_wino.as_mut_slice(), &Sequential);
            }
        };
        let candidates = 1 + schemes.len();
        (0..candidates).for_each(&mut run);
        // Runs per batch: about 1 ms of the direct kernel at 200 GFLOP/s, short
        // against a scheduler's time slice, and the order rotates between rounds,
        // so that sharing a core with another process does not fall in step with
        // one side.
        let reps = (1e-3 * 200e9 / (2.0 * layer.macs() as f64)).ceil() as usize;
        let mut batch = |candidate: usize| {
            let t = (clock.now)();
            (0..reps).for_each(|_| run(candidate));
            ((clock.now)() - t) / reps as f64
        };
        let mut times = vec![Vec::new(); candidates];
        for round in 0..rounds.max(1) {
            for i in 0..candidates {
                let c = (i + round) % candidates;
                times[c].push(batch(c));
            }
        }
        // Other processes only ever slow a batch down: the fastest batch of each
        // side is the best estimate of its speed alone; the median of the rounds'
        // ratios is reported beside it as a check.
        let best = |t: &[f64]| t.iter().copied().fold(f64::INFINITY, f64::min);
        let per_scheme = schemes
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let ratios = times[0].iter().zip(&times[i + 1]).map(|(d, w)| d / w).collect();
                (s, best(&times[i + 1]), median(ratios))
            })
            .collect();
        let picked = winograd_for(&g, din.c, layer.out_channels, (dout.h, dout.w));
        rows.push((layer, best(&times[0]), per_scheme, picked));
    }
    let direct_ms: f64 = rows.iter().map(|r| r.1 * r.0.count as f64).sum::<f64>() * 1e3;
    let as_lowered = |r: &Row| r.2.iter().find(|s| Some(s.0) == r.3).map_or(r.1, |s| s.1);
    let chosen_ms: f64 = rows.iter().map(|r| as_lowered(r) * r.0.count as f64).sum::<f64>() * 1e3;
    let lowered_name = |picked: Option<Scheme>| picked.map_or("direct", Scheme::name);
    if as_json {
        let layers: Vec<_> = rows
            .iter()
            .map(|(l, d, schemes, picked)| {
                let schemes: Vec<_> = schemes
                    .iter()
                    .map(|(s, w, r)| json!({"scheme": s.name(), "ms": w * 1e3, "speedup": d / w, "median_round_speedup": r}))
                    .collect();
                json!({"window": [l.geom.kh, l.geom.kw], "input": [l.input.c, l.input.h, l.input.w], "out_channels": l.out_channels,
                       "pad": [l.geom.pad.top, l.geom.pad.left, l.geom.pad.bottom, l.geom.pad.right],
                       "count": l.count, "direct_ms": d * 1e3, "winograd": schemes, "lowered": lowered_name(*picked)})
            })
            .collect();
        let v = json!({"model": graph.name, "tier": tier.name(), "clock": clock.name, "rounds": rounds, "layers": layers,
                       "total_direct_ms": direct_ms, "total_as_lowered_ms": chosen_ms});
        println!("{v:#}");
        return Ok(());
    }
    println!(
        "{} Winograd-able layers on {}, direct vs each Winograd scheme: fastest of {rounds} interleaved rounds \
         (the {} clock), and the median of the rounds' ratios",
        graph.name,
        tier.name(),
        clock.name
    );
    println!(
        "{:>6} {:>14} {:>5} {:>5} {:>4} {:>10} {:>11} {:>10} {:>8} {:>8}  lowered",
        "window", "input", "out", "pad", "x", "direct ms", "scheme", "wino ms", "speedup", "median"
    );
    for (l, d, schemes, picked) in &rows {
        let input = format!("{}x{}x{}", l.input.c, l.input.h, l.input.w);
        let p = l.geom.pad;
        let pad = format!("{}{}{}{}", p.top, p.left, p.bottom, p.right);
        for (i, (s, w, r)) in schemes.iter().enumerate() {
            let how = if i == 0 { lowered_name(*picked) } else { "" };
            println!(
                "{:>6} {input:>14} {:>5} {pad:>5} {:>4} {:>10.3} {:>11} {:>10.3} {:>7.2}x {r:>7.2}x  {how}",
                format!("{}x{}", l.geom.kh, l.geom.kw),
                l.out_channels,
                l.count,
                d * 1e3,
                s.name(),
                w * 1e3,
                d / w
            );
        }
    }
    println!("all these layers (x count): direct {direct_ms:.2} ms, as lowered {chosen_ms:.2} ms");
    Ok(())
}

/// `incept peak MODEL --l2-kib KIB`: each convolution layer (but the image's) as
/// lowered (direct or Winograd) on the widest tier (or `INCEPT_TIER`), with the drivers assuming the
/// L2 the CPU reports and assuming `kib` KiB, interleaved: `rounds` rounds of a
/// batch of each (the order alternating), the fastest batch of each side and the
/// median of the rounds' ratios. One process, so what the cache-size choices are
/// worth on this host is measured apart from its slow spells.
pub fn compare_l2(graph: &incept::graph::Graph, rounds: usize, kib: usize, as_json: bool) -> Result<(), String> {
    use incept::lower::winograd_for;
    use incept_kernels::pack::pack_winograd_weights;
    use incept_kernels::winograd::{conv2d_winograd, winograd_scratch_len};

    let k = Kernels::new(Tier::from_env()?).expect("available");
    let sides = [k, k.with_l2_bytes(kib * 1024)];
    let l = Layout::Nchw16c;
    let clock = Clock::thread_cpu();
    let image_dims = graph.dims(graph.input);
    // Per layer: how it is lowered, the fastest batch per side, and the median of
    // the rounds' ratios.
    let mut rows: Vec<(ConvLayer, &str, [f64; 2], f64)> = Vec::new();
    for layer in graph.conv_layers().into_iter().filter(|l| !reads_image(l, image_dims)) {
        let (din, dout, g) = (layer.input, layer.output(), layer.geom);
        let shape = ConvShape { co: layer.out_channels, ci: din.c, kh: g.kh, kw: g.kw };
        let oihw = synthetic_weights(shape);
        let scheme = winograd_for(&g, din.c, layer.out_channels, (dout.h, dout.w));
        let (mut w, mut b) = (Vec::new(), Vec::new());
        match scheme {
            Some(scheme) => pack_winograd_weights(&oihw, shape, scheme, &mut w),
            None => pack_conv_weights(&oihw, shape, &mut w),
        }
        pack_bias(&vec![0.1; shape.co], &mut b);
        let (w, b) = (AlignedVec::from_slice(&w), AlignedVec::from_slice(&b));
        let x = AlignedVec::from_slice(&vec![0.5; l.image_len(din)]);
        let mut y = AlignedVec::zeroed(l.image_len(dout));
        let scratch_len = scheme.map_or(conv2d_scratch_len(din, &g), |s| winograd_scratch_len(din, &g, s, 1));
        let mut scratch = AlignedVec::zeroed(scratch_len);
        let packed = PackedConv { shape, weights: w.as_slice(), bias: b.as_slice() };
        let mut run = |side: usize| {
            let (x, out) = (Image::new(x.as_slice(), din, l), &mut ImageMut::new(y.as_mut_slice(), dout, l));
            let op = Conv2d { input: x.into(), weights: packed, geom: g, residual: None, act: Activation::Relu };
            let (k, out, scratch) = (&sides[side], &mut out.into(), scratch.as_mut_slice());
            match scheme {
                Some(scheme) => conv2d_winograd(k, &op, scheme, out, scratch, &Sequential),
                None => conv2d(k, &op, out, scratch, &Sequential),
            }
        };
        // Batches of about 2 ms at the peak (see `compare_winograd`).
        let reps = (2e-3 * 100e9 / (2.0 * layer.macs() as f64)).ceil() as usize;
        let mut batch = |side: usize| {
            run(side);
            let t = (clock.now)();
            (0..reps).for_each(|_| run(side));
            ((clock.now)() - t) / reps as f64
        };
        let mut times = [Vec::new(), Vec::new()];
        for round in 0..rounds.max(1) {
            for i in 0..2 {
                let side = (i + round) % 2;
                times[side].push(batch(side));
            }
        }
        let best = |t: &[f64]| t.iter().copied().fold(f64::INFINITY, f64::min);
        let mut ratios: Vec<f64> = times[0].iter().zip(&times[1]).map(|(a, b)| b / a).collect();
        ratios.sort_by(f64::total_cmp);
        let how = scheme.map_or("direct", |s| s.name());
        rows.push((layer, how, [best(&times[0]), best(&times[1])], ratios[ratios.len() / 2]));
    }
    let total = |side: usize| rows.iter().map(|r| r.2[side] * r.0.count as f64).sum::<f64>() * 1e3;
    let (reported, assumed) = (k.l2_bytes() / 1024, kib);
    if as_json {
        let layers: Vec<_> = rows
            .iter()
            .map(|(l, how, t, r)| {
                json!({"window": l.window(), "input": [l.input.c, l.input.h, l.input.w], "out_channels": l.out_channels,
                       "count": l.count, "lowered": how, "ms_reported_l2": t[0] * 1e3, "ms_assumed_l2": t[1] * 1e3, "median_round_ratio": r})
            })
            .collect();
        let v = json!({"model": graph.name, "tier": k.tier().name(), "clock": clock.name, "rounds": rounds,
                       "reported_l2_kib": reported, "assumed_l2_kib": assumed, "layers": layers,
                       "total_ms_reported_l2": total(0), "total_ms_assumed_l2": total(1)});
        println!("{v:#}");
        return Ok(());
    }
    println!(
        "{} on {}, as lowered: the drivers assuming the reported L2 ({reported} KiB) vs {assumed} KiB; fastest of \
         {rounds} interleaved rounds (the {} clock), and the median of the rounds' ratios (assumed / reported)",
        graph.name,
        k.tier().name(),
        clock.name
    );
    println!(
        "{:<8} {:>14} {:>5} {:>4} {:>11} {:>10} {:>10} {:>7}",
        "window", "input", "out", "x", "lowered", "ms", "ms", "ratio"
    );
    for (l, how, t, r) in &rows {
        let input = format!("{}x{}x{}", l.input.c, l.input.h, l.input.w);
        println!(
            "{:<8} {input:>14} {:>5} {:>4} {how:>11} {:>10.3} {:>10.3} {r:>7.3}",
            l.window(),
            l.out_channels,
            l.count,
            t[0] * 1e3,
            t[1] * 1e3
        );
    }
    println!(
        "all these layers (x count): {:.2} ms assuming {reported} KiB, {:.2} ms assuming {assumed} KiB",
        total(0),
        total(1)
    );
    Ok(())
}
