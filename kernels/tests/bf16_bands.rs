//! The BF16 convolution of images in bands ([`conv2d_bf16`]) against the same
//! convolution of the whole images ([`conv2d_bf16_par`], itself checked against the
//! reference in `bf16_tiers.rs`): bit for bit, for inputs and outputs split into 1
//! to 3 bands, padded and unpadded windows, strides 1 and 2, pointwise layers, a
//! residual, on every BF16 tier this CPU runs and on one and three threads; with
//! rounded operands (`bf16`) and split ones (`bf16x3`, also on the AMX tier's
//! emulated tiles).

mod support;

use incept_kernels::bands::{Bands, BandsMut, RowSplit, join_bands, split_image};
use incept_kernels::bf16::convert::to_bf16;
use incept_kernels::bf16::pack::pack_conv_weights_bf16_terms;
use incept_kernels::bf16::{
    BF16_TIERS, Bf16Kernels, Bf16Terms, PackedConvBf16, conv2d_bf16, conv2d_bf16_bands_scratch_len, conv2d_bf16_par,
    conv2d_bf16_scratch_len,
};
use incept_kernels::pack::{ConvShape, pack_bias};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::{Activation, ConvGeometry, Dims, Image, ImageMut, Layout, Padding};
use support::{Rng, ThreeThreads, to_layout};

/// Runs one case with every split of the input and the output into 1 to 3 bands;
/// returns how many banded runs it compared.
fn check(
    kernels: &Bf16Kernels,
    terms: Bf16Terms,
    (ci, co, h, w): (usize, usize, usize, usize),
    geom: ConvGeometry,
    residual: bool,
    rng: &mut Rng,
    par: &dyn ParallelFor,
) -> usize {
    let blk = Layout::Nchw16c;
    let din = Dims::new(ci, h, w);
    let (oh, ow) = geom.output_hw(h, w).expect("the window fits");
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
    let (x, wt, bias, res) =
        (rng.vec(din.volume()), rng.vec(co * ci * geom.kh * geom.kw), rng.vec(co), rng.vec(dout.volume()));
    let (mut packed, mut pbias) = (Vec::new(), Vec::new());
    pack_conv_weights_bf16_terms(&wt, shape, terms, &mut packed);
    pack_bias(&bias, &mut pbias);
    let weights = PackedConvBf16 { shape, terms, weights: &packed, bias: &pbias };
    let (xin, rin) = (to_layout(&x, din, blk), to_layout(&res, dout, blk));
    let act = if residual { Activation::None } else { Activation::Relu };

    let mut whole = vec![0.0; blk.image_len(dout)];
    let mut scratch = vec![to_bf16(f32::NAN); conv2d_bf16_scratch_len(din, &geom, terms)];
    conv2d_bf16_par(
        kernels,
        Image::new(&xin, din, blk),
        &weights,
        &geom,
        residual.then(|| Image::new(&rin, dout, blk)),
        act,
        &mut ImageMut::new(&mut whole, dout, blk),
        &mut scratch,
        par,
    );
    let mut runs = 0;
    for in_bands in 1..=3.min(h) {
        for out_bands in 1..=3.min(oh) {
            let (in_split, out_split) = (RowSplit::even(h, in_bands), RowSplit::even(oh, out_bands));
            let in_parts = split_image(Image::new(&xin, din, blk), in_split);
            let in_refs: Vec<&[f32]> = in_parts.iter().map(|p| &p[..]).collect();
            let res_parts = split_image(Image::new(&rin, dout, blk), out_split);
            let res_refs: Vec<&[f32]> = res_parts.iter().map(|p| &p[..]).collect();
            let mut out_parts: Vec<Vec<f32>> =
                (0..out_split.bands()).map(|t| vec![f32::NAN; blk.image_len(out_split.band_dims(dout, t))]).collect();
            let mut out = BandsMut::new(out_parts.iter_mut().map(|p| &mut p[..]), dout, blk, out_split);
            let len = conv2d_bf16_bands_scratch_len(din, &geom, terms, out_split, par.threads());
            let mut scratch = vec![to_bf16(f32::NAN); len];
            conv2d_bf16(
                kernels,
                Bands::new(&in_refs, din, blk, in_split),
                &weights,
                &geom,
                residual.then(|| Bands::new(&res_refs, dout, blk, out_split)),
                act,
                &mut out,
                &mut scratch,
                par,
            );
            let got = join_bands(out.as_bands());
            let case = format!(
                "{} {terms:?} ci {ci} co {co} {h}x{w} {geom:?} residual {residual}, bands {in_bands} -> {out_bands}",
                kernels.conv_name()
            );
            assert_eq!(got.len(), whole.len(), "{case}");
            for (i, (g, w)) in got.iter().zip(&whole).enumerate() {
                assert!(g.to_bits() == w.to_bits(), "{case}: value {i}: {g} in bands, {w} whole");
            }
            runs += 1;
        }
    }
    runs
}

fn sweep(kernels: &Bf16Kernels, terms: Bf16Terms, par: &dyn ParallelFor) -> usize {
    let mut rng = Rng(0x51ed270b27cfa1d3);
    let g = |kh, kw, s, pad| ConvGeometry { kh, kw, stride_h: s, stride_w: s, pad };
    let p = Padding::uniform;
    let geometries = [
        g(1, 1, 1, p(0)),
        g(1, 1, 2, p(0)),
        g(3, 3, 1, p(1)),
        g(3, 3, 2, p(0)),
        g(3, 3, 2, p(1)),
        g(1, 7, 1, Padding::symmetric(0, 3)),
        g(7, 1, 1, Padding::symmetric(3, 0)),
        g(5, 5, 1, p(2)),
        g(2, 4, 1, Padding { top: 1, left: 0, bottom: 0, right: 2 }),
    ];
    let mut runs = 0;
    for (n, geom) in geometries.into_iter().enumerate() {
        for &(ci, co, h, w) in &[(16, 32, 9, 7), (33, 80, 12, 13), (3, 17, 7, 10), (40, 16, 20, 17)] {
            if geom.output_hw(h, w).is_some() {
                runs += check(kernels, terms, (ci, co, h, w), geom, (n + h) % 2 == 0, &mut rng, par);
            }
        }
    }
    runs
}

#[test]
fn bf16_convolutions_in_bands_match_the_whole_images() {
    for tier in BF16_TIERS {
        let Some(kernels) = Bf16Kernels::new(tier) else {
            eprintln!("{}: skipped, this CPU does not run it", tier.name());
            continue;
        };
        let rounded = Bf16Terms::Rounded;
        let runs = sweep(&kernels, rounded, &Sequential) + sweep(&kernels, rounded, &ThreeThreads);
        assert!(runs > 100, "{runs} banded runs");
        eprintln!("{}: {runs} banded runs, bit for bit", kernels.conv_name());
    }
}

#[test]
fn split_bf16_convolutions_in_bands_match_the_whole_images() {
    let emulated = Bf16Kernels::amx_emulated();
    for kernels in BF16_TIERS.iter().filter_map(|&t| Bf16Kernels::new(t)).chain([emulated]) {
        let split = Bf16Terms::Split3;
        let runs = sweep(&kernels, split, &Sequential) + sweep(&kernels, split, &ThreeThreads);
        assert!(runs > 100, "{runs} banded runs");
        eprintln!("{} (split): {runs} banded runs, bit for bit", kernels.conv_name());
    }
    for tier in BF16_TIERS.iter().filter(|t| !t.is_available()) {
        eprintln!("{}: skipped, this CPU does not run it", tier.name());
    }
}
