//! Which algorithm computes each convolution: decided here, once, from the graph
//! alone (never the CPU), so a model file's tensors are the same wherever it was
//! written. The planner derives layouts and scratch from it, the executor
//! dispatches on it.

use std::fmt;

use incept_kernels::winograd::{Scheme, winograd_scheme};
use incept_kernels::{ConvGeometry, Layout};

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// The direct kernel on blocked (NCHW16c) activations.
    Direct,
    /// The direct kernel on the network's NCHW input image, expanded row by row: an
    /// input of one 16-channel block that only direct convolutions read, because a
    /// blocked copy of it would be 16/3 times an RGB image's size.
    FromImage,
    /// A Winograd scheme on blocked activations, the weights stored transformed
    /// (see [`winograd_for`]).
    Winograd(Scheme),
    /// The BF16 direct kernel on blocked activations: the input rounded to BF16
    /// as it is read, the weights a
    /// [`TensorRole::ConvWeightBf16`](super::TensorRole::ConvWeightBf16), sums and
    /// output float32 (see [`Precision`](super::Precision)).
    Bf16Direct,
    /// The BF16 convolution of the network's NCHW input image: the image rounded
    /// to a BF16 NCHW copy, neighbouring taps of a window row paired, the weights a
    /// [`TensorRole::ConvWeightBf16Image`](super::TensorRole::ConvWeightBf16Image).
    Bf16FromImage,
    /// The BF16 direct kernel on split operands (near float32): each input value
    /// and weight split into two BF16 terms, three products per multiply-add, the
    /// weights a
    /// [`TensorRole::ConvWeightBf16x3`](super::TensorRole::ConvWeightBf16x3).
    Bf16x3Direct,
}

impl Algorithm {
    /// The precision of the convolution's operands.
    pub fn precision(self) -> super::Precision {
        match self {
            Algorithm::Bf16Direct | Algorithm::Bf16FromImage => super::Precision::Bf16,
            Algorithm::Bf16x3Direct => super::Precision::Bf16x3,
            Algorithm::Direct | Algorithm::FromImage | Algorithm::Winograd(_) => super::Precision::F32,
        }
    }

    /// The algorithm lowering gives a convolution of `ci` input and `co` output
    /// channels with an `out_hw` output when it does not read the network's image:
    /// Winograd where [`winograd_for`] picks a scheme, else direct.
    pub fn for_conv(geom: &ConvGeometry, ci: usize, co: usize, out_hw: (usize, usize)) -> Algorithm {
        winograd_for(geom, ci, co, out_hw).map_or(Algorithm::Direct, Algorithm::Winograd)
    }

    /// The layout the convolution reads its input in.
    pub fn input_layout(self) -> Layout {
        match self {
            Algorithm::FromImage | Algorithm::Bf16FromImage => Layout::Nchw,
            Algorithm::Direct | Algorithm::Winograd(_) | Algorithm::Bf16Direct | Algorithm::Bf16x3Direct => {
                Layout::Nchw16c
            }
        }
    }
}

impl fmt::Display for Algorithm {
    /// `direct`, `from_image`, `winograd` and the scheme (`winograd F(2x2,3x3)`), or
    /// `bf16 direct`, `bf16 from_image`, `bf16x3 direct`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Direct => f.write_str("direct"),
            Algorithm::FromImage => f.write_str("from_image"),
            Algorithm::Winograd(scheme) => write!(f, "winograd {}", scheme.name()),
            Algorithm::Bf16Direct => f.write_str("bf16 direct"),
            Algorithm::Bf16FromImage => f.write_str("bf16 from_image"),
            Algorithm::Bf16x3Direct => f.write_str("bf16x3 direct"),
        }
    }
}

/// The Winograd scheme lowering computes a convolution of `ci` input and `co`
/// output channels by, if any (see `incept_kernels::winograd`):
///
/// - a 3x3 stride-1 window with an output of at least 4x4, and at least 64 input
///   channels, or 32 on maps of 35x35 and smaller or when they widen to 64 or
///   more: F(4x4, 3x3) on maps of 30x30 to 35x35 with 192 or more input channels,
///   F(2x2, 3x3) elsewhere;
/// - a 1x3, 3x1, 1x7 or 7x1 stride-1 window with at least 128 input channels
///   (whole 16-channel blocks), no padding across it, and 8 or more outputs along
///   it: the 6-point scheme along it (F(4, 3) for 1x3, F(3, 4+3) for 1x7), which
///   errs as little as F(2, 3) in the models and runs 1.3x faster.
///
/// Speed sets the lower bounds (below them the transforms cost more than they
/// save); accuracy sets the rest, because the transforms' larger terms round
/// worse and an error in an early layer grows on the way to the logits. The
/// measurements, and the commands that reproduce them, are in `docs/lowering.md`.
pub fn winograd_for(geom: &ConvGeometry, ci: usize, co: usize, out_hw: (usize, usize)) -> Option<Scheme> {
    let (oh, ow) = out_hw;
    match winograd_scheme(geom, ci)? {
        Scheme::F2x2 | Scheme::F4x4 => {
            let used = (ci >= 64 || (ci >= 32 && (co >= 64 || oh <= 35 && ow <= 35))) && oh >= 4 && ow >= 4;
            let four = ci >= 192 && (30..=35).contains(&oh) && (30..=35).contains(&ow);
            used.then_some(if four { Scheme::F4x4 } else { Scheme::F2x2 })
        }
        Scheme::F2 { vertical, taps } | Scheme::Line6 { vertical, taps } => {
            (ci >= 128 && (if vertical { oh } else { ow }) >= 8).then_some(Scheme::Line6 { vertical, taps })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowering rule, at the bounds of each of its conditions.
    #[test]
    fn winograd_is_chosen_by_the_rule() {
        use incept_kernels::Padding;
        let g = |k, s| ConvGeometry::new(k, k, s, Padding::uniform(1));
        let (two, four) = (Some(Scheme::F2x2), Some(Scheme::F4x4));
        assert_eq!(winograd_for(&g(3, 1), 64, 96, (4, 4)), two);
        // The stem: 32 channels on a large map only when widened to 64+.
        assert_eq!(winograd_for(&g(3, 1), 32, 32, (147, 147)), None);
        assert_eq!(winograd_for(&g(3, 1), 32, 64, (147, 147)), two);
        assert_eq!(winograd_for(&g(3, 1), 16, 64, (147, 147)), None);
        assert_eq!(winograd_for(&g(3, 1), 448, 96, (8, 8)), two);
        assert_eq!(winograd_for(&g(3, 1), 8, 96, (56, 56)), None);
        assert_eq!(winograd_for(&g(3, 1), 256, 96, (2, 2)), None);
        assert_eq!(winograd_for(&g(3, 2), 64, 96, (28, 28)), None);
        assert_eq!(winograd_for(&g(1, 1), 64, 96, (28, 28)), None);
        // F(4x4, 3x3): 192+ input channels on 30x30 to 35x35 maps.
        assert_eq!(winograd_for(&g(3, 1), 192, 96, (35, 35)), four);
        assert_eq!(winograd_for(&g(3, 1), 256, 96, (30, 30)), four);
        assert_eq!(winograd_for(&g(3, 1), 96, 96, (35, 35)), two);
        assert_eq!(winograd_for(&g(3, 1), 256, 96, (17, 17)), two);
        assert_eq!(winograd_for(&g(3, 1), 64, 96, (35, 35)), two);
        assert_eq!(winograd_for(&g(3, 1), 96, 96, (28, 28)), two);
        assert_eq!(winograd_for(&g(3, 1), 80, 96, (71, 71)), two);
        assert_eq!(winograd_for(&g(3, 1), 192, 96, (71, 71)), two);
        let line = |kh, kw, pad: Padding| ConvGeometry { kh, kw, stride_h: 1, stride_w: 1, pad };
        let (across_w, across_h) =
            (Padding { top: 0, left: 3, bottom: 0, right: 3 }, Padding { top: 3, left: 0, bottom: 3, right: 0 });
        // 1-D windows: 128+ input channels in whole blocks, no padding across, 8+
        // outputs along; the 6-point schemes.
        let (along_w, along_h) =
            (Some(Scheme::Line6 { vertical: false, taps: 7 }), Some(Scheme::Line6 { vertical: true, taps: 7 }));
        assert_eq!(winograd_for(&line(1, 7, across_w), 128, 96, (17, 17)), along_w);
        assert_eq!(winograd_for(&line(7, 1, across_h), 224, 96, (17, 17)), along_h);
        assert_eq!(winograd_for(&line(1, 7, across_w), 112, 96, (17, 17)), None);
        // inception_v4's stem: direct (by F(3, 4+3) its error grows past ONNX Runtime's).
        assert_eq!(winograd_for(&line(1, 7, across_w), 64, 64, (73, 73)), None);
        let along_w3 = Some(Scheme::Line6 { vertical: false, taps: 3 });
        assert_eq!(
            winograd_for(&line(1, 3, Padding { top: 0, left: 1, bottom: 0, right: 1 }), 384, 96, (8, 8)),
            along_w3
        );
        assert_eq!(winograd_for(&line(1, 3, Padding { top: 0, left: 1, bottom: 0, right: 1 }), 384, 96, (8, 7)), None);
        assert_eq!(winograd_for(&line(1, 7, across_w), 200, 96, (17, 17)), None);
        assert_eq!(winograd_for(&line(1, 7, across_h), 192, 96, (17, 17)), None);
        assert_eq!(winograd_for(&line(7, 1, across_h), 192, 96, (7, 17)), None);
        assert_eq!(winograd_for(&line(1, 5, Padding::uniform(0)), 192, 96, (17, 17)), None);
    }
}
