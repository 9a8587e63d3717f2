//! BF16 weight packing for `VDPBF16PS`.
//!
//! Those instructions multiply pairs: each 32-bit lane of a weight register holds
//! the BF16 weights of two consecutive input channels `(k, k + 1)` for one output
//! channel, and the broadcast activation the same two channels' values. So a
//! convolution's OIHW weights are stored as
//! `[out_blocks][in_blocks][kh][kw][8 pairs][16 out][2]`: the blocked layout of
//! [`crate::pack`] with each two input rows interleaved lane by lane. A tap of one
//! output block is still 256 values (512 bytes, half the float32 packing). Channels
//! are padded to whole blocks with zeros, rounding is to nearest even.

use super::convert::bf16;

use super::convert::to_bf16;
use super::terms::Bf16Terms;
use crate::BLOCK;
use crate::pack::ConvShape;

/// Position in the packing of `shape` of the weight of output `o`, input `i`, tap `(ky, kx)`.
fn index(shape: ConvShape, o: usize, i: usize, ky: usize, kx: usize) -> usize {
    let tap = ((o / BLOCK * shape.ci_blocks() + i / BLOCK) * shape.kh + ky) * shape.kw + kx;
    tap * BLOCK * BLOCK + (i % BLOCK / 2) * 2 * BLOCK + (o % BLOCK) * 2 + i % 2
}

/// Packs OIHW float32 `weights` of `shape` into the pair-interleaved BF16 layout,
/// appending [`ConvShape::packed_len`] values to `out`.
pub fn pack_conv_weights_bf16(weights: &[f32], shape: ConvShape, out: &mut Vec<bf16>) {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(weights.len(), co * ci * kh * kw, "pack_conv_weights_bf16: weights are not OIHW of {shape:?}");
    let start = out.len();
    out.resize(start + shape.packed_len(), bf16::ZERO);
    let packed = &mut out[start..];
    for o in 0..co {
        for i in 0..ci {
            for ky in 0..kh {
                for kx in 0..kw {
                    packed[index(shape, o, i, ky, kx)] = to_bf16(weights[((o * ci + i) * kh + ky) * kw + kx]);
                }
            }
        }
    }
}

/// Recovers OIHW weights (as float32, exactly the BF16 values) from the packing of
/// [`pack_conv_weights_bf16`], padding dropped.
pub fn unpack_conv_weights_bf16(packed: &[bf16], shape: ConvShape) -> Vec<f32> {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(packed.len(), shape.packed_len(), "unpack_conv_weights_bf16: not the packing of {shape:?}");
    let mut out = vec![0.0; co * ci * kh * kw];
    for o in 0..co {
        for i in 0..ci {
            for ky in 0..kh {
                for kx in 0..kw {
                    out[((o * ci + i) * kh + ky) * kw + kx] = packed[index(shape, o, i, ky, kx)].to_f32();
                }
            }
        }
    }
    out
}

/// Packs OIHW float32 `weights` of `shape` with operands made as `terms`,
/// appending the packing of `terms.reduction_shape(shape)` to `out`: for
/// [`Bf16Terms::Rounded`], [`pack_conv_weights_bf16`]; for a split, input channel
/// group `g` holding the weights' [`Bf16Terms::weight_term`]
/// (`[w_hi | w_hi | w_lo]`), each group's padding channels zero.
pub fn pack_conv_weights_bf16_terms(weights: &[f32], shape: ConvShape, terms: Bf16Terms, out: &mut Vec<bf16>) {
    if terms == Bf16Terms::Rounded {
        return pack_conv_weights_bf16(weights, shape, out);
    }
    // The terms are BF16 values already: packing them rounds nothing.
    pack_conv_weights_bf16(&terms.reduction_weights(weights, shape), terms.reduction_shape(shape), out);
}

/// The OIHW weights (float32) whose products a packing of
/// [`pack_conv_weights_bf16_terms`] computes: rounded, or for a split `w_hi + w_lo`
/// (exact in float32), padding dropped.
pub fn unpack_conv_weights_bf16_terms(packed: &[bf16], shape: ConvShape, terms: Bf16Terms) -> Vec<f32> {
    let wide = unpack_conv_weights_bf16(packed, terms.reduction_shape(shape));
    if terms == Bf16Terms::Rounded {
        return wide;
    }
    let (ci, plane, group) = (shape.ci, shape.kh * shape.kw, shape.ci_blocks() * BLOCK);
    let wide_ci = terms.reduction_shape(shape).ci;
    (0..shape.co * ci * plane)
        .map(|n| {
            let (o, i, t) = (n / (ci * plane), n / plane % ci, n % plane);
            let at = |g: usize| wide[(o * wide_ci + g * group + i) * plane + t];
            at(0) + at(2)
        })
        .collect()
}

/// Length of the packing of [`pack_conv_weights_bf16_image`] for `shape`:
/// `[out/16][in][kh][kw/2 rounded up][16 out][2]`.
pub const fn image_packed_len(shape: ConvShape) -> usize {
    shape.co_blocks() * shape.ci * shape.kh * shape.kw.div_ceil(2) * 2 * BLOCK
}

/// Position in the image packing of `shape` of the weight of output `o`, input `i`, tap `(ky, kx)`.
fn image_index(shape: ConvShape, o: usize, i: usize, ky: usize, kx: usize) -> usize {
    let pairs = shape.kw.div_ceil(2);
    let step = ((o / BLOCK * shape.ci + i) * shape.kh + ky) * pairs + kx / 2;
    step * 2 * BLOCK + (o % BLOCK) * 2 + kx % 2
}

/// Packs OIHW float32 `weights` of `shape` for the BF16 convolution of an NCHW
/// image (`crate::bf16::image`), appending [`image_packed_len`] values to `out`:
/// `[out/16][in][kh][kw/2 rounded up][16 out][2]`, each 32-bit lane holding the
/// weights of taps `(kx, kx + 1)` of one window row for one output channel (the
/// two horizontally neighbouring pixels a broadcast reads); an odd row's last tap
/// is paired with a zero. Output channels are padded to whole blocks with zeros,
/// rounding is to nearest even.
pub fn pack_conv_weights_bf16_image(weights: &[f32], shape: ConvShape, out: &mut Vec<bf16>) {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(weights.len(), co * ci * kh * kw, "pack_conv_weights_bf16_image: weights are not OIHW of {shape:?}");
    let start = out.len();
    out.resize(start + image_packed_len(shape), bf16::ZERO);
    let packed = &mut out[start..];
    for (n, &w) in weights.iter().enumerate() {
        let (o, i, ky, kx) = (n / (ci * kh * kw), n / (kh * kw) % ci, n / kw % kh, n % kw);
        packed[image_index(shape, o, i, ky, kx)] = to_bf16(w);
    }
}

/// Recovers OIHW weights (as float32, exactly the BF16 values) from the packing of
/// [`pack_conv_weights_bf16_image`], padding dropped.
pub fn unpack_conv_weights_bf16_image(packed: &[bf16], shape: ConvShape) -> Vec<f32> {
    let ConvShape { co, ci, kh, kw } = shape;
    assert_eq!(packed.len(), image_packed_len(shape), "unpack_conv_weights_bf16_image: not the packing of {shape:?}");
    (0..co * ci * kh * kw)
        .map(|n| packed[image_index(shape, n / (ci * kh * kw), n / (kh * kw) % ci, n / kw % kh, n % kw)].to_f32())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bf16::convert::round_to_bf16;

    fn weights(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919) % 1000) as f32 / 333.0 - 1.5).collect()
    }

    #[test]
    fn unpacking_recovers_the_rounded_weights_and_padding_is_zero() {
        for shape in [
            ConvShape { co: 16, ci: 16, kh: 1, kw: 1 },
            ConvShape { co: 35, ci: 17, kh: 3, kw: 3 },
            ConvShape { co: 3, ci: 5, kh: 1, kw: 7 },
            ConvShape { co: 64, ci: 48, kh: 7, kw: 1 },
        ] {
            let w = weights(shape.co * shape.ci * shape.kh * shape.kw);
            let mut packed = vec![bf16::ONE; 3]; // appends after what is there
            pack_conv_weights_bf16(&w, shape, &mut packed);
            assert_eq!(packed.len(), 3 + shape.packed_len());
            assert_eq!(packed[..3], [bf16::ONE; 3]);
            let back = unpack_conv_weights_bf16(&packed[3..], shape);
            assert!(w.iter().zip(&back).all(|(&a, &b)| round_to_bf16(a) == b), "{shape:?}");
            let real = w.iter().filter(|v| **v != 0.0).count();
            let nonzero = packed[3..].iter().filter(|v| v.to_f32() != 0.0).count();
            assert_eq!(real, nonzero, "{shape:?}: padding must be zero");
        }
    }

    /// The layout as the instructions read it: in 32-bit lane `o` of pair `j` of a
    /// tap, input channels `2j` (low half) and `2j + 1` (high half) of output `o`.
    #[test]
    fn each_lane_holds_a_pair_of_consecutive_input_channels() {
        let shape = ConvShape { co: 16, ci: 16, kh: 1, kw: 2 };
        // Weight (o, i, kx) = (-1)^kx 2^(o - 8) (1 + i / 16): distinct, exact in BF16.
        let value = |o: usize, i: usize, kx: usize| [1.0, -1.0][kx] * 2f32.powi(o as i32 - 8) * (1.0 + i as f32 / 16.0);
        let w: Vec<f32> = (0..16 * 16 * 2).map(|n| value(n / 32, n / 2 % 16, n % 2)).collect();
        let mut packed = Vec::new();
        pack_conv_weights_bf16(&w, shape, &mut packed);
        for kx in 0..2 {
            for j in 0..8 {
                for o in 0..16 {
                    let lane = &packed[kx * 256 + j * 32 + o * 2..][..2];
                    assert_eq!((lane[0].to_f32(), lane[1].to_f32()), (value(o, 2 * j, kx), value(o, 2 * j + 1, kx)));
                }
            }
        }
    }

    /// A split packs `[w_hi | w_hi | w_lo]` in three groups of whole input blocks,
    /// padding zero in each; unpacking gives `w_hi + w_lo`, within 2^-16 of `w`.
    #[test]
    fn a_split_packs_three_groups_of_terms() {
        use crate::bf16::terms::Term;
        for shape in [ConvShape { co: 16, ci: 16, kh: 1, kw: 1 }, ConvShape { co: 35, ci: 17, kh: 3, kw: 3 }] {
            let w = weights(shape.co * shape.ci * shape.kh * shape.kw);
            let mut packed = vec![bf16::ONE];
            pack_conv_weights_bf16_terms(&w, shape, Bf16Terms::Split3, &mut packed);
            let wide = Bf16Terms::Split3.reduction_shape(shape);
            assert_eq!(packed.len(), 1 + wide.packed_len());
            let all = unpack_conv_weights_bf16(&packed[1..], wide);
            let (plane, group) = (shape.kh * shape.kw, shape.ci_blocks() * BLOCK);
            for (n, &v) in w.iter().enumerate() {
                let (o, i, t) = (n / (shape.ci * plane), n / plane % shape.ci, n % plane);
                let at = |g: usize| all[(o * wide.ci + g * group + i) * plane + t];
                let (hi, lo) = (Term::Hi.of(v).to_f32(), Term::Lo.of(v).to_f32());
                assert_eq!((at(0), at(1), at(2)), (hi, hi, lo), "{shape:?} {n}");
            }
            let back = unpack_conv_weights_bf16_terms(&packed[1..], shape, Bf16Terms::Split3);
            assert!(w.iter().zip(&back).all(|(&a, &b)| (a - b).abs() <= a.abs() * 2f32.powi(-16)), "{shape:?}");
            let real = 2 * w.iter().filter(|v| **v != 0.0).count()
                + w.iter().filter(|v| Term::Lo.of(**v) != bf16::ZERO).count();
            let nonzero = packed[1..].iter().filter(|v| v.to_f32() != 0.0).count();
            assert_eq!(real, nonzero, "{shape:?}: padding must be zero");
        }
    }

    /// The image packing: taps `(kx, kx + 1)` of a row in one lane, the odd row's
    /// last tap beside a zero; unpacking recovers the rounded weights.
    #[test]
    fn image_packing_pairs_neighbouring_taps() {
        for shape in [
            ConvShape { co: 64, ci: 3, kh: 7, kw: 7 },
            ConvShape { co: 35, ci: 2, kh: 3, kw: 4 },
            ConvShape { co: 5, ci: 1, kh: 1, kw: 1 },
        ] {
            let w = weights(shape.co * shape.ci * shape.kh * shape.kw);
            let mut packed = vec![bf16::ONE];
            pack_conv_weights_bf16_image(&w, shape, &mut packed);
            assert_eq!(packed.len(), 1 + image_packed_len(shape));
            let packed = &packed[1..];
            let back = unpack_conv_weights_bf16_image(packed, shape);
            assert!(w.iter().zip(&back).all(|(&a, &b)| round_to_bf16(a) == b), "{shape:?}");
            let ConvShape { ci, kh, kw, .. } = shape;
            let pairs = kw.div_ceil(2);
            for o in 0..shape.co {
                for i in 0..ci {
                    for ky in 0..kh {
                        for q in 0..pairs {
                            let at = (((o / BLOCK * ci + i) * kh + ky) * pairs + q) * 2 * BLOCK + o % BLOCK * 2;
                            let tap = |kx: usize| {
                                if kx < kw { round_to_bf16(w[((o * ci + i) * kh + ky) * kw + kx]) } else { 0.0 }
                            };
                            assert_eq!((packed[at].to_f32(), packed[at + 1].to_f32()), (tap(2 * q), tap(2 * q + 1)));
                        }
                    }
                }
            }
            let nonzero = packed.iter().filter(|v| v.to_f32() != 0.0).count();
            assert_eq!(nonzero, w.iter().filter(|v| **v != 0.0).count(), "{shape:?}: padding must be zero");
        }
    }
}
