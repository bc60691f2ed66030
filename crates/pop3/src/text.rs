//! Turning hostile bytes into text a person can read.
//!
//! Error messages quote what the peer sent ("Unknown command: FOO"). Those
//! quotes end up in logs and, on the server side, after "-ERR " on the wire,
//! so they must be short, printable and free of CR/LF.

/// Longest quote of peer input we put in an error message.
const MAX_QUOTE: usize = 40;

/// A printable, bounded rendering of `bytes`: printable ASCII is kept,
/// everything else becomes `?`; longer than [`MAX_QUOTE`] is cut with `...`.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let mut s: String = bytes
        .iter()
        .take(MAX_QUOTE)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > MAX_QUOTE {
        s.push_str("...");
    }
    s
}

/// Lossy, unbounded rendering for text we chose to show (status text).
pub(crate) fn lossy(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Position of the first LF in `bytes`.
pub(crate) fn find_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// `line` without its trailing LF or CRLF (a lone LF is tolerated on input).
pub(crate) fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Appends `bytes` to `out`, dropping CR and LF so that no argument or
/// status text can end a line early (command injection).
pub(crate) fn push_no_eol(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend(bytes.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
}
