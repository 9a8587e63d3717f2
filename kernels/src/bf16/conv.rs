//! Direct convolution with BF16 operands on NCHW16c float32 images: the driver,
//! the tile contract and the tiers.
//!
//! The driver converts the input to BF16 once per call (padded, into scratch:
//! each value is read by every tap and output block group that covers it, so
//! converting it there would repeat the work up to `kh * kw * groups` times), then
//! walks the output in tiles of `ob` output blocks x `px` pixels of one row, as the
//! float32 driver does, and hands each to the tier's microkernel. Outputs, bias and
//! residual stay float32.

use std::sync::atomic::{AtomicU64, Ordering};

use super::convert::bf16;

use super::microkernel::{Bf16Microkernel, Bf16TileArgs};
use crate::conv::chunk_taps;
use crate::pack::ConvShape;
use crate::parallel::{ParallelFor, SharedMut};
use crate::{Activation, BLOCK, ConvGeometry, Dims, Image, ImageMut, Layout};

/// A BF16 instruction-set tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bf16Tier {
    /// Portable Rust emulating `VDPBF16PS` one product at a time: every host, slowly.
    Portable,
    /// x86-64 AVX512-BF16 (`VDPBF16PS`): AMD Zen 4 and later, Intel Cooper Lake
    /// and later.
    Avx512Bf16,
}

/// Every BF16 tier, narrowest first.
pub const BF16_TIERS: [Bf16Tier; 2] = [Bf16Tier::Portable, Bf16Tier::Avx512Bf16];

impl Bf16Tier {
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Bf16Tier::Portable => "bf16-portable",
            Bf16Tier::Avx512Bf16 => "avx512bf16",
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
            #[cfg(target_arch = "x86_64")]
            Bf16Tier::Avx512Bf16 => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
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
            false => Err(format!("{BF16_TIER_ENV}={name}: this CPU cannot run the {name} tier")),
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
            #[cfg(target_arch = "x86_64")]
            Bf16Tier::Avx512Bf16 => Bf16Kernels {
                tier,
                mk: super::avx512::CONV,
                peak: Some((super::avx512::dpbf16_loop, super::avx512::DPBF16_LOOP_FLOPS)),
            },
            #[allow(unreachable_patterns)]
            _ => return None,
        })
    }

    /// The tier these kernels belong to.
    pub fn tier(&self) -> Bf16Tier {
        self.tier
    }

    /// The convolution microkernel's name (op, tile, ISA).
    pub fn conv_name(&self) -> &'static str {
        self.mk.name
    }

    /// The tier's peak BF16 dot-product throughput on the calling thread, in
    /// GFLOP/s (a pair's two multiplies and two adds are 4 FLOPs), measured for
    /// about `seconds` as [`crate::peak::fma_peak_gflops`] does; `None` for the
    /// portable tier, which has no instruction of its own.
    pub fn dot_peak_gflops(&self, seconds: f64) -> Option<f64> {
        let (run, flops) = self.peak?;
        // SAFETY: a `Bf16Kernels` exists only for a tier this CPU runs.
        Some(unsafe { crate::peak::loop_gflops(run, flops, seconds) })
    }
}

static CALLS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

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
    /// Weights in the layout of [`crate::bf16::pack`].
    pub weights: &'a [bf16],
    /// Bias padded to whole blocks.
    pub bias: &'a [f32],
}

/// BF16 scratch values [`conv2d_bf16_par`] needs for an input of shape `input`:
/// the padded BF16 copy.
pub fn conv2d_bf16_scratch_len(input: Dims, geom: &ConvGeometry) -> usize {
    Layout::Nchw16c.image_len(padded(input, geom))
}

fn padded(d: Dims, geom: &ConvGeometry) -> Dims {
    let p = geom.pad;
    Dims::new(d.c, d.h + p.top + p.bottom, d.w + p.left + p.right)
}

/// The tile shape (output blocks, pixels) for `co_blocks` output blocks and rows of
/// `row_len` pixels: as many blocks as the kernel takes (each input pair is
/// broadcast once for all of them), and the row in tiles as even as the widest
/// tile allows. Untuned: the machine was too loaded to measure the alternatives.
fn tile_shape(mk: &Bf16Microkernel, co_blocks: usize, row_len: usize) -> (usize, usize) {
    let ob = (1..mk.max_px.len()).rev().find(|&ob| mk.max_px[ob] > 0 && ob <= co_blocks).unwrap_or(1);
    let max_px = mk.max_px[ob];
    (ob, row_len.div_ceil(row_len.div_ceil(max_px)))
}

/// Tasks per thread: a few, so that a thread slowed by something else hands part
/// of its share to the others.
const TASKS_PER_THREAD: usize = 2;

/// `out = act(conv(bf16(input), w) + bias + residual)` on NCHW16c images, the
/// tiles spread over `par`'s threads; the input is converted to BF16 (round to
/// nearest even) into `scratch`, which must hold [`conv2d_bf16_scratch_len`]
/// values. Sums in float32 in the order of [`Bf16TileArgs`].
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
    let s = w.shape;
    let (din, dout) = (input.dims, out.dims);
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "conv2d_bf16: layouts");
    assert!(din.c == s.ci && dout.c == s.co && (geom.kh, geom.kw) == (s.kh, s.kw), "conv2d_bf16: shape");
    assert_eq!(geom.output_hw(din.h, din.w), Some((dout.h, dout.w)), "conv2d_bf16: size");
    assert!(w.weights.len() == s.packed_len() && w.bias.len() == s.packed_bias_len(), "conv2d_bf16: packing");
    if let Some(r) = residual {
        assert!(r.dims == dout && r.layout == Layout::Nchw16c, "conv2d_bf16: residual");
    }
    let len = conv2d_bf16_scratch_len(din, geom);
    assert!(scratch.len() >= len, "conv2d_bf16: scratch holds {} of {len} values", scratch.len());
    CALLS[kernels.tier as usize].fetch_add(1, Ordering::Relaxed);

    // The input in BF16, with a zero border when the window is padded.
    let (p, pd) = (geom.pad, padded(din, geom));
    let staged = &mut scratch[..len];
    let src_blocks = input.data.chunks_exact(din.h * din.w * BLOCK);
    for (src, dst) in src_blocks.zip(staged.chunks_exact_mut(pd.h * pd.w * BLOCK)) {
        dst[..p.top * pd.w * BLOCK].fill(bf16::ZERO);
        dst[(p.top + din.h) * pd.w * BLOCK..].fill(bf16::ZERO);
        for y in 0..din.h {
            let row = &mut dst[(p.top + y) * pd.w * BLOCK..][..pd.w * BLOCK];
            row[..p.left * BLOCK].fill(bf16::ZERO);
            let (src, dst) = (&src[y * din.w * BLOCK..][..din.w * BLOCK], &mut row[p.left * BLOCK..][..din.w * BLOCK]);
            // SAFETY: `to_bf16` comes from a `Bf16Kernels`, which proves the tier runs here.
            unsafe { (kernels.mk.to_bf16)(src, dst) };
            row[(p.left + din.w) * BLOCK..].fill(bf16::ZERO);
        }
    }
    let staged: &[bf16] = staged;

    // Rows of output pixels: a 1x1 stride-1 convolution is one row of h*w pixels.
    let pointwise = s.kh == 1 && s.kw == 1 && geom.stride_h == 1 && geom.stride_w == 1;
    let (rows, row_len) = if pointwise { (1, dout.h * dout.w) } else { (dout.h, dout.w) };
    let mk = &kernels.mk;
    let co_blocks = s.co_blocks();
    let (ob_tile, px_tile) = tile_shape(mk, co_blocks, row_len);
    let ci_blocks = s.ci_blocks();
    let template = Bf16TileArgs {
        input: staged.as_ptr(),
        in_pixel: geom.stride_w * BLOCK,
        in_row: pd.w * BLOCK,
        in_block: pd.h * pd.w * BLOCK,
        ci_blocks,
        ci_tail: s.ci - (ci_blocks - 1) * BLOCK,
        kh: s.kh,
        kw: s.kw,
        chunk: chunk_taps(s),
        weights: w.weights.as_ptr(),
        w_block: ci_blocks * s.kh * s.kw * BLOCK * BLOCK,
        bias: w.bias.as_ptr(),
        residual: std::ptr::null(),
        output: std::ptr::null_mut(),
        out_block: dout.h * dout.w * BLOCK,
        relu: act == Activation::Relu,
    };
    let residual = residual.map(|r| r.data);
    let output = SharedMut(out.data.as_mut_ptr());
    // Units: (group of output blocks, row), group-major, in even runs per task.
    let groups = co_blocks.div_ceil(ob_tile);
    let units = groups * rows;
    let tasks = (TASKS_PER_THREAD * par.threads()).min(units).max(1);
    par.run(tasks, &|task| {
        for unit in task * units / tasks..(task + 1) * units / tasks {
            let (ob0, oy) = (unit / rows * ob_tile, unit % rows);
            let ob = ob_tile.min(co_blocks - ob0);
            for ox0 in (0..row_len).step_by(px_tile) {
                let px = px_tile.min(row_len - ox0);
                let in_off =
                    if pointwise { ox0 * BLOCK } else { (oy * geom.stride_h * pd.w + ox0 * geom.stride_w) * BLOCK };
                let out_off = ob0 * template.out_block + (oy * row_len + ox0) * BLOCK;
                let args = Bf16TileArgs {
                    input: staged[in_off..].as_ptr(),
                    weights: w.weights[ob0 * template.w_block..].as_ptr(),
                    bias: w.bias[ob0 * BLOCK..].as_ptr(),
                    residual: residual.map_or(std::ptr::null(), |r| r[out_off..].as_ptr()),
                    // Plain offset: inside the output (blocks ob0..ob0+ob, pixels of this row).
                    output: output.get().wrapping_add(out_off),
                    ..template
                };
                // SAFETY: `mk` comes from a `Bf16Kernels`, which proves the tier runs on
                // this CPU. The last input read is block ci_blocks-1, row oy*sh + kh-1,
                // column (ox0+px-1)*sw + kw-1 of the padded copy, inside it because the
                // output size was checked against the geometry (for a pointwise layer,
                // pixel ox0+px-1 < h*w). Weights, bias, residual and output stay inside
                // blocks ob0..ob0+ob of their images, whose lengths were checked. Tiles
                // are disjoint and each belongs to one task, so no two tasks write the
                // same output.
                unsafe { (mk.tile)(&args, ob, px) };
            }
        }
    });
}
