//! The transformed weights of the Winograd schemes, computed in f64 and rounded
//! once, in the blocked layout of a 1x1 convolution per transform position.

use super::scheme::{MAX_POSITIONS, Scheme};
use crate::geometry::ConvShape;
use crate::layout::BLOCK;

/// Length of the Winograd weights of `shape` packed by [`pack_winograd_weights`]
/// for `scheme`.
pub fn winograd_packed_len(shape: ConvShape, scheme: Scheme) -> usize {
    scheme.total_depth() * shape.co_blocks() * shape.ci_blocks() * BLOCK * BLOCK
}

/// F(2, 3)'s filter transform `G`.
const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// F(4, 3)'s filter transform `G`, for the points and scalings of the kernels' `B^T`
/// and `A^T` (0, 1, -1, 1/2, -2, ∞; see `super::transforms`).
const G6: [[f64; 3]; 6] = [
    [1.0 / 2.0, 0.0, 0.0],
    [1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [-2.0 / 15.0, -1.0 / 15.0, -1.0 / 30.0],
    [1.0 / 30.0, -1.0 / 15.0, 2.0 / 15.0],
    [0.0, 0.0, 1.0 / 2.0],
];

/// The 6-point 1-D schemes' filter transform for tiles of `m` outputs and `r`
/// taps: row `j` of `G` at F(4x4, 3x3)'s points with the kernels' `B^T` row and
/// `A^T` column scalings (see `super::transforms`) divided out: `G6` for F(4, 3),
/// and for F(3, 4) the same but for point 1/2's row (its `A^T` column is scaled by
/// 4, not 8) and a fourth tap.
fn g_line6(m: usize, r: usize, j: usize, k: usize) -> f64 {
    const POINTS: [f64; 5] = [0.0, 1.0, -1.0, 0.5, -2.0];
    // `bt6`'s row scalings, and the `A^T` column scalings.
    const ROW: [f64; 6] = [2.0, 6.0, -6.0, -15.0 / 16.0, 30.0, 2.0];
    let column = if j == 3 { (1 << (m - 1)) as f64 } else { 1.0 };
    let value = if j == 5 { f64::from(u8::from(k == r - 1)) } else { POINTS[j].powi(k as i32) };
    value / (ROW[j] * column)
}

/// `G g G^T` of a 3x3 filter `g` (row-major) for an `N x 3` `G`, handing position
/// `(ξ, ν)` to `put(N ξ + ν, value)`.
fn sandwich<const N: usize>(gm: &[[f64; 3]; N], g: &[f64], mut put: impl FnMut(usize, f64)) {
    // t = G g (N x 3), u = t G^T (N x N).
    let t: [[f64; 3]; N] =
        std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| gm[r][k] * g[k * 3 + c]).sum()));
    for (r, tr) in t.iter().enumerate() {
        for (c, gc) in gm.iter().enumerate() {
            put(r * N + c, (0..3).map(|k| tr[k] * gc[k]).sum());
        }
    }
}

/// Packs OIHW `weights` of `shape` for Winograd `scheme` (see
/// [`crate::winograd`]), appending to `out`. Per transform position `p` (row-major
/// for the 3x3 schemes) the blocked layout of a 1x1 convolution,
/// `[out blocks][depth(p) * in blocks][16 in][16 out]`, zero padded, one position
/// after the other:
/// - F(2x2, 3x3) and F(4x4, 3x3): `U = G g G^T` of each filter;
/// - F(2, 3) on a 1x3 / 3x1 filter `g`: `U = G g`; on a 1x7 / 7x1: `G` of taps 0-2
///   for the first `ci` inputs, of taps 3-5 for the next `ci`, and at positions 0
///   and 3 tap 6 and its negation for the last `ci` (the input channels must fill
///   whole blocks);
/// - the 6-point schemes: F(4, 3)'s `U = G g` of a 1x3 / 3x1; of a 1x7 / 7x1,
///   F(3, 4)'s `G` of taps 0-3 for the first `ci` inputs and of taps 4-6 (and a
///   zero) for the next `ci`, but at position 5 (∞, where the latter is 0).
///
/// Computed in f64, rounded once.
pub fn pack_winograd_weights(weights: &[f32], shape: ConvShape, scheme: Scheme, out: &mut Vec<f32>) {
    let ConvShape { co, ci, kh, kw } = shape;
    let window = scheme.window();
    assert!(
        (kh, kw) == window && Scheme::for_window(kh, kw).is_some(),
        "pack_winograd_weights: {scheme:?} does not compute {shape:?}"
    );
    let taps = kh * kw;
    assert_eq!(weights.len(), co * ci * taps, "pack_winograd_weights: weights are not OIHW of {shape:?}");
    assert!(window == (3, 3) || ci.is_multiple_of(BLOCK), "pack_winograd_weights: {shape:?} has a partial input block");
    let start = out.len();
    out.resize(start + winograd_packed_len(shape, scheme), 0.0);
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
                Scheme::F2x2 => sandwich(&G, &g, |p, u| put(p, i, o, u)),
                Scheme::F4x4 => sandwich(&G6, &g, |p, u| put(p, i, o, u)),
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
                Scheme::Line6 { .. } => {
                    // F(4, 3) (m = 4, r = 3) or F(3, 4) (m = 3, r = 4).
                    let (m, r) = if taps == 3 { (4, 3) } else { (3, 4) };
                    for part in 0..scheme.depth(0) {
                        let part_taps = &g[part * r..taps.min(part * r + r)];
                        for p in 0..scheme.positions() {
                            if part < scheme.depth(p) {
                                let u = part_taps.iter().enumerate().map(|(k, &w)| g_line6(m, r, p, k) * w).sum();
                                put(p, part * ci + i, o, u);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Recovers OIHW 1x3, 3x1, 1x7 or 7x1 weights from their F(2, 3) packing by
/// [`pack_winograd_weights`]: per F(2, 3), `G g`'s first and last positions are
/// the outer taps and the middle two differ by the middle tap; a 1x7's last tap is
/// stored as is at position 0. Outer taps come back exact, middle ones within a
/// rounding of `U`. Lets a model file written when a layer was lowered to F(2, 3)
/// load where it is now lowered to a 6-point scheme.
pub fn unpack_winograd_f2_weights(packed: &[f32], shape: ConvShape) -> Vec<f32> {
    let ConvShape { co, ci, kh, kw } = shape;
    let taps = kh * kw;
    let scheme = Scheme::for_window(kh, kw).filter(|s| matches!(s, Scheme::F2 { .. }));
    let scheme = scheme.filter(|&s| ci.is_multiple_of(BLOCK) && packed.len() == winograd_packed_len(shape, s));
    let scheme = scheme.unwrap_or_else(|| panic!("unpack_winograd_f2_weights: not the F(2, 3) packing of {shape:?}"));
    let (cib, cob) = (shape.ci_blocks(), shape.co_blocks());
    let pos_at: [usize; 4] = std::array::from_fn(|p| (0..p).map(|q| cob * scheme.depth(q) * cib * BLOCK * BLOCK).sum());
    // U at position p for output o and input k of the position's depth(p) * ci.
    let u = |p: usize, k: usize, o: usize| {
        let kb = scheme.depth(p) * cib;
        packed[pos_at[p] + ((o / BLOCK * kb + k / BLOCK) * BLOCK + k % BLOCK) * BLOCK + o % BLOCK] as f64
    };
    let mut out = vec![0.0; co * ci * taps];
    for o in 0..co {
        for i in 0..ci {
            let g = &mut out[(o * ci + i) * taps..][..taps];
            for part in 0..taps / 3 {
                let k = part * ci + i;
                let middle = u(1, k, o) - u(2, k, o);
                g[3 * part..3 * part + 3].copy_from_slice(&[u(0, k, o) as f32, middle as f32, u(3, k, o) as f32]);
            }
            if taps % 3 == 1 {
                g[taps - 1] = u(0, taps / 3 * ci + i, o) as f32;
            }
        }
    }
    out
}

/// Recovers OIHW 3x3 weights from their F(2x2, 3x3) packing by
/// [`pack_winograd_weights`]: `g = L U L^T` with `L G = I`, `L` taking rows 0, 1 - 2
/// and 3 (`G g`'s first and last rows are `g`'s, and its middle two differ by `g`'s
/// middle). Corner taps come back exact, the others within a rounding of `U`.
/// Lets a model file written when a layer was lowered to F(2x2, 3x3) load where it
/// is now lowered otherwise.
pub fn unpack_winograd_2x2_weights(packed: &[f32], shape: ConvShape) -> Vec<f32> {
    let ConvShape { co, ci, kh, kw } = shape;
    assert!(
        (kh, kw) == (3, 3) && packed.len() == winograd_packed_len(shape, Scheme::F2x2),
        "unpack_winograd_2x2_weights: not the F(2x2, 3x3) packing of {shape:?}"
    );
    const L: [[f64; 4]; 3] = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, -1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
    let (cib, cob) = (shape.ci_blocks(), shape.co_blocks());
    let pos_len = cob * cib * BLOCK * BLOCK;
    let mut out = vec![0.0; co * ci * 9];
    for o in 0..co {
        for i in 0..ci {
            let at = ((o / BLOCK * cib + i / BLOCK) * BLOCK + i % BLOCK) * BLOCK + o % BLOCK;
            let u = |a: usize, b: usize| packed[(a * 4 + b) * pos_len + at] as f64;
            for r in 0..3 {
                for c in 0..3 {
                    let g: f64 = (0..4).map(|a| (0..4).map(|b| L[r][a] * u(a, b) * L[c][b]).sum::<f64>()).sum();
                    out[(o * ci + i) * 9 + r * 3 + c] = g as f32;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F(4x4, 3x3)'s `G` is the 6-point 1-D scheme's for F(4, 3).
    #[test]
    fn line6_g_of_f4_3_is_f4x4s() {
        for (j, row) in G6.iter().enumerate() {
            for (k, &g) in row.iter().enumerate() {
                assert!((g_line6(4, 3, j, k) - g).abs() < 1e-15, "G[{j}][{k}]");
            }
        }
    }
}
