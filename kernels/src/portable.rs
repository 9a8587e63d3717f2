//! The portable tier: the same tiles as the ISA-specific tiers on the `wide` crate's
//! 16-lane vectors, which compile to the baseline target's SIMD (SSE2 on x86-64,
//! NEON on AArch64) on any CPU.

use wide::{f32x4, f32x16};

use crate::layout::BLOCK;
use crate::microkernel::{ConvMicrokernel, Taps, TileArgs};
use crate::ops::{TierOps, shared_bodies};

/// The portable tier's kernels: every CPU runs them.
pub(crate) const OPS: TierOps = TierOps {
    available: || true,
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

shared_bodies!();

/// Up to 2 output blocks x 4 pixels: 8 accumulators of 16 lanes, what the baseline
/// target's 16 vector registers can roughly hold in 4-lane pieces.
pub(crate) const CONV: ConvMicrokernel = ConvMicrokernel {
    name: "conv_nchw16c_32oc_x4px__portable",
    max_px: [0, 4, 4, 0, 0],
    hand_scheduled: None,
    min_lane_cost: 0,
    tile: conv_tile,
    row: None,
    raster: None,
};

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`].
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract; each instance reads and writes the same addresses.
    unsafe {
        match (ob, px) {
            (1, 1) => tile::<1, 1>(a),
            (1, 2) => tile::<1, 2>(a),
            (1, 3) => tile::<1, 3>(a),
            (1, 4) => tile::<1, 4>(a),
            (2, 1) => tile::<2, 1>(a),
            (2, 2) => tile::<2, 2>(a),
            (2, 3) => tile::<2, 3>(a),
            (2, 4) => tile::<2, 4>(a),
            _ => unreachable!("tile {ob}x{px} exceeds 2x4"),
        }
    }
}

/// # Safety
/// The [`TileArgs`] contract for an `OB x PX` tile.
#[inline]
unsafe fn tile<const OB: usize, const PX: usize>(a: &TileArgs) {
    let n = a.ci_blocks * a.kh * a.kw;
    // SAFETY: every offset below is one the TileArgs contract promises is in bounds.
    unsafe {
        let mut taps = Taps::new(a);
        for t0 in (a.taps.0..a.taps.1).step_by(a.chunk) {
            let t1 = (t0 + a.chunk).min(a.taps.1);
            let mut acc = [[f32x16::ZERO; PX]; OB];
            for (inp, w, whole) in taps.by_ref().take(t1 - t0) {
                for i in 0..if whole { BLOCK } else { a.ci_tail } {
                    for (b, acc_b) in acc.iter_mut().enumerate() {
                        let wrow = load(w.add(b * a.w_block + i * BLOCK));
                        for (p, acc_bp) in acc_b.iter_mut().enumerate() {
                            // A product rounded, then the sum: the order the contract
                            // replays for this tier (no FMA on the baseline target).
                            *acc_bp += f32x16::splat(*inp.add(p * a.in_pixel + i)) * wrow;
                        }
                    }
                }
            }
            // Add the chunk to the partial sums (the bias for the first chunk); after
            // the last, the residual and the activation.
            let (first, last) = (t0 == 0, t1 == n);
            for (b, acc_b) in acc.iter().enumerate() {
                for (p, &v) in acc_b.iter().enumerate() {
                    let off = b * a.out_block + p * BLOCK;
                    let sum = if first { a.bias.add(b * BLOCK) } else { a.output.add(off).cast_const() };
                    let mut v = v + load(sum);
                    if last {
                        if !a.residual.is_null() {
                            v += load(a.residual.add(off));
                        }
                        if a.relu {
                            v = v.max(f32x16::ZERO);
                        }
                    }
                    a.output.add(off).cast::<[f32; BLOCK]>().write(v.to_array());
                }
            }
        }
    }
}

/// The 16 lanes at `p`.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline(always)]
unsafe fn load(p: *const f32) -> f32x16 {
    // SAFETY: forwarded; `[f32; 16]` has the alignment of `f32`.
    f32x16::new(unsafe { p.cast::<[f32; BLOCK]>().read() })
}

/// 12 independent 4-lane accumulators (2 more registers hold the operands): a
/// multiply then an add each, as the tier's tiles compute, on the baseline
/// target's 16 vector registers.
unsafe fn fma_loop(iters: u64) -> f32 {
    // Opaque constants, so the compiler cannot reason about the recurrence.
    let a = f32x4::splat(std::hint::black_box(0.999));
    let b = f32x4::splat(std::hint::black_box(1e-3));
    let mut acc = [f32x4::splat(1.0); 12];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = *r * a + b;
        }
    }
    acc.iter().map(|r| r.reduce_add()).sum()
}

/// FLOPs per iteration of [`fma_loop`].
const PEAK_FLOPS: u64 = 2 * 4 * 12;
