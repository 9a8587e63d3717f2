//! Images stored in horizontal bands of rows, one band per thread.
//!
//! When threads share a layer, each value of the network is split into bands of
//! whole rows, every band a plain image of its rows (in either layout) kept in its
//! own buffer, and thread `t` computes band `t` of every output. A thread then only
//! ever writes lines it owns and reads, besides its own band, the few rows of its
//! neighbours' bands a window reaches across the boundary: no line moves between
//! the cores' caches but those. (Split by channels instead, every value is read by
//! every thread and every later write to its lines must take them back from the
//! other core, which costs most when the cores sit far apart.)

use std::ops::Range;

use crate::layout::{BLOCK, Dims, Image, ImageMut, Layout};

/// Most bands an image is split into.
pub const MAX_BANDS: usize = 16;

/// Where an image's bands start and end: band `t` holds rows `rows(t)`, together
/// all rows in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowSplit {
    /// `ends[t]` is one past band `t`'s last row.
    ends: [u32; MAX_BANDS],
    bands: u8,
}

impl RowSplit {
    /// One band of `h` rows.
    pub const fn whole(h: usize) -> Self {
        let mut ends = [0; MAX_BANDS];
        ends[0] = h as u32;
        RowSplit { ends, bands: 1 }
    }

    /// `h` rows in `bands` bands (at most `h` and [`MAX_BANDS`]) of at most
    /// `ceil(h / bands)` rows each, their boundaries on even rows where that costs
    /// nothing: then the 2-row tiles of Winograd convolutions never straddle two
    /// bands (which would compute such a tile twice).
    pub fn even(h: usize, bands: usize) -> Self {
        if h == 0 {
            return RowSplit::whole(0);
        }
        let n = bands.clamp(1, MAX_BANDS).min(h);
        let most = h.div_ceil(n);
        let mut ends = [0; MAX_BANDS];
        let mut prev = 0;
        for (t, slot) in ends.iter_mut().enumerate().take(n) {
            // This band holds at most `most` rows, and the later ones must hold the rest.
            let (lo, hi) = (h.saturating_sub((n - t - 1) * most).max(prev + 1), prev + most);
            let mut end = ((t + 1) * h).div_ceil(n).clamp(lo, hi);
            if end % 2 == 1 && end > lo {
                end -= 1;
            }
            *slot = end as u32;
            prev = end;
        }
        RowSplit { ends, bands: n as u8 }
    }

    /// Number of bands.
    pub const fn bands(&self) -> usize {
        self.bands as usize
    }

    /// Rows of all bands.
    pub const fn height(&self) -> usize {
        self.ends[self.bands as usize - 1] as usize
    }

    /// Rows of band `t`.
    #[inline(always)]
    pub fn rows(&self, t: usize) -> Range<usize> {
        assert!(t < self.bands(), "band {t} of {}", self.bands);
        let start = if t == 0 { 0 } else { self.ends[t - 1] as usize };
        start..self.ends[t] as usize
    }

    /// The band that holds row `y` (< height).
    #[inline(always)]
    pub fn band_of(&self, y: usize) -> usize {
        let mut t = 0;
        while y >= self.ends[t] as usize && t + 1 < self.bands() {
            t += 1;
        }
        t
    }

    /// The shape of band `t` of an image of shape `d`.
    #[inline(always)]
    pub fn band_dims(&self, d: Dims, t: usize) -> Dims {
        Dims::new(d.c, self.rows(t).len(), d.w)
    }
}

/// A read-only image in bands (see the [module](self) docs).
#[derive(Clone, Copy, Debug)]
pub struct Bands<'a> {
    /// The whole image's shape.
    pub dims: Dims,
    /// Each band's layout.
    pub layout: Layout,
    /// The bands' rows.
    pub split: RowSplit,
    parts: [&'a [f32]; MAX_BANDS],
}

impl<'a> Bands<'a> {
    /// Wraps one buffer per band of `split`; panics if a length does not match its band.
    pub fn new(parts: &[&'a [f32]], dims: Dims, layout: Layout, split: RowSplit) -> Self {
        assert!(parts.len() == split.bands() && split.height() == dims.h, "bands: {split:?} of {dims:?}");
        let mut all = [&[][..]; MAX_BANDS];
        for (t, (slot, part)) in all.iter_mut().zip(parts).enumerate() {
            assert_eq!(part.len(), layout.image_len(split.band_dims(dims, t)), "bands: band {t} of {dims:?}");
            *slot = part;
        }
        Bands { dims, layout, split, parts: all }
    }

    /// Band `t` as a plain image of its rows.
    #[inline(always)]
    pub fn band(&self, t: usize) -> Image<'a> {
        Image { data: self.parts[t], dims: self.split.band_dims(self.dims, t), layout: self.layout }
    }

    /// The band holding row `y` and `y`'s row within it.
    #[inline(always)]
    pub fn row(&self, y: usize) -> (Image<'a>, usize) {
        let t = self.split.band_of(y);
        (self.band(t), y - self.split.rows(t).start)
    }

    /// Channel blocks `blocks` of a blocked image, in the same bands.
    pub fn blocks(&self, blocks: Range<usize>) -> Bands<'a> {
        assert!(self.layout == Layout::Nchw16c, "bands: channel blocks of a plain image");
        let c = self.dims.c.min(blocks.end * BLOCK) - blocks.start * BLOCK;
        let mut parts = self.parts;
        for (t, part) in parts.iter_mut().enumerate().take(self.split.bands()) {
            let plane = self.split.rows(t).len() * self.dims.w * BLOCK;
            *part = &part[blocks.start * plane..blocks.end * plane];
        }
        Bands { dims: self.dims.with_c(c), layout: self.layout, split: self.split, parts }
    }

    /// Row `y` of channel block `cb` (of channel `cb` in the plain layout): `w`
    /// pixels of 16 lanes (of one).
    #[inline(always)]
    pub fn row_of(&self, cb: usize, y: usize) -> &'a [f32] {
        let (band, r) = self.row(y);
        let row_len = self.dims.w * self.layout.block();
        &band.data[(cb * band.dims.h + r) * row_len..][..row_len]
    }

    /// The value at `(c, y, x)`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        let (band, r) = self.row(y);
        band.at(c, r, x)
    }
}

impl<'a> From<Image<'a>> for Bands<'a> {
    fn from(image: Image<'a>) -> Self {
        Bands::new(&[image.data], image.dims, image.layout, RowSplit::whole(image.dims.h))
    }
}

/// A writable image in bands (see the [module](self) docs).
#[derive(Debug)]
pub struct BandsMut<'a> {
    /// The whole image's shape.
    pub dims: Dims,
    /// Each band's layout.
    pub layout: Layout,
    /// The bands' rows.
    pub split: RowSplit,
    parts: [&'a mut [f32]; MAX_BANDS],
}

impl<'a> BandsMut<'a> {
    /// Wraps one buffer per band of `split`; panics if a length does not match its band.
    pub fn new(parts: impl IntoIterator<Item = &'a mut [f32]>, dims: Dims, layout: Layout, split: RowSplit) -> Self {
        assert_eq!(split.height(), dims.h, "bands: {split:?} of {dims:?}");
        let mut all: [&'a mut [f32]; MAX_BANDS] = Default::default();
        let mut n = 0;
        for (t, part) in parts.into_iter().enumerate() {
            assert!(t < split.bands(), "bands: more buffers than {split:?}");
            assert_eq!(part.len(), layout.image_len(split.band_dims(dims, t)), "bands: band {t} of {dims:?}");
            all[t] = part;
            n += 1;
        }
        assert_eq!(n, split.bands(), "bands: fewer buffers than {split:?}");
        BandsMut { dims, layout, split, parts: all }
    }

    /// Band `t` as a plain writable image of its rows.
    pub fn band(&mut self, t: usize) -> ImageMut<'_> {
        let dims = self.split.band_dims(self.dims, t);
        ImageMut { data: &mut *self.parts[t], dims, layout: self.layout }
    }

    /// A read-only view of the same image.
    pub fn as_bands(&self) -> Bands<'_> {
        let mut parts = [&[][..]; MAX_BANDS];
        for (p, q) in parts.iter_mut().zip(&self.parts) {
            *p = q;
        }
        Bands { dims: self.dims, layout: self.layout, split: self.split, parts }
    }

    /// Every band's buffer, in order.
    pub fn parts_mut(&mut self) -> &mut [&'a mut [f32]] {
        &mut self.parts[..self.split.bands()]
    }
}

impl<'a> From<&'a mut ImageMut<'_>> for BandsMut<'a> {
    fn from(image: &'a mut ImageMut<'_>) -> Self {
        let (dims, layout) = (image.dims, image.layout);
        BandsMut::new([&mut *image.data], dims, layout, RowSplit::whole(dims.h))
    }
}

/// Copies `image` into bands of `split` (for tests and tools).
pub fn split_image(image: Image, split: RowSplit) -> Vec<Vec<f32>> {
    assert_eq!(split.height(), image.dims.h, "split_image: {split:?} of {:?}", image.dims);
    let d = image.dims;
    (0..split.bands())
        .map(|t| {
            let bd = split.band_dims(d, t);
            let mut part = vec![0.0; image.layout.image_len(bd)];
            let mut band = ImageMut::new(&mut part, bd, image.layout);
            let y0 = split.rows(t).start;
            for c in 0..d.c {
                for y in 0..bd.h {
                    for x in 0..d.w {
                        band.set(c, y, x, image.at(c, y0 + y, x));
                    }
                }
            }
            part
        })
        .collect()
}

/// The whole image of `bands`, in its layout (for tests and tools).
pub fn join_bands(bands: Bands) -> Vec<f32> {
    let mut whole = vec![0.0; bands.layout.image_len(bands.dims)];
    let d = bands.dims;
    let mut image = ImageMut::new(&mut whole, d, bands.layout);
    for c in 0..d.c {
        for y in 0..d.h {
            for x in 0..d.w {
                image.set(c, y, x, bands.at(c, y, x));
            }
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_splits_cover_the_rows_in_order() {
        for h in 0..40 {
            for n in 1..=MAX_BANDS + 2 {
                let s = RowSplit::even(h, n);
                assert_eq!(s.bands(), n.min(MAX_BANDS).min(h.max(1)));
                assert_eq!(s.height(), h);
                let mut next = 0;
                for t in 0..s.bands() {
                    let r = s.rows(t);
                    assert_eq!(r.start, next);
                    assert!(h == 0 || !r.is_empty(), "h {h} n {n}: band {t} empty");
                    assert!(r.len() <= h.div_ceil(s.bands()), "h {h} n {n}: band {t} too large");
                    for y in r.clone() {
                        assert_eq!(s.band_of(y), t);
                    }
                    next = r.end;
                }
            }
        }
    }

    #[test]
    fn two_bands_split_on_an_even_row_when_it_costs_nothing() {
        for (h, first) in [(17, 8), (35, 18), (147, 74), (73, 36), (71, 36), (8, 4), (6, 3), (3, 2)] {
            assert_eq!(RowSplit::even(h, 2).rows(0), 0..first, "{h} rows");
        }
    }

    #[test]
    fn split_and_join_round_trip() {
        let d = Dims::new(19, 7, 5);
        for layout in [Layout::Nchw, Layout::Nchw16c] {
            let mut whole = vec![0.0; layout.image_len(d)];
            let mut img = ImageMut::new(&mut whole, d, layout);
            for c in 0..d.c {
                for y in 0..d.h {
                    for x in 0..d.w {
                        img.set(c, y, x, (c * 100 + y * 10 + x) as f32);
                    }
                }
            }
            for n in 1..=8 {
                let split = RowSplit::even(d.h, n);
                let parts = split_image(Image::new(&whole, d, layout), split);
                let refs: Vec<&[f32]> = parts.iter().map(|p| &p[..]).collect();
                let bands = Bands::new(&refs, d, layout, split);
                assert_eq!(join_bands(bands), whole, "{layout:?} in {n} bands");
            }
        }
    }
}
