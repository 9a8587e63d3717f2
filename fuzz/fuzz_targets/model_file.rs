//! The model-file loader on arbitrary bytes (and on the same bytes with their checksums fixed): an error or a model, never a panic.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::files::model_file(bytes));
