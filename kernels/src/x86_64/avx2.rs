//! AVX2 + FMA microkernels. A 16-channel block is two ymm registers.

// The tiles index accumulators by (block, pixel) in lockstep with the weights and inputs.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::sync::atomic::Ordering;

use super::{
    match_px, prefetch_next_output, prefetch_next_tile, prefetch_weight_taps, prefetch_weights, weight_lines_per_tap,
};
use crate::image_stage::ImageRows;
use crate::layout::BLOCK;
use crate::microkernel::{
    ConvMicrokernel, NEXT_TILE_ASM_CHUNKS, NEXT_WINDOW_ASM_CHUNKS, PREFETCHED_ASM_CHUNKS, RASTER_ASM_CHUNKS, Taps,
    TileArgs, WINDOW_ASM_CHUNKS, WINDOW_PIECE_ASM_CHUNKS,
};
use crate::ops::{TierOps, shared_bodies};

// The asm text, as macros (`taps_asm!`, `chunks_asm!`), in a file of its own.
#[macro_use]
mod asm;
// The asm blocks' trait and its implementations per pixel count.
mod asm_tile;
// The 3-channel image's 3x3 and 7x7 stride-2 rows.
mod image;

use asm_tile::{AsmTile, PieceParams, RunParams};

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
    image_rows: &[
        ImageRows { k: 3, blocks: 1, run: image::image3x3s2_c3_16oc_x6px_avx2 },
        ImageRows { k: 7, blocks: 1, run: image::image7x7s2_c3_16oc_x6px_avx2 },
    ],
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
    raster: Some(runs_in_asm),
};

/// Whether [`tile_1xn`] runs a tile's chunks through [`AsmTile::runs`], which
/// addresses each pixel's input on its own, so also computes raster tiles: a window
/// wider than one tap whose chunks are its runs (a 3x3's or 1x3's window rows, a
/// 3x1's columns), in whole blocks, from a run's first tap, prefetching the next
/// tile's input only at stride 2.
fn runs_in_asm(a: &TileArgs) -> bool {
    let run = if a.kw > 1 { a.kw } else { a.kh };
    let next_s2 = a.prefetch_next && a.in_pixel == 2 * BLOCK;
    a.kh * a.kw > 1
        && a.chunk == run
        && a.taps.0.is_multiple_of(a.kw)
        && a.ci_tail == BLOCK
        && (!a.prefetch_next || next_s2)
}

/// # Safety
/// The [`TileArgs`] contract of [`ConvMicrokernel::tile`], on a CPU with AVX2 and FMA.
unsafe fn conv_tile(a: &TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded contract.
    unsafe {
        match ob {
            1 if px == 6 => row_1x6(a, 1),
            1 if px == 5 => tile_short::<5>(a),
            1 if px == 4 => tile_short::<4>(a),
            1 => {
                // The driver's raster tiles of under 4 pixels (a map's last) lie in one row.
                debug_assert!(a.wrap.pixel(a.in_pixel, px - 1) == (px - 1) * a.in_pixel, "a compiled raster tile");
                by_px::<1>(a, px)
            }
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
/// of one window column for a window one tap wide); a 1x1 window's chunks through
/// [`AsmTile::chunks`] (all of them in whole blocks, else the middle ones), its
/// partial last block through [`tile`]'s lane loop; a wider window's chunks, when
/// each is one run (3x3, 1x3, 3x1 at 3 taps per chunk), through [`AsmTile::runs`],
/// else (1x7, 7x1, 5x5: runs of 7 or 5 taps in chunks of 3) through
/// [`AsmTile::pieces`].
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
        // A 1x1 window in whole blocks, no next tile's input to prefetch per tap:
        // all its chunks in one asm block, its share of the weight prefetch issued
        // before it (a few lines per tile; per tap in compiled code, the blocks of
        // taps of small maps ran their chunks compiled, 3-5% slower).
        // On two threads (the next tile's input prefetched per tap) a stride-1 1x1
        // window likewise, the prefetches in the asm tap loop: compiled, the chunks
        // ran ~10% slower (figures: `docs/kernels.md`).
        let next_asm = a.prefetch_next && a.in_pixel == BLOCK;
        if khw == 1 && whole_taps == n && (!a.prefetch_next || next_asm) {
            prefetch_weight_taps(a, a.taps.0, a.taps.1, per);
            if a.prefetch.blocks != 0 && !PREFETCHED_ASM_CHUNKS.load(Ordering::Relaxed) {
                PREFETCHED_ASM_CHUNKS.store(true, Ordering::Relaxed);
            }
            if next_asm && !NEXT_TILE_ASM_CHUNKS.load(Ordering::Relaxed) {
                NEXT_TILE_ASM_CHUNKS.store(true, Ordering::Relaxed);
            }
            let bias = if a.taps.0 == 0 { a.bias } else { std::ptr::null() };
            let last = a.taps.1 == n;
            let residual = if last { a.residual } else { std::ptr::null() };
            let (w, inp) = (a.weights.add(a.taps.0 * BLOCK * BLOCK), a.input.add(a.taps.0 * a.in_block));
            let len = a.taps.1 - a.taps.0;
            let (pixel, step, c, o, relu) = (a.in_pixel, a.in_block, a.chunk, a.output, last && a.relu);
            type T<const PX: usize> = [[[__m256; 2]; PX]; 1];
            if next_asm {
                T::<PX>::chunks::<true>(w, inp, pixel, step, c, len, o, bias, residual, relu);
            } else {
                T::<PX>::chunks::<false>(w, inp, pixel, step, c, len, o, bias, residual, relu);
            }
            return;
        }
        // A wider window whose chunks are its runs (a 3x3's or 1x3's window rows, a
        // 3x1's columns), in whole blocks: likewise all its chunks in one asm block.
        // At stride 2 the next tile's input, if asked, is prefetched per tap in the
        // asm tap loop: compiled, the large maps' chunks (which prefetch on one
        // thread) ran 74-75% of peak (figures: `docs/kernels.md`).
        // Raster tiles (pixels across row ends) take this path only.
        let run = if a.kw > 1 { a.kw } else { a.kh };
        let next_s2 = a.prefetch_next && a.in_pixel == 2 * BLOCK;
        debug_assert!(a.wrap.skip == 0 || runs_in_asm(a), "a raster tile off the runs path");
        if runs_in_asm(a) {
            prefetch_weight_taps(a, a.taps.0, a.taps.1, per);
            if !WINDOW_ASM_CHUNKS.load(Ordering::Relaxed) {
                WINDOW_ASM_CHUNKS.store(true, Ordering::Relaxed);
            }
            if next_s2 && !NEXT_WINDOW_ASM_CHUNKS.load(Ordering::Relaxed) {
                NEXT_WINDOW_ASM_CHUNKS.store(true, Ordering::Relaxed);
            }
            let last = a.taps.1 == n;
            // Runs along a window row step a block; a window column's, a tap row.
            let (step, skip_run, skip_block, runs, runs_left) = if a.kw > 1 {
                let next_row = a.in_row.wrapping_sub(a.kw * BLOCK);
                (BLOCK, next_row, a.in_block.wrapping_sub(a.kh * a.in_row), a.kh, a.kh - ky)
            } else {
                (a.in_row, a.in_block.wrapping_sub(a.kh * a.in_row), 0, 1, 1)
            };
            let mut q = RunParams {
                taps: run,
                skip_run: skip_run.wrapping_mul(4),
                skip_block: skip_block.wrapping_mul(4),
                runs,
                residual: if last { a.residual } else { std::ptr::null() },
                relu: (last && a.relu) as usize,
                ky: runs_left,
                chunks: (a.taps.1 - a.taps.0) / run,
            };
            let bias = if a.taps.0 == 0 { a.bias } else { std::ptr::null() };
            let (w, inp) = (a.weights.add(a.taps.0 * BLOCK * BLOCK), a.input.add(ib * a.in_block + ky * a.in_row));
            let d = a.wrap.pixel_bytes::<6>(a.in_pixel);
            if a.wrap.skip != 0 && !RASTER_ASM_CHUNKS.load(Ordering::Relaxed) {
                RASTER_ASM_CHUNKS.store(true, Ordering::Relaxed);
            }
            type T<const PX: usize> = [[[__m256; 2]; PX]; 1];
            if next_s2 {
                T::<PX>::runs::<true>(w, inp, &d, step, a.output, bias, &mut q);
            } else {
                T::<PX>::runs::<false>(w, inp, &d, step, a.output, bias, &mut q);
            }
            return;
        }
        // A wider window whose chunks are not its runs (a 1x7's or 7x1's runs of 7
        // taps, a 5x5's of 5, in chunks of 3), likewise: the asm walks each chunk in
        // pieces of a run (3 + 3 + 1 of a 1x7's row, then 2 + 1 into the next block).
        if khw > 1 && whole_taps == n && !a.prefetch_next {
            prefetch_weight_taps(a, a.taps.0, a.taps.1, per);
            if !WINDOW_PIECE_ASM_CHUNKS.load(Ordering::Relaxed) {
                WINDOW_PIECE_ASM_CHUNKS.store(true, Ordering::Relaxed);
            }
            let last = a.taps.1 == n;
            // Runs along a window row step a block; a window column's, a tap row.
            let (step, skip_run, skip_block, runs, kx_left, ky_left) = if a.kw > 1 {
                let next_row = a.in_row.wrapping_sub(a.kw * BLOCK);
                (BLOCK, next_row, a.in_block.wrapping_sub(a.kh * a.in_row), a.kh, a.kw - kx, a.kh - ky)
            } else {
                (a.in_row, a.in_block.wrapping_sub(a.kh * a.in_row), 0, 1, a.kh - ky, 1)
            };
            let mut q = PieceParams {
                chunk: a.chunk,
                skip_run: skip_run.wrapping_mul(4),
                taps: run,
                kx: kx_left,
                ky: ky_left,
                skip_block: skip_block.wrapping_mul(4),
                runs,
                residual: if last { a.residual } else { std::ptr::null() },
                relu: (last && a.relu) as usize,
            };
            let bias = if a.taps.0 == 0 { a.bias } else { std::ptr::null() };
            let inp = a.input.add(ib * a.in_block + ky * a.in_row + kx * BLOCK);
            let w = a.weights.add(a.taps.0 * BLOCK * BLOCK);
            let len = a.taps.1 - a.taps.0;
            <[[[__m256; 2]; PX]; 1]>::pieces(w, inp, a.in_pixel, step, len, a.output, bias, &mut q);
            return;
        }
        let mut t0 = a.taps.0;
        while t0 < a.taps.1 {
            // The middle chunks of a 1x1 window with a partial last block: one asm
            // block likewise.
            if khw == 1 && t0 > 0 && !a.prefetch_next {
                let end = a.taps.1.min(whole_taps).min(n - 1);
                let m = end.saturating_sub(t0) / a.chunk;
                if m > 0 {
                    prefetch_weight_taps(a, t0, t0 + m * a.chunk, per);
                    let (w, inp) = (a.weights.add(t0 * BLOCK * BLOCK), a.input.add(ib * a.in_block));
                    let (o, null) = (a.output, std::ptr::null());
                    <[[[__m256; 2]; PX]; 1]>::chunks::<false>(
                        w,
                        inp,
                        a.in_pixel,
                        a.in_block,
                        a.chunk,
                        m * a.chunk,
                        o,
                        null,
                        null,
                        false,
                    );
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
