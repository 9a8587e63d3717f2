//! AVX2 + FMA microkernels. A 16-channel block is two ymm registers.

// The tiles index accumulators by (block, pixel) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::match_px;
use crate::BLOCK;
use crate::conv::{ConvMicrokernel, TileArgs};

/// 1 output block (16 channels, 2 ymm) x 6 pixels: 12 ymm accumulators, 2 for the
/// weight row, 1 for the broadcast input: the 6x16 tile of MLAS and XNNPACK.
pub(crate) const CONV: ConvMicrokernel =
    ConvMicrokernel { name: "conv_nchw16c_16oc_x6px__avx2_fma", max_px: [0, 6, 0, 0, 0], tile: conv_tile };

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`], on a CPU with AVX2 and FMA.
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract.
    unsafe {
        match ob {
            1 => by_px::<1>(a, px),
            _ => unreachable!("{ob} output blocks exceed 1"),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn by_px<const OB: usize>(a: &TileArgs, px: usize) {
    // SAFETY: forwarded contract.
    unsafe { match_px!(tile, OB, a, px, [1, 2, 3, 4, 5, 6]) }
}

/// # Safety
/// The [`TileArgs`] contract for an `OB x PX` tile, on a CPU with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const OB: usize, const PX: usize>(a: &TileArgs) {
    // SAFETY: every pointer offset below is one the TileArgs contract keeps in bounds;
    // unaligned loads and stores have no alignment requirement.
    unsafe {
        let mut acc = [[[_mm256_setzero_ps(); 2]; PX]; OB];
        for (b, acc_b) in acc.iter_mut().enumerate() {
            let lo = _mm256_loadu_ps(a.bias.add(b * BLOCK));
            let hi = _mm256_loadu_ps(a.bias.add(b * BLOCK + 8));
            acc_b.iter_mut().for_each(|v| *v = [lo, hi]);
        }
        for ib in 0..a.ci_blocks {
            for ky in 0..a.kh {
                for kx in 0..a.kw {
                    let inp = a.input.add(ib * a.in_block + ky * a.in_row + kx * BLOCK);
                    let w = a.weights.add(((ib * a.kh + ky) * a.kw + kx) * BLOCK * BLOCK);
                    let mut lane = |i: usize| {
                        let mut wv = [[_mm256_setzero_ps(); 2]; OB];
                        for (b, v) in wv.iter_mut().enumerate() {
                            let row = w.add(b * a.w_block + i * BLOCK);
                            *v = [_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))];
                        }
                        for p in 0..PX {
                            let x = _mm256_broadcast_ss(&*inp.add(p * a.in_pixel + i));
                            for b in 0..OB {
                                acc[b][p][0] = _mm256_fmadd_ps(x, wv[b][0], acc[b][p][0]);
                                acc[b][p][1] = _mm256_fmadd_ps(x, wv[b][1], acc[b][p][1]);
                            }
                        }
                    };
                    // A constant trip count for whole blocks, so the lane loop unrolls.
                    if ib + 1 < a.ci_blocks || a.ci_tail == BLOCK {
                        (0..BLOCK).for_each(&mut lane);
                    } else {
                        (0..a.ci_tail).for_each(&mut lane);
                    }
                }
            }
        }
        let zero = _mm256_setzero_ps();
        for (b, acc_b) in acc.iter().enumerate() {
            for (p, v) in acc_b.iter().enumerate() {
                for (h, &v) in v.iter().enumerate() {
                    let off = b * a.out_block + p * BLOCK + h * 8;
                    let mut v = v;
                    if !a.residual.is_null() {
                        v = _mm256_add_ps(v, _mm256_loadu_ps(a.residual.add(off)));
                    }
                    if a.relu {
                        v = _mm256_max_ps(v, zero);
                    }
                    _mm256_storeu_ps(a.output.add(off), v);
                }
            }
        }
    }
}
