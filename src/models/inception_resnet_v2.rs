//! Inception-ResNet v2 (Szegedy et al., "Inception-v4, Inception-ResNet and the
//! Impact of Residual Connections on Learning", 2016).
//!
//! Matches timm's `inception_resnet_v2` (`timm/models/inception_resnet_v2.py`,
//! `InceptionResnetV2`, Cadene's port of the TF-slim model) at inference, dropout
//! being the identity. Branch convolutions are bias-free `BasicConv2d`s (conv,
//! BatchNorm with eps 0.001, ReLU); each residual block ends in a plain 1x1
//! `conv2d` *with* bias and no BatchNorm, whose output is scaled (0.17 / 0.10 /
//! 0.20 for Block35 / Block17 / Block8) and added to the block input before the
//! ReLU; the last Block8 (`block8`) has scale 1.0 and no ReLU. The one pooling
//! branch (`mixed_5b`) uses `count_include_pad=False`. The classifier is `classif`.
//! 299x299 input, 55,843,464 parameters, 13.16 G multiply-adds.

use super::blocks::{avg_pool_3x3_s1, basic_conv, basic_conv_seq, conv_1xn, conv_nx1, max_pool_3x3_s2, residual};
use crate::error::Result;
use crate::graph::{ConvSpec, Dims, Graph, GraphBuilder, ValueId};

/// Block35 (the 35x35 blocks, `repeat.*`) residual scale.
const BLOCK35_SCALE: f32 = 0.17;
/// Block17 (the 17x17 blocks, `repeat_1.*`) residual scale.
const BLOCK17_SCALE: f32 = 0.10;
/// Block8 (the 8x8 blocks, `repeat_2.*`) residual scale.
const BLOCK8_SCALE: f32 = 0.20;

/// `Mixed_5b`, 35x35x192 -> 320: 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; avg pool -> 1x1.
fn mixed_5b(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(96, 1));
    let b1 = basic_conv_seq(b, x, &format!("{name}.branch1"), &[ConvSpec::new(48, 1), ConvSpec::new(64, 5).pad(2)]);
    let b2 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch2"),
        &[ConvSpec::new(64, 1), ConvSpec::new(96, 3).pad(1), ConvSpec::new(96, 3).pad(1)],
    );
    let b3 = avg_pool_3x3_s1(b, x, false);
    let b3 = basic_conv(b, b3, &format!("{name}.branch3.1"), ConvSpec::new(64, 1));
    b.concat(&[b0, b1, b2, b3])
}

/// The common tail of the residual blocks: concatenate the branches, project back
/// to the input's channels with the 1x1 `{name}.conv2d` (bias, no BatchNorm), then
/// `act(x + scale * y)`.
fn shortcut(b: &mut GraphBuilder, x: ValueId, name: &str, branches: &[ValueId], scale: f32, relu: bool) -> ValueId {
    let y = b.concat(branches);
    let c = b.dims(x).c;
    let y = b.conv(y, &format!("{name}.conv2d"), ConvSpec::new(c, 1).bias());
    residual(b, x, y, scale, relu)
}

/// `Block35` (Inception-ResNet-A, 35x35x320): 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3.
fn block35(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(32, 1));
    let b1 = basic_conv_seq(b, x, &format!("{name}.branch1"), &[ConvSpec::new(32, 1), ConvSpec::new(32, 3).pad(1)]);
    let b2 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch2"),
        &[ConvSpec::new(32, 1), ConvSpec::new(48, 3).pad(1), ConvSpec::new(64, 3).pad(1)],
    );
    shortcut(b, x, name, &[b0, b1, b2], BLOCK35_SCALE, true)
}

/// `Mixed_6a` (Reduction-A), 35x35 -> 17x17x1088: 3x3/2; 1x1 -> 3x3 -> 3x3/2; max pool.
fn mixed_6a(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(384, 3).stride(2));
    let b1 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch1"),
        &[ConvSpec::new(256, 1), ConvSpec::new(256, 3).pad(1), ConvSpec::new(384, 3).stride(2)],
    );
    let b2 = max_pool_3x3_s2(b, x);
    b.concat(&[b0, b1, b2])
}

/// `Block17` (Inception-ResNet-B, 17x17x1088): 1x1; 1x1 -> 1x7 -> 7x1.
fn block17(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(192, 1));
    let b1 =
        basic_conv_seq(b, x, &format!("{name}.branch1"), &[ConvSpec::new(128, 1), conv_1xn(160, 7), conv_nx1(192, 7)]);
    shortcut(b, x, name, &[b0, b1], BLOCK17_SCALE, true)
}

/// `Mixed_7a` (Reduction-B), 17x17 -> 8x8x2080: 1x1 -> 3x3/2; 1x1 -> 3x3/2;
/// 1x1 -> 3x3 -> 3x3/2; max pool.
fn mixed_7a(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 =
        basic_conv_seq(b, x, &format!("{name}.branch0"), &[ConvSpec::new(256, 1), ConvSpec::new(384, 3).stride(2)]);
    let b1 =
        basic_conv_seq(b, x, &format!("{name}.branch1"), &[ConvSpec::new(256, 1), ConvSpec::new(288, 3).stride(2)]);
    let b2 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch2"),
        &[ConvSpec::new(256, 1), ConvSpec::new(288, 3).pad(1), ConvSpec::new(320, 3).stride(2)],
    );
    let b3 = max_pool_3x3_s2(b, x);
    b.concat(&[b0, b1, b2, b3])
}

/// `Block8` (Inception-ResNet-C, 8x8x2080): 1x1; 1x1 -> 1x3 -> 3x1.
fn block8(b: &mut GraphBuilder, x: ValueId, name: &str, scale: f32, relu: bool) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(192, 1));
    let b1 =
        basic_conv_seq(b, x, &format!("{name}.branch1"), &[ConvSpec::new(192, 1), conv_1xn(224, 3), conv_nx1(256, 3)]);
    shortcut(b, x, name, &[b0, b1], scale, relu)
}

/// `n` blocks in an `nn.Sequential` called `name`: `{name}.0`, `{name}.1`, ...
fn repeat(
    b: &mut GraphBuilder,
    x: ValueId,
    name: &str,
    n: usize,
    block: impl Fn(&mut GraphBuilder, ValueId, &str) -> ValueId,
) -> ValueId {
    (0..n).fold(x, |x, i| block(b, x, &format!("{name}.{i}")))
}

/// Builds Inception-ResNet v2 for 299x299 images; the output is `[N, 1000]` logits.
pub fn inception_resnet_v2() -> Result<Graph> {
    let mut b = GraphBuilder::new("inception_resnet_v2", Dims::new(3, 299, 299));
    let x = b.input();
    // Stem (Inception v3's): 299x299x3 -> 35x35x192.
    let x = basic_conv(&mut b, x, "conv2d_1a", ConvSpec::new(32, 3).stride(2));
    let x = basic_conv(&mut b, x, "conv2d_2a", ConvSpec::new(32, 3));
    let x = basic_conv(&mut b, x, "conv2d_2b", ConvSpec::new(64, 3).pad(1));
    let x = max_pool_3x3_s2(&mut b, x);
    let x = basic_conv(&mut b, x, "conv2d_3b", ConvSpec::new(80, 1));
    let x = basic_conv(&mut b, x, "conv2d_4a", ConvSpec::new(192, 3));
    let x = max_pool_3x3_s2(&mut b, x);
    let x = mixed_5b(&mut b, x, "mixed_5b");
    let x = repeat(&mut b, x, "repeat", 10, block35);
    let x = mixed_6a(&mut b, x, "mixed_6a");
    let x = repeat(&mut b, x, "repeat_1", 20, block17);
    let x = mixed_7a(&mut b, x, "mixed_7a");
    let x = repeat(&mut b, x, "repeat_2", 9, |b, x, name| block8(b, x, name, BLOCK8_SCALE, true));
    let x = block8(&mut b, x, "block8", 1.0, false);
    let x = basic_conv(&mut b, x, "conv2d_7b", ConvSpec::new(1536, 1));
    let x = b.global_avg_pool(x);
    let x = b.linear(x, "classif", 1000, true);
    b.finish(x)
}

#[cfg(test)]
mod tests {
    use crate::graph::{Activation, Dims, Op};
    use crate::models::blocks::{input_dims, param_shape};

    #[test]
    fn matches_reference_counts() {
        let g = super::inception_resnet_v2().unwrap();
        assert_eq!(g.param_count(), 55_843_464);
        // 13.16 G multiply-adds.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 13.16);
        assert_eq!(g.dims(g.output), Dims::new(1000, 1, 1));
    }

    #[test]
    fn names_and_shapes_follow_timm() {
        let g = super::inception_resnet_v2().unwrap();
        assert_eq!(param_shape(&g, "conv2d_1a.conv.weight"), [32, 3, 3, 3]);
        assert_eq!(param_shape(&g, "mixed_5b.branch1.1.conv.weight"), [64, 48, 5, 5]);
        assert_eq!(param_shape(&g, "mixed_5b.branch3.1.bn.running_var"), [64]);
        assert_eq!(param_shape(&g, "repeat.0.branch0.conv.weight"), [32, 320, 1, 1]);
        assert_eq!(param_shape(&g, "repeat.9.conv2d.weight"), [320, 128, 1, 1]);
        assert_eq!(param_shape(&g, "repeat.9.conv2d.bias"), [320]);
        assert_eq!(param_shape(&g, "mixed_6a.branch1.2.conv.weight"), [384, 256, 3, 3]);
        assert_eq!(param_shape(&g, "repeat_1.19.branch1.1.conv.weight"), [160, 128, 1, 7]);
        assert_eq!(param_shape(&g, "repeat_1.19.conv2d.weight"), [1088, 384, 1, 1]);
        assert_eq!(param_shape(&g, "mixed_7a.branch2.2.conv.weight"), [320, 288, 3, 3]);
        assert_eq!(param_shape(&g, "repeat_2.8.branch1.2.conv.weight"), [256, 224, 3, 1]);
        assert_eq!(param_shape(&g, "block8.conv2d.weight"), [2080, 448, 1, 1]);
        assert_eq!(param_shape(&g, "conv2d_7b.conv.weight"), [1536, 2080, 1, 1]);
        assert_eq!(param_shape(&g, "classif.weight"), [1000, 1536]);
        assert_eq!(param_shape(&g, "classif.bias"), [1000]);
        assert!(g.param_by_name("repeat.10.conv2d.weight").is_none());
        assert!(g.param_by_name("repeat_2.9.conv2d.weight").is_none());
    }

    #[test]
    fn grid_sizes_and_shortcuts() {
        let g = super::inception_resnet_v2().unwrap();
        assert_eq!(input_dims(&g, "mixed_5b.branch0.conv"), Dims::new(192, 35, 35));
        assert_eq!(input_dims(&g, "repeat.0.branch0.conv"), Dims::new(320, 35, 35));
        assert_eq!(input_dims(&g, "repeat_1.0.branch0.conv"), Dims::new(1088, 17, 17));
        assert_eq!(input_dims(&g, "repeat_2.0.branch0.conv"), Dims::new(2080, 8, 8));
        assert_eq!(input_dims(&g, "conv2d_7b.conv"), Dims::new(2080, 8, 8));
        // 10 + 20 + 9 + 1 residual adds; only the last has no ReLU.
        let adds: Vec<_> = g
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::ResidualAdd { scale, act } => Some((scale, act)),
                _ => None,
            })
            .collect();
        assert_eq!(adds.len(), 40);
        assert!(adds[..10].iter().all(|&a| a == (0.17, Activation::Relu)));
        assert!(adds[10..30].iter().all(|&a| a == (0.10, Activation::Relu)));
        assert!(adds[30..39].iter().all(|&a| a == (0.20, Activation::Relu)));
        assert_eq!(adds[39], (1.0, Activation::None));
    }
}
