//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// A deterministic input in roughly [-1, 1], like a normalised image.
pub fn input(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Largest absolute difference, relative to the reference's largest magnitude.
pub fn rel_max_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0 && scale.is_finite(), "degenerate reference output (max |y| = {scale})");
    got.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

/// Whether to run the big models (hundreds of GMAC through the naive interpreter).
/// `INCEPT_TEST_MODELS=small` (set for emulated targets, where they would take hours)
/// limits model-level tests to models under 2.5 G multiply-adds.
pub fn model_fits_test_budget(macs: u64) -> bool {
    std::env::var("INCEPT_TEST_MODELS").as_deref() != Ok("small") || macs < 2_500_000_000
}

/// A command running the `incept` binary; through `$INCEPT_TEST_RUNNER` when set
/// (under qemu-user, which does not follow `exec` into another emulated binary).
/// The binary is built with the `cli` feature only.
#[cfg(feature = "cli")]
pub fn incept_command() -> std::process::Command {
    let bin = env!("CARGO_BIN_EXE_incept");
    match std::env::var("INCEPT_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut c = std::process::Command::new(runner);
            c.arg(bin);
            c
        }
        _ => std::process::Command::new(bin),
    }
}

/// Inception-v3's pool branches: 3x3 average pools counting the padding, each read
/// by a 1x1 projection to fewer channels (with a bias and a BatchNorm, a BatchNorm
/// only, a bias only), then ReLU; channel counts off the 16-lane block. Lowering
/// moves each pool after its projection, padded with the projection's bias.
pub fn pool_branches_graph() -> incept::graph::Graph {
    use incept::graph::{ConvSpec, Dims, GraphBuilder, PoolGeometry};
    let same = PoolGeometry::new(3, 1, 1, false);
    let mut b = GraphBuilder::new("pool_branches", Dims::new(40, 17, 17));
    let x = b.input();
    let a = b.conv(x, "a", ConvSpec::new(16, 1));
    let a = b.batch_norm(a, "a_bn", 1e-3);
    let a = b.relu(a);
    let mut branches = vec![a];
    for (name, co, bias, bn) in [("p", 24, true, true), ("q", 8, false, true), ("r", 13, true, false)] {
        let p = b.avg_pool(x, same, true);
        let spec = if bias { ConvSpec::new(co, 1).bias() } else { ConvSpec::new(co, 1) };
        let mut y = b.conv(p, name, spec);
        if bn {
            y = b.batch_norm(y, &format!("{name}_bn"), 1e-3);
        }
        branches.push(b.relu(y));
    }
    let y = b.concat(&branches);
    b.finish(y).unwrap()
}
