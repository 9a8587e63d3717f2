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
    image_stage,
    peak: fma_loop,
    peak_flops: PEAK_FLOPS,
};

shared_bodies!("avx2,fma");

/// 1 output block (16 channels, 2 ymm) x 6 pixels: 12 ymm accumulators, 2 for the
/// weight row, 1 for the broadcast input: the 6x16 tile of MLAS and XNNPACK. A tile
/// of fewer than 4 pixels (8 accumulators: 2 FMA units x 4 cycles of latency) waits
/// on the latency, so it costs as much as 4 pixels: without that, the cheaper 1 x 6
/// tile won rows of 7 and 8 pixels with a 1- or 2-pixel tile at the end, slower
/// than two 1 x 4 tiles (figures: `docs/kernels.md`).
pub(crate) const CONV: ConvMicrokernel = ConvMicrokernel {
    name: "conv_nchw16c_16oc_x6px__avx2_fma",
    max_px: [0, 6, 0, 0, 0],
    hand_scheduled: Some((1, 6)),
    min_lane_cost: 4,
    tile: conv_tile,
    row: Some(row_1x6),
};

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`], on a CPU with AVX2 and FMA.
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract.
    unsafe {
        match ob {
            1 if px == 6 => row_1x6(a, 1),
            1 if px == 5 => tile_short::<5>(a),
            1 if px == 4 => tile_short::<4>(a),
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
                let mut lane = |i: usize| lane_fmas(&mut acc, a, w, inp, i);
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

/// One input lane of a 1 x `$px` tile (`$px` 4, 5 or 6) at byte offsets `$w` and
/// `$w2` (`$w` + 32) into the weights and `$x` into the input: the lane's weight row
/// into ymm12..13, then each pixel's input lane broadcast into ymm14 or ymm15
/// (alternately, so that one pixel's broadcast need not wait for the previous
/// pixel's FMAs) and its two FMAs into accumulators ymm(2 * pixel + half).
#[rustfmt::skip]
macro_rules! lane_1xn {
    (6, $w:literal, $w2:literal, $x:literal) => {
        concat!(lane_1xn!(5, $w, $w2, $x), pixel_1xn!(10, 11, 15, "{x3} + {xp}*2", $x))
    };
    (5, $w:literal, $w2:literal, $x:literal) => {
        concat!(lane_1xn!(4, $w, $w2, $x), pixel_1xn!(8, 9, 14, "{x3} + {xp}", $x))
    };
    (4, $w:literal, $w2:literal, $x:literal) => {
        concat!(
            "vmovups ymm12, [{w} + ", $w, "]\n",
            "vmovups ymm13, [{w} + ", $w2, "]\n",
            pixel_1xn!(0, 1, 14, "{x}", $x),
            pixel_1xn!(2, 3, 15, "{x} + {xp}", $x),
            pixel_1xn!(4, 5, 14, "{x} + {xp}*2", $x),
            pixel_1xn!(6, 7, 15, "{x3}", $x),
        )
    };
}

/// One pixel of [`lane_1xn`]: its input lane at `[$at + $x]` broadcast into
/// ymm`$b`, times the weight row's halves into accumulators `$a0` and `$a1`.
#[rustfmt::skip]
macro_rules! pixel_1xn {
    ($a0:literal, $a1:literal, $b:literal, $at:literal, $x:literal) => {
        concat!(
            "vbroadcastss ymm", $b, ", dword ptr [", $at, " + ", $x, "]\n",
            "vfmadd231ps ymm", $a0, ", ymm12, ymm", $b, "\n",
            "vfmadd231ps ymm", $a1, ", ymm13, ymm", $b, "\n",
        )
    };
}

/// The loop over `{n}` taps of a 1 x `$px` tile: 16 lanes of [`lane_1xn`], then
/// the input (`{x}`, `{x3}`) on by `{step}` bytes and the weights (`{w}`) by a
/// tap's 16 x 16 floats.
#[rustfmt::skip]
macro_rules! taps_loop {
    ($px:tt) => {
        concat!(
            "2:\n",
            lane_1xn!($px, 0, 32, 0), lane_1xn!($px, 64, 96, 4),
            lane_1xn!($px, 128, 160, 8), lane_1xn!($px, 192, 224, 12),
            lane_1xn!($px, 256, 288, 16), lane_1xn!($px, 320, 352, 20),
            lane_1xn!($px, 384, 416, 24), lane_1xn!($px, 448, 480, 28),
            lane_1xn!($px, 512, 544, 32), lane_1xn!($px, 576, 608, 36),
            lane_1xn!($px, 640, 672, 40), lane_1xn!($px, 704, 736, 44),
            lane_1xn!($px, 768, 800, 48), lane_1xn!($px, 832, 864, 52),
            lane_1xn!($px, 896, 928, 56), lane_1xn!($px, 960, 992, 60),
            "add {x}, {step}\n", "add {x3}, {step}\n", "add {w}, 1024\n",
            "dec {n}\n", "jnz 2b\n",
        )
    };
}

/// Adds accumulators `$a0` and `$a1` (a pixel's two halves) to the partial sums at
/// `[{o} + $at]` and `[{o} + $at + 32]` and stores them there.
#[rustfmt::skip]
macro_rules! add_store_1xn {
    ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
        concat!(
            "vaddps ymm", $a0, ", ymm", $a0, ", [{o} + ", $at, "]\n", "vmovups [{o} + ", $at, "], ymm", $a0, "\n",
            "vaddps ymm", $a1, ", ymm", $a1, ", [{o} + ", $at2, "]\n", "vmovups [{o} + ", $at2, "], ymm", $a1, "\n",
        )
    };
}

/// [`add_store_1xn`] for each pixel of a 1 x `$px` tile.
#[rustfmt::skip]
macro_rules! add_stores_1xn {
    (6) => { concat!(add_stores_1xn!(5), add_store_1xn!(10, 11, 320, 352)) };
    (5) => { concat!(add_stores_1xn!(4), add_store_1xn!(8, 9, 256, 288)) };
    (4) => {
        concat!(
            add_store_1xn!(0, 1, 0, 32), add_store_1xn!(2, 3, 64, 96),
            add_store_1xn!(4, 5, 128, 160), add_store_1xn!(6, 7, 192, 224),
        )
    };
}

/// The asm block of [`AsmTile::taps`] for `$px` pixels: the accumulators `$a` in
/// registers `$r` (pixel halves from ymm0 on), the rest up to ymm11 (`$u`) unused.
macro_rules! taps_asm {
    ($px:tt, $w:expr, $x:expr, $in_pixel:expr, $step:expr, $n:expr, [$($r:tt => $a:expr),*], [$($u:tt),*]) => {
        std::arch::asm!(
            taps_loop!($px),
            w = inout(reg) $w => _,
            x = inout(reg) $x => _,
            xp = in(reg) $in_pixel * 4,
            x3 = inout(reg) $x.wrapping_add(3 * $in_pixel) => _,
            step = in(reg) $step * 4,
            n = inout(reg) $n => _,
            $(inout($r) *$a,)*
            $(out($u) _,)*
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack, readonly),
        )
    };
}

/// The accumulators of a 1 x `PX` tile in asm (`PX` 4, 5 or 6): its two asm
/// blocks, [`taps`](Self::taps) and [`chunks`](Self::chunks), per pixel count.
/// A trait rather than a `match` over `PX`, so that each tile's accumulators stay
/// a plain array in registers: viewing them at another length (a slice, a cast)
/// makes LLVM keep them on the stack around the asm.
trait AsmTile {
    /// Adds `n >= 1` whole taps (16 input lanes each) to the accumulators, in
    /// order: tap `j`'s weights at `w + j * 256`, its input at `x + j * step`
    /// (pixels `in_pixel` floats apart). Each accumulator takes its products in the
    /// generic tile's order, so the sums are the same bits; the loop is one asm
    /// block because the compiled tile's control flow around its taps costs a few
    /// percent at chunks of 3 taps (figures: `docs/kernels.md`).
    ///
    /// # Safety
    /// The weights and inputs of the `n` taps are readable; the CPU has AVX2 and
    /// FMA.
    unsafe fn taps(&mut self, w: *const f32, x: *const f32, in_pixel: usize, step: usize, n: usize);

    /// Runs `m >= 1` chunks of `c >= 1` whole taps, all with one input step (a 1x1
    /// window's blocks), none the first or the last of the sum: each from zero,
    /// then added to its partial sums in `o` (pixels 16 floats apart) and stored.
    /// Tap `j` of the run: weights at `w + j * 256`, input at `x + j * step` (pixels
    /// `in_pixel` apart). The same sums as [`taps`](Self::taps) then [`store`],
    /// chunk by chunk, with the chunk boundaries inside one asm block (figures:
    /// `docs/kernels.md`).
    ///
    /// # Safety
    /// The weights and inputs of the `m * c` taps are readable, the tile's outputs
    /// readable and writable; the CPU has AVX2 and FMA.
    unsafe fn chunks(w: *const f32, x: *const f32, in_pixel: usize, step: usize, c: usize, m: usize, o: *mut f32);
}

/// [`AsmTile`] for the accumulators of a 1 x `$px` tile: `$acc` (an array
/// pattern) names them, `$r => $a` puts each in its register (pixel halves from
/// ymm0 on), `$u` are the unused registers up to ymm11.
macro_rules! asm_tile {
    ($px:tt, $acc:pat, [$($r:tt => $a:ident),*], [$($u:tt),*]) => {
        impl AsmTile for [[[__m256; 2]; $px]; 1] {
            #[target_feature(enable = "avx2,fma")]
            #[inline]
            unsafe fn taps(&mut self, w: *const f32, x: *const f32, in_pixel: usize, step: usize, n: usize) {
                let $acc = self;
                // SAFETY: reads the weights and inputs the caller vouches for;
                // writes only the named registers.
                unsafe { taps_asm!($px, w, x, in_pixel, step, n, [$($r => $a),*], [$($u),*]) }
            }

            #[target_feature(enable = "avx2,fma")]
            #[inline]
            unsafe fn chunks(w: *const f32, x: *const f32, in_pixel: usize, step: usize, c: usize, m: usize, o: *mut f32) {
                // SAFETY: reads the weights, inputs and outputs and writes the
                // outputs the caller vouches for; clobbers only the named registers.
                unsafe { chunks_asm!($px, w, x, in_pixel, step, c, m, o) }
            }
        }
    };
}

/// The asm block of [`AsmTile::chunks`] for `$px` pixels.
macro_rules! chunks_asm {
    ($px:tt, $w:expr, $x:expr, $in_pixel:expr, $step:expr, $c:expr, $m:expr, $o:expr) => {
        std::arch::asm!(
            "3:",
            "vxorps ymm0, ymm0, ymm0", "vxorps ymm1, ymm1, ymm1", "vxorps ymm2, ymm2, ymm2",
            "vxorps ymm3, ymm3, ymm3", "vxorps ymm4, ymm4, ymm4", "vxorps ymm5, ymm5, ymm5",
            "vxorps ymm6, ymm6, ymm6", "vxorps ymm7, ymm7, ymm7", "vxorps ymm8, ymm8, ymm8",
            "vxorps ymm9, ymm9, ymm9", "vxorps ymm10, ymm10, ymm10", "vxorps ymm11, ymm11, ymm11",
            "mov {n}, {c}",
            taps_loop!($px),
            add_stores_1xn!($px),
            "dec {m}",
            "jnz 3b",
            w = inout(reg) $w => _,
            x = inout(reg) $x => _,
            xp = in(reg) $in_pixel * 4,
            x3 = inout(reg) $x.wrapping_add(3 * $in_pixel) => _,
            step = in(reg) $step * 4,
            c = in(reg) $c,
            m = inout(reg) $m => _,
            n = out(reg) _,
            o = in(reg) $o,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
            out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        )
    };
}

asm_tile!(
    6,
    [[[a0, a1], [a2, a3], [a4, a5], [a6, a7], [a8, a9], [a10, a11]]],
    ["ymm0" => a0, "ymm1" => a1, "ymm2" => a2, "ymm3" => a3, "ymm4" => a4, "ymm5" => a5,
     "ymm6" => a6, "ymm7" => a7, "ymm8" => a8, "ymm9" => a9, "ymm10" => a10, "ymm11" => a11],
    []
);
asm_tile!(
    5,
    [[[a0, a1], [a2, a3], [a4, a5], [a6, a7], [a8, a9]]],
    ["ymm0" => a0, "ymm1" => a1, "ymm2" => a2, "ymm3" => a3, "ymm4" => a4, "ymm5" => a5,
     "ymm6" => a6, "ymm7" => a7, "ymm8" => a8, "ymm9" => a9],
    ["ymm10", "ymm11"]
);
asm_tile!(
    4,
    [[[a0, a1], [a2, a3], [a4, a5], [a6, a7]]],
    ["ymm0" => a0, "ymm1" => a1, "ymm2" => a2, "ymm3" => a3, "ymm4" => a4, "ymm5" => a5,
     "ymm6" => a6, "ymm7" => a7],
    ["ymm8", "ymm9", "ymm10", "ymm11"]
);

/// `tiles` 1 x 6 tiles along a row ([`ConvMicrokernel::row`]): [`tile_1xn`],
/// inlined here, for each, the arguments moved on in place.
///
/// # Safety
/// The [`TileArgs`] contract for each of the tiles, on a CPU with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_1x6(a: &TileArgs, tiles: usize) {
    for i in 0..tiles {
        // SAFETY: tile i of the row, within the caller's contract.
        unsafe { tile_1xn::<6>(&a.along_row(i, 6, tiles)) }
    }
}

/// One 1 x 5 or 1 x 4 tile ([`tile_1xn`]), as a function of its own: the rows'
/// short last tiles (a 17-pixel row's 6 + 6 + 5, an 8-pixel row's 4 + 4).
///
/// # Safety
/// The [`TileArgs`] contract for a 1 x `PX` tile, on a CPU with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_short<const PX: usize>(a: &TileArgs)
where
    [[[__m256; 2]; PX]; 1]: AsmTile,
{
    // SAFETY: forwarded contract.
    unsafe { tile_1xn::<PX>(a) }
}

/// The 1 x `PX` tile in asm (`PX` 4, 5 or 6; 6 is the widest, which every layer
/// with rows of 6 or more pixels runs): [`tile`]'s sums, its whole taps in runs of
/// equal input steps through [`AsmTile::taps`] (a 1x1 window's chunk is one run, input
/// block to input block; a wider window's runs are the taps of one window row, or
/// of one window column for a window one tap wide), a 1x1 window's middle chunks
/// through [`AsmTile::chunks`], its partial last block through [`tile`]'s lane loop.
///
/// # Safety
/// The [`TileArgs`] contract for a 1 x `PX` tile, on a CPU with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile_1xn<const PX: usize>(a: &TileArgs)
where
    [[[__m256; 2]; PX]; 1]: AsmTile,
{
    const OB: usize = 1;
    let n = a.ci_blocks * a.kh * a.kw;
    let khw = a.kh * a.kw;
    // Taps in whole input blocks come first; the rest read the partial last block.
    let whole_taps = if a.ci_tail == BLOCK { n } else { n - khw };
    // SAFETY: every pointer offset below is one the TileArgs contract keeps in bounds;
    // unaligned loads and stores have no alignment requirement.
    unsafe {
        prefetch_next_output::<OB, PX>(a);
        let per = weight_lines_per_tap(a);
        let (mut ib, mut ky, mut kx) = (a.taps.0 / khw, a.taps.0 % khw / a.kw, a.taps.0 % a.kw);
        let mut t0 = a.taps.0;
        while t0 < a.taps.1 {
            // A 1x1 window's middle chunks in whole blocks, nothing to prefetch per
            // tap: one asm block.
            if khw == 1 && t0 > 0 && !a.prefetch_next && a.prefetch.blocks == 0 {
                let end = a.taps.1.min(whole_taps).min(n - 1);
                let m = end.saturating_sub(t0) / a.chunk;
                if m > 0 {
                    let (w, inp) = (a.weights.add(t0 * BLOCK * BLOCK), a.input.add(ib * a.in_block));
                    <[[[__m256; 2]; PX]; 1]>::chunks(w, inp, a.in_pixel, a.in_block, a.chunk, m, a.output);
                    t0 += m * a.chunk;
                    ib += m * a.chunk;
                    continue;
                }
            }
            let t1 = (t0 + a.chunk).min(a.taps.1);
            let mut acc = [[[_mm256_setzero_ps(); 2]; PX]; OB];
            acc.iter_mut().flatten().flatten().for_each(|v| *v = zero());
            let mut t = t0;
            while t < t1 {
                let inp = a.input.add(ib * a.in_block + ky * a.in_row + kx * BLOCK);
                let w = a.weights.add(t * BLOCK * BLOCK);
                // Taps with one input step: the rest of the chunk's whole blocks for
                // a 1x1 window, the rest of the window column for a window one tap
                // wide, the rest of the window row otherwise.
                let (len, step) = if khw == 1 {
                    (t1.min(whole_taps) - t, a.in_block)
                } else if a.kw == 1 {
                    ((a.kh - ky).min(t1 - t), a.in_row)
                } else {
                    ((a.kw - kx).min(t1 - t), BLOCK)
                };
                if t < whole_taps && len > 0 {
                    for j in 0..len {
                        prefetch_next_tile::<PX>(a, inp.wrapping_add(j * step));
                        prefetch_weights(a, t + j, per);
                    }
                    acc.taps(w, inp, a.in_pixel, step, len);
                } else {
                    // One tap of the partial last block.
                    prefetch_next_tile::<PX>(a, inp);
                    prefetch_weights(a, t, per);
                    for i in 0..a.ci_tail {
                        lane_fmas(&mut acc, a, w, inp, i);
                    }
                }
                let len = if t < whole_taps { len.max(1) } else { 1 };
                t += len;
                // Advance (ib, ky, kx) by `len` taps (within one row or column, or
                // whole taps of a 1x1 window).
                if khw == 1 {
                    ib += len;
                } else if a.kw == 1 {
                    ky += len;
                    if ky == a.kh {
                        ky = 0;
                        ib += 1;
                    }
                } else {
                    kx += len;
                    if kx == a.kw {
                        kx = 0;
                        ky += 1;
                        if ky == a.kh {
                            ky = 0;
                            ib += 1;
                        }
                    }
                }
            }
            store(a, &acc, t0 == 0, t1 == n);
            t0 = t1;
        }
    }
}

/// Input lane `i` of one tap: each of the tile's `OB` weight rows (16 output
/// channels, two halves) times each of its `PX` pixels' lane `i`, added to the
/// accumulators.
///
/// # Safety
/// `w` and `inp` are the tap's weights and input under `a`'s [`TileArgs`] contract,
/// `i < 16`, on a CPU with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn lane_fmas<const OB: usize, const PX: usize>(
    acc: &mut [[[__m256; 2]; PX]; OB],
    a: &TileArgs,
    w: *const f32,
    inp: *const f32,
    i: usize,
) {
    // SAFETY: the caller's contract keeps every offset inside the tap's weights and input.
    unsafe {
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
/// Always inlined, and so without a target feature of its own (Rust refuses the
/// pair): out of line, the tile's accumulators would go through the stack around
/// every run of taps, as they did when LLVM stopped inlining it into [`tile_1xn`].
///
/// # Safety
/// The [`TileArgs`] contract for an `OB x PX` tile, called only from functions
/// compiled for AVX2 and FMA.
#[inline(always)]
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
