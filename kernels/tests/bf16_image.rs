//! The BF16 convolution of an NCHW image (`bf16::image`) on every BF16 tier this
//! CPU runs (and the AMX tier's emulation, which runs the portable image tile),
//! over shape families: the 7x7/2 pad 3 and 3x3/2 valid stems, odd and even window
//! widths, strides 1 to 3, every padding side, 1 to 4 input channels, output
//! channels off the block, odd widths, a residual, one and three threads, input
//! and output in bands. Every output must equal, bit for bit, the documented
//! order ([`reference::conv2d_image`]); stay within float32 rounding of the BF16
//! reference (the float32 reference on rounded operands, in its own order) and
//! within BF16's rounding of the float32 reference. A tier this CPU lacks is
//! skipped with a message; `INCEPT_EXPECT_AVX512BF16` makes its absence fail.

mod support;

use incept_kernels::bands::split_image;
use incept_kernels::bf16::convert::to_bf16;
use incept_kernels::bf16::image::chunk_rows_image;
use incept_kernels::bf16::pack::{image_packed_len, pack_conv_weights_bf16_image};
use incept_kernels::bf16::{
    Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, bf16, bf16_tier_calls, conv2d_bf16_image,
    conv2d_bf16_image_scratch_len, reference,
};
use incept_kernels::pack::{ConvShape, pack_bias};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::{Activation, ConvGeometry, Dims, Image, ImageMut, Layout, Padding, RowSplit};
use support::{
    Case, Rng, ThreeThreads, band_splits, bf16_kernels, bf16_rounding_bound, each_output, magnitude, reference_conv,
    sum_tolerance, to_layout, view_bands, write_bands,
};

/// Runs `case` on `kernels` with the input and output in `splits` (one band each
/// when `None`) and checks every output (see the module docs). False when the
/// window does not fit the input.
fn check(
    kernels: &Bf16Kernels,
    case: Case,
    splits: Option<(RowSplit, RowSplit)>,
    rng: &mut Rng,
    par: &dyn ParallelFor,
) -> bool {
    let Case { ci, co, h, w, geom, residual, act } = case;
    let din = Dims::new(ci, h, w);
    let Some((oh, ow)) = geom.output_hw(h, w) else { return false };
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
    let [x, wt, bias, res] = rng.conv_operands(din, &geom, dout);
    let (nchw, blk) = (Layout::Nchw, Layout::Nchw16c);

    let ordered = {
        let mut y = vec![0.0; dout.volume()];
        let r = residual.then(|| Image::new(&res, dout, nchw));
        reference::conv2d_image(
            Image::new(&x, din, nchw),
            &wt,
            &bias,
            &geom,
            r,
            act,
            &mut ImageMut::new(&mut y, dout, nchw),
        );
        y
    };
    let mut want = vec![0.0; dout.volume()];
    let r = residual.then(|| Image::new(&res, dout, nchw));
    reference::conv2d(
        Image::new(&x, din, nchw),
        &wt,
        Some(&bias),
        &geom,
        r,
        act,
        &mut ImageMut::new(&mut want, dout, nchw),
    );
    let r = residual.then_some(&res[..]);
    let want_f32 = reference_conv(&x, din, &wt, Some(&bias), &geom, r, act, dout);
    let mag = magnitude(&x, din, &wt, &bias, &geom, r, dout);
    let k = ci * geom.kh * geom.kw.next_multiple_of(2) + 2;

    let mut packed = Vec::new();
    pack_conv_weights_bf16_image(&wt, shape, &mut packed);
    assert_eq!(packed.len(), image_packed_len(shape));
    let mut pbias = Vec::new();
    pack_bias(&bias, &mut pbias);
    let (in_split, out_split) = splits.unwrap_or((RowSplit::whole(h), RowSplit::whole(oh)));
    let in_parts = split_image(Image::new(&x, din, nchw), in_split);
    let res_parts = split_image(Image::new(&to_layout(&res, dout, blk), dout, blk), out_split);
    // NaN scratch: the driver must overwrite every value it reads.
    let mut scratch = vec![to_bf16(f32::NAN); conv2d_bf16_image_scratch_len(din, &geom)];
    let out = write_bands(dout, blk, out_split, |out| {
        conv2d_bf16_image(
            kernels,
            view_bands(&in_parts, din, nchw, in_split),
            &PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &packed, bias: &pbias },
            &geom,
            residual.then(|| view_bands(&res_parts, dout, blk, out_split)),
            act,
            out,
            &mut scratch,
            par,
        )
    });
    each_output(&out, dout, &case, |(c, yy, xx), i, got| {
        let at = format!("{} {case:?} {splits:?} at (c={c}, y={yy}, x={xx})", kernels.conv_name());
        let ordered = ordered[i];
        assert!(got.to_bits() == ordered.to_bits(), "{at}: got {got}, the documented order gives {ordered}");
        let tol = sum_tolerance(k, mag[i]);
        assert!((got - want[i]).abs() <= tol, "{at}: got {got}, BF16 reference {}, tolerance {tol:e}", want[i]);
        let tol_f32 = bf16_rounding_bound(mag[i]) + tol;
        assert!((got - want_f32[i]).abs() <= tol_f32, "{at}: got {got}, float32 reference {}", want_f32[i]);
    });
    true
}

fn geometries() -> Vec<ConvGeometry> {
    let g = |kh, kw, s, pad| ConvGeometry { kh, kw, stride_h: s, stride_w: s, pad };
    let p = Padding::uniform;
    vec![
        g(7, 7, 2, p(3)),
        g(3, 3, 2, p(0)),
        g(3, 3, 1, p(1)),
        g(1, 1, 1, p(0)),
        g(5, 5, 3, p(2)),
        g(2, 4, 1, Padding { top: 1, left: 0, bottom: 0, right: 2 }),
        g(3, 3, 2, Padding { top: 0, left: 1, bottom: 1, right: 0 }),
        g(1, 7, 2, Padding::symmetric(0, 3)),
    ]
}

/// The families on one input and output band; false cases (window larger than
/// the input) are not counted.
fn sweep(kernels: &Bf16Kernels, par: &dyn ParallelFor) -> usize {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut cases = 0;
    // Some sums take several chunks (4 channels of a 7x7 window: 28 rows of 8 products).
    let shape = ConvShape { co: 40, ci: 4, kh: 7, kw: 7 };
    assert!(shape.ci * shape.kh > chunk_rows_image(shape), "no case of several chunks");
    for geom in geometries() {
        for &(ci, co) in &[(1, 16), (2, 5), (3, 64), (3, 32), (4, 40), (3, 70)] {
            for &(h, w) in &[(1, 1), (3, 9), (7, 7), (11, 13), (16, 23)] {
                let residual = (ci + h) % 2 == 0;
                let act = if (co + w) % 3 == 0 { Activation::None } else { Activation::Relu };
                cases += check(kernels, Case { ci, co, h, w, geom, residual, act }, None, &mut rng, par) as usize;
            }
        }
    }
    cases
}

/// The emulated AMX tiles and every BF16 tier this CPU runs.
fn tiers() -> Vec<Bf16Kernels> {
    let tiers: Vec<Bf16Kernels> = [Bf16Kernels::amx_emulated()].into_iter().chain(bf16_kernels()).collect();
    if std::env::var("INCEPT_EXPECT_AVX512BF16").is_ok() {
        assert!(tiers.iter().any(|k| k.tier() == Bf16Tier::Avx512Bf16), "AVX512-BF16 expected");
    }
    tiers
}

#[test]
fn every_bf16_tier_convolves_images_in_the_documented_order() {
    for kernels in tiers() {
        let before = bf16_tier_calls(kernels.tier());
        let cases = sweep(&kernels, &Sequential);
        assert!(
            cases > 150 && bf16_tier_calls(kernels.tier()) >= before + cases as u64,
            "{:?} did not run",
            kernels.tier()
        );
        eprintln!("{}: {cases} cases ok", kernels.conv_name());
    }
}

/// Maps large enough for the rounding pass to be spread over the threads (the
/// stems' geometries, output rows not divisible by the tasks), on one and three
/// threads, and the input and output in bands: the same bits as the documented order.
#[test]
fn image_convolutions_on_threads_and_in_bands_match_the_documented_order() {
    let kernels = Bf16Kernels::new(Bf16Tier::best()).unwrap();
    let mut rng = Rng(0x6a09e667f3bcc909);
    let g = |k, s, p| ConvGeometry { kh: k, kw: k, stride_h: s, stride_w: s, pad: Padding::uniform(p) };
    let cases = [(3, 64, 71, 69, g(7, 2, 3)), (3, 32, 75, 77, g(3, 2, 0)), (1, 20, 40, 45, g(5, 1, 2))];
    for (n, &(ci, co, h, w, geom)) in cases.iter().enumerate() {
        let act = if n % 2 == 0 { Activation::Relu } else { Activation::None };
        let case = Case { ci, co, h, w, geom, residual: n == 1, act };
        assert!(check(&kernels, case, None, &mut rng, &ThreeThreads));
        assert!(check(&kernels, case, None, &mut rng, &Sequential));
        let (oh, _) = geom.output_hw(h, w).unwrap();
        for split in band_splits(h, oh) {
            assert!(check(&kernels, case, Some(split), &mut rng, &ThreeThreads));
        }
    }
}

/// An odd window's last pair reads the copy's extra zero column (times a zero
/// weight), written by the driver: NaN scratch past the copy would show.
#[test]
fn scratch_is_not_read_past_the_image_copy() {
    // A 1x3 image, a 1x3 window, valid: the copy has one zero column more, which the
    // last pair reads; NaN scratch past the copy would show.
    let (din, geom) = (Dims::new(1, 1, 3), ConvGeometry::new(1, 3, 1, Padding::uniform(0)));
    let shape = ConvShape { co: 1, ci: 1, kh: 1, kw: 3 };
    for kernels in tiers() {
        let mut packed: Vec<bf16> = Vec::new();
        pack_conv_weights_bf16_image(&[1.0, 2.0, 4.0], shape, &mut packed);
        let bias = [0.5; 16];
        let mut out = vec![f32::NAN; 16];
        let len = conv2d_bf16_image_scratch_len(din, &geom);
        assert_eq!(len, 4);
        let mut scratch = vec![to_bf16(f32::NAN); len + 8];
        let x = [1.0, 10.0, 100.0];
        let mut y = ImageMut::new(&mut out, Dims::new(1, 1, 1), Layout::Nchw16c);
        conv2d_bf16_image(
            &kernels,
            Image::new(&x, din, Layout::Nchw).into(),
            &PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &packed, bias: &bias },
            &geom,
            None,
            Activation::None,
            &mut (&mut y).into(),
            &mut scratch,
            &Sequential,
        );
        assert_eq!(out[0], 421.5, "{}", kernels.conv_name());
    }
}
