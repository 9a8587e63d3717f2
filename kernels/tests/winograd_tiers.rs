//! Winograd F(2x2, 3x3), F(4x4, 3x3), F(2, 3) and the 6-point F(4, 3) and F(3, 4+3)
//! (1x3, 3x1, 1x7, 7x1) on every tier this CPU runs against the reference direct
//! convolution: channel counts off, under and over the 16-lane block (the 1-D
//! schemes take whole input blocks only), every map size
//! from 1x1 to 20x20 (odd sizes end in a partial tile), padding 0, symmetric and
//! asymmetric, a residual and ReLU, output into a slice of a larger buffer between
//! sentinels, one thread and three.
//!
//! # Error bound
//!
//! For output `y` (tile pixel `(i, j)`), F(2x2, 3x3) computes
//! `y = Σ_c Σ_ξν a_ξν U_ξν V_ξν + bias + residual`, `a_ξν = A^T[i][ξ] A^T[j][ν]`
//! (0 or ±1), `U = G g G^T`, `V = B^T d B`. With `u = 2^-24` and `γ_n = n u / (1 - n u)`,
//! and writing `|U|`, `|V|` for the same transforms with every entry made absolute
//! (`|G| |g| |G|^T`, `|B^T| |d| |B|`: they bound the magnitudes of the intermediate
//! sums):
//! - `U` is computed in f64 and rounded once: relative error `u` (1 rounding).
//! - each `V` entry is a row then a column add of two values: 2 roundings, error
//!   at most `γ_2 |V|`.
//! - the GEMM is a `ci`-term FMA chain per position: `ci` roundings.
//! - the output transform sums 3 `m`s per row then 3 row sums: every `m` passes
//!   through at most 4 roundings; bias and residual add 2 more.
//!
//! Every product term thus carries at most `ci + 9` rounding factors `(1 + δ)`, so
//! `|ŷ - y| <= γ_{ci+9} W`, `W = Σ_c Σ_ξν |a_ξν| |U|_ξν |V|_ξν + |bias| + |residual|`.
//! F(4x4, 3x3) is the same with 6x6 transforms: each 1-D `B^T` row (`2 (..) + 3 (..)`
//! over shared differences) and `A^T` row (powers of two, summed in pairs) costs at
//! most 3 roundings, so `V` carries 6 and the output transform 6: `γ_{ci+15} W`.
//! F(2, 3) is the same in one dimension, with GEMMs up to `depth * ci` long (depth
//! 3 for 1x7 windows: two F(2, 3)s and the last tap) and fewer transform roundings:
//! `γ_{depth ci + 9}` bounds it too, and the 6-point 1-D schemes (F(4x4, 3x3)'s
//! 1-D transforms: 3 roundings in, 3 out; depth 2 for a 1x7). The reference sums `taps * ci + 2` terms
//! directly: `|ref - y| <= γ_{taps ci + 2} D`, `D = Σ |w| |x| + |bias| + |residual|`.
//! The test asserts `|ŷ - ref| <= γ_{depth ci + 9} W + γ_{taps ci + 2} D`,
//! computing `W` and `D` in f64.
//!
//! How `W` compares with `D` for F(2x2, 3x3): expanding the abs transforms,
//! `W = Σ_{k,l,r,s} |g_kl| |d_rs| c_i(k, r) c_j(l, s)` with
//! `c_i(k, r) = Σ_ξ |A^T_iξ| |G_ξk| |B^T_ξr|`, where the signed sum is `[r = i + k]`
//! (which gives `D`). The abs entries are 0, 1 or 2 and each row `k` sums to 2 or 4,
//! so `W <= 16 Σ|g| max|d|` where `D <= Σ|g| max|d|`; for inputs of even magnitude
//! `W ≈ (8/3)^2 D ≈ 7 D`. The Winograd error bound `γ_{ci+9} W ≈ 7 (ci + 9) u D` is
//! then below the direct kernels' `γ_{9ci+2} D` for `ci >= 32`: the extra roundings
//! of the transforms cost less than the 9x shorter sums save. In one dimension
//! `W ≈ 8/3 D` on the F(2, 3) taps. The sweep prints the mean `W / D` it saw.

// The magnitudes index 4x4 transforms by (row, column) in lockstep.
#![allow(clippy::needless_range_loop)]

mod support;

use incept_kernels::bands::split_image;
use incept_kernels::conv::{Conv2d, PackedConv};
use incept_kernels::pack::{ConvShape, pack_bias, pack_winograd_weights};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::winograd::{Scheme, conv2d_winograd, winograd_scratch_len};
use incept_kernels::{Activation, ConvGeometry, Dims, Image, Kernels, Layout, Padding, Tier, tier_calls, tile_calls};
use support::{
    Rng, ThreeThreads, band_splits, reference_conv, to_layout, view_bands, write_bands, write_between_sentinels,
};

const BT: [[f64; 4]; 4] = [[1., 0., -1., 0.], [0., 1., 1., 0.], [0., -1., 1., 0.], [0., 1., 0., -1.]];
const G: [[f64; 3]; 4] = [[1., 0., 0.], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0., 0., 1.]];
const AT: [[f64; 4]; 2] = [[1., 1., 1., 0.], [0., 1., -1., -1.]];

/// F(4x4, 3x3)'s matrices (points 0, 1, -1, 1/2, -2, ∞, scaled as the kernels'),
/// written out independently of them.
const BT6: [[f64; 6]; 6] = [
    [2., -3., -4., 3., 2., 0.],
    [0., -2., 1., 5., 2., 0.],
    [0., 2., -5., 1., 2., 0.],
    [0., -2., -1., 2., 1., 0.],
    [0., 1., -2., -1., 2., 0.],
    [0., 2., -3., -4., 3., 2.],
];
const G6: [[f64; 3]; 6] = [
    [1. / 2., 0., 0.],
    [1. / 6., 1. / 6., 1. / 6.],
    [-1. / 6., 1. / 6., -1. / 6.],
    [-2. / 15., -1. / 15., -1. / 30.],
    [1. / 30., -1. / 15., 2. / 15.],
    [0., 0., 1. / 2.],
];
const AT6: [[f64; 6]; 4] =
    [[1., 1., 1., 8., 1., 0.], [0., 1., -1., 4., -2., 0.], [0., 1., 1., 2., 4., 0.], [0., 1., -1., 1., -8., 1.]];

/// F(3, 4)'s `A^T` and `G` in the same points (the 6-point 1x7 scheme: F(3, 4) on
/// taps 0-3 and on taps 4-6 and a zero), scaled as the kernels'.
const AT3: [[f64; 6]; 3] = [[1., 1., 1., 4., 1., 0.], [0., 1., -1., 2., -2., 0.], [0., 1., 1., 1., 4., 1.]];
const G34: [[f64; 4]; 6] = [
    [1. / 2., 0., 0., 0.],
    [1. / 6., 1. / 6., 1. / 6., 1. / 6.],
    [-1. / 6., 1. / 6., -1. / 6., 1. / 6.],
    [-4. / 15., -2. / 15., -1. / 15., -1. / 30.],
    [1. / 30., -1. / 15., 2. / 15., -4. / 15.],
    [0., 0., 0., 1. / 2.],
];

/// A matrix as rows of a vector.
fn rows<const C: usize>(m: &[[f64; C]]) -> Vec<Vec<f64>> {
    m.iter().map(|r| r.to_vec()).collect()
}

/// `|M| |X| |M|^T` for an `R`x`N` matrix `M` and an `N`x`N` `X`.
fn abs_sandwich<const R: usize, const N: usize>(m: &[[f64; N]; R], x: &[[f64; N]; N]) -> [[f64; R]; R] {
    std::array::from_fn(|r| {
        std::array::from_fn(|c| {
            (0..N).map(|a| (0..N).map(|b| m[r][a].abs() * x[a][b].abs() * m[c][b].abs()).sum::<f64>()).sum()
        })
    })
}

/// A 3x3 Winograd scheme's `B^T`, `G` and `A^T`, for `N x N` patches and `T x T` tiles.
type Matrices<'a, const N: usize, const T: usize> = (&'a [[f64; N]; N], &'a [[f64; 3]; N], &'a [[f64; N]; T]);

/// The magnitude `W` of every output (NCHW) of a 3x3 Winograd scheme with `N x N`
/// patches and `T x T` tiles (`bt`, `g`, `at` its matrices), without bias and residual.
#[allow(clippy::too_many_arguments)]
fn winograd_magnitude_2d<const N: usize, const T: usize>(
    (bt, gm, at): Matrices<N, T>,
    x: &[f32],
    din: Dims,
    wt: &[f32],
    co: usize,
    pad: Padding,
    oh: usize,
    ow: usize,
) -> Vec<f64> {
    let ci = din.c;
    let load = |c: usize, y: isize, xx: isize| -> f64 {
        if y < 0 || xx < 0 || y >= din.h as isize || xx >= din.w as isize {
            0.0
        } else {
            x[(c * din.h + y as usize) * din.w + xx as usize] as f64
        }
    };
    let u: Vec<[[f64; N]; N]> = (0..co * ci)
        .map(|oc| {
            let g: [[f64; 3]; 3] = std::array::from_fn(|r| std::array::from_fn(|c| wt[oc * 9 + r * 3 + c] as f64));
            abs_sandwich(gm, &g)
        })
        .collect();
    let mut mag = vec![0.0; co * oh * ow];
    for ty in 0..oh.div_ceil(T) {
        for tx in 0..ow.div_ceil(T) {
            let v: Vec<[[f64; N]; N]> = (0..ci)
                .map(|c| {
                    let d: [[f64; N]; N] = std::array::from_fn(|r| {
                        std::array::from_fn(|k| {
                            load(c, (T * ty + r) as isize - pad.top as isize, (T * tx + k) as isize - pad.left as isize)
                        })
                    });
                    abs_sandwich(bt, &d)
                })
                .collect();
            for o in 0..co {
                for i in 0..T {
                    for j in 0..T {
                        let (y, xx) = (T * ty + i, T * tx + j);
                        if y >= oh || xx >= ow {
                            continue;
                        }
                        let mut s = 0.0;
                        for (c, vc) in v.iter().enumerate() {
                            let uc = &u[o * ci + c];
                            for xi in 0..N {
                                for nu in 0..N {
                                    s += (at[i][xi] * at[j][nu]).abs() * uc[xi][nu] * vc[xi][nu];
                                }
                            }
                        }
                        mag[(o * oh + y) * ow + xx] = s;
                    }
                }
            }
        }
    }
    mag
}

/// The magnitude `W` of every output (NCHW) of a 1-D scheme on a 1 x `taps`
/// window (`taps` x 1 when `vertical`), without bias and residual: per tile of `m`
/// outputs and input channel, `Σ_part Σ_p |A^T_ip| |G g|_p |B^T d|_p` over the
/// window's parts (F(2, 3): one per 3 taps, plus the last tap's `|g| |d|` for a
/// 1x7; 6 points: F(4, 3), or F(3, 4) on taps 0-3 and 4-6 and a zero).
#[allow(clippy::too_many_arguments)]
fn winograd_magnitude_1d(
    x: &[f32],
    din: Dims,
    wt: &[f32],
    co: usize,
    scheme: Scheme,
    pad: Padding,
    oh: usize,
    ow: usize,
) -> Vec<f64> {
    let ci = din.c;
    // Tile length, matrices, and the parts: how many, `step` taps (and inputs) apart.
    let (vertical, taps, m, (bt, gm, at), parts, step) = match scheme {
        Scheme::F2 { vertical, taps } => (vertical, taps, 2, (rows(&BT), rows(&G), rows(&AT)), taps / 3, 3),
        Scheme::Line6 { vertical, taps: 3 } => (vertical, 3, 4, (rows(&BT6), rows(&G6), rows(&AT6)), 1, 3),
        Scheme::Line6 { vertical, taps } => (vertical, taps, 3, (rows(&BT6), rows(&G34), rows(&AT3)), 2, 4),
        _ => unreachable!("a 1-D scheme"),
    };
    let r = gm[0].len();
    let before = if vertical { pad.top } else { pad.left } as isize;
    let mut mag = vec![0.0; co * oh * ow];
    for o in 0..co {
        for y in 0..oh {
            for xx in 0..ow {
                // The tile this output is in, and its place in it.
                let (along, across) = if vertical { (y, xx) } else { (xx, y) };
                let (i, s0) = (along % m, (along - along % m) as isize - before);
                let mut s = 0.0;
                for c in 0..ci {
                    let d = |k: usize| -> f64 {
                        let at = s0 + k as isize;
                        let (yy, xc) = if vertical { (at, across as isize) } else { (across as isize, at) };
                        if yy < 0 || xc < 0 || yy >= din.h as isize || xc >= din.w as isize {
                            0.0
                        } else {
                            x[(c * din.h + yy as usize) * din.w + xc as usize].abs() as f64
                        }
                    };
                    let g = |k: usize| if k < taps { wt[(o * ci + c) * taps + k].abs() as f64 } else { 0.0 };
                    for part in 0..parts {
                        for p in 0..bt.len() {
                            let u: f64 = (0..r).map(|k| gm[p][k].abs() * g(step * part + k)).sum();
                            let v: f64 = (0..bt.len()).map(|l| bt[p][l].abs() * d(step * part + l)).sum();
                            s += at[i][p].abs() * u * v;
                        }
                    }
                    if matches!(scheme, Scheme::F2 { .. }) && taps % 3 == 1 {
                        s += g(taps - 1) * d(taps - 1 + i);
                    }
                }
                mag[(o * oh + y) * ow + xx] = s;
            }
        }
    }
    mag
}

#[derive(Clone, Copy, Debug)]
struct Case {
    scheme: Scheme,
    /// The window: 3x3, 1x3, 3x1, 1x7 or 7x1.
    kh: usize,
    kw: usize,
    ci: usize,
    co: usize,
    h: usize,
    w: usize,
    pad: Padding,
    residual: bool,
    act: Activation,
}

/// Runs `case` and checks it against the reference within the bound of the module
/// doc. Returns the sum of `W / D` over the outputs, their count, and the largest
/// error as a fraction of its tolerance.
fn check(kernels: &Kernels, case: Case, rng: &mut Rng, par: &dyn ParallelFor) -> (f64, usize, f64) {
    let Case { scheme, kh, kw, ci, co, h, w, pad, residual, act } = case;
    let geom = ConvGeometry { kh, kw, stride_h: 1, stride_w: 1, pad };
    assert!(scheme.computes(&geom, ci), "{case:?}: not a window of the scheme");
    let (taps, depth) = (kh * kw, (0..scheme.positions()).map(|p| scheme.depth(p)).max().unwrap());
    let din = Dims::new(ci, h, w);
    let Some((oh, ow)) = geom.output_hw(h, w) else { return (0.0, 0, 0.0) };
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh, kw };
    let (x, wt, bias, res) = (rng.vec(din.volume()), rng.vec(co * ci * taps), rng.vec(co), rng.vec(dout.volume()));

    let want = reference_conv(&x, din, &wt, Some(&bias), &geom, residual.then_some(&res[..]), act, dout);
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let (xa, wa, ba, ra) = (abs(&x), abs(&wt), abs(&bias), abs(&res));
    let direct_mag = reference_conv(&xa, din, &wa, None, &geom, None, Activation::None, dout);
    let wino_mag = match scheme {
        Scheme::F2x2 => winograd_magnitude_2d((&BT, &G, &AT), &x, din, &wt, co, pad, oh, ow),
        Scheme::F4x4 => winograd_magnitude_2d((&BT6, &G6, &AT6), &x, din, &wt, co, pad, oh, ow),
        Scheme::F2 { .. } | Scheme::Line6 { .. } => winograd_magnitude_1d(&x, din, &wt, co, scheme, pad, oh, ow),
    };
    // Roundings a product term passes through besides the GEMM's `depth * ci` (see
    // the module doc).
    let transform_roundings = match scheme {
        Scheme::F4x4 => 15,
        _ => 9,
    };

    let blk = Layout::Nchw16c;
    let mut packed = Vec::new();
    pack_winograd_weights(&wt, shape, scheme, &mut packed);
    let mut pbias = Vec::new();
    pack_bias(&bias, &mut pbias);
    let xin = to_layout(&x, din, blk);
    let rin = to_layout(&res, dout, blk);
    let mut scratch = vec![f32::NAN; winograd_scratch_len(din, &geom, scheme, par.threads())];
    let out = &write_between_sentinels(dout, blk, &case, |out| {
        let op = Conv2d {
            input: Image::new(&xin, din, blk).into(),
            weights: PackedConv { shape, weights: &packed, bias: &pbias },
            geom,
            residual: residual.then(|| Image::new(&rin, dout, blk).into()),
            act,
        };
        conv2d_winograd(kernels, &op, scheme, &mut out.into(), &mut scratch, par)
    });
    let u = f32::EPSILON as f64 / 2.0;
    let gamma = |n: usize| n as f64 * u / (1.0 - n as f64 * u);
    let mut ratios = (0.0, 0, 0f64);
    for c in 0..blk.padded_channels(co) {
        for y in 0..oh {
            for xx in 0..ow {
                let got = out[blk.index(dout, c, y, xx)];
                if c >= co {
                    assert_eq!(got, 0.0, "{case:?}: padding lane {c} not zero");
                    continue;
                }
                let i = (c * oh + y) * ow + xx;
                let extra = ba[c] as f64 + if residual { ra[i] as f64 } else { 0.0 };
                let (wm, dm) = (wino_mag[i] + extra, direct_mag[i] as f64 + extra);
                if dm > 0.0 {
                    ratios = (ratios.0 + wm / dm, ratios.1 + 1, ratios.2);
                }
                let tol =
                    gamma(depth * ci + transform_roundings) * wm + gamma(taps * ci + 2) * dm + f32::MIN_POSITIVE as f64;
                let err = (got as f64 - want[i] as f64).abs();
                ratios.2 = ratios.2.max(err / tol);
                assert!(
                    err <= tol,
                    "{} {case:?}: at (c={c}, y={y}, x={xx}) got {got}, want {}, error {err:e}, tolerance {tol:e}",
                    kernels.conv_name(),
                    want[i]
                );
            }
        }
    }

    // In bands of rows (input and output split alike, or the input into one band
    // more): each band computes the image's tiles over its rows, so the same bits.
    let weights = PackedConv { shape, weights: &packed, bias: &pbias };
    for (in_split, out_split) in band_splits(h, oh) {
        let in_bands = split_image(Image::new(&xin, din, blk), in_split);
        let res_bands = split_image(Image::new(&rin, dout, blk), out_split);
        let got = write_bands(dout, blk, out_split, |out| {
            let input = view_bands(&in_bands, din, blk, in_split);
            let res = residual.then(|| view_bands(&res_bands, dout, blk, out_split));
            let op = Conv2d { input, weights, geom, residual: res, act };
            conv2d_winograd(kernels, &op, scheme, out, &mut scratch, par)
        });
        assert!(
            got.iter().zip(out).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{} {case:?}: in {in_split:?} -> {out_split:?} differs from one band",
            kernels.conv_name()
        );
    }
    ratios
}

fn paddings() -> [Padding; 4] {
    [
        Padding::uniform(1),
        Padding::uniform(0),
        // TF "SAME"-like asymmetric paddings.
        Padding { top: 0, left: 1, bottom: 1, right: 0 },
        Padding { top: 1, left: 0, bottom: 2, right: 1 },
    ]
}

/// Paddings along a 1-D window of `taps` (none across it): same, none, one side
/// short, all before.
fn line_paddings(taps: usize, vertical: bool) -> [Padding; 4] {
    let half = taps / 2;
    [(half, half), (0, 0), (half - 1, half + 1), (taps - 1, 0)].map(|(a, b)| {
        if vertical {
            Padding { top: a, left: 0, bottom: b, right: 0 }
        } else {
            Padding { top: 0, left: a, bottom: 0, right: b }
        }
    })
}

/// Sums the `check` results of a sweep.
#[derive(Default)]
struct Tally {
    cases: usize,
    ratio_sum: f64,
    ratios: usize,
    worst: f64,
}

impl Tally {
    fn add(&mut self, r: (f64, usize, f64)) {
        (self.cases, self.ratio_sum, self.ratios, self.worst) =
            (self.cases + 1, self.ratio_sum + r.0, self.ratios + r.1, self.worst.max(r.2));
    }
}

fn sweep(kernels: &Kernels, par: &dyn ParallelFor) {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let channels = [(1, 1), (3, 17), (17, 40), (40, 3), (16, 16), (40, 72)];
    let mut tallies = Vec::new();
    for scheme in [Scheme::F2x2, Scheme::F4x4] {
        let mut tally = Tally::default();
        for (k, pad) in paddings().into_iter().enumerate() {
            for h in 1..=20 {
                // Every height, with a width that cycles through odd and even sizes.
                for w in [h, (h * 7 + k) % 20 + 1] {
                    let (ci, co) = channels[(h + w + k) % channels.len()];
                    let residual = (h + k) % 2 == 0;
                    let act = if (w + k) % 3 == 0 { Activation::None } else { Activation::Relu };
                    let case = Case { scheme, kh: 3, kw: 3, ci, co, h, w, pad, residual, act };
                    tally.add(check(kernels, case, &mut rng, par));
                }
            }
        }
        // Every channel pair on a few sizes, including maps wider than one chunk
        // (at least 64 tiles).
        for &(ci, co) in &channels {
            for &(h, w) in &[(1, 1), (2, 2), (7, 7), (8, 9), (19, 20), (33, 30)] {
                let pad = Padding::uniform(1);
                let case = Case { scheme, kh: 3, kw: 3, ci, co, h, w, pad, residual: true, act: Activation::Relu };
                tally.add(check(kernels, case, &mut rng, par));
            }
        }
        tallies.push((scheme.name(), tally));
    }
    // The 1-D windows, input channels in whole blocks: F(2, 3) and the 6-point
    // schemes (F(4, 3) and F(3, 4+3)).
    let line_channels = [(16, 1), (16, 17), (32, 40), (48, 16), (16, 72)];
    let line_schemes: [(&str, &[usize], bool); 3] =
        [("F(2,3)", &[3, 7], false), ("F(4,3)", &[3], true), ("F(3,4+3)", &[7], true)];
    for (name, window_taps, six) in line_schemes {
        let mut tally = Tally::default();
        for (kh, kw) in [(1, 3), (3, 1), (1, 7), (7, 1)].into_iter().filter(|(h, w)| window_taps.contains(&(h * w))) {
            let (vertical, taps) = (kw == 1, kh * kw);
            let scheme = if six { Scheme::Line6 { vertical, taps } } else { Scheme::F2 { vertical, taps } };
            for (k, pad) in line_paddings(taps, vertical).into_iter().enumerate() {
                for h in 1..=12 {
                    for w in [h, (h * 5 + k) % 12 + 1] {
                        let (ci, co) = line_channels[(h + w + k) % line_channels.len()];
                        let residual = (h + k) % 2 == 0;
                        let act = if (w + k) % 3 == 0 { Activation::None } else { Activation::Relu };
                        let case = Case { scheme, kh, kw, ci, co, h, w, pad, residual, act };
                        tally.add(check(kernels, case, &mut rng, par));
                    }
                }
            }
        }
        tallies.push((name, tally));
    }
    for (scheme, tally) in tallies {
        assert!(tally.cases > 190, "{scheme}: {} cases", tally.cases);
        let (name, mean) = (kernels.conv_name(), tally.ratio_sum / tally.ratios as f64);
        eprintln!(
            "{name} {scheme}: {} cases, mean W / D {mean:.2}, largest error / tolerance {:.3}",
            tally.cases, tally.worst
        );
    }
}

#[test]
fn every_available_tier_matches_the_reference() {
    let tiers = Tier::available();
    assert!(tiers.contains(&Tier::Portable));
    for tier in tiers {
        let kernels = Kernels::new(tier).unwrap();
        let before = tier_calls(tier);
        // The hand-scheduled tile runs the GEMMs' full tiles (in one row call where
        // the tier has one: AVX2).
        let hand = kernels.hand_scheduled();
        let hand_calls = || hand.map_or(0, |(ob, px)| tile_calls(tier, ob, px));
        let before_hand = hand_calls();
        sweep(&kernels, &Sequential);
        assert!(tier_calls(tier) > before, "{tier:?} did not run");
        assert!(hand.is_none() || hand_calls() > before_hand, "{tier:?}: the hand-scheduled tile did not run");
    }
}

#[test]
fn chunks_spread_over_threads_match_the_reference() {
    sweep(&Kernels::new(Tier::best()).unwrap(), &ThreeThreads);
}

/// A larger map, many chunks, with the channel counts of the models: chunks as
/// the CPU's L2 sizes them, and the fewest tiles a chunk takes (an L2 of 4 KiB).
#[test]
fn a_model_sized_layer_matches_the_reference() {
    let best = Kernels::new(Tier::best()).unwrap();
    for kernels in [best, best.with_l2_bytes(4 << 10)] {
        model_sized_layers(&kernels);
    }
}

fn model_sized_layers(kernels: &Kernels) {
    let mut rng = Rng(7);
    for scheme in [Scheme::F2x2, Scheme::F4x4] {
        let pad = Padding::uniform(1);
        let case =
            Case { scheme, kh: 3, kw: 3, ci: 64, co: 96, h: 35, w: 35, pad, residual: false, act: Activation::Relu };
        check(kernels, case, &mut rng, &Sequential);
        check(kernels, case, &mut rng, &ThreeThreads);
    }
    // Mixed_6's 7x1 and Mixed_7's 1x3 layers.
    let pad = Padding { top: 3, left: 0, bottom: 3, right: 0 };
    let scheme = Scheme::F2 { vertical: true, taps: 7 };
    let case =
        Case { scheme, kh: 7, kw: 1, ci: 128, co: 160, h: 17, w: 17, pad, residual: true, act: Activation::Relu };
    check(kernels, case, &mut rng, &Sequential);
    check(kernels, case, &mut rng, &ThreeThreads);
    let pad = Padding { top: 0, left: 1, bottom: 0, right: 1 };
    let scheme = Scheme::F2 { vertical: false, taps: 3 };
    let case = Case { scheme, kh: 1, kw: 3, ci: 384, co: 384, h: 8, w: 8, pad, residual: false, act: Activation::Relu };
    check(kernels, case, &mut rng, &ThreeThreads);
    // The same by the 6-point schemes, and inception_v4's 1x7 (224 -> 256).
    let pad7 = Padding { top: 3, left: 0, bottom: 3, right: 0 };
    let case7 = Case { scheme: Scheme::Line6 { vertical: true, taps: 7 }, pad: pad7, ..case };
    let case7 = Case { kh: 7, kw: 1, ci: 128, co: 160, h: 17, w: 17, residual: true, ..case7 };
    check(kernels, case7, &mut rng, &Sequential);
    check(kernels, case7, &mut rng, &ThreeThreads);
    let wide = Case { scheme: Scheme::Line6 { vertical: false, taps: 7 }, kh: 1, kw: 7, ci: 224, co: 256, ..case7 };
    let wide = Case { pad: Padding { top: 0, left: 3, bottom: 0, right: 3 }, residual: false, ..wide };
    check(kernels, wide, &mut rng, &Sequential);
    check(kernels, Case { scheme: Scheme::Line6 { vertical: false, taps: 3 }, ..case }, &mut rng, &ThreeThreads);
}
