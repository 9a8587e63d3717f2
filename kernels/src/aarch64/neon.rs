//! NEON microkernels. A 16-channel block is four 128-bit q registers.

// The tiles index accumulators by (block, pixel, quarter) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;

use super::match_px;
use crate::layout::BLOCK;
use crate::microkernel::{ConvMicrokernel, Taps, TileArgs, TileSums};
use crate::ops::{TierOps, shared_bodies};

/// q registers (4 lanes each) per 16-channel block.
const Q: usize = BLOCK / 4;

/// The NEON tier's kernels.
pub(crate) const OPS: TierOps = TierOps {
    available: || std::arch::is_aarch64_feature_detected!("neon"),
    conv: CONV,
    pool,
    gap,
    linear,
    winograd_input,
    winograd_output,
    image_stage,
    image_rows: &[],
    peak: fma_loop,
    peak_flops: PEAK_FLOPS,
};

shared_bodies!("neon");

/// 1 output block (16 channels, 4 q registers) x 5 pixels: 20 accumulators of the
/// 32 q registers. Each pixel's input is loaded four lanes at a time (5 registers)
/// and every lane multiplies its weight row (4 registers) through `fmla` by element
/// (`vfmaq_laneq_f32`): 20 + 5 + 4 = 29 live registers, no spills. Per 4 input lanes:
/// 16 weight loads (8 `ldp`) and 5 input loads feed 80 FMAs, 3.8 FMAs a load, where a
/// per-lane broadcast gives 2.4 (1 block x 6 pixels: 4 weight + 6 scalar loads per
/// 24 FMAs), which matters on in-order cores (Cortex-A53/A55) that issue loads and
/// FMAs from the same two slots. Six pixels with lane loads would need 24 + 6 + 4 = 34
/// registers (LLVM spills them); two blocks x 3 pixels 24 + 3 + 8 = 35. 20 independent
/// accumulators also cover the 4-cycle FMA latency of two (Neoverse N1) or four
/// (Neoverse V1, Apple) FMA pipes.
pub(crate) const CONV: ConvMicrokernel = ConvMicrokernel {
    name: "conv_nchw16c_16oc_x5px__neon",
    max_px: [0, 5, 0, 0, 0],
    hand_scheduled: None,
    min_lane_cost: 0,
    tile: conv_tile,
    row: None,
    raster: None,
};

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`], on a CPU with NEON.
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract; `px` is within `CONV.max_px[ob]`.
    unsafe {
        match ob {
            1 => match_px!(tile, 1, a, px, [1, 2, 3, 4, 5]),
            _ => unreachable!("{ob} output blocks exceed 1"),
        }
    }
}

/// # Safety
/// The [`TileArgs`] contract for an `OB x PX` tile, on a CPU with NEON.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn tile<const OB: usize, const PX: usize>(a: &TileArgs) {
    let n = a.ci_blocks * a.kh * a.kw;
    // SAFETY: every pointer offset below is one the TileArgs contract keeps in bounds
    // (input lanes i0..i0+4 and weight rows i0..i0+4 with i0 + 4 <= BLOCK); unaligned
    // loads and stores have no alignment requirement.
    unsafe {
        let mut taps = Taps::new(a);
        for t0 in (a.taps.0..a.taps.1).step_by(a.chunk) {
            let t1 = (t0 + a.chunk).min(a.taps.1);
            let mut acc = [[[vdupq_n_f32(0.0); Q]; PX]; OB];
            acc.iter_mut().flatten().flatten().for_each(|v| *v = zero());
            for (inp, w, whole) in taps.by_ref().take(t1 - t0) {
                let mut quad = |g: usize| {
                    // Four input lanes of each pixel in one register; each lane
                    // then multiplies its weight row through fmla by element.
                    let i0 = 4 * g;
                    let mut x = [vdupq_n_f32(0.0); PX];
                    for (p, x) in x.iter_mut().enumerate() {
                        *x = vld1q_f32(inp.add(p * a.in_pixel + i0));
                    }
                    lane::<OB, PX, 0>(&mut acc, &x, w.add(i0 * BLOCK), a.w_block);
                    lane::<OB, PX, 1>(&mut acc, &x, w.add((i0 + 1) * BLOCK), a.w_block);
                    lane::<OB, PX, 2>(&mut acc, &x, w.add((i0 + 2) * BLOCK), a.w_block);
                    lane::<OB, PX, 3>(&mut acc, &x, w.add((i0 + 3) * BLOCK), a.w_block);
                };
                // A constant trip count for whole blocks, so the loop unrolls; the
                // last block stops after the group of four holding its last real
                // lane (the lanes read past it hold zeros).
                if whole {
                    (0..BLOCK / 4).for_each(&mut quad);
                } else {
                    (0..a.ci_tail.div_ceil(4)).for_each(&mut quad);
                }
            }
            store(a.into(), &acc, t0 == 0, t1 == n);
        }
    }
}

/// A zero register that LLVM cannot tell apart from the other zeros: starting
/// every accumulator from the one constant zero makes LLVM copy and spill the
/// accumulators in the FMA loop (as it did on x86-64; see `avx512::zero`).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn zero() -> float32x4_t {
    let z;
    // SAFETY: writes one register and nothing else. Deliberately not `pure`, so
    // that each call stays a separate value.
    unsafe { std::arch::asm!("movi {0:v}.16b, #0", out(vreg) z, options(nomem, nostack, preserves_flags)) };
    z
}

/// Adds a chunk's accumulators to the tile's partial sums (the bias for the first
/// chunk); after the last chunk, adds the residual and applies the activation.
///
/// # Safety
/// The tile contract's bounds (float32 [`TileArgs`] or BF16) for an `OB x PX`
/// tile, on a CPU with NEON.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) unsafe fn store<const OB: usize, const PX: usize>(
    a: TileSums,
    acc: &[[[float32x4_t; Q]; PX]; OB],
    first: bool,
    last: bool,
) {
    // SAFETY: the offsets stay inside the tile's blocks and pixels.
    unsafe {
        for (b, acc_b) in acc.iter().enumerate() {
            for (p, v) in acc_b.iter().enumerate() {
                for (q, &v) in v.iter().enumerate() {
                    let off = b * a.out_block + p * BLOCK + q * 4;
                    let sum = if first { a.bias.add(b * BLOCK + q * 4) } else { a.output.add(off).cast_const() };
                    let mut v = vaddq_f32(v, vld1q_f32(sum));
                    if last {
                        if !a.residual.is_null() {
                            v = vaddq_f32(v, vld1q_f32(a.residual.add(off)));
                        }
                        if a.relu {
                            v = vmaxq_f32(v, vdupq_n_f32(0.0));
                        }
                    }
                    vst1q_f32(a.output.add(off), v);
                }
            }
        }
    }
}

/// Accumulates input lane `L` of every pixel's `x` times weight row `w` (16 output
/// channels of each of the `OB` blocks, `w_block` apart).
///
/// # Safety
/// `w + b * w_block .. + BLOCK` readable for every `b < OB`, on a CPU with NEON.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn lane<const OB: usize, const PX: usize, const L: i32>(
    acc: &mut [[[float32x4_t; Q]; PX]; OB],
    x: &[float32x4_t; PX],
    w: *const f32,
    w_block: usize,
) {
    // SAFETY: the caller's contract covers these reads.
    unsafe {
        for b in 0..OB {
            let row = w.add(b * w_block);
            let wv = [vld1q_f32(row), vld1q_f32(row.add(4)), vld1q_f32(row.add(8)), vld1q_f32(row.add(12))];
            for p in 0..PX {
                for q in 0..Q {
                    acc[b][p][q] = vfmaq_laneq_f32::<L>(acc[b][p][q], wv[q], x[p]);
                }
            }
        }
    }
}

/// 16 q accumulators: two to four FMA pipes x 4 cycles of latency need at most 16
/// in flight.
#[target_feature(enable = "neon")]
unsafe fn fma_loop(iters: u64) -> f32 {
    // Opaque constants, so the compiler cannot reason about the recurrence.
    let a = vdupq_n_f32(std::hint::black_box(0.999));
    let b = vdupq_n_f32(std::hint::black_box(1e-3));
    let mut acc = [vdupq_n_f32(1.0); 16];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = vfmaq_f32(b, *r, a);
        }
    }
    let mut s = vdupq_n_f32(0.0);
    for r in acc {
        s = vaddq_f32(s, r);
    }
    vaddvq_f32(s)
}

/// FLOPs per iteration of [`fma_loop`].
const PEAK_FLOPS: u64 = 2 * 4 * 16;
