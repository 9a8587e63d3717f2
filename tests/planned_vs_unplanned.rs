//! The planned executor (fusion, blocked layout, one arena, concat in place) against
//! the unplanned interpreter (NCHW, one buffer per value, BatchNorm unfolded, concat
//! by copy) on every built-in model and on graphs built to stress the planner.

mod common;

use incept::graph::{Activation, ConvSpec, Dims, GraphBuilder, Op, PoolGeometry};
use incept::interpret::interpret;
use incept::weights::Weights;
use incept::{Model, SYNTHETIC_SEED, SessionOptions, models};
use incept_kernels::{Tier, tier_calls};

/// Float32 sums of up to ~10^4 terms in a different order, plus BatchNorm folded into
/// the weights: relative differences of a few 1e-6 per layer, compounding over ~100
/// layers. 1e-4 of the output's range leaves room for that and catches any real bug
/// (a wrong offset, a missed tap or a wrong fold moves outputs by O(1)).
const TOL: f32 = 1e-4;

/// Runs `graph` planned on every ISA tier this CPU has and compares each with the
/// interpreter; returns the plan.
fn check(graph: &incept::graph::Graph, batch: usize) -> incept::plan::Plan {
    let weights = Weights::synthetic(graph, SYNTHETIC_SEED);
    let model = Model::new(graph, &weights).unwrap();
    let len = batch * graph.dims(graph.input).volume();
    let x = common::input(len, 7);
    let want = interpret(graph, &weights, &x, batch).unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut plan = None;
    for tier in Tier::available() {
        let mut session = model.session(SessionOptions { batch, tier: Some(tier), ..Default::default() }).unwrap();
        assert_eq!(session.tier(), tier);
        let calls = tier_calls(tier);
        let mut y = vec![f32::NAN; session.output_len()];
        session.run(&x, &mut y).unwrap();
        assert!(tier_calls(tier) > calls, "{tier:?} kernels did not run");
        let err = common::rel_max_err(&y, &want);
        eprintln!("{} [{}]: batch {batch}, max |y| {scale:.3e}, relative error {err:.2e}", graph.name, tier.name());
        assert!(err < TOL, "{} [{}]: relative error {err:.2e}", graph.name, tier.name());
        // Running twice gives the same answer: no state leaks between runs.
        let mut again = vec![0.0; y.len()];
        session.run(&x, &mut again).unwrap();
        assert_eq!(y, again);
        plan = Some(session.plan().clone());
    }
    plan.unwrap()
}

fn builtin_matches_the_interpreter(name: &str) {
    let graph = models::build(name).unwrap();
    if !common::model_fits_test_budget(graph.macs()) {
        eprintln!("{name}: skipped (INCEPT_TEST_MODELS=small)");
        return;
    }
    let plan = check(&graph, 1);
    assert_eq!(plan.copies(), 0, "{name}: the Inception family needs no concat copy");
    assert!(plan.arena_len >= plan.lower_bound);
}

/// One test per built-in model, so they run in parallel; a new model without a test
/// fails `every_builtin_model_has_a_test`.
macro_rules! builtin_tests {
    ($($name:ident),*) => {
        $(#[test] fn $name() { builtin_matches_the_interpreter(stringify!($name)); })*
        #[test]
        fn every_builtin_model_has_a_test() {
            let tested = [$(stringify!($name)),*];
            for m in models::BUILTIN {
                assert!(tested.contains(&m.name), "no planned-vs-unplanned test for {}", m.name);
            }
        }
    };
}

builtin_tests!(
    nin_cifar10,
    googlenet,
    googlenet_caffe,
    bn_inception,
    inception_v3,
    inception_v4,
    inception_resnet_v1,
    inception_resnet_v2
);

#[test]
fn batches_are_independent_images() {
    let graph = models::build("nin_cifar10").unwrap();
    check(&graph, 3);
}

/// Nested concats, unaligned channel counts (copies), residual shortcuts (fused and
/// not), a value read by two concats, and every pooling flavour.
fn planner_stress_graph() -> incept::graph::Graph {
    let mut b = GraphBuilder::new("stress", Dims::new(5, 13, 11));
    let x = b.input();
    let a = b.conv(x, "a", ConvSpec::new(16, 1).bias());
    let a = b.relu(a);
    let c = b.conv(x, "c", ConvSpec::rect(20, 1, 3).pad_hw(0, 1));
    let c = b.batch_norm(c, "c_bn", 1e-3);
    let d = b.conv(a, "d", ConvSpec::rect(16, 3, 1).pad_hw(1, 0));
    let e = b.conv(a, "e", ConvSpec::new(13, 3).pad(1).bias());
    let inner = b.concat(&[d, e]); // 29 channels: e is unaligned but last
    let p = b.max_pool(x, PoolGeometry::new(3, 1, 1, false));
    let outer = b.concat(&[a, inner, c, p]); // inner is unaligned and not last: copied
    let again = b.concat(&[a, d]); // a and d already live in `outer`: copied
    let q = b.avg_pool(again, PoolGeometry::new(3, 1, 1, false), false);
    let r = b.conv(outer, "r", ConvSpec::new(32, 1).bias());
    let s = b.residual_add(q, r, 0.2, Activation::Relu); // fused into r
    let t = b.residual_add(s, s, 0.5, Activation::None); // same value twice: not fusable
    let u = b.conv(t, "u", ConvSpec::new(24, 3).stride(2));
    let u = b.lrn(u, 5, 1e-2, 0.75, 1.0);
    let u = b.avg_pool(u, PoolGeometry::new(3, 2, 1, true), true);
    let f = b.global_avg_pool(u);
    let f = b.linear(f, "fc", 7, true);
    let f = b.batch_norm(f, "fc_bn", 1e-5);
    let f = b.softmax(f);
    b.finish(f).unwrap()
}

#[test]
fn planner_stress_graph_matches() {
    let graph = planner_stress_graph();
    for batch in [1, 2] {
        let plan = check(&graph, batch);
        assert!(plan.copies() >= 3, "expected copies for unaligned and shared concat inputs, got {}", plan.copies());
    }
}

/// Average pools counting the padding move after their 1x1 projection, padded with
/// its bias: the moved graph computes what the graph as built does (both
/// interpreted), and so do the planned sessions on every tier; padding the moved
/// pools with zeros instead would not.
#[test]
fn pools_counting_padding_moved_after_their_projection_match() {
    let graph = common::pool_branches_graph();
    let weights = Weights::synthetic(&graph, SYNTHETIC_SEED);
    let moved = Model::new(&graph, &weights).unwrap().graph().clone();
    let is_moved = |op: &Op| matches!(op, Op::AvgPool { pad_with_bias: true, .. });
    assert_eq!(moved.nodes.iter().filter(|n| is_moved(&n.op)).count(), 3, "{:#?}", moved.nodes);
    let x = common::input(graph.dims(graph.input).volume(), 3);
    let want = interpret(&graph, &weights, &x, 1).unwrap();
    let err = common::rel_max_err(&interpret(&moved, &weights, &x, 1).unwrap(), &want);
    assert!(err < TOL, "moved: relative error {err:.2e}");
    let mut zero_padded = moved.clone();
    for n in zero_padded.nodes.iter_mut() {
        if let Op::AvgPool { pad_with_bias, .. } = &mut n.op {
            *pad_with_bias = false;
        }
    }
    let err = common::rel_max_err(&interpret(&zero_padded, &weights, &x, 1).unwrap(), &want);
    assert!(err > 1e-2, "padding with zeros should show: relative error {err:.2e}");
    check(&graph, 1);
    check(&graph, 2);
}
