//! Weight packing for the blocked convolution kernels.
//!
//! A convolution's OIHW weights are stored as
//! `[out_blocks][in_blocks][kh][kw][16 in][16 out]`: for one tap and one input
//! channel, the 16 output channels of a block are one contiguous vector, the row a
//! microkernel multiplies a broadcast input value by. Channels are padded to a
//! multiple of 16 with zeros, so padded lanes contribute nothing. The packing is the
//! same on every ISA tier (the activation layout fixes the block at 16).

use crate::BLOCK;
use crate::winograd::{MAX_POSITIONS, Scheme};

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

/// Length of the Winograd weights of `shape` packed by [`pack_winograd_weights`]
/// (0 for a window no scheme computes).
pub fn winograd_packed_len(shape: ConvShape) -> usize {
    let depth = Scheme::for_window(shape.kh, shape.kw).map_or(0, Scheme::total_depth);
    depth * shape.co_blocks() * shape.ci_blocks() * BLOCK * BLOCK
}

/// Winograd's `G`: F(2, 3)'s filter transform.
const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// Packs OIHW `weights` of `shape` for its Winograd scheme (see
/// [`crate::winograd`]), appending to `out`. Per transform position `p` (row-major
/// for F(2x2, 3x3)) the blocked layout of a 1x1 convolution,
/// `[out blocks][depth(p) * in blocks][16 in][16 out]`, zero padded, one position
/// after the other:
/// - F(2x2, 3x3): `U = G g G^T` of each filter;
/// - F(2, 3) on a 1x3 / 3x1 filter `g`: `U = G g`; on a 1x7 / 7x1: `G` of taps 0-2
///   for the first `ci` inputs, of taps 3-5 for the next `ci`, and at positions 0
///   and 3 tap 6 and its negation for the last `ci` (the input channels must fill
///   whole blocks).
///
/// Computed in f64, rounded once.
pub fn pack_winograd_weights(weights: &[f32], shape: ConvShape, out: &mut Vec<f32>) {
    let ConvShape { co, ci, kh, kw } = shape;
    let Some(scheme) = Scheme::for_window(kh, kw) else { panic!("pack_winograd_weights: no scheme for {shape:?}") };
    let taps = kh * kw;
    assert_eq!(weights.len(), co * ci * taps, "pack_winograd_weights: weights are not OIHW of {shape:?}");
    assert!(
        scheme == Scheme::F2x2 || ci.is_multiple_of(BLOCK),
        "pack_winograd_weights: {shape:?} has a partial input block"
    );
    let start = out.len();
    out.resize(start + winograd_packed_len(shape), 0.0);
    let packed = &mut out[start..];
    let (cib, cob) = (shape.ci_blocks(), shape.co_blocks());
    let pos_at: [usize; MAX_POSITIONS] =
        std::array::from_fn(|p| (0..p).map(|q| cob * scheme.depth(q) * cib * BLOCK * BLOCK).sum());
    // Stores U for output o, input k (of position p's depth(p) * ci) at position p.
    let mut put = |p: usize, k: usize, o: usize, u: f64| {
        let kb = scheme.depth(p) * cib;
        packed[pos_at[p] + ((o / BLOCK * kb + k / BLOCK) * BLOCK + k % BLOCK) * BLOCK + o % BLOCK] = u as f32;
    };
    for o in 0..co {
        for i in 0..ci {
            let g: Vec<f64> = weights[(o * ci + i) * taps..][..taps].iter().map(|&w| w as f64).collect();
            match scheme {
                Scheme::F2x2 => {
                    // t = G g (4x3), u = t G^T (4x4).
                    let t: [[f64; 3]; 4] =
                        std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| G[r][k] * g[k * 3 + c]).sum()));
                    for (r, tr) in t.iter().enumerate() {
                        for (c, gc) in G.iter().enumerate() {
                            put(r * 4 + c, i, o, (0..3).map(|k| tr[k] * gc[k]).sum());
                        }
                    }
                }
                Scheme::F2 { .. } => {
                    for part in 0..taps / 3 {
                        for (p, row) in G.iter().enumerate() {
                            put(p, part * ci + i, o, (0..3).map(|k| row[k] * g[3 * part + k]).sum());
                        }
                    }
                    if taps % 3 == 1 {
                        let part = taps / 3;
                        put(0, part * ci + i, o, g[3 * part]);
                        put(3, part * ci + i, o, -g[3 * part]);
                    }
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
