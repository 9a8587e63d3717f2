//! ONNX operator conformance: the `onnx` package's own operator test cases
//! (`onnx.backend.test.case.node`), turned into fixtures by
//! `scripts/make_onnx_conformance.py` (see it for the two modes, `engine` and `fold`).
//!
//! Every case either matches the generator's expected output or is refused with an
//! import error that names the node, the operator and the opset (or, when the data
//! tensor is not a float32 `[N, C, H, W]` map, the graph input). A case that runs
//! and disagrees fails the test: nothing is run wrongly. Each case's outcome is also
//! compared with `status.tsv`, so a case that stops passing fails too
//! (`INCEPT_BLESS=1` rewrites it; `scripts/make_onnx_conformance.py --table` turns it
//! into the table of docs/onnx.md).
//!
//! Tolerance: max |incept - expected| / max |expected| < 1e-5 for the engine (float32
//! with other summation orders, BatchNorm folded into weights; see onnx_import.rs),
//! 1e-6 for folding (the same float32 operations as numpy, one rounding each);
//! integers exactly.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use incept::import::onnx::fold_constant_graph;
use incept::{Model, SessionOptions};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_conformance")
}

fn read_npy_f64(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f64>().unwrap())
}

fn read_npy_f32(path: &Path) -> Option<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    npy.into_vec::<f32>().ok().map(|v| (shape, v))
}

/// Max |got - want| relative to max |want| (absolute when the reference is all zeros).
fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let err = got.iter().zip(want).fold(0f64, |m, (a, b)| {
        // Same infinities and NaNs are agreement.
        if a == b || (a.is_nan() && b.is_nan()) { m } else { m.max((a - b).abs()) }
    });
    if scale > 0.0 && scale.is_finite() { err / scale } else { err }
}

/// Whether an import error names the node, its operator and the opset.
fn names_node(msg: &str, op: &str) -> bool {
    msg.contains("node ") && msg.contains(&format!("({op})")) && msg.contains("opset")
}

enum Outcome {
    Pass,
    Refused,
    RefusedInput,
}

fn run_engine(case: &str, op: &str) -> Result<Outcome, String> {
    let stem = dir().join(format!("{case}.engine"));
    let model = match Model::open(stem.with_extension("engine.onnx")) {
        Ok(m) => m,
        Err(e) => {
            let msg = e.to_string();
            return if msg.contains("graph input") {
                Ok(Outcome::RefusedInput)
            } else if names_node(&msg, op) {
                Ok(Outcome::Refused)
            } else {
                Err(format!("refused without naming node, op and opset: {msg}"))
            };
        }
    };
    let (in_shape, x) = read_npy_f32(&stem.with_extension("engine.in.npy")).ok_or("input is not float32")?;
    let (out_shape, want) = read_npy_f64(&stem.with_extension("engine.out.npy"));
    let batch = in_shape[0];
    let mut s = model.session(SessionOptions { batch, ..Default::default() }).map_err(|e| e.to_string())?;
    if s.input_shape()[..] != in_shape[..] {
        return Err(format!("input shape {:?}, the case's is {in_shape:?}", s.input_shape()));
    }
    if s.output_len() != want.len() {
        return Err(format!("output {:?} ({} values), expected {out_shape:?}", s.output_shape(), s.output_len()));
    }
    let mut y = vec![0.0; s.output_len()];
    s.run(&x, &mut y).map_err(|e| e.to_string())?;
    let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    let err = rel_err(&y, &want);
    if err < 1e-5 { Ok(Outcome::Pass) } else { Err(format!("relative error {err:.2e}")) }
}

fn run_fold(case: &str, op: &str) -> Result<Outcome, String> {
    let stem = dir().join(format!("{case}.fold"));
    let bytes = std::fs::read(stem.with_extension("fold.onnx")).map_err(|e| e.to_string())?;
    let (shape, want) = read_npy_f64(&stem.with_extension("fold.out.npy"));
    match fold_constant_graph(&bytes) {
        Ok(outs) => {
            let (got_shape, got) = &outs[0];
            if got_shape[..] != shape[..] {
                return Err(format!("shape {got_shape:?}, expected {shape:?}"));
            }
            let err = rel_err(got, &want);
            if err < 1e-6 { Ok(Outcome::Pass) } else { Err(format!("relative error {err:.2e}")) }
        }
        Err(e) if names_node(&e.to_string(), op) => Ok(Outcome::Refused),
        Err(e) => Err(format!("refused without naming node, op and opset: {e}")),
    }
}

#[test]
fn onnx_operator_cases_pass_or_are_refused_by_name() {
    let manifest = std::fs::read_to_string(dir().join("manifest.tsv")).unwrap();
    let mut status = String::from("# case\tmode\tresult\n");
    let mut failures = Vec::new();
    let (mut pass, mut refused) = (0, 0);
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (case, mode, op, fixture) = (f[0], f[1], f[2], f[4]);
        if fixture != "checked" {
            continue;
        }
        let r = if mode == "engine" { run_engine(case, op) } else { run_fold(case, op) };
        let result = match r {
            Ok(Outcome::Pass) => "pass",
            Ok(Outcome::Refused) => "refused",
            Ok(Outcome::RefusedInput) => "refused-input",
            Err(e) => {
                failures.push(format!("{case} ({mode}, {op}): {e}"));
                "FAIL"
            }
        };
        if result == "pass" {
            pass += 1;
        } else {
            refused += 1;
        }
        writeln!(status, "{case}\t{mode}\t{result}").unwrap();
    }
    println!("{pass} cases pass, {refused} refused");
    assert!(failures.is_empty(), "{} cases run wrongly:\n{}", failures.len(), failures.join("\n"));
    let path = dir().join("status.tsv");
    if std::env::var("INCEPT_BLESS").is_ok() {
        std::fs::write(&path, &status).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap();
    let changed: Vec<String> = status
        .lines()
        .zip(recorded.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("now {a}, recorded {b}"))
        .collect();
    assert!(
        changed.is_empty() && status.lines().count() == recorded.lines().count(),
        "outcomes differ from status.tsv (INCEPT_BLESS=1 to accept):\n{}",
        changed.join("\n")
    );
}
