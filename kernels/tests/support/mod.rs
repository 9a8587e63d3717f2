//! Helpers shared by the kernel tests: random data, layout conversion, the
//! convolution shape families and error bounds, band splits, the BF16 tiers this
//! CPU runs, and a thread pool that runs tasks out of order.
#![allow(dead_code)]

use std::fmt::Debug;

use incept_kernels::bands::join_bands;
use incept_kernels::bf16::{BF16_TIERS, Bf16Kernels};
use incept_kernels::parallel::ParallelFor;
use incept_kernels::{
    Activation, Bands, BandsMut, ConvGeometry, Dims, Image, ImageMut, Layout, Padding, RowSplit, reference,
};

/// xorshift64: uniform values in [-1, 1).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }

    /// Random operands of a convolution of a `din` input by `geom` into `dout`, drawn
    /// in this order: the NCHW input, the OIHW weights, the bias, an NCHW residual.
    pub fn conv_operands(&mut self, din: Dims, geom: &ConvGeometry, dout: Dims) -> [Vec<f32>; 4] {
        let weights = dout.c * din.c * geom.kh * geom.kw;
        [self.vec(din.volume()), self.vec(weights), self.vec(dout.c), self.vec(dout.volume())]
    }
}

/// One convolution case of the sweeps: `ci` channels of `h x w` into `co`.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub ci: usize,
    pub co: usize,
    pub h: usize,
    pub w: usize,
    pub geom: ConvGeometry,
    pub residual: bool,
    pub act: Activation,
}

/// A `kh x kw` window of stride `s` both ways.
pub fn window(kh: usize, kw: usize, s: usize, pad: Padding) -> ConvGeometry {
    ConvGeometry { kh, kw, stride_h: s, stride_w: s, pad }
}

/// The windows every convolution sweep covers: 1x1 (stride 1 and 2), 3x3 (padded,
/// valid and strided), 1x7 / 7x1, 5x5, the 7x7/2 stem, TF "SAME" with an odd total
/// (more on the bottom / right), and padding on one side of each axis only.
pub fn geometries() -> Vec<ConvGeometry> {
    let (g, p) = (window, Padding::uniform);
    vec![
        g(1, 1, 1, p(0)),
        g(1, 1, 2, p(0)),
        g(3, 3, 1, p(1)),
        g(3, 3, 2, p(0)),
        g(1, 7, 1, Padding::symmetric(0, 3)),
        g(7, 1, 1, Padding::symmetric(3, 0)),
        g(5, 5, 1, p(2)),
        g(7, 7, 2, p(3)),
        g(3, 3, 2, Padding { top: 0, left: 0, bottom: 1, right: 1 }),
        g(2, 4, 1, Padding { top: 1, left: 0, bottom: 0, right: 2 }),
        g(3, 3, 2, p(1)),
    ]
}

/// The reference convolution of the magnitudes (`|x|`, `|w|`, `|bias|`, `|residual|`,
/// no activation): per output, the sum of the absolute values of its terms, which
/// the error bounds scale with.
#[allow(clippy::too_many_arguments)]
pub fn magnitude(
    x: &[f32],
    din: Dims,
    w: &[f32],
    bias: &[f32],
    geom: &ConvGeometry,
    residual: Option<&[f32]>,
    dout: Dims,
) -> Vec<f32> {
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let (ba, ra) = (abs(bias), residual.map(abs));
    reference_conv(&abs(x), din, &abs(w), Some(&ba), geom, ra.as_deref(), Activation::None, dout)
}

/// The rounding error bound of a `k`-term float32 sum whose terms' magnitudes add
/// up to `mag`, in any order (each side of a comparison rounding): `2 k u mag`
/// (u = 2^-24), plus the smallest normal for results near zero.
pub fn sum_tolerance(k: usize, mag: f32) -> f32 {
    k as f32 * f32::EPSILON * mag + f32::MIN_POSITIVE
}

/// How far rounding both operands to BF16 may move a sum whose terms' magnitudes
/// add up to `mag`: each operand within u = 2^-8 of itself, so each product within
/// `2u + u^2` of itself.
pub fn bf16_rounding_bound(mag: f32) -> f32 {
    (2f32.powi(-7) + 2f32.powi(-16)) * mag
}

/// Calls `f((c, y, x), i, value)` for every output of a real channel in the
/// NCHW16c image `out` of shape `d` (`i` its index in NCHW) and asserts that every
/// padding lane is zero.
pub fn each_output(out: &[f32], d: Dims, case: &dyn Debug, mut f: impl FnMut((usize, usize, usize), usize, f32)) {
    let blk = Layout::Nchw16c;
    for c in 0..blk.padded_channels(d.c) {
        for y in 0..d.h {
            for x in 0..d.w {
                let got = out[blk.index(d, c, y, x)];
                if c >= d.c {
                    assert_eq!(got, 0.0, "{case:?}: padding lane {c} not zero");
                    continue;
                }
                f((c, y, x), (c * d.h + y) * d.w + x, got);
            }
        }
    }
}

/// The BF16 tiers' kernels this CPU runs; a tier it lacks is skipped with a message.
pub fn bf16_kernels() -> Vec<Bf16Kernels> {
    let mut kernels = Vec::new();
    for tier in BF16_TIERS {
        match Bf16Kernels::new(tier) {
            Some(k) => kernels.push(k),
            None => eprintln!("SKIPPED: this CPU cannot run the {} tier", tier.name()),
        }
    }
    kernels
}

/// An NCHW image in `layout`; padding lanes of a blocked layout are zero.
pub fn to_layout(x: &[f32], d: Dims, layout: Layout) -> Vec<f32> {
    let mut out = vec![f32::NAN; layout.image_len(d)];
    reference::copy(Image::new(x, d, Layout::Nchw), &mut ImageMut::new(&mut out, d, layout));
    out
}

/// The reference convolution of NCHW `x` (`din`) with OIHW `w` into a new NCHW
/// image of shape `dout`.
#[allow(clippy::too_many_arguments)]
pub fn reference_conv(
    x: &[f32],
    din: Dims,
    w: &[f32],
    bias: Option<&[f32]>,
    geom: &ConvGeometry,
    residual: Option<&[f32]>,
    act: Activation,
    dout: Dims,
) -> Vec<f32> {
    let nchw = Layout::Nchw;
    let mut y = vec![0.0; dout.volume()];
    let res = residual.map(|r| Image::new(r, dout, nchw));
    reference::conv2d(Image::new(x, din, nchw), w, bias, geom, res, act, &mut ImageMut::new(&mut y, dout, nchw));
    y
}

/// Three scoped threads taking tasks round-robin, in reverse: shakes out any
/// assumption that tasks run in order or that one thread does them all.
pub struct ThreeThreads;

thread_local! {
    /// Which of [`ThreeThreads`]' threads this is.
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: every index goes to exactly one of the three threads, which are joined
// before `run` returns; each thread reports its own worker index.
unsafe impl ParallelFor for ThreeThreads {
    fn threads(&self) -> usize {
        3
    }
    fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        std::thread::scope(|s| {
            for t in 0..3 {
                s.spawn(move || {
                    WORKER.set(t);
                    (0..n).rev().filter(|i| i % 3 == t).for_each(task)
                });
            }
        });
    }
    fn worker(&self) -> usize {
        WORKER.get()
    }
}

/// Runs `f` on an output image of shape `d` that sits between sentinels in a larger
/// buffer, panics if `f` wrote outside the image, and returns the image.
pub fn write_between_sentinels(d: Dims, layout: Layout, case: &dyn Debug, f: impl FnOnce(&mut ImageMut)) -> Vec<f32> {
    const SENTINEL: f32 = 12345.0;
    let (before, len) = (48, layout.image_len(d));
    let mut buf = vec![SENTINEL; before + len + 48];
    f(&mut ImageMut::new(&mut buf[before..before + len], d, layout));
    assert!(
        buf[..before].iter().chain(&buf[before + len..]).all(|&v| v == SENTINEL),
        "{case:?}: wrote outside its slice"
    );
    buf[before..before + len].to_vec()
}

/// Runs `f` on `d`-shaped output bands of `split` (each filled with NaN first,
/// so that a value left unwritten shows) and returns the whole image they make.
pub fn write_bands(d: Dims, layout: Layout, split: RowSplit, f: impl FnOnce(&mut BandsMut)) -> Vec<f32> {
    let mut parts: Vec<Vec<f32>> =
        (0..split.bands()).map(|t| vec![f32::NAN; layout.image_len(split.band_dims(d, t))]).collect();
    f(&mut BandsMut::new(parts.iter_mut().map(|p| &mut p[..]), d, layout, split));
    let refs: Vec<&[f32]> = parts.iter().map(|p| &p[..]).collect();
    join_bands(Bands::new(&refs, d, layout, split))
}

/// Read-only bands over `parts`.
pub fn view_bands<'a>(parts: &'a [Vec<f32>], d: Dims, layout: Layout, split: RowSplit) -> Bands<'a> {
    let refs: Vec<&[f32]> = parts.iter().map(|p| &p[..]).collect();
    Bands::new(&refs, d, layout, split)
}

/// The band splits a kernel is checked on for an input of `h` rows and an output of
/// `oh`: 2 or 3 bands each, the input split alike or into one band more (so that
/// windows cross boundaries in every way), and an input in bands into an output in
/// one.
pub fn band_splits(h: usize, oh: usize) -> Vec<(RowSplit, RowSplit)> {
    let mut splits = Vec::new();
    for (n, m) in [(2, 2), (3, 2), (3, 3), (2, 1)] {
        {
            let (i, o) = (RowSplit::even(h, n), RowSplit::even(oh, m));
            if (i.bands() > 1 || o.bands() > 1) && !splits.contains(&(i, o)) {
                splits.push((i, o));
            }
        }
    }
    splits
}

/// Every split of an input of `h` rows and an output of `oh` into 1 to 3 bands
/// each, the whole images included.
pub fn every_band_split(h: usize, oh: usize) -> Vec<(RowSplit, RowSplit)> {
    let ins = (1..=3.min(h)).map(|n| RowSplit::even(h, n));
    ins.flat_map(|i| (1..=3.min(oh)).map(move |m| (i, RowSplit::even(oh, m)))).collect()
}
