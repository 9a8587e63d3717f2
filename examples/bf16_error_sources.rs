//! Where BF16's error comes from: a model's BF16 program evaluated by the reference
//! kernels with only its weights, only its convolutions' input activations, or both
//! rounded to BF16, each against a float64 evaluation of the model; and the BF16
//! session itself (docs/bf16.md).
//!
//! `cargo run --release --example bf16_error_sources -- MODEL.onnx INPUT.npy REF_F64.npy`
//! (`scripts/export_models.py` writes the three).

use incept::lower::{Bf16Operands, Precision, Program};
use incept::{Model, SessionOptions};

fn read_npy<T: npyz::Deserialize>(path: &str) -> Vec<T> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    npyz::NpyFile::new(&bytes[..]).expect("a .npy file").into_vec().expect("the expected dtype")
}

/// max |y - reference| / max |reference|.
fn error(y: &[f32], reference: &[f64]) -> f64 {
    let scale = reference.iter().fold(0f64, |m, v| m.max(v.abs()));
    y.iter().zip(reference).fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs())) / scale
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [onnx, input, reference] = &args[..] else {
        panic!("usage: bf16_error_sources MODEL.onnx INPUT.npy REF_F64.npy");
    };
    let (x, reference) = (read_npy::<f32>(input), read_npy::<f64>(reference));
    let (graph, weights) = incept::import::load_onnx(std::path::Path::new(onnx)).expect("an importable model");
    let program = Program::lower_at(&graph, &weights, Precision::Bf16).expect("lowers");
    println!("{onnx}: max |y - y64| / max |y64| of its BF16 program, reference kernels");
    for (what, weights_rounded, activations) in [
        ("nothing (float32)", false, false),
        ("weights", true, false),
        ("activations", false, true),
        ("both", true, true),
    ] {
        let rounded = Bf16Operands { weights: weights_rounded, activations };
        let y = program.evaluate_reference(&weights, &x, rounded).expect("evaluates");
        println!("  {what:<18} rounded: {:.2e}", error(&y, &reference));
    }
    let model = Model::new_at(&graph, &weights, Precision::Bf16).expect("lowers");
    let mut session = model.session(SessionOptions::default()).expect("plans");
    let mut y = vec![0.0; session.output_len()];
    session.run(&x, &mut y).expect("runs");
    println!("  the BF16 session ({}): {:.2e}", session.bf16_tier().expect("BF16").name(), error(&y, &reference));
}
