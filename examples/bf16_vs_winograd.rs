//! Every convolution lowering computes by Winograd, timed as float32 Winograd (the
//! scheme lowering picks) and as the BF16 direct kernel, interleaved in rounds on one
//! thread; per-thread CPU time (`CLOCK_THREAD_CPUTIME_ID`), which other processes
//! disturb far less than wall time: the measurement behind `incept::lower::bf16_for`
//! making these layers BF16 (docs/bf16.md).
//!
//! `cargo run --release --example bf16_vs_winograd -- [MODEL] [ROUNDS]`
//! (default inception_v3, 15 rounds); `INCEPT_TIER` / `INCEPT_BF16_TIER` pick tiers.

use incept::lower::winograd_for;
use incept_kernels::bf16::pack::pack_conv_weights_bf16;
use incept_kernels::bf16::{
    Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, bf16, conv2d_bf16_par, conv2d_bf16_scratch_len,
};
use incept_kernels::conv::{Conv2d, PackedConv};
use incept_kernels::pack::{ConvShape, pack_bias, pack_winograd_weights};
use incept_kernels::parallel::Sequential;
use incept_kernels::winograd::{conv2d_winograd, winograd_scratch_len};
use incept_kernels::{Activation, AlignedVec, Image, ImageMut, Kernels, Layout, Tier};

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; the clock id is Linux's thread clock.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    t.sec as f64 + t.nsec as f64 * 1e-9
}

fn main() {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "inception_v3".into());
    let rounds: usize = args.next().map_or(15, |r| r.parse().expect("ROUNDS is a number"));
    let graph = incept::models::build(&model).expect("a built-in model");
    let k = Kernels::new(Tier::from_env().unwrap()).unwrap();
    let k16 = Bf16Kernels::new(Bf16Tier::from_env().unwrap()).unwrap();
    let l = Layout::Nchw16c;
    println!(
        "{model}: float32 Winograd ({}) against BF16 direct ({}), best of {rounds} interleaved rounds, thread CPU time",
        k.tier().name(),
        k16.tier().name()
    );
    println!(
        "{:<34} {:>5} {:>11} {:>11} {:>8}",
        "layer (input, out, window)", "count", "winograd ms", "bf16 ms", "ratio"
    );
    let (mut total_w, mut total_b) = (0.0, 0.0);
    for layer in graph.conv_layers() {
        let (din, dout, g) = (layer.input, layer.output(), layer.geom);
        let Some(scheme) = winograd_for(&g, din.c, layer.out_channels, (dout.h, dout.w)) else { continue };
        let shape = ConvShape { co: layer.out_channels, ci: din.c, kh: g.kh, kw: g.kw };
        let oihw: Vec<f32> = (0..shape.co * shape.ci * g.kh * g.kw).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
        let (mut ww, mut wb, mut b) = (Vec::new(), Vec::new(), Vec::new());
        pack_winograd_weights(&oihw, shape, scheme, &mut ww);
        pack_conv_weights_bf16(&oihw, shape, &mut wb);
        pack_bias(&vec![0.1; shape.co], &mut b);
        let (ww, b) = (AlignedVec::from_slice(&ww), AlignedVec::from_slice(&b));
        let x = AlignedVec::from_slice(&vec![0.5; l.image_len(din)]);
        let mut y = AlignedVec::zeroed(l.image_len(dout));
        let mut s_wino = AlignedVec::zeroed(winograd_scratch_len(din, &g, scheme, 1));
        let mut s_bf16 = vec![bf16::ZERO; conv2d_bf16_scratch_len(din, &g, Bf16Terms::Rounded)];
        let mut run = |bf16_direct: bool| {
            let (x, out) = (Image::new(x.as_slice(), din, l), &mut ImageMut::new(y.as_mut_slice(), dout, l));
            if bf16_direct {
                let w = PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &wb, bias: b.as_slice() };
                conv2d_bf16_par(&k16, x, &w, &g, None, Activation::Relu, out, &mut s_bf16, &Sequential);
            } else {
                let weights = PackedConv { shape, weights: ww.as_slice(), bias: b.as_slice() };
                let op = Conv2d { input: x.into(), weights, geom: g, residual: None, act: Activation::Relu };
                conv2d_winograd(&k, &op, scheme, &mut out.into(), s_wino.as_mut_slice(), &Sequential);
            }
        };
        run(false);
        run(true);
        // About 2 ms of work per timed batch at 100 GFLOP/s.
        let reps = (2e-3 * 100e9 / (2.0 * layer.macs() as f64)).ceil() as usize;
        let mut best = [f64::INFINITY; 2];
        for round in 0..rounds {
            for i in 0..2 {
                let side = (i + round) % 2;
                let t = thread_cpu_seconds();
                (0..reps).for_each(|_| run(side == 1));
                best[side] = best[side].min((thread_cpu_seconds() - t) / reps as f64);
            }
        }
        let (w, bd) = (best[0] * 1e3, best[1] * 1e3);
        let name = format!("{}x{}x{} -> {}, {}x{}", din.c, din.h, din.w, shape.co, g.kh, g.kw);
        println!("{name:<34} {:>5} {w:>11.3} {bd:>11.3} {:>8.2}", layer.count, bd / w);
        total_w += w * layer.count as f64;
        total_b += bd * layer.count as f64;
    }
    println!(
        "total (times count): winograd {total_w:.2} ms, bf16 direct {total_b:.2} ms, ratio {:.2}",
        total_b / total_w
    );
}
