//! Activation layouts and the image views kernels read and write.

/// Channels per block in the blocked layout. Every concat slice in the Inception
/// family is a multiple of 16 channels, so a branch's output is a contiguous,
/// block-aligned run of its concat; 16 lanes fill one AVX-512 register, two AVX2
/// registers or four NEON registers.
pub const BLOCK: usize = 16;

/// How the values of one image are ordered in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Channel-major: `c * H * W + y * W + x`.
    Nchw,
    /// Channel-blocked: `(c / 16) * H * W * 16 + (y * W + x) * 16 + c % 16`. The
    /// channel count is padded up to a multiple of 16; kernels write zeros to the
    /// padding lanes so that wider kernels may read whole blocks.
    Nchw16c,
}

/// The shape of one image: channels, height, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Dims {
    /// A `c x h x w` shape.
    pub const fn new(c: usize, h: usize, w: usize) -> Self {
        Dims { c, h, w }
    }

    /// The same plane with `c` channels.
    pub const fn with_c(self, c: usize) -> Self {
        Dims { c, ..self }
    }

    /// Number of real values (`c * h * w`).
    pub const fn volume(self) -> usize {
        self.c * self.h * self.w
    }
}

impl Layout {
    /// Channels rounded up to what the layout stores.
    pub const fn padded_channels(self, c: usize) -> usize {
        match self {
            Layout::Nchw => c,
            Layout::Nchw16c => c.div_ceil(BLOCK) * BLOCK,
        }
    }

    /// Channels per block: 16, or 1 for the plain layout.
    pub const fn block(self) -> usize {
        match self {
            Layout::Nchw => 1,
            Layout::Nchw16c => BLOCK,
        }
    }

    /// Number of `f32` one image of shape `d` occupies.
    pub const fn image_len(self, d: Dims) -> usize {
        self.padded_channels(d.c) * d.h * d.w
    }

    /// Offset of element `(c, y=0, x=0)`.
    pub const fn channel_base(self, d: Dims, c: usize) -> usize {
        match self {
            Layout::Nchw => c * d.h * d.w,
            Layout::Nchw16c => (c / BLOCK) * d.h * d.w * BLOCK + c % BLOCK,
        }
    }

    /// Distance between horizontally adjacent pixels of one channel.
    pub const fn pixel_stride(self) -> usize {
        match self {
            Layout::Nchw => 1,
            Layout::Nchw16c => BLOCK,
        }
    }

    /// Offset of element `(c, y, x)`.
    pub const fn index(self, d: Dims, c: usize, y: usize, x: usize) -> usize {
        self.channel_base(d, c) + (y * d.w + x) * self.pixel_stride()
    }

    /// Offset, within a concatenation of shape `whole`, of the part that starts at
    /// channel `c0`; `None` when that part cannot be a contiguous view (blocked
    /// layout and `c0` not on a block boundary).
    pub const fn channel_slice_offset(self, whole: Dims, c0: usize) -> Option<usize> {
        match self {
            Layout::Nchw => Some(c0 * whole.h * whole.w),
            Layout::Nchw16c if c0.is_multiple_of(BLOCK) => Some(c0 * whole.h * whole.w),
            Layout::Nchw16c => None,
        }
    }
}

/// A read-only view of one image.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    /// The values, exactly `layout.image_len(dims)` long.
    pub data: &'a [f32],
    /// The image's shape.
    pub dims: Dims,
    /// How `data` is ordered.
    pub layout: Layout,
}

/// A writable view of one image.
#[derive(Debug)]
pub struct ImageMut<'a> {
    /// The values, exactly `layout.image_len(dims)` long.
    pub data: &'a mut [f32],
    /// The image's shape.
    pub dims: Dims,
    /// How `data` is ordered.
    pub layout: Layout,
}

impl<'a> Image<'a> {
    /// Wraps `data`; panics if its length does not match the shape and layout.
    pub fn new(data: &'a [f32], dims: Dims, layout: Layout) -> Self {
        assert_eq!(data.len(), layout.image_len(dims), "image length does not match {dims:?} in {layout:?}");
        Image { data, dims, layout }
    }

    /// The value at `(c, y, x)`.
    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[self.layout.index(self.dims, c, y, x)]
    }
}

impl<'a> ImageMut<'a> {
    /// Wraps `data`; panics if its length does not match the shape and layout.
    pub fn new(data: &'a mut [f32], dims: Dims, layout: Layout) -> Self {
        assert_eq!(data.len(), layout.image_len(dims), "image length does not match {dims:?} in {layout:?}");
        ImageMut { data, dims, layout }
    }

    /// A read-only view of the same image.
    pub fn as_image(&self) -> Image<'_> {
        Image { data: self.data, dims: self.dims, layout: self.layout }
    }

    /// Writes the value at `(c, y, x)`.
    #[inline]
    pub fn set(&mut self, c: usize, y: usize, x: usize, v: f32) {
        let i = self.layout.index(self.dims, c, y, x);
        self.data[i] = v;
    }

    /// Zeroes the lanes past the last channel of a blocked image (no-op otherwise).
    pub fn zero_padding_lanes(&mut self) {
        let d = self.dims;
        if self.layout == Layout::Nchw16c && !d.c.is_multiple_of(BLOCK) {
            let last = self.layout.channel_base(d, d.c - d.c % BLOCK);
            for px in self.data[last..].chunks_exact_mut(BLOCK) {
                px[d.c % BLOCK..].fill(0.0);
            }
        }
    }
}

/// A heap buffer of `f32` aligned to 64 bytes (a cache line, one AVX-512 register),
/// for arenas and packed weights.
///
/// The buffer is allocated at the allocator's natural 16-byte alignment, a little
/// larger, and the values start at the first 64-byte boundary in it: a zeroed
/// allocation of natural alignment comes from `calloc`, whose large blocks are fresh
/// pages that cost nothing until first written, whereas an over-aligned one is
/// zeroed by a `memset` that faults in every page.
#[derive(Debug, Default)]
pub struct AlignedVec {
    quads: Vec<[f32; 4]>,
    /// Index of the first value in `quads`' floats: 0, 4, 8 or 12.
    start: usize,
    len: usize,
}

impl AlignedVec {
    /// `len` zeros. Panics when the allocator refuses; see [`try_zeroed`](Self::try_zeroed).
    pub fn zeroed(len: usize) -> Self {
        Self::try_zeroed(len).unwrap_or_else(|| panic!("cannot allocate {len} floats"))
    }

    /// `len` zeros, or `None` when the allocator refuses (or the size overflows):
    /// sizes a user chose (a batch) must fail as an error, not a panic.
    pub fn try_zeroed(len: usize) -> Option<Self> {
        let quads: Vec<[f32; 4]> = bytemuck::try_zeroed_vec(len.div_ceil(4).checked_add(3)?).ok()?;
        // Floats from the allocation's start to the next 64-byte boundary.
        let start = (quads.as_ptr() as usize).next_multiple_of(64).wrapping_sub(quads.as_ptr() as usize) / 4;
        Some(AlignedVec { quads, start, len })
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[f32]) -> Self {
        let mut v = Self::zeroed(values.len());
        v.as_mut_slice().copy_from_slice(values);
        v
    }

    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        &bytemuck::cast_slice(&self.quads)[self.start..self.start + self.len]
    }

    /// The values, writable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut bytemuck::cast_slice_mut(&mut self.quads)[self.start..self.start + self.len]
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Clone for AlignedVec {
    fn clone(&self) -> Self {
        // A new allocation has its own distance to a 64-byte boundary.
        AlignedVec::from_slice(self.as_slice())
    }
}

impl PartialEq for AlignedVec {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::AlignedVec;

    #[test]
    fn aligned_vec_starts_on_a_cache_line_and_holds_its_values() {
        for len in [0, 1, 3, 4, 15, 16, 17, 100, 1 << 20] {
            let values: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let v = AlignedVec::from_slice(&values);
            assert_eq!(v.as_slice(), &values[..]);
            assert_eq!(v.as_slice().as_ptr() as usize % 64, 0, "len {len}");
            let c = v.clone();
            assert_eq!((c.as_slice().as_ptr() as usize % 64, c), (0, v));
            assert!(AlignedVec::zeroed(len).as_slice().iter().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn try_zeroed_refuses_what_no_allocator_can_give() {
        assert!(AlignedVec::try_zeroed(usize::MAX).is_none());
        assert!(AlignedVec::try_zeroed(usize::MAX / 8).is_none());
        assert_eq!(AlignedVec::try_zeroed(5).map(|v| v.len()), Some(5));
    }
}
