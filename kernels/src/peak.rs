//! The machine's peak multiply-add throughput per core, measured: the yardstick
//! kernels are judged against.
//!
//! Each tier runs a loop of independent fused multiply-adds on as many registers as
//! it takes to cover the FMA latency on every FMA port, so nothing but FMA
//! throughput limits it.

use std::time::Instant;

use crate::dispatch::Kernels;

/// Measures the FMA peak of `kernels`' tier on the calling thread for about
/// `seconds`, in GFLOP/s (2 FLOPs per lane per FMA): the best of many ~10 ms
/// windows, so that time slices lost to other processes do not count.
pub fn fma_peak_gflops(kernels: &Kernels, seconds: f64) -> f64 {
    let (run, flops_per_iter) = kernels.peak;
    // SAFETY: a `Kernels` exists only for a tier this CPU runs.
    unsafe { loop_gflops(run, flops_per_iter, seconds) }
}

/// The best GFLOP/s of `run` (a throughput loop of `flops_per_iter` FLOPs per
/// iteration) over many ~10 ms windows in about `seconds`.
///
/// # Safety
/// The CPU must run `run`'s instructions.
pub(crate) unsafe fn loop_gflops(run: unsafe fn(u64) -> f32, flops_per_iter: u64, seconds: f64) -> f64 {
    let window = 0.01;
    // Calibrate the iteration count of one window.
    let mut iters = 1 << 12;
    loop {
        let t = Instant::now();
        // SAFETY: the caller's contract.
        std::hint::black_box(unsafe { run(iters) });
        let dt = t.elapsed().as_secs_f64();
        if dt > window / 4.0 {
            iters = ((iters as f64) * window / dt).max(1.0) as u64;
            break;
        }
        iters *= 4;
    }
    let start = Instant::now();
    let mut best = 0f64;
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        // SAFETY: as above.
        std::hint::black_box(unsafe { run(iters) });
        best = best.max(iters as f64 * flops_per_iter as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// Portable: 16 independent 16-lane accumulators, left to the compiler.
pub(crate) unsafe fn fma_loop_portable(iters: u64) -> f32 {
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

/// FLOPs per iteration of [`fma_loop_portable`].
pub(crate) const PORTABLE_FLOPS: u64 = 2 * 16 * 16;

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    /// 14 ymm accumulators (2 more registers hold the operands): 2 FMA ports x 4-5
    /// cycles of latency need at least 10 in flight.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn fma_loop_avx2(iters: u64) -> f32 {
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
    pub(crate) const AVX2_FLOPS: u64 = 2 * 8 * 14;

    /// 16 zmm accumulators.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn fma_loop_avx512(iters: u64) -> f32 {
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
    pub(crate) const AVX512_FLOPS: u64 = 2 * 16 * 16;
}
