//! Average pools moved after the 1x1 projection that reads them.
//!
//! Inception modules pool their input (3x3, stride 1, the map's size kept) and
//! project the pooled map to fewer channels with a 1x1 convolution. Both are linear
//! per pixel, so the projection can run first and the pool on its narrower output:
//! inception_v4's pools then average 96 to 256 channels instead of 384 to 1536.
//! Exact where each window's divisor counts only its own pixels (so that a
//! per-channel offset averages to itself): pools that exclude the padding from the
//! divisor, or have none. The projection's BatchNorm (a per-channel affine map)
//! moves with it; the pool lands before whatever followed them (the ReLU).

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
        let Op::AvgPool { geom, count_include_pad } = &node.op else { return None };
        let w = &geom.window;
        let padded = w.pad != Default::default();
        let (x, p) = (node.inputs[0], node.output);
        if (*count_include_pad && padded) || g.dims(x) != g.dims(p) || (w.stride_h, w.stride_w) != (1, 1) {
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
/// `projection ... tail -> pool -> readers`, the pool's value now the tail's shape.
fn move_pool(g: &mut Graph, pool: usize, tail: usize) {
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
        // Moved once: applying it again changes nothing.
        assert_eq!(pools_after_projections(&g), g);
    }

    #[test]
    fn other_pools_stay() {
        for g in [module(true, 8), module(false, 32), module(false, 64)] {
            assert_eq!(pools_after_projections(&g), g);
        }
    }
}
