//! Kernels for incept: convolution, pooling and elementwise operators over one image.
//!
//! This crate knows nothing of graphs, threads or files. Every kernel works on a
//! single image (`C x H x W`) described by an [`Image`] view whose [`Layout`] is
//! either plain `NCHW` or the channel-blocked `NCHW16c` the engine runs on.
//!
//! - [`reference`](mod@reference): naive, obviously correct implementations of every operator.
//!   They are the oracle the optimised tiers are tested and fuzzed against, and are
//!   never optimised themselves.
//! - [`conv`]: direct convolution on NCHW16c with per-tier microkernels, chosen at
//!   run time through [`Kernels`] (see [`dispatch`]); weights packed by [`pack`].
//! - [`winograd`]: Winograd F(2x2, 3x3) for 3x3 and F(2, 3) for 1x3/3x1/1x7/7x1
//!   stride-1 convolutions, whose GEMMs run on the same microkernels.

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod bands;
pub mod bf16;
pub mod blocked;
pub mod conv;
pub mod dispatch;
pub mod geometry;
pub mod layout;
pub mod pack;
pub mod parallel;
pub mod peak;
pub mod reference;
mod scalar;
pub mod winograd;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use bands::{Bands, BandsMut, RowSplit};
pub use dispatch::{Kernels, TIER_ENV, Tier, tier_calls};
pub use geometry::{Activation, ConvGeometry, Padding, PoolGeometry};
pub use layout::{AlignedVec, BLOCK, Dims, Image, ImageMut, Layout};

/// Asks for the cache line at `p` (any address: a prefetch never faults). A no-op
/// off x86-64.
#[inline(always)]
pub(crate) fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults; SSE is
    // part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for the cache line at `p` for writing (PREFETCHW; any address: a prefetch
/// never faults). Only for CPUs that have it (`Kernels::prefetchw`); a no-op off
/// x86-64.
#[inline(always)]
pub(crate) fn prefetch_write(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHW never faults and changes nothing the program sees; callers
    // use it only on CPUs that have it.
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
