//! The accumulators of the AVX2 tile in asm: [`AsmTile`], implemented per pixel
//! count by `asm_tile!` over the asm text of `asm.rs`.

use std::arch::x86_64::__m256;

/// The accumulators of a 1 x `PX` tile in asm (`PX` 4, 5 or 6): its two asm
/// blocks, [`taps`](Self::taps) and [`chunks`](Self::chunks), per pixel count.
/// A trait rather than a `match` over `PX`, so that each tile's accumulators stay
/// a plain array in registers: viewing them at another length (a slice, a cast)
/// makes LLVM keep them on the stack around the asm.
pub(super) trait AsmTile {
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

    /// Runs `n >= 1` whole taps in chunks of `c >= 1` (the last may be shorter),
    /// all with one input step (a 1x1 window's blocks), the first on the chunk grid:
    /// each chunk from zero, then added to its partial sums in `o` (pixels 16 floats
    /// apart), or to `bias` (16 floats) if not null for the first chunk, and
    /// stored; the last chunk also adds `residual` (laid out as `o`) if not null and
    /// clamps at zero if `relu`. Tap `j` of the run: weights at `w + j * 256`, input
    /// at `x + j * step` (pixels `in_pixel` apart). The same sums as
    /// [`taps`](Self::taps) then [`store`](super::store), chunk by chunk, with the chunk
    /// boundaries inside one asm block (figures: `docs/kernels.md`). With `NEXT`,
    /// each tap first prefetches its input for the next tile along the row (`$px`
    /// pixels on, pixels one 16-float block apart: `in_pixel` must be 16), as
    /// [`TileArgs::prefetch_next`](crate::microkernel::TileArgs::prefetch_next) asks.
    ///
    /// # Safety
    /// The weights and inputs of the `n` taps are readable, the tile's outputs
    /// (and residual and bias, if not null) readable and the outputs writable; the
    /// CPU has AVX2 and FMA.
    #[allow(clippy::too_many_arguments)]
    unsafe fn chunks<const NEXT: bool>(
        w: *const f32,
        x: *const f32,
        in_pixel: usize,
        step: usize,
        c: usize,
        n: usize,
        o: *mut f32,
        bias: *const f32,
        residual: *const f32,
        relu: bool,
    );

    /// Runs `q.chunks >= 1` chunks, each one run of `q.taps` whole taps with one
    /// input step `step` (a window row; a window column for a window one tap wide),
    /// from zero: tap `j` of a run at weights `w + j * 256` (on from the previous
    /// run's) and pixel `p`'s input at `x + j * step`, plus `d[p]` bytes (`d[0]` is
    /// 0; raster tiles' pixels cross output row ends, so are not evenly apart);
    /// between runs the input moves on by `q.skip_run`, and after `q.ky` runs, then
    /// every `q.runs` runs, by `q.skip_block` more (the next input block). Each
    /// chunk is added and stored as in [`chunks`](Self::chunks) (`bias` if not null
    /// for the first, `q.residual` and `q.relu` on the last): the same sums as
    /// [`taps`](Self::taps) then [`store`](super::store) per chunk, the compiled
    /// control flow between chunks gone (figures: `docs/kernels.md`). With `NEXT`,
    /// each tap first prefetches its input for the next tile along the row (`$px`
    /// pixels on, at stride 2: pixels 32 floats apart), as
    /// [`TileArgs::prefetch_next`](crate::microkernel::TileArgs::prefetch_next) asks.
    /// Steps the counters in `q`.
    ///
    /// # Safety
    /// The weights and inputs of the chunks are readable, the tile's outputs (and
    /// residual and bias, if not null) readable and the outputs writable; the CPU
    /// has AVX2 and FMA.
    unsafe fn runs<const NEXT: bool>(
        w: *const f32,
        x: *const f32,
        d: &[usize; 6],
        step: usize,
        o: *mut f32,
        bias: *const f32,
        q: &mut RunParams,
    );

    /// Runs `n >= 1` whole taps in chunks of `q.chunk` (the last may be shorter),
    /// walked in runs of `q.taps` (a window row; a window column for a window one
    /// tap wide) that the chunks need not line up with (a 1x7's rows of 7 taps in
    /// chunks of 3): within a run the input steps `step`, tap `j` at weights `w + j *
    /// 256`; the call's first run has `q.kx` taps left and its block `q.ky` runs
    /// left; past a run's last tap the input moves on by `q.skip_run`, and past a
    /// block's last run (every `q.runs` runs) by `q.skip_block` more. Each chunk from
    /// zero, added and stored as in [`chunks`](Self::chunks): the same sums as
    /// [`taps`](Self::taps) per run then [`store`](super::store) per chunk, the
    /// compiled control flow between runs and chunks gone (figures:
    /// `docs/kernels.md`). Steps the counters in `q`.
    ///
    /// # Safety
    /// The weights and inputs of the `n` taps are readable, the tile's outputs
    /// (and residual and bias, if not null) readable and the outputs writable; the
    /// CPU has AVX2 and FMA.
    #[allow(clippy::too_many_arguments)]
    unsafe fn pieces(
        w: *const f32,
        x: *const f32,
        in_pixel: usize,
        step: usize,
        n: usize,
        o: *mut f32,
        bias: *const f32,
        q: &mut PieceParams,
    );
}

/// What [`AsmTile::runs`] reads from memory rather than registers (bytes where it
/// steps pointers), and its walk's counters: laid out as its asm reads it.
#[repr(C)]
pub(super) struct RunParams {
    /// Taps per run (and chunk).
    pub(super) taps: usize,
    /// Bytes from a run's input, after its taps, to the next run's.
    pub(super) skip_run: usize,
    /// Bytes more from a block's last run to the next block's first.
    pub(super) skip_block: usize,
    /// Runs per input block.
    pub(super) runs: usize,
    /// Residual of the last chunk, or null.
    pub(super) residual: *const f32,
    /// Clamp the last chunk at zero (0 or 1).
    pub(super) relu: usize,
    /// Runs left in the current block, the current one included (at least 1).
    pub(super) ky: usize,
    /// Chunks left, the current one included (at least 1).
    pub(super) chunks: usize,
}

/// What [`AsmTile::pieces`] reads from memory rather than registers (bytes where
/// it steps pointers), and its walk's counters: laid out as its asm reads it.
#[repr(C)]
pub(super) struct PieceParams {
    /// Taps per chunk.
    pub(super) chunk: usize,
    /// Bytes from a run's input, after its taps, to the next run's.
    pub(super) skip_run: usize,
    /// Taps per run.
    pub(super) taps: usize,
    /// Taps left in the current run (at least 1).
    pub(super) kx: usize,
    /// Runs left in the current block, the current one included (at least 1).
    pub(super) ky: usize,
    /// Bytes more from a block's last run to the next block's first.
    pub(super) skip_block: usize,
    /// Runs per input block.
    pub(super) runs: usize,
    /// Residual of the last chunk, or null.
    pub(super) residual: *const f32,
    /// Clamp the last chunk at zero (0 or 1).
    pub(super) relu: usize,
}

/// [`AsmTile`] for the accumulators of a 1 x `$px` tile: `$acc` (an array
/// pattern) names them, `$r => $a` puts each in its register (pixel halves from
/// ymm0 on), `$u` are the unused registers up to ymm11, `$d => $i` name pixel
/// `$i`'s input offset for [`AsmTile::runs`] (pixels 1 to `$px - 1`).
macro_rules! asm_tile {
    ($px:tt, $acc:pat, [$($r:tt => $a:ident),*], [$($u:tt),*], [$($d:ident => $i:literal),*]) => {
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
            unsafe fn chunks<const NEXT: bool>(
                w: *const f32,
                x: *const f32,
                in_pixel: usize,
                step: usize,
                c: usize,
                n: usize,
                o: *mut f32,
                bias: *const f32,
                residual: *const f32,
                relu: bool,
            ) {
                // SAFETY: reads the weights, inputs, outputs, bias and residual and
                // writes the outputs the caller vouches for; clobbers only the named
                // registers.
                unsafe {
                    if NEXT {
                        chunks_asm!($px, next_tile_1xn!($px), w, x, in_pixel, step, c, n, o, bias, residual, relu)
                    } else {
                        chunks_asm!($px, "", w, x, in_pixel, step, c, n, o, bias, residual, relu)
                    }
                }
            }

            #[target_feature(enable = "avx2,fma")]
            #[inline]
            unsafe fn runs<const NEXT: bool>(
                w: *const f32,
                x: *const f32,
                d: &[usize; 6],
                step: usize,
                o: *mut f32,
                bias: *const f32,
                q: &mut RunParams,
            ) {
                let p: *mut RunParams = q;
                // SAFETY: reads the weights, inputs, outputs, bias, residual and `q`
                // and writes the outputs and `q`'s counters the caller vouches for;
                // clobbers only the named registers.
                unsafe {
                    if NEXT {
                        runs_asm!($px, next_tile_s2_1xn!($px), w, x, step, o, bias, p, [$($d = d[$i]),*])
                    } else {
                        runs_asm!($px, "", w, x, step, o, bias, p, [$($d = d[$i]),*])
                    }
                }
            }

            #[target_feature(enable = "avx2,fma")]
            #[inline]
            unsafe fn pieces(
                w: *const f32,
                x: *const f32,
                in_pixel: usize,
                step: usize,
                n: usize,
                o: *mut f32,
                bias: *const f32,
                q: &mut PieceParams,
            ) {
                let p: *mut PieceParams = q;
                // SAFETY: reads the weights, inputs, outputs, bias, residual and `q`
                // and writes the outputs and `q`'s counters the caller vouches for;
                // clobbers only the named registers.
                unsafe { pieces_asm!($px, w, x, in_pixel, step, n, o, bias, p) }
            }
        }
    };
}

asm_tile!(
    6,
    [[[a0, a1], [a2, a3], [a4, a5], [a6, a7], [a8, a9], [a10, a11]]],
    ["ymm0" => a0, "ymm1" => a1, "ymm2" => a2, "ymm3" => a3, "ymm4" => a4, "ymm5" => a5,
     "ymm6" => a6, "ymm7" => a7, "ymm8" => a8, "ymm9" => a9, "ymm10" => a10, "ymm11" => a11],
    [],
    [d1 => 1, d2 => 2, d3 => 3, d4 => 4, d5 => 5]
);
asm_tile!(
    5,
    [[[a0, a1], [a2, a3], [a4, a5], [a6, a7], [a8, a9]]],
    ["ymm0" => a0, "ymm1" => a1, "ymm2" => a2, "ymm3" => a3, "ymm4" => a4, "ymm5" => a5,
     "ymm6" => a6, "ymm7" => a7, "ymm8" => a8, "ymm9" => a9],
    ["ymm10", "ymm11"],
    [d1 => 1, d2 => 2, d3 => 3, d4 => 4]
);
asm_tile!(
    4,
    [[[a0, a1], [a2, a3], [a4, a5], [a6, a7]]],
    ["ymm0" => a0, "ymm1" => a1, "ymm2" => a2, "ymm3" => a3, "ymm4" => a4, "ymm5" => a5,
     "ymm6" => a6, "ymm7" => a7],
    ["ymm8", "ymm9", "ymm10", "ymm11"],
    [d1 => 1, d2 => 2, d3 => 3]
);
