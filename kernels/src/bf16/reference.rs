//! The BF16 oracle: the float32 reference convolution on BF16-rounded operands.
//!
//! A product of two BF16 values is exact in float32, so rounding the input and the
//! weights to BF16 (round to nearest even) and running [`crate::reference::conv2d`]
//! on them gives the BF16 convolution with float32 sums, in the reference's order
//! (bias, then input channel by channel, tap by tap). The BF16 tiers sum the same
//! exact products in their own order (see [`crate::bf16::conv`]), so they differ
//! from this oracle by float32 rounding only, never by the BF16 rounding.

use super::convert::round_to_bf16;
use crate::{Activation, ConvGeometry, Image, ImageMut};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dims, Layout, Padding};

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
