//! Average pools moved after the 1x1 projection that reads them.
//!
//! Inception modules pool their input (3x3, stride 1, the map's size kept) and
//! project the pooled map to fewer channels with a 1x1 convolution. Both are linear
//! per pixel, so the projection can run first and the pool on its narrower output:
//! inception_v4's pools then average 96 to 256 channels instead of 384 to 1536.
//! Exact where each window's divisor counts only its own pixels (so that a
//! per-channel offset averages to itself): pools that exclude the padding from the
//! divisor, or have none. A pool that counts the padding (torchvision's
//! inception_v3, Caffe's BN-Inception) averaged zeros there, which the projection
//! maps to its bias: moved, it pads with that bias (`pad_with_bias`, see
//! [`Op::AvgPool`]), which makes it exact too. The projection's BatchNorm (a
//! per-channel affine map) moves with it; the pool lands before whatever followed
//! them (the ReLU).

use crate::graph::{Graph, Op, ValueId};

/// `graph` with every such pool moved past its projection (see the module docs).
pub(super) fn pools_after_projections(graph: &Graph) -> Graph {
    let mut g = graph.clone();
    while let Some((pool, tail)) = next_pool(&g) {
        move_pool(&mut g, pool, tail);
    }
    g
}

/// The first pool that can move, and the last node (the projection or its
/// BatchNorm) it moves past.
fn next_pool(g: &Graph) -> Option<(usize, usize)> {
    let consumers = g.consumers();
    // Read by exactly one node, and not the network's output.
    let only_reader = |v: ValueId| (consumers[v.0].len() == 1 && v != g.output).then(|| consumers[v.0][0]);
    g.nodes.iter().enumerate().find_map(|(i, node)| {
        // A pool padded with bias has moved already: its padding is its producer's.
        let Op::AvgPool { geom, pad_with_bias: false, .. } = &node.op else { return None };
        let w = &geom.window;
        let (x, p) = (node.inputs[0], node.output);
        if g.dims(x) != g.dims(p) || (w.stride_h, w.stride_w) != (1, 1) {
            return None;
        }
        let conv = only_reader(p)?;
        let Op::Conv { geom: cg, .. } = &g.nodes[conv].op else { return None };
        let pointwise = (cg.kh, cg.kw, cg.stride_h, cg.stride_w) == (1, 1, 1, 1) && cg.pad == Default::default();
        if !pointwise || g.dims(g.nodes[conv].output).c >= g.dims(x).c {
            return None;
        }
        let mut tail = conv;
        while let Some(n) = only_reader(g.nodes[tail].output) {
            match g.nodes[n].op {
                Op::BatchNorm { .. } => tail = n,
                _ => break,
            }
        }
        // What follows must read the tail's output only (so that it can read the pool's).
        (g.nodes[tail].output != g.output).then_some((i, tail))
    })
}

/// Rewires `pool -> projection ... tail -> readers` into
/// `projection ... tail -> pool -> readers`, the pool's value now the tail's shape;
/// a pool counting padding pads with the projection's bias.
fn move_pool(g: &mut Graph, pool: usize, tail: usize) {
    if let Op::AvgPool { geom, count_include_pad: true, pad_with_bias } = &mut g.nodes[pool].op {
        *pad_with_bias = geom.window.pad != Default::default();
    }
    let (x, p) = (g.nodes[pool].inputs[0], g.nodes[pool].output);
    let conv = g.consumers()[p.0][0];
    let t = g.nodes[tail].output;
    for node in g.nodes.iter_mut() {
        for v in node.inputs.iter_mut().filter(|v| **v == t) {
            *v = p;
        }
    }
    g.nodes[conv].inputs[0] = x;
    g.nodes[pool].inputs[0] = t;
    g.values[p.0].dims = g.dims(t);
    let node = g.nodes.remove(pool);
    // `tail` came after `pool`: one place earlier now.
    g.nodes.insert(tail, node);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ConvSpec, GraphBuilder};
    use incept_kernels::{Dims, PoolGeometry};

    fn module(count_include_pad: bool, co: usize) -> Graph {
        let mut b = GraphBuilder::new("pool-projection", Dims::new(32, 9, 9));
        let x = b.input();
        let p = b.avg_pool(x, PoolGeometry::new(3, 1, 1, false), count_include_pad);
        let c = b.conv(p, "proj", ConvSpec::new(co, 1));
        let n = b.batch_norm(c, "proj.bn", 1e-3);
        let y = b.relu(n);
        b.finish(y).unwrap()
    }

    #[test]
    fn a_pool_excluding_padding_moves_after_its_projection_and_batch_norm() {
        let g = pools_after_projections(&module(false, 8));
        let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind_name()).collect();
        assert_eq!(ops, ["conv", "batch_norm", "avg_pool", "relu"]);
        let pool = &g.nodes[2];
        assert_eq!(g.dims(pool.output), Dims::new(8, 9, 9));
        assert_eq!(g.nodes[0].inputs[0], g.input);
        assert_eq!(g.nodes[3].inputs[0], pool.output);
        assert!(matches!(pool.op, Op::AvgPool { count_include_pad: false, pad_with_bias: false, .. }));
        // Moved once: applying it again changes nothing.
        assert_eq!(pools_after_projections(&g), g);
    }

    /// A pool counting the padding moves too, padded with its projection's bias (the
    /// projection's output at zero input); once moved it stays, even before another
    /// projection.
    #[test]
    fn a_pool_counting_padding_moves_padded_with_bias() {
        let g = pools_after_projections(&module(true, 8));
        let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind_name()).collect();
        assert_eq!(ops, ["conv", "batch_norm", "avg_pool", "relu"]);
        let pool = &g.nodes[2];
        assert!(matches!(pool.op, Op::AvgPool { count_include_pad: true, pad_with_bias: true, .. }));
        assert_eq!(pool.inputs[0], g.nodes[1].output);
        assert_eq!(g.projection_of(pool.inputs[0]), Some(vec![0, 1]));
        assert_eq!(pools_after_projections(&g), g);

        let mut b = GraphBuilder::new("moved", Dims::new(32, 9, 9));
        let c = b.conv(b.input(), "proj", ConvSpec::new(32, 1).bias());
        let p = b.avg_pool_padded_with_bias(c, PoolGeometry::new(3, 1, 1, false));
        let y = b.conv(p, "next", ConvSpec::new(8, 1));
        let g = b.finish(y).unwrap();
        assert_eq!(pools_after_projections(&g), g);
    }

    /// Without padding, counting it changes nothing: the pool moves as it is.
    #[test]
    fn a_pool_without_padding_moves_as_it_is() {
        let mut b = GraphBuilder::new("unpadded", Dims::new(32, 9, 9));
        let p = b.avg_pool(b.input(), PoolGeometry::new(1, 1, 0, false), true);
        let c = b.conv(p, "proj", ConvSpec::new(8, 1));
        let y = b.relu(c);
        let g = pools_after_projections(&b.finish(y).unwrap());
        let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind_name()).collect();
        assert_eq!(ops, ["conv", "avg_pool", "relu"]);
        assert!(matches!(g.nodes[1].op, Op::AvgPool { count_include_pad: true, pad_with_bias: false, .. }));
    }

    #[test]
    fn other_pools_stay() {
        for g in [module(false, 32), module(false, 64), module(true, 32)] {
            assert_eq!(pools_after_projections(&g), g);
        }
    }

    /// A pool padded with bias must read a projection whose values nothing else
    /// reads, and count the padding: the builder says so.
    #[test]
    fn a_pool_padded_with_bias_needs_its_projection() {
        let geom = PoolGeometry::new(3, 1, 1, false);
        let mut b = GraphBuilder::new("no projection", Dims::new(16, 9, 9));
        let r = b.relu(b.input());
        let p = b.avg_pool_padded_with_bias(r, geom);
        let e = b.finish(p).unwrap_err().to_string();
        assert!(e.contains("must count the padding and read a convolution"), "{e}");

        let mut b = GraphBuilder::new("shared", Dims::new(16, 9, 9));
        let c = b.conv(b.input(), "proj", ConvSpec::new(16, 1));
        let n = b.batch_norm(c, "proj.bn", 1e-3);
        let p = b.avg_pool_padded_with_bias(n, geom);
        let y = b.concat(&[p, c]);
        assert!(b.finish(y).is_err(), "the convolution's value is read twice: its BatchNorm cannot fold");
    }
}
