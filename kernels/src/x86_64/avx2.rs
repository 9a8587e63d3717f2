//! AVX2 + FMA microkernels. A 16-channel block is two ymm registers.

// The tiles index accumulators by (block, pixel) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{match_px, prefetch_next_output, prefetch_next_tile, prefetch_weights, weight_lines_per_tap};
use crate::layout::BLOCK;
use crate::microkernel::{ConvMicrokernel, Taps, TileArgs};
use crate::ops::{TierOps, shared_bodies};

/// The AVX2 + FMA tier's kernels.
pub(crate) const OPS: TierOps = TierOps {
    available: || is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
    conv: CONV,
    pool,
    gap,
    linear,
    winograd_input,
    winograd_output,
    peak: fma_loop,
    peak_flops: PEAK_FLOPS,
};

shared_bodies!("avx2,fma");

/// 1 output block (16 channels, 2 ymm) x 6 pixels: 12 ymm accumulators, 2 for the
/// weight row, 1 for the broadcast input: the 6x16 tile of MLAS and XNNPACK.
pub(crate) const CONV: ConvMicrokernel = ConvMicrokernel {
    name: "conv_nchw16c_16oc_x6px__avx2_fma",
    max_px: [0, 6, 0, 0, 0],
    hand_scheduled: None,
    tile: conv_tile,
};

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
    let n = a.ci_blocks * a.kh * a.kw;
    // SAFETY: every pointer offset below is one the TileArgs contract keeps in bounds;
    // unaligned loads and stores have no alignment requirement.
    unsafe {
        let mut taps = Taps::new(a);
        prefetch_next_output::<OB, PX>(a);
        let per = weight_lines_per_tap(a);
        for t0 in (a.taps.0..a.taps.1).step_by(a.chunk) {
            let t1 = (t0 + a.chunk).min(a.taps.1);
            let mut acc = [[[_mm256_setzero_ps(); 2]; PX]; OB];
            acc.iter_mut().flatten().flatten().for_each(|v| *v = zero());
            for (t, (inp, w, whole)) in (t0..t1).zip(taps.by_ref()) {
                prefetch_next_tile::<PX>(a, inp);
                prefetch_weights(a, t, per);
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
                if whole {
                    (0..BLOCK).for_each(&mut lane);
                } else {
                    (0..a.ci_tail).for_each(&mut lane);
                }
            }
            store(a, &acc, t0 == 0, t1 == n);
        }
    }
}

/// A zero register that LLVM cannot tell apart from the other zeros (see
/// `avx512::zero`: one shared constant zero makes it copy and spill accumulators).
#[target_feature(enable = "avx2")]
#[inline]
fn zero() -> __m256 {
    let z;
    // SAFETY: writes one register and nothing else. Deliberately not `pure`, so
    // that each call stays a separate value.
    unsafe { std::arch::asm!("vxorps {0}, {0}, {0}", out(ymm_reg) z, options(nomem, nostack, preserves_flags)) };
    z
}

/// Adds a chunk's accumulators to the tile's partial sums (the bias for the first
/// chunk); after the last chunk, adds the residual and applies the activation.
///
/// # Safety
/// The [`TileArgs`] contract for an `OB x PX` tile, on a CPU with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store<const OB: usize, const PX: usize>(
    a: &TileArgs,
    acc: &[[[__m256; 2]; PX]; OB],
    first: bool,
    last: bool,
) {
    // SAFETY: the offsets stay inside the tile's blocks and pixels.
    unsafe {
        for (b, acc_b) in acc.iter().enumerate() {
            for (p, v) in acc_b.iter().enumerate() {
                for (h, &v) in v.iter().enumerate() {
                    let off = b * a.out_block + p * BLOCK + h * 8;
                    let sum = if first { a.bias.add(b * BLOCK + h * 8) } else { a.output.add(off).cast_const() };
                    let mut v = _mm256_add_ps(v, _mm256_loadu_ps(sum));
                    if last {
                        if !a.residual.is_null() {
                            v = _mm256_add_ps(v, _mm256_loadu_ps(a.residual.add(off)));
                        }
                        if a.relu {
                            v = _mm256_max_ps(v, _mm256_setzero_ps());
                        }
                    }
                    _mm256_storeu_ps(a.output.add(off), v);
                }
            }
        }
    }
}

/// 14 ymm accumulators (2 more registers hold the operands): 2 FMA ports x 4-5
/// cycles of latency need at least 10 in flight.
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop(iters: u64) -> f32 {
    // Opaque constants, so the compiler cannot reason about the recurrence.
    let a = _mm256_set1_ps(std::hint::black_box(0.999));
    let b = _mm256_set1_ps(std::hint::black_box(1e-3));
    let mut acc = [_mm256_set1_ps(1.0); 14];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm256_setzero_ps();
    for r in acc {
        s = _mm256_add_ps(s, r);
    }
    let mut out = [0f32; 8];
    // SAFETY: `out` holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}

/// FLOPs per iteration of [`fma_loop`].
const PEAK_FLOPS: u64 = 2 * 8 * 14;
