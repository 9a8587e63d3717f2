//! GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions",
//! 2014), in its two common forms. Both are built by one `googlenet_variant` function
//! around one `inception` module function; `Variant` holds every difference.
//!
//! **`googlenet`** matches torchvision's `googlenet(aux_logits=False,
//! transform_input=False)` (`torchvision/models/googlenet.py`, the model ported from
//! TensorFlow): every convolution is `BasicConv2d` (no bias, BatchNorm eps 0.001,
//! ReLU), there is no LRN, the "5x5" branch is a 3x3 (a known torchvision quirk,
//! pytorch/vision#906), max pools use ceil mode (the fourth one is 2x2/2), and the
//! head is adaptive average pool, dropout, `fc`. Names are torchvision's state-dict
//! keys (`conv1.conv.weight`, `inception3a.branch2.1.bn.running_var`, `fc.bias`);
//! the auxiliary heads `aux1.*`, `aux2.*` are ignored. 6,624,904 parameters,
//! 1.50 G MACs at 224x224.
//!
//! **`googlenet_caffe`** is the paper's network as in Caffe's
//! `models/bvlc_googlenet/deploy.prototxt` (BVLC/caffe): convolutions with bias and
//! ReLU, no BatchNorm, LRN (size 5, alpha 1e-4, beta 0.75, k 1) after `pool1` and
//! after `conv2/3x3`, a true 5x5 (pad 2) branch, 3x3/2 max pools (Caffe pooling
//! always rounds up, so ceil mode), a 7x7/1 average pool, dropout 0.4, and the
//! `loss3/classifier` FC 1000. 1.58 G MACs at 224x224.
//!
//! Names: Caffe layer names with `/` replaced by `_` (what MMdnn-style Caffe ->
//! PyTorch converters emit, and the scheme of Cadene's Caffe-converted
//! `bninception`), plus the PyTorch suffix: `conv1/7x7_s2` -> `conv1_7x7_s2.weight`
//! and `.bias`, `inception_3a/5x5_reduce` -> `inception_3a_5x5_reduce.weight`,
//! `loss3/classifier` -> `loss3_classifier.weight`. The training-only auxiliary
//! heads (`loss1/*`, `loss2/*`) are ignored as `loss1_`, `loss2_`.
//!
//! Parameter count of `googlenet_caffe`, by hand (conv: `out * (in * k * k + 1)`;
//! module `(in; 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj)`):
//!
//! | layer | params |
//! |---|---|
//! | conv1/7x7_s2 64x3x7x7, conv2/3x3_reduce 64x64, conv2/3x3 192x64x3x3 | 9,472 + 4,160 + 110,784 = 124,416 |
//! | 3a (192; 64, 96, 128, 16, 32, 32) | 163,696 |
//! | 3b (256; 128, 128, 192, 32, 96, 64) | 388,736 |
//! | 4a (480; 192, 96, 208, 16, 48, 64) | 376,176 |
//! | 4b (512; 160, 112, 224, 24, 64, 64) | 449,160 |
//! | 4c (512; 128, 128, 256, 24, 64, 64) | 510,104 |
//! | 4d (512; 112, 144, 288, 32, 64, 64) | 605,376 |
//! | 4e (528; 256, 160, 320, 32, 128, 128) | 868,352 |
//! | 5a (832; 256, 160, 320, 32, 128, 128) | 1,043,456 |
//! | 5b (832; 384, 192, 384, 48, 128, 128) | 1,444,080 |
//! | loss3/classifier 1000x1024 + 1000 | 1,025,000 |
//! | **total** | **6,998,552** |
//!
//! That is the figure quoted for bvlc_googlenet without its auxiliary heads. The
//! torchvision model has 373,648 fewer: no conv biases and 3x3 instead of 5x5
//! kernels in the third branch outweigh the BatchNorm scales and shifts it adds.

use super::blocks::{TF_BN_EPS, conv_bn_relu, conv_relu};
use crate::error::Result;
use crate::graph::{ConvSpec, Dims, Graph, GraphBuilder, PoolGeometry, ValueId};

/// Builds torchvision's GoogLeNet for 224x224 images; the output is `[N, 1000]` logits.
pub fn googlenet() -> Result<Graph> {
    googlenet_variant(Variant::Torchvision)
}

/// Builds the paper's GoogLeNet as in Caffe's bvlc_googlenet for 224x224 images;
/// the output is `[N, 1000]` logits.
pub fn googlenet_caffe() -> Result<Graph> {
    googlenet_variant(Variant::Caffe)
}

/// Which GoogLeNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// torchvision: BatchNorm after every convolution, no LRN, 3x3 "5x5" branch.
    Torchvision,
    /// Caffe bvlc_googlenet: biased convolutions, LRN in the stem, true 5x5 branch.
    Caffe,
}

/// The widths of one Inception module, in the order of the paper's Table 1.
struct Module {
    /// `3a`, `4e`, ...
    id: &'static str,
    /// `#1x1`.
    c1: usize,
    /// `#3x3 reduce`, `#3x3`.
    r3: usize,
    c3: usize,
    /// `#5x5 reduce`, `#5x5`.
    r5: usize,
    c5: usize,
    /// `pool proj`.
    pool_proj: usize,
}

const fn module(id: &'static str, c1: usize, r3: usize, c3: usize, r5: usize, c5: usize, pool_proj: usize) -> Module {
    Module { id, c1, r3, c3, r5, c5, pool_proj }
}

/// Table 1 of the paper (both variants share it), one array per grid size:
/// 28x28, 14x14, 7x7.
const STAGE3: [Module; 2] = [module("3a", 64, 96, 128, 16, 32, 32), module("3b", 128, 128, 192, 32, 96, 64)];
const STAGE4: [Module; 5] = [
    module("4a", 192, 96, 208, 16, 48, 64),
    module("4b", 160, 112, 224, 24, 64, 64),
    module("4c", 128, 128, 256, 24, 64, 64),
    module("4d", 112, 144, 288, 32, 64, 64),
    module("4e", 256, 160, 320, 32, 128, 128),
];
const STAGE5: [Module; 2] = [module("5a", 256, 160, 320, 32, 128, 128), module("5b", 384, 192, 384, 48, 128, 128)];

/// The 3x3/2 max pool of the stem and between stages (ceil mode in both variants).
const POOL_3X3_S2: PoolGeometry = PoolGeometry::new(3, 2, 0, true);

impl Variant {
    /// The network's name.
    fn name(self) -> &'static str {
        match self {
            Variant::Torchvision => "googlenet",
            Variant::Caffe => "googlenet_caffe",
        }
    }

    /// Parameter prefixes of the training-only auxiliary classifiers.
    fn aux_prefixes(self) -> [&'static str; 2] {
        match self {
            Variant::Torchvision => ["aux1.", "aux2."],
            Variant::Caffe => ["loss1_", "loss2_"],
        }
    }

    /// A convolution with its normalisation and ReLU.
    fn conv(self, b: &mut GraphBuilder, x: ValueId, name: &str, spec: ConvSpec) -> ValueId {
        match self {
            Variant::Torchvision => conv_bn_relu(b, x, name, spec, TF_BN_EPS),
            Variant::Caffe => conv_relu(b, x, name, spec),
        }
    }

    /// The stem's local response normalisation (Caffe only).
    fn lrn(self, b: &mut GraphBuilder, x: ValueId) -> ValueId {
        match self {
            Variant::Torchvision => x,
            Variant::Caffe => b.lrn(x, 5, 1e-4, 0.75, 1.0),
        }
    }

    /// The stem's three convolutions: 7x7/2, 1x1, 3x3.
    fn stem_names(self) -> [&'static str; 3] {
        match self {
            Variant::Torchvision => ["conv1", "conv2", "conv3"],
            Variant::Caffe => ["conv1_7x7_s2", "conv2_3x3_reduce", "conv2_3x3"],
        }
    }

    /// A module's six convolutions: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj.
    fn module_names(self, id: &str) -> [String; 6] {
        let (prefix, layers) = match self {
            Variant::Torchvision => (
                format!("inception{id}."),
                ["branch1", "branch2.0", "branch2.1", "branch3.0", "branch3.1", "branch4.1"],
            ),
            Variant::Caffe => {
                (format!("inception_{id}_"), ["1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj"])
            }
        };
        layers.map(|layer| format!("{prefix}{layer}"))
    }

    /// The kernel of the "5x5" branch.
    fn wide_kernel(self) -> usize {
        match self {
            Variant::Torchvision => 3,
            Variant::Caffe => 5,
        }
    }

    /// The max pool between the 14x14 and 7x7 stages.
    fn pool4(self) -> PoolGeometry {
        match self {
            Variant::Torchvision => PoolGeometry::new(2, 2, 0, true),
            Variant::Caffe => POOL_3X3_S2,
        }
    }

    /// Average pool, dropout (the identity at inference) and the 1000-way classifier.
    fn head(self, b: &mut GraphBuilder, x: ValueId) -> ValueId {
        match self {
            Variant::Torchvision => {
                let x = b.global_avg_pool(x);
                b.linear(x, "fc", 1000, true)
            }
            Variant::Caffe => {
                let x = b.avg_pool(x, PoolGeometry::new(7, 1, 0, true), true);
                b.linear(x, "loss3_classifier", 1000, true)
            }
        }
    }
}

/// Builds either GoogLeNet.
fn googlenet_variant(v: Variant) -> Result<Graph> {
    let mut b = GraphBuilder::new(v.name(), Dims::new(3, 224, 224));
    for prefix in v.aux_prefixes() {
        b.ignore_params(prefix);
    }
    let [conv1, conv2, conv3] = v.stem_names();
    let x = b.input();
    let x = v.conv(&mut b, x, conv1, ConvSpec::new(64, 7).stride(2).pad(3));
    let x = b.max_pool(x, POOL_3X3_S2);
    let x = v.lrn(&mut b, x);
    let x = v.conv(&mut b, x, conv2, ConvSpec::new(64, 1));
    let x = v.conv(&mut b, x, conv3, ConvSpec::new(192, 3).pad(1));
    let x = v.lrn(&mut b, x);
    let x = b.max_pool(x, POOL_3X3_S2);
    let x = stage(&mut b, v, x, &STAGE3);
    let x = b.max_pool(x, POOL_3X3_S2);
    let x = stage(&mut b, v, x, &STAGE4);
    let x = b.max_pool(x, v.pool4());
    let x = stage(&mut b, v, x, &STAGE5);
    let x = v.head(&mut b, x);
    b.finish(x)
}

/// Consecutive Inception modules.
fn stage(b: &mut GraphBuilder, v: Variant, x: ValueId, modules: &[Module]) -> ValueId {
    modules.iter().fold(x, |x, m| inception(b, v, x, m))
}

/// The Inception module: 1x1; 1x1 -> 3x3; 1x1 -> "5x5"; 3x3/1 max pool -> 1x1;
/// concatenated in that order.
fn inception(b: &mut GraphBuilder, v: Variant, x: ValueId, m: &Module) -> ValueId {
    let [n1, n3r, n3, n5r, n5, npool] = v.module_names(m.id);
    let k = v.wide_kernel();
    let one = v.conv(b, x, &n1, ConvSpec::new(m.c1, 1));
    let three = v.conv(b, x, &n3r, ConvSpec::new(m.r3, 1));
    let three = v.conv(b, three, &n3, ConvSpec::new(m.c3, 3).pad(1));
    let five = v.conv(b, x, &n5r, ConvSpec::new(m.r5, 1));
    let five = v.conv(b, five, &n5, ConvSpec::new(m.c5, k).pad(k / 2));
    let pool = b.max_pool(x, PoolGeometry::new(3, 1, 1, true));
    let pool = v.conv(b, pool, &npool, ConvSpec::new(m.pool_proj, 1));
    b.concat(&[one, three, five, pool])
}

#[cfg(test)]
mod tests {
    use crate::graph::{Dims, Op};
    use crate::models::blocks::{input_dims, param_shape};

    #[test]
    fn torchvision_matches_reference_counts() {
        let g = super::googlenet().unwrap();
        assert_eq!(g.param_count(), 6_624_904);
        // 1.50 G multiply-adds.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 1.50);
        assert_eq!(g.dims(g.output), Dims::new(1000, 1, 1));
        assert_eq!(g.ignored_prefixes, ["aux1.", "aux2."]);
        assert!(!g.nodes.iter().any(|n| matches!(n.op, Op::Lrn { .. })));
    }

    #[test]
    fn torchvision_names_and_shapes() {
        let g = super::googlenet().unwrap();
        assert_eq!(param_shape(&g, "conv1.conv.weight"), [64, 3, 7, 7]);
        assert_eq!(param_shape(&g, "conv1.bn.running_var"), [64]);
        assert!(g.param_by_name("conv1.conv.bias").is_none());
        assert_eq!(param_shape(&g, "inception3a.branch2.1.conv.weight"), [128, 96, 3, 3]);
        // The "5x5" branch is a 3x3 in torchvision.
        assert_eq!(param_shape(&g, "inception3a.branch3.1.conv.weight"), [32, 16, 3, 3]);
        assert_eq!(param_shape(&g, "inception5b.branch4.1.bn.weight"), [128]);
        assert_eq!(param_shape(&g, "fc.weight"), [1000, 1024]);
        assert_eq!(param_shape(&g, "fc.bias"), [1000]);
        // Module outputs: 3a 256x28x28, 3b 480x28x28, 4e 832x14x14, 5b 1024x7x7.
        assert_eq!(input_dims(&g, "inception3b.branch1.conv"), Dims::new(256, 28, 28));
        assert_eq!(input_dims(&g, "inception4a.branch1.conv"), Dims::new(480, 14, 14));
        assert_eq!(input_dims(&g, "inception5a.branch1.conv"), Dims::new(832, 7, 7));
        let gap = g.nodes.iter().find(|n| matches!(n.op, Op::GlobalAvgPool)).unwrap();
        assert_eq!(g.dims(gap.inputs[0]), Dims::new(1024, 7, 7));
    }

    #[test]
    fn caffe_matches_hand_count() {
        let g = super::googlenet_caffe().unwrap();
        assert_eq!(g.param_count(), 6_998_552);
        // 1.58 G multiply-adds: the true 5x5 branches cost 84.3 M more than 3x3s.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 1.58);
        assert_eq!(g.dims(g.output), Dims::new(1000, 1, 1));
        assert_eq!(g.ignored_prefixes, ["loss1_", "loss2_"]);
        assert_eq!(g.nodes.iter().filter(|n| matches!(n.op, Op::Lrn { .. })).count(), 2);
    }

    #[test]
    fn caffe_names_and_shapes() {
        let g = super::googlenet_caffe().unwrap();
        assert_eq!(param_shape(&g, "conv1_7x7_s2.weight"), [64, 3, 7, 7]);
        assert_eq!(param_shape(&g, "conv1_7x7_s2.bias"), [64]);
        assert_eq!(param_shape(&g, "conv2_3x3.weight"), [192, 64, 3, 3]);
        assert_eq!(param_shape(&g, "inception_3a_5x5.weight"), [32, 16, 5, 5]);
        assert_eq!(param_shape(&g, "inception_4e_pool_proj.bias"), [128]);
        assert_eq!(param_shape(&g, "loss3_classifier.weight"), [1000, 1024]);
        assert!(!g.params.iter().any(|p| p.name.contains("bn") || p.name.contains("running")));
        assert_eq!(input_dims(&g, "inception_3b_1x1"), Dims::new(256, 28, 28));
        assert_eq!(input_dims(&g, "inception_5a_1x1"), Dims::new(832, 7, 7));
        assert_eq!(input_dims(&g, "loss3_classifier"), Dims::new(1024, 1, 1));
    }
}
