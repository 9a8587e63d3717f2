//! Helpers shared by the kernel tests: random data, layout conversion, and a
//! thread pool that runs tasks out of order.
#![allow(dead_code)]

use std::fmt::Debug;

use incept_kernels::bands::join_bands;
use incept_kernels::parallel::ParallelFor;
use incept_kernels::{Activation, Bands, BandsMut, ConvGeometry, Dims, Image, ImageMut, Layout, RowSplit, reference};

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
