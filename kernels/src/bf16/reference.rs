//! The BF16 oracle: the float32 reference convolution on BF16-rounded operands.
//!
//! A product of two BF16 values is exact in float32, so rounding the input and the
//! weights to BF16 (round to nearest even) and running [`crate::reference::conv2d`]
//! on them gives the BF16 convolution with float32 sums, in the reference's order
//! (bias, then input channel by channel, tap by tap). The BF16 tiers sum the same
//! exact products in their own order (see [`crate::bf16::conv`]), so they differ
//! from this oracle by float32 rounding only, never by the BF16 rounding.

use super::convert::round_to_bf16;
use super::terms::Bf16Terms;
use crate::geometry::ConvShape;
use crate::{Activation, ConvGeometry, Image, ImageMut, Layout};

/// `out = act(conv(bf16(input), bf16(weights)) + bias + residual)`, sums in float32.
/// Operands as in [`crate::reference::conv2d`]: any layouts, OIHW `weights`.
pub fn conv2d(
    input: Image,
    weights: &[f32],
    bias: Option<&[f32]>,
    geom: &ConvGeometry,
    residual: Option<Image>,
    act: Activation,
    out: &mut ImageMut,
) {
    let x: Vec<f32> = input.data.iter().map(|&v| round_to_bf16(v)).collect();
    let w: Vec<f32> = weights.iter().map(|&v| round_to_bf16(v)).collect();
    crate::reference::conv2d(Image { data: &x, ..input }, &w, bias, geom, residual, act, out);
}

/// [`conv2d`] with the operands made as `terms`: for a split
/// ([`Bf16Terms::Split3`]), the BF16 convolution over its three groups of input
/// channels, `[x_hi | x_lo | x_hi]` times `[w_hi | w_hi | w_lo]`
/// ([`Bf16Terms::reduction_input`], [`Bf16Terms::reduction_weights`]), sums in
/// float32 in the reference's order.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_terms(
    input: Image,
    weights: &[f32],
    bias: Option<&[f32]>,
    geom: &ConvGeometry,
    residual: Option<Image>,
    act: Activation,
    out: &mut ImageMut,
    terms: Bf16Terms,
) {
    let (x, wide) = terms.reduction_input(input);
    let shape = ConvShape { co: out.dims.c, ci: input.dims.c, kh: geom.kh, kw: geom.kw };
    let w = terms.reduction_weights(weights, shape);
    conv2d(Image::new(&x, wide, Layout::Nchw), &w, bias, geom, residual, act, out);
}

/// `v`, or a zero of its sign when subnormal (`VDPBF16PS` reads and writes those as zero).
fn flush(v: f32) -> f32 {
    if v.is_subnormal() { 0f32.copysign(v) } else { v }
}

/// The BF16 convolution of an NCHW `input` image with OIHW `weights`, computed as
/// the image kind (`bf16::image`) is, one output at a time, in its documented order
/// ([`Bf16Microkernel::image_tile`](super::microkernel::Bf16Microkernel::image_tile)):
/// operands rounded to nearest even; for each channel, window row and pair of
/// columns `(2q, 2q + 1)` (an odd window's last pair with a zero weight, times the
/// pixel beside the window), the column `2q + 1` product then the `2q` one, each
/// addition rounded, subnormals flushed, in chunks of
/// [`chunk_rows_image`](super::image::chunk_rows_image) window rows added to the bias
/// and to each other; then the residual and the activation. The tiers of that
/// kind equal it bit for bit.
pub fn conv2d_image(
    input: Image,
    weights: &[f32],
    bias: &[f32],
    geom: &ConvGeometry,
    residual: Option<Image>,
    act: Activation,
    out: &mut ImageMut,
) {
    let (din, dout) = (input.dims, out.dims);
    let (ci, co, kh, kw) = (din.c, dout.c, geom.kh, geom.kw);
    assert!(input.layout == Layout::Nchw, "conv2d_image: not an NCHW image");
    assert_eq!(weights.len(), co * ci * kh * kw, "conv2d_image: weights are not [out, in, kh, kw]");
    assert_eq!(bias.len(), co, "conv2d_image: bias length");
    assert_eq!(geom.output_hw(din.h, din.w), Some((dout.h, dout.w)), "conv2d_image: output size");
    let shape = ConvShape { co, ci, kh, kw };
    let (pairs, chunk) = (kw.div_ceil(2), super::image::chunk_rows_image(shape));
    let rows = ci * kh;
    let ps_out = out.layout.pixel_stride();
    for o in 0..co {
        let base = out.layout.channel_base(dout, o);
        for oy in 0..dout.h {
            for ox in 0..dout.w {
                let x = |c: usize, ky: usize, kx: usize| {
                    let y = (oy * geom.stride_h + ky) as isize - geom.pad.top as isize;
                    let xx = (ox * geom.stride_w + kx) as isize - geom.pad.left as isize;
                    let inside = y >= 0 && xx >= 0 && (y as usize) < din.h && (xx as usize) < din.w;
                    if inside { round_to_bf16(input.data[(c * din.h + y as usize) * din.w + xx as usize]) } else { 0.0 }
                };
                let w = |c: usize, ky: usize, kx: usize| {
                    if kx < kw { round_to_bf16(weights[((o * ci + c) * kh + ky) * kw + kx]) } else { 0.0 }
                };
                let mut sum = 0f32;
                for r0 in (0..rows).step_by(chunk) {
                    let mut acc = 0f32;
                    for r in r0..(r0 + chunk).min(rows) {
                        for q in 0..pairs {
                            for kx in [2 * q + 1, 2 * q] {
                                acc = flush(flush(x(r / kh, r % kh, kx)).mul_add(flush(w(r / kh, r % kh, kx)), acc));
                            }
                        }
                    }
                    sum = if r0 == 0 { acc + bias[o] } else { sum + acc };
                }
                if let Some(r) = &residual {
                    sum += r.at(o, oy, ox);
                }
                out.data[base + (oy * dout.w + ox) * ps_out] = act.apply(sum);
            }
        }
    }
    out.zero_padding_lanes();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dims, Padding};

    /// A 2x2 input, one 2x2 window: the output is one dot product of four terms,
    /// worked out by hand from the rounded operands.
    #[test]
    fn operands_are_rounded_and_products_summed_in_float32() {
        let eps = 2f32.powi(-8);
        // 1 + 2^-8 rounds to 1 (tie, even); 1 + 3 * 2^-8 to 1 + 2^-6; 3 is exact;
        // 1 + 2^-9 to 1; 0.5 + 2^-9 to 0.5.
        let x = [1.0 + eps, 1.0 + 3.0 * eps, 3.0, 1.0 + eps / 2.0];
        let w = [2.0, 1.0 + 3.0 * eps, -1.0, 0.5 + eps / 2.0];
        let geom = ConvGeometry::new(2, 2, 1, Padding::uniform(0));
        let d = Dims::new(1, 2, 2);
        let mut y = [0.0f32];
        let input = Image::new(&x, d, Layout::Nchw);
        conv2d(
            input,
            &w,
            Some(&[0.25]),
            &geom,
            None,
            Activation::None,
            &mut ImageMut::new(&mut y, Dims::new(1, 1, 1), Layout::Nchw),
        );
        let r = |v: f32| round_to_bf16(v);
        assert_eq!((r(x[1]), r(w[3])), (1.0 + 4.0 * eps, 0.5));
        let want = 0.25 + 2.0 + (1.0 + 4.0 * eps) * (1.0 + 4.0 * eps) - 3.0 + 0.5;
        assert_eq!(y[0], want);
        // float32 operands would give something else: the rounding did happen.
        let exact: f32 = 0.25 + x.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>();
        assert_ne!(y[0], exact);
    }
}
