//! Every available BF16 convolution tier (and the AMX tier's logic on its emulated
//! tiles) against the BF16 reference, on the `conv` target's random cases: whole
//! images and bands of rows.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|case: checks::conv::ConvCase| {
    checks::conv_bf16::check(&case);
});
