//! AVX-512F microkernels. One zmm register holds one 16-channel block.

// The tiles index accumulators by (block, pixel) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{match_px, prefetch_next_output, prefetch_next_tile, prefetch_weights, weight_lines_per_tap};
use crate::layout::BLOCK;
use crate::microkernel::{ConvMicrokernel, Taps, TileArgs};
use crate::ops::{TierOps, shared_bodies};

/// The AVX-512F tier's kernels.
pub(crate) const OPS: TierOps = TierOps {
    available: || is_x86_feature_detected!("avx512f"),
    conv: CONV,
    pool,
    gap,
    linear,
    winograd_input,
    winograd_output,
    peak: fma_loop,
    peak_flops: PEAK_FLOPS,
};

shared_bodies!("avx512f");

/// Up to 4 output blocks (64 channels) x 6 pixels, 3 x 9, 2 x 14 or 1 x 16: at most
/// 28 zmm accumulators plus one register per weight row, of 32. Per input lane a
/// 4 x 6 tile issues 4 weight loads and 6 broadcasts for 24 FMAs, within the two
/// load ports' budget at two FMAs a cycle; narrower layers (32 output channels) and
/// short rows (8x8 maps) get the other shapes.
pub(crate) const CONV: ConvMicrokernel =
    ConvMicrokernel { name: "conv_nchw16c_64oc_x6px__avx512f", max_px: [0, 16, 14, 9, 6], tile: conv_tile };

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`], on a CPU with AVX-512F.
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract; `px` is within `CONV.max_px[ob]`.
    unsafe {
        match ob {
            1 => match_px!(tile, 1, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
            2 => match_px!(tile, 2, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
            3 => match_px!(tile, 3, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
            4 => match_px!(tile, 4, a, px, [1, 2, 3, 4, 5, 6]),
            _ => unreachable!("{ob} output blocks exceed 4"),
        }
    }
}

/// # Safety
/// The [`TileArgs`] contract for an `OB x PX` tile, on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
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
            let mut acc = [[_mm512_setzero_ps(); PX]; OB];
            acc.iter_mut().flatten().for_each(|v| *v = zero());
            for (t, (inp, w, whole)) in (t0..t1).zip(taps.by_ref()) {
                prefetch_next_tile::<PX>(a, inp);
                prefetch_weights(a, t, per);
                let mut lane = |i: usize| {
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
                };
                // A constant trip count for whole blocks, so the lane loop unrolls.
                if whole {
                    (0..BLOCK).for_each(&mut lane);
                } else {
                    (0..a.ci_tail).for_each(&mut lane);
                }
            }
            store(a.into(), &acc, t0 == 0, t1 == n);
        }
    }
}

/// A zero register that LLVM cannot tell apart from the other zeros: starting
/// every accumulator from the one constant zero makes it copy and spill the
/// accumulators of the big tiles in the FMA loop. Costs nothing: a zeroing idiom.
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn zero() -> __m512 {
    let z;
    // SAFETY: writes one register and nothing else. Deliberately not `pure`, so
    // that each call stays a separate value.
    unsafe { std::arch::asm!("vpxord {0}, {0}, {0}", out(zmm_reg) z, options(nomem, nostack, preserves_flags)) };
    z
}

/// Where a tile's chunk sums go: the output (and its block stride), the bias the
/// first chunk adds, the residual and ReLU the last one applies. The float32 and
/// BF16 AVX-512 tiles share it.
#[derive(Clone, Copy)]
pub(crate) struct TileSums {
    pub output: *mut f32,
    pub out_block: usize,
    pub bias: *const f32,
    pub residual: *const f32,
    pub relu: bool,
}

impl From<&TileArgs> for TileSums {
    #[inline]
    fn from(a: &TileArgs) -> Self {
        TileSums { output: a.output, out_block: a.out_block, bias: a.bias, residual: a.residual, relu: a.relu }
    }
}

/// Adds a chunk's accumulators to the tile's partial sums (the bias for the first
/// chunk); after the last chunk, adds the residual and applies the activation.
///
/// # Safety
/// `a`'s pointers are valid for an `OB x PX` tile (blocks `out_block` apart, pixels
/// `BLOCK` apart), on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn store<const OB: usize, const PX: usize>(
    a: TileSums,
    acc: &[[__m512; PX]; OB],
    first: bool,
    last: bool,
) {
    // SAFETY: the offsets stay inside the tile's blocks and pixels.
    unsafe {
        for (b, acc_b) in acc.iter().enumerate() {
            for (p, &v) in acc_b.iter().enumerate() {
                let off = b * a.out_block + p * BLOCK;
                let sum = if first { a.bias.add(b * BLOCK) } else { a.output.add(off).cast_const() };
                let mut v = _mm512_add_ps(v, _mm512_loadu_ps(sum));
                if last {
                    if !a.residual.is_null() {
                        v = _mm512_add_ps(v, _mm512_loadu_ps(a.residual.add(off)));
                    }
                    if a.relu {
                        v = _mm512_max_ps(v, _mm512_setzero_ps());
                    }
                }
                _mm512_storeu_ps(a.output.add(off), v);
            }
        }
    }
}

/// 16 zmm accumulators.
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop(iters: u64) -> f32 {
    let a = _mm512_set1_ps(std::hint::black_box(0.999));
    let b = _mm512_set1_ps(std::hint::black_box(1e-3));
    let mut acc = [_mm512_set1_ps(1.0); 16];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}

/// FLOPs per iteration of [`fma_loop`].
const PEAK_FLOPS: u64 = 2 * 16 * 16;
