//! BN-Inception (Ioffe & Szegedy, "Batch Normalization", 2015): GoogLeNet with
//! BatchNorm after every convolution, the 5x5 branch replaced by two stacked 3x3s,
//! average pooling in most pooling branches, and stride-2 grid-reduction modules
//! (3c, 4e) instead of separate max pools.
//!
//! Matches `bninception` of Cadene's `pretrainedmodels`
//! (`pretrainedmodels/models/bninception.py`, converted from the Caffe model of
//! yjxiong's TSN): convolutions *with* bias, each followed by `{name}_bn`
//! (BatchNorm, eps 1e-5) and an in-place ReLU; pools in ceil mode; pooling branches
//! are 3x3/1 average pools counting the padding, except 5b's max pool; 3c and 4e have
//! no 1x1 branch, stride 2 in their last 3x3s and a 3x3/2 max pool passed through
//! unprojected; the head is a 7x7/1 average pool and `last_linear` (1024 -> 1000,
//! bias). Names are that module's attributes (`conv1_7x7_s2.weight`,
//! `conv1_7x7_s2_bn.running_mean`, `inception_3a_double_3x3_1_bn.bias`,
//! `last_linear.weight`). Its input is 224x224 BGR in 0..255 minus the mean
//! (104, 117, 128), unscaled.
//!
//! 11,295,240 parameters (the ~11.3 M usually quoted), by hand: stem 125,056; modules
//! 3a 219,552, 3b 260,704, 3c 385,632, 4a 610,848, 4b 666,240, 4c 915,456,
//! 4d 1,144,000, 4e 1,451,008, 5a 2,210,496, 5b 2,281,248; `last_linear` 1,025,000.
//! 2.03 G MACs at 224x224.

use crate::error::Result;
use crate::graph::{ConvSpec, Dims, Graph, GraphBuilder, PoolGeometry, ValueId};

/// BatchNorm epsilon of the reference (PyTorch's default).
const BN_EPS: f32 = 1e-5;

/// Builds BN-Inception for 224x224 images; the output is `[N, 1000]` logits.
pub fn bn_inception() -> Result<Graph> {
    let mut b = GraphBuilder::new("bn_inception", Dims::new(3, 224, 224));
    let x = b.input();
    let x = conv_bn_relu(&mut b, x, "conv1_7x7_s2", ConvSpec::new(64, 7).stride(2).pad(3));
    let x = b.max_pool(x, POOL_3X3_S2);
    let x = conv_bn_relu(&mut b, x, "conv2_3x3_reduce", ConvSpec::new(64, 1));
    let x = conv_bn_relu(&mut b, x, "conv2_3x3", ConvSpec::new(192, 3).pad(1));
    let x = b.max_pool(x, POOL_3X3_S2);
    let x = MODULES.iter().fold(x, |x, m| inception(&mut b, x, m));
    let x = b.avg_pool(x, PoolGeometry::new(7, 1, 0, true), true);
    let x = b.linear(x, "last_linear", 1000, true);
    b.finish(x)
}

/// The stem's and the grid reductions' 3x3/2 max pool.
const POOL_3X3_S2: PoolGeometry = PoolGeometry::new(3, 2, 0, true);

/// The pooling branch of a module.
enum Pool {
    /// 3x3/1 average pool (padding counted), then a 1x1 projection to this width.
    Avg(usize),
    /// 3x3/1 max pool, then a 1x1 projection to this width.
    Max(usize),
    /// Grid reduction: 3x3/2 max pool, unprojected; the module also has no 1x1
    /// branch and its last 3x3 convolutions have stride 2.
    Reduce,
}

/// The widths of one module, in the order of the paper's Figure 5 table.
struct Module {
    /// `3a`, `4e`, ...
    id: &'static str,
    /// `#1x1` (absent in the grid reductions).
    c1: Option<usize>,
    /// `#3x3 reduce`, `#3x3`.
    r3: usize,
    c3: usize,
    /// `double #3x3 reduce`, `double #3x3` (two of them).
    rd: usize,
    d1: usize,
    d2: usize,
    /// `Pool +proj`.
    pool: Pool,
}

const fn module(id: &'static str, c1: usize, [r3, c3]: [usize; 2], [rd, d1, d2]: [usize; 3], pool: Pool) -> Module {
    Module { id, c1: Some(c1), r3, c3, rd, d1, d2, pool }
}

const fn reduction(id: &'static str, [r3, c3]: [usize; 2], [rd, d1, d2]: [usize; 3]) -> Module {
    Module { id, c1: None, r3, c3, rd, d1, d2, pool: Pool::Reduce }
}

/// Every module, 28x28 (3a-3c) to 14x14 (4a-4e) to 7x7 (5a, 5b).
const MODULES: [Module; 10] = [
    module("3a", 64, [64, 64], [64, 96, 96], Pool::Avg(32)),
    module("3b", 64, [64, 96], [64, 96, 96], Pool::Avg(64)),
    reduction("3c", [128, 160], [64, 96, 96]),
    module("4a", 224, [64, 96], [96, 128, 128], Pool::Avg(128)),
    module("4b", 192, [96, 128], [96, 128, 128], Pool::Avg(128)),
    module("4c", 160, [128, 160], [128, 160, 160], Pool::Avg(128)),
    module("4d", 96, [128, 192], [160, 192, 192], Pool::Avg(128)),
    reduction("4e", [128, 192], [192, 256, 256]),
    module("5a", 352, [192, 320], [160, 224, 224], Pool::Avg(128)),
    module("5b", 352, [192, 320], [192, 224, 224], Pool::Max(128)),
];

/// Convolution with bias `{name}`, BatchNorm `{name}_bn`, ReLU.
fn conv_bn_relu(b: &mut GraphBuilder, x: ValueId, name: &str, spec: ConvSpec) -> ValueId {
    let y = b.conv(x, name, spec.bias());
    let y = b.batch_norm(y, &format!("{name}_bn"), BN_EPS);
    b.relu(y)
}

/// A BN-Inception module: [1x1;] 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; pool [-> 1x1];
/// concatenated in that order.
fn inception(b: &mut GraphBuilder, x: ValueId, m: &Module) -> ValueId {
    let name = |layer: &str| format!("inception_{}_{layer}", m.id);
    let stride = if matches!(m.pool, Pool::Reduce) { 2 } else { 1 };
    let mut branches = Vec::with_capacity(4);
    if let Some(c1) = m.c1 {
        branches.push(conv_bn_relu(b, x, &name("1x1"), ConvSpec::new(c1, 1)));
    }
    let y = conv_bn_relu(b, x, &name("3x3_reduce"), ConvSpec::new(m.r3, 1));
    branches.push(conv_bn_relu(b, y, &name("3x3"), ConvSpec::new(m.c3, 3).stride(stride).pad(1)));
    let y = conv_bn_relu(b, x, &name("double_3x3_reduce"), ConvSpec::new(m.rd, 1));
    let y = conv_bn_relu(b, y, &name("double_3x3_1"), ConvSpec::new(m.d1, 3).pad(1));
    branches.push(conv_bn_relu(b, y, &name("double_3x3_2"), ConvSpec::new(m.d2, 3).stride(stride).pad(1)));
    let same = PoolGeometry::new(3, 1, 1, true);
    branches.push(match m.pool {
        Pool::Avg(proj) => {
            let y = b.avg_pool(x, same, true);
            conv_bn_relu(b, y, &name("pool_proj"), ConvSpec::new(proj, 1))
        }
        Pool::Max(proj) => {
            let y = b.max_pool(x, same);
            conv_bn_relu(b, y, &name("pool_proj"), ConvSpec::new(proj, 1))
        }
        Pool::Reduce => b.max_pool(x, POOL_3X3_S2),
    });
    b.concat(&branches)
}

#[cfg(test)]
mod tests {
    use crate::graph::{Dims, Op};
    use crate::models::blocks::{input_dims, param_shape};

    #[test]
    fn matches_reference_counts() {
        let g = super::bn_inception().unwrap();
        assert_eq!(g.param_count(), 11_295_240);
        // 2.03 G multiply-adds.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 2.03);
        assert_eq!(g.dims(g.output), Dims::new(1000, 1, 1));
        assert!(g.ignored_prefixes.is_empty());
    }

    #[test]
    fn names_shapes_and_sizes() {
        let g = super::bn_inception().unwrap();
        assert_eq!(param_shape(&g, "conv1_7x7_s2.weight"), [64, 3, 7, 7]);
        assert_eq!(param_shape(&g, "conv1_7x7_s2.bias"), [64]);
        assert_eq!(param_shape(&g, "conv1_7x7_s2_bn.running_mean"), [64]);
        assert_eq!(param_shape(&g, "inception_3a_double_3x3_1.weight"), [96, 64, 3, 3]);
        assert_eq!(param_shape(&g, "inception_3c_3x3.weight"), [160, 128, 3, 3]);
        assert!(g.param_by_name("inception_3c_1x1.weight").is_none());
        assert!(g.param_by_name("inception_4e_pool_proj.weight").is_none());
        assert_eq!(param_shape(&g, "inception_5b_pool_proj_bn.weight"), [128]);
        assert_eq!(param_shape(&g, "last_linear.weight"), [1000, 1024]);
        assert_eq!(param_shape(&g, "last_linear.bias"), [1000]);
        // Module outputs: 3b 320x28x28, 3c 576x14x14, 4d 608x14x14, 4e 1056x7x7, 5b 1024x7x7.
        assert_eq!(input_dims(&g, "inception_3c_3x3_reduce"), Dims::new(320, 28, 28));
        assert_eq!(input_dims(&g, "inception_4a_1x1"), Dims::new(576, 14, 14));
        assert_eq!(input_dims(&g, "inception_4e_3x3_reduce"), Dims::new(608, 14, 14));
        assert_eq!(input_dims(&g, "inception_5a_1x1"), Dims::new(1056, 7, 7));
        let pool = g.nodes.iter().rfind(|n| matches!(n.op, Op::AvgPool { .. })).unwrap();
        assert_eq!(g.dims(pool.inputs[0]), Dims::new(1024, 7, 7));
        // Seven average-pool branches (3a-4d, 5a), plus the head's pool.
        assert_eq!(g.nodes.iter().filter(|n| matches!(n.op, Op::AvgPool { .. })).count(), 8);
    }
}
