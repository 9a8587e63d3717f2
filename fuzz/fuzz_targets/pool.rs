//! The reference pooling and convolution epilogues: NCHW and NCHW16c layouts agree
//! bit for bit; every tier's blocked pooling matches the reference.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|case: checks::pool::PoolCase| checks::pool::check(&case));
