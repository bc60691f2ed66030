//! Fuzz target: see `causeway::config::fuzzing::parse` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| causeway::config::fuzzing::parse(data));
