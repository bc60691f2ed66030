//! Fuzz target: see `causeway_pop3::fuzzing::status_line_parse` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| causeway_pop3::fuzzing::status_line_parse(data));
