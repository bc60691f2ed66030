//! Fuzz target bodies, as plain functions.
//!
//! Each `fuzz/fuzz_targets/*.rs` at the workspace root is a one-line call to
//! one of these, and `tests/fuzz_bodies.rs` runs them under proptest, so the
//! targets are compiled and exercised by an ordinary `cargo test` and cannot
//! rot. Each function feeds hostile bytes to one parser and asserts the
//! invariants that must hold for *any* input (a panic is a finding):
//! no panic, caps respected, parse/encode idempotence.

use crate::MAX_COMMAND_LINE;
use crate::client::{CLIENT_MAX_RESPONSE_LINE, ClientCodec, ClientError};
use crate::command::{Command, CommandError};
use crate::multiline::{BodyDecoder, BodyError};
use crate::response::StatusLine;
use crate::server::ServerCodec;

/// Splits `data` into chunks whose sizes come from `data[0]` (so the fuzzer
/// explores chunkings too).
fn chunks(data: &[u8]) -> (impl Iterator<Item = &[u8]>, u8) {
    let (seed, rest) = data.split_first().map_or((1, data), |(s, r)| (*s, r));
    let mut state = u32::from(seed) | 1;
    let mut rest = rest;
    let it = std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = 1 + (state >> 16) as usize % 97;
        let (a, b) = rest.split_at(n.min(rest.len()));
        rest = b;
        Some(a)
    });
    (it, seed)
}

/// `Command::parse` on arbitrary bytes; a parsed command re-encodes to a
/// line that parses to the same command, within the line cap's spirit.
pub fn command_parse(data: &[u8]) {
    if let Ok(cmd) = Command::parse(data) {
        let mut out = Vec::new();
        cmd.encode(&mut out);
        assert!(out.ends_with(b"\r\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let again = Command::parse(&out[..out.len() - 2]).expect("re-parse");
        assert_eq!(again, cmd);
    }
}

/// `StatusLine::parse` on arbitrary bytes; a parsed line re-encodes to one
/// line that parses to the same value.
pub fn status_line_parse(data: &[u8]) {
    if let Ok(s) = StatusLine::parse(data) {
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let again = StatusLine::parse(&out[..out.len() - 2]).expect("re-parse");
        assert_eq!(again.status, s.status);
        let _ = s.to_string();
    }
}

/// `BodyDecoder` on arbitrary bytes in arbitrary chunks: never exceeds its
/// cap, consumes everything until done, then refuses more.
pub fn body_decoder(data: &[u8]) {
    let (chunks, seed) = chunks(data);
    let max = usize::from(seed) * 4;
    let mut d = BodyDecoder::new(max);
    for chunk in chunks {
        match d.feed(chunk) {
            Ok(p) => {
                assert!(p.consumed <= chunk.len());
                if !p.done {
                    assert_eq!(p.consumed, chunk.len());
                } else {
                    assert!(d.is_done());
                    let rest = &chunk[p.consumed..];
                    if !rest.is_empty() {
                        assert_eq!(d.feed(rest), Err(BodyError::AfterEnd));
                    }
                    break;
                }
            }
            Err(BodyError::TooLarge { max: m }) => {
                assert_eq!(m, max);
                break;
            }
            Err(BodyError::AfterEnd) => unreachable!("not done yet"),
        }
        assert!(d.len() <= max);
    }
    assert!(d.into_body().len() <= max);
}

/// `ClientCodec` after a greeting and a pipeline of commands, fed arbitrary
/// bytes in arbitrary chunks: bounded buffering, bounded bodies, errors
/// poison.
pub fn client_codec(data: &[u8]) {
    let (chunks, seed) = chunks(data);
    let max = usize::from(seed) * 8;
    let mut c = ClientCodec::new(max);
    c.expect_greeting();
    let mut out = Vec::new();
    for cmd in [
        Command::Capa,
        Command::Xflags,
        Command::Stat,
        Command::Retr(1),
        Command::List(None),
        Command::Dele(1),
        Command::Top { msg: 1, lines: 0 },
    ] {
        c.send(&cmd, &mut out);
    }
    let mut failed = false;
    for chunk in chunks {
        let r = c.feed(chunk);
        if failed {
            assert!(matches!(r, Err(ClientError::Broken)));
            continue;
        }
        match r {
            Ok(()) => assert!(c.buffered() < CLIENT_MAX_RESPONSE_LINE),
            Err(_) => failed = true,
        }
        while let Some(resp) = c.next_response() {
            if let Some(body) = &resp.body {
                assert!(body.len() <= max);
                assert!(resp.status.is_ok());
            }
        }
    }
}

/// `ServerCodec` fed arbitrary bytes in arbitrary chunks: buffering stays
/// bounded by the cap (plus the current chunk), errors print as one line.
pub fn server_codec(data: &[u8]) {
    let (chunks, _) = chunks(data);
    let mut s = ServerCodec::new();
    for chunk in chunks {
        s.feed(chunk);
        assert!(s.buffered() <= chunk.len() + MAX_COMMAND_LINE + 1);
        while let Some(r) = s.next_command() {
            match r {
                Ok(cmd) => {
                    let mut out = Vec::new();
                    cmd.encode(&mut out);
                    assert!(out.len() <= MAX_COMMAND_LINE + 16);
                    let _ = format!("{cmd:?}");
                }
                Err(e) => {
                    let text = e.to_string();
                    assert!(!text.contains('\r') && !text.contains('\n'));
                    assert!(text.len() < 100);
                    let _ = matches!(e, CommandError::LineTooLong);
                }
            }
        }
        assert!(s.buffered() <= MAX_COMMAND_LINE);
    }
}
