//! Weight packing for the blocked convolution kernels.
//!
//! A convolution's OIHW weights are stored as
//! `[out_blocks][in_blocks][kh][kw][16 in][16 out]`: for one tap and one input
//! channel, the 16 output channels of a block are one contiguous vector, the row a
//! microkernel multiplies a broadcast input value by. Channels are padded to a
//! multiple of 16 with zeros, so padded lanes contribute nothing. The packing is the
//! same on every ISA tier (the activation layout fixes the block at 16).

pub use crate::geometry::ConvShape;
use crate::layout::BLOCK;
pub use crate::winograd::weights::{
    pack_winograd_weights, unpack_winograd_2x2_weights, unpack_winograd_f2_weights, winograd_packed_len,
};

/// Packs OIHW `weights` of `shape` into the blocked layout, appending to `out`.
pub fn pack_conv_weights(weights: &[f32], shape: ConvShape, out: &mut Vec<f32>) {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(weights.len(), co * ci * kh * kw, "pack_conv_weights: weights are not OIHW of {shape:?}");
    let start = out.len();
    out.resize(start + shape.packed_len(), 0.0);
    let packed = &mut out[start..];
    for o in 0..co {
        for i in 0..ci {
            for ky in 0..kh {
                for kx in 0..kw {
                    let tap = ((o / BLOCK * shape.ci_blocks() + i / BLOCK) * kh + ky) * kw + kx;
                    packed[(tap * BLOCK + i % BLOCK) * BLOCK + o % BLOCK] = weights[((o * ci + i) * kh + ky) * kw + kx];
                }
            }
        }
    }
}

/// Pads a bias to whole blocks, appending to `out`.
pub fn pack_bias(bias: &[f32], out: &mut Vec<f32>) {
    let start = out.len();
    out.extend_from_slice(bias);
    out.resize(start + bias.len().div_ceil(BLOCK) * BLOCK, 0.0);
}

/// Recovers OIHW weights from the blocked layout of [`pack_conv_weights`] (the
/// inverse of that packing, padding dropped).
pub fn unpack_conv_weights(packed: &[f32], shape: ConvShape) -> Vec<f32> {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(packed.len(), shape.packed_len(), "unpack_conv_weights: not the packing of {shape:?}");
    let mut out = vec![0.0; co * ci * kh * kw];
    for o in 0..co {
        for i in 0..ci {
            for ky in 0..kh {
                for kx in 0..kw {
                    let tap = ((o / BLOCK * shape.ci_blocks() + i / BLOCK) * kh + ky) * kw + kx;
                    out[((o * ci + i) * kh + ky) * kw + kx] = packed[(tap * BLOCK + i % BLOCK) * BLOCK + o % BLOCK];
                }
            }
        }
    }
    out
}

/// The shape a convolution of `shape` on the network's image runs as in
/// [`conv2d_image`](crate::conv::conv2d_image): the whole window folded into the
/// input channels, `(co, kh * kw * ci, 1, 1)`. Input channel `(ky * kw + kx) * ci
/// + c` of the folded window is channel `c` at window position `(ky, kx)`.
pub const fn image_folded_shape(shape: ConvShape) -> ConvShape {
    ConvShape { co: shape.co, ci: shape.kh * shape.kw * shape.ci, kh: 1, kw: 1 }
}

/// Length of the packing of [`pack_conv_weights_image`] for `shape`.
pub const fn image_packed_len(shape: ConvShape) -> usize {
    image_folded_shape(shape).packed_len()
}

/// Packs OIHW `weights` of `shape` for the convolution of an NCHW image
/// ([`conv2d_image`](crate::conv::conv2d_image)), appending
/// [`image_packed_len`] values to `out`: the weights of the folded window
/// ([`image_folded_shape`]), `W'[o][(ky * kw + kx) * ci + c] = W[o][c][ky][kx]`,
/// in the blocked layout of [`pack_conv_weights`].
pub fn pack_conv_weights_image(weights: &[f32], shape: ConvShape, out: &mut Vec<f32>) {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(weights.len(), co * ci * kh * kw, "pack_conv_weights_image: weights are not OIHW of {shape:?}");
    let mut folded = vec![0.0; weights.len()];
    for (n, &w) in weights.iter().enumerate() {
        folded[image_folded_index(shape, n)] = w;
    }
    pack_conv_weights(&folded, image_folded_shape(shape), out);
}

/// Recovers OIHW weights from the packing of [`pack_conv_weights_image`] (its
/// inverse, padding dropped).
pub fn unpack_conv_weights_image(packed: &[f32], shape: ConvShape) -> Vec<f32> {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(packed.len(), image_packed_len(shape), "unpack_conv_weights_image: not the packing of {shape:?}");
    let folded = unpack_conv_weights(packed, image_folded_shape(shape));
    (0..co * ci * kh * kw).map(|n| folded[image_folded_index(shape, n)]).collect()
}

/// Where OIHW weight `n` of `shape` goes in the folded window's OIHW weights.
fn image_folded_index(shape: ConvShape, n: usize) -> usize {
    let ConvShape { ci, kh, kw, .. } = shape;
    let (o, c, ky, kx) = (n / (ci * kh * kw), n / (kh * kw) % ci, n / kw % kh, n % kw);
    o * kh * kw * ci + (ky * kw + kx) * ci + c
}

/// The shape of the image convolution's weights as files written before the
/// whole window was folded store them (`oihw_image_kx_folded16`): the window's
/// columns folded into the input channels, `(co, kw * ci, kh, 1)`, input channel
/// `kx * ci + c` being channel `c` at window column `kx`.
pub const fn image_kx_folded_shape(shape: ConvShape) -> ConvShape {
    ConvShape { co: shape.co, ci: shape.kw * shape.ci, kh: shape.kh, kw: 1 }
}

/// Packs OIHW `weights` of `shape` as files written before the whole window was
/// folded store them: the blocked packing of [`image_kx_folded_shape`]'s weights,
/// `W'[o][kx * ci + c][ky][0] = W[o][c][ky][kx]`.
pub fn pack_conv_weights_image_kx(weights: &[f32], shape: ConvShape, out: &mut Vec<f32>) {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(weights.len(), co * ci * kh * kw, "pack_conv_weights_image_kx: weights are not OIHW of {shape:?}");
    let folded = image_kx_folded_shape(shape);
    let mut oihw = vec![0.0; weights.len()];
    for (n, &w) in weights.iter().enumerate() {
        let (o, c, ky, kx) = (n / (ci * kh * kw), n / (kh * kw) % ci, n / kw % kh, n % kw);
        oihw[(o * folded.ci + kx * ci + c) * kh + ky] = w;
    }
    pack_conv_weights(&oihw, folded, out);
}

/// Recovers OIHW weights from the packing of [`pack_conv_weights_image_kx`] (its
/// inverse, padding dropped).
pub fn unpack_conv_weights_image_kx(packed: &[f32], shape: ConvShape) -> Vec<f32> {
    let ConvShape { co, ci, kh, kw } = shape;
    let folded_shape = image_kx_folded_shape(shape);
    assert_eq!(packed.len(), folded_shape.packed_len(), "unpack_conv_weights_image_kx: not the packing of {shape:?}");
    let folded = unpack_conv_weights(packed, folded_shape);
    (0..co * ci * kh * kw)
        .map(|n| {
            let (o, c, ky, kx) = (n / (ci * kh * kw), n / (kh * kw) % ci, n / kw % kh, n % kw);
            folded[(o * kw * ci + kx * ci + c) * kh + ky]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image packing is the blocked packing of the folded window, and unpacks
    /// to the weights it packed; so is the older one (the window's columns folded).
    #[test]
    fn image_packing_folds_the_window_and_unpacks() {
        for shape in [ConvShape { co: 70, ci: 3, kh: 7, kw: 7 }, ConvShape { co: 32, ci: 2, kh: 3, kw: 5 }] {
            let ConvShape { co, ci, kh, kw } = shape;
            let w: Vec<f32> = (0..co * ci * kh * kw).map(|i| i as f32).collect();
            let (o, c, ky, kx) = (17, ci - 1, kh - 1, 2);
            let want = w[((o * ci + c) * kh + ky) * kw + kx];

            let mut packed = Vec::new();
            pack_conv_weights_image(&w, shape, &mut packed);
            assert_eq!(packed.len(), image_packed_len(shape));
            let folded = image_folded_shape(shape);
            let lane = (ky * kw + kx) * ci + c;
            let tap = o / BLOCK * folded.ci_blocks() + lane / BLOCK;
            assert_eq!(packed[(tap * BLOCK + lane % BLOCK) * BLOCK + o % BLOCK], want);
            assert_eq!(unpack_conv_weights_image(&packed, shape), w);

            let mut packed = Vec::new();
            pack_conv_weights_image_kx(&w, shape, &mut packed);
            let folded = image_kx_folded_shape(shape);
            assert_eq!(packed.len(), folded.packed_len());
            let lane = kx * ci + c;
            let tap = (o / BLOCK * folded.ci_blocks() + lane / BLOCK) * kh + ky;
            assert_eq!(packed[(tap * BLOCK + lane % BLOCK) * BLOCK + o % BLOCK], want);
            assert_eq!(unpack_conv_weights_image_kx(&packed, shape), w);
        }
    }
}
