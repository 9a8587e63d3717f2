//! ONNX import against ONNX Runtime: small fixtures made by
//! `scripts/make_onnx_fixtures.py` (with ORT's outputs saved next to them), error
//! messages for unsupported operators, corrupt files, and `incept run model.onnx`.
//!
//! Tolerance: max |incept - ORT| / max |ORT| < 1e-5. Both compute in float32
//! (unit roundoff u = 6e-8) with different summation orders, and the engine folds
//! BatchNorm and residual scales into the convolution weights; the fixtures' dot
//! products have at most 288 terms through about ten layers, so the typical
//! (sqrt(K) u per layer) error is around 1e-6 and the measured one is 2e-7 to 4e-7.
//! Any mapping mistake (padding side, divisor, scale) shows at 1e-3 or more.

mod common;

use std::path::{Path, PathBuf};

use incept::graph::{Activation, Op, Padding};
use incept::import::onnx::from_bytes;
use incept::lower::Kernel;
use incept::{Error, Model, SessionOptions};

const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().unwrap())
}

/// Runs fixture `name` through `Model::open` and a session at batch 1 and 2 and
/// compares with ONNX Runtime. Returns the model for structural checks.
fn matches_onnx_runtime(name: &str) -> Model {
    let model = Model::open(fixture(&format!("{name}.onnx"))).unwrap();
    let (in_shape, x) = read_npy(&fixture(&format!("{name}.input.npy")));
    let (out_shape, want) = read_npy(&fixture(&format!("{name}.ort.npy")));
    let mut s = model.session(SessionOptions::default()).unwrap();
    assert_eq!(s.input_shape()[..], in_shape[..]);
    assert_eq!(s.output_shape()[..], out_shape[..]);
    let mut y = vec![0.0; s.output_len()];
    s.run(&x, &mut y).unwrap();
    let err = common::rel_max_err(&y, &want);
    println!("{name}: max |incept - ORT| / max |ORT| = {err:.2e}");
    assert!(err < TOLERANCE, "{name}: relative error {err:.2e} against ONNX Runtime");
    // The unplanned interpreter agrees too, and a batch of two gives the same rows.
    let (graph, weights) = incept::import::load_onnx(&fixture(&format!("{name}.onnx"))).unwrap();
    let oracle = incept::interpret::interpret(&graph, &weights, &x, 1).unwrap();
    assert!(common::rel_max_err(&oracle, &want) < TOLERANCE, "{name}: interpreter");
    let mut s2 = model.session(SessionOptions { batch: 2, ..Default::default() }).unwrap();
    let mut y2 = vec![0.0; 2 * y.len()];
    s2.run(&[x.clone(), x].concat(), &mut y2).unwrap();
    assert!(common::rel_max_err(&y2, &[want.clone(), want].concat()) < TOLERANCE, "{name}: batch 2");
    model
}

#[test]
fn inception_module_matches_onnx_runtime() {
    let model = matches_onnx_runtime("inception_module");
    let g = model.graph();
    assert_eq!(g.name, "inception_module");
    let counts = g.op_counts();
    for (op, n) in [("conv", 12), ("batch_norm", 1), ("avg_pool", 1), ("concat", 3), ("linear", 1), ("softmax", 1)] {
        assert!(counts.contains(&(op, n)), "{op} x{n} not in {counts:?}");
    }
    // The Pad node (left 2, right 4) is folded into the 1x7 convolution; the 7x1 keeps
    // its own asymmetric pads; the average pool does not count padding.
    let conv_pad = |name: &str| {
        let n = g.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"));
        match n.op {
            Op::Conv { geom, .. } => geom.pad,
            _ => panic!("{name} is not a conv"),
        }
    };
    assert_eq!(conv_pad("branch7x7_2"), Padding { top: 0, left: 2, bottom: 0, right: 4 });
    assert_eq!(conv_pad("branch7x7_3"), Padding { top: 2, left: 0, bottom: 4, right: 0 });
    assert!(g.nodes.iter().any(|n| matches!(n.op, Op::AvgPool { count_include_pad: false, .. })));
    // Parameter names come from the initializers ({name}.weight -> {name}) or the node.
    for p in ["branch7x7_2.weight", "branch7x7_2.bias", "fc.weight", "fc.bias", "stem.bn.running_var"] {
        assert!(g.param_by_name(p).is_some(), "no parameter {p}");
    }
}

#[test]
fn inception_resnet_blocks_match_onnx_runtime() {
    let model = matches_onnx_runtime("resnet_block");
    let g = model.graph();
    let residuals: Vec<(f32, Activation)> = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::ResidualAdd { scale, act } => Some((scale, act)),
            _ => None,
        })
        .collect();
    assert_eq!(residuals, [(0.17, Activation::Relu), (0.1, Activation::Relu), (1.0, Activation::None)]);
    // Each shortcut add (and its Relu) fuses into the 1x1 convolution before it; no
    // separate residual or Relu step is left.
    let steps = &model.program().steps;
    let fused: Vec<Activation> = steps
        .iter()
        .filter_map(|s| match s.kernel {
            Kernel::Conv { residual: true, act, .. } => Some(act),
            _ => None,
        })
        .collect();
    assert_eq!(fused, [Activation::Relu, Activation::Relu, Activation::None]);
    assert!(
        steps.iter().all(|s| matches!(
            s.kernel,
            Kernel::Conv { .. } | Kernel::Concat | Kernel::GlobalAvgPool | Kernel::Linear { .. }
        )),
        "{:?}",
        steps.iter().map(|s| &s.kernel).collect::<Vec<_>>()
    );
    // MatMul + Add became one linear layer with a bias, its weight transposed to [out, in].
    let linear = g.nodes.iter().find(|n| matches!(n.op, Op::Linear { bias: Some(_), .. })).expect("a linear layer");
    assert_eq!(g.params[g.param_by_name(&format!("{}.weight", linear.name)).unwrap().0].shape, [10, 32]);
}

#[test]
fn same_padding_ceil_mode_pools_and_lrn_match_onnx_runtime() {
    let model = matches_onnx_runtime("same_pool_lrn");
    let g = model.graph();
    let pads: Vec<Padding> = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::Conv { geom, .. } => Some(geom.pad),
            _ => None,
        })
        .collect();
    // SAME_UPPER puts the odd pixel after, SAME_LOWER before.
    assert_eq!(
        pads,
        [Padding { top: 1, left: 1, bottom: 2, right: 2 }, Padding { top: 1, left: 1, bottom: 0, right: 0 }]
    );
    assert!(g.op_counts().contains(&("lrn", 1)));
    let g_in = g.dims(g.input);
    assert_eq!((g_in.c, g_in.h, g_in.w), (3, 25, 25));
}

fn import_error(bytes: &[u8]) -> String {
    match from_bytes(bytes) {
        Ok(_) => panic!("imported without error"),
        Err(e @ Error::Import(_)) => e.to_string(),
        Err(e) => panic!("not an import error: {e}"),
    }
}

#[test]
fn relu6_imports_as_a_clip_step() {
    let (relu6, _) = from_bytes(&std::fs::read(fixture("conv_relu6.onnx")).unwrap()).unwrap();
    assert!(relu6.op_counts().contains(&("clip", 1)), "{:?}", relu6.op_counts());
}

#[test]
fn unsupported_operators_are_errors_naming_the_node() {
    let hardswish = import_error(&std::fs::read(fixture("unsupported_hardswish.onnx")).unwrap());
    for needle in ["node 1 'stem/hardswish' (HardSwish) at opset 17", "unsupported operator HardSwish"] {
        assert!(hardswish.contains(needle), "'{needle}' not in: {hardswish}");
    }
    let group = import_error(&std::fs::read(fixture("unsupported_group.onnx")).unwrap());
    for needle in ["'dw_conv' (Conv)", "group=2"] {
        assert!(group.contains(needle), "'{needle}' not in: {group}");
    }
    // Through Model::open, the message also names the file.
    let e = Model::open(fixture("unsupported_hardswish.onnx")).err().unwrap().to_string();
    assert!(e.contains("unsupported_hardswish.onnx") && e.contains("stem/hardswish"), "{e}");
}

#[test]
fn truncated_and_corrupt_files_are_errors_not_panics() {
    let bytes = std::fs::read(fixture("inception_module.onnx")).unwrap();
    assert!(from_bytes(&bytes).is_ok());
    // Every strict prefix is an error.
    for len in 0..bytes.len() {
        let e = import_error(&bytes[..len]);
        assert!(e.starts_with("cannot import model: "), "{e}");
    }
    // Garbage.
    for junk in [&b"not an onnx model"[..], &[0xff; 64][..], &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f][..]] {
        import_error(junk);
    }
    let mut state = 0x9e37_79b9_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let noise: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
    import_error(&noise);
    // Random byte changes: an error or a model that still validates, never a panic.
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 3 {
            let i = next() as usize % b.len();
            b[i] = next() as u8;
        }
        if let Ok((graph, weights)) = from_bytes(&b) {
            let _ = Model::new(&graph, &weights);
        }
    }
}

#[test]
fn open_and_load_dispatch_on_the_argument() {
    let e = Model::open("model.bin").err().unwrap().to_string();
    assert!(e.contains("model.bin") && e.contains("no such file"), "{e}");
    let e = Model::open(fixture("resnet_block.input.npy")).err().unwrap().to_string();
    assert!(e.contains("resnet_block.input.npy") && e.contains(".onnx"), "{e}");
    let e = Model::open("missing.onnx").err().unwrap().to_string();
    assert!(e.contains("missing.onnx"), "{e}");
    assert!(Model::load("nin_cifar10").is_ok());
    assert!(matches!(Model::load("no_such_model"), Err(Error::UnknownModel { .. })));
    let path = fixture("resnet_block.onnx");
    assert_eq!(Model::load(path.to_str().unwrap()).unwrap().graph().name, "resnet_block");
}

#[test]
#[cfg(feature = "cli")]
fn cli_runs_an_onnx_file() {
    let dir = std::env::temp_dir().join(format!("incept-onnx-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("y.npy");
    let model = fixture("inception_module.onnx");
    let input = fixture("inception_module.input.npy");
    let incept = |args: &[&std::ffi::OsStr]| common::incept_command().args(args).output().unwrap();
    let r = incept(&[
        "run".as_ref(),
        model.as_ref(),
        "--input".as_ref(),
        input.as_ref(),
        "--output".as_ref(),
        out.as_ref(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let (shape, y) = read_npy(&out);
    let (want_shape, want) = read_npy(&fixture("inception_module.ort.npy"));
    assert_eq!(shape, want_shape);
    assert!(common::rel_max_err(&y, &want) < TOLERANCE);
    // `info` takes a path too; an unsupported file is a one-line error naming the node.
    let r = incept(&["info".as_ref(), model.as_ref()]);
    assert!(r.status.success() && String::from_utf8_lossy(&r.stdout).contains("linear 1"));
    let r = incept(&["info".as_ref(), fixture("unsupported_group.onnx").as_ref()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && stderr.starts_with("error: ") && stderr.lines().count() == 1, "{stderr}");
    assert!(stderr.contains("'dw_conv' (Conv)") && stderr.contains("group=2"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The real exports of `scripts/export_models.py` (not checked in: run it first),
/// against their float64 PyTorch reference: no further from it than ONNX Runtime's
/// float32 output (`{name}.ort.npy`, when present). Skipped when the files are absent.
#[test]
fn real_exports_match_the_float64_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/models");
    for name in ["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"] {
        let path = dir.join(format!("{name}.onnx"));
        let reference = dir.join(format!("{name}.ref_f64.npy"));
        if !path.exists() || !reference.exists() {
            println!("{name}: no export in target/models, skipped");
            continue;
        }
        let model = Model::open(&path).unwrap();
        if !common::model_fits_test_budget(model.graph().macs()) {
            continue;
        }
        let (_, x) = read_npy(&dir.join(format!("{name}.input.npy")));
        let bytes = std::fs::read(&reference).unwrap();
        let want: Vec<f64> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<f64>().unwrap();
        let mut s = model.session(SessionOptions::default()).unwrap();
        let mut y = vec![0.0; s.output_len()];
        s.run(&x, &mut y).unwrap();
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        let rel_err = |y: &[f32]| y.iter().zip(&want).fold(0f64, |m, (&a, b)| m.max((a as f64 - b).abs())) / scale;
        let err = rel_err(&y);
        println!("{name}: max |incept - float64| / max |ref| = {err:.2e}");
        assert!(err < 1e-4, "{name}: {err:.2e}");
        let ort = dir.join(format!("{name}.ort.npy"));
        if ort.exists() {
            let ort_err = rel_err(&read_npy(&ort).1);
            println!("{name}: ONNX Runtime's: {ort_err:.2e}");
            assert!(err <= ort_err, "{name}: {err:.2e}, further from float64 than ONNX Runtime ({ort_err:.2e})");
        }
    }
}
