//! ISA tiers: detection, the `INCEPT_TIER` override, and the kernel table.
//!
//! A [`Kernels`] value can only be made for a tier the CPU supports, so holding one
//! proves its microkernels are safe to call (the pattern of memchr's `avx2::One`).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::conv::ConvMicrokernel;
use crate::peak;
use crate::{Bands, Image, ImageMut, PoolGeometry, winograd};

type PoolFn = unsafe fn(Bands, &PoolGeometry, Option<bool>, &mut ImageMut, usize, bool);
type GapFn = unsafe fn(Bands, &mut ImageMut);
type LinearFn = unsafe fn(Image, &[f32], &[f32], bool, &mut ImageMut);

/// A tier's Winograd transforms (see [`crate::winograd`]).
#[derive(Clone, Copy)]
pub(crate) struct WinogradOps {
    /// Input transform of one chunk.
    pub(crate) input: unsafe fn(&mut winograd::InputJob),
    /// Output transform of one chunk and group of output blocks. Its safety
    /// contract is [`winograd::output_transform`]'s.
    pub(crate) output: unsafe fn(&winograd::OutputJob),
}

/// The blocked pooling and linear bodies compiled for one tier's target features.
macro_rules! blocked_ops {
    ($name:ident $(, $feature:literal)?) => {
        mod $name {
            use crate::{Bands, Image, ImageMut, PoolGeometry, blocked, winograd};
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn pool(
                i: Bands,
                g: &PoolGeometry,
                avg: Option<bool>,
                o: &mut ImageMut,
                oy0: usize,
                ahead: bool,
            ) {
                blocked::pool(i, g, avg, o, oy0, ahead)
            }
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn gap(i: Bands, o: &mut ImageMut) {
                blocked::global_avg_pool(i, o)
            }
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn linear(i: Image, w: &[f32], b: &[f32], relu: bool, o: &mut ImageMut) {
                blocked::linear(i, w, b, relu, o)
            }
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn wino_input(job: &mut winograd::InputJob) {
                winograd::input_transform(job)
            }
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn wino_output(job: &winograd::OutputJob) {
                // SAFETY: forwarded contract.
                unsafe { winograd::output_transform(job) }
            }
        }
    };
}
blocked_ops!(portable);
#[cfg(target_arch = "x86_64")]
blocked_ops!(avx2, "avx2,fma");
#[cfg(target_arch = "x86_64")]
blocked_ops!(avx512, "avx512f");
#[cfg(target_arch = "aarch64")]
blocked_ops!(neon, "neon");

/// An instruction-set tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Portable Rust, no explicit SIMD (the compiler may still vectorise).
    Scalar,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2,
    /// x86-64 AVX-512F (512-bit).
    Avx512,
    /// AArch64 NEON (128-bit).
    Neon,
}

/// Every tier, narrowest first.
pub const TIERS: [Tier; 4] = [Tier::Scalar, Tier::Neon, Tier::Avx2, Tier::Avx512];

/// Environment variable that forces a tier: `scalar`, `avx2`, `avx512` or `neon`.
pub const TIER_ENV: &str = "INCEPT_TIER";

impl Tier {
    /// Lower-case name, as `INCEPT_TIER` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Scalar => "scalar",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
            Tier::Neon => "neon",
        }
    }

    /// The tier called `name`.
    pub fn parse(name: &str) -> Option<Tier> {
        TIERS.into_iter().find(|t| t.name() == name)
    }

    /// Whether this CPU runs the tier.
    pub fn is_available(self) -> bool {
        match self {
            Tier::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Tier::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Tiers this CPU runs that have kernels, narrowest first.
    pub fn available() -> Vec<Tier> {
        TIERS.into_iter().filter(|t| t.is_available() && Kernels::new(*t).is_some()).collect()
    }

    /// The widest available tier.
    pub fn best() -> Tier {
        *Tier::available().last().expect("the scalar tier is always available")
    }

    /// The tier named by `INCEPT_TIER`, or the best one when it is unset. Naming an
    /// unknown tier, or one this CPU cannot run, is an error.
    pub fn from_env() -> Result<Tier, String> {
        match std::env::var(TIER_ENV) {
            Err(_) => Ok(Tier::best()),
            Ok(name) => {
                let tier = Tier::parse(&name)
                    .ok_or_else(|| format!("{TIER_ENV}={name}: unknown tier (scalar, avx2, avx512, neon)"))?;
                if !Tier::available().contains(&tier) {
                    return Err(format!("{TIER_ENV}={name}: this CPU cannot run the {name} tier"));
                }
                Ok(tier)
            }
        }
    }
}

/// The microkernels of one tier. Only constructible when the CPU supports the tier.
#[derive(Clone, Copy)]
pub struct Kernels {
    tier: Tier,
    pub(crate) conv: ConvMicrokernel,
    pub(crate) pool: PoolFn,
    pub(crate) gap: GapFn,
    pub(crate) linear: LinearFn,
    pub(crate) winograd: WinogradOps,
    /// FMA throughput loop and the FLOPs of one iteration (see [`crate::peak`]).
    pub(crate) peak: (unsafe fn(u64) -> f32, u64),
    /// Whether the x86 tiers may prefetch for writing (see
    /// [`crate::conv::TileArgs::prefetch_output`]).
    pub(crate) prefetchw: bool,
}

impl Kernels {
    /// The kernels of `tier`, or `None` when this CPU cannot run it.
    pub fn new(tier: Tier) -> Option<Kernels> {
        if !tier.is_available() {
            return None;
        }
        macro_rules! table {
            ($conv:expr, $ops:ident, $peak:expr) => {
                Kernels {
                    tier,
                    conv: $conv,
                    pool: $ops::pool,
                    gap: $ops::gap,
                    linear: $ops::linear,
                    winograd: WinogradOps { input: $ops::wino_input, output: $ops::wino_output },
                    peak: $peak,
                    prefetchw: {
                        #[cfg(target_arch = "x86_64")]
                        let has = crate::x86_64::has_prefetchw();
                        #[cfg(not(target_arch = "x86_64"))]
                        let has = false;
                        has
                    },
                }
            };
        }
        Some(match tier {
            Tier::Scalar => table!(crate::scalar::CONV, portable, (peak::fma_loop_portable, peak::PORTABLE_FLOPS)),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => table!(crate::x86_64::avx2::CONV, avx2, (peak::x86::fma_loop_avx2, peak::x86::AVX2_FLOPS)),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512 => {
                table!(crate::x86_64::avx512::CONV, avx512, (peak::x86::fma_loop_avx512, peak::x86::AVX512_FLOPS))
            }
            #[cfg(target_arch = "aarch64")]
            // NEON is part of the aarch64 baseline: the portable loop compiles to NEON FMAs.
            Tier::Neon => table!(crate::aarch64::neon::CONV, neon, (peak::fma_loop_portable, peak::PORTABLE_FLOPS)),
            #[allow(unreachable_patterns)]
            _ => return None,
        })
    }

    /// The tier these kernels belong to.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The convolution microkernel's name (op, tile, ISA).
    pub fn conv_name(&self) -> &'static str {
        self.conv.name
    }

    pub(crate) fn record_call(&self) {
        CALLS[self.tier as usize].fetch_add(1, Ordering::Relaxed);
    }
}

static CALLS: [AtomicU64; 4] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels").field("tier", &self.tier).field("conv", &self.conv.name).finish()
    }
}

/// How many kernel calls each tier has served in this process: lets tests assert
/// that a forced tier really ran.
pub fn tier_calls(tier: Tier) -> u64 {
    CALLS[tier as usize].load(Ordering::Relaxed)
}
