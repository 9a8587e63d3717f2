//! Raster tiles: where a tile's pixels cross the ends of output rows ([`RowWrap`]).

/// A tile of consecutive output pixels in raster order, which may cross the ends
/// of output rows ("raster tiles"): a row of `width` pixels whose input moves on by
/// `in_pixel` per pixel and by `skip` more from a row's last pixel to the next
/// row's first. A small map's rows of 7 or 8 pixels then run in whole tiles of 6
/// (49 = 8 x 6 + 1, 64 = 10 x 6 + 4) rather than a short tile per row.
#[derive(Clone, Copy, Debug)]
pub struct RowWrap {
    /// Output pixels per row.
    pub width: usize,
    /// Column of the tile's first pixel (below `width`).
    pub col: usize,
    /// Floats the input moves on at a row end besides `in_pixel` (wrapping).
    pub skip: usize,
}

impl RowWrap {
    /// Pixels that never reach a row end: every pixel `in_pixel` floats on.
    pub const NONE: RowWrap = RowWrap { width: usize::MAX, col: 0, skip: 0 };

    /// Floats from the tile's first pixel's input to pixel `p`'s (wrapping).
    #[inline(always)]
    pub fn pixel(&self, in_pixel: usize, p: usize) -> usize {
        // Without a skip, no division (a GEMM tile of a few taps feels one).
        if self.skip == 0 {
            return p * in_pixel;
        }
        let ends = (self.col + p) / self.width;
        (p * in_pixel).wrapping_add(ends.wrapping_mul(self.skip))
    }

    /// [`pixel`](Self::pixel) of each of the tile's first `PX` pixels, in bytes.
    #[inline(always)]
    pub(crate) fn pixel_bytes<const PX: usize>(&self, in_pixel: usize) -> [usize; PX] {
        if self.skip == 0 {
            return std::array::from_fn(|p| p * in_pixel * 4);
        }
        let (mut col, mut at, mut bytes) = (self.col, 0usize, [0; PX]);
        for b in bytes.iter_mut().skip(1) {
            (col, at) = (col + 1, at.wrapping_add(in_pixel));
            if col == self.width {
                (col, at) = (0, at.wrapping_add(self.skip));
            }
            *b = at.wrapping_mul(4);
        }
        bytes
    }

    /// The wrap of the tile `p` pixels on.
    #[inline(always)]
    pub(crate) fn along(&self, p: usize) -> RowWrap {
        if self.skip == 0 {
            return *self;
        }
        RowWrap { col: (self.col + p) % self.width, ..*self }
    }
}
