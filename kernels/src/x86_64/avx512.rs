//! AVX-512F microkernels. One zmm register holds one 16-channel block.

// The tiles index accumulators by (block, pixel) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::match_px;
use crate::BLOCK;
use crate::conv::{ConvMicrokernel, TileArgs};

/// 4 output blocks (64 channels) x 6 pixels: 24 zmm accumulators, 4 for the
/// weight rows, the broadcast input folds into the FMA. Per input lane: 4 loads and
/// 6 broadcasts feed 24 FMAs, within the two load ports' budget at 2 FMAs a cycle.
pub(crate) const CONV: ConvMicrokernel =
    ConvMicrokernel { name: "conv_nchw16c_64oc_x6px__avx512f", ob_max: OB_MAX, px_max: PX_MAX, tile: conv_tile };

const OB_MAX: usize = 4;
const PX_MAX: usize = 6;

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`], on a CPU with AVX-512F.
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract.
    unsafe {
        match ob {
            1 => by_px::<1>(a, px),
            2 => by_px::<2>(a, px),
            3 => by_px::<3>(a, px),
            4 => by_px::<4>(a, px),
            _ => unreachable!("{ob} output blocks exceed {OB_MAX}"),
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn by_px<const OB: usize>(a: &TileArgs, px: usize) {
    // SAFETY: forwarded contract.
    unsafe { match_px!(tile, OB, a, px, [1, 2, 3, 4, 5, 6]) }
}

/// # Safety
/// The [`TileArgs`] contract for an `OB x PX` tile, on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const OB: usize, const PX: usize>(a: &TileArgs) {
    // SAFETY: every pointer offset below is one the TileArgs contract keeps in bounds;
    // unaligned loads and stores have no alignment requirement.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); PX]; OB];
        for (b, acc_b) in acc.iter_mut().enumerate() {
            let bias = _mm512_loadu_ps(a.bias.add(b * BLOCK));
            acc_b.iter_mut().for_each(|v| *v = bias);
        }
        for ib in 0..a.ci_blocks {
            for ky in 0..a.kh {
                for kx in 0..a.kw {
                    let inp = a.input.add(ib * a.in_block + ky * a.in_row + kx * BLOCK);
                    let w = a.weights.add(((ib * a.kh + ky) * a.kw + kx) * BLOCK * BLOCK);
                    for i in 0..BLOCK {
                        let mut wv = [_mm512_setzero_ps(); OB];
                        for (b, v) in wv.iter_mut().enumerate() {
                            *v = _mm512_loadu_ps(w.add(b * a.w_block + i * BLOCK));
                        }
                        for p in 0..PX {
                            let x = _mm512_set1_ps(*inp.add(p * a.in_pixel + i));
                            for b in 0..OB {
                                acc[b][p] = _mm512_fmadd_ps(x, wv[b], acc[b][p]);
                            }
                        }
                    }
                }
            }
        }
        let zero = _mm512_setzero_ps();
        for (b, acc_b) in acc.iter().enumerate() {
            for (p, &v) in acc_b.iter().enumerate() {
                let off = b * a.out_block + p * BLOCK;
                let mut v = v;
                if !a.residual.is_null() {
                    v = _mm512_add_ps(v, _mm512_loadu_ps(a.residual.add(off)));
                }
                if a.relu {
                    v = _mm512_max_ps(v, zero);
                }
                _mm512_storeu_ps(a.output.add(off), v);
            }
        }
    }
}
