//! Reading NHWC images (TensorFlow's order, `H x W x C`) into either engine layout:
//! a graph whose input is NHWC takes it directly, in the one pass that reorders
//! any input into the arena.

use crate::bands::BandsMut;
use crate::layout::{BLOCK, Layout};
use crate::parallel::{ParallelFor, for_each_band};

/// Writes the NHWC image `input` (one image, `out.dims` in `H x W x C` order) into
/// `out` (either layout, any split): one task per output band, row by row. The
/// lanes past the last channel of a block are zeroed.
pub fn reorder_from_nhwc(input: &[f32], out: &mut BandsMut, par: &dyn ParallelFor) {
    let d = out.dims;
    assert_eq!(input.len(), d.volume(), "reorder_from_nhwc: input length");
    let (layout, split) = (out.layout, out.split);
    for_each_band(out, par, &|t, band| {
        let bh = band.dims.h;
        for (r, y) in split.rows(t).enumerate() {
            let pixels = &input[y * d.w * d.c..][..d.w * d.c];
            match layout {
                Layout::Nchw16c => {
                    for cb in 0..d.c.div_ceil(BLOCK) {
                        let dst = &mut band.data[(cb * bh + r) * d.w * BLOCK..][..d.w * BLOCK];
                        let lanes = (d.c - cb * BLOCK).min(BLOCK);
                        for (px, src) in dst.chunks_exact_mut(BLOCK).zip(pixels.chunks_exact(d.c)) {
                            px[..lanes].copy_from_slice(&src[cb * BLOCK..][..lanes]);
                            px[lanes..].fill(0.0);
                        }
                    }
                }
                Layout::Nchw => {
                    for c in 0..d.c {
                        let dst = &mut band.data[(c * bh + r) * d.w..][..d.w];
                        dst.iter_mut().zip(pixels.iter().skip(c).step_by(d.c)).for_each(|(o, v)| *o = *v);
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::reorder_from_nhwc;
    use crate::bands::{BandsMut, RowSplit, join_bands};
    use crate::blocked::reorder_bands;
    use crate::layout::{Dims, Image, Layout};
    use crate::parallel::Sequential;

    /// Against the NCHW reorder of the same image transposed by index arithmetic:
    /// the same bits, for both layouts, channel counts around a block and 1-3 bands.
    #[test]
    fn matches_the_nchw_reorder_of_the_transposed_image() {
        for (c, h, w) in [(3, 5, 7), (1, 4, 4), (16, 3, 2), (17, 6, 5), (35, 7, 3)] {
            let d = Dims::new(c, h, w);
            let nhwc: Vec<f32> = (0..d.volume()).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut nchw = vec![0.0; d.volume()];
            for (y, x, ch) in (0..h).flat_map(|y| (0..w).flat_map(move |x| (0..c).map(move |ch| (y, x, ch)))) {
                nchw[(ch * h + y) * w + x] = nhwc[(y * w + x) * c + ch];
            }
            for layout in [Layout::Nchw, Layout::Nchw16c] {
                for bands in 1..=3.min(h) {
                    let split = RowSplit::even(h, bands);
                    let lens: Vec<usize> = (0..bands).map(|t| layout.image_len(split.band_dims(d, t))).collect();
                    let (mut got, mut want): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (
                        lens.iter().map(|&n| vec![f32::NAN; n]).collect(),
                        lens.iter().map(|&n| vec![0.0; n]).collect(),
                    );
                    let mut out = BandsMut::new(got.iter_mut().map(|v| &mut v[..]), d, layout, split);
                    reorder_from_nhwc(&nhwc, &mut out, &Sequential);
                    let mut reference = BandsMut::new(want.iter_mut().map(|v| &mut v[..]), d, layout, split);
                    reorder_bands(Image::new(&nchw, d, Layout::Nchw).into(), &mut reference, &Sequential);
                    let (got, want) = (join_bands(out.as_bands()), join_bands(reference.as_bands()));
                    assert_eq!(got, want, "{d:?} {layout:?} {bands} bands");
                }
            }
        }
    }
}
