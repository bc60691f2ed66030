//! Multi-line bodies (RFC 1939 §3): dot-stuffing and the terminating "."
//! line.
//!
//! On the wire a body is a sequence of CRLF-terminated lines; a line that
//! starts with "." gets another "." in front, and the body ends with a line
//! holding only ".". Bodies are bytes: 8-bit data, NULs and lone CRs pass
//! through untouched.
//!
//! # What round-trips
//!
//! [`encode_body`] followed by [`BodyDecoder`] gives back `normalise(body)`,
//! where `normalise` (a) writes every LF not preceded by CR as CRLF and
//! (b) appends CRLF to a non-empty body whose last byte is not LF. So a
//! body whose lines all end in CRLF (or the empty body) round-trips byte for
//! byte; a lone-LF body comes back with CRLF line ends. This is the same
//! normalisation a real POP3 server applies to a maildir message stored with
//! LF line ends. [`normalise`] is public so callers and tests can state it.
//!
//! The decoder is liberal: a lone LF ends a line (and comes out as CRLF), so
//! "\n.\n" terminates too. It is incremental: feed it any chunking of the
//! input and it reports how much it consumed, stopping right after the
//! terminator so the bytes that follow (the next pipelined reply) stay with
//! the caller. It never holds more than `max` output bytes.

/// Dot-stuff `body` and append the terminating ".\r\n" (see the module
/// docs for the normalisation of lone LF and a missing final newline).
pub fn encode_body(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(body.len() + body.len() / 64 + 5);
    let mut e = BodyEncoder::default();
    e.feed(body, out);
    e.finish(out);
}

/// [`encode_body`] for a body that arrives in pieces: feeding any split of
/// a body, then [`BodyEncoder::finish`], writes exactly what `encode_body`
/// writes for the whole. It keeps two facts between pieces: whether the
/// next byte starts a line, and the last byte (a CR split from its LF).
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    line_start: bool,
    last: Option<u8>,
}

impl Default for BodyEncoder {
    fn default() -> Self {
        BodyEncoder {
            line_start: true,
            last: None,
        }
    }
}

impl BodyEncoder {
    /// Dot-stuffs the next piece of the body onto `out`.
    pub fn feed(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        // Line by line (memchr finds each LF), copying whole lines: this runs
        // for every body the proxy and the model server send.
        let mut rest = piece;
        while !rest.is_empty() {
            if std::mem::take(&mut self.line_start) && rest[0] == b'.' {
                out.push(b'.');
            }
            match memchr::memchr(b'\n', rest) {
                Some(p) => {
                    out.extend_from_slice(&rest[..p]);
                    let before = if p == 0 { self.last } else { Some(rest[p - 1]) };
                    if before != Some(b'\r') {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.last = Some(b'\n');
                    self.line_start = true;
                    rest = &rest[p + 1..];
                }
                None => {
                    out.extend_from_slice(rest);
                    self.last = rest.last().copied();
                    rest = &[];
                }
            }
        }
    }

    /// Ends the last line if the body did not, and writes the terminator.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// What [`encode_body`] + [`BodyDecoder`] give back for `body`: lone LF
/// written as CRLF, and a CRLF appended if a non-empty body does not end
/// with LF.
pub fn normalise(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !body.is_empty() && prev != b'\n' {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// How far a [`BodyDecoder::feed`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes consumed (all of them unless `done`).
    pub consumed: usize,
    /// The terminating "." line has been seen (and consumed).
    pub done: bool,
}

/// The body is larger than the cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("multi-line reply larger than the limit of {max} bytes")]
    TooLarge { max: usize },
    #[error("data fed after the end of the multi-line reply")]
    AfterEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// A "." at line start, not yet known whether stuffed or terminator.
    Dot,
    /// ".\r" at line start.
    DotCr,
    /// Inside a line.
    Mid,
    /// Inside a line after a CR that may start a CRLF.
    MidCr,
    /// The terminator has been seen.
    Done,
}

/// Incremental un-stuffing decoder with a size cap.
#[derive(Debug)]
pub struct BodyDecoder {
    out: Vec<u8>,
    max: usize,
    state: State,
}

impl BodyDecoder {
    /// A decoder that fails once the decoded body would exceed `max` bytes.
    pub fn new(max: usize) -> Self {
        BodyDecoder {
            out: Vec::new(),
            max,
            state: State::LineStart,
        }
    }

    /// Feeds input; returns how much was consumed and whether the
    /// terminator was seen. Errors as soon as the body exceeds the cap.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, BodyError> {
        if self.state == State::Done {
            return if input.is_empty() {
                Ok(Progress {
                    consumed: 0,
                    done: true,
                })
            } else {
                Err(BodyError::AfterEnd)
            };
        }
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            i += 1;
            match self.state {
                State::LineStart | State::Mid => {
                    if self.state == State::LineStart && b == b'.' {
                        self.state = State::Dot;
                        continue;
                    }
                    // Fast path: copy the run up to the next CR or LF.
                    let run_end = memchr::memchr2(b'\r', b'\n', &input[i - 1..])
                        .map_or(input.len(), |p| i - 1 + p);
                    if run_end > i - 1 {
                        self.push(&input[i - 1..run_end])?;
                        i = run_end;
                        self.state = State::Mid;
                        continue;
                    }
                    self.line_byte(b)?;
                }
                State::Dot => match b {
                    b'\r' => self.state = State::DotCr,
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(Progress {
                            consumed: i,
                            done: true,
                        });
                    }
                    _ => {
                        self.state = State::Mid;
                        self.line_byte(b)?;
                    }
                },
                State::DotCr => match b {
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(Progress {
                            consumed: i,
                            done: true,
                        });
                    }
                    _ => {
                        // ".\r" + something: a stuffed line holding a CR.
                        self.state = State::MidCr;
                        self.line_byte_after_cr(b)?;
                    }
                },
                State::MidCr => self.line_byte_after_cr(b)?,
                State::Done => unreachable!("returned when the terminator was seen"),
            }
        }
        Ok(Progress {
            consumed: input.len(),
            done: false,
        })
    }

    /// Whether the terminator has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes decoded so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The decoded body: un-stuffed, CRLF line ends, without the "." line.
    pub fn into_body(self) -> Vec<u8> {
        self.out
    }

    /// A byte inside a line (state Mid), not after a pending CR.
    fn line_byte(&mut self, b: u8) -> Result<(), BodyError> {
        match b {
            b'\r' => self.state = State::MidCr,
            b'\n' => {
                self.push(b"\r\n")?;
                self.state = State::LineStart;
            }
            _ => {
                self.push(&[b])?;
                self.state = State::Mid;
            }
        }
        Ok(())
    }

    /// A byte after a pending CR (state MidCr).
    fn line_byte_after_cr(&mut self, b: u8) -> Result<(), BodyError> {
        match b {
            b'\n' => {
                self.push(b"\r\n")?;
                self.state = State::LineStart;
            }
            b'\r' => self.push(b"\r")?,
            _ => {
                self.push(&[b'\r', b])?;
                self.state = State::Mid;
            }
        }
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        if self.out.len() + bytes.len() > self.max {
            return Err(BodyError::TooLarge { max: self.max });
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

/// The headers, the blank line, and the first `lines` body lines of `message`
/// (CRLF line ends), as a server answers `TOP n lines`.
pub fn head(message: &[u8], lines: u32) -> Vec<u8> {
    let end = head_len(message, lines, true).expect("a whole message has a head");
    message[..end].to_vec()
}

/// [`head`] from the first bytes of a message still arriving, once they
/// hold all of it: the header, the blank line and `lines` whole body
/// lines. `None` while more bytes may still belong to the answer. A
/// `TOP n 5` of a message of megabytes is answered as soon as its first
/// kilobytes are in, not when its last byte is.
pub fn head_of_prefix(prefix: &[u8], lines: u32) -> Option<&[u8]> {
    head_len(prefix, lines, false).map(|end| &prefix[..end])
}

/// How many of `bytes` make the header, the blank line and the first
/// `lines` body lines: for a `whole` message at most all of it; for the
/// first bytes of one, `None` until they hold all of those (a line not
/// yet ended may be longer, and more lines may follow).
fn head_len(bytes: &[u8], lines: u32, whole: bool) -> Option<usize> {
    let mut in_body = false;
    let mut body_lines = 0u32;
    let mut end = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if in_body && body_lines >= lines {
            return Some(end);
        }
        if !whole && !line.ends_with(b"\n") {
            return None;
        }
        if in_body {
            body_lines += 1;
        } else if line == b"\r\n" || line == b"\n" {
            in_body = true;
        }
        end += line.len();
    }
    (whole || (in_body && body_lines >= lines)).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-at-a-time definition [`encode_body`] must match.
    fn encode_reference(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at_line_start = true;
        let mut prev = 0u8;
        for &b in body {
            if at_line_start && b == b'.' {
                out.push(b'.');
            }
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            at_line_start = b == b'\n';
            prev = b;
        }
        if !body.is_empty() && !at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    proptest! {
        /// Whatever prefix it is given, an answer is the whole message's
        /// own `head`.
        #[test]
        fn a_head_from_a_prefix_is_the_whole_messages_head(
            message in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a')], 0..200),
            cut in 0usize..200,
            lines in 0u32..6,
        ) {
            let prefix = &message[..cut.min(message.len())];
            if let Some(h) = head_of_prefix(prefix, lines) {
                prop_assert_eq!(h, &head(&message, lines)[..]);
            }
        }

        #[test]
        fn encode_matches_the_bytewise_definition(
            body in proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..300)
        ) {
            let mut out = Vec::new();
            encode_body(&body, &mut out);
            prop_assert_eq!(out, encode_reference(&body));
        }

        #[test]
        fn encoding_in_pieces_matches_the_whole(
            body in proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut e = BodyEncoder::default();
            let mut out = Vec::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([body.len()]) {
                e.feed(&body[from..c], &mut out);
                from = c;
            }
            e.finish(&mut out);
            prop_assert_eq!(out, encode_reference(&body));
        }
    }

    fn encode(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_body(body, &mut out);
        out
    }

    fn decode(wire: &[u8]) -> (Vec<u8>, Progress) {
        let mut d = BodyDecoder::new(1 << 20);
        let p = d.feed(wire).unwrap();
        (d.into_body(), p)
    }

    #[test]
    fn top_from_a_cached_body() {
        let m = b"From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(head(m, 0), b"From: a\r\nSubject: s\r\n\r\n");
        assert_eq!(head(m, 2), b"From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\n");
        assert_eq!(head(m, 100), m);
        // No blank line: it is all headers.
        assert_eq!(head(b"X: y\r\n", 3), b"X: y\r\n");
        // A body that starts with the blank line has no headers.
        assert_eq!(head(b"\r\nbody\r\nmore\r\n", 1), b"\r\nbody\r\n");
    }

    #[test]
    fn top_from_the_first_bytes_of_a_message() {
        let m = b"From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\nl3\r\n";
        // The header alone, then with a line cut short: not yet.
        assert_eq!(head_of_prefix(&m[..20], 0), None);
        assert_eq!(head_of_prefix(&m[..26], 1), None);
        assert_eq!(
            head_of_prefix(&m[..23], 0),
            Some(&b"From: a\r\nSubject: s\r\n\r\n"[..])
        );
        assert_eq!(
            head_of_prefix(&m[..31], 2),
            Some(&b"From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\n"[..])
        );
        // More lines asked than held: the rest may still come.
        assert_eq!(head_of_prefix(m, 5), None);
    }

    #[test]
    fn stuffs_and_terminates() {
        assert_eq!(encode(b""), b".\r\n");
        assert_eq!(
            encode(b"a\r\n.b\r\n..\r\n.\r\n"),
            b"a\r\n..b\r\n...\r\n..\r\n.\r\n"
        );
        assert_eq!(encode(b".x\n\ny"), b"..x\r\n\r\ny\r\n.\r\n");
    }

    #[test]
    fn unstuffs_and_stops_at_terminator() {
        let (body, p) = decode(b"a\r\n..b\r\n...\r\n..\r\n.\r\n+OK next\r\n");
        assert_eq!(body, b"a\r\n.b\r\n..\r\n.\r\n");
        assert_eq!(
            p,
            Progress {
                consumed: 20,
                done: true
            }
        );
    }

    #[test]
    fn tolerates_lone_lf() {
        let (body, p) = decode(b"a\n.b\n\n.\n");
        assert_eq!(body, b"a\r\nb\r\n\r\n");
        assert!(p.done);
    }

    #[test]
    fn keeps_lone_cr_and_8bit() {
        let body = b"\xff\x00\rx\r\r\n.\r\r\n";
        let (got, p) = decode(&encode(body));
        assert!(p.done);
        assert_eq!(got, body);
    }

    #[test]
    fn byte_at_a_time() {
        let body = b"From: a\r\n.\r\n..\r\n.x\r\n\r\nend\r\n";
        let wire = encode(body);
        let mut d = BodyDecoder::new(100);
        for (i, b) in wire.iter().enumerate() {
            let p = d.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(p.done, i == wire.len() - 1);
            assert_eq!(p.consumed, 1);
        }
        assert_eq!(d.into_body(), body);
    }

    #[test]
    fn cap_is_enforced() {
        let mut d = BodyDecoder::new(10);
        assert!(!d.feed(b"0123456789").unwrap().done);
        assert_eq!(d.feed(b"\r\n"), Err(BodyError::TooLarge { max: 10 }));
        let mut d = BodyDecoder::new(12);
        assert!(d.feed(b"0123456789\r\n.\r\n").unwrap().done);
    }
}
