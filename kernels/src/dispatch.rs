//! ISA tiers: the tier table, detection, and the `INCEPT_TIER` override.
//!
//! A [`Kernels`] value can only be made for a tier the CPU supports, so holding one
//! proves its microkernels are safe to call (the pattern of memchr's `avx2::One`).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::microkernel::TileShapes;
use crate::ops::TierOps;

/// An instruction-set tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Portable Rust on 16-lane vectors of the `wide` crate: the target's baseline
    /// SIMD (SSE2 on x86-64, NEON on AArch64), on any CPU.
    Portable,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2,
    /// x86-64 AVX-512F (512-bit).
    Avx512,
    /// AArch64 NEON (128-bit).
    Neon,
}

/// Every tier, narrowest first.
pub const TIERS: [Tier; 4] = [Tier::Portable, Tier::Neon, Tier::Avx2, Tier::Avx512];

/// The tiers compiled for this architecture and their kernels: a new tier is its
/// file and one line here (and its [`Tier`] variant).
const TABLE: &[(Tier, &TierOps)] = &[
    (Tier::Portable, &crate::portable::OPS),
    #[cfg(target_arch = "x86_64")]
    (Tier::Avx2, &crate::x86_64::avx2::OPS),
    #[cfg(target_arch = "x86_64")]
    (Tier::Avx512, &crate::x86_64::avx512::OPS),
    #[cfg(target_arch = "aarch64")]
    (Tier::Neon, &crate::aarch64::neon::OPS),
];

/// Environment variable that forces a tier: `portable`, `avx2`, `avx512` or `neon`.
pub const TIER_ENV: &str = "INCEPT_TIER";

impl Tier {
    /// Lower-case name, as `INCEPT_TIER` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Portable => "portable",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
            Tier::Neon => "neon",
        }
    }

    /// The tier called `name` (`scalar`, the portable tier's former name, too).
    pub fn parse(name: &str) -> Option<Tier> {
        if name == "scalar" {
            return Some(Tier::Portable);
        }
        TIERS.into_iter().find(|t| t.name() == name)
    }

    /// The kernels of this tier, if compiled for this architecture.
    fn ops(self) -> Option<&'static TierOps> {
        TABLE.iter().find(|(t, _)| *t == self).map(|(_, ops)| *ops)
    }

    /// Whether this CPU runs the tier.
    pub fn is_available(self) -> bool {
        self.ops().is_some_and(|ops| (ops.available)())
    }

    /// Tiers this CPU runs, narrowest first.
    pub fn available() -> Vec<Tier> {
        TIERS.into_iter().filter(|t| t.is_available()).collect()
    }

    /// The widest available tier.
    pub fn best() -> Tier {
        *Tier::available().last().expect("the portable tier is always available")
    }

    /// The tier named by `INCEPT_TIER`, or the best one when it is unset. Naming an
    /// unknown tier, or one this CPU cannot run, is an error.
    pub fn from_env() -> Result<Tier, String> {
        match std::env::var(TIER_ENV) {
            Err(_) => Ok(Tier::best()),
            Ok(name) => {
                let tier = Tier::parse(&name)
                    .ok_or_else(|| format!("{TIER_ENV}={name}: unknown tier (portable, avx2, avx512, neon)"))?;
                if !Tier::available().contains(&tier) {
                    return Err(format!("{TIER_ENV}={name}: this CPU cannot run the {name} tier"));
                }
                Ok(tier)
            }
        }
    }
}

/// The kernels of one tier. Only constructible when the CPU supports the tier.
#[derive(Clone, Copy)]
pub struct Kernels {
    tier: Tier,
    pub(crate) ops: TierOps,
    /// Whether the x86 tiers may prefetch for writing (see
    /// [`crate::microkernel::TileArgs::prefetch_output`]).
    pub(crate) prefetchw: bool,
    /// The L2 cache per core in bytes, as the CPU reports it (or a common size
    /// when it does not): the direct convolution walks an input larger than half of
    /// it in panels, and treats a strided window on an input larger than it as
    /// streaming from further out (it prefetches and walks the output row-major).
    pub(crate) l2_bytes: usize,
}

/// The L2 size assumed when the CPU does not report one: a common per-core L2 of
/// x86 server cores.
const DEFAULT_L2_BYTES: usize = 1 << 20;

impl Kernels {
    /// The kernels of `tier`, or `None` when this CPU cannot run it.
    pub fn new(tier: Tier) -> Option<Kernels> {
        let ops = *tier.ops().filter(|ops| (ops.available)())?;
        #[cfg(target_arch = "x86_64")]
        let (prefetchw, l2) = (crate::x86_64::has_prefetchw(), crate::x86_64::l2_bytes());
        #[cfg(not(target_arch = "x86_64"))]
        let (prefetchw, l2) = (false, None);
        Some(Kernels { tier, ops, prefetchw, l2_bytes: l2.unwrap_or(DEFAULT_L2_BYTES) })
    }

    /// The tier these kernels belong to.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The L2 cache per core in bytes that the drivers' choices assume: what the
    /// CPU reports (CPUID on x86-64), or 1 MiB when it does not say.
    pub fn l2_bytes(&self) -> usize {
        self.l2_bytes
    }

    /// The same kernels, their drivers assuming an L2 of `bytes` per core: to
    /// measure on one host what the cache-size choices are worth (`incept peak
    /// --l2-kib`), or to correct a CPU (or hypervisor) that reports a wrong size.
    pub fn with_l2_bytes(self, bytes: usize) -> Kernels {
        Kernels { l2_bytes: bytes.max(1), ..self }
    }

    /// The convolution microkernel's name (op, tile, ISA).
    pub fn conv_name(&self) -> &'static str {
        self.ops.conv.name
    }

    /// The convolution microkernel's tile shape (output blocks, pixels) scheduled by
    /// hand in asm, if any.
    pub fn hand_scheduled(&self) -> Option<(usize, usize)> {
        self.ops.conv.hand_scheduled
    }

    /// Every tile shape (output blocks, pixels) the convolution microkernel computes.
    pub fn tile_shapes(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let max_px = self.ops.conv.max_px;
        (1..max_px.len()).flat_map(move |ob| (1..=max_px[ob]).map(move |px| (ob, px)))
    }

    pub(crate) fn record_call(&self) {
        CALLS[self.tier as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a convolution walked in several panels (see [`panel_calls`]).
    pub(crate) fn record_panels(&self) {
        PANEL_CALLS[self.tier as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a direct convolution of a window taller than one tap walked as one
    /// long row (see [`long_row_calls`]).
    pub(crate) fn record_long_row(&self) {
        LONG_ROW_CALLS[self.tier as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an image convolution that staged its rows in several chunks (see
    /// [`image_chunk_calls`]).
    pub(crate) fn record_image_chunks(&self) {
        IMAGE_CHUNK_CALLS[self.tier as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an image convolution computed from its interleaved rows without
    /// staging (see [`image_row_calls`]).
    pub(crate) fn record_image_rows(&self) {
        IMAGE_ROW_CALLS[self.tier as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the tile shapes one task ran (see [`tile_calls`]).
    pub(crate) fn record_tiles(&self, shapes: TileShapes) {
        for (ob, px) in shapes.iter() {
            TILE_CALLS[self.tier as usize][ob * MAX_PX + px].fetch_add(1, Ordering::Relaxed);
        }
    }
}

static CALLS: [AtomicU64; TIERS.len()] = [const { AtomicU64::new(0) }; TIERS.len()];

static PANEL_CALLS: [AtomicU64; TIERS.len()] = [const { AtomicU64::new(0) }; TIERS.len()];

static LONG_ROW_CALLS: [AtomicU64; TIERS.len()] = [const { AtomicU64::new(0) }; TIERS.len()];

static IMAGE_CHUNK_CALLS: [AtomicU64; TIERS.len()] = [const { AtomicU64::new(0) }; TIERS.len()];

static IMAGE_ROW_CALLS: [AtomicU64; TIERS.len()] = [const { AtomicU64::new(0) }; TIERS.len()];

/// Pixels per tile of any tier, plus one.
const MAX_PX: usize = 17;

static TILE_CALLS: [[AtomicU64; 5 * MAX_PX]; TIERS.len()] =
    [const { [const { AtomicU64::new(0) }; 5 * MAX_PX] }; TIERS.len()];

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conv = self.ops.conv.name;
        f.debug_struct("Kernels")
            .field("tier", &self.tier)
            .field("conv", &conv)
            .field("l2_bytes", &self.l2_bytes)
            .finish()
    }
}

/// How many kernel calls each tier has served in this process: lets tests assert
/// that a forced tier really ran.
pub fn tier_calls(tier: Tier) -> u64 {
    CALLS[tier as usize].load(Ordering::Relaxed)
}

/// How many direct convolutions of `tier` have walked their input in more than one
/// panel (see [`Kernels::l2_bytes`]) in this process: lets tests assert that the
/// panel walk ran.
pub fn panel_calls(tier: Tier) -> u64 {
    PANEL_CALLS[tier as usize].load(Ordering::Relaxed)
}

/// How many direct convolutions of `tier` with a window one tap wide and taller
/// than one (3x1, 7x1) have walked their output as one row of all its pixels in
/// this process: lets tests assert that the long row ran.
pub fn long_row_calls(tier: Tier) -> u64 {
    LONG_ROW_CALLS[tier as usize].load(Ordering::Relaxed)
}

/// Whether the AVX2 tier's hand-scheduled tile has run a 1x1 layer's middle chunks
/// in one asm block while prefetching weights (the blocks of taps of a small map)
/// in this process: lets tests assert that the path ran.
pub fn prefetched_asm_chunks() -> bool {
    crate::microkernel::PREFETCHED_ASM_CHUNKS.load(Ordering::Relaxed)
}

/// Whether the AVX2 tier's hand-scheduled tiles have run a window's chunks (its
/// rows, or its columns for a window one tap wide) in one asm block in this
/// process: lets tests assert that the path ran.
pub fn window_asm_chunks() -> bool {
    crate::microkernel::WINDOW_ASM_CHUNKS.load(Ordering::Relaxed)
}

/// Whether the AVX2 tier's hand-scheduled tiles have run a window's chunks that
/// are pieces of its rows or columns (a 1x7's, 7x1's or 5x5's chunks of 3 taps)
/// in one asm block in this process: lets tests assert that the path ran.
pub fn window_piece_asm_chunks() -> bool {
    crate::microkernel::WINDOW_PIECE_ASM_CHUNKS.load(Ordering::Relaxed)
}

/// Whether the AVX2 tier's hand-scheduled tiles have run raster tiles (pixels
/// across output row ends, see `RowWrap`) of a small map's window in one asm
/// block in this process: lets tests assert that the path ran.
pub fn raster_asm_chunks() -> bool {
    crate::microkernel::RASTER_ASM_CHUNKS.load(Ordering::Relaxed)
}

/// Whether the AVX2 tier's hand-scheduled tile has run a 1x1 layer's chunks in
/// one asm block while prefetching the next tile's input (several threads) in this
/// process: lets tests assert that the path ran.
pub fn next_tile_asm_chunks() -> bool {
    crate::microkernel::NEXT_TILE_ASM_CHUNKS.load(Ordering::Relaxed)
}

/// Whether the AVX2 tier's hand-scheduled tile has run a stride-2 window's chunks
/// in one asm block while prefetching the next tile's input (a large input, or
/// several threads) in this process: lets tests assert that the path ran.
pub fn next_window_asm_chunks() -> bool {
    crate::microkernel::NEXT_WINDOW_ASM_CHUNKS.load(Ordering::Relaxed)
}

/// How many image convolutions (`conv2d_image`) of `tier` have staged each output
/// row in more than one chunk of pixels in this process: lets tests assert that
/// the chunks ran.
pub fn image_chunk_calls(tier: Tier) -> u64 {
    IMAGE_CHUNK_CALLS[tier as usize].load(Ordering::Relaxed)
}

/// How many image convolutions (`conv2d_image`) of `tier` have been computed from
/// the image's interleaved rows without staging its windows (the AVX2 tier's 3x3
/// stride-2 windows of 3 channels) in this process: lets tests assert that they ran.
pub fn image_row_calls(tier: Tier) -> u64 {
    IMAGE_ROW_CALLS[tier as usize].load(Ordering::Relaxed)
}

/// How many convolution tasks of `tier` have run at least one tile of `ob` output
/// blocks and `px` pixels in this process (direct and Winograd alike): lets tests
/// assert that every tile shape of a tier's menu ([`Kernels::tile_shapes`]) ran.
pub fn tile_calls(tier: Tier, ob: usize, px: usize) -> u64 {
    if ob > 4 || px >= MAX_PX {
        return 0;
    }
    TILE_CALLS[tier as usize][ob * MAX_PX + px].load(Ordering::Relaxed)
}
