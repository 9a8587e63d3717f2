//! Building blocks shared by several networks.

use crate::graph::{Activation, ConvSpec, GraphBuilder, ValueId};

/// BatchNorm epsilon of the TF-derived models (torchvision Inception v3, timm v4 and
/// Inception-ResNet v2, torchvision GoogLeNet).
pub const TF_BN_EPS: f32 = 0.001;

/// torchvision's `BasicConv2d` / timm's `ConvNormAct`: convolution without bias,
/// BatchNorm, ReLU; parameters `{name}.conv.weight` and `{name}.bn.*`.
pub fn conv_bn_relu(b: &mut GraphBuilder, x: ValueId, name: &str, spec: ConvSpec, eps: f32) -> ValueId {
    let y = b.conv(x, &format!("{name}.conv"), spec);
    let y = b.batch_norm(y, &format!("{name}.bn"), eps);
    b.relu(y)
}

/// Convolution with bias followed by ReLU (Caffe-style models without BatchNorm).
pub fn conv_relu(b: &mut GraphBuilder, x: ValueId, name: &str, spec: ConvSpec) -> ValueId {
    let y = b.conv(x, name, spec.bias());
    b.relu(y)
}

/// `act(x + scale * y)`, Inception-ResNet's shortcut.
pub fn residual(b: &mut GraphBuilder, x: ValueId, y: ValueId, scale: f32, relu: bool) -> ValueId {
    b.residual_add(x, y, scale, if relu { Activation::Relu } else { Activation::None })
}

// ---------------------------------------------------------------------------
// Inception v3 (torchvision), Inception v4 and Inception-ResNet v2 (timm): the
// TF-derived models, whose every BatchNorm uses `TF_BN_EPS`.
// ---------------------------------------------------------------------------

/// The `BasicConv2d` / `ConvNormAct` of the TF-derived models: [`conv_bn_relu`]
/// with BatchNorm epsilon [`TF_BN_EPS`].
pub fn basic_conv(b: &mut GraphBuilder, x: ValueId, name: &str, spec: ConvSpec) -> ValueId {
    conv_bn_relu(b, x, name, spec, TF_BN_EPS)
}

/// timm's `nn.Sequential` of [`basic_conv`]s: layer `i` is named `{name}.{i}`.
pub fn basic_conv_seq(b: &mut GraphBuilder, x: ValueId, name: &str, specs: &[ConvSpec]) -> ValueId {
    specs.iter().enumerate().fold(x, |x, (i, &spec)| basic_conv(b, x, &format!("{name}.{i}"), spec))
}

/// A `1 x n` convolution padded to keep the width (`n` odd).
pub const fn conv_1xn(out_channels: usize, n: usize) -> ConvSpec {
    ConvSpec::rect(out_channels, 1, n).pad_hw(0, n / 2)
}

/// An `n x 1` convolution padded to keep the height (`n` odd).
pub const fn conv_nx1(out_channels: usize, n: usize) -> ConvSpec {
    ConvSpec::rect(out_channels, n, 1).pad_hw(n / 2, 0)
}

/// The 8x8 modules' split: a `1 x 3` ([`basic_conv`] `{prefix}a`) and a `3 x 1`
/// (`{prefix}b`) side by side over `x`, `out_channels` each, concatenated in that order.
pub fn split_1x3_3x1(b: &mut GraphBuilder, x: ValueId, prefix: &str, out_channels: usize) -> ValueId {
    let a = basic_conv(b, x, &format!("{prefix}a"), conv_1xn(out_channels, 3));
    let c = basic_conv(b, x, &format!("{prefix}b"), conv_nx1(out_channels, 3));
    b.concat(&[a, c])
}

/// The unpadded 3x3 stride-2 max pool (floor mode) of the stems and grid reductions.
pub fn max_pool_3x3_s2(b: &mut GraphBuilder, x: ValueId) -> ValueId {
    b.max_pool(x, crate::graph::PoolGeometry::new(3, 2, 0, false))
}

/// The size-preserving 3x3 stride-1 average pool (padding 1) of the pooling
/// branches. `count_include_pad`: torchvision divides by 9 everywhere, timm by the
/// number of pixels inside the image.
pub fn avg_pool_3x3_s1(b: &mut GraphBuilder, x: ValueId, count_include_pad: bool) -> ValueId {
    b.avg_pool(x, crate::graph::PoolGeometry::new(3, 1, 1, false), count_include_pad)
}

/// Test helper: the shape of the first input of the node called `node`.
#[cfg(test)]
pub fn input_dims(g: &crate::graph::Graph, node: &str) -> crate::graph::Dims {
    let n = g.nodes.iter().find(|n| n.name == node).unwrap_or_else(|| panic!("no node {node}"));
    g.dims(n.inputs[0])
}

/// Test helper: the shape of the parameter called `name`.
#[cfg(test)]
pub fn param_shape(g: &crate::graph::Graph, name: &str) -> Vec<usize> {
    let p = g.param_by_name(name).unwrap_or_else(|| panic!("no parameter {name}"));
    g.params[p.0].shape.clone()
}
