//! Inception v3 (Szegedy et al., "Rethinking the Inception Architecture", 2015).
//!
//! Matches torchvision's `inception_v3` (`torchvision/models/inception.py`,
//! `Inception3`) with `transform_input=False`, at inference: the `AuxLogits` head
//! is dropped (its parameters are ignored when loading) and dropout is the
//! identity. Every convolution is a bias-free `BasicConv2d` (conv, BatchNorm with
//! eps 0.001, ReLU); the pooling branches use `F.avg_pool2d`'s default
//! `count_include_pad=True` (divide by 9 at the border too). 299x299 input,
//! 23,834,568 parameters, 5.71 G multiply-adds.

use super::blocks::{avg_pool_3x3_s1, basic_conv, conv_1xn, conv_nx1, max_pool_3x3_s2, split_1x3_3x1};
use crate::error::Result;
use crate::graph::{ConvSpec, Dims, Graph, GraphBuilder, ValueId};

/// torchvision averages over the whole 3x3 window, padding included.
const COUNT_INCLUDE_PAD: bool = true;

/// A chain of [`basic_conv`]s named the torchvision way: `{name}_1`, `{name}_2`, ...
fn chain(b: &mut GraphBuilder, x: ValueId, name: &str, specs: &[ConvSpec]) -> ValueId {
    specs.iter().enumerate().fold(x, |x, (i, &spec)| basic_conv(b, x, &format!("{name}_{}", i + 1), spec))
}

/// The pooling branch: 3x3 average pool, then a 1x1 `{name}.branch_pool`.
fn pool_branch(b: &mut GraphBuilder, x: ValueId, name: &str, out_channels: usize) -> ValueId {
    let p = avg_pool_3x3_s1(b, x, COUNT_INCLUDE_PAD);
    basic_conv(b, p, &format!("{name}.branch_pool"), ConvSpec::new(out_channels, 1))
}

/// `InceptionA` (35x35): 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; pool -> 1x1.
/// 224 + `pool_features` channels.
fn inception_a(b: &mut GraphBuilder, x: ValueId, name: &str, pool_features: usize) -> ValueId {
    let b1 = basic_conv(b, x, &format!("{name}.branch1x1"), ConvSpec::new(64, 1));
    let b5 = chain(b, x, &format!("{name}.branch5x5"), &[ConvSpec::new(48, 1), ConvSpec::new(64, 5).pad(2)]);
    let b3 = chain(
        b,
        x,
        &format!("{name}.branch3x3dbl"),
        &[ConvSpec::new(64, 1), ConvSpec::new(96, 3).pad(1), ConvSpec::new(96, 3).pad(1)],
    );
    let bp = pool_branch(b, x, name, pool_features);
    b.concat(&[b1, b5, b3, bp])
}

/// `InceptionB`, the 35x35 -> 17x17 reduction: 3x3/2; 1x1 -> 3x3 -> 3x3/2; max pool.
fn inception_b(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b3 = basic_conv(b, x, &format!("{name}.branch3x3"), ConvSpec::new(384, 3).stride(2));
    let bd = chain(
        b,
        x,
        &format!("{name}.branch3x3dbl"),
        &[ConvSpec::new(64, 1), ConvSpec::new(96, 3).pad(1), ConvSpec::new(96, 3).stride(2)],
    );
    let bp = max_pool_3x3_s2(b, x);
    b.concat(&[b3, bd, bp])
}

/// `InceptionC` (17x17, 768 channels): 7x7 factorised into 1x7 and 7x1 with
/// `c7` channels inside the branches.
fn inception_c(b: &mut GraphBuilder, x: ValueId, name: &str, c7: usize) -> ValueId {
    let b1 = basic_conv(b, x, &format!("{name}.branch1x1"), ConvSpec::new(192, 1));
    let b7 = chain(b, x, &format!("{name}.branch7x7"), &[ConvSpec::new(c7, 1), conv_1xn(c7, 7), conv_nx1(192, 7)]);
    let bd = chain(
        b,
        x,
        &format!("{name}.branch7x7dbl"),
        &[ConvSpec::new(c7, 1), conv_nx1(c7, 7), conv_1xn(c7, 7), conv_nx1(c7, 7), conv_1xn(192, 7)],
    );
    let bp = pool_branch(b, x, name, 192);
    b.concat(&[b1, b7, bd, bp])
}

/// `InceptionD`, the 17x17 -> 8x8 reduction: 1x1 -> 3x3/2; 1x1 -> 1x7 -> 7x1 -> 3x3/2;
/// max pool.
fn inception_d(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b3 = chain(b, x, &format!("{name}.branch3x3"), &[ConvSpec::new(192, 1), ConvSpec::new(320, 3).stride(2)]);
    let b7 = chain(
        b,
        x,
        &format!("{name}.branch7x7x3"),
        &[ConvSpec::new(192, 1), conv_1xn(192, 7), conv_nx1(192, 7), ConvSpec::new(192, 3).stride(2)],
    );
    let bp = max_pool_3x3_s2(b, x);
    b.concat(&[b3, b7, bp])
}

/// `InceptionE` (8x8, 2048 channels): the 3x3s are split into 1x3 and 3x1 side by
/// side (nested concats).
fn inception_e(b: &mut GraphBuilder, x: ValueId, name: &str) -> ValueId {
    let b1 = basic_conv(b, x, &format!("{name}.branch1x1"), ConvSpec::new(320, 1));
    let b3 = basic_conv(b, x, &format!("{name}.branch3x3_1"), ConvSpec::new(384, 1));
    let b3 = split_1x3_3x1(b, b3, &format!("{name}.branch3x3_2"), 384);
    let bd = chain(b, x, &format!("{name}.branch3x3dbl"), &[ConvSpec::new(448, 1), ConvSpec::new(384, 3).pad(1)]);
    let bd = split_1x3_3x1(b, bd, &format!("{name}.branch3x3dbl_3"), 384);
    let bp = pool_branch(b, x, name, 192);
    b.concat(&[b1, b3, bd, bp])
}

/// Builds Inception v3 for 299x299 images; the output is `[N, 1000]` logits.
pub fn inception_v3() -> Result<Graph> {
    let mut b = GraphBuilder::new("inception_v3", Dims::new(3, 299, 299));
    b.ignore_params("AuxLogits.");
    let x = b.input();
    // Stem: 299x299x3 -> 35x35x192.
    let x = basic_conv(&mut b, x, "Conv2d_1a_3x3", ConvSpec::new(32, 3).stride(2));
    let x = basic_conv(&mut b, x, "Conv2d_2a_3x3", ConvSpec::new(32, 3));
    let x = basic_conv(&mut b, x, "Conv2d_2b_3x3", ConvSpec::new(64, 3).pad(1));
    let x = max_pool_3x3_s2(&mut b, x);
    let x = basic_conv(&mut b, x, "Conv2d_3b_1x1", ConvSpec::new(80, 1));
    let x = basic_conv(&mut b, x, "Conv2d_4a_3x3", ConvSpec::new(192, 3));
    let x = max_pool_3x3_s2(&mut b, x);
    // 35x35: 256, 288, 288 channels.
    let x = inception_a(&mut b, x, "Mixed_5b", 32);
    let x = inception_a(&mut b, x, "Mixed_5c", 64);
    let x = inception_a(&mut b, x, "Mixed_5d", 64);
    // 17x17x768.
    let x = inception_b(&mut b, x, "Mixed_6a");
    let x = inception_c(&mut b, x, "Mixed_6b", 128);
    let x = inception_c(&mut b, x, "Mixed_6c", 160);
    let x = inception_c(&mut b, x, "Mixed_6d", 160);
    let x = inception_c(&mut b, x, "Mixed_6e", 192);
    // 8x8: 1280, then 2048 channels.
    let x = inception_d(&mut b, x, "Mixed_7a");
    let x = inception_e(&mut b, x, "Mixed_7b");
    let x = inception_e(&mut b, x, "Mixed_7c");
    let x = b.global_avg_pool(x);
    let x = b.linear(x, "fc", 1000, true);
    b.finish(x)
}

#[cfg(test)]
mod tests {
    use crate::graph::Dims;
    use crate::models::blocks::{input_dims, param_shape};

    #[test]
    fn matches_reference_counts() {
        let g = super::inception_v3().unwrap();
        assert_eq!(g.param_count(), 23_834_568);
        // 5.71 G multiply-adds.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 5.71);
        assert_eq!(g.dims(g.output), Dims::new(1000, 1, 1));
        assert_eq!(g.ignored_prefixes, ["AuxLogits."]);
    }

    #[test]
    fn names_and_shapes_follow_torchvision() {
        let g = super::inception_v3().unwrap();
        assert_eq!(param_shape(&g, "Conv2d_1a_3x3.conv.weight"), [32, 3, 3, 3]);
        assert_eq!(param_shape(&g, "Mixed_5b.branch_pool.conv.weight"), [32, 192, 1, 1]);
        assert_eq!(param_shape(&g, "Mixed_6b.branch7x7_2.conv.weight"), [128, 128, 1, 7]);
        assert_eq!(param_shape(&g, "Mixed_6b.branch7x7_2.bn.running_var"), [128]);
        assert_eq!(param_shape(&g, "Mixed_6e.branch7x7dbl_2.conv.weight"), [192, 192, 7, 1]);
        assert_eq!(param_shape(&g, "Mixed_7b.branch3x3_2b.conv.weight"), [384, 384, 3, 1]);
        assert_eq!(param_shape(&g, "Mixed_7c.branch3x3dbl_3a.conv.weight"), [384, 384, 1, 3]);
        assert_eq!(param_shape(&g, "fc.weight"), [1000, 2048]);
        assert_eq!(param_shape(&g, "fc.bias"), [1000]);
        assert!(g.param_by_name("Conv2d_1a_3x3.conv.bias").is_none());
        assert!(g.params.iter().all(|p| !p.name.starts_with("AuxLogits")));
    }

    #[test]
    fn grid_sizes() {
        let g = super::inception_v3().unwrap();
        assert_eq!(input_dims(&g, "Mixed_5b.branch1x1.conv"), Dims::new(192, 35, 35));
        assert_eq!(input_dims(&g, "Mixed_5c.branch1x1.conv"), Dims::new(256, 35, 35));
        assert_eq!(input_dims(&g, "Mixed_6a.branch3x3.conv"), Dims::new(288, 35, 35));
        assert_eq!(input_dims(&g, "Mixed_6b.branch1x1.conv"), Dims::new(768, 17, 17));
        assert_eq!(input_dims(&g, "Mixed_7b.branch1x1.conv"), Dims::new(1280, 8, 8));
        assert_eq!(input_dims(&g, "Mixed_7c.branch1x1.conv"), Dims::new(2048, 8, 8));
        assert_eq!(input_dims(&g, "fc"), Dims::new(2048, 1, 1));
    }
}
