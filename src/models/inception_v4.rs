//! Inception v4 (Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of
//! Residual Connections on Learning", 2016).
//!
//! Matches timm's `inception_v4` (`timm/models/inception_v4.py`, `InceptionV4`,
//! itself Cadene's port of the TF-slim model) at inference, dropout being the
//! identity. Every convolution is a bias-free `ConvNormAct` (conv, BatchNorm with
//! eps 0.001, ReLU), held in one `features` Sequential, so parameters are named
//! `features.{index}.{branch}...`; the classifier is `last_linear`. The pooling
//! branches use `count_include_pad=False` (TF's divisor: pixels inside the image).
//! 299x299 input, 42,679,816 parameters, 12.25 G multiply-adds.

use super::blocks::{avg_pool_3x3_s1, basic_conv, basic_conv_seq, conv_1xn, conv_nx1, max_pool_3x3_s2, split_1x3_3x1};
use crate::error::Result;
use crate::graph::{ConvSpec, Dims, Graph, GraphBuilder, ValueId};

/// timm averages over the pixels inside the image only, as TF does.
const COUNT_INCLUDE_PAD: bool = false;

/// The pooling branch `{name}.branch3`: 3x3 average pool, then the 1x1 at index 1.
fn pool_branch(b: &mut GraphBuilder, x: ValueId, name: &str, out_channels: usize) -> ValueId {
    let p = avg_pool_3x3_s1(b, x, COUNT_INCLUDE_PAD);
    basic_conv(b, p, &format!("{name}.branch3.1"), ConvSpec::new(out_channels, 1))
}

/// `Mixed3a` (stem): max pool beside a 3x3/2 conv, 147x147x64 -> 73x73x160.
fn mixed_3a(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let p = max_pool_3x3_s2(b, x);
    let c = basic_conv(b, x, &format!("{name}.conv"), ConvSpec::new(96, 3).stride(2));
    b.concat(&[p, c])
}

/// `Mixed4a` (stem): 1x1 -> 3x3 beside 1x1 -> 1x7 -> 7x1 -> 3x3, 73x73 -> 71x71x192.
fn mixed_4a(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv_seq(b, x, &format!("{name}.branch0"), &[ConvSpec::new(64, 1), ConvSpec::new(96, 3)]);
    let b1 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch1"),
        &[ConvSpec::new(64, 1), conv_1xn(64, 7), conv_nx1(64, 7), ConvSpec::new(96, 3)],
    );
    b.concat(&[b0, b1])
}

/// `Mixed5a` (stem): a 3x3/2 conv beside max pool (conv first), 71x71 -> 35x35x384.
fn mixed_5a(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let c = basic_conv(b, x, &format!("{name}.conv"), ConvSpec::new(192, 3).stride(2));
    let p = max_pool_3x3_s2(b, x);
    b.concat(&[c, p])
}

/// `InceptionA` (35x35x384): 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; pool -> 1x1.
fn inception_a(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(96, 1));
    let b1 = basic_conv_seq(b, x, &format!("{name}.branch1"), &[ConvSpec::new(64, 1), ConvSpec::new(96, 3).pad(1)]);
    let b2 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch2"),
        &[ConvSpec::new(64, 1), ConvSpec::new(96, 3).pad(1), ConvSpec::new(96, 3).pad(1)],
    );
    let b3 = pool_branch(b, x, name, 96);
    b.concat(&[b0, b1, b2, b3])
}

/// `ReductionA` (Mixed6a), 35x35 -> 17x17x1024: 3x3/2; 1x1 -> 3x3 -> 3x3/2; max pool.
fn reduction_a(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(384, 3).stride(2));
    let b1 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch1"),
        &[ConvSpec::new(192, 1), ConvSpec::new(224, 3).pad(1), ConvSpec::new(256, 3).stride(2)],
    );
    let b2 = max_pool_3x3_s2(b, x);
    b.concat(&[b0, b1, b2])
}

/// `InceptionB` (17x17x1024): 7x7s factorised into 1x7 and 7x1.
fn inception_b(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(384, 1));
    let b1 =
        basic_conv_seq(b, x, &format!("{name}.branch1"), &[ConvSpec::new(192, 1), conv_1xn(224, 7), conv_nx1(256, 7)]);
    let b2 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch2"),
        &[ConvSpec::new(192, 1), conv_nx1(192, 7), conv_1xn(224, 7), conv_nx1(224, 7), conv_1xn(256, 7)],
    );
    let b3 = pool_branch(b, x, name, 128);
    b.concat(&[b0, b1, b2, b3])
}

/// `ReductionB` (Mixed7a), 17x17 -> 8x8x1536: 1x1 -> 3x3/2; 1x1 -> 1x7 -> 7x1 -> 3x3/2;
/// max pool.
fn reduction_b(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 =
        basic_conv_seq(b, x, &format!("{name}.branch0"), &[ConvSpec::new(192, 1), ConvSpec::new(192, 3).stride(2)]);
    let b1 = basic_conv_seq(
        b,
        x,
        &format!("{name}.branch1"),
        &[ConvSpec::new(256, 1), conv_1xn(256, 7), conv_nx1(320, 7), ConvSpec::new(320, 3).stride(2)],
    );
    let b2 = max_pool_3x3_s2(b, x);
    b.concat(&[b0, b1, b2])
}

/// `InceptionC` (8x8x1536): 3x3s split into 1x3 and 3x1 side by side (nested concats).
/// Its layers are direct attributes (`branch1_0`, `branch2_3a`, ...), not Sequentials.
fn inception_c(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b0 = basic_conv(b, x, &format!("{name}.branch0"), ConvSpec::new(256, 1));
    let b1 = basic_conv(b, x, &format!("{name}.branch1_0"), ConvSpec::new(384, 1));
    let b1 = split_1x3_3x1(b, b1, &format!("{name}.branch1_1"), 256);
    let b2 = basic_conv(b, x, &format!("{name}.branch2_0"), ConvSpec::new(384, 1));
    let b2 = basic_conv(b, b2, &format!("{name}.branch2_1"), conv_nx1(448, 3));
    let b2 = basic_conv(b, b2, &format!("{name}.branch2_2"), conv_1xn(512, 3));
    let b2 = split_1x3_3x1(b, b2, &format!("{name}.branch2_3"), 256);
    let b3 = pool_branch(b, x, name, 256);
    b.concat(&[b0, b1, b2, b3])
}

/// Builds Inception v4 for 299x299 images; the output is `[N, 1000]` logits.
pub fn inception_v4() -> Result<Graph> {
    type Block = fn(&mut GraphBuilder, ValueId, &str) -> ValueId;
    let mut b = GraphBuilder::new("inception_v4", Dims::new(3, 299, 299));
    let x = b.input();
    // features.0-2: 299x299x3 -> 147x147x64.
    let x = basic_conv(&mut b, x, "features.0", ConvSpec::new(32, 3).stride(2));
    let x = basic_conv(&mut b, x, "features.1", ConvSpec::new(32, 3));
    let x = basic_conv(&mut b, x, "features.2", ConvSpec::new(64, 3).pad(1));
    // features.3 onwards, in order.
    let mut blocks: Vec<Block> = vec![mixed_3a, mixed_4a, mixed_5a];
    blocks.extend([inception_a as Block; 4]);
    blocks.push(reduction_a);
    blocks.extend([inception_b as Block; 7]);
    blocks.push(reduction_b);
    blocks.extend([inception_c as Block; 3]);
    let x = blocks.iter().enumerate().fold(x, |x, (i, block)| block(&mut b, x, &format!("features.{}", i + 3)));
    let x = b.global_avg_pool(x);
    let x = b.linear(x, "last_linear", 1000, true);
    b.finish(x)
}

#[cfg(test)]
mod tests {
    use crate::graph::Dims;
    use crate::models::blocks::{input_dims, param_shape};

    #[test]
    fn matches_reference_counts() {
        let g = super::inception_v4().unwrap();
        assert_eq!(g.param_count(), 42_679_816);
        // 12.25 G multiply-adds.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 12.25);
        assert_eq!(g.dims(g.output), Dims::new(1000, 1, 1));
    }

    #[test]
    fn names_and_shapes_follow_timm() {
        let g = super::inception_v4().unwrap();
        assert_eq!(param_shape(&g, "features.0.conv.weight"), [32, 3, 3, 3]);
        assert_eq!(param_shape(&g, "features.3.conv.conv.weight"), [96, 64, 3, 3]);
        assert_eq!(param_shape(&g, "features.4.branch1.1.conv.weight"), [64, 64, 1, 7]);
        assert_eq!(param_shape(&g, "features.5.conv.bn.running_mean"), [192]);
        assert_eq!(param_shape(&g, "features.9.branch3.1.conv.weight"), [96, 384, 1, 1]);
        assert_eq!(param_shape(&g, "features.10.branch1.2.conv.weight"), [256, 224, 3, 3]);
        assert_eq!(param_shape(&g, "features.17.branch2.4.conv.weight"), [256, 224, 1, 7]);
        assert_eq!(param_shape(&g, "features.18.branch1.3.conv.weight"), [320, 320, 3, 3]);
        assert_eq!(param_shape(&g, "features.21.branch2_1.conv.weight"), [448, 384, 3, 1]);
        assert_eq!(param_shape(&g, "features.21.branch2_3b.bn.weight"), [256]);
        assert_eq!(param_shape(&g, "last_linear.weight"), [1000, 1536]);
        assert_eq!(param_shape(&g, "last_linear.bias"), [1000]);
        assert!(g.param_by_name("features.22.branch0.conv.weight").is_none());
    }

    #[test]
    fn grid_sizes() {
        let g = super::inception_v4().unwrap();
        assert_eq!(input_dims(&g, "features.4.branch0.0.conv"), Dims::new(160, 73, 73));
        assert_eq!(input_dims(&g, "features.5.conv.conv"), Dims::new(192, 71, 71));
        assert_eq!(input_dims(&g, "features.6.branch0.conv"), Dims::new(384, 35, 35));
        assert_eq!(input_dims(&g, "features.11.branch0.conv"), Dims::new(1024, 17, 17));
        assert_eq!(input_dims(&g, "features.19.branch0.conv"), Dims::new(1536, 8, 8));
        assert_eq!(input_dims(&g, "last_linear"), Dims::new(1536, 1, 1));
    }
}
