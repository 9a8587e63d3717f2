//! The copies of the image convolution's staging (`conv::image`): window rows of
//! an interleaved image into staged pixels, compiled in each tier's
//! `TierOps::image_stage` for its widest moves.

/// Values a staged window row is copied in: a run of `kw * ci` values is copied in
/// whole pieces of this many, the last one running over into the next run (written
/// after it) or into the padding lanes (zeroed after it).
pub(crate) const COPY: usize = 8;

/// Window rows `rows` to copy into staged pixels for `width` output pixels (pixel
/// `x` at `x * pixel`, row `k` at `k * run_len`): `run_len` values from `x *
/// px_step` of each row, the rows in order; then, given `tail` (the end of the
/// window's lanes), the [`COPY`] values from there zeroed (the last run's last
/// piece ran into them).
pub(crate) struct Stage<'a> {
    pub(crate) rows: &'a [&'a [f32]],
    pub(crate) width: usize,
    pub(crate) pixel: usize,
    pub(crate) px_step: usize,
    pub(crate) run_len: usize,
    /// [`COPY`]s per run.
    pub(crate) pieces: usize,
    pub(crate) tail: Option<usize>,
}

impl Stage<'_> {
    /// Copies the runs into `staged`; inlined into each tier's `image_stage`, so
    /// that the copies are the tier's widest moves (a 7x7 RGB window's 21 values
    /// three AVX moves rather than six SSE ones).
    #[inline(always)]
    pub(crate) fn copy(&self, staged: &mut [f32]) {
        match self.pieces {
            1 => self.pixels::<{ COPY }>(staged),
            2 => self.pixels::<{ 2 * COPY }>(staged),
            3 => self.pixels::<{ 3 * COPY }>(staged),
            _ => self.pixels_any(staged),
        }
    }

    /// Runs copied as `N` values (`N / COPY` pieces, a constant).
    #[inline(always)]
    fn pixels<const N: usize>(&self, staged: &mut [f32]) {
        for x in 0..self.width {
            let px = &mut staged[x * self.pixel..];
            for (k, row) in self.rows.iter().enumerate() {
                let from: &[f32; N] = row[x * self.px_step..][..N].try_into().expect("N values");
                let to: &mut [f32; N] = (&mut px[k * self.run_len..][..N]).try_into().expect("N values");
                *to = *from;
            }
            self.zero_tail(px);
        }
    }

    /// Runs copied as `pieces` pieces of [`COPY`] values.
    #[inline(always)]
    fn pixels_any(&self, staged: &mut [f32]) {
        let pieces = self.pieces;
        for x in 0..self.width {
            let px = &mut staged[x * self.pixel..];
            for (k, row) in self.rows.iter().enumerate() {
                let from = row[x * self.px_step..][..pieces * COPY].chunks_exact(COPY);
                for (t, f) in px[k * self.run_len..][..pieces * COPY].chunks_exact_mut(COPY).zip(from) {
                    t.copy_from_slice(f);
                }
            }
            self.zero_tail(px);
        }
    }

    #[inline(always)]
    fn zero_tail(&self, px: &mut [f32]) {
        if let Some(at) = self.tail {
            let tail: &mut [f32; COPY] = (&mut px[at..][..COPY]).try_into().expect("COPY values");
            *tail = [0.0; COPY];
        }
    }
}

/// One output row of a `k x k` stride-2 convolution of a 3-channel image (a tier
/// lists the `k` it has), for one output block or two ([`ImageRows::blocks`]),
/// computed straight from the image's channel planes (NCHW, or a padded copy of
/// some rows) in tiles of [`IMAGE_ROW_TILE`] pixels: output pixel `x` reads window
/// row `ky`, column `kx` of channel `c` at `planes[c] + ky * row + 2 * x + kx`,
/// which is lane `(ky * k + kx) * 3 + c` of the folded window (`conv::image`). The
/// sums are those of the staged path (its chunks of 48 lanes, the bias, the clamp).
pub(crate) struct ImageRow {
    /// Each channel's first window row, from the first tile's first pixel's window.
    pub(crate) planes: [*const f32; 3],
    /// Floats from a window row to the next in each plane.
    pub(crate) row: usize,
    /// The output block's folded weights: lane `l`'s 16 outputs at `16 * l`.
    pub(crate) weights: *const f32,
    /// The output block's 16 biases.
    pub(crate) bias: *const f32,
    /// The first tile's first output pixel (NCHW16c: pixels 16 floats apart).
    pub(crate) output: *mut f32,
    /// Tiles along the row.
    pub(crate) tiles: usize,
    /// Whether the sums are clamped at zero.
    pub(crate) relu: bool,
    /// A kernel of two blocks' second block, in floats on from the first's.
    pub(crate) next: NextBlock,
}

/// Where an [`ImageRow`]'s second output block is, in floats on from its first
/// block's weights, bias and output; all zero ([`NextBlock::SAME`]) for the first
/// block again (its sums computed twice, the same bits), as for the last block of
/// an odd count, or for a kernel of one block, which ignores it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NextBlock {
    pub(crate) weights: usize,
    pub(crate) bias: usize,
    pub(crate) output: usize,
}

impl NextBlock {
    /// The first block again.
    pub(crate) const SAME: NextBlock = NextBlock { weights: 0, bias: 0, output: 0 };
}

/// A tier's kernel of [`ImageRow`]s.
pub(crate) type ImageRowFn = unsafe fn(&ImageRow);

/// A tier's [`ImageRow`] kernel of a `k x k` window, and the output blocks a call
/// computes (1, or 2: the block and [`ImageRow::next`]).
#[derive(Clone, Copy)]
pub(crate) struct ImageRows {
    pub(crate) k: usize,
    pub(crate) blocks: usize,
    pub(crate) run: ImageRowFn,
}

/// Output pixels per tile of an [`ImageRow`].
pub(crate) const IMAGE_ROW_TILE: usize = 6;
