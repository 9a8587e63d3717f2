//! x86-64 tiers: AVX2 + FMA and AVX-512F.

// The asm text of both tiers' image rows, as macros (`image_rows_asm!`, ...).
#[macro_use]
mod image_asm;
pub(crate) mod avx2;
pub(crate) mod avx512;

/// Expands to a `match` from a runtime pixel count to `$tile::<OB, PX>` instances.
macro_rules! match_px {
    ($tile:ident, $ob:tt, $a:expr, $px:expr, [$($p:literal),*]) => {
        match $px {
            $($p => $tile::<$ob, $p>($a),)*
            _ => unreachable!("pixel tile {} too wide", $px),
        }
    };
}
pub(crate) use match_px;

/// Prefetches into L1 the input tap `inp` of an `OB x PX` tile reads for the next
/// tile along the row (the same tap, `PX` pixels on), if the tile asks for it (see
/// [`TileArgs::prefetch_next`]). Issued once per tap, a tile ahead: long enough to
/// hide a miss to another core's cache (a few hundred ns when the cores are far
/// apart; figures: `docs/kernels.md`).
///
/// [`TileArgs::prefetch_next`]: crate::microkernel::TileArgs::prefetch_next
#[inline(always)]
pub(crate) fn prefetch_next_tile<const PX: usize>(a: &crate::microkernel::TileArgs, inp: *const f32) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    if a.prefetch_next {
        for p in 0..PX {
            // SAFETY: a prefetch reads nothing the program sees and never faults, so
            // any address will do; SSE is part of x86-64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(inp.wrapping_add((PX + p) * a.in_pixel).cast()) };
        }
    }
}

/// Prefetches tap `t`'s share of [`TileArgs::prefetch`]: `per` of the runs' lines
/// (`per` = [`weight_lines_per_tap`]), so that the fetch keeps pace with the
/// arithmetic.
///
/// [`TileArgs::prefetch`]: crate::microkernel::TileArgs::prefetch
#[inline(always)]
pub(crate) fn prefetch_weights(a: &crate::microkernel::TileArgs, t: usize, per: usize) {
    use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
    let f = &a.prefetch;
    if f.blocks == 0 {
        return;
    }
    let l0 = (t - a.taps.0) * per;
    for b in 0..f.blocks {
        for l in l0..(l0 + per).min(f.lines) {
            // T1: the runs are larger than L1.
            let line = f.start.wrapping_add(b * f.stride + l * crate::layout::BLOCK);
            // SAFETY: as in `prefetch_next_tile`: a prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(line.cast()) };
        }
    }
}

/// [`prefetch_weights`] for taps `t0..t1` at once.
#[inline(always)]
pub(crate) fn prefetch_weight_taps(a: &crate::microkernel::TileArgs, t0: usize, t1: usize, per: usize) {
    use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
    let f = &a.prefetch;
    let (l0, l1) = ((t0 - a.taps.0) * per, ((t1 - a.taps.0) * per).min(f.lines));
    for b in 0..f.blocks {
        for l in l0..l1 {
            let line = f.start.wrapping_add(b * f.stride + l * crate::layout::BLOCK);
            // SAFETY: as in `prefetch_next_tile`: a prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(line.cast()) };
        }
    }
}

/// Lines of each run of [`TileArgs::prefetch`] per tap of the call: one division
/// per call rather than per tap.
///
/// [`TileArgs::prefetch`]: crate::microkernel::TileArgs::prefetch
#[inline(always)]
pub(crate) fn weight_lines_per_tap(a: &crate::microkernel::TileArgs) -> usize {
    if a.prefetch.blocks == 0 { 0 } else { a.prefetch.lines.div_ceil(a.taps.1 - a.taps.0) }
}

/// Prefetches for writing, once per tile (its first call), the output lines the
/// next tile along the row stores (`PX` pixels on, every block), if the tile asks
/// for it (see [`TileArgs::prefetch_output`]).
///
/// [`TileArgs::prefetch_output`]: crate::microkernel::TileArgs::prefetch_output
#[inline(always)]
pub(crate) fn prefetch_next_output<const OB: usize, const PX: usize>(a: &crate::microkernel::TileArgs) {
    if a.prefetch_output && a.taps.0 == 0 {
        for b in 0..OB {
            for p in 0..PX {
                // The driver asks for it only on CPUs with PREFETCHW (`has_prefetchw`).
                crate::microkernel::prefetch_write(
                    a.output.wrapping_add(b * a.out_block + (PX + p) * crate::layout::BLOCK),
                );
            }
        }
    }
}

/// Whether the CPU has PREFETCHW (CPUID 8000_0001h, ECX bit 8; `std` does not
/// detect it by name).
pub(crate) fn has_prefetchw() -> bool {
    use std::arch::x86_64::__cpuid;
    // Leaf 8000_0001h is asked only when the highest extended leaf reaches it.
    __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
}

/// The L2 cache per core in bytes, as CPUID reports it (leaf 8000_0006h, ECX bits
/// 31..16 in KiB, on AMD and Intel alike), or `None` when the CPU does not say.
pub(crate) fn l2_bytes() -> Option<usize> {
    use std::arch::x86_64::__cpuid;
    if __cpuid(0x8000_0000).eax < 0x8000_0006 {
        return None;
    }
    let kib = (__cpuid(0x8000_0006).ecx >> 16) as usize;
    (kib > 0).then_some(kib * 1024)
}
