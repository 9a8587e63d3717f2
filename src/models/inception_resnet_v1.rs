//! Inception-ResNet v1 (Szegedy et al., "Inception-v4, Inception-ResNet and the
//! Impact of Residual Connections on Learning", 2016) as the FaceNet face encoder.
//!
//! Matches `InceptionResnetV1` of timesler/facenet-pytorch
//! (`models/inception_resnet_v1.py`, ported from David Sandberg's TF facenet, the
//! VGGFace2 / CASIA-WebFace checkpoints) with `classify=False`, at its usual
//! 160x160 face crops: `BasicConv2d` is conv (no bias), BatchNorm eps 0.001, ReLU;
//! stem 3x3/2, 3x3, 3x3, 3x3/2 max pool, 1x1, 3x3, 3x3/2 -> 256x17x17; 5x Block35
//! (scale 0.17), Mixed_6a -> 896x8x8, 10x Block17 (0.10), Mixed_7a -> 1792x3x3,
//! 5x Block8 (0.20), a final Block8 with scale 1.0 and no ReLU; each block's branch
//! concat goes through a biased 1x1 `conv2d`, is scaled and added to its input. Then
//! global average pool, dropout (identity at inference), `last_linear` (1792 -> 512,
//! no bias) and `last_bn` (BatchNorm1d, eps 0.001): the output is the 512-d
//! embedding. The reference then L2-normalises it (`F.normalize`); that step is
//! left to the caller. Names are the reference's state-dict keys
//! (`conv2d_1a.conv.weight`, `repeat_1.0.branch2.1.bn.bias`, `mixed_6a.branch0`,
//! `repeat_2.9.conv2d.bias`, `block8.conv2d.weight`, `last_bn.running_var`); the
//! classification head `logits.*` is training-only and ignored.
//!
//! 23,482,624 parameters, by hand: stem 615,552; Block35 77,440 (x5); Mixed_6a
//! 1,710,080; Block17 690,048 (x10); Mixed_7a 3,346,176; Block8 1,600,768 (x6);
//! `last_linear` + `last_bn` 918,528. 1.42 G MACs at 160x160.

use super::blocks::{TF_BN_EPS, basic_conv, basic_conv_seq, conv_1xn, conv_nx1, max_pool_3x3_s2, residual};
use crate::error::Result;
use crate::graph::{ConvSpec, Dims, Graph, GraphBuilder, ValueId};

/// Builds the facenet-pytorch Inception-ResNet v1 for 160x160 face crops; the
/// output is the `[N, 512]` embedding before L2 normalisation.
pub fn inception_resnet_v1() -> Result<Graph> {
    let mut b = GraphBuilder::new("inception_resnet_v1", Dims::new(3, 160, 160));
    b.ignore_params("logits.");
    let x = b.input();
    let x = basic_conv(&mut b, x, "conv2d_1a", ConvSpec::new(32, 3).stride(2));
    let x = basic_conv(&mut b, x, "conv2d_2a", ConvSpec::new(32, 3));
    let x = basic_conv(&mut b, x, "conv2d_2b", ConvSpec::new(64, 3).pad(1));
    let x = max_pool_3x3_s2(&mut b, x);
    let x = basic_conv(&mut b, x, "conv2d_3b", ConvSpec::new(80, 1));
    let x = basic_conv(&mut b, x, "conv2d_4a", ConvSpec::new(192, 3));
    let x = basic_conv(&mut b, x, "conv2d_4b", ConvSpec::new(256, 3).stride(2));
    let x = repeat(&mut b, x, "repeat_1", 5, &BLOCK35, 0.17);
    let x = reduction(&mut b, x, "mixed_6a", &MIXED_6A);
    let x = repeat(&mut b, x, "repeat_2", 10, &BLOCK17, 0.10);
    let x = reduction(&mut b, x, "mixed_7a", &MIXED_7A);
    let x = repeat(&mut b, x, "repeat_3", 5, &BLOCK8, 0.20);
    let x = block(&mut b, x, "block8", &BLOCK8, 1.0, false);
    let x = b.global_avg_pool(x);
    let x = b.linear(x, "last_linear", 512, false);
    let x = b.batch_norm(x, "last_bn", TF_BN_EPS);
    b.finish(x)
}

/// A branch: its convolutions in order (`BasicConv2d`s).
type Branch = &'static [ConvSpec];

/// An unpadded `k x k` convolution.
const fn conv(out_channels: usize, k: usize) -> ConvSpec {
    ConvSpec::new(out_channels, k)
}

/// A size-preserving `k x k` convolution.
const fn same(out_channels: usize, k: usize) -> ConvSpec {
    ConvSpec::new(out_channels, k).pad(k / 2)
}

/// A valid 3x3 stride-2 convolution.
const fn down(out_channels: usize) -> ConvSpec {
    ConvSpec::new(out_channels, 3).stride(2)
}

/// Block35 (Inception-ResNet-A, 256x17x17 at 160x160).
const BLOCK35: [Branch; 3] = [&[conv(32, 1)], &[conv(32, 1), same(32, 3)], &[conv(32, 1), same(32, 3), same(32, 3)]];
/// Block17 (Inception-ResNet-B, 896x8x8).
const BLOCK17: [Branch; 2] = [&[conv(128, 1)], &[conv(128, 1), conv_1xn(128, 7), conv_nx1(128, 7)]];
/// Block8 (Inception-ResNet-C, 1792x3x3).
const BLOCK8: [Branch; 2] = [&[conv(192, 1)], &[conv(192, 1), conv_1xn(192, 3), conv_nx1(192, 3)]];
/// Mixed_6a (Reduction-A) convolution branches, beside a 3x3/2 max pool.
const MIXED_6A: [Branch; 2] = [&[down(384)], &[conv(192, 1), same(192, 3), down(256)]];
/// Mixed_7a (Reduction-B) convolution branches, beside a 3x3/2 max pool.
const MIXED_7A: [Branch; 3] =
    [&[conv(256, 1), down(384)], &[conv(256, 1), down(256)], &[conv(256, 1), same(256, 3), down(256)]];

/// `{name}.branch{i}` for every branch; a branch of one convolution is a plain
/// `BasicConv2d`, a longer one an `nn.Sequential` (`{name}.branch{i}.{j}`).
fn branches(b: &mut GraphBuilder, x: ValueId, name: &str, table: &[Branch]) -> Vec<ValueId> {
    let mut out = Vec::with_capacity(table.len() + 1);
    for (i, specs) in table.iter().enumerate() {
        let branch = format!("{name}.branch{i}");
        out.push(match specs {
            [spec] => basic_conv(b, x, &branch, *spec),
            _ => basic_conv_seq(b, x, &branch, specs),
        });
    }
    out
}

/// A residual Inception block: the branches' concat through a biased 1x1 `conv2d`
/// back to the input width, `act(x + scale * that)`.
fn block(b: &mut GraphBuilder, x: ValueId, name: &str, specs: &[Branch], scale: f32, relu: bool) -> ValueId {
    let ys = branches(b, x, name, specs);
    let y = b.concat(&ys);
    let width = b.dims(x).c;
    let y = b.conv(y, &format!("{name}.conv2d"), ConvSpec::new(width, 1).bias());
    residual(b, x, y, scale, relu)
}

/// `count` blocks in an `nn.Sequential` called `name`.
fn repeat(b: &mut GraphBuilder, x: ValueId, name: &str, count: usize, specs: &[Branch], scale: f32) -> ValueId {
    (0..count).fold(x, |x, i| block(b, x, &format!("{name}.{i}"), specs, scale, true))
}

/// A grid reduction: the convolution branches and a 3x3/2 max pool, concatenated.
fn reduction(b: &mut GraphBuilder, x: ValueId, name: &str, specs: &[Branch]) -> ValueId {
    let mut ys = branches(b, x, name, specs);
    ys.push(max_pool_3x3_s2(b, x));
    b.concat(&ys)
}

#[cfg(test)]
mod tests {
    use crate::graph::{Dims, Op};
    use crate::models::blocks::{input_dims, param_shape};

    #[test]
    fn matches_reference_counts() {
        let g = super::inception_resnet_v1().unwrap();
        assert_eq!(g.param_count(), 23_482_624);
        // 1.42 G multiply-adds at 160x160.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 1.42);
        assert_eq!(g.dims(g.output), Dims::new(512, 1, 1));
        assert!(g.values[g.output.0].flat);
        assert_eq!(g.ignored_prefixes, ["logits."]);
    }

    #[test]
    fn names_shapes_and_sizes() {
        let g = super::inception_resnet_v1().unwrap();
        assert_eq!(param_shape(&g, "conv2d_1a.conv.weight"), [32, 3, 3, 3]);
        assert!(g.param_by_name("conv2d_1a.conv.bias").is_none());
        assert_eq!(param_shape(&g, "repeat_1.0.branch0.conv.weight"), [32, 256, 1, 1]);
        assert_eq!(param_shape(&g, "repeat_1.4.branch2.2.bn.running_var"), [32]);
        assert_eq!(param_shape(&g, "repeat_1.0.conv2d.weight"), [256, 96, 1, 1]);
        assert_eq!(param_shape(&g, "repeat_1.0.conv2d.bias"), [256]);
        assert_eq!(param_shape(&g, "mixed_6a.branch0.conv.weight"), [384, 256, 3, 3]);
        assert_eq!(param_shape(&g, "mixed_6a.branch1.2.conv.weight"), [256, 192, 3, 3]);
        assert_eq!(param_shape(&g, "repeat_2.9.branch1.1.conv.weight"), [128, 128, 1, 7]);
        assert_eq!(param_shape(&g, "repeat_2.9.branch1.2.conv.weight"), [128, 128, 7, 1]);
        assert_eq!(param_shape(&g, "mixed_7a.branch2.2.conv.weight"), [256, 256, 3, 3]);
        assert_eq!(param_shape(&g, "repeat_3.4.branch1.1.conv.weight"), [192, 192, 1, 3]);
        assert_eq!(param_shape(&g, "block8.conv2d.weight"), [1792, 384, 1, 1]);
        assert_eq!(param_shape(&g, "last_linear.weight"), [512, 1792]);
        assert!(g.param_by_name("last_linear.bias").is_none());
        assert_eq!(param_shape(&g, "last_bn.running_mean"), [512]);
        // Grid sizes at 160x160: 256x17x17, 896x8x8, 1792x3x3.
        assert_eq!(input_dims(&g, "repeat_1.0.branch0.conv"), Dims::new(256, 17, 17));
        assert_eq!(input_dims(&g, "repeat_2.0.branch0.conv"), Dims::new(896, 8, 8));
        assert_eq!(input_dims(&g, "repeat_3.0.branch0.conv"), Dims::new(1792, 3, 3));
        assert_eq!(input_dims(&g, "last_linear"), Dims::new(1792, 1, 1));
        // 21 residual blocks, the last unscaled and without ReLU.
        let adds: Vec<_> = g
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::ResidualAdd { scale, act } => Some((scale, act)),
                _ => None,
            })
            .collect();
        assert_eq!(adds.len(), 21);
        assert_eq!(adds[0], (0.17, crate::graph::Activation::Relu));
        assert_eq!(adds[5], (0.10, crate::graph::Activation::Relu));
        assert_eq!(adds[19], (0.20, crate::graph::Activation::Relu));
        assert_eq!(adds[20], (1.0, crate::graph::Activation::None));
    }
}
