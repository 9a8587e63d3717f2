//! The AVX512-BF16 tier: `VDPBF16PS` adds two BF16 products to each of 16 float32
//! lanes, twice the multiplies of an FP32 FMA per instruction.

// The tiles index accumulators by (block, pixel) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use super::convert::bf16;

use super::microkernel::{Bf16Microkernel, Bf16TileArgs};
use crate::BLOCK;
use crate::microkernel::TileSums;
use crate::x86_64::avx512::{store, store_tile, zero};
use crate::x86_64::match_px;

/// The float32 AVX-512 tile shapes: up to 4 output blocks x 6 pixels, 3 x 9, 2 x 14
/// or 1 x 16, at most 28 zmm accumulators plus one register per weight row. Per
/// pair of input lanes a 4 x 6 tile loads 4 weight rows and broadcasts 6 pairs for
/// 24 `VDPBF16PS`.
pub(crate) const CONV: Bf16Microkernel = Bf16Microkernel {
    name: "conv_bf16_nchw16c_64oc_x6px__avx512bf16",
    max_px: [0, 16, 14, 9, 6],
    tile: conv_tile,
    image_tile: conv_image_tile,
    to_bf16,
};

/// `VCVTNEPS2BF16`, 16 values at a time: round to nearest even and NaNs made quiet
/// as `half` does, but subnormal inputs become zeros of their sign, which
/// `VDPBF16PS` would read as zero anyway. Measured as a scalar loop, the
/// conversion took about as long as a 1x1 layer's arithmetic.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn to_bf16(src: &[f32], dst: &mut [bf16]) {
    assert_eq!(src.len(), dst.len(), "to_bf16: lengths differ");
    let whole = src.len() / 16 * 16;
    let (src, src_tail) = src.split_at(whole);
    let (dst, dst_tail) = dst.split_at_mut(whole);
    for (s, d) in src.chunks_exact(16).zip(dst.chunks_exact_mut(16)) {
        // SAFETY: 16 values read from `s` and 16 written to `d`, both that long.
        unsafe {
            let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(s.as_ptr()));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), std::mem::transmute::<__m256bh, __m256i>(v));
        }
    }
    super::convert::to_bf16_slice(src_tail, dst_tail);
}

/// # Safety
/// The [`Bf16TileArgs`] contract of [`Bf16Microkernel::tile`], on a CPU with
/// AVX-512F and AVX512-BF16.
unsafe fn conv_tile(a: &Bf16TileArgs, ob: usize, px: usize) {
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
/// The image tile contract of [`Bf16Microkernel::image_tile`], on a CPU with
/// AVX-512F and AVX512-BF16.
unsafe fn conv_image_tile(a: &Bf16TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract; `px` is within `CONV.max_px[ob]`.
    unsafe {
        match ob {
            1 => match_px!(image_tile, 1, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
            2 => match_px!(image_tile, 2, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
            3 => match_px!(image_tile, 3, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
            4 => match_px!(image_tile, 4, a, px, [1, 2, 3, 4, 5, 6]),
            _ => unreachable!("{ob} output blocks exceed 4"),
        }
    }
}

/// 32 BF16 values (16 pairs) as the dot-product instruction's operand type.
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
fn as_pairs(v: __m512i) -> __m512bh {
    // SAFETY: both are 64 bytes of plain data; every bit pattern is a valid value.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
}

/// # Safety
/// The [`Bf16TileArgs`] contract for an `OB x PX` tile, on a CPU with AVX-512F and
/// AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
unsafe fn tile<const OB: usize, const PX: usize>(a: &Bf16TileArgs) {
    let n = a.ci_blocks * a.kh * a.kw;
    let mut pos = (0, 0, 0);
    let mut staged = [[0i32; BLOCK / 2]; PX];
    // SAFETY: every pointer offset below is one the Bf16TileArgs contract keeps in
    // bounds (a float32 pixel's 16 lanes included); unaligned loads and stores have
    // no alignment requirement.
    unsafe {
        for t0 in (0..n).step_by(a.chunk) {
            let t1 = (t0 + a.chunk).min(n);
            let mut acc = [[_mm512_setzero_ps(); PX]; OB];
            acc.iter_mut().flatten().for_each(|v| *v = zero());
            for t in t0..t1 {
                // The tap's pairs: in the BF16 input, or rounded here from the
                // float32 input into `staged`, one pixel's 16 lanes at a time.
                let (inp, step) = if a.input_f32.is_null() {
                    (a.input.add(a.tap_offset(pos)).cast::<i32>(), a.in_pixel / 2)
                } else {
                    let x = a.input_f32.add(a.tap_offset(pos));
                    for (p, s) in staged.iter_mut().enumerate() {
                        let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(x.add(p * a.in_pixel)));
                        _mm256_storeu_si256(s.as_mut_ptr().cast(), std::mem::transmute::<__m256bh, __m256i>(v));
                    }
                    (staged.as_ptr().cast::<i32>(), BLOCK / 2)
                };
                let w = a.weights.add(t * BLOCK * BLOCK);
                let mut pair = |j: usize| {
                    let mut wv = [as_pairs(_mm512_setzero_si512()); OB];
                    for (b, v) in wv.iter_mut().enumerate() {
                        *v = as_pairs(_mm512_loadu_si512(w.add(b * a.w_block + j * 2 * BLOCK).cast()));
                    }
                    for p in 0..PX {
                        let x = inp.add(p * step + j).read_unaligned();
                        let x = as_pairs(_mm512_set1_epi32(x));
                        for b in 0..OB {
                            acc[b][p] = _mm512_dpbf16_ps(acc[b][p], x, wv[b]);
                        }
                    }
                };
                // A constant trip count for whole blocks, so the pair loop unrolls.
                let pairs = a.pairs(pos.0);
                if pairs == BLOCK / 2 {
                    (0..BLOCK / 2).for_each(&mut pair);
                } else {
                    (0..pairs).for_each(&mut pair);
                }
                pos = a.next_tap(pos);
            }
            store(a.into(), &acc, t0 == 0, t1 == n);
        }
    }
}

/// An `OB x PX` tile of a BF16 NCHW image: per pair step, `OB` weight rows and
/// `PX` broadcasts of two neighbouring pixels (one 32-bit word, unaligned at odd
/// columns) for `OB * PX` `VDPBF16PS`.
///
/// # Safety
/// The image tile contract of [`Bf16Microkernel::image_tile`] for an `OB x PX`
/// tile, on a CPU with AVX-512F and AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
unsafe fn image_tile<const OB: usize, const PX: usize>(a: &Bf16TileArgs) {
    let rows = a.ci_blocks * a.kh;
    for r0 in (0..rows).step_by(a.chunk) {
        let r1 = (r0 + a.chunk).min(rows);
        // SAFETY: the caller's contract.
        let acc = unsafe { image_rows::<OB, PX>(a, r0..r1) };
        // SAFETY: the contract's bounds for an `OB x PX` tile. The epilogue written
        // out here: a call of `store` (not inlined) would keep the accumulators
        // in memory.
        unsafe { store_tile!(TileSums::from(a), &acc, r0 == 0, r1 == rows) };
    }
}

/// The sums of window rows `rows` (one chunk) of an image tile, from zero.
///
/// # Safety
/// As for [`image_tile`].
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
unsafe fn image_rows<const OB: usize, const PX: usize>(a: &Bf16TileArgs, rows: Range<usize>) -> [[__m512; PX]; OB] {
    let mut acc = [[_mm512_setzero_ps(); PX]; OB];
    acc.iter_mut().flatten().for_each(|v| *v = zero());
    // SAFETY: every pointer offset below is one the image tile contract keeps in
    // bounds; unaligned loads have no alignment requirement.
    unsafe {
        for r in rows {
            let inp = a.input.add(r / a.kh * a.in_block + r % a.kh * a.in_row);
            let w = a.weights.add(r * a.kw * 2 * BLOCK);
            // Pair column `q` of the window row: its taps `2q`, `2q + 1`.
            let mut pair = |q: usize| {
                let mut wv = [as_pairs(_mm512_setzero_si512()); OB];
                for (b, v) in wv.iter_mut().enumerate() {
                    *v = as_pairs(_mm512_loadu_si512(w.add(b * a.w_block + q * 2 * BLOCK).cast()));
                }
                for p in 0..PX {
                    let x = inp.add(p * a.in_pixel + 2 * q).cast::<i32>().read_unaligned();
                    let x = as_pairs(_mm512_set1_epi32(x));
                    for b in 0..OB {
                        acc[b][p] = _mm512_dpbf16_ps(acc[b][p], x, wv[b]);
                    }
                }
            };
            (0..a.kw).for_each(&mut pair);
        }
    }
    acc
}

/// `VDPBF16PS` throughput: 16 independent accumulators (two ports x a latency of
/// about six cycles need at least 12 in flight), each adding two products per lane
/// per iteration.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(crate) unsafe fn dpbf16_loop(iters: u64) -> f32 {
    // Opaque pairs of 1.0 and of about 1e-3, so the compiler cannot fold the loop.
    let a = as_pairs(_mm512_set1_epi32(std::hint::black_box(0x3f80_3f80)));
    let b = as_pairs(_mm512_set1_epi32(std::hint::black_box(0x3a83_3a83)));
    let mut acc = [_mm512_set1_ps(1.0); 16];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_dpbf16_ps(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}

/// FLOPs per iteration of [`dpbf16_loop`]: 16 registers x 16 lanes x 2 products,
/// a multiply and an add each.
pub(crate) const DPBF16_LOOP_FLOPS: u64 = 16 * 16 * 2 * 2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bf16::{Bf16Tier, convert};

    /// The tier's conversion equals `half`'s on every value but subnormals, which it
    /// makes zeros of their sign.
    #[test]
    fn conversion_matches_half_but_flushes_subnormals() {
        if !Bf16Tier::Avx512Bf16.is_available() {
            eprintln!("SKIPPED: this CPU cannot run the avx512bf16 tier");
            return;
        }
        // SAFETY: the CPU runs the tier (checked above).
        unsafe { convert::check_tier_conversion(to_bf16, true) };
    }
}
