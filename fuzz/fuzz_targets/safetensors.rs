//! The safetensors importer on arbitrary bytes: an error or weights, never a panic,
//! and the same files rejected as by the format's reference reader.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::files::safetensors(bytes));
