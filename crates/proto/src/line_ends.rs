//! Body chunks with LF line ends on the line, CRLF everywhere else.
//!
//! POP3 bodies end every line with CRLF, so one byte in about 35 of real
//! mail is a CR that says nothing the LF after it does not; the compressor
//! codes it nearly, but not quite, for free (W1: 1.3% of the line bytes at
//! level 9, `../shared/notes/line.md`). A chunk therefore travels with each
//! CRLF as LF when that is reversible: when the piece has no LF without a
//! CR before it (a bare LF, which broken mail does contain), restoring every
//! LF to CRLF gives back exactly the bytes the server sent. A bare CR is
//! harmless: `\r\r\n` travels as `\r\n` and comes back as `\r\r\n`. A piece
//! with a bare LF travels as it is. The edge never cuts a chunk between a
//! CR and its LF, so a piece's first LF always has its CR in the same piece.
//!
//! Offsets, totals and flow-control counts stay in the server's bytes:
//! only a chunk's `data` is in this form.

/// `piece` with every CRLF as LF, if that is reversible (no bare LF).
/// Line by line (memchr finds each LF), copying whole lines: this runs for
/// every body byte the edge streams.
pub fn to_lf(piece: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(piece.len());
    // The next byte to copy: an LF's CR is left out, the LF itself kept.
    let mut from = 0;
    for at in memchr::memchr_iter(b'\n', piece) {
        if at == 0 || piece[at - 1] != b'\r' {
            return None;
        }
        out.extend_from_slice(&piece[from..at - 1]);
        from = at;
    }
    out.extend_from_slice(&piece[from..]);
    Some(out)
}

/// The bytes [`to_lf`] was given: every LF back to CRLF. At most twice
/// `data`'s length; runs for every body byte the client proxy receives.
pub fn from_lf(data: &[u8]) -> Vec<u8> {
    let lfs = memchr::memchr_iter(b'\n', data).count();
    let mut out = Vec::with_capacity(data.len() + lfs);
    let mut from = 0;
    for at in memchr::memchr_iter(b'\n', data) {
        out.extend_from_slice(&data[from..at]);
        out.push(b'\r');
        from = at;
    }
    out.extend_from_slice(&data[from..]);
    out
}

/// A chunk's `(lf, data)` for `piece`: the LF form where it is
/// reversible, the piece as it is otherwise.
pub fn encode(piece: &[u8]) -> (bool, Vec<u8>) {
    match to_lf(piece) {
        Some(d) => (true, d),
        None => (false, piece.to_vec()),
    }
}

/// The body bytes a chunk's `(lf, data)` stands for.
pub fn decode(lf: bool, data: Vec<u8>) -> Vec<u8> {
    if lf { from_lf(&data) } else { data }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn crlf_travels_as_lf_and_comes_back() {
        let body = b"Subject: x\r\n\r\nline\r\n\r\r\nend";
        let lf = to_lf(body).unwrap();
        assert_eq!(lf, b"Subject: x\n\nline\n\r\nend");
        assert_eq!(from_lf(&lf), body);
    }

    #[test]
    fn a_bare_lf_is_not_transformed() {
        assert_eq!(to_lf(b"a\r\nb\nc"), None);
        assert_eq!(to_lf(b"\nc"), None);
    }

    /// The definition, a byte at a time: what the memchr forms must equal.
    fn to_lf_bytewise(piece: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(piece.len());
        let mut prev = None;
        for &b in piece {
            if b == b'\n' {
                if prev != Some(b'\r') {
                    return None;
                }
                out.pop();
            }
            out.push(b);
            prev = Some(b);
        }
        Some(out)
    }

    proptest! {
        /// The line-by-line forms agree with the definition on any bytes.
        #[test]
        fn line_by_line_is_the_definition(
            piece in prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..300)
        ) {
            prop_assert_eq!(to_lf(&piece), to_lf_bytewise(&piece));
            let back: Vec<u8> = piece.iter().flat_map(|&b| {
                if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }
            }).collect();
            prop_assert_eq!(from_lf(&piece), back);
        }

        /// Whatever the bytes (CR and LF made common), a piece that may go
        /// as LF comes back byte for byte.
        #[test]
        fn reversible_whenever_taken(
            piece in prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..200)
        ) {
            if let Some(lf) = to_lf(&piece) {
                prop_assert_eq!(from_lf(&lf), piece);
            } else {
                prop_assert!(piece.windows(2).any(|w| w[0] != b'\r' && w[1] == b'\n')
                    || piece.first() == Some(&b'\n'));
            }
        }
    }
}
