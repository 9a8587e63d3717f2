//! Weight packing for the blocked convolution kernels.
//!
//! A convolution's OIHW weights are stored as
//! `[out_blocks][in_blocks][kh][kw][16 in][16 out]`: for one tap and one input
//! channel, the 16 output channels of a block are one contiguous vector, the row a
//! microkernel multiplies a broadcast input value by. Channels are padded to a
//! multiple of 16 with zeros, so padded lanes contribute nothing. The packing is the
//! same on every ISA tier (the activation layout fixes the block at 16).

use crate::BLOCK;

/// Shape of a convolution's weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    /// Output channels.
    pub co: usize,
    /// Input channels.
    pub ci: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
}

impl ConvShape {
    /// Output channel blocks.
    pub const fn co_blocks(&self) -> usize {
        self.co.div_ceil(BLOCK)
    }

    /// Input channel blocks.
    pub const fn ci_blocks(&self) -> usize {
        self.ci.div_ceil(BLOCK)
    }

    /// Length of the packed weights.
    pub const fn packed_len(&self) -> usize {
        self.co_blocks() * self.ci_blocks() * self.kh * self.kw * BLOCK * BLOCK
    }

    /// Length of the packed bias (output channels padded to a block).
    pub const fn packed_bias_len(&self) -> usize {
        self.co_blocks() * BLOCK
    }
}

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
