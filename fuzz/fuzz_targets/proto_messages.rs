//! Fuzz target: see `causeway_proto::fuzzing::messages` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| causeway_proto::fuzzing::messages(data));
