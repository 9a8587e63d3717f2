//! Network-in-Network (Lin, Chen, Yan 2014), the CIFAR-10 model.
//!
//! Matches the common PyTorch port of the authors' Caffe model (`nn.Sequential`
//! "classifier"): three mlpconv blocks, 3x3/2 max pool then 3x3/2 average pool
//! between them (ceil mode, as in Caffe), dropout (identity at inference), and a
//! global average pool over the 10 class maps. 966,986 parameters, 0.22 G MACs.

use super::blocks::conv_relu;
use crate::error::Result;
use crate::graph::{ConvSpec, Dims, Graph, GraphBuilder, PoolGeometry};

/// Builds NiN for 32x32 CIFAR-10 images; the output is `[N, 10]` logits.
pub fn nin_cifar10() -> Result<Graph> {
    let mut b = GraphBuilder::new("nin_cifar10", Dims::new(3, 32, 32));
    let x = b.input();
    // Parameter names are the indices of the layers in the `classifier` Sequential.
    let x = conv_relu(&mut b, x, "classifier.0", ConvSpec::new(192, 5).pad(2));
    let x = conv_relu(&mut b, x, "classifier.2", ConvSpec::new(160, 1));
    let x = conv_relu(&mut b, x, "classifier.4", ConvSpec::new(96, 1));
    let x = b.max_pool(x, PoolGeometry::new(3, 2, 0, true));
    let x = conv_relu(&mut b, x, "classifier.8", ConvSpec::new(192, 5).pad(2));
    let x = conv_relu(&mut b, x, "classifier.10", ConvSpec::new(192, 1));
    let x = conv_relu(&mut b, x, "classifier.12", ConvSpec::new(192, 1));
    let x = b.avg_pool(x, PoolGeometry::new(3, 2, 0, true), true);
    let x = conv_relu(&mut b, x, "classifier.16", ConvSpec::new(192, 3).pad(1));
    let x = conv_relu(&mut b, x, "classifier.18", ConvSpec::new(192, 1));
    let x = conv_relu(&mut b, x, "classifier.20", ConvSpec::new(10, 1));
    let x = b.global_avg_pool(x);
    b.finish(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_reference_counts() {
        let g = super::nin_cifar10().unwrap();
        assert_eq!(g.param_count(), 966_986);
        // 0.22 G multiply-adds.
        assert_eq!((g.macs() as f64 / 1e7).round() / 100.0, 0.22);
        assert_eq!(g.dims(g.output), crate::graph::Dims::new(10, 1, 1));
    }
}
