//! A direct convolution of images in bands (see [`crate::bands`]): the input rows
//! each output band reads, staged when padded or when a window crosses a band
//! boundary, and the tiles of a range of output rows ([`RowTiles`]).

use std::ops::Range;

use super::op::Conv2d;
use super::tiles::{LayerTiles, Tile, conv2d_scratch_len, strided_stream};
use crate::bands::{Bands, RowSplit};
use crate::dispatch::Kernels;
use crate::geometry::ConvGeometry;
use crate::layout::{BLOCK, Dims, Image, ImageMut, Layout};
use crate::microkernel::{TileShapes, choose_tile};
use crate::parallel::ParallelFor;

/// The input band and its first row that output row `oy`'s whole window lies in,
/// if it lies inside one band (and the image).
fn window_band(oy: usize, geom: &ConvGeometry, split: &RowSplit) -> Option<(usize, usize)> {
    let (lo, hi) = geom.window_rows(&(oy..oy + 1));
    if lo < 0 || hi as usize > split.height() {
        return None;
    }
    let t = split.band_of(lo as usize);
    let r = split.rows(t);
    (hi as usize <= r.end).then_some((t, lo as usize - r.start))
}

/// The output rows among `rows` of an unpadded window whose window crosses an
/// input band boundary: [`RowTiles`] reads copies of their windows (staged), and
/// the other rows' windows in place.
fn staged_rows(geom: ConvGeometry, in_split: RowSplit, rows: Range<usize>) -> impl Iterator<Item = usize> {
    rows.filter(move |&oy| window_band(oy, &geom, &in_split).is_none())
}

/// Scratch a convolution in bands (see [`conv2d`](crate::conv::conv2d)) of an input of shape
/// `input` split into `in_split` to an output split into `out_split` needs:
/// `(floats of the step's own scratch, floats per thread of par)`, one of them 0.
/// Its own for a padded copy of the whole input (when the output is one band);
/// per thread for the rows each output band reads (padded), or for the windows
/// that cross input band boundaries (unpadded).
pub fn conv2d_bands_scratch_len(
    input: Dims,
    in_split: RowSplit,
    geom: &ConvGeometry,
    out_split: RowSplit,
) -> (usize, usize) {
    let padded = geom.pad != Default::default();
    if out_split.bands() == 1 && (in_split.bands() == 1 || padded) {
        return (conv2d_scratch_len(input, geom), 0);
    }
    let block_len = input.c.div_ceil(BLOCK) * BLOCK;
    let p = geom.pad;
    let per_band = (0..out_split.bands()).map(|t| {
        let rows = out_split.rows(t);
        if padded {
            let (lo, hi) = geom.window_rows(&rows);
            (hi - lo) as usize * (input.w + p.left + p.right) * block_len
        } else {
            staged_rows(*geom, in_split, rows).count() * geom.kh * input.w * block_len
        }
    });
    (0, per_band.max().unwrap_or(0))
}

/// Copies input rows `lo..hi` (negative above the image, past it below: zeros)
/// of every channel block of `input` into `dst` as a plain NCHW16c image of
/// `hi - lo` rows, with `left` and `right` zero columns.
pub(super) fn stage_rows(input: &Bands, lo: isize, hi: isize, left: usize, right: usize, dst: &mut [f32]) -> Dims {
    let d = input.dims;
    let (rows, width) = ((hi - lo) as usize, d.w + left + right);
    let staged = Dims::new(d.c, rows, width);
    let dst = &mut dst[..Layout::Nchw16c.image_len(staged)];
    for (cb, plane) in dst.chunks_exact_mut(rows * width * BLOCK).enumerate() {
        for (r, row) in plane.chunks_exact_mut(width * BLOCK).enumerate() {
            let y = lo + r as isize;
            if y < 0 || y as usize >= d.h {
                row.fill(0.0);
                continue;
            }
            let (band, by) = input.row(y as usize);
            let src = &band.data[(cb * band.dims.h + by) * d.w * BLOCK..][..d.w * BLOCK];
            row[..left * BLOCK].fill(0.0);
            row[left * BLOCK..(left + d.w) * BLOCK].copy_from_slice(src);
            row[(left + d.w) * BLOCK..].fill(0.0);
        }
    }
    staged
}

/// `op` on `input`, an image in one band, with `geom`, and output band `t`'s residual.
pub(super) fn in_one_band<'b>(op: &Conv2d<'b>, input: Image<'b>, geom: ConvGeometry, t: usize) -> Conv2d<'b> {
    Conv2d { input: input.into(), geom, residual: op.residual.map(|r| r.band(t).into()), ..*op }
}

/// The tiles of output rows `rows` of an unpadded convolution, written to an
/// image of just those rows, each row's window read in place from the input band
/// that holds it, or from a copy when it crosses a band boundary, by `par`'s
/// threads (or by one). Work units are (group of output blocks, row) pairs,
/// group-major.
pub(super) struct RowTiles<'a> {
    kernels: &'a Kernels,
    input: &'a Bands<'a>,
    geom: ConvGeometry,
    tiles: LayerTiles<'a>,
    rows: Range<usize>,
    co_blocks: usize,
    ob_tile: usize,
    px_tile: usize,
    ow: usize,
    /// Floats of one copied window: kh rows of every input block.
    staged_len: usize,
}

impl<'a> RowTiles<'a> {
    /// The tiles of output rows `rows` of `op` (unpadded; `residual` in `out`'s
    /// rows) into `out`, an image of those rows.
    pub(super) fn new(
        kernels: &'a Kernels,
        op: &'a Conv2d<'a>,
        residual: Option<Image<'a>>,
        out: &mut ImageMut,
        rows: Range<usize>,
        par: &dyn ParallelFor,
    ) -> Self {
        let (input, w, geom) = (&op.input, &op.weights, &op.geom);
        let s = w.shape;
        kernels.record_call();
        let row_len = input.dims.w * BLOCK;
        let co_blocks = s.co_blocks();
        let (ob_tile, px_tile) = choose_tile(&kernels.ops.conv, co_blocks, out.dims.w);
        RowTiles {
            kernels,
            input,
            geom: *geom,
            // The input block stride is the band's, given per row; the tiles prefetch
            // when the threads share the input (`par` has several).
            tiles: LayerTiles::new(
                kernels,
                op,
                residual,
                out,
                row_len,
                0,
                strided_stream(kernels, geom, Layout::Nchw16c.image_len(input.dims)),
                par,
            ),
            rows,
            co_blocks,
            ob_tile,
            px_tile,
            ow: out.dims.w,
            staged_len: s.ci_blocks() * s.kh * row_len,
        }
    }

    /// (group, row) pairs.
    pub(super) fn units(&self) -> usize {
        self.co_blocks.div_ceil(self.ob_tile) * self.rows.len()
    }

    /// Computes units `units`, copying the crossing windows into `slot` first.
    pub(super) fn run(&self, units: Range<usize>, slot: &mut [f32]) {
        let (geom, input, n_rows) = (&self.geom, self.input, self.rows.len());
        let row_len = input.dims.w * BLOCK;
        let window_len = geom.kh * row_len;
        for (j, oy) in staged_rows(*geom, input.split, self.rows.clone()).enumerate() {
            let (lo, _) = geom.window_rows(&(oy..oy + 1));
            stage_rows(input, lo, lo + geom.kh as isize, 0, 0, &mut slot[j * self.staged_len..]);
        }
        // Windows copied before row r: rows of the range that cross, counted once per
        // group as the units go by.
        let mut staged_before = 0;
        let mut last_group = usize::MAX;
        let mut shapes = TileShapes::default();
        for unit in units {
            let (g, r) = (unit / n_rows, unit % n_rows);
            if g != last_group {
                last_group = g;
                staged_before = staged_rows(*geom, input.split, self.rows.start..self.rows.start + r).count();
            }
            let oy = self.rows.start + r;
            let ob0 = g * self.ob_tile;
            let ob = self.ob_tile.min(self.co_blocks - ob0);
            // The window's first row and the distance between its blocks.
            let (window, in_block) = match window_band(oy, geom, &input.split) {
                Some((t, y)) => {
                    let band = input.band(t);
                    (&band.data[y * row_len..], band.dims.h * row_len)
                }
                None => {
                    staged_before += 1;
                    (&slot[(staged_before - 1) * self.staged_len..staged_before * self.staged_len], window_len)
                }
            };
            for ox0 in (0..self.ow).step_by(self.px_tile) {
                let px = self.px_tile.min(self.ow - ox0);
                let at = ox0 * geom.stride_w * BLOCK;
                // SAFETY: the tile reads blocks < ci_blocks (in_block apart), rows < kh
                // and columns < (ox0 + px - 1) * sw + kw <= input width of its window:
                // inside the band that holds it, or inside its copy. It writes its own
                // pixels of the output rows, which no other task writes.
                unsafe {
                    let tile = Tile { ob0, ob, out_px: r * self.ow + ox0, px };
                    self.tiles.run_from(&window[at..], in_block, tile, self.tiles.whole(), &mut shapes)
                };
            }
        }
        self.kernels.record_tiles(shapes);
    }
}
