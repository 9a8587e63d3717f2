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
