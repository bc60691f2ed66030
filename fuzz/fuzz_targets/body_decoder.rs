//! Fuzz target: see `causeway_pop3::fuzzing::body_decoder` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| causeway_pop3::fuzzing::body_decoder(data));
