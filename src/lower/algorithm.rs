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
}

impl Algorithm {
    /// The algorithm lowering gives a convolution of `ci` input and `co` output
    /// channels with an `out_hw` output when it does not read the network's image:
    /// Winograd where [`winograd_for`] picks a scheme, else direct.
    pub fn for_conv(geom: &ConvGeometry, ci: usize, co: usize, out_hw: (usize, usize)) -> Algorithm {
        winograd_for(geom, ci, co, out_hw).map_or(Algorithm::Direct, Algorithm::Winograd)
    }

    /// The layout the convolution reads its input in.
    pub fn input_layout(self) -> Layout {
        match self {
            Algorithm::FromImage => Layout::Nchw,
            Algorithm::Direct | Algorithm::Winograd(_) => Layout::Nchw16c,
        }
    }
}

impl fmt::Display for Algorithm {
    /// `direct`, `from_image`, or `winograd` and the scheme (`winograd F(2x2,3x3)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Direct => f.write_str("direct"),
            Algorithm::FromImage => f.write_str("from_image"),
            Algorithm::Winograd(scheme) => write!(f, "winograd {}", scheme.name()),
        }
    }
}

/// The Winograd scheme lowering computes a convolution of `ci` input and `co`
/// output channels by, if any (see `incept_kernels::winograd`): for a 3x3 stride-1
/// window with an output of at least 4x4, and at least 64 input channels, or 32
/// on maps of 35x35 and smaller or when they widen to 64 or more, F(4x4, 3x3) on
/// maps of 30x30 to 35x35 with 192 or more input channels, F(2x2, 3x3) elsewhere;
/// F(2, 3) for a 1x3, 3x1, 1x7 or 7x1 stride-1 window with at least 128 input
/// channels (whole 16-channel blocks) and 12 or more outputs along it.
///
/// F(4x4, 3x3) against F(2x2, 3x3) (`incept peak --winograd`, AVX-512, one thread,
/// inception_v3's layers): 1.5-1.6x faster on the 35x35 maps (96 channels 0.45 ->
/// 0.29 ms, 64 channels 0.31 -> 0.20 ms) and on the stem's 73x73 one (3.1 -> 2.0
/// ms), slower on the 8x8 ones (0.61 -> 0.82 ms: 4 tiles, and weights 36/16 as
/// large). Accuracy decides where it is used: its transformed terms are ~9x larger
/// against the outputs than F(2x2, 3x3)'s (`W / D` 63 against 7, see
/// `kernels/tests/winograd_tiers.rs`), and an error made early in the network
/// grows on the way to the logits. Mean over 8 random images of the max error
/// against a float64 evaluation, as a fraction of ONNX Runtime's on the same
/// images (googlenet, inception_v3, inception_v4, inception_resnet_v2): F(2x2,
/// 3x3) only 0.83, 0.83, 0.73, 0.80; F(4x4, 3x3) on every 3x3 of 12x12 to 35x35
/// maps 1.07, 1.00, 0.84, 0.85; on maps of 36x36 and larger (googlenet's 56x56
/// layer, the others' 73x73 stem layer) 1.42, 1.16, 1.00, 1.08; on the 35x35 maps
/// of 96+ channels -, 0.94, 0.78, 0.79, but inception_v3 then errs more than ONNX
/// Runtime on 3 of the 8 images and on the export's own (4.36e-6 against 4.11e-6);
/// as chosen here (192+ channels: inception_v4's Reduction-A 192 -> 224,
/// inception_resnet_v2's 256 -> 256, 1.5x and 1.1x faster) 0.83, 0.83, 0.74, 0.76.
///
/// F(2, 3) speed (`incept peak --winograd`, AVX-512, one thread): alone, the 17x17
/// 1x7/7x1 layers run 1.13x (128 input channels) to 1.23x (192) faster, 10
/// multiplies per output pair instead of 14 and a ninth pair for each 17-pixel
/// line, and the 8x8 1x3/3x1 layers 1.43x. Inside a model less: the weights are
/// 10/7 (4/3) the direct ones' and come from memory at every run. Whole models,
/// interleaved A/B against 192+ channels only: 128+ channels on 17x17 maps made
/// inception_v3 1.4% faster on one and on two threads and inception_resnet_v2 1.4%
/// and 1.9%. The 8x8 layers (each weight serves 32 output pairs) made
/// inception_resnet_v2 1.3% slower on one thread while the GEMMs waited on their
/// weights; since they prefetch the next position's while computing (see
/// `incept_kernels::winograd`), the 8x8 layers too: inception_v3 2.7% faster on one
/// thread and 2.6% on two, inception_v4 3.0% on one, inception_resnet_v2 the same on
/// one and 2.3% faster on two (outputs: 0.81, 0.81 and 0.82 of ONNX Runtime's error
/// over 16 images). Accuracy: the short
/// per-position sums keep the outputs as close to float64 (inception_v3 3.04e-6 ->
/// 3.09e-6, inception_v4 3.35e-6 -> 3.19e-6, inception_resnet_v2 0.72e-6 ->
/// 0.77e-6, against ONNX Runtime's 4.11e-6, 4.17e-6 and 1.09e-6).
///
/// F(2x2, 3x3) speed: measured on AVX-512 and AVX2 (`incept peak --winograd`), Winograd wins
/// 1.3-2x on every 3x3 stride-1 layer of the family with 16 or more input channels
/// and loses below that (3 or 8 input channels: the 16-lane blocks of the
/// transformed input are mostly padding) and on 1x1 and 2x2 maps (most of the 2x2
/// output tile is discarded).
///
/// Accuracy sets the channel bounds. The transforms sum products of about 7 times
/// the magnitude the direct sum adds up; on the stems' 32-channel layers (147x147
/// maps, the first features of the image) that error propagates through the whole
/// network. Mean over 8 random images (16 for inception_v3 and inception_v4) of the
/// max error against float64, as a fraction of ONNX Runtime's on the same images:
/// both stem layers by Winograd took inception_v3 to 1.07, inception_v4 to 0.90 and
/// inception_resnet_v2 to 0.84 (direct: 0.80, 0.76, 0.80); the first, Conv2d_2a
/// (32 -> 32), alone to 0.92, 0.81, 0.82 (errs more than ONNX Runtime on 2 images of
/// 8); the second, Conv2d_2b (32 -> 64, 3.4 -> 2.3 ms, 2.4% of inception_v3 on one
/// thread), alone to 0.81 (better than ONNX Runtime on 16 images of 16), 0.81 (13
/// of 16) and 0.80 (8 of 8). So a 32-channel layer on a larger map is computed by
/// Winograd only when it widens to 64+ channels. On the 32- and 48-channel layers
/// inside the modules (Inception-ResNet's 35x35 blocks, GoogLeNet's 3x3 branches)
/// it is the other way round: the short per-position sums round less than the
/// direct 288-term ones, and the outputs move closer (inception_resnet_v2 0.92e-6 -> 0.72e-6, googlenet 3.97e-6 -> 3.66e-6,
/// against ONNX Runtime's 1.09e-6 and 5.20e-6; inception_v3 3.04e-6 and inception_v4
/// 3.35e-6 unchanged). The rule depends on the graph only, never on the CPU, so a
/// model file's tensors are the same wherever it was written.
pub fn winograd_for(geom: &ConvGeometry, ci: usize, co: usize, out_hw: (usize, usize)) -> Option<Scheme> {
    let (oh, ow) = out_hw;
    match winograd_scheme(geom, ci)? {
        Scheme::F2x2 | Scheme::F4x4 => {
            let used = (ci >= 64 || (ci >= 32 && (co >= 64 || oh <= 35 && ow <= 35))) && oh >= 4 && ow >= 4;
            let four = ci >= 192 && (30..=35).contains(&oh) && (30..=35).contains(&ow);
            used.then_some(if four { Scheme::F4x4 } else { Scheme::F2x2 })
        }
        line @ Scheme::F2 { vertical, .. } => (ci >= 128 && (if vertical { oh } else { ow }) >= 8).then_some(line),
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
        // outputs along.
        let (along_w, along_h) =
            (Some(Scheme::F2 { vertical: false, taps: 7 }), Some(Scheme::F2 { vertical: true, taps: 7 }));
        assert_eq!(winograd_for(&line(1, 7, across_w), 128, 96, (17, 17)), along_w);
        assert_eq!(winograd_for(&line(7, 1, across_h), 224, 96, (17, 17)), along_h);
        assert_eq!(winograd_for(&line(1, 7, across_w), 112, 96, (17, 17)), None);
        let along_w3 = Some(Scheme::F2 { vertical: false, taps: 3 });
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
