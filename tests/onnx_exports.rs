//! Real exports of Inception networks against ONNX Runtime: PyTorch's dynamo
//! exporter, Keras through tf2onnx (NHWC input, and NCHW with --inputs-as-nchw) and
//! the ONNX model zoo's Inception v1/v2 graphs (opset 9, IR 3, weights from
//! `ConstantOfShape`), at reduced width or resolution, made with random weights and
//! BatchNorm statistics by `scripts/make_export_fixtures.py` (ORT's outputs saved
//! next to them). Full-size checks: `scripts/check_exports.py`.
//!
//! Tolerance as in tests/onnx_import.rs: max |incept - ORT| / max |ORT| < 1e-5 (both
//! float32 with different summation orders; measured 1e-7 to 7e-7).

mod common;

use std::path::{Path, PathBuf};

use incept::graph::InputLayout;
use incept::{Model, SessionOptions};

const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exports").join(name)
}

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().unwrap())
}

/// Imports fixture `name`, runs it on its input (in the graph's own input shape)
/// at batch 1 and 2, on one and two threads, and compares with ONNX Runtime.
fn matches_onnx_runtime(name: &str, layout: InputLayout) -> Model {
    let model = Model::open(fixture(&format!("{name}.onnx"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (in_shape, x) = read_npy(&fixture(&format!("{name}.input.npy")));
    let (out_shape, want) = read_npy(&fixture(&format!("{name}.ort.npy")));
    for threads in [1, 2] {
        let mut s = model.session(SessionOptions { threads, ..Default::default() }).unwrap();
        assert_eq!(s.input_layout(), layout, "{name}");
        assert_eq!(s.input_shape()[..], in_shape[..], "{name}");
        assert_eq!(s.output_shape()[..], out_shape[..], "{name}");
        let mut y = vec![0.0; s.output_len()];
        s.run(&x, &mut y).unwrap();
        let err = common::rel_max_err(&y, &want);
        println!("{name}, {threads} thread(s): max |incept - ORT| / max |ORT| = {err:.2e}");
        assert!(err < TOLERANCE, "{name}: relative error {err:.2e} against ONNX Runtime");
    }
    let (graph, weights) = incept::import::load_onnx(&fixture(&format!("{name}.onnx"))).unwrap();
    let oracle = incept::interpret::interpret(&graph, &weights, &x, 1).unwrap();
    assert!(common::rel_max_err(&oracle, &want) < TOLERANCE, "{name}: interpreter");
    let mut s2 = model.session(SessionOptions { batch: 2, ..Default::default() }).unwrap();
    let mut y2 = vec![0.0; 2 * want.len()];
    s2.run(&[x.clone(), x].concat(), &mut y2).unwrap();
    assert!(common::rel_max_err(&y2, &[want.clone(), want].concat()) < TOLERANCE, "{name}: batch 2");
    model
}

#[test]
fn torch_dynamo_googlenet_blocks() {
    matches_onnx_runtime("torch_googlenet_small", InputLayout::Nchw);
}

#[test]
fn torch_dynamo_inception_v3_blocks() {
    matches_onnx_runtime("torch_inception_v3_small", InputLayout::Nchw);
}

#[test]
fn keras_inception_v3_blocks_nhwc_and_nchw() {
    matches_onnx_runtime("keras_inception_v3_small_nhwc", InputLayout::Nhwc);
    matches_onnx_runtime("keras_inception_v3_small_nchw", InputLayout::Nchw);
}

#[test]
fn keras_inception_resnet_v2_blocks_nhwc_and_nchw() {
    matches_onnx_runtime("keras_inception_resnet_v2_small_nhwc", InputLayout::Nhwc);
    matches_onnx_runtime("keras_inception_resnet_v2_small_nchw", InputLayout::Nchw);
}

#[test]
fn model_zoo_inception_v1() {
    matches_onnx_runtime("zoo_inception_v1_light", InputLayout::Nchw);
}

#[test]
fn model_zoo_inception_v2() {
    matches_onnx_runtime("zoo_inception_v2_light", InputLayout::Nchw);
}

/// The NHWC graph's plan has the same steps as its NCHW twin: the input's
/// transpose is read by the input reorder, not a step of its own.
#[test]
fn nhwc_input_adds_no_step() {
    let steps = |name: &str| {
        let m = Model::open(fixture(&format!("{name}.onnx"))).unwrap();
        m.session(SessionOptions::default()).unwrap().plan().steps.len()
    };
    assert_eq!(steps("keras_inception_v3_small_nhwc"), steps("keras_inception_v3_small_nchw"));
}

/// A model file keeps an NHWC input's layout (and runs the same bits).
#[test]
fn model_files_keep_the_input_layout() {
    let name = "keras_inception_resnet_v2_small_nhwc";
    let (graph, weights) = incept::import::load_onnx(&fixture(&format!("{name}.onnx"))).unwrap();
    let dir = std::env::temp_dir().join(format!("incept-exports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nhwc.incept");
    incept::format::write(&graph, &weights, &path, Default::default(), &mut |_, _| {}).unwrap();
    let (mut a, mut b) = (
        Model::new(&graph, &weights).unwrap().session(SessionOptions::default()).unwrap(),
        Model::open(&path).unwrap().session(SessionOptions::default()).unwrap(),
    );
    assert_eq!((a.input_layout(), b.input_layout()), (InputLayout::Nhwc, InputLayout::Nhwc));
    let (_, x) = read_npy(&fixture(&format!("{name}.input.npy")));
    let (mut ya, mut yb) = (vec![0.0; a.output_len()], vec![0.0; b.output_len()]);
    a.run(&x, &mut ya).unwrap();
    b.run(&x, &mut yb).unwrap();
    assert_eq!(ya, yb);
    std::fs::remove_dir_all(&dir).unwrap();
}
