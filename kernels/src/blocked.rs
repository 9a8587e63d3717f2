//! Pooling, the fully connected layer and layout reordering on NCHW16c images,
//! written once over 16-lane blocks. Each tier compiles these bodies inside its own
//! `#[target_feature]` wrapper (see `crate::ops`), so the same loops become
//! SSE, AVX2 or AVX-512 (or NEON) code; the per-lane loops are what vectorises.

use crate::bands::{Bands, BandsMut};
use crate::geometry::PoolGeometry;
use crate::layout::{BLOCK, Image, ImageMut, Layout};
use crate::microkernel::prefetch_write;
use crate::parallel::{ParallelFor, for_each_band, for_each_part};

type Lanes = [f32; BLOCK];

/// Which pooling a window computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKind<'a> {
    /// The largest value in the window; padding never wins.
    Max,
    /// The mean of the window; `count_include_pad` picks the divisor (the padded
    /// window's size, or the pixels inside the image).
    Avg {
        /// Whether padding counts in the divisor.
        count_include_pad: bool,
        /// Whether ReLU follows (fused: an average pool moved after its projection
        /// takes over the projection's ReLU).
        relu: bool,
    },
    /// The mean of the padded window (padding counts in the divisor) with the
    /// padding taking `pad[c]` in channel `c` instead of zero: an average pool moved
    /// after a 1x1 projection pads with the projection's output at zero input.
    AvgPadded {
        /// One value per channel.
        pad: &'a [f32],
        /// Whether ReLU follows.
        relu: bool,
    },
}

impl<'a> PoolKind<'a> {
    /// The same pooling of the channels `c0..c0 + c` only.
    pub(crate) fn channels(self, c0: usize, c: usize) -> PoolKind<'a> {
        match self {
            PoolKind::AvgPadded { pad, relu } => PoolKind::AvgPadded { pad: &pad[c0..c0 + c], relu },
            other => other,
        }
    }
}

/// The clamped input range of output index `o` along one axis, and the window size
/// clipped to the padded image (PyTorch's divisor when padding counts).
#[inline(always)]
fn window(o: usize, k: usize, stride: usize, before: usize, after: usize, size: usize) -> (usize, usize, usize) {
    let start = o * stride;
    let end = (start + k).min(size + before + after);
    (start.saturating_sub(before), end.saturating_sub(before).min(size), end - start)
}

fn check(input: &Bands, geom: &PoolGeometry, out: &ImageMut, oy0: usize) {
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "pool: layouts");
    assert_eq!(input.dims.c, out.dims.c, "pool: channel count");
    let (oh, ow) = geom.output_hw(input.dims.h, input.dims.w).expect("pool: a window that fits");
    assert!(oy0 + out.dims.h <= oh && out.dims.w == ow, "pool: output size");
}

/// Pooling of output rows `oy0..oy0 + out.h` into `out`.
#[inline(always)]
pub(crate) fn pool(input: Bands, geom: &PoolGeometry, kind: PoolKind, out: &mut ImageMut, oy0: usize, ahead: bool) {
    check(&input, geom, out, oy0);
    let add = |a: f32, v: f32| a + v;
    match kind {
        PoolKind::Max => pool_with(input, geom, out, oy0, ahead, f32::NEG_INFINITY, f32::max, |_, _| 1.0, None, false),
        PoolKind::Avg { count_include_pad, relu } => {
            let divisor = move |padded: usize, inside: usize| if count_include_pad { padded } else { inside } as f32;
            pool_with(input, geom, out, oy0, ahead, 0.0, add, move |p, i| 1.0 / divisor(p, i), None, relu)
        }
        PoolKind::AvgPadded { pad, relu } => {
            assert_eq!(pad.len(), input.dims.c, "pool: one padding value per channel");
            pool_with(input, geom, out, oy0, ahead, 0.0, add, |p, _| 1.0 / p as f32, Some(pad), relu)
        }
    }
}

/// Output rows ahead that [`pool_with`] prefetches for writing when asked: split
/// by channels over threads, a pool writes lines the other core held last (the
/// arena is reused), and taking each one costs a few hundred ns when the cores sit
/// far apart (figures: `docs/kernels.md`).
const POOL_AHEAD_ROWS: usize = 4;

/// Pooling with `combine` folding each window's pixels into `init`, then scaled by
/// `scale(padded window size, pixels inside)`. Monomorphised per operator, so the
/// inner loop is one vector operation per window pixel over whole rows of it.
/// `ahead`: prefetch for writing the output row [`POOL_AHEAD_ROWS`] on (the planes
/// of successive blocks follow each other, so past a plane's last row come the next
/// block's first); only on CPUs with PREFETCHW. `pad`: the value per channel of
/// each window position in the padding, added to the folded sum (so zero padding
/// adds nothing). `relu`: then `max(v, 0)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pool_with(
    input: Bands,
    geom: &PoolGeometry,
    out: &mut ImageMut,
    oy0: usize,
    ahead: bool,
    init: f32,
    combine: impl Fn(f32, f32) -> f32,
    scale: impl Fn(usize, usize) -> f32,
    pad: Option<&[f32]>,
    relu: bool,
) {
    let (g, d, od) = (&geom.window, input.dims, out.dims);
    let row = d.w * BLOCK;
    // An image in one band needs no lookups.
    let whole = (input.split.bands() == 1).then(|| input.band(0));
    for (cb, dst) in out.data.chunks_exact_mut(od.h * od.w * BLOCK).enumerate() {
        // The block's padding values, zero in the lanes past the last channel.
        let pad = pad.map(|p| {
            let mut lanes: Lanes = [0.0; BLOCK];
            let real = &p[cb * BLOCK..p.len().min((cb + 1) * BLOCK)];
            lanes[..real.len()].copy_from_slice(real);
            lanes
        });
        for (r, dst_row) in dst.chunks_exact_mut(od.w * BLOCK).enumerate() {
            let (y0, y1, ph) = window(oy0 + r, g.kh, g.stride_h, g.pad.top, g.pad.bottom, d.h);
            // The block's plane in the band that holds the window's rows, and the
            // window's first row in it; `None` when the window spans two bands.
            let (band, by0) = whole.map_or_else(|| input.row(y0.min(d.h - 1)), |b| (b, y0));
            let plane =
                (by0 + (y1 - y0) <= band.dims.h).then(|| &band.data[cb * band.dims.h * row..][..band.dims.h * row]);
            if ahead {
                // The output row POOL_AHEAD_ROWS on (past the plane: the next block's).
                let next = dst_row.as_ptr().wrapping_add(POOL_AHEAD_ROWS * od.w * BLOCK);
                for line in (0..od.w * BLOCK).step_by(BLOCK) {
                    prefetch_write(next.wrapping_add(line));
                }
            }
            for (ox, px_out) in dst_row.chunks_exact_mut(BLOCK).enumerate() {
                let (x0, x1, pw) = window(ox, g.kw, g.stride_w, g.pad.left, g.pad.right, d.w);
                let mut acc: Lanes = [init; BLOCK];
                let mut fold = |px: &[f32]| acc.iter_mut().zip(px).for_each(|(a, v)| *a = combine(*a, *v));
                match plane {
                    Some(src) if (y1 - y0, x1 - x0) == (3, 3) => {
                        // The Inception family's whole 3x3 window: three rows of a
                        // length the compiler knows, so the nine loads need no bounds
                        // checks and the sum stays in registers. Same order as the
                        // general loop.
                        let at = (by0 * d.w + x0) * BLOCK;
                        for r in 0..3 {
                            let three: &[f32; 3 * BLOCK] =
                                src[at + r * row..][..3 * BLOCK].try_into().expect("3 pixels");
                            three.chunks_exact(BLOCK).for_each(&mut fold);
                        }
                    }
                    Some(src) => {
                        for y in by0..by0 + (y1 - y0) {
                            src[(y * d.w + x0) * BLOCK..(y * d.w + x1) * BLOCK].chunks_exact(BLOCK).for_each(&mut fold);
                        }
                    }
                    None => {
                        for y in y0..y1 {
                            input.row_of(cb, y)[x0 * BLOCK..x1 * BLOCK].chunks_exact(BLOCK).for_each(&mut fold);
                        }
                    }
                }
                let inside = (y1 - y0) * (x1 - x0);
                if let Some(pad) = pad.as_ref().filter(|_| ph * pw > inside) {
                    let m = (ph * pw - inside) as f32;
                    acc.iter_mut().zip(pad).for_each(|(a, p)| *a += m * p);
                }
                let k = scale(ph * pw, inside);
                if relu {
                    px_out.iter_mut().zip(acc).for_each(|(o, a)| *o = (a * k).max(0.0));
                } else {
                    px_out.iter_mut().zip(acc).for_each(|(o, a)| *o = a * k);
                }
            }
        }
    }
}

/// Global average pooling to `c x 1 x 1`.
#[inline(always)]
pub(crate) fn global_avg_pool(input: Bands, out: &mut ImageMut) {
    let d = input.dims;
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "global_avg_pool: layouts");
    assert_eq!((out.dims.c, out.dims.h, out.dims.w), (d.c, 1, 1), "global_avg_pool: output shape");
    let inv = 1.0 / (d.h * d.w) as f32;
    for (cb, dst) in out.data.chunks_exact_mut(BLOCK).enumerate() {
        let mut acc: Lanes = [0.0; BLOCK];
        for y in 0..d.h {
            for px in input.row_of(cb, y).chunks_exact(BLOCK) {
                acc.iter_mut().zip(px).for_each(|(a, v)| *a += v);
            }
        }
        dst.iter_mut().zip(acc).for_each(|(o, a)| *o = a * inv);
    }
}

/// Fully connected layer on a `c x 1 x 1` image (the heads after global pooling):
/// `out[o] = act(bias[o] + weights[o] . input)`, weights `[out.c, input.c]`. In
/// NCHW16c a `c x 1 x 1` image is its channels in order, padding lanes zero.
#[inline(always)]
pub(crate) fn linear(input: Image, weights: &[f32], bias: &[f32], relu: bool, out: &mut ImageMut) {
    let (k, n) = (input.dims.c, out.dims.c);
    assert!(input.layout == Layout::Nchw16c && out.layout == Layout::Nchw16c, "linear: layouts");
    assert!((input.dims.h, input.dims.w, out.dims.h, out.dims.w) == (1, 1, 1, 1), "linear: 1x1 images only");
    assert!(weights.len() == n * k && bias.len() == n, "linear: weights are not [out, in]");
    let x = &input.data[..k];
    for (o, row) in weights.chunks_exact(k).enumerate() {
        let mut acc: Lanes = [0.0; BLOCK];
        let (wb, xb) = (row.chunks_exact(BLOCK), x.chunks_exact(BLOCK));
        let tail: f32 = wb.remainder().iter().zip(xb.remainder()).map(|(w, x)| w * x).sum();
        for (w, x) in wb.zip(xb) {
            acc.iter_mut().zip(w.iter().zip(x)).for_each(|(a, (w, x))| *a += w * x);
        }
        let v = bias[o] + acc.iter().sum::<f32>() + tail;
        out.data[o] = if relu { v.max(0.0) } else { v };
    }
    out.data[n..].fill(0.0);
}

/// Reorders an image between NCHW and NCHW16c (either direction), zeroing the
/// padding lanes of a blocked output: the engine's input and output steps. The
/// output's pixels (blocked) or planes (NCHW) are spread over `par`'s threads.
pub fn reorder(input: Image, out: &mut ImageMut, par: &dyn ParallelFor) {
    let d = input.dims;
    assert_eq!(d, out.dims, "reorder: shape");
    assert_eq!(input.data.len(), input.layout.image_len(d), "reorder: input length");
    let hw = d.h * d.w;
    match (input.layout, out.layout) {
        (Layout::Nchw, Layout::Nchw16c) => {
            // Gather each pixel's lanes from the block's planes, store whole blocks.
            // A part is a run of (block, pixel) units; walk it block by block.
            for_each_part(out.data, BLOCK, par, &|units, part| {
                let mut dst = part.chunks_exact_mut(BLOCK);
                let mut u = units.start;
                while u < units.end {
                    let (cb, p0) = (u / hw, u % hw);
                    let p1 = hw.min(p0 + units.end - u);
                    let lanes = (d.c - cb * BLOCK).min(BLOCK);
                    let planes = &input.data[cb * BLOCK * hw..][..lanes * hw];
                    for (p, px) in (p0..p1).zip(&mut dst) {
                        let mut v: Lanes = [0.0; BLOCK];
                        for (l, lane) in v.iter_mut().take(lanes).enumerate() {
                            *lane = planes[l * hw + p];
                        }
                        px.copy_from_slice(&v);
                    }
                    u += p1 - p0;
                }
            })
        }
        (Layout::Nchw16c, Layout::Nchw) => for_each_part(out.data, hw, par, &|channels, part| {
            for (c, plane) in channels.zip(part.chunks_exact_mut(hw)) {
                let src = &input.data[(c / BLOCK) * hw * BLOCK..][..hw * BLOCK];
                plane.iter_mut().zip(src.iter().skip(c % BLOCK).step_by(BLOCK)).for_each(|(o, v)| *o = *v);
            }
        }),
        _ => crate::reference::copy(input, out),
    }
}

/// [`reorder`] between images in bands (any two splits, either layout): one task
/// per output band writes its rows, row by row.
pub fn reorder_bands(input: Bands, out: &mut BandsMut, par: &dyn ParallelFor) {
    let d = input.dims;
    assert_eq!(d, out.dims, "reorder: shape");
    if input.split.bands() == 1 && out.split.bands() == 1 {
        return reorder(input.band(0), &mut out.band(0), par);
    }
    let (from, to, split) = (input.layout, out.layout, out.split);
    let blocks = d.c.div_ceil(BLOCK);
    for_each_band(out, par, &|t, band| {
        let bh = band.dims.h;
        for (r, y) in split.rows(t).enumerate() {
            match to {
                Layout::Nchw16c => {
                    for cb in 0..blocks {
                        let dst = &mut band.data[(cb * bh + r) * d.w * BLOCK..][..d.w * BLOCK];
                        let lanes = (d.c - cb * BLOCK).min(BLOCK);
                        match from {
                            Layout::Nchw16c => dst.copy_from_slice(input.row_of(cb, y)),
                            Layout::Nchw => {
                                dst.fill(0.0);
                                for l in 0..lanes {
                                    let src = input.row_of(cb * BLOCK + l, y);
                                    dst[l..].iter_mut().step_by(BLOCK).zip(src).for_each(|(o, v)| *o = *v);
                                }
                            }
                        }
                    }
                }
                Layout::Nchw => {
                    for c in 0..d.c {
                        let dst = &mut band.data[(c * bh + r) * d.w..][..d.w];
                        match from {
                            Layout::Nchw => dst.copy_from_slice(input.row_of(c, y)),
                            Layout::Nchw16c => {
                                let src = input.row_of(c / BLOCK, y);
                                dst.iter_mut()
                                    .zip(src.iter().skip(c % BLOCK).step_by(BLOCK))
                                    .for_each(|(o, v)| *o = *v);
                            }
                        }
                    }
                }
            }
        }
    });
}
