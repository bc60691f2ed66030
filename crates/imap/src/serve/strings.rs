//! Header bytes as IMAP strings, quoted or literal where Dovecot makes
//! the same choice: a literal for 8-bit text, line breaks, or more than
//! four quotes and backslashes to escape. NUL, which no IMAP string may
//! carry, is dropped.

use imap_types::core::{IString, Literal, NString, Quoted};

/// Escapes Dovecot puts in a quoted string before it writes a literal.
const MAX_ESCAPES: usize = 4;

pub fn istring(bytes: &[u8]) -> IString<'static> {
    let clean: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    let escapes = clean.iter().filter(|&&b| b == b'"' || b == b'\\').count();
    if escapes <= MAX_ESCAPES {
        if let Ok(q) = Quoted::try_from(clean.clone()) {
            return IString::Quoted(q);
        }
    }
    literal(clean)
}

fn literal(bytes: Vec<u8>) -> IString<'static> {
    // Valid without NUL (dropped above), which is all Literal refuses.
    IString::Literal(
        Literal::try_from(bytes.clone()).unwrap_or_else(|_| Literal::unvalidated(bytes)),
    )
}

/// A value for people to read (`ENVELOPE`'s subject), as Dovecot writes
/// it: each run of white space and line breaks one space, none at either
/// end, NUL as 0x80; a literal whenever that changed anything or the
/// value holds 8-bit text, quotes or backslashes.
pub fn for_humans(value: &[u8]) -> IString<'static> {
    let mut out = Vec::with_capacity(value.len());
    let mut gap = false;
    for &b in value {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => gap = !out.is_empty(),
            _ => {
                if gap {
                    out.push(b' ');
                    gap = false;
                }
                out.push(if b == 0 { 0x80 } else { b });
            }
        }
    }
    let plain = out == value && !value.iter().any(|&b| b == b'"' || b == b'\\' || b >= 0x80);
    if plain || out.is_empty() {
        istring(&out)
    } else {
        literal(out)
    }
}

pub fn nstring(bytes: &[u8]) -> NString<'static> {
    NString(Some(istring(bytes)))
}
