//! Fuzz target: see `causeway_wire::fuzzing::message_stream` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| causeway_wire::fuzzing::message_stream(data));
