//! The NEON BF16 tier (AArch64 FEAT_BF16: Arm Neoverse V1/V2/N2, Apple M2 and
//! later, Cortex-A510/A710 and later): `BFDOT` adds two BF16 products to each of
//! 4 float32 lanes, twice the multiplies of an FP32 `FMLA` per instruction.
//!
//! One q register of the packed weights ([`crate::bf16::pack`]) holds pair `j` of
//! 4 output channels, one q register of input pair `j` and three more of a pixel;
//! `BFDOT Vd.4S, Vn.8H, Vm.2H[j % 4]` (by element) multiplies the weights by the
//! input's pair `j` for each of the 4 lanes. Rust's BF16 intrinsics are unstable:
//! the instructions are written in `asm!`.
//!
//! The sums keep the contract's chunks and the order of the taps and pairs, but
//! not `VDPBF16PS`'s rounding: without FEAT_EBF16 (or with `FPCR.EBF` clear, as
//! Linux leaves it) the Arm ARM's `BFDotAdd` adds a pair's two products into one
//! float32 value, then that to the accumulator, each addition rounded to odd, with
//! subnormal operands and results flushed to zero. So the tier's sums are within
//! float32 rounding of the contract's order, not equal to it bit for bit.

// The tiles index accumulators by (block, pixel, quarter) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;
use std::arch::asm;

use super::convert::bf16;

use super::microkernel::{Bf16Microkernel, Bf16TileArgs};
use crate::BLOCK;
use crate::aarch64::match_px;
use crate::aarch64::neon::{store, zero};

/// q registers (4 float32 lanes, or 8 BF16 values) per 16-lane block.
const Q: usize = BLOCK / 4;

/// 1 output block (16 channels, 4 q accumulators) x up to 5 pixels: 20
/// accumulators, 5 input registers (4 pairs of a pixel each) and the weight
/// registers of 32 q registers, as the float32 NEON tile; six pixels would need
/// 24 + 6 + 4 = 34. Per 4 pairs of input lanes: 16 weight loads and 5 input loads
/// feed 80 `BFDOT`s.
pub(crate) const CONV: Bf16Microkernel = Bf16Microkernel {
    name: "conv_bf16_nchw16c_16oc_x5px__neon_bf16",
    max_px: [0, 5, 0, 0, 0],
    tile: conv_tile,
    // The first layer's image tile: its 3-channel rows give few pairs per tap,
    // the portable tile runs it (in the contract's order).
    image_tile: super::portable::CONV.image_tile,
    to_bf16,
};

/// `BFCVTN`, 8 values at a time: round to nearest even (the FPCR's mode, which
/// Linux leaves at its default) and NaNs made quiet, as `half` does; a subnormal
/// input may become a zero of its sign, which `BFDOT` reads as zero anyway.
///
/// # Safety
/// The CPU must have NEON and BF16.
#[target_feature(enable = "neon,bf16")]
unsafe fn to_bf16(src: &[f32], dst: &mut [bf16]) {
    assert_eq!(src.len(), dst.len(), "to_bf16: lengths differ");
    let whole = src.len() / 8 * 8;
    let (src, src_tail) = src.split_at(whole);
    let (dst, dst_tail) = dst.split_at_mut(whole);
    for (s, d) in src.chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
        // SAFETY: 8 values read from `s` and 8 written to `d`, both that long.
        unsafe { vst1q_u16(d.as_mut_ptr().cast(), to_bf16_x8(s.as_ptr())) };
    }
    super::convert::to_bf16_slice(src_tail, dst_tail);
}

/// The 8 float32 values at `src` rounded to BF16 (`BFCVTN`, `BFCVTN2`).
///
/// # Safety
/// 8 values readable at `src`; the CPU must have NEON and BF16.
#[target_feature(enable = "neon,bf16")]
#[inline]
unsafe fn to_bf16_x8(src: *const f32) -> uint16x8_t {
    // SAFETY: the caller's: 8 values at `src`.
    let (lo, hi) = unsafe { (vld1q_f32(src), vld1q_f32(src.add(4))) };
    let r;
    // SAFETY: register operations only; `out` keeps `r` apart from the inputs, so
    // the first instruction does not overwrite `hi`.
    unsafe {
        asm!(
            ".arch_extension bf16",
            "bfcvtn {r:v}.4h, {lo:v}.4s",
            "bfcvtn2 {r:v}.8h, {hi:v}.4s",
            r = out(vreg) r,
            lo = in(vreg) lo,
            hi = in(vreg) hi,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    r
}

/// `$name(acc, w, x)`: `BFDOT acc.4s, w.8h, x.2h[$lane]`: to each float32 lane `i`
/// of `acc`, the products of BF16 pair `i` of `w` with pair `$lane` of `x`.
macro_rules! bfdot_lane {
    ($name:ident, $lane:literal) => {
        #[target_feature(enable = "neon,bf16")]
        #[inline]
        fn $name(mut acc: float32x4_t, w: uint16x8_t, x: uint16x8_t) -> float32x4_t {
            // SAFETY: register operations only (the CPU's BF16 is the callers'
            // `target_feature`).
            unsafe {
                asm!(
                    ".arch_extension bf16",
                    concat!("bfdot {acc:v}.4s, {w:v}.8h, {x:v}.2h[", $lane, "]"),
                    acc = inout(vreg) acc,
                    w = in(vreg) w,
                    x = in(vreg) x,
                    options(pure, nomem, nostack, preserves_flags)
                )
            };
            acc
        }
    };
}

bfdot_lane!(bfdot0, 0);
bfdot_lane!(bfdot1, 1);
bfdot_lane!(bfdot2, 2);
bfdot_lane!(bfdot3, 3);

/// `BFDOT` by element `lane` (0..4) of `x`; a constant `lane` folds the match.
#[target_feature(enable = "neon,bf16")]
#[inline]
fn bfdot(acc: float32x4_t, w: uint16x8_t, x: uint16x8_t, lane: usize) -> float32x4_t {
    match lane {
        0 => bfdot0(acc, w, x),
        1 => bfdot1(acc, w, x),
        2 => bfdot2(acc, w, x),
        _ => bfdot3(acc, w, x),
    }
}

/// # Safety
/// The [`Bf16TileArgs`] contract of [`Bf16Microkernel::tile`], on a CPU with
/// NEON and BF16.
unsafe fn conv_tile(a: &Bf16TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract; `px` is within `CONV.max_px[ob]`.
    unsafe {
        match ob {
            1 => match_px!(tile, 1, a, px, [1, 2, 3, 4, 5]),
            _ => unreachable!("{ob} output blocks exceed 1"),
        }
    }
}

/// # Safety
/// The [`Bf16TileArgs`] contract for an `OB x PX` tile, on a CPU with NEON and
/// BF16.
#[target_feature(enable = "neon,bf16")]
#[inline]
unsafe fn tile<const OB: usize, const PX: usize>(a: &Bf16TileArgs) {
    let n = a.ci_blocks * a.kh * a.kw;
    let mut pos = (0, 0, 0);
    let mut staged = [[0u16; BLOCK]; PX];
    // SAFETY: every pointer offset below is one the Bf16TileArgs contract keeps in
    // bounds (a pixel's 16 lanes, BF16 or float32, and a tap's 8 pairs of weights
    // per block); unaligned loads and stores have no alignment requirement.
    unsafe {
        for t0 in (0..n).step_by(a.chunk) {
            let t1 = (t0 + a.chunk).min(n);
            let mut acc = [[[vdupq_n_f32(0.0); Q]; PX]; OB];
            acc.iter_mut().flatten().flatten().for_each(|v| *v = zero());
            for t in t0..t1 {
                // The tap's pairs: in the BF16 input, or rounded here from the
                // float32 input into `staged`, one pixel's 16 lanes at a time.
                let (inp, step) = if a.input_f32.is_null() {
                    (a.input.add(a.tap_offset(pos)).cast::<u16>(), a.in_pixel)
                } else {
                    let x = a.input_f32.add(a.tap_offset(pos));
                    for (p, s) in staged.iter_mut().enumerate() {
                        vst1q_u16(s.as_mut_ptr(), to_bf16_x8(x.add(p * a.in_pixel)));
                        vst1q_u16(s.as_mut_ptr().add(8), to_bf16_x8(x.add(p * a.in_pixel + 8)));
                    }
                    (staged.as_ptr().cast::<u16>(), BLOCK)
                };
                let w = a.weights.add(t * BLOCK * BLOCK).cast::<u16>();
                // Pairs 4g..4g + pairs of every pixel: one input register each.
                let mut group = |g: usize, pairs: usize| {
                    let mut x = [vdupq_n_u16(0); PX];
                    for (p, x) in x.iter_mut().enumerate() {
                        *x = vld1q_u16(inp.add(p * step + 8 * g));
                    }
                    for j in 0..pairs {
                        let wj = w.add((4 * g + j) * 2 * BLOCK);
                        for b in 0..OB {
                            for q in 0..Q {
                                let wv = vld1q_u16(wj.add(b * a.w_block + q * 8));
                                for p in 0..PX {
                                    acc[b][p][q] = bfdot(acc[b][p][q], wv, x[p], j);
                                }
                            }
                        }
                    }
                };
                // Constant trip counts for whole blocks, so the loops unroll; the
                // last block stops after its last real pair.
                let pairs = a.pairs(pos.0);
                if pairs == BLOCK / 2 {
                    group(0, 4);
                    group(1, 4);
                } else {
                    for g in 0..pairs.div_ceil(4) {
                        group(g, (pairs - 4 * g).min(4));
                    }
                }
                pos = a.next_tap(pos);
            }
            store(a.into(), &acc, t0 == 0, t1 == n);
        }
    }
}

/// `BFDOT` throughput: 16 independent accumulators (up to four SIMD pipes x a
/// latency of about four cycles), each adding two products per lane per
/// iteration.
///
/// # Safety
/// The CPU must have NEON and BF16.
#[target_feature(enable = "neon,bf16")]
pub(crate) unsafe fn bfdot_loop(iters: u64) -> f32 {
    // Opaque pairs of 1.0 and of about 1e-3, so the compiler cannot fold the loop.
    let a = vreinterpretq_u16_u32(vdupq_n_u32(std::hint::black_box(0x3f80_3f80)));
    let b = vreinterpretq_u16_u32(vdupq_n_u32(std::hint::black_box(0x3a83_3a83)));
    let mut acc = [vdupq_n_f32(1.0); 16];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = bfdot0(*r, a, b);
        }
    }
    let mut s = vdupq_n_f32(0.0);
    for r in acc {
        s = vaddq_f32(s, r);
    }
    vaddvq_f32(s)
}

/// FLOPs per iteration of [`bfdot_loop`]: 16 registers x 4 lanes x 2 products, a
/// multiply and an add each.
pub(crate) const BFDOT_LOOP_FLOPS: u64 = 16 * 4 * 2 * 2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bf16::{Bf16Tier, convert};

    /// The tier's conversion equals `half`'s on every value but subnormals, which
    /// it may make zeros of their sign.
    #[test]
    fn conversion_matches_half_but_may_flush_subnormals() {
        if !Bf16Tier::NeonBf16.is_available() {
            eprintln!("SKIPPED: this CPU cannot run the neonbf16 tier");
            return;
        }
        // SAFETY: the CPU runs the tier (checked above).
        unsafe { convert::check_tier_conversion(to_bf16, false) };
    }
}
