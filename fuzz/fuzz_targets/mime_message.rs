//! Fuzz target: see `causeway_imap::fuzzing::mime_message` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = causeway_imap::fuzzing::mime_message(data);
});
