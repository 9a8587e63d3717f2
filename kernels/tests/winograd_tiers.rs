//! Winograd F(2x2, 3x3) on every tier this CPU runs against the reference direct
//! convolution: channel counts off, under and over the 16-lane block, every map size
//! from 1x1 to 20x20 (odd sizes end in a partial tile), padding 0 and 1 and
//! asymmetric, a residual and ReLU, output into a slice of a larger buffer between
//! sentinels, one thread and three.
//!
//! # Error bound
//!
//! For output `y` (tile pixel `(i, j)`), Winograd computes
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
//! The reference sums `9 ci + 2` terms directly: `|ref - y| <= γ_{9ci+2} D`,
//! `D = Σ |w| |x| + |bias| + |residual|`. The test asserts
//! `|ŷ - ref| <= γ_{ci+9} W + γ_{9ci+2} D`, computing `W` and `D` in f64.
//!
//! How `W` compares with `D`: expanding the abs transforms,
//! `W = Σ_{k,l,r,s} |g_kl| |d_rs| c_i(k, r) c_j(l, s)` with
//! `c_i(k, r) = Σ_ξ |A^T_iξ| |G_ξk| |B^T_ξr|`, where the signed sum is `[r = i + k]`
//! (which gives `D`). The abs entries are 0, 1 or 2 and each row `k` sums to 2 or 4,
//! so `W <= 16 Σ|g| max|d|` where `D <= Σ|g| max|d|`; for inputs of even magnitude
//! `W ≈ (8/3)^2 D ≈ 7 D`. The Winograd error bound `γ_{ci+9} W ≈ 7 (ci + 9) u D` is
//! then below the direct kernels' `γ_{9ci+2} D` for `ci >= 32`: the extra roundings
//! of the transforms cost less than the 9x shorter sums save. The sweep prints the
//! mean `W / D` it saw.

// The magnitudes index 4x4 transforms by (row, column) in lockstep.
#![allow(clippy::needless_range_loop)]

mod support;

use incept_kernels::conv::PackedConv;
use incept_kernels::pack::{ConvShape, pack_bias, pack_winograd_weights};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::winograd::{conv2d_winograd_par, winograd_scratch_len};
use incept_kernels::{Activation, ConvGeometry, Dims, Image, Kernels, Layout, Padding, Tier, tier_calls};
use support::{Rng, ThreeThreads, reference_conv, to_layout, write_between_sentinels};

const BT: [[f64; 4]; 4] = [[1., 0., -1., 0.], [0., 1., 1., 0.], [0., -1., 1., 0.], [0., 1., 0., -1.]];
const G: [[f64; 3]; 4] = [[1., 0., 0.], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0., 0., 1.]];
const AT: [[f64; 4]; 2] = [[1., 1., 1., 0.], [0., 1., -1., -1.]];

/// `|M| |X| |M|^T` for a 4x`n` matrix `M` and an `n`x`n` `X`.
fn abs_sandwich<const N: usize>(m: &[[f64; N]; 4], x: &[[f64; N]; N]) -> [[f64; 4]; 4] {
    std::array::from_fn(|r| {
        std::array::from_fn(|c| {
            (0..N).map(|a| (0..N).map(|b| m[r][a].abs() * x[a][b].abs() * m[c][b].abs()).sum::<f64>()).sum()
        })
    })
}

/// The Winograd magnitude `W` of every output (NCHW), without bias and residual.
fn winograd_magnitude(x: &[f32], din: Dims, wt: &[f32], co: usize, pad: Padding, oh: usize, ow: usize) -> Vec<f64> {
    let ci = din.c;
    let at = |c: usize, y: isize, xx: isize| -> f64 {
        if y < 0 || xx < 0 || y >= din.h as isize || xx >= din.w as isize {
            0.0
        } else {
            x[(c * din.h + y as usize) * din.w + xx as usize] as f64
        }
    };
    let u: Vec<[[f64; 4]; 4]> = (0..co * ci)
        .map(|oc| {
            let g: [[f64; 3]; 3] = std::array::from_fn(|r| std::array::from_fn(|c| wt[oc * 9 + r * 3 + c] as f64));
            abs_sandwich(&G, &g)
        })
        .collect();
    let mut mag = vec![0.0; co * oh * ow];
    for ty in 0..oh.div_ceil(2) {
        for tx in 0..ow.div_ceil(2) {
            let v: Vec<[[f64; 4]; 4]> = (0..ci)
                .map(|c| {
                    let d: [[f64; 4]; 4] = std::array::from_fn(|r| {
                        std::array::from_fn(|k| {
                            at(c, (2 * ty + r) as isize - pad.top as isize, (2 * tx + k) as isize - pad.left as isize)
                        })
                    });
                    abs_sandwich(&BT, &d)
                })
                .collect();
            for o in 0..co {
                for i in 0..2 {
                    for j in 0..2 {
                        let (y, xx) = (2 * ty + i, 2 * tx + j);
                        if y >= oh || xx >= ow {
                            continue;
                        }
                        let mut s = 0.0;
                        for (c, vc) in v.iter().enumerate() {
                            let uc = &u[o * ci + c];
                            for xi in 0..4 {
                                for nu in 0..4 {
                                    s += (AT[i][xi] * AT[j][nu]).abs() * uc[xi][nu] * vc[xi][nu];
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

#[derive(Clone, Copy, Debug)]
struct Case {
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
    let Case { ci, co, h, w, pad, residual, act } = case;
    let geom = ConvGeometry::new(3, 3, 1, pad);
    let din = Dims::new(ci, h, w);
    let Some((oh, ow)) = geom.output_hw(h, w) else { return (0.0, 0, 0.0) };
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh: 3, kw: 3 };
    let (x, wt, bias, res) = (rng.vec(din.volume()), rng.vec(co * ci * 9), rng.vec(co), rng.vec(dout.volume()));

    let want = reference_conv(&x, din, &wt, Some(&bias), &geom, residual.then_some(&res[..]), act, dout);
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let (xa, wa, ba, ra) = (abs(&x), abs(&wt), abs(&bias), abs(&res));
    let direct_mag = reference_conv(&xa, din, &wa, None, &geom, None, Activation::None, dout);
    let wino_mag = winograd_magnitude(&x, din, &wt, co, pad, oh, ow);

    let blk = Layout::Nchw16c;
    let mut packed = Vec::new();
    pack_winograd_weights(&wt, shape, &mut packed);
    let mut pbias = Vec::new();
    pack_bias(&bias, &mut pbias);
    let xin = to_layout(&x, din, blk);
    let rin = to_layout(&res, dout, blk);
    let mut scratch = vec![f32::NAN; winograd_scratch_len(din, &geom, par.threads())];
    let out = &write_between_sentinels(dout, blk, &case, |out| {
        conv2d_winograd_par(
            kernels,
            Image::new(&xin, din, blk),
            &PackedConv { shape, weights: &packed, bias: &pbias },
            &geom,
            residual.then(|| Image::new(&rin, dout, blk)),
            act,
            out,
            &mut scratch,
            par,
        )
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
                let tol = gamma(ci + 9) * wm + gamma(9 * ci + 2) * dm + f32::MIN_POSITIVE as f64;
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

fn sweep(kernels: &Kernels, par: &dyn ParallelFor) {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let (mut cases, mut ratios) = (0, (0.0, 0, 0f64));
    let mut add = |r: (f64, usize, f64)| ratios = (ratios.0 + r.0, ratios.1 + r.1, ratios.2.max(r.2));
    let channels = [(1, 1), (3, 17), (17, 40), (40, 3), (16, 16), (40, 72)];
    for (k, pad) in paddings().into_iter().enumerate() {
        for h in 1..=20 {
            // Every height, with a width that cycles through odd and even sizes.
            for w in [h, (h * 7 + k) % 20 + 1] {
                let (ci, co) = channels[(h + w + k) % channels.len()];
                let residual = (h + k) % 2 == 0;
                let act = if (w + k) % 3 == 0 { Activation::None } else { Activation::Relu };
                add(check(kernels, Case { ci, co, h, w, pad, residual, act }, &mut rng, par));
                cases += 1;
            }
        }
    }
    // Every channel pair on a few sizes, including a map wider than one chunk.
    for &(ci, co) in &channels {
        for &(h, w) in &[(1, 1), (2, 2), (7, 7), (8, 9), (19, 20)] {
            let pad = Padding::uniform(1);
            let case = Case { ci, co, h, w, pad, residual: true, act: Activation::Relu };
            add(check(kernels, case, &mut rng, par));
            cases += 1;
        }
    }
    assert!(cases > 180);
    let (name, mean) = (kernels.conv_name(), ratios.0 / ratios.1 as f64);
    eprintln!("{name}: {cases} cases, mean W / D {mean:.2}, largest error / tolerance {:.3}", ratios.2);
}

#[test]
fn every_available_tier_matches_the_reference() {
    let tiers = Tier::available();
    assert!(tiers.contains(&Tier::Scalar));
    for tier in tiers {
        let kernels = Kernels::new(tier).unwrap();
        let before = tier_calls(tier);
        sweep(&kernels, &Sequential);
        assert!(tier_calls(tier) > before, "{tier:?} did not run");
    }
}

#[test]
fn chunks_spread_over_threads_match_the_reference() {
    sweep(&Kernels::new(Tier::best()).unwrap(), &ThreeThreads);
}

/// A larger map, many chunks, with the channel counts of the models.
#[test]
fn a_model_sized_layer_matches_the_reference() {
    let mut rng = Rng(7);
    let kernels = Kernels::new(Tier::best()).unwrap();
    let case = Case { ci: 64, co: 96, h: 35, w: 35, pad: Padding::uniform(1), residual: false, act: Activation::Relu };
    check(&kernels, case, &mut rng, &Sequential);
    check(&kernels, case, &mut rng, &ThreeThreads);
}
