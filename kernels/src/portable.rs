//! The portable tier: the same tiles as the SIMD tiers in plain Rust, each block's
//! 16 lanes an array the compiler may vectorise for the baseline target.

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
    peak: fma_loop,
    peak_flops: PEAK_FLOPS,
};

shared_bodies!();

/// Up to 2 output blocks x 4 pixels: 128 accumulators, what the baseline
/// target's 16 SSE registers can roughly hold in 4-lane pieces.
pub(crate) const CONV: ConvMicrokernel =
    ConvMicrokernel { name: "conv_nchw16c_32oc_x4px__scalar", max_px: [0, 4, 4, 0, 0], tile: conv_tile };

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
unsafe fn tile<const OB: usize, const PX: usize>(a: &TileArgs) {
    let n = a.ci_blocks * a.kh * a.kw;
    // SAFETY: every offset below is one the TileArgs contract promises is in bounds.
    unsafe {
        let mut taps = Taps::new(a);
        for t0 in (a.taps.0..a.taps.1).step_by(a.chunk) {
            let t1 = (t0 + a.chunk).min(a.taps.1);
            let mut acc = [[[0f32; BLOCK]; PX]; OB];
            for (inp, w, whole) in taps.by_ref().take(t1 - t0) {
                for i in 0..if whole { BLOCK } else { a.ci_tail } {
                    for (b, acc_b) in acc.iter_mut().enumerate() {
                        let wrow = &*(w.add(b * a.w_block + i * BLOCK) as *const [f32; BLOCK]);
                        for (p, acc_bp) in acc_b.iter_mut().enumerate() {
                            let x = *inp.add(p * a.in_pixel + i);
                            for l in 0..BLOCK {
                                acc_bp[l] += x * wrow[l];
                            }
                        }
                    }
                }
            }
            // Add the chunk to the partial sums (the bias for the first chunk); after
            // the last, the residual and the activation.
            let (first, last) = (t0 == 0, t1 == n);
            for (b, acc_b) in acc.iter().enumerate() {
                for (p, acc_bp) in acc_b.iter().enumerate() {
                    let off = b * a.out_block + p * BLOCK;
                    for (l, &v) in acc_bp.iter().enumerate() {
                        let mut v = v + if first { *a.bias.add(b * BLOCK + l) } else { *a.output.add(off + l) };
                        if last {
                            if !a.residual.is_null() {
                                v += *a.residual.add(off + l);
                            }
                            if a.relu {
                                v = v.max(0.0);
                            }
                        }
                        *a.output.add(off + l) = v;
                    }
                }
            }
        }
    }
}

/// Portable: 16 independent 16-lane accumulators, left to the compiler.
unsafe fn fma_loop(iters: u64) -> f32 {
    let mut acc = [[1.0f32; 16]; 16];
    let (a, b) = (std::hint::black_box([0.999f32; 16]), std::hint::black_box([1e-3f32; 16]));
    for _ in 0..iters {
        for r in acc.iter_mut() {
            for l in 0..16 {
                r[l] = r[l] * a[l] + b[l];
            }
        }
    }
    acc.iter().flatten().sum()
}

/// FLOPs per iteration of [`fma_loop`].
const PEAK_FLOPS: u64 = 2 * 16 * 16;
