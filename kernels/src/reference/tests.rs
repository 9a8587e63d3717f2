//! Hand-checked cases: the oracle itself needs an oracle, so these use values worked
//! out on paper, and check that both layouts give the same answers.

use super::*;
use crate::geometry::{Activation, ConvGeometry, Padding, PoolGeometry};
use crate::layout::{Dims, Image, ImageMut, Layout};

/// Runs `f` on `input` (given in NCHW) in both layouts and returns the NCHW result,
/// asserting the two layouts agree exactly.
fn both_layouts(input: &[f32], di: Dims, dout: Dims, f: impl Fn(Image, &mut ImageMut)) -> Vec<f32> {
    let mut results = Vec::new();
    for layout in [Layout::Nchw, Layout::Nchw16c] {
        let mut inp = vec![f32::NAN; layout.image_len(di)];
        copy(Image::new(input, di, Layout::Nchw), &mut ImageMut::new(&mut inp, di, layout));
        let mut out = vec![f32::NAN; layout.image_len(dout)];
        f(Image::new(&inp, di, layout), &mut ImageMut::new(&mut out, dout, layout));
        assert!(out.iter().all(|v| !v.is_nan()), "{layout:?}: a value (or padding lane) was not written");
        let mut plain = vec![0.0; dout.volume()];
        copy(Image::new(&out, dout, layout), &mut ImageMut::new(&mut plain, dout, Layout::Nchw));
        results.push(plain);
    }
    assert_eq!(results[0], results[1], "layouts disagree");
    results.pop().unwrap()
}

#[test]
fn conv_3x3_pad1_on_ones_counts_taps() {
    // All-ones 3x3 input and weights: each output counts the taps inside the image.
    let d = Dims::new(1, 3, 3);
    let out = both_layouts(&[1.0; 9], d, d, |i, o| {
        conv2d(i, &[1.0; 9], Some(&[0.5]), &ConvGeometry::new(3, 3, 1, Padding::uniform(1)), None, Activation::None, o)
    });
    assert_eq!(out, [4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5]);
}

#[test]
fn conv_asymmetric_padding_stride_2_channels_residual_relu() {
    // 2 input channels (ramp and its negation), 1x2 kernel, TF-style padding on the right only.
    let di = Dims::new(2, 1, 4);
    let input = [1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0];
    let geom =
        ConvGeometry { kh: 1, kw: 2, stride_h: 1, stride_w: 2, pad: Padding { top: 0, left: 0, bottom: 0, right: 1 } };
    assert_eq!(geom.output_hw(1, 4), Some((1, 2)));
    // out = 1*x0 + 10*x1 (channel 0) - 1*x0' (channel 1) + bias, then + residual, relu.
    let w = [1.0, 10.0, -1.0, 0.0];
    let residual = [0.0, -100.0];
    let dout = Dims::new(1, 1, 2);
    let out = both_layouts(&input, di, dout, |i, o| {
        let mut r = vec![0.0; i.layout.image_len(dout)];
        copy(Image::new(&residual, dout, Layout::Nchw), &mut ImageMut::new(&mut r, dout, i.layout));
        conv2d(i, &w, Some(&[1.0]), &geom, Some(Image::new(&r, dout, i.layout)), Activation::Relu, o)
    });
    // x=0: 1 + 20 + 1 + 1 = 23; x=2: 3 + 40 + 3 + 1 - 100 -> relu 0.
    assert_eq!(out, [23.0, 0.0]);
}

#[test]
fn pool_divisors_and_ceil_mode() {
    let d = Dims::new(1, 2, 2);
    let input = [1.0, 2.0, 3.0, 4.0];
    let g = PoolGeometry::new(3, 1, 1, false);
    let incl = both_layouts(&input, d, d, |i, o| avg_pool(i, &g, true, o));
    assert_eq!(incl, [10.0 / 9.0; 4]);
    let excl = both_layouts(&input, d, d, |i, o| avg_pool(i, &g, false, o));
    assert_eq!(excl, [2.5; 4]);
    let max = both_layouts(&[-1.0, -2.0, -3.0, -4.0], d, d, |i, o| max_pool(i, &g, o));
    assert_eq!(max, [-1.0; 4], "padding must never win a max");

    // PyTorch: 112 -> 56 with 3x3/2 ceil (GoogLeNet), 35 -> 17 floor, 32 -> 16 ceil (NiN).
    assert_eq!(PoolGeometry::new(3, 2, 0, true).output_hw(112, 112), Some((56, 56)));
    assert_eq!(PoolGeometry::new(3, 2, 0, false).output_hw(35, 35), Some((17, 17)));
    assert_eq!(PoolGeometry::new(3, 2, 0, true).output_hw(32, 32), Some((16, 16)));
    // The last window must start inside the image: 5 with k=2 s=2 p=1 ceil -> 3, not 4.
    assert_eq!(PoolGeometry::new(2, 2, 1, true).output_hw(5, 5), Some((3, 3)));
    assert_eq!(PoolGeometry::new(3, 1, 0, false).output_hw(2, 2), None);
}

/// Padding with a value per channel: each padded position of the window adds it
/// before the division by the padded window; so pooling `x + b` padded with `b` is
/// pooling `x` padded with zeros, plus `b`.
#[test]
fn pool_padded_with_a_value_per_channel() {
    let d = Dims::new(2, 2, 2);
    let input = [1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0];
    let g = PoolGeometry::new(3, 1, 1, false);
    let out = both_layouts(&input, d, d, |i, o| avg_pool_padded(i, &g, &[0.5, -2.0], o));
    // Every window holds the 4 pixels and 5 padded positions.
    assert_eq!(
        out,
        [12.5 / 9.0, 12.5 / 9.0, 12.5 / 9.0, 12.5 / 9.0, -20.0 / 9.0, -20.0 / 9.0, -20.0 / 9.0, -20.0 / 9.0]
    );

    let d = Dims::new(3, 5, 6);
    let x: Vec<f32> = (0..d.volume()).map(|i| (i * 37 % 23) as f32 / 8.0 - 1.0).collect();
    let b = [0.25, -1.5, 3.0];
    let shifted: Vec<f32> = x.iter().enumerate().map(|(i, v)| v + b[i / (d.h * d.w)]).collect();
    for g in [PoolGeometry::new(3, 1, 1, false), PoolGeometry::new(3, 2, 1, true), PoolGeometry::new(2, 2, 1, true)] {
        let (oh, ow) = g.output_hw(d.h, d.w).unwrap();
        let dout = Dims::new(d.c, oh, ow);
        let got = both_layouts(&shifted, d, dout, |i, o| avg_pool_padded(i, &g, &b, o));
        let zero_padded = both_layouts(&x, d, dout, |i, o| avg_pool(i, &g, true, o));
        for (i, (u, v)) in got.iter().zip(&zero_padded).enumerate() {
            let want = v + b[i / (oh * ow)];
            assert!((u - want).abs() <= 1e-5, "{g:?} at {i}: {u}, want {want}");
        }
    }
}

#[test]
fn ceil_mode_window_hanging_over_the_edge() {
    // 1x4 row, window 3 stride 2 ceil: windows [0,3) and [2,4): the second is clipped.
    let d = Dims::new(1, 1, 4);
    let g = PoolGeometry {
        window: ConvGeometry { kh: 1, kw: 3, stride_h: 1, stride_w: 2, pad: Padding::default() },
        ceil_mode: true,
    };
    let dout = Dims::new(1, 1, 2);
    let avg = both_layouts(&[1.0, 2.0, 3.0, 4.0], d, dout, |i, o| avg_pool(i, &g, true, o));
    assert_eq!(avg, [2.0, 3.5]);
    let max = both_layouts(&[1.0, 2.0, 3.0, 4.0], d, dout, |i, o| max_pool(i, &g, o));
    assert_eq!(max, [3.0, 4.0]);
}

#[test]
fn global_pool_linear_softmax() {
    let d = Dims::new(2, 1, 2);
    let gap = both_layouts(&[1.0, 3.0, 10.0, 20.0], d, Dims::new(2, 1, 1), global_avg_pool);
    assert_eq!(gap, [2.0, 15.0]);
    // Linear flattens C, H, W: weights pick element (c=1, x=0) and (c=0, x=1).
    let w = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let lin = both_layouts(&[1.0, 3.0, 10.0, 20.0], d, Dims::new(2, 1, 1), |i, o| {
        linear(i, &w, Some(&[0.5, -0.5]), Activation::None, o)
    });
    assert_eq!(lin, [10.5, 2.5]);
    let sm = both_layouts(&[0.0, 2.0_f32.ln()], Dims::new(2, 1, 1), Dims::new(2, 1, 1), softmax);
    assert!((sm[0] - 1.0 / 3.0).abs() < 1e-6 && (sm[1] - 2.0 / 3.0).abs() < 1e-6);
}

#[test]
fn batch_norm_residual_lrn() {
    let d = Dims::new(2, 1, 1);
    let bn = both_layouts(&[3.0, 5.0], d, d, |i, o| {
        batch_norm(i, &[2.0, 1.0], &[1.0, 0.0], &[1.0, 1.0], &[3.0, 15.0], 1.0, o)
    });
    assert_eq!(bn, [3.0, 1.0]);
    let res = both_layouts(&[1.0, -1.0], d, d, |i, o| residual_add(i, i, 0.5, Activation::Relu, o));
    assert_eq!(res, [1.5, 0.0]);
    // size 3, alpha 3, beta 1, k 1 on [1, 2, 3]: c0 sees 1+4, c1 1+4+9, c2 4+9.
    let d = Dims::new(3, 1, 1);
    let l = both_layouts(&[1.0, 2.0, 3.0], d, d, |i, o| lrn(i, 3, 3.0, 1.0, 1.0, o));
    assert_eq!(l, [1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0]);
}

#[test]
fn blocked_layout_indexing() {
    let d = Dims::new(20, 2, 3);
    let l = Layout::Nchw16c;
    assert_eq!(l.image_len(d), 32 * 6);
    assert_eq!(l.index(d, 17, 1, 2), 6 * 16 + 5 * 16 + 1);
    assert_eq!(l.channel_slice_offset(Dims::new(64, 2, 3), 32), Some(32 * 6));
    assert_eq!(l.channel_slice_offset(Dims::new(64, 2, 3), 8), None);
}
