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
