//! The ONNX importer on arbitrary bytes: an error or a model, never a panic.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::files::onnx(bytes));
