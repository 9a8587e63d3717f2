//! Random valid graphs, planned and run against the unplanned interpreter; the
//! plan's arena checked for overlapping live buffers.
#![no_main]

#[path = "../../tests/fuzz_cases/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|case: checks::planner::GraphCase| checks::planner::check(&case));
