//! The machine's peak multiply-add throughput per core, measured: the yardstick
//! kernels are judged against.
//!
//! Each tier runs a loop of independent multiply-adds on as many registers as it
//! takes to cover the FMA latency on every FMA port, so nothing but FMA throughput
//! limits it (the loops live in the tier files).

use std::time::Instant;

use crate::dispatch::Kernels;

/// Measures the FMA peak of `kernels`' tier on the calling thread for about
/// `seconds`, in GFLOP/s (2 FLOPs per lane per FMA): the best of many ~10 ms
/// windows, so that time slices lost to other processes do not count.
pub fn fma_peak_gflops(kernels: &Kernels, seconds: f64) -> f64 {
    fma_peak_gflops_by(kernels, seconds, &wall_seconds)
}

/// [`fma_peak_gflops`] timed by `clock` (seconds from any fixed start), such as
/// the calling thread's CPU time, which time slices lost to other processes do not
/// advance.
pub fn fma_peak_gflops_by(kernels: &Kernels, seconds: f64, clock: &dyn Fn() -> f64) -> f64 {
    let (run, flops_per_iter) = (kernels.ops.peak, kernels.ops.peak_flops);
    // SAFETY: a `Kernels` exists only for a tier this CPU runs.
    unsafe { loop_gflops_by(run, flops_per_iter, seconds, clock) }
}

/// Seconds of the monotonic wall clock since its first call.
fn wall_seconds() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// The best GFLOP/s of `run` (a throughput loop of `flops_per_iter` FLOPs per
/// iteration) over many ~10 ms windows in about `seconds`.
///
/// # Safety
/// The CPU must run `run`'s instructions.
pub(crate) unsafe fn loop_gflops(run: unsafe fn(u64) -> f32, flops_per_iter: u64, seconds: f64) -> f64 {
    // SAFETY: the caller's contract.
    unsafe { loop_gflops_by(run, flops_per_iter, seconds, &wall_seconds) }
}

/// [`loop_gflops`] timed by `clock`.
///
/// # Safety
/// As [`loop_gflops`].
unsafe fn loop_gflops_by(
    run: unsafe fn(u64) -> f32,
    flops_per_iter: u64,
    seconds: f64,
    clock: &dyn Fn() -> f64,
) -> f64 {
    let window = 0.01;
    // Calibrate the iteration count of one window.
    let mut iters = 1 << 12;
    loop {
        let t = clock();
        // SAFETY: the caller's contract.
        std::hint::black_box(unsafe { run(iters) });
        let dt = clock() - t;
        if dt > window / 4.0 {
            iters = ((iters as f64) * window / dt).max(1.0) as u64;
            break;
        }
        iters *= 4;
    }
    let start = clock();
    let mut best = 0f64;
    while clock() - start < seconds || best == 0.0 {
        let t = clock();
        // SAFETY: as above.
        std::hint::black_box(unsafe { run(iters) });
        best = best.max(iters as f64 * flops_per_iter as f64 / (clock() - t) / 1e9);
    }
    best
}
