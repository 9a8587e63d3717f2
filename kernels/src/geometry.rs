//! Window geometry shared by convolution and pooling, the shape of a convolution's
//! weights, and fused activations.

use crate::layout::BLOCK;

/// Zero (or ignored) border added around an image. Asymmetric padding exists: TF's
/// "SAME" pads more on the bottom/right when the total is odd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Padding {
    /// Rows added above.
    pub top: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the right.
    pub right: usize,
}

impl Padding {
    /// The same padding on every side.
    pub const fn uniform(p: usize) -> Self {
        Padding { top: p, left: p, bottom: p, right: p }
    }

    /// `ph` rows above and below, `pw` columns left and right.
    pub const fn symmetric(ph: usize, pw: usize) -> Self {
        Padding { top: ph, left: pw, bottom: ph, right: pw }
    }
}

/// Activation applied in a kernel's store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
        }
    }
}

/// A convolution window: kernel size, stride and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Zero padding.
    pub pad: Padding,
}

impl ConvGeometry {
    /// A `kh x kw` window with `stride` in both directions and the given padding.
    pub const fn new(kh: usize, kw: usize, stride: usize, pad: Padding) -> Self {
        ConvGeometry { kh, kw, stride_h: stride, stride_w: stride, pad }
    }

    /// Input rows (from `lo`, negative above the image, to `hi`, past its end when
    /// padded below) that output rows `rows` (not empty) read.
    pub fn window_rows(&self, rows: &std::ops::Range<usize>) -> (isize, isize) {
        let lo = (rows.start * self.stride_h) as isize - self.pad.top as isize;
        let hi = ((rows.end - 1) * self.stride_h + self.kh) as isize - self.pad.top as isize;
        (lo, hi)
    }

    /// Output height and width for an `h x w` input, or `None` when the window is
    /// larger than the padded input or a size is zero.
    pub fn output_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let ph = h + self.pad.top + self.pad.bottom;
        let pw = w + self.pad.left + self.pad.right;
        if self.kh == 0 || self.kw == 0 || self.stride_h == 0 || self.stride_w == 0 || h == 0 || w == 0 {
            return None;
        }
        if ph < self.kh || pw < self.kw {
            return None;
        }
        Some(((ph - self.kh) / self.stride_h + 1, (pw - self.kw) / self.stride_w + 1))
    }
}

/// A pooling window. Output sizes follow PyTorch: with `ceil_mode` the last window
/// may hang over the bottom/right edge but must start inside the image or its
/// top/left padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolGeometry {
    /// The window, stride and padding.
    pub window: ConvGeometry,
    /// Round the output size up instead of down (Caffe, NiN, GoogLeNet).
    pub ceil_mode: bool,
}

impl PoolGeometry {
    /// A `k x k` window with the given stride, uniform padding and rounding.
    pub const fn new(k: usize, stride: usize, pad: usize, ceil_mode: bool) -> Self {
        PoolGeometry { window: ConvGeometry::new(k, k, stride, Padding::uniform(pad)), ceil_mode }
    }

    /// Output height and width for an `h x w` input, or `None` when the window is
    /// larger than the padded input or a size is zero.
    pub fn output_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let g = &self.window;
        let (oh, ow) = g.output_hw(h, w)?;
        if !self.ceil_mode {
            return Some((oh, ow));
        }
        let ceil = |size: usize, k: usize, s: usize, before: usize, after: usize, floor_out: usize| {
            let span = size + before + after - k;
            let mut out = span.div_ceil(s) + 1;
            // The last window must start inside the image or its leading padding.
            if out > floor_out && (out - 1) * s >= size + before {
                out -= 1;
            }
            out
        };
        Some((
            ceil(h, g.kh, g.stride_h, g.pad.top, g.pad.bottom, oh),
            ceil(w, g.kw, g.stride_w, g.pad.left, g.pad.right, ow),
        ))
    }
}

/// Shape of a convolution's weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    /// Output channels.
    pub co: usize,
    /// Input channels.
    pub ci: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
}

impl ConvShape {
    /// Output channel blocks.
    pub const fn co_blocks(&self) -> usize {
        self.co.div_ceil(BLOCK)
    }

    /// Input channel blocks.
    pub const fn ci_blocks(&self) -> usize {
        self.ci.div_ceil(BLOCK)
    }

    /// Length of the packed weights.
    pub const fn packed_len(&self) -> usize {
        self.co_blocks() * self.ci_blocks() * self.kh * self.kw * BLOCK * BLOCK
    }

    /// Length of the packed bias (output channels padded to a block).
    pub const fn packed_bias_len(&self) -> usize {
        self.co_blocks() * BLOCK
    }
}
