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

/// Length of Winograd F(2x2, 3x3) weights of a 3x3 `shape` packed by
/// [`pack_winograd_weights`].
pub const fn winograd_packed_len(shape: ConvShape) -> usize {
    crate::winograd::POSITIONS * shape.co_blocks() * shape.ci_blocks() * BLOCK * BLOCK
}

/// Packs OIHW 3x3 `weights` of `shape` for Winograd F(2x2, 3x3), appending to `out`:
/// `U = G g G^T` of each filter (computed in f64, rounded once), stored as
/// `[16 positions][out_blocks][in_blocks][16 in][16 out]`, i.e. for each position
/// `(ξ, ν)` (row-major) the blocked layout of a 1x1 convolution, zero padded.
pub fn pack_winograd_weights(weights: &[f32], shape: ConvShape, out: &mut Vec<f32>) {
    let ConvShape { co, ci, kh, kw } = shape;
    assert!((kh, kw) == (3, 3), "pack_winograd_weights: {shape:?} is not 3x3");
    assert_eq!(weights.len(), co * ci * 9, "pack_winograd_weights: weights are not OIHW of {shape:?}");
    const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
    let start = out.len();
    out.resize(start + winograd_packed_len(shape), 0.0);
    let packed = &mut out[start..];
    let pos_len = shape.co_blocks() * shape.ci_blocks() * BLOCK * BLOCK;
    for o in 0..co {
        for i in 0..ci {
            let g = &weights[(o * ci + i) * 9..][..9];
            // t = G g (4x3), u = t G^T (4x4).
            let t: [[f64; 3]; 4] =
                std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| G[r][k] * g[k * 3 + c] as f64).sum()));
            let base = ((o / BLOCK * shape.ci_blocks() + i / BLOCK) * BLOCK + i % BLOCK) * BLOCK + o % BLOCK;
            for r in 0..4 {
                for c in 0..4 {
                    let u: f64 = (0..3).map(|k| t[r][k] * G[c][k]).sum();
                    packed[(r * 4 + c) * pos_len + base] = u as f32;
                }
            }
        }
    }
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
