//! Every BF16 convolution tier this CPU runs against the BF16 reference (the
//! float32 reference on BF16-rounded operands), over shape families: 1x1, 3x3,
//! 1xn / nx1, 5x5, strided stems; channel counts off, under and over the block and
//! odd (a pair half real, half padding); widths around the pixel tile; stride 2;
//! every padding side; a residual; output into a slice of a larger buffer; long
//! reductions of many chunks. Besides the error bound, every output must equal,
//! bit for bit, the documented order of [`Bf16TileArgs`] replayed in scalar code
//! (for the NEON BF16 tier, the same order with `BFDOT`'s rounding to odd), and
//! stay within BF16's rounding of the float32 reference. A tier this CPU lacks is
//! skipped with a message.
//!
//! [`Bf16TileArgs`]: incept_kernels::bf16::conv::Bf16TileArgs

mod support;

use incept_kernels::bf16::conv::chunk_taps_bf16;
use incept_kernels::bf16::convert::{round_to_bf16, to_bf16};
use incept_kernels::bf16::pack::pack_conv_weights_bf16;
use incept_kernels::bf16::{
    BF16_TIERS, Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, bf16, bf16_tier_calls, bf16_tile_calls,
    conv2d_bf16_par, conv2d_bf16_scratch_len, reference,
};
use incept_kernels::pack::{ConvShape, pack_bias};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::{Activation, ConvGeometry, Dims, Image, ImageMut, Layout, Padding};
use support::{
    Case, Rng, ThreeThreads, bf16_kernels, bf16_rounding_bound, each_output, geometries, magnitude, reference_conv,
    sum_tolerance, to_layout, write_between_sentinels,
};

/// The order a tier's sums are checked in, bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// The contract's: `VDPBF16PS`'s, each pair's odd lane first, the pairs that hold
    /// a real channel.
    Vdpbf16ps,
    /// `TDPBF16PS` as the SDM's pseudocode (and the AMX emulation) adds: each pair's
    /// even lane first, all 8 pairs of every block (the padding ones add zeros).
    Tdpbf16ps,
    /// `BFDOT` as the Arm ARM's `BFDotAdd` adds (without FEAT_EBF16, or with
    /// `FPCR.EBF` clear): each pair's two products summed into one float32 value,
    /// then that added to the accumulator, each addition rounded to odd, subnormals
    /// flushed; the pairs that hold a real channel. The NEON BF16 tier.
    Bfdot,
    /// None: the AMX instructions themselves, whose internal rounding Intel does not
    /// specify; checked within the float32 rounding bound only.
    Unspecified,
}

impl Order {
    fn of(kernels: &Bf16Kernels) -> Order {
        match kernels.tier() {
            Bf16Tier::Amx if kernels.conv_name().ends_with("_emulated") => Order::Tdpbf16ps,
            Bf16Tier::Amx => Order::Unspecified,
            Bf16Tier::NeonBf16 => Order::Bfdot,
            _ => Order::Vdpbf16ps,
        }
    }
}

/// `v`, or a zero of its sign when subnormal (`VDPBF16PS` reads and writes those as zero).
fn flush(v: f32) -> f32 {
    if v.is_subnormal() { 0f32.copysign(v) } else { v }
}

/// `a + b` rounded to odd: exact if it fits a float32, else the neighbour of the
/// exact sum whose last significand bit is 1 (the error of the rounded sum is exact
/// in float32, TwoSum).
fn add_rounded_to_odd(a: f32, b: f32) -> f32 {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    if e == 0.0 || !s.is_finite() {
        return s;
    }
    // The sum truncated toward zero: `s`, or one ulp nearer zero when `s` rounded away.
    let t = if (e > 0.0) == (s > 0.0) { s } else { f32::from_bits(s.to_bits() - 1) };
    f32::from_bits(t.to_bits() | 1)
}

/// The documented order for output `(o, oy, ox)`: chunks of `chunk_taps_bf16` taps from
/// zero; in each tap, pairs of lanes `(2j, 2j + 1)` up to the last pair holding a
/// real channel (lanes past `ci`, and padding, are zeros); each pair adds its odd
/// lane's exact product, then its even lane's, rounding each addition; the first
/// chunk added to the bias, each later one to the partial sum; then the residual
/// and the activation. In the [`Order::Tdpbf16ps`] order, each pair adds its even
/// lane first, and every block all 8 pairs; in the [`Order::Bfdot`] one, each pair
/// sums its two products, then adds that, rounding to odd.
#[allow(clippy::too_many_arguments)]
fn replay(
    order: Order,
    x: &[f32],
    din: Dims,
    wt: &[f32],
    shape: ConvShape,
    bias: &[f32],
    geom: &ConvGeometry,
    residual: Option<f32>,
    act: Activation,
    (o, oy, ox): (usize, usize, usize),
) -> f32 {
    let ConvShape { ci, kh, kw, .. } = shape;
    let (blocks, taps_per_block) = (ci.div_ceil(16), kh * kw);
    let chunk = chunk_taps_bf16(shape);
    let input = |i: usize, ky: usize, kx: usize| {
        let y = (oy * geom.stride_h + ky) as isize - geom.pad.top as isize;
        let xx = (ox * geom.stride_w + kx) as isize - geom.pad.left as isize;
        let inside = i < ci && y >= 0 && xx >= 0 && y < din.h as isize && xx < din.w as isize;
        if inside { round_to_bf16(x[(i * din.h + y as usize) * din.w + xx as usize]) } else { 0.0 }
    };
    let weight = |i: usize, ky: usize, kx: usize| {
        if i < ci { round_to_bf16(wt[((o * ci + i) * kh + ky) * kw + kx]) } else { 0.0 }
    };
    let mut partial = 0.0f32;
    let taps = blocks * taps_per_block;
    for t0 in (0..taps).step_by(chunk) {
        let mut acc = 0.0f32;
        for t in t0..(t0 + chunk).min(taps) {
            let (ib, ky, kx) = (t / taps_per_block, t / kw % kh, t % kw);
            let lanes = if ib + 1 < blocks || order == Order::Tdpbf16ps { 16 } else { ci - ib * 16 };
            for j in 0..lanes.div_ceil(2) {
                let (even, odd) = (ib * 16 + 2 * j, ib * 16 + 2 * j + 1);
                if order == Order::Bfdot {
                    let p = |i| flush(flush(input(i, ky, kx)) * flush(weight(i, ky, kx)));
                    acc = flush(add_rounded_to_odd(acc, flush(add_rounded_to_odd(p(even), p(odd)))));
                    continue;
                }
                let pair = if order == Order::Tdpbf16ps { [even, odd] } else { [odd, even] };
                for i in pair {
                    acc = flush(flush(input(i, ky, kx)).mul_add(flush(weight(i, ky, kx)), acc));
                }
            }
        }
        partial = if t0 == 0 { acc + bias[o] } else { partial + acc };
    }
    if let Some(r) = residual {
        partial += r;
    }
    if act == Activation::Relu { partial.max(0.0) } else { partial }
}

/// Runs `case` on `kernels` and checks every output: within the float32 rounding
/// bound of a K-term dot product (2 K u sum|w x|, u = 2^-24) of the BF16 reference;
/// within BF16's rounding of the operands (each product off by at most 2u + u^2 of
/// itself, u = 2^-8) of the float32 reference; equal to [`replay`] in the tier's
/// [`Order`] (if it has one). The first bound allows 2u per addition, so it holds
/// for any order and any rounding of each addition, even a directed one, and for
/// sums kept more precisely: what the AMX instructions are checked against.
/// False when the window does not fit the input (nothing to run).
fn check(kernels: &Bf16Kernels, case: Case, rng: &mut Rng, par: &dyn ParallelFor) -> bool {
    let Case { ci, co, h, w, geom, residual, act } = case;
    let din = Dims::new(ci, h, w);
    let Some((oh, ow)) = geom.output_hw(h, w) else { return false };
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
    let [x, wt, bias, res] = rng.conv_operands(din, &geom, dout);
    let nchw = Layout::Nchw;

    let mut want = vec![0.0; dout.volume()];
    let r = residual.then(|| Image::new(&res, dout, nchw));
    let y = &mut ImageMut::new(&mut want, dout, nchw);
    reference::conv2d(Image::new(&x, din, nchw), &wt, Some(&bias), &geom, r, act, y);
    let r = residual.then_some(&res[..]);
    let want_f32 = reference_conv(&x, din, &wt, Some(&bias), &geom, r, act, dout);
    let mag = magnitude(&x, din, &wt, &bias, &geom, r, dout);
    let k = ci * geom.kh * geom.kw + 2;

    let blk = Layout::Nchw16c;
    let mut packed = Vec::new();
    pack_conv_weights_bf16(&wt, shape, &mut packed);
    let mut pbias = Vec::new();
    pack_bias(&bias, &mut pbias);
    let (xin, rin) = (to_layout(&x, din, blk), to_layout(&res, dout, blk));
    // NaN scratch: the driver must overwrite every value it reads.
    let mut scratch = vec![to_bf16(f32::NAN); conv2d_bf16_scratch_len(din, &geom, Bf16Terms::Rounded)];
    let out = &write_between_sentinels(dout, blk, &case, |out| {
        conv2d_bf16_par(
            kernels,
            Image::new(&xin, din, blk),
            &PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &packed, bias: &pbias },
            &geom,
            residual.then(|| Image::new(&rin, dout, blk)),
            act,
            out,
            &mut scratch,
            par,
        )
    });
    let order = Order::of(kernels);
    each_output(out, dout, &case, |(c, yy, xx), i, got| {
        let at = format!("{} {case:?} at (c={c}, y={yy}, x={xx})", kernels.conv_name());
        let tol = sum_tolerance(k, mag[i]);
        assert!((got - want[i]).abs() <= tol, "{at}: got {got}, BF16 reference {}, tolerance {tol:e}", want[i]);
        let tol_f32 = bf16_rounding_bound(mag[i]) + tol;
        assert!((got - want_f32[i]).abs() <= tol_f32, "{at}: got {got}, float32 reference {}", want_f32[i]);
        if order != Order::Unspecified {
            let r = residual.then(|| res[i]);
            let order = replay(order, &x, din, &wt, shape, &bias, &geom, r, act, (c, yy, xx));
            assert!(got.to_bits() == order.to_bits(), "{at}: got {got}, the documented order gives {order}");
        }
    });
    true
}

fn sweep(kernels: &Bf16Kernels, par: &dyn ParallelFor) -> usize {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut cases = 0;
    for geom in geometries() {
        for &(ci, co) in &[(1, 1), (3, 32), (16, 16), (17, 15), (32, 80), (33, 64), (7, 100)] {
            for &(h, w) in &[(1, 1), (2, 9), (5, 7), (8, 8), (13, 17)] {
                let residual = (ci + h) % 2 == 0;
                let act = if (co + w) % 3 == 0 { Activation::None } else { Activation::Relu };
                cases += check(kernels, Case { ci, co, h, w, geom, residual, act }, &mut rng, par) as usize;
            }
        }
    }
    cases
}

/// Reductions of hundreds to thousands of terms: many chunks, some with a short last one.
fn long_reductions(kernels: &Bf16Kernels, par: &dyn ParallelFor) {
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let g = |kh, kw, ph, pw| ConvGeometry { kh, kw, stride_h: 1, stride_w: 1, pad: Padding::symmetric(ph, pw) };
    let cases = [
        (1000, 40, 5, 7, g(1, 1, 0, 0)),
        (4100, 17, 2, 3, g(1, 1, 0, 0)),
        (448, 64, 6, 9, g(3, 3, 1, 1)),
        (160, 48, 7, 8, g(1, 7, 0, 3)),
        (200, 33, 9, 4, g(7, 1, 3, 0)),
        (301, 20, 4, 5, g(5, 5, 2, 2)),
    ];
    let mut short_last = 0;
    for (n, &(ci, co, h, w, geom)) in cases.iter().enumerate() {
        let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
        let (taps, chunk) = (ci.div_ceil(16) * geom.kh * geom.kw, chunk_taps_bf16(shape));
        assert!(taps >= 3 * chunk, "{shape:?}: {taps} taps in chunks of {chunk}");
        short_last += (taps % chunk != 0) as usize;
        let act = if n % 2 == 0 { Activation::Relu } else { Activation::None };
        assert!(check(kernels, Case { ci, co, h, w, geom, residual: n % 3 == 1, act }, &mut rng, par));
    }
    assert!(short_last >= 2, "too few cases end in a short chunk");
}

/// One layer per tile shape of the tier's menu, a tile of that shape covering its
/// output exactly (`ob` blocks of output channels, a row of `px` pixels), once with
/// a 1x3 window (the input converted whole first) and once 1x1 (the float32 input
/// rounded in the tile), checked like the others; then every shape must have run.
fn every_tile_shape(kernels: &Bf16Kernels) {
    let mut rng = Rng(0x5851f42d4c957f2d);
    let tier = kernels.tier();
    let shapes: Vec<(usize, usize)> = kernels.tile_shapes().collect();
    assert!(!shapes.is_empty(), "{tier:?}: an empty tile menu");
    for kw in [3, 1] {
        let before: Vec<u64> = shapes.iter().map(|&(ob, px)| bf16_tile_calls(tier, ob, px)).collect();
        for &(ob, px) in &shapes {
            let geom = ConvGeometry { kh: 1, kw, stride_h: 1, stride_w: 1, pad: Padding::symmetric(0, kw / 2) };
            let case = Case { ci: 19, co: 16 * ob, h: 1, w: px, geom, residual: px % 2 == 0, act: Activation::Relu };
            assert!(check(kernels, case, &mut rng, &Sequential));
        }
        for (&(ob, px), before) in shapes.iter().zip(before) {
            let at = format!("{} (1x{kw})", kernels.conv_name());
            assert!(bf16_tile_calls(tier, ob, px) > before, "{at}: tile {ob}x{px} did not run");
        }
    }
}

/// Pointwise layers: up to four groups of output blocks (read in place from the
/// float32 input; 5 to 10 blocks split evenly: 5 as 3 + 2) and more (17 blocks,
/// converted whole first), padded ones (converted whole), long and short inputs,
/// maps that end in a partial tile.
fn pointwise(kernels: &Bf16Kernels, par: &dyn ParallelFor) {
    let mut rng = Rng(0x853c49e6748fea9b);
    let g = ConvGeometry { kh: 1, kw: 1, stride_h: 1, stride_w: 1, pad: Padding::uniform(0) };
    let cases =
        [(48, 80, 9, 13), (300, 96, 7, 11), (600, 112, 5, 5), (1040, 20, 3, 7), (17, 70, 19, 23), (520, 260, 3, 5)];
    for (n, &(ci, co, h, w)) in cases.iter().enumerate() {
        let act = if n % 2 == 0 { Activation::Relu } else { Activation::None };
        assert!(check(kernels, Case { ci, co, h, w, geom: g, residual: n % 2 == 1, act }, &mut rng, par));
    }
}

#[test]
fn every_available_bf16_tier_matches_the_reference() {
    for kernels in bf16_kernels() {
        every_family(&kernels);
    }
}

/// The whole sweep on `kernels`, asserted to have run on their tier.
fn every_family(kernels: &Bf16Kernels) {
    let tier = kernels.tier();
    let before = bf16_tier_calls(tier);
    let cases = sweep(kernels, &Sequential);
    long_reductions(kernels, &Sequential);
    pointwise(kernels, &Sequential);
    every_tile_shape(kernels);
    assert!(cases > 250 && bf16_tier_calls(tier) >= before + cases as u64, "{tier:?} did not run");
    eprintln!("{}: ok", kernels.conv_name());
}

/// The NEON BF16 tier, forced, on a handful of shapes, short enough for qemu
/// (`.ci/run` runs it on qemu's default CPU, which has BF16; the sweeps above take
/// minutes there): 1x1 (read in place from the float32 input, and strided with an
/// odd channel count), 3x3 padded with a channel tail, a residual and ReLU, 1x7,
/// 7x1, 3x3 stride 2, a reduction of many chunks, and every tile shape. Skipped
/// with a message where the tier is unavailable, unless `INCEPT_EXPECT_NEONBF16`
/// is set (on an AArch64 host with BF16, or under qemu).
#[test]
fn neon_bf16_tier_matches_the_reference_on_a_few_shapes() {
    let tier = Bf16Tier::NeonBf16;
    let Some(kernels) = Bf16Kernels::new(tier) else {
        let why = tier.unavailable_reason().unwrap_or_default();
        assert!(std::env::var("INCEPT_EXPECT_NEONBF16").is_err(), "neonbf16 expected: {why}");
        eprintln!("SKIPPED: {why}");
        return;
    };
    let mut rng = Rng(0x3c6ef372fe94f82b);
    let (g, p, relu) = (support::window, Padding::uniform, Activation::Relu);
    let case = |ci, co, (h, w), geom, residual, act| Case { ci, co, h, w, geom, residual, act };
    let cases = [
        case(40, 32, (5, 7), g(1, 1, 1, p(0)), false, relu),
        case(7, 16, (7, 7), g(1, 1, 2, p(0)), false, Activation::None),
        case(19, 20, (6, 9), g(3, 3, 1, p(1)), true, relu),
        case(24, 16, (5, 11), g(1, 7, 1, Padding::symmetric(0, 3)), false, Activation::None),
        case(17, 33, (9, 4), g(7, 1, 1, Padding::symmetric(3, 0)), true, relu),
        case(33, 48, (9, 10), g(3, 3, 2, p(0)), false, relu),
        case(300, 20, (3, 5), g(1, 1, 1, p(0)), true, Activation::None),
    ];
    let before = bf16_tier_calls(tier);
    for c in cases {
        assert!(check(&kernels, c, &mut rng, &Sequential), "{c:?}: nothing to run");
    }
    assert!(bf16_tier_calls(tier) >= before + cases.len() as u64, "{tier:?} did not run");
    every_tile_shape(&kernels);
    eprintln!("{}: ok", kernels.conv_name());
}

/// The AMX tier's tiles on the emulated tile instructions, on every host: the
/// same families, bit for bit in the order of the SDM's `TDPBF16PS` pseudocode;
/// and on three threads.
#[test]
fn amx_tier_on_emulated_tiles_matches_the_reference() {
    let kernels = Bf16Kernels::amx_emulated();
    assert!(kernels.conv_name().ends_with("_emulated") && kernels.dot_peak_gflops(0.01).is_none());
    every_family(&kernels);
    large_maps(&kernels, &ThreeThreads);
}

/// Maps of over 1000 output pixels, large enough for the conversion pass to be
/// spread over the threads (pointwise read in place, and converted first; heights
/// that do not divide evenly, strides, padded and not, a residual).
fn large_maps(kernels: &Bf16Kernels, par: &dyn ParallelFor) {
    let mut rng = Rng(0x6a09e667f3bcc909);
    let g = |k, s, p| ConvGeometry { kh: k, kw: k, stride_h: s, stride_w: s, pad: Padding::uniform(p) };
    let cases = [
        (40, 70, 34, 35, g(1, 1, 0)),
        (20, 300, 33, 32, g(1, 1, 0)),
        (24, 40, 32, 32, g(1, 1, 1)),
        (40, 70, 34, 35, g(3, 1, 1)),
        (17, 33, 67, 70, g(3, 2, 0)),
        (20, 48, 41, 32, g(5, 1, 2)),
        (35, 40, 34, 33, g(2, 1, 0)),
    ];
    for (n, &(ci, co, h, w, geom)) in cases.iter().enumerate() {
        let act = if n % 2 == 0 { Activation::Relu } else { Activation::None };
        assert!(check(kernels, Case { ci, co, h, w, geom, residual: n % 2 == 1, act }, &mut rng, par));
    }
}

#[test]
fn bf16_tiles_spread_over_threads_match_the_reference() {
    let kernels = Bf16Kernels::new(Bf16Tier::best()).unwrap();
    sweep(&kernels, &ThreeThreads);
    long_reductions(&kernels, &ThreeThreads);
    pointwise(&kernels, &ThreeThreads);
    large_maps(&kernels, &ThreeThreads);
    large_maps(&kernels, &Sequential);
}

/// Subnormal operands are read as zero, on every tier alike: an input of 2^-130
/// (a float32 subnormal, a BF16 subnormal after rounding) contributes nothing.
#[test]
fn subnormal_operands_read_as_zero() {
    let (din, geom) = (Dims::new(2, 1, 1), ConvGeometry::new(1, 1, 1, Padding::uniform(0)));
    let shape = ConvShape { co: 1, ci: 2, kh: 1, kw: 1 };
    let (x, wt) = (to_layout(&[2f32.powi(-130), 1.0], din, Layout::Nchw16c), [1.0, 0.5]);
    for tier in Bf16Tier::available() {
        let kernels = Bf16Kernels::new(tier).unwrap();
        let mut packed: Vec<bf16> = Vec::new();
        pack_conv_weights_bf16(&wt, shape, &mut packed);
        let bias = [0.0; 16];
        let mut out = vec![f32::NAN; 16];
        let mut scratch = vec![bf16::ZERO; conv2d_bf16_scratch_len(din, &geom, Bf16Terms::Rounded)];
        conv2d_bf16_par(
            &kernels,
            Image::new(&x, din, Layout::Nchw16c),
            &PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &packed, bias: &bias },
            &geom,
            None,
            Activation::None,
            &mut ImageMut::new(&mut out, Dims::new(1, 1, 1), Layout::Nchw16c),
            &mut scratch,
            &Sequential,
        );
        assert_eq!(out[0], 0.5, "{tier:?}");
    }
}

/// The BF16 tiers a machine is expected to have: set `INCEPT_EXPECT_AVX512BF16` on
/// a host with `avx512_bf16` so that a detection failure fails loudly rather than
/// skipping the tier; `INCEPT_EXPECT_NEONBF16` likewise on an AArch64 host with
/// `bf16` (or under qemu's default CPU); `INCEPT_EXPECT_AMX` likewise on a host with `amx_bf16` (and
/// Linux granting the tile state). A tier is unavailable exactly when it says why,
/// and AMX, where usable, is the tier chosen first.
#[test]
fn expected_bf16_tiers_are_detected() {
    assert!(Bf16Tier::available().contains(&Bf16Tier::Portable));
    if std::env::var("INCEPT_EXPECT_AVX512BF16").is_ok() {
        assert!(Bf16Tier::available().contains(&Bf16Tier::Avx512Bf16));
    }
    if std::env::var("INCEPT_EXPECT_NEONBF16").is_ok() {
        let why = Bf16Tier::NeonBf16.unavailable_reason();
        assert!(Bf16Tier::available().contains(&Bf16Tier::NeonBf16), "neonbf16 expected: {why:?}");
    }
    if std::env::var("INCEPT_EXPECT_AMX").is_ok() {
        let why = Bf16Tier::Amx.unavailable_reason();
        assert!(Bf16Tier::available().contains(&Bf16Tier::Amx), "AMX expected: {why:?}");
    }
    for tier in BF16_TIERS {
        assert_eq!(tier.is_available(), tier.unavailable_reason().is_none(), "{tier:?}");
    }
    if Bf16Tier::Amx.is_available() {
        assert_eq!(Bf16Tier::best(), Bf16Tier::Amx);
    } else {
        eprintln!("SKIPPED (AMX chosen first): {}", Bf16Tier::Amx.unavailable_reason().unwrap_or_default());
    }
}

/// The dot-product peak loop runs and reports a positive figure on a tier that has one.
#[test]
fn bf16_peak_loop_runs() {
    for tier in Bf16Tier::available() {
        let peak = Bf16Kernels::new(tier).unwrap().dot_peak_gflops(0.05);
        match tier {
            Bf16Tier::Portable => assert!(peak.is_none()),
            _ => assert!(peak.is_some_and(|g| g > 0.0), "{tier:?}: {peak:?}"),
        }
    }
}
