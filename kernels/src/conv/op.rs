//! One convolution's operands ([`Conv2d`]) and their checks, shared by the direct
//! and Winograd drivers.

use crate::bands::Bands;
use crate::geometry::{Activation, ConvGeometry, ConvShape};
use crate::layout::Layout;

/// Packed weights and bias of a convolution.
#[derive(Clone, Copy, Debug)]
pub struct PackedConv<'a> {
    /// Shape of the original weights.
    pub shape: ConvShape,
    /// Weights in a blocked layout of [`crate::pack`].
    pub weights: &'a [f32],
    /// Bias padded to whole blocks.
    pub bias: &'a [f32],
}

/// One convolution, `out = act(conv(input) + bias + residual)`: its operands and
/// window. The entry points ([`conv2d`](crate::conv::conv2d), [`conv2d_image`](crate::conv::conv2d_image) and
/// [`crate::winograd::conv2d_winograd`]) take it with the output, the scratch and
/// the threads.
#[derive(Clone, Copy, Debug)]
pub struct Conv2d<'a> {
    /// The input image, in bands (a plain image converts with `into`).
    pub input: Bands<'a>,
    /// Packed weights and bias: by [`crate::pack::pack_conv_weights`] for the direct
    /// convolutions, by [`crate::pack::pack_winograd_weights`] for Winograd.
    pub weights: PackedConv<'a>,
    /// The window.
    pub geom: ConvGeometry,
    /// A shortcut to add before the activation, in the output's bands.
    pub residual: Option<Bands<'a>>,
    /// The activation applied last.
    pub act: Activation,
}

/// Checks a convolution's operands (in any bands; a residual in the output's)
/// against its packed weights (`packed_len` floats of them) and window; `what`
/// names the kernel in the panic. Callers check the input's layout.
pub(crate) fn check(
    what: &str,
    input: &Bands,
    w: &PackedConv,
    packed_len: usize,
    geom: &ConvGeometry,
    residual: Option<&Bands>,
    out: &Bands,
) {
    let s = w.shape;
    assert!(out.layout == Layout::Nchw16c, "{what}: output layout");
    assert!(input.dims.c == s.ci && out.dims.c == s.co && (geom.kh, geom.kw) == (s.kh, s.kw), "{what}: shape");
    assert_eq!(geom.output_hw(input.dims.h, input.dims.w), Some((out.dims.h, out.dims.w)), "{what}: size");
    assert!(w.weights.len() == packed_len && w.bias.len() == s.packed_bias_len(), "{what}: packing");
    if let Some(r) = residual {
        assert!(r.dims == out.dims && r.layout == Layout::Nchw16c && r.split == out.split, "{what}: residual");
    }
}
