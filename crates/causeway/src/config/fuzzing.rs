//! Fuzz target body for the configuration parser, as a plain function (the
//! pattern of `causeway_pop3::fuzzing`): `fuzz/fuzz_targets/config_parse.rs`
//! calls it, and the config tests run it under proptest.
//!
//! A configuration file is local, but it is often written by hand, generated
//! by provisioning scripts or pasted from a wiki: the parser must answer any
//! text with settings or a list of problems, never a panic, and every
//! problem's line must be a line of the file.

use std::path::Path;

/// Parses `data` (when it is UTF-8) as a configuration file whose `*_file`
/// paths lead nowhere. Must hold: no panic; every problem with a line names
/// one within the text.
pub fn parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = super::parse(text, Path::new("/nonexistent/causeway-fuzz")) {
        let lines = text.split('\n').count();
        for p in problems {
            if let Some(line) = p.line {
                assert!(
                    (1..=lines).contains(&line),
                    "problem on line {line} of a {lines}-line text: {}",
                    p.message
                );
            }
        }
    }
}
