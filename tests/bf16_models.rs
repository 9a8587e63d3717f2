//! BF16 and BF16x3 sessions on whole models: every BF16 tier this CPU has (forced,
//! and asserted to have run) against a reference evaluation of the same program
//! (`Program::evaluate_reference`: the reference kernels on BF16-rounded, or split,
//! operands, as `incept_kernels::bf16::reference`), and against float32; float32
//! sessions unchanged by BF16 ones.

mod common;

use std::sync::Mutex;

use incept::graph::{Activation, ConvSpec, Dims, Graph, GraphBuilder, PoolGeometry};
use incept::lower::{Algorithm, Bf16Operands, Kernel, Program};
use incept::weights::Weights;
use incept::{Model, Precision, SYNTHETIC_SEED, SessionOptions, models};
use incept_kernels::bf16::conv::BF16_TIERS;
use incept_kernels::bf16::{Bf16Tier, bf16_tier_calls};

/// The tier counters are per process: tests that read them run one at a time.
static TIER_COUNTERS: Mutex<()> = Mutex::new(());

/// Engine against reference, both BF16: the operands are rounded alike, so they
/// differ by float32 sums in another order, and by the activations whose float32
/// value lands that close to a BF16 rounding boundary and so rounds the other way,
/// moving its terms by a BF16 step (2^-8 relative). Those flips compound with
/// depth, so the bound is calibrated per model: the reference's own change when its
/// input moves by one float32 ulp (measured 2e-4 on NiN, 9e-4 on GoogLeNet), times
/// this factor, and at least [`TOL_FLOOR`]; measured with the first layer in
/// float32, since at BF16 it rounds the image and the nudge would vanish there. A
/// wrong weight, tap, band or shortcut moves outputs by O(1e-1).
const TOL_SENSITIVITY: f32 = 4.0;
/// The bound on networks too shallow for flips to matter: float32 reordering, as
/// `planned_vs_unplanned.rs` bounds it.
const TOL_FLOOR: f32 = 1e-4;

/// BF16 against float32: every operand of a BF16 convolution is off by up to 2^-9
/// relative (round to nearest), so a layer's output is off by about 2^-9 times its
/// terms' magnitude over the square root of their number, compounding over tens of
/// layers. 3e-2 of the output's range bounds that with room on these models, and
/// is still far below what a sign or layout error does.
const TOL_F32: f32 = 3e-2;

/// A residual network small enough for the portable tier: the image convolution,
/// direct convolutions with a fused shortcut (and ReLU), a 3x3 lowered to
/// Winograd, maps large enough to be split into bands on two threads.
fn residual_graph() -> Graph {
    let mut b = GraphBuilder::new("bf16_residual", Dims::new(3, 40, 40));
    let x = b.input();
    let stem = b.conv(x, "stem", ConvSpec::new(32, 3).pad(1).bias());
    let stem = b.relu(stem);
    let a = b.conv(stem, "a", ConvSpec::new(32, 1).bias());
    let a = b.batch_norm(a, "a_bn", 1e-3);
    let a = b.relu(a);
    let w = b.conv(a, "w", ConvSpec::new(64, 3).pad(1)); // Winograd: 32 -> 64 channels
    let w = b.relu(w);
    let c = b.conv(w, "c", ConvSpec::new(32, 1).bias());
    let r = b.residual_add(stem, c, 0.3, Activation::Relu); // fused into c
    let d = b.conv(r, "d", ConvSpec::new(48, 3).stride(2).bias());
    let d = b.relu(d);
    let p = b.max_pool(d, PoolGeometry::new(3, 2, 0, false));
    let e = b.conv(p, "e", ConvSpec::rect(40, 1, 3).pad_hw(0, 1).bias());
    let cat = b.concat(&[p, e]);
    let f = b.global_avg_pool(cat);
    let f = b.linear(f, "fc", 10, true);
    b.finish(f).unwrap()
}

/// BF16x3 against float32: each product of a split is within 3.01 x 2^-16 of
/// itself where rounding's is within 2^-7 (`incept_kernels::bf16::terms`), 170
/// times less; [`TOL_F32`] scaled so (1.8e-4), plus the float32 reordering both
/// sessions have ([`TOL_FLOOR`]).
const TOL_F32_X3: f32 = TOL_F32 * (3.01 / 512.0) + TOL_FLOOR;

/// Runs `graph` at BF16 on every BF16 tier this CPU has, on `threads` threads, and
/// checks each against the reference BF16 evaluation and the float32 session.
fn check(graph: &Graph, threads: usize) {
    check_at(graph, threads, Precision::Bf16);
}

/// [`check`] at `precision` (BF16 or BF16x3); returns the worst relative error to
/// float32 over the tiers.
fn check_at(graph: &Graph, threads: usize, precision: Precision) -> f32 {
    let weights = Weights::synthetic(graph, SYNTHETIC_SEED);
    let model = Model::new(graph, &weights).unwrap();
    let model16 = Model::new_at(graph, &weights, precision).unwrap();
    let x = common::input(graph.dims(graph.input).volume(), 11);
    let mut f32_session = model.session(SessionOptions { threads, ..Default::default() }).unwrap();
    let mut y32 = vec![f32::NAN; f32_session.output_len()];
    f32_session.run(&x, &mut y32).unwrap();

    let program = model16.program();
    let bf16_steps = program.steps.iter().filter(|s| s.algorithm().is_some_and(|a| a.precision() == precision)).count();
    assert!(bf16_steps > 0, "{}: no convolution runs in BF16", graph.name);
    let want = program.evaluate_reference(&weights, &x, Bf16Operands::BOTH).unwrap();
    let nudged: Vec<f32> = x.iter().map(|v| v * (1.0 + f32::EPSILON)).collect();
    let mut f32_image = Program::lower_at(graph, &weights, precision).unwrap();
    for s in &mut f32_image.steps {
        if let Kernel::Conv { algorithm: a @ Algorithm::Bf16FromImage, .. } = &mut s.kernel {
            *a = Algorithm::FromImage;
        }
    }
    let at = |x: &[f32]| f32_image.evaluate_reference(&weights, x, Bf16Operands::BOTH).unwrap();
    let sensitivity = common::rel_max_err(&at(&nudged), &at(&x));
    let tol = (TOL_SENSITIVITY * sensitivity).max(TOL_FLOOR);
    let tol_f32 = if precision == Precision::Bf16x3 { TOL_F32_X3 } else { TOL_F32 };
    let mut worst: f32 = 0.0;
    for tier in BF16_TIERS {
        if !tier.is_available() {
            eprintln!("{} [{}]: skipped, this CPU lacks the tier", graph.name, tier.name());
            continue;
        }
        let _counters = TIER_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
        let options =
            SessionOptions { threads, precision: Some(precision), bf16_tier: Some(tier), ..Default::default() };
        let mut session = model16.session(options).unwrap();
        assert_eq!((session.precision(), session.bf16_tier()), (precision, Some(tier)));
        let calls = bf16_tier_calls(tier);
        let mut y = vec![f32::NAN; session.output_len()];
        session.run(&x, &mut y).unwrap();
        assert_eq!(bf16_tier_calls(tier) - calls, bf16_steps as u64, "{tier:?}: not every BF16 convolution ran on it");
        let (to_ref, to_f32) = (common::rel_max_err(&y, &want), common::rel_max_err(&y, &y32));
        eprintln!(
            "{} [{precision}, {}, {threads} thread(s), {bf16_steps} BF16 convolutions]: relative error {to_ref:.2e} to the reference (bound {tol:.2e}), {to_f32:.2e} to float32",
            graph.name,
            tier.name()
        );
        assert!(to_ref < tol, "{} [{}]: {to_ref:.2e} from the {precision} reference", graph.name, tier.name());
        assert!(to_f32 < tol_f32, "{} [{}]: {to_f32:.2e} from float32", graph.name, tier.name());
        let mut again = vec![0.0; y.len()];
        session.run(&x, &mut again).unwrap();
        assert_eq!(y, again, "runs are independent");
        worst = worst.max(to_f32);
    }
    worst
}

/// BF16x3 on every tier against its reference and float32, and far closer to
/// float32 than BF16 is (a twentieth of its error at most, where the products'
/// bounds differ 170-fold).
fn check_x3(graph: &Graph, threads: usize) {
    let x3 = check_at(graph, threads, Precision::Bf16x3);
    let bf16 = check_at(graph, threads, Precision::Bf16);
    eprintln!("{}: to float32, bf16x3 {x3:.2e}, bf16 {bf16:.2e}", graph.name);
    assert!(x3 < bf16 / 20.0, "{}: bf16x3 {x3:.2e} against bf16 {bf16:.2e} from float32", graph.name);
}

#[test]
fn bf16x3_residual_network_one_and_two_threads() {
    let graph = residual_graph();
    check_x3(&graph, 1);
    check_x3(&graph, 2);
}

#[test]
fn bf16x3_pool_branches_and_nin() {
    check_x3(&common::pool_branches_graph(), 2);
    check_x3(&models::build("nin_cifar10").unwrap(), 1);
}

/// Average pools moved after their projection, padded with its bias (float32, as
/// every pool), after BF16 projections.
#[test]
fn pool_branches_padded_with_bias() {
    let graph = common::pool_branches_graph();
    check(&graph, 1);
    check(&graph, 2);
}

fn builtin(name: &str, threads: usize) {
    let graph = models::build(name).unwrap();
    if !common::model_fits_test_budget(graph.macs()) {
        eprintln!("{name}: skipped (INCEPT_TEST_MODELS=small)");
        return;
    }
    check(&graph, threads);
}

#[test]
fn nin_cifar10() {
    builtin("nin_cifar10", 1);
}

#[test]
fn googlenet() {
    builtin("googlenet", 1);
}

#[test]
fn residual_network_one_and_two_threads() {
    let graph = residual_graph();
    for threads in [1, 2] {
        check(&graph, threads);
    }
}

/// Which convolutions lowering puts in BF16: from the weights, the direct and the
/// Winograd ones, and the image convolution by its own kernel; from a float32
/// program alone, the direct and image ones (Winograd weights are stored
/// transformed). The float32 program has none.
#[test]
fn lowering_picks_the_direct_and_winograd_convolutions() {
    let graph = residual_graph();
    let weights = Weights::synthetic(&graph, 1);
    let model = Model::new(&graph, &weights).unwrap();
    let algorithms = |p: &Program| p.steps.iter().filter_map(|s| s.algorithm()).collect::<Vec<_>>();
    let f32s = algorithms(model.program());
    let from_weights = algorithms(Model::new_at(&graph, &weights, Precision::Bf16).unwrap().program());
    let from_program = algorithms(&model.program_at(Precision::Bf16).unwrap());
    assert!(f32s.iter().all(|a| a.precision() == Precision::F32));
    assert!(f32s.iter().any(|a| matches!(a, Algorithm::Winograd(_))), "the graph has a Winograd layer: {f32s:?}");
    assert_eq!(f32s[0], Algorithm::FromImage, "the graph's first convolution reads the image");
    for ((a32, full), partial) in f32s.iter().zip(&from_weights).zip(&from_program) {
        let bf16 = |yes: bool| match *a32 {
            Algorithm::FromImage => Algorithm::Bf16FromImage,
            _ if yes => Algorithm::Bf16Direct,
            _ => *a32,
        };
        assert_eq!(*full, bf16(true), "{f32s:?} at BF16: {from_weights:?}");
        assert_eq!(*partial, bf16(*a32 == Algorithm::Direct), "{f32s:?} at BF16: {from_program:?}");
    }
}

/// Float32 sessions give the same bits whether or not a BF16 session of the model
/// exists (the BF16 program shares the float32 tensors), and asked for explicitly.
#[test]
fn float32_sessions_are_unchanged() {
    let graph = residual_graph();
    let model = Model::new(&graph, &Weights::synthetic(&graph, 3)).unwrap();
    let x = common::input(graph.dims(graph.input).volume(), 5);
    let run = |options: SessionOptions| {
        let mut s = model.session(options).unwrap();
        assert_eq!((s.precision(), s.bf16_tier()), (Precision::F32, None));
        let mut y = vec![0.0; s.output_len()];
        s.run(&x, &mut y).unwrap();
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let before = run(SessionOptions::default());
    let bf16 =
        SessionOptions { precision: Some(Precision::Bf16), bf16_tier: Some(Bf16Tier::Portable), ..Default::default() };
    let _counters = TIER_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = model.session(bf16).unwrap();
    let mut y = vec![0.0; s.output_len()];
    s.run(&x, &mut y).unwrap();
    assert_eq!(run(SessionOptions::default()), before);
    assert_eq!(run(SessionOptions { precision: Some(Precision::F32), ..Default::default() }), before);
}

/// A built-in model's BF16 sessions lower it again from its weights: the same
/// program as lowering at BF16 directly. A float32 program's own BF16 weights (its
/// direct layers) are the same rounding of the same weights. A BF16 model has no
/// float32 sessions.
#[test]
fn bf16_programs_are_the_same_however_made_and_bf16_models_run_bf16_only() {
    let graph = models::build("nin_cifar10").unwrap();
    let weights = Weights::synthetic(&graph, SYNTHETIC_SEED);
    let m16 = Model::new_at(&graph, &weights, Precision::Bf16).unwrap();
    assert_eq!(m16.precision(), Precision::Bf16);
    let bits = |p: &Program, i: usize| p.tensors.get(i).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let builtin = Model::builtin("nin_cifar10").unwrap().program_at(Precision::Bf16).unwrap();
    let derived = Model::new(&graph, &weights).unwrap().program_at(Precision::Bf16).unwrap();
    assert_eq!(builtin.steps, m16.program().steps);
    for (i, r) in m16.program().recipes.iter().enumerate() {
        assert_eq!(bits(&builtin, i), bits(m16.program(), i), "tensor {i} ('{}')", r.name);
        if derived.recipes[i] == *r {
            assert_eq!(bits(&derived, i), bits(m16.program(), i), "tensor {i} ('{}')", r.name);
        }
    }
    let err = m16.session(SessionOptions { precision: Some(Precision::F32), ..Default::default() }).err().unwrap();
    assert!(err.to_string().contains("runs only at precision bf16"), "{err}");
    let s = m16.session(SessionOptions { bf16_tier: Some(Bf16Tier::Portable), ..Default::default() }).unwrap();
    assert_eq!(s.precision(), Precision::Bf16);
}
