//! Every available convolution tier against the reference kernel, on random shapes,
//! windows, strides, paddings, residuals, activations and buffer offsets.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|case: checks::conv::ConvCase| checks::conv::check(&case));
