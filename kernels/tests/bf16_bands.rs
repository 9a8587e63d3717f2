//! The BF16 convolution of images in bands ([`conv2d_bf16`]) against the same
//! convolution of the whole images ([`conv2d_bf16_par`], itself checked against the
//! reference in `bf16_tiers.rs`): bit for bit, for inputs and outputs split into 1
//! to 3 bands, padded and unpadded windows, strides 1 and 2, pointwise layers, a
//! residual, on every BF16 tier this CPU runs and on one and three threads; with
//! rounded operands (`bf16`) and split ones (`bf16x3`, also on the AMX tier's
//! emulated tiles).

mod support;

use incept_kernels::bands::split_image;
use incept_kernels::bf16::convert::to_bf16;
use incept_kernels::bf16::pack::pack_conv_weights_bf16_terms;
use incept_kernels::bf16::{
    Bf16Kernels, Bf16Terms, PackedConvBf16, conv2d_bf16, conv2d_bf16_bands_scratch_len, conv2d_bf16_par,
    conv2d_bf16_scratch_len,
};
use incept_kernels::pack::{ConvShape, pack_bias};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::{Activation, ConvGeometry, Dims, Image, ImageMut, Layout};
use support::{Rng, ThreeThreads, bf16_kernels, every_band_split, geometries, to_layout, view_bands, write_bands};

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
    let [x, wt, bias, res] = rng.conv_operands(din, &geom, dout);
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
    for (in_split, out_split) in every_band_split(h, oh) {
        let in_parts = split_image(Image::new(&xin, din, blk), in_split);
        let res_parts = split_image(Image::new(&rin, dout, blk), out_split);
        let len = conv2d_bf16_bands_scratch_len(din, &geom, terms, out_split, par.threads());
        let mut scratch = vec![to_bf16(f32::NAN); len];
        let got = write_bands(dout, blk, out_split, |out| {
            conv2d_bf16(
                kernels,
                view_bands(&in_parts, din, blk, in_split),
                &weights,
                &geom,
                residual.then(|| view_bands(&res_parts, dout, blk, out_split)),
                act,
                out,
                &mut scratch,
                par,
            )
        });
        let case = format!(
            "{} {terms:?} ci {ci} co {co} {h}x{w} {geom:?} residual {residual}, bands {} -> {}",
            kernels.conv_name(),
            in_split.bands(),
            out_split.bands()
        );
        assert_eq!(got.len(), whole.len(), "{case}");
        for (i, (g, w)) in got.iter().zip(&whole).enumerate() {
            assert!(g.to_bits() == w.to_bits(), "{case}: value {i}: {g} in bands, {w} whole");
        }
        runs += 1;
    }
    runs
}

fn sweep(kernels: &Bf16Kernels, terms: Bf16Terms, par: &dyn ParallelFor) -> usize {
    let mut rng = Rng(0x51ed270b27cfa1d3);
    let mut runs = 0;
    for (n, geom) in geometries().into_iter().enumerate() {
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
    for kernels in bf16_kernels() {
        let rounded = Bf16Terms::Rounded;
        let runs = sweep(&kernels, rounded, &Sequential) + sweep(&kernels, rounded, &ThreeThreads);
        assert!(runs > 100, "{runs} banded runs");
        eprintln!("{}: {runs} banded runs, bit for bit", kernels.conv_name());
    }
}

#[test]
fn split_bf16_convolutions_in_bands_match_the_whole_images() {
    for kernels in bf16_kernels().into_iter().chain([Bf16Kernels::amx_emulated()]) {
        let split = Bf16Terms::Split3;
        let runs = sweep(&kernels, split, &Sequential) + sweep(&kernels, split, &ThreeThreads);
        assert!(runs > 100, "{runs} banded runs");
        eprintln!("{} (split): {runs} banded runs, bit for bit", kernels.conv_name());
    }
}
