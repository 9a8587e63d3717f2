//! The layouts a program tensor can be stored in, and the conversions between them.

use incept_kernels::bf16::Bf16Terms;
use incept_kernels::bf16::bf16;
use incept_kernels::bf16::pack::{pack_conv_weights_bf16, pack_conv_weights_bf16_image, pack_conv_weights_bf16_terms};
use incept_kernels::pack::{
    image_folded_shape, image_kx_folded_shape, pack_bias, pack_conv_weights, pack_conv_weights_image,
    pack_conv_weights_image_kx, pack_winograd_weights, unpack_conv_weights, unpack_conv_weights_image,
    unpack_conv_weights_image_kx, unpack_winograd_2x2_weights, unpack_winograd_f2_weights, winograd_packed_len,
};
use incept_kernels::winograd::Scheme;
use incept_kernels::{AlignedVec, BLOCK};

use super::recipe::{TensorRecipe, TensorRole};
use crate::graph::Graph;

/// The layouts a program tensor can be stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Packing {
    /// Row-major, as the parameter (OIHW for convolution weights).
    Plain,
    /// Convolution weights as `[out/16][in/16][kh][kw][16 in][16 out]`, zero padded.
    ConvBlocked16,
    /// The weights of a convolution of the network's image with the whole window
    /// folded into the input channels: as [`Packing::ConvBlocked16`] of the
    /// `(out, kh * kw * in, 1, 1)` weights `W'[o][(ky * kw + kx) * in + c] =
    /// W[o][c][ky][kx]`, `[out/16][kh * kw * in / 16][16 in][16 out]`, zero padded
    /// (see `incept_kernels::pack::pack_conv_weights_image`).
    ConvImageFolded16,
    /// The weights of a convolution of the network's image with the window's
    /// columns folded into the input channels, as files written before the whole
    /// window was folded store them: as [`Packing::ConvBlocked16`] of the
    /// `(out, kw * in, kh, 1)` weights `W'[o][kx * in + c][ky] = W[o][c][ky][kx]`,
    /// `[out/16][kw * in / 16][kh][16 in][16 out]`, zero padded.
    ConvImageKxFolded16,
    /// A bias padded with zeros to a multiple of 16.
    Padded16,
    /// 3x3 weights as Winograd F(2x2, 3x3) `G g G^T`,
    /// `[16 positions][out/16][in/16][16 in][16 out]`, zero padded.
    Winograd2x2Blocked16,
    /// 3x3 weights as Winograd F(4x4, 3x3) `G g G^T`,
    /// `[36 positions][out/16][in/16][16 in][16 out]`, zero padded.
    Winograd4x4Blocked16,
    /// 1x3, 3x1, 1x7 or 7x1 weights as Winograd F(2, 3) `G g`, per position `p` of 4
    /// `[out/16][depth(p) * in/16][16 in][16 out]` (see
    /// `incept_kernels::pack::pack_winograd_weights`).
    WinogradF2Blocked16,
    /// 1x3 or 3x1 weights as Winograd F(4, 3) `G g`, 1x7 or 7x1 weights as F(3, 4)
    /// `G g` of taps 0-3 and of taps 4-6 (and a zero) in the same 6 points, per
    /// position `p` of 6 `[out/16][depth(p) * in/16][16 in][16 out]` (see
    /// `incept_kernels::pack::pack_winograd_weights`).
    WinogradLine6Blocked16,
    /// Convolution weights rounded to BF16 as
    /// `[out/16][in/16][kh][kw][8 pairs][16 out][2]`, zero padded (see
    /// `incept_kernels::bf16::pack`): two bytes a value.
    ConvBf16Pairs,
    /// Convolution weights split into BF16 terms as `[w_hi | w_hi | w_lo]` along
    /// the input channels, each group whole blocks, then as [`Packing::ConvBf16Pairs`]:
    /// `[out/16][3 in/16][kh][kw][8 pairs][16 out][2]` (see
    /// `incept_kernels::bf16::terms`): two bytes a value.
    ConvBf16x3Pairs,
    /// The weights of a convolution of the network's image rounded to BF16 as
    /// `[out/16][in][kh][kw/2 rounded up][16 out][2]`, taps `kx` and `kx + 1` of a
    /// row in one pair, zero padded (see `incept_kernels::bf16::pack`): two bytes a
    /// value.
    ConvBf16ImagePairs,
}

impl Packing {
    /// The name used in model files.
    pub fn name(self) -> &'static str {
        match self {
            Packing::Plain => "plain",
            Packing::ConvBlocked16 => "oihw_blocked16",
            Packing::ConvImageFolded16 => "oihw_image_window_folded16",
            Packing::ConvImageKxFolded16 => "oihw_image_kx_folded16",
            Packing::Padded16 => "padded16",
            Packing::Winograd2x2Blocked16 => "winograd_f2x2_3x3_blocked16",
            Packing::Winograd4x4Blocked16 => "winograd_f4x4_3x3_blocked16",
            Packing::WinogradF2Blocked16 => "winograd_f2_3_blocked16",
            Packing::WinogradLine6Blocked16 => "winograd_line6_blocked16",
            Packing::ConvBf16Pairs => "oihw_blocked16_bf16_pairs",
            Packing::ConvBf16x3Pairs => "oihw_blocked16_bf16x3_pairs",
            Packing::ConvBf16ImagePairs => "oihw_image_bf16_tap_pairs",
        }
    }

    /// Bytes of one stored value: 2 for BF16, else 4 (float32).
    pub fn value_bytes(self) -> usize {
        if matches!(self, Packing::ConvBf16Pairs | Packing::ConvBf16x3Pairs | Packing::ConvBf16ImagePairs) {
            2
        } else {
            4
        }
    }

    /// The packing named `name` in a model file.
    pub fn from_name(name: &str) -> Option<Packing> {
        [
            Packing::Plain,
            Packing::ConvBlocked16,
            Packing::ConvImageFolded16,
            Packing::ConvImageKxFolded16,
            Packing::Padded16,
            Packing::Winograd2x2Blocked16,
            Packing::Winograd4x4Blocked16,
            Packing::WinogradF2Blocked16,
            Packing::WinogradLine6Blocked16,
            Packing::ConvBf16Pairs,
            Packing::ConvBf16x3Pairs,
            Packing::ConvBf16ImagePairs,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

impl TensorRecipe {
    /// The layout the kernels read this tensor in.
    pub fn native_packing(&self) -> Packing {
        match self.role {
            TensorRole::ConvWeight { .. } => Packing::ConvBlocked16,
            TensorRole::ConvWeightImage { .. } => Packing::ConvImageFolded16,
            TensorRole::ConvWeightBf16 { .. } => Packing::ConvBf16Pairs,
            TensorRole::ConvWeightBf16x3 { .. } => Packing::ConvBf16x3Pairs,
            TensorRole::ConvWeightBf16Image { .. } => Packing::ConvBf16ImagePairs,
            TensorRole::WinogradWeight { scheme, .. } => match scheme {
                Scheme::F2x2 => Packing::Winograd2x2Blocked16,
                Scheme::F4x4 => Packing::Winograd4x4Blocked16,
                Scheme::F2 { .. } => Packing::WinogradF2Blocked16,
                Scheme::Line6 { .. } => Packing::WinogradLine6Blocked16,
            },
            TensorRole::ConvBias { .. } => Packing::Padded16,
            _ => Packing::Plain,
        }
    }

    /// The tensor's shape stored in `packing`, or `None` if it cannot be stored so.
    pub fn packed_shape(&self, graph: &Graph, packing: Packing) -> Option<Vec<usize>> {
        match (self.role, packing) {
            (_, Packing::Plain) => Some(self.shape(graph)),
            // A Winograd layer's weights may also be stored as a direct convolution's
            // (a file written before the layer was lowered to Winograd), and so may a
            // BF16 layer's (rounded when loaded): a BF16 file written while the
            // image's convolution stayed float32 holds its weights so. So may the
            // image's (a file written before its window was folded).
            (
                TensorRole::ConvWeight { shape, .. }
                | TensorRole::ConvWeightImage { shape, .. }
                | TensorRole::WinogradWeight { shape, .. }
                | TensorRole::ConvWeightBf16 { shape, .. }
                | TensorRole::ConvWeightBf16x3 { shape, .. }
                | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvBlocked16,
            ) => Some(vec![shape.co_blocks(), shape.ci_blocks(), shape.kh, shape.kw, BLOCK, BLOCK]),
            // The image's weights folded; a BF16 file written while the image's
            // convolution stayed float32 holds them so, and a file written before
            // the whole window was folded holds them with its columns folded.
            (
                TensorRole::ConvWeightImage { shape, .. } | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvImageFolded16,
            ) => {
                let folded = image_folded_shape(shape);
                Some(vec![folded.co_blocks(), folded.ci_blocks(), BLOCK, BLOCK])
            }
            (
                TensorRole::ConvWeightImage { shape, .. } | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvImageKxFolded16,
            ) => {
                let folded = image_kx_folded_shape(shape);
                Some(vec![folded.co_blocks(), folded.ci_blocks(), folded.kh, BLOCK, BLOCK])
            }
            (TensorRole::ConvWeightBf16 { shape, .. }, Packing::ConvBf16Pairs) => {
                Some(vec![shape.co_blocks(), shape.ci_blocks(), shape.kh, shape.kw, BLOCK / 2, BLOCK, 2])
            }
            (TensorRole::ConvWeightBf16x3 { shape, .. }, Packing::ConvBf16x3Pairs) => {
                let wide = Bf16Terms::Split3.reduction_shape(shape);
                Some(vec![shape.co_blocks(), wide.ci_blocks(), shape.kh, shape.kw, BLOCK / 2, BLOCK, 2])
            }
            (TensorRole::ConvWeightBf16Image { shape, .. }, Packing::ConvBf16ImagePairs) => {
                Some(vec![shape.co_blocks(), shape.ci, shape.kh, shape.kw.div_ceil(2), BLOCK, 2])
            }
            (TensorRole::WinogradWeight { shape, scheme, .. }, p) if p == self.native_packing() => {
                let v = vec![scheme.total_depth(), shape.co_blocks(), shape.ci_blocks(), BLOCK, BLOCK];
                debug_assert_eq!(v.iter().product::<usize>(), winograd_packed_len(shape, scheme));
                Some(v)
            }
            // A 3x3 layer now lowered to F(4x4, 3x3) in a file written when it was
            // lowered to F(2x2, 3x3): undone at load (see `repack`).
            (TensorRole::WinogradWeight { shape, scheme: Scheme::F4x4, .. }, Packing::Winograd2x2Blocked16) => {
                Some(vec![Scheme::F2x2.total_depth(), shape.co_blocks(), shape.ci_blocks(), BLOCK, BLOCK])
            }
            // A 1-D layer now lowered to a 6-point scheme in a file written when it
            // was lowered to F(2, 3): undone at load likewise.
            (
                TensorRole::WinogradWeight { shape, scheme: Scheme::Line6 { vertical, taps }, .. },
                Packing::WinogradF2Blocked16,
            ) => {
                let old = Scheme::F2 { vertical, taps };
                Some(vec![old.total_depth(), shape.co_blocks(), shape.ci_blocks(), BLOCK, BLOCK])
            }
            (TensorRole::ConvBias { co, .. }, Packing::Padded16) => Some(vec![co.div_ceil(BLOCK) * BLOCK]),
            _ => None,
        }
    }

    /// Converts `plain` (the tensor in its plain layout) to `packing`. BF16 values
    /// are returned two to a float32 slot, in memory order (see
    /// [`Program::tensor_bf16`](super::Program::tensor_bf16)).
    pub fn pack(&self, plain: &[f32], packing: Packing) -> AlignedVec {
        let mut out = Vec::new();
        match (self.role, packing) {
            (
                TensorRole::ConvWeight { shape, .. }
                | TensorRole::ConvWeightImage { shape, .. }
                | TensorRole::WinogradWeight { shape, .. }
                | TensorRole::ConvWeightBf16 { shape, .. }
                | TensorRole::ConvWeightBf16x3 { shape, .. }
                | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvBlocked16,
            ) => pack_conv_weights(plain, shape, &mut out),
            (
                TensorRole::ConvWeightImage { shape, .. } | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvImageFolded16,
            ) => pack_conv_weights_image(plain, shape, &mut out),
            (
                TensorRole::ConvWeightImage { shape, .. } | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvImageKxFolded16,
            ) => pack_conv_weights_image_kx(plain, shape, &mut out),
            (TensorRole::ConvWeightBf16 { shape, .. }, Packing::ConvBf16Pairs) => {
                let mut packed = Vec::new();
                pack_conv_weights_bf16(plain, shape, &mut packed);
                return bf16_slots(&packed);
            }
            (TensorRole::ConvWeightBf16x3 { shape, .. }, Packing::ConvBf16x3Pairs) => {
                let mut packed = Vec::new();
                pack_conv_weights_bf16_terms(plain, shape, Bf16Terms::Split3, &mut packed);
                return bf16_slots(&packed);
            }
            (TensorRole::ConvWeightBf16Image { shape, .. }, Packing::ConvBf16ImagePairs) => {
                let mut packed = Vec::new();
                pack_conv_weights_bf16_image(plain, shape, &mut packed);
                return bf16_slots(&packed);
            }
            (TensorRole::WinogradWeight { shape, scheme, .. }, p) if p == self.native_packing() => {
                pack_winograd_weights(plain, shape, scheme, &mut out)
            }
            (_, Packing::Padded16) => pack_bias(plain, &mut out),
            _ => return AlignedVec::from_slice(plain),
        }
        AlignedVec::from_slice(&out)
    }

    /// Converts `data`, the tensor stored in `from` (one of its
    /// [`packed_shape`](Self::packed_shape)s), to `to`. Packings that only pad
    /// (biases) or transform (Winograd) are not undone, but for F(2x2, 3x3)'s and
    /// F(2, 3)'s (exactly invertible up to a rounding): a tensor is otherwise only
    /// ever stored in them as its native packing.
    pub fn repack(&self, data: &[f32], from: Packing, to: Packing) -> AlignedVec {
        let plain = match (self.role, from) {
            (
                TensorRole::ConvWeight { shape, .. }
                | TensorRole::ConvWeightImage { shape, .. }
                | TensorRole::WinogradWeight { shape, .. }
                | TensorRole::ConvWeightBf16 { shape, .. }
                | TensorRole::ConvWeightBf16x3 { shape, .. }
                | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvBlocked16,
            ) => unpack_conv_weights(data, shape),
            (
                TensorRole::ConvWeightImage { shape, .. } | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvImageFolded16,
            ) => unpack_conv_weights_image(data, shape),
            (
                TensorRole::ConvWeightImage { shape, .. } | TensorRole::ConvWeightBf16Image { shape, .. },
                Packing::ConvImageKxFolded16,
            ) => unpack_conv_weights_image_kx(data, shape),
            (TensorRole::WinogradWeight { shape, .. }, Packing::Winograd2x2Blocked16) => {
                unpack_winograd_2x2_weights(data, shape)
            }
            (TensorRole::WinogradWeight { shape, .. }, Packing::WinogradF2Blocked16) => {
                unpack_winograd_f2_weights(data, shape)
            }
            (_, Packing::Plain) => data.to_vec(),
            (_, Packing::Padded16) => data.to_vec(),
            _ => panic!("repack: {:?} stored as {} cannot be unpacked", self.role, from.name()),
        };
        self.pack(&plain, to)
    }
}

/// BF16 values two to a float32 slot, in memory order (both packings are whole
/// pairs: an even number of values).
fn bf16_slots(packed: &[bf16]) -> AlignedVec {
    let slots: Vec<f32> = packed
        .chunks_exact(2)
        .map(|p| {
            let (a, b) = (p[0].to_bits().to_ne_bytes(), p[1].to_bits().to_ne_bytes());
            f32::from_ne_bytes([a[0], a[1], b[0], b[1]])
        })
        .collect();
    AlignedVec::from_slice(&slots)
}

#[cfg(test)]
mod tests {
    use incept_kernels::pack::ConvShape;

    use super::*;
    use crate::graph::ParamId;

    /// A Winograd layer's weights stored plain or as a direct convolution's repack
    /// to exactly the Winograd packing computed from the plain weights.
    #[test]
    fn winograd_weights_repack_from_every_stored_packing() {
        // A 3x3 in F(2x2, 3x3)'s and F(4x4, 3x3)'s packings, a 7x1 in F(2, 3)'s and
        // the 6-point one's, a 1x3 in the 6-point one's.
        let (square, line) = (ConvShape { co: 20, ci: 17, kh: 3, kw: 3 }, ConvShape { co: 20, ci: 32, kh: 7, kw: 1 });
        let row3 = ConvShape { co: 20, ci: 32, kh: 1, kw: 3 };
        let cases = [
            (square, Scheme::F2x2, Packing::Winograd2x2Blocked16, "winograd_f2x2_3x3_blocked16"),
            (square, Scheme::F4x4, Packing::Winograd4x4Blocked16, "winograd_f4x4_3x3_blocked16"),
            (line, Scheme::F2 { vertical: true, taps: 7 }, Packing::WinogradF2Blocked16, "winograd_f2_3_blocked16"),
            (
                line,
                Scheme::Line6 { vertical: true, taps: 7 },
                Packing::WinogradLine6Blocked16,
                "winograd_line6_blocked16",
            ),
            (
                row3,
                Scheme::Line6 { vertical: false, taps: 3 },
                Packing::WinogradLine6Blocked16,
                "winograd_line6_blocked16",
            ),
        ];
        for (shape, scheme, packing, name) in cases {
            let n = shape.co * shape.ci * shape.kh * shape.kw;
            let plain: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
            let role = TensorRole::WinogradWeight { param: ParamId(0), shape, scheme };
            let r = TensorRecipe { name: "w".into(), role, folds: vec![] };
            assert_eq!(r.native_packing(), packing);
            let native = r.pack(&plain, packing);
            assert_eq!(native.as_slice().len(), winograd_packed_len(shape, scheme));
            let blocked = r.pack(&plain, Packing::ConvBlocked16);
            for (data, from) in [(&plain[..], Packing::Plain), (blocked.as_slice(), Packing::ConvBlocked16)] {
                assert_eq!(r.repack(data, from, packing).as_slice(), native.as_slice(), "{shape:?} from {from:?}");
            }
            assert_eq!(Packing::from_name(name), Some(packing));
        }
    }

    /// A 3x3 layer now lowered to F(4x4, 3x3), stored in F(2x2, 3x3)'s packing (a
    /// file written before), loads: within a rounding of the weights; and so does a
    /// 1-D layer now lowered to a 6-point scheme, stored in F(2, 3)'s.
    #[test]
    fn older_winograd_weights_repack_to_the_newer_schemes() {
        let (square, line7, line3) = (
            ConvShape { co: 20, ci: 17, kh: 3, kw: 3 },
            ConvShape { co: 20, ci: 32, kh: 1, kw: 7 },
            ConvShape { co: 20, ci: 32, kh: 3, kw: 1 },
        );
        let cases = [
            (square, Scheme::F2x2, Packing::Winograd2x2Blocked16, Scheme::F4x4, Packing::Winograd4x4Blocked16),
            (
                line7,
                Scheme::F2 { vertical: false, taps: 7 },
                Packing::WinogradF2Blocked16,
                Scheme::Line6 { vertical: false, taps: 7 },
                Packing::WinogradLine6Blocked16,
            ),
            (
                line3,
                Scheme::F2 { vertical: true, taps: 3 },
                Packing::WinogradF2Blocked16,
                Scheme::Line6 { vertical: true, taps: 3 },
                Packing::WinogradLine6Blocked16,
            ),
        ];
        for (shape, old, old_packing, new, new_packing) in cases {
            let n = shape.co * shape.ci * shape.kh * shape.kw;
            let plain: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
            let recipe = |scheme| TensorRecipe {
                name: "w".into(),
                role: TensorRole::WinogradWeight { param: ParamId(0), shape, scheme },
                folds: vec![],
            };
            let (before, now) = (recipe(old), recipe(new));
            let stored = before.pack(&plain, old_packing);
            let got = now.repack(stored.as_slice(), old_packing, new_packing);
            let want = now.pack(&plain, new_packing);
            let scale = plain.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (g, w) in got.as_slice().iter().zip(want.as_slice()) {
                assert!((g - w).abs() <= 4.0 * f32::EPSILON * scale, "{shape:?}: {g} vs {w}");
            }
        }
    }

    /// The image convolution's BF16 weights: stored in their own packing, or as a
    /// float32 blocked direct convolution's (a BF16 file written while that layer
    /// stayed float32), or plain, they load to the same packing.
    #[test]
    fn image_weights_repack_from_older_files() {
        let shape = ConvShape { co: 70, ci: 3, kh: 7, kw: 7 };
        let plain: Vec<f32> = (0..70 * 3 * 49).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let r = TensorRecipe {
            name: "w".into(),
            role: TensorRole::ConvWeightBf16Image { param: ParamId(0), shape },
            folds: vec![],
        };
        let native = r.native_packing();
        assert_eq!(
            (native, Packing::from_name("oihw_image_bf16_tap_pairs")),
            (Packing::ConvBf16ImagePairs, Some(native))
        );
        let packed = r.pack(&plain, native);
        assert_eq!(2 * packed.as_slice().len(), incept_kernels::bf16::pack::image_packed_len(shape));
        let blocked = r.pack(&plain, Packing::ConvBlocked16);
        assert_eq!(r.repack(blocked.as_slice(), Packing::ConvBlocked16, native).as_slice(), packed.as_slice());
        assert_eq!(r.repack(&plain, Packing::Plain, native).as_slice(), packed.as_slice());
        for folding in [Packing::ConvImageFolded16, Packing::ConvImageKxFolded16] {
            let folded = r.pack(&plain, folding);
            assert_eq!(r.repack(folded.as_slice(), folding, native).as_slice(), packed.as_slice());
        }
    }

    /// The image convolution's float32 weights: stored folded, or with only the
    /// window's columns folded or blocked (files written before the window was
    /// folded), or plain, they load to the same folded packing, and unpack to the
    /// plain weights.
    #[test]
    fn folded_image_weights_repack_from_older_files() {
        let shape = ConvShape { co: 70, ci: 3, kh: 7, kw: 7 };
        let plain: Vec<f32> = (0..70 * 3 * 49).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let r = TensorRecipe {
            name: "w".into(),
            role: TensorRole::ConvWeightImage { param: ParamId(0), shape },
            folds: vec![],
        };
        let native = r.native_packing();
        assert_eq!(
            (native, Packing::from_name("oihw_image_window_folded16")),
            (Packing::ConvImageFolded16, Some(native))
        );
        let packed = r.pack(&plain, native);
        assert_eq!(packed.as_slice().len(), incept_kernels::pack::image_packed_len(shape));
        for older in [Packing::ConvImageKxFolded16, Packing::ConvBlocked16] {
            let stored = r.pack(&plain, older);
            assert_eq!(r.repack(stored.as_slice(), older, native).as_slice(), packed.as_slice());
        }
        assert_eq!(r.repack(&plain, Packing::Plain, native).as_slice(), packed.as_slice());
        assert_eq!(r.repack(packed.as_slice(), native, Packing::Plain).as_slice(), &plain[..]);
    }
}
