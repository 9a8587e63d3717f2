//! AVX-512F microkernels. One zmm register holds one 16-channel block.

// The tiles index accumulators by (block, pixel) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{match_px, prefetch_next_output, prefetch_next_tile, prefetch_weights, weight_lines_per_tap};
use crate::image_stage::ImageRows;
use crate::layout::BLOCK;
use crate::microkernel::{ConvMicrokernel, Taps, TileArgs, TileSums};
use crate::ops::{TierOps, shared_bodies};

// The 3-channel image's 3x3 and 7x7 stride-2 rows.
mod image;

/// The AVX-512F tier's kernels.
pub(crate) const OPS: TierOps = TierOps {
    available: || is_x86_feature_detected!("avx512f"),
    conv: CONV,
    pool,
    gap,
    linear,
    winograd_input,
    winograd_output,
    image_stage,
    image_rows: &[
        ImageRows { k: 3, blocks: 2, run: image::image3x3s2_c3_32oc_x6px_avx512f },
        ImageRows { k: 7, blocks: 2, run: image::image7x7s2_c3_32oc_x6px_avx512f },
    ],
    peak: fma_loop,
    peak_flops: PEAK_FLOPS,
};

shared_bodies!("avx512f");

/// Up to 4 output blocks (64 channels) x 6 pixels, 3 x 9, 2 x 14 or 1 x 16: at most
/// 28 zmm accumulators plus one register per weight row, of 32. Per input lane a
/// 4 x 6 tile issues 4 weight loads and 6 broadcasts for 24 FMAs, within the two
/// load ports' budget at two FMAs a cycle; narrower layers (32 output channels) and
/// short rows (8x8 maps) get the other shapes.
pub(crate) const CONV: ConvMicrokernel = ConvMicrokernel {
    name: "conv_nchw16c_64oc_x6px__avx512f",
    max_px: [0, 16, 14, 9, 6],
    hand_scheduled: Some((4, 6)),
    min_lane_cost: 0,
    tile: conv_tile,
    row: None,
    raster: None,
};

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`], on a CPU with AVX-512F.
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract; `px` is within `CONV.max_px[ob]`.
    unsafe {
        match ob {
            1 => match_px!(tile, 1, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
            2 => match_px!(tile, 2, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
            3 => match_px!(tile, 3, a, px, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
            4 if px == 6 => tile_4x6(a),
            4 => match_px!(tile, 4, a, px, [1, 2, 3, 4, 5]),
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
                let mut lane = |i: usize| lane_fmas(&mut acc, a, w, inp, i);
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

/// One input lane of a 4 x 6 tile at byte offsets `$w` into the weights and `$x`
/// into the input: the lane's 4 weight rows into zmm24..27, then each pixel's input
/// lane broadcast from memory by the FMAs themselves into accumulators
/// zmm(6 * block + pixel).
#[rustfmt::skip]
macro_rules! lane_4x6 {
    ($w:literal, $x:literal) => {
        concat!(
            "vmovups zmm24, [{w} + ", $w, "]\n",
            "vmovups zmm25, [{w} + {wb} + ", $w, "]\n",
            "vmovups zmm26, [{w} + {wb}*2 + ", $w, "]\n",
            "vmovups zmm27, [{w3} + ", $w, "]\n",
            pixel_4x6!([0, 6, 12, 18], "{x}", $x),
            pixel_4x6!([1, 7, 13, 19], "{x} + {xp}", $x),
            pixel_4x6!([2, 8, 14, 20], "{x} + {xp}*2", $x),
            pixel_4x6!([3, 9, 15, 21], "{x3}", $x),
            pixel_4x6!([4, 10, 16, 22], "{x3} + {xp}", $x),
            pixel_4x6!([5, 11, 17, 23], "{x3} + {xp}*2", $x),
        )
    };
}

/// The 4 FMAs of one pixel in [`lane_4x6`]: its accumulators `$a` (one per block),
/// its input lane at `[$at + $x]`.
#[rustfmt::skip]
macro_rules! pixel_4x6 {
    ([$a0:literal, $a1:literal, $a2:literal, $a3:literal], $at:literal, $x:literal) => {
        concat!(
            "vfmadd231ps zmm", $a0, ", zmm24, dword ptr [", $at, " + ", $x, "]{{1to16}}\n",
            "vfmadd231ps zmm", $a1, ", zmm25, dword ptr [", $at, " + ", $x, "]{{1to16}}\n",
            "vfmadd231ps zmm", $a2, ", zmm26, dword ptr [", $at, " + ", $x, "]{{1to16}}\n",
            "vfmadd231ps zmm", $a3, ", zmm27, dword ptr [", $at, " + ", $x, "]{{1to16}}\n",
        )
    };
}

/// The loop over `{n}` taps of a 4 x 6 tile: 16 lanes of [`lane_4x6`], then the
/// input (`{x}`, `{x3}`) on by `{step}` bytes and the weights (`{w}`, `{w3}`) by a
/// tap's 16 x 16 floats.
#[rustfmt::skip]
macro_rules! taps_4x6 {
    () => {
        concat!(
            "2:\n",
            lane_4x6!(0, 0), lane_4x6!(64, 4), lane_4x6!(128, 8), lane_4x6!(192, 12),
            lane_4x6!(256, 16), lane_4x6!(320, 20), lane_4x6!(384, 24), lane_4x6!(448, 28),
            lane_4x6!(512, 32), lane_4x6!(576, 36), lane_4x6!(640, 40), lane_4x6!(704, 44),
            lane_4x6!(768, 48), lane_4x6!(832, 52), lane_4x6!(896, 56), lane_4x6!(960, 60),
            "add {x}, {step}\n", "add {x3}, {step}\n", "add {w}, 1024\n", "add {w3}, 1024\n",
            "dec {n}\n", "jnz 2b\n",
        )
    };
}

/// Adds one output block's 6 accumulators `$a` to its partial sums at `[$at]`
/// (pixels 64 bytes apart) and stores them there.
#[rustfmt::skip]
macro_rules! add_store_4x6 {
    ([$a0:literal, $a1:literal, $a2:literal, $a3:literal, $a4:literal, $a5:literal], $at:literal) => {
        concat!(
            "vaddps zmm", $a0, ", zmm", $a0, ", [", $at, "]\n", "vmovups [", $at, "], zmm", $a0, "\n",
            "vaddps zmm", $a1, ", zmm", $a1, ", [", $at, " + 64]\n", "vmovups [", $at, " + 64], zmm", $a1, "\n",
            "vaddps zmm", $a2, ", zmm", $a2, ", [", $at, " + 128]\n", "vmovups [", $at, " + 128], zmm", $a2, "\n",
            "vaddps zmm", $a3, ", zmm", $a3, ", [", $at, " + 192]\n", "vmovups [", $at, " + 192], zmm", $a3, "\n",
            "vaddps zmm", $a4, ", zmm", $a4, ", [", $at, " + 256]\n", "vmovups [", $at, " + 256], zmm", $a4, "\n",
            "vaddps zmm", $a5, ", zmm", $a5, ", [", $at, " + 320]\n", "vmovups [", $at, " + 320], zmm", $a5, "\n",
        )
    };
}

/// Adds `n >= 1` whole taps (16 input lanes each) of a 4 x 6 tile to `acc`, in
/// order: tap `j`'s weights of the first output block at `w + j * 256` (blocks
/// `w_block` floats apart), its input at `x + j * step` (pixels `in_pixel` floats
/// apart). Each accumulator takes its products in the generic tile's order, so the
/// sums are the same bits; the loop is one asm block because the generic tile's
/// control flow around its taps cost ~5% at chunks of 3 taps (figures:
/// `docs/kernels.md`).
///
/// # Safety
/// The weights and inputs of the `n` taps are readable; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn taps_4x6(
    acc: &mut [[__m512; 6]; 4],
    w: *const f32,
    w_block: usize,
    x: *const f32,
    in_pixel: usize,
    step: usize,
    n: usize,
) {
    let [
        [a0, a1, a2, a3, a4, a5],
        [a6, a7, a8, a9, a10, a11],
        [a12, a13, a14, a15, a16, a17],
        [a18, a19, a20, a21, a22, a23],
    ] = acc;
    // SAFETY: reads the weights and inputs the caller vouches for; writes only the
    // named registers.
    unsafe {
        std::arch::asm!(
            taps_4x6!(),
            w = inout(reg) w => _,
            wb = in(reg) w_block * 4,
            w3 = inout(reg) w.wrapping_add(3 * w_block) => _,
            x = inout(reg) x => _,
            xp = in(reg) in_pixel * 4,
            x3 = inout(reg) x.wrapping_add(3 * in_pixel) => _,
            step = in(reg) step * 4,
            n = inout(reg) n => _,
            inout("zmm0") *a0, inout("zmm1") *a1, inout("zmm2") *a2, inout("zmm3") *a3,
            inout("zmm4") *a4, inout("zmm5") *a5, inout("zmm6") *a6, inout("zmm7") *a7,
            inout("zmm8") *a8, inout("zmm9") *a9, inout("zmm10") *a10, inout("zmm11") *a11,
            inout("zmm12") *a12, inout("zmm13") *a13, inout("zmm14") *a14, inout("zmm15") *a15,
            inout("zmm16") *a16, inout("zmm17") *a17, inout("zmm18") *a18, inout("zmm19") *a19,
            inout("zmm20") *a20, inout("zmm21") *a21, inout("zmm22") *a22, inout("zmm23") *a23,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            options(nostack, readonly),
        );
    }
}

/// Runs `m >= 1` chunks of `c >= 1` whole taps of a 4 x 6 tile, all with one input
/// step (a 1x1 window's blocks), none the first or the last of the sum: each from
/// zero, then added to its partial sums in `o` (blocks `out_block` floats apart,
/// pixels 16 apart) and stored. Tap `j` of the run: weights at `w + j * 256`
/// (blocks `w_block` apart), input at `x + j * step` (pixels `in_pixel` apart). The
/// same sums as [`taps_4x6`] then [`store`], chunk by chunk, with the chunk
/// boundaries inside one asm block (figures: `docs/kernels.md`).
///
/// # Safety
/// The weights and inputs of the `m * c` taps are readable, the tile's outputs
/// readable and writable; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn chunks_4x6(
    w: *const f32,
    w_block: usize,
    x: *const f32,
    in_pixel: usize,
    step: usize,
    c: usize,
    m: usize,
    o: *mut f32,
    out_block: usize,
) {
    // SAFETY: reads the weights, inputs and outputs and writes the outputs the
    // caller vouches for; clobbers only the named registers.
    unsafe {
        std::arch::asm!(
            "3:",
            "vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1", "vpxord zmm2, zmm2, zmm2",
            "vpxord zmm3, zmm3, zmm3", "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
            "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7", "vpxord zmm8, zmm8, zmm8",
            "vpxord zmm9, zmm9, zmm9", "vpxord zmm10, zmm10, zmm10", "vpxord zmm11, zmm11, zmm11",
            "vpxord zmm12, zmm12, zmm12", "vpxord zmm13, zmm13, zmm13", "vpxord zmm14, zmm14, zmm14",
            "vpxord zmm15, zmm15, zmm15", "vpxord zmm16, zmm16, zmm16", "vpxord zmm17, zmm17, zmm17",
            "vpxord zmm18, zmm18, zmm18", "vpxord zmm19, zmm19, zmm19", "vpxord zmm20, zmm20, zmm20",
            "vpxord zmm21, zmm21, zmm21", "vpxord zmm22, zmm22, zmm22", "vpxord zmm23, zmm23, zmm23",
            "mov {n}, {c}",
            taps_4x6!(),
            "lea {n}, [{o} + {ob}*2]",
            "add {n}, {ob}",
            add_store_4x6!([0, 1, 2, 3, 4, 5], "{o}"),
            add_store_4x6!([6, 7, 8, 9, 10, 11], "{o} + {ob}"),
            add_store_4x6!([12, 13, 14, 15, 16, 17], "{o} + {ob}*2"),
            add_store_4x6!([18, 19, 20, 21, 22, 23], "{n}"),
            "dec {m}",
            "jnz 3b",
            w = inout(reg) w => _,
            wb = in(reg) w_block * 4,
            w3 = inout(reg) w.wrapping_add(3 * w_block) => _,
            x = inout(reg) x => _,
            xp = in(reg) in_pixel * 4,
            x3 = inout(reg) x.wrapping_add(3 * in_pixel) => _,
            step = in(reg) step * 4,
            c = in(reg) c,
            m = inout(reg) m => _,
            n = out(reg) _,
            o = in(reg) o,
            ob = in(reg) out_block * 4,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _,
            out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _,
            out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            options(nostack),
        );
    }
}

/// The 4 x 6 tile (the widest, which most layers run): [`tile`]'s sums, its whole
/// taps in runs of equal input steps through [`taps_4x6`] (a 1x1 window's chunk is
/// one run, input block to input block; a wider window's runs are the taps of one
/// window row), its partial last block through [`tile`]'s lane loop.
///
/// # Safety
/// The [`TileArgs`] contract for a 4 x 6 tile, on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn tile_4x6(a: &TileArgs) {
    const OB: usize = 4;
    const PX: usize = 6;
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
                    chunks_4x6(w, a.w_block, inp, a.in_pixel, a.in_block, a.chunk, m, a.output, a.out_block);
                    t0 += m * a.chunk;
                    ib += m * a.chunk;
                    continue;
                }
            }
            let t1 = (t0 + a.chunk).min(a.taps.1);
            let mut acc = [[_mm512_setzero_ps(); PX]; OB];
            acc.iter_mut().flatten().for_each(|v| *v = zero());
            let mut t = t0;
            while t < t1 {
                let inp = a.input.add(ib * a.in_block + ky * a.in_row + kx * BLOCK);
                let w = a.weights.add(t * BLOCK * BLOCK);
                // Taps with one input step: the rest of the chunk's whole blocks for
                // a 1x1 window, the rest of the window row otherwise.
                let (len, step) =
                    if khw == 1 { (t1.min(whole_taps) - t, a.in_block) } else { ((a.kw - kx).min(t1 - t), BLOCK) };
                if t < whole_taps && len > 0 {
                    for j in 0..len {
                        prefetch_next_tile::<PX>(a, inp.wrapping_add(j * step));
                        prefetch_weights(a, t + j, per);
                    }
                    taps_4x6(&mut acc, w, a.w_block, inp, a.in_pixel, step, len);
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
                // Advance (ib, ky, kx) by `len` taps (within one row, or whole taps
                // of a 1x1 window).
                if khw == 1 {
                    ib += len;
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
            store(a.into(), &acc, t0 == 0, t1 == n);
            t0 = t1;
        }
    }
}

/// Input lane `i` of one tap: each of the tile's `OB` weight rows (16 output
/// channels) times each of its `PX` pixels' lane `i`, added to the accumulators.
///
/// # Safety
/// `w` and `inp` are the tap's weights and input under `a`'s [`TileArgs`] contract,
/// `i < 16`, on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn lane_fmas<const OB: usize, const PX: usize>(
    acc: &mut [[__m512; PX]; OB],
    a: &TileArgs,
    w: *const f32,
    inp: *const f32,
    i: usize,
) {
    // SAFETY: the caller's contract keeps every offset inside the tap's weights and input.
    unsafe {
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
    // SAFETY: the caller's.
    unsafe { store_tile!(a, acc, first, last) }
}

/// The body of [`store`], for a tile that must not call it: LLVM inlines `store`
/// into a tile only while one tile per codegen unit calls each of its instances
/// (it is too large otherwise), and a call out of line stores and reloads every
/// accumulator. Expands to unsafe code: the caller's block keeps [`store`]'s
/// safety contract.
macro_rules! store_tile {
    ($a:expr, $acc:expr, $first:expr, $last:expr) => {{
        let (a, first, last): (TileSums, bool, bool) = ($a, $first, $last);
        for (b, acc_b) in $acc.iter().enumerate() {
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
    }};
}
pub(crate) use store_tile;

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
