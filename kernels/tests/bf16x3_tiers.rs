//! The split BF16 convolution ([`Bf16Terms::Split3`], precision `bf16x3`: each
//! operand split into `hi + lo` BF16 terms, three products per multiply-add) on
//! every BF16 tier this CPU runs and on the AMX tier's emulated tiles, over shape
//! families (the windows of `support::geometries`: 1x1, 3x3, 1xn / nx1, 5x5, strided
//! stems, channels off, under and over the block, widths around the tiles, every
//! padding side, a residual; pointwise layers, long reductions). Every output must
//! equal, bit for bit, the same tier's rounded BF16 convolution over the three
//! groups of input channels `[x_hi | x_lo | x_hi]` x `[w_hi | w_hi | w_lo]` (whose
//! order `bf16_tiers.rs` checks); be within float32 rounding of the split
//! reference ([`reference::conv2d_terms`]); and within the split's own bound of
//! the float32 reference. A tier this CPU lacks is skipped with a message.

mod support;

use incept_kernels::bf16::convert::to_bf16;
use incept_kernels::bf16::pack::{pack_conv_weights_bf16, pack_conv_weights_bf16_terms};
use incept_kernels::bf16::{
    Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, bf16_tier_calls, conv2d_bf16_par, conv2d_bf16_scratch_len,
    reference,
};
use incept_kernels::pack::{ConvShape, pack_bias};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::{Activation, ConvGeometry, Dims, Image, ImageMut, Layout, Padding};
use support::{
    Rng, ThreeThreads, bf16_kernels, each_output, geometries, magnitude, reference_conv, sum_tolerance, to_layout,
    window, write_between_sentinels,
};

const SPLIT: Bf16Terms = Bf16Terms::Split3;

/// How far a split product may be from the exact one, relative to `|x w|`: with
/// `x = hi + lo + e`, `|e| <= 2^-16 |x|`, `|lo| <= (2^-8 + 2^-16) |x|` (the same for
/// `w`), the three products miss `lo_x lo_w + (hi_x + lo_x) e_w + e_x w`, at most
/// `((1 + 2^-8)^2 + (1 + 2^-16) + 1) 2^-16 = (3 + 2^-7 + 2^-14 + ...) 2^-16`.
const SPLIT_PRODUCT_BOUND: f32 = 3.01 / 65536.0;

/// Runs a convolution of NCHW `x` (`din`) with OIHW `wt` of `shape`, operands made
/// as `terms`, on `kernels`, into an NCHW16c output of `dout` between sentinels.
#[allow(clippy::too_many_arguments)]
fn run(
    kernels: &Bf16Kernels,
    terms: Bf16Terms,
    (x, din): (&[f32], Dims),
    (wt, shape): (&[f32], ConvShape),
    bias: &[f32],
    geom: &ConvGeometry,
    residual: Option<&[f32]>,
    act: Activation,
    dout: Dims,
    par: &dyn ParallelFor,
) -> Vec<f32> {
    let blk = Layout::Nchw16c;
    let mut packed = Vec::new();
    pack_conv_weights_bf16_terms(wt, shape, terms, &mut packed);
    if terms == Bf16Terms::Rounded {
        let mut direct = Vec::new();
        pack_conv_weights_bf16(wt, shape, &mut direct);
        assert_eq!(packed, direct);
    }
    let mut pbias = Vec::new();
    pack_bias(bias, &mut pbias);
    let xin = to_layout(x, din, blk);
    let rin = residual.map(|r| to_layout(r, dout, blk));
    // NaN scratch: the driver must overwrite every value it reads.
    let mut scratch = vec![to_bf16(f32::NAN); conv2d_bf16_scratch_len(din, geom, terms)];
    write_between_sentinels(dout, blk, &(shape, terms), |out| {
        conv2d_bf16_par(
            kernels,
            Image::new(&xin, din, blk),
            &PackedConvBf16 { shape, terms, weights: &packed, bias: &pbias },
            geom,
            rin.as_ref().map(|r| Image::new(r, dout, blk)),
            act,
            out,
            &mut scratch,
            par,
        )
    })
}

/// Checks one case (see the module docs); false when the window does not fit.
#[allow(clippy::too_many_arguments)]
fn check(
    kernels: &Bf16Kernels,
    (ci, co, h, w): (usize, usize, usize, usize),
    geom: ConvGeometry,
    residual: bool,
    act: Activation,
    rng: &mut Rng,
    par: &dyn ParallelFor,
) -> bool {
    let din = Dims::new(ci, h, w);
    let Some((oh, ow)) = geom.output_hw(h, w) else { return false };
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
    let [x, wt, bias, res] = rng.conv_operands(din, &geom, dout);
    let r = residual.then_some(&res[..]);
    let got = run(kernels, SPLIT, (&x, din), (&wt, shape), &bias, &geom, r, act, dout, par);

    // The same tier's rounded convolution over the three groups of channels.
    let nchw = Layout::Nchw;
    let (xw, dw) = SPLIT.reduction_input(Image::new(&x, din, nchw));
    let (ww, sw) = (SPLIT.reduction_weights(&wt, shape), SPLIT.reduction_shape(shape));
    assert_eq!((dw.c, sw.ci), (sw.ci, 2 * shape.ci_blocks() * 16 + ci));
    let wide = run(kernels, Bf16Terms::Rounded, (&xw, dw), (&ww, sw), &bias, &geom, r, act, dout, par);

    let mut want = vec![0.0; dout.volume()];
    let y = &mut ImageMut::new(&mut want, dout, nchw);
    let rimg = r.map(|r| Image::new(r, dout, nchw));
    reference::conv2d_terms(Image::new(&x, din, nchw), &wt, Some(&bias), &geom, rimg, act, y, SPLIT);
    let want_f32 = reference_conv(&x, din, &wt, Some(&bias), &geom, r, act, dout);
    let mag = magnitude(&x, din, &wt, &bias, &geom, r, dout);
    let mag3 = magnitude(&xw, dw, &ww, &bias, &geom, r, dout);
    let (k, k3) = (ci * geom.kh * geom.kw + 2, sw.ci * geom.kh * geom.kw + 2);
    let u = f32::EPSILON / 2.0;

    let case = format!("{} ci {ci} co {co} {h}x{w} {geom:?}", kernels.conv_name());
    for (n, (g, same)) in got.iter().zip(&wide).enumerate() {
        assert!(g.to_bits() == same.to_bits(), "{case}: value {n}: split {g}, over three groups {same}");
    }
    each_output(&got, dout, &case, |(c, yy, xx), i, g| {
        let at = format!("{case} at (c={c}, y={yy}, x={xx})");
        // Any order of a K-term float32 sum: within 2 K u of the sum of |terms|.
        let tol = sum_tolerance(k3, mag3[i]);
        assert!((g - want[i]).abs() <= tol, "{at}: got {g}, split reference {}, tolerance {tol:e}", want[i]);
        // The split's products, and both engines' float32 sums.
        let tol_f32 = SPLIT_PRODUCT_BOUND * mag[i] + tol + 2.0 * k as f32 * u * mag[i];
        assert!((g - want_f32[i]).abs() <= tol_f32, "{at}: got {g}, float32 {}, tol {tol_f32:e}", want_f32[i]);
    });
    true
}

/// The shape families; returns how many cases ran.
fn sweep(kernels: &Bf16Kernels, par: &dyn ParallelFor) -> usize {
    let mut rng = Rng(0x243f6a8885a308d3);
    let mut cases = 0;
    for (n, geom) in geometries().into_iter().enumerate() {
        for &(ci, co) in &[(1, 1), (3, 32), (16, 16), (17, 15), (33, 64), (7, 100)] {
            for &(h, w) in &[(1, 1), (5, 7), (8, 8), (13, 17)] {
                let act = if (co + w + n) % 3 == 0 { Activation::None } else { Activation::Relu };
                cases += check(kernels, (ci, co, h, w), geom, (ci + h) % 2 == 0, act, &mut rng, par) as usize;
            }
        }
    }
    // Pointwise layers of few and many output groups (never read in place: a
    // split is staged), and long reductions of many chunks.
    let pw = window(1, 1, 1, Padding::uniform(0));
    for (n, &(ci, co, h, w, geom)) in [
        (48, 80, 9, 13, pw),
        (300, 96, 7, 11, pw),
        (520, 260, 3, 5, pw),
        (1000, 40, 5, 7, pw),
        (448, 64, 6, 9, window(3, 3, 1, Padding::uniform(1))),
        (160, 48, 7, 8, window(1, 7, 1, Padding::symmetric(0, 3))),
    ]
    .iter()
    .enumerate()
    {
        let act = if n % 2 == 0 { Activation::Relu } else { Activation::None };
        cases += check(kernels, (ci, co, h, w), geom, n % 3 == 1, act, &mut rng, par) as usize;
    }
    cases
}

/// The sweep on `kernels`, asserted to have run on their tier.
fn every_family(kernels: &Bf16Kernels, par: &dyn ParallelFor) {
    let tier = kernels.tier();
    let before = bf16_tier_calls(tier);
    let cases = sweep(kernels, par);
    // Two convolutions a case: the split, and the same over three groups.
    assert!(cases > 150 && bf16_tier_calls(tier) >= before + 2 * cases as u64, "{tier:?} did not run");
    eprintln!("{}: {cases} split cases ok", kernels.conv_name());
}

#[test]
fn every_available_bf16_tier_computes_the_split() {
    for kernels in bf16_kernels() {
        every_family(&kernels, &Sequential);
    }
}

#[test]
fn amx_tier_on_emulated_tiles_computes_the_split() {
    let kernels = Bf16Kernels::amx_emulated();
    assert!(kernels.conv_name().ends_with("_emulated"));
    every_family(&kernels, &Sequential);
}

/// On three threads (the staging pass and the tiles spread over them): the same
/// checks, so the same bits as on one.
#[test]
fn the_split_on_three_threads_matches() {
    every_family(&Bf16Kernels::new(Bf16Tier::best()).unwrap(), &ThreeThreads);
}

/// The portable and AVX512-BF16 tiers sum in the same documented order: a split
/// gives the same bits on both.
#[test]
fn portable_and_avx512bf16_splits_are_the_same_bits() {
    let Some(avx) = Bf16Kernels::new(Bf16Tier::Avx512Bf16) else {
        eprintln!("SKIPPED: this CPU cannot run the avx512bf16 tier");
        return;
    };
    let portable = Bf16Kernels::new(Bf16Tier::Portable).unwrap();
    let mut rng = Rng(0x13198a2e03707344);
    let geom = ConvGeometry { kh: 3, kw: 3, stride_h: 1, stride_w: 1, pad: Padding::uniform(1) };
    let (din, dout, shape) = (Dims::new(35, 9, 11), Dims::new(40, 9, 11), ConvShape { co: 40, ci: 35, kh: 3, kw: 3 });
    let (x, wt, bias) = (rng.vec(din.volume()), rng.vec(40 * 35 * 9), rng.vec(40));
    let go = |k: &Bf16Kernels| {
        run(k, SPLIT, (&x, din), (&wt, shape), &bias, &geom, None, Activation::Relu, dout, &Sequential)
    };
    let (a, b) = (go(&portable), go(&avx));
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
}
