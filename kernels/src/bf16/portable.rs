//! The portable BF16 tier: `VDPBF16PS` emulated one product at a time, in its
//! order and with its flushing of subnormals. For hosts without BF16 instructions;
//! slow, but the same bits as the SIMD tiers.

use super::convert::bf16;

use super::microkernel::{Bf16Microkernel, Bf16TileArgs, ChunkSums};
use crate::BLOCK;

pub(crate) const CONV: Bf16Microkernel = Bf16Microkernel {
    name: "conv_bf16_nchw16c_64oc_x6px__portable",
    max_px: [0, 16, 14, 9, 6],
    tile: conv_tile,
    image_tile: conv_image_tile,
    to_bf16: super::convert::to_bf16_slice,
};

/// `v`, or zero (of its sign) when it is subnormal: `VDPBF16PS`'s DAZ and FTZ.
#[inline(always)]
fn flush(v: f32) -> f32 {
    if v.is_subnormal() { 0f32.copysign(v) } else { v }
}

/// `acc` plus the products of one pair, as `VDPBF16PS` adds them to one lane: the
/// high lane's product first, then the low one's, each exact product added with
/// one rounding.
#[inline(always)]
pub(crate) fn dot_pair(acc: f32, x: [bf16; 2], w: [bf16; 2]) -> f32 {
    let f = |v: bf16| flush(v.to_f32());
    let acc = flush(f(x[1]).mul_add(f(w[1]), flush(acc)));
    flush(f(x[0]).mul_add(f(w[0]), acc))
}

/// Input element `at`: BF16, or float32 rounded to BF16 when the tile reads that.
///
/// # Safety
/// Element `at` of the input the tile reads must be in bounds.
#[inline(always)]
unsafe fn read(a: &Bf16TileArgs, at: usize) -> bf16 {
    // SAFETY: the caller's.
    unsafe { if a.input_f32.is_null() { *a.input.add(at) } else { super::convert::to_bf16(*a.input_f32.add(at)) } }
}

/// # Safety
/// The [`Bf16TileArgs`] contract for an `ob x px` tile.
unsafe fn conv_tile(a: &Bf16TileArgs, ob: usize, px: usize) {
    let n = a.ci_blocks * a.kh * a.kw;
    let mut pos = (0, 0, 0);
    for t0 in (0..n).step_by(a.chunk) {
        let t1 = (t0 + a.chunk).min(n);
        let mut acc: ChunkSums = [[[0f32; BLOCK]; 16]; 4];
        for t in t0..t1 {
            let inp = a.tap_offset(pos);
            let w = a.weights.wrapping_add(t * BLOCK * BLOCK);
            for j in 0..a.pairs(pos.0) {
                for (b, acc_b) in acc.iter_mut().enumerate().take(ob) {
                    for (p, acc_p) in acc_b.iter_mut().enumerate().take(px) {
                        // SAFETY: pair j of pixel p of this tap, and pair j of block b's
                        // weights for it: inside the contract's bounds.
                        let x = unsafe {
                            [read(a, inp + p * a.in_pixel + 2 * j), read(a, inp + p * a.in_pixel + 2 * j + 1)]
                        };
                        for (lane, v) in acc_p.iter_mut().enumerate() {
                            let wp = w.wrapping_add(b * a.w_block + j * 2 * BLOCK + lane * 2);
                            // SAFETY: as above.
                            *v = dot_pair(*v, x, unsafe { [*wp, *wp.add(1)] });
                        }
                    }
                }
            }
            pos = a.next_tap(pos);
        }
        // SAFETY: the contract's bounds for an `ob x px` tile.
        unsafe { a.add_chunk(&acc, (ob, px), t0 == 0, t1 == n) };
    }
}

/// # Safety
/// The image tile contract of [`Bf16Microkernel::image_tile`] for an `ob x px` tile.
pub(crate) unsafe fn conv_image_tile(a: &Bf16TileArgs, ob: usize, px: usize) {
    let rows = a.ci_blocks * a.kh;
    for r0 in (0..rows).step_by(a.chunk) {
        let r1 = (r0 + a.chunk).min(rows);
        let mut acc: ChunkSums = [[[0f32; BLOCK]; 16]; 4];
        for r in r0..r1 {
            for q in 0..a.kw {
                let inp = r / a.kh * a.in_block + r % a.kh * a.in_row + 2 * q;
                let w = a.weights.wrapping_add((r * a.kw + q) * 2 * BLOCK);
                for (b, acc_b) in acc.iter_mut().enumerate().take(ob) {
                    for (p, acc_p) in acc_b.iter_mut().enumerate().take(px) {
                        let at = inp + p * a.in_pixel;
                        // SAFETY: the two neighbouring pixels of this pair, inside the
                        // padded image by the contract.
                        let x = unsafe { [*a.input.add(at), *a.input.add(at + 1)] };
                        for (lane, v) in acc_p.iter_mut().enumerate() {
                            let wp = w.wrapping_add(b * a.w_block + lane * 2);
                            // SAFETY: block b's weights of this pair, inside the packing.
                            *v = dot_pair(*v, x, unsafe { [*wp, *wp.add(1)] });
                        }
                    }
                }
            }
        }
        // SAFETY: the contract's bounds for an `ob x px` tile.
        unsafe { a.add_chunk(&acc, (ob, px), r0 == 0, r1 == rows) };
    }
}
