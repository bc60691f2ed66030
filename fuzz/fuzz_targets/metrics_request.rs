//! Fuzz target: see `causeway::metrics::fuzz_request` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| causeway::metrics::fuzz_request(data));
