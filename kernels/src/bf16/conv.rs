//! Direct convolution with BF16 operands on NCHW16c float32 images: the driver,
//! the tile contract and the tiers.
//!
//! The driver converts the input to BF16 once per call (padded, into scratch:
//! each value is read by every tap and output block group that covers it, so
//! converting it there would repeat the work up to `kh * kw * groups` times), then
//! walks the output in tiles of `ob` output blocks x `px` pixels of one row, as the
//! float32 driver does, and hands each to the tier's microkernel. An unpadded 1x1
//! stride-1 layer with few output block groups skips the pass: its tiles round the
//! float32 input as they read it. Outputs, bias and residual stay float32. With
//! split operands ([`Bf16Terms::Split3`]) it is the same convolution over three
//! groups of input channels (`super::terms`), always through the pass.
//!
//! On several threads, the pass converts runs of rows, a few per thread, and the
//! tiles are spread over the threads in runs of (output block group, row) units;
//! every split computes the same tiles, so the same bits.

use std::sync::atomic::{AtomicU64, Ordering};

use super::convert::bf16;

use super::microkernel::{Bf16Microkernel, Bf16TileArgs};
use super::stage::{TASKS_PER_THREAD, fill_rows, stage_row};
use super::terms::Bf16Terms;
use crate::bands::Bands;
use crate::microkernel::TileShapes;
use crate::microkernel::chunk_taps_of;
use crate::pack::ConvShape;
use crate::parallel::{ParallelFor, SharedMut};
use crate::{Activation, BLOCK, ConvGeometry, Dims, Image, ImageMut, Layout};

/// A BF16 instruction-set tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bf16Tier {
    /// Portable Rust emulating `VDPBF16PS` one product at a time: every host, slowly.
    Portable,
    /// AArch64 NEON with BF16 (FEAT_BF16, `BFDOT`): Arm Neoverse V1/V2/N2, Apple M2
    /// and later, Cortex-A510/A710 and later.
    NeonBf16,
    /// x86-64 AVX512-BF16 (`VDPBF16PS`): AMD Zen 4 and later, Intel Cooper Lake
    /// and later.
    Avx512Bf16,
    /// x86-64 AMX (`TDPBF16PS` on tiles): Intel Sapphire Rapids and later, once
    /// Linux grants the process the tile state (see `bf16::amx`).
    Amx,
}

/// Every BF16 tier, narrowest first.
pub const BF16_TIERS: [Bf16Tier; 4] = [Bf16Tier::Portable, Bf16Tier::NeonBf16, Bf16Tier::Avx512Bf16, Bf16Tier::Amx];

impl Bf16Tier {
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Bf16Tier::Portable => "bf16-portable",
            Bf16Tier::NeonBf16 => "neonbf16",
            Bf16Tier::Avx512Bf16 => "avx512bf16",
            Bf16Tier::Amx => "amx",
        }
    }

    /// The tier called `name`.
    pub fn parse(name: &str) -> Option<Bf16Tier> {
        BF16_TIERS.into_iter().find(|t| t.name() == name)
    }

    /// Whether this CPU runs the tier.
    pub fn is_available(self) -> bool {
        match self {
            Bf16Tier::Portable => true,
            #[cfg(target_arch = "aarch64")]
            Bf16Tier::NeonBf16 => std::arch::is_aarch64_feature_detected!("bf16"),
            #[cfg(target_arch = "x86_64")]
            Bf16Tier::Avx512Bf16 => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16"),
            #[cfg(target_arch = "x86_64")]
            Bf16Tier::Amx => super::amx::amx_usable().is_ok(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Why this CPU (or, for AMX, the OS) cannot run the tier; `None` when it can.
    pub fn unavailable_reason(self) -> Option<String> {
        if self.is_available() {
            return None;
        }
        Some(match self {
            #[cfg(target_arch = "x86_64")]
            Bf16Tier::Amx => super::amx::amx_usable().clone().unwrap_err(),
            Bf16Tier::NeonBf16 => {
                "the neonbf16 tier needs an AArch64 CPU with BF16 (FEAT_BF16: `bf16` in /proc/cpuinfo)".into()
            }
            _ => format!("this CPU cannot run the {} tier", self.name()),
        })
    }

    /// Tiers this CPU runs, narrowest first.
    pub fn available() -> Vec<Bf16Tier> {
        BF16_TIERS.into_iter().filter(|t| Bf16Kernels::new(*t).is_some()).collect()
    }

    /// The widest available tier.
    pub fn best() -> Bf16Tier {
        *Bf16Tier::available().last().expect("the portable tier is always available")
    }

    /// The tier named by [`BF16_TIER_ENV`] if set (an error when unknown or not
    /// available here), else the [`best`](Bf16Tier::best).
    pub fn from_env() -> Result<Bf16Tier, String> {
        let Ok(name) = std::env::var(BF16_TIER_ENV) else { return Ok(Bf16Tier::best()) };
        let names: Vec<_> = BF16_TIERS.iter().map(|t| t.name()).collect();
        let tier = Bf16Tier::parse(&name)
            .ok_or_else(|| format!("{BF16_TIER_ENV}={name}: unknown BF16 tier ({})", names.join(", ")))?;
        match tier.is_available() {
            true => Ok(tier),
            false => Err(format!("{BF16_TIER_ENV}={name}: {}", tier.unavailable_reason().unwrap_or_default())),
        }
    }
}

/// The environment variable that forces a BF16 tier (for tests and comparisons).
pub const BF16_TIER_ENV: &str = "INCEPT_BF16_TIER";

/// A throughput loop (iterations in, a value to keep alive out) and the FLOPs of
/// one iteration.
type PeakLoop = (unsafe fn(u64) -> f32, u64);

/// The BF16 microkernels of one tier; only constructible when the CPU runs it, so
/// holding one proves its kernels are safe to call.
#[derive(Clone, Copy, Debug)]
pub struct Bf16Kernels {
    tier: Bf16Tier,
    mk: Bf16Microkernel,
    /// The tier's dot-product throughput loop and the FLOPs of one iteration.
    peak: Option<PeakLoop>,
}

impl Bf16Kernels {
    /// The kernels of `tier`, or `None` when this CPU cannot run it.
    pub fn new(tier: Bf16Tier) -> Option<Bf16Kernels> {
        if !tier.is_available() {
            return None;
        }
        Some(match tier {
            Bf16Tier::Portable => Bf16Kernels { tier, mk: super::portable::CONV, peak: None },
            #[cfg(target_arch = "aarch64")]
            Bf16Tier::NeonBf16 => Bf16Kernels {
                tier,
                mk: super::neon::CONV,
                peak: Some((super::neon::bfdot_loop, super::neon::BFDOT_LOOP_FLOPS)),
            },
            #[cfg(target_arch = "x86_64")]
            Bf16Tier::Avx512Bf16 => Bf16Kernels {
                tier,
                mk: super::avx512::CONV,
                peak: Some((super::avx512::dpbf16_loop, super::avx512::DPBF16_LOOP_FLOPS)),
            },
            #[cfg(target_arch = "x86_64")]
            Bf16Tier::Amx => Bf16Kernels {
                tier,
                mk: super::amx::CONV,
                peak: Some((super::amx::tdpbf16ps_loop, super::amx::TDPBF16PS_LOOP_FLOPS)),
            },
            #[allow(unreachable_patterns)]
            _ => return None,
        })
    }

    /// The AMX tier's kernels on an emulation of the tile instructions, for tests
    /// on hosts without AMX: the tier's tile logic, not its instructions, and
    /// never a tier the engine selects (see `bf16::amx_tiles`).
    #[cfg(any(test, feature = "amx-emulation-for-tests"))]
    #[doc(hidden)]
    pub fn amx_emulated() -> Bf16Kernels {
        Bf16Kernels { tier: Bf16Tier::Amx, mk: super::amx::CONV_EMULATED, peak: None }
    }

    /// The tier these kernels belong to.
    pub fn tier(&self) -> Bf16Tier {
        self.tier
    }

    /// The tier's float32 to BF16 row conversion.
    pub(super) fn mk_to_bf16(&self) -> unsafe fn(&[f32], &mut [bf16]) {
        self.mk.to_bf16
    }

    /// The tier's tile of a BF16 NCHW image.
    pub(super) fn image_tile(&self) -> unsafe fn(&Bf16TileArgs, usize, usize) {
        self.mk.image_tile
    }

    /// The convolution microkernel's name (op, tile, ISA).
    pub fn conv_name(&self) -> &'static str {
        self.mk.name
    }

    /// Every tile shape (output blocks, pixels) the convolution microkernel computes.
    pub fn tile_shapes(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let max_px = self.mk.max_px;
        (1..max_px.len()).flat_map(move |ob| (1..=max_px[ob]).map(move |px| (ob, px)))
    }

    /// The tier's peak BF16 dot-product throughput on the calling thread, in
    /// GFLOP/s (a pair's two multiplies and two adds are 4 FLOPs), measured for
    /// about `seconds` as [`crate::peak::fma_peak_gflops`] does; `None` for the
    /// portable tier (and the AMX emulation), which have no instruction of their own.
    pub fn dot_peak_gflops(&self, seconds: f64) -> Option<f64> {
        let (run, flops) = self.peak?;
        // SAFETY: a `Bf16Kernels` exists only for a tier this CPU runs.
        Some(unsafe { crate::peak::loop_gflops(run, flops, seconds) })
    }
}

static CALLS: [AtomicU64; BF16_TIERS.len()] = [const { AtomicU64::new(0) }; BF16_TIERS.len()];

/// The fewest products a BF16 tile sums in registers before adding them to the
/// partial sum in memory: four times float32's
/// [`CHUNK_TERMS`](crate::microkernel::CHUNK_TERMS). `VDPBF16PS` adds two products
/// per lane in the time an FMA adds one, so twice would give each chunk's store
/// (a load, an add and a store per accumulator) float32's share of the arithmetic;
/// four times halves that share again. A float32 chain of a few hundred exact
/// products still stays far below the BF16 rounding of the operands (2^-9
/// relative each).
pub const BF16_CHUNK_TERMS: usize = 4 * crate::microkernel::CHUNK_TERMS;

/// Taps per chunk of a BF16 convolution of `shape`: the float32 rule
/// ([`crate::conv::chunk_taps`]) with [`BF16_CHUNK_TERMS`]. Depends on the shape
/// only, so every tier and tile shape sums in the same order.
pub fn chunk_taps_bf16(shape: ConvShape) -> usize {
    chunk_taps_of(shape, BF16_CHUNK_TERMS)
}

/// Pixels per tile of any tier, plus one.
const PX_SLOTS: usize = 17;

static TILE_CALLS: [[AtomicU64; 5 * PX_SLOTS]; BF16_TIERS.len()] =
    [const { [const { AtomicU64::new(0) }; 5 * PX_SLOTS] }; BF16_TIERS.len()];

/// How many BF16 convolution tasks of `tier` have run at least one tile of `ob`
/// output blocks and `px` pixels in this process: lets tests assert that every
/// tile shape of a tier's menu ([`Bf16Kernels::tile_shapes`]) ran.
pub fn bf16_tile_calls(tier: Bf16Tier, ob: usize, px: usize) -> u64 {
    if ob > 4 || px >= PX_SLOTS {
        return 0;
    }
    TILE_CALLS[tier as usize][ob * PX_SLOTS + px].load(Ordering::Relaxed)
}

/// How many convolutions each BF16 tier has computed in this process: lets tests
/// assert that a forced tier really ran.
pub fn bf16_tier_calls(tier: Bf16Tier) -> u64 {
    CALLS[tier as usize].load(Ordering::Relaxed)
}

/// Packed BF16 weights and float32 bias of a convolution.
#[derive(Clone, Copy, Debug)]
pub struct PackedConvBf16<'a> {
    /// Shape of the original weights.
    pub shape: ConvShape,
    /// How the operands are made: rounded, or split (see [`super::terms`]).
    pub terms: Bf16Terms,
    /// Weights in the layout of [`crate::bf16::pack`], for `shape`'s
    /// [`Bf16Terms::reduction_shape`].
    pub weights: &'a [bf16],
    /// Bias padded to whole blocks.
    pub bias: &'a [f32],
}

/// BF16 scratch values [`conv2d_bf16_par`] needs for an input of shape `input`:
/// the padded BF16 copy, in `terms`' groups.
pub fn conv2d_bf16_scratch_len(input: Dims, geom: &ConvGeometry, terms: Bf16Terms) -> usize {
    terms.groups() * Layout::Nchw16c.image_len(padded(input, geom))
}

pub(super) fn padded(d: Dims, geom: &ConvGeometry) -> Dims {
    let p = geom.pad;
    Dims::new(d.c, d.h + p.top + p.bottom, d.w + p.left + p.right)
}

/// How a layer's output blocks are split into groups, one tile row each, and how
/// many pixels a tile of each group size takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tiling {
    co_blocks: usize,
    pub(super) groups: usize,
    /// Pixels per tile for a group of `ob` blocks (index `ob`).
    pub(super) px: [usize; 5],
}

impl Tiling {
    /// The output blocks of group `g`: the groups are as even as the blocks allow.
    pub(super) fn group(&self, g: usize) -> (usize, usize) {
        let ob0 = g * self.co_blocks / self.groups;
        (ob0, (g + 1) * self.co_blocks / self.groups - ob0)
    }
}

/// The tiling of `co_blocks` output blocks and rows of `row_len` pixels: the
/// fewest groups the widest tile allows (each group reads the whole input once
/// more), the blocks split evenly among them (5 as 3 + 2 rather than 4 + 1, whose
/// 1 x 16 tile would wait on its loads), and per group size the pixels per tile
/// with the least estimated time for a row, counting the partial tile at its end.
/// Per pair of input lanes an `ob x px` tile issues `ob * px` dot products and
/// `ob + px` loads (weight rows, input broadcasts), so its cost is the larger of
/// the two, plus a fixed overhead per tile (loop, epilogue) that favours fewer,
/// larger tiles: the float32 rule (`microkernel::choose_tile`).
fn tiling(max_px: &[usize; 5], co_blocks: usize, row_len: usize) -> Tiling {
    let cost = |ob: usize, px: usize| (ob * px).max(ob + px) + 2;
    let mut px = [0; 5];
    for ob in (1..max_px.len()).filter(|&ob| max_px[ob] > 0) {
        let mut best = usize::MAX;
        for p in 1..=max_px[ob].min(row_len.max(1)) {
            let (full, rem) = (row_len / p, row_len % p);
            let c = full * cost(ob, p) + if rem > 0 { cost(ob, rem) } else { 0 };
            if c < best {
                (best, px[ob]) = (c, p);
            }
        }
    }
    let widest = (1..max_px.len()).rev().find(|&ob| max_px[ob] > 0).expect("a tile shape");
    Tiling { co_blocks, groups: co_blocks.div_ceil(widest), px }
}

/// `out = act(conv(bf16(input), w) + bias + residual)` on NCHW16c images, the
/// tiles spread over `par`'s threads; the input is converted to BF16 (round to
/// nearest even, or split as `w.terms` says) into `scratch` (or by the tiles, see
/// the module docs), which must
/// hold [`conv2d_bf16_scratch_len`] values. Sums in float32 in the order of
/// [`Bf16TileArgs`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bf16_par(
    kernels: &Bf16Kernels,
    input: Image,
    w: &PackedConvBf16,
    geom: &ConvGeometry,
    residual: Option<Image>,
    act: Activation,
    out: &mut ImageMut,
    scratch: &mut [bf16],
    par: &dyn ParallelFor,
) {
    let (din, dout) = (input.dims, out.dims);
    check(input.layout, din, w, geom, out.layout, dout);
    if let Some(r) = residual {
        assert!(r.dims == dout && r.layout == Layout::Nchw16c, "conv2d_bf16: residual");
    }
    let len = conv2d_bf16_scratch_len(din, geom, w.terms);
    assert!(scratch.len() >= len, "conv2d_bf16: scratch holds {} of {len} values", scratch.len());
    record_call(kernels);

    let tiles = Tiles::new(kernels, w, geom, act, residual.map(|r| r.data), out);
    by_rows(&tiles, input.into(), geom, &mut scratch[..len], par);
}

/// Panics unless an input and output of these layouts and shapes fit the weights
/// and the geometry.
pub(super) fn check(
    in_layout: Layout,
    din: Dims,
    w: &PackedConvBf16,
    geom: &ConvGeometry,
    out_layout: Layout,
    dout: Dims,
) {
    let s = w.shape;
    assert!(in_layout == Layout::Nchw16c && out_layout == Layout::Nchw16c, "conv2d_bf16: layouts");
    assert!(din.c == s.ci && dout.c == s.co && (geom.kh, geom.kw) == (s.kh, s.kw), "conv2d_bf16: shape");
    assert_eq!(geom.output_hw(din.h, din.w), Some((dout.h, dout.w)), "conv2d_bf16: size");
    let packed_len = w.terms.reduction_shape(s).packed_len();
    assert!(w.weights.len() == packed_len && w.bias.len() == s.packed_bias_len(), "conv2d_bf16: packing");
}

/// Counts a convolution of `kernels`' tier (see [`bf16_tier_calls`]).
pub(super) fn record_call(kernels: &Bf16Kernels) {
    CALLS[kernels.tier as usize].fetch_add(1, Ordering::Relaxed);
}

/// What every tile of one call shares, and how to run one.
pub(super) struct Tiles<'a> {
    kernels: &'a Bf16Kernels,
    /// The tier's tile for this kind of input (blocked, or an NCHW image).
    pub(super) tile: unsafe fn(&Bf16TileArgs, usize, usize),
    co_blocks: usize,
    terms: Bf16Terms,
    /// The arguments every tile shares (strides, weights, epilogue).
    pub(super) template: Bf16TileArgs,
    residual: Option<&'a [f32]>,
    output: SharedMut,
}

// SAFETY: the template's pointers are the weights and bias, read only, and null
// input, residual and output; tasks write the output only through `run`, whose
// callers keep the tiles of different tasks disjoint.
unsafe impl Sync for Tiles<'_> {}

impl<'a> Tiles<'a> {
    /// The tiles of a convolution with weights `w` into `out` (a whole output, or
    /// one band of it with `residual` the same rows of the shortcut).
    pub(super) fn new(
        kernels: &'a Bf16Kernels,
        w: &PackedConvBf16,
        geom: &ConvGeometry,
        act: Activation,
        residual: Option<&'a [f32]>,
        out: &mut ImageMut,
    ) -> Self {
        // A split is a convolution over its groups of input channels.
        let (s, dout) = (w.terms.reduction_shape(w.shape), out.dims);
        let ci_blocks = s.ci_blocks();
        Tiles {
            kernels,
            tile: kernels.mk.tile,
            co_blocks: s.co_blocks(),
            terms: w.terms,
            template: Bf16TileArgs {
                input: std::ptr::null(),
                input_f32: std::ptr::null(),
                in_pixel: geom.stride_w * BLOCK,
                in_row: 0,
                in_block: 0,
                ci_blocks,
                ci_tail: s.ci - (ci_blocks - 1) * BLOCK,
                kh: s.kh,
                kw: s.kw,
                chunk: chunk_taps_bf16(s),
                weights: w.weights.as_ptr(),
                w_block: ci_blocks * s.kh * s.kw * BLOCK * BLOCK,
                bias: w.bias.as_ptr(),
                residual: std::ptr::null(),
                output: std::ptr::null_mut(),
                out_block: dout.h * dout.w * BLOCK,
                relu: act == Activation::Relu,
            },
            residual,
            output: SharedMut(out.data.as_mut_ptr()),
        }
    }

    /// The tiling of the output's rows of `row_len` pixels.
    pub(super) fn tiling(&self, row_len: usize) -> Tiling {
        tiling(&self.kernels.mk.max_px, self.co_blocks, row_len)
    }

    /// Runs the tile of output blocks `ob0..ob0 + ob`, output pixels
    /// `out_px..out_px + px` (of the flattened output plane), reading the BF16 input
    /// from `input`, or when that is null the float32 input from `input_f32`, with
    /// channel blocks `in_block` and tap rows `in_row` apart.
    ///
    /// # Safety
    /// Every input element the [`Bf16TileArgs`] formula reaches from the input (for
    /// float32, every lane of the pixels it reads) must be initialised and in bounds; the tile must lie in the output (`ob0 + ob` blocks,
    /// `out_px + px` pixels at most) and no other thread may write it meanwhile.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) unsafe fn run(
        &self,
        (input, input_f32): (*const bf16, *const f32),
        (in_block, in_row): (usize, usize),
        (ob0, ob): (usize, usize),
        (out_px, px): (usize, usize),
        shapes: &mut TileShapes,
    ) {
        let t = &self.template;
        let out_off = ob0 * t.out_block + out_px * BLOCK;
        let args = Bf16TileArgs {
            input,
            input_f32,
            in_block,
            in_row,
            weights: t.weights.wrapping_add(ob0 * t.w_block),
            bias: t.bias.wrapping_add(ob0 * BLOCK),
            residual: self.residual.map_or(std::ptr::null(), |r| r[out_off..].as_ptr()),
            output: self.output.get().wrapping_add(out_off),
            ..*t
        };
        shapes.add(ob, px);
        // SAFETY: the microkernel comes from a `Bf16Kernels`, which proves the tier
        // runs on this CPU; the input bounds are the caller's; weights, bias,
        // residual and output stay inside blocks ob0..ob0 + ob of their images,
        // whose lengths the driver checked, and the tile is the caller's alone.
        unsafe { (self.tile)(&args, ob, px) };
    }

    /// Counts the tile shapes one task ran (see [`bf16_tile_calls`]).
    pub(super) fn record(&self, shapes: TileShapes) {
        for (ob, px) in shapes.iter() {
            TILE_CALLS[self.kernels.tier as usize][ob * PX_SLOTS + px].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Most groups of output blocks for which an unpadded pointwise layer's tiles
/// round the float32 input as they read it (each group then rounds it once more).
pub(crate) const IN_PLACE_GROUPS: usize = 4;

/// The convolution in (group of output blocks, row) units. The input is rounded
/// to BF16 first, whole, with a zero border when the window is padded, so that
/// each value is converted once however many taps and groups read it; except in
/// an unpadded pointwise (1x1 stride-1) layer of at most [`IN_PLACE_GROUPS`]
/// groups, whose tiles round the float32 input as they read it: no tap or row
/// reads a value twice there, and the tiles' arithmetic hides the reads, where a
/// pass over the input first waits on memory (a tenth of a 35x35 layer's time).
/// A pointwise layer is one row of h x w pixels. A split is always staged (the
/// tiles round, they do not split).
pub(super) fn by_rows(t: &Tiles, input: Bands, geom: &ConvGeometry, staged: &mut [bf16], par: &dyn ParallelFor) {
    let (din, s) = (input.dims, &t.template);
    let pointwise = s.kh == 1 && s.kw == 1 && geom.stride_h == 1 && geom.stride_w == 1;
    let (oh, ow) = geom.output_hw(din.h, din.w).expect("checked by the caller");
    let (rows, row_len) = if pointwise { (1, oh * ow) } else { (oh, ow) };
    let tiling = t.tiling(row_len);
    let in_place = pointwise
        && geom.pad == Default::default()
        && tiling.groups <= IN_PLACE_GROUPS
        && input.split.bands() == 1
        && t.terms == Bf16Terms::Rounded;
    let pd = padded(din, geom);
    if !in_place {
        // The input rounded to BF16 with a zero border of the padding, in rows
        // spread over the threads.
        let window = (-(geom.pad.top as isize), (din.h + geom.pad.bottom) as isize);
        let row_len = pd.w * BLOCK;
        let staged = &mut staged[..t.terms.groups() * pd.c.div_ceil(BLOCK) * pd.h * row_len];
        let (to_bf16, terms) = (t.kernels.mk.to_bf16, t.terms);
        fill_rows(staged, row_len, par, &|r, row| stage_row(to_bf16, terms, &input, geom, window, r, row));
    }
    let staged: &[bf16] = staged;
    let strides = (pd.h * pd.w * BLOCK, pd.w * BLOCK);
    // Units: (group of output blocks, row, piece of the row), group-major, in even
    // runs per task. A pointwise layer's one row is cut into pieces of whole tiles,
    // enough for every task to have one even when the groups are few.
    let wanted = TASKS_PER_THREAD * par.threads();
    let pieces = if pointwise { wanted.div_ceil(tiling.groups) } else { 1 };
    let units = tiling.groups * rows * pieces;
    let tasks = wanted.min(units).max(1);
    par.run(tasks, &|task| {
        let mut shapes = TileShapes::default();
        for unit in task * units / tasks..(task + 1) * units / tasks {
            let ((ob0, ob), oy, piece) = (tiling.group(unit / (rows * pieces)), unit / pieces % rows, unit % pieces);
            let step = tiling.px[ob];
            let n = row_len.div_ceil(step);
            for ox0 in (piece * n / pieces..(piece + 1) * n / pieces).map(|k| k * step) {
                let px = step.min(row_len - ox0);
                let in_off =
                    if pointwise { ox0 * BLOCK } else { (oy * geom.stride_h * pd.w + ox0 * geom.stride_w) * BLOCK };
                // SAFETY (for `run` below): the last input read is block ci_blocks-1,
                // row oy*sh + kh-1, column (ox0+px-1)*sw + kw-1 of the padded copy,
                // inside it because the output size was checked against the geometry
                // (for a pointwise layer, pixel ox0+px-1 < h*w; in place, the padded
                // copy is the input itself, unpadded), and all of the copy was
                // written above. The tile is inside the output; tiles are disjoint
                // and each belongs to one task.
                let src = if in_place {
                    (std::ptr::null(), input.band(0).data[in_off..].as_ptr())
                } else {
                    (staged[in_off..].as_ptr(), std::ptr::null())
                };
                // SAFETY: as above.
                unsafe { t.run(src, strides, (ob0, ob), (oy * row_len + ox0, px), &mut shapes) };
            }
        }
        t.record(shapes);
    });
}
