//! The reference pooling (max, average with either divisor, average padded with a
//! value per channel) and convolution epilogues: NCHW and NCHW16c layouts agree
//! bit for bit; every tier's blocked pooling matches the reference.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|case: checks::pool::PoolCase| checks::pool::check(&case));
