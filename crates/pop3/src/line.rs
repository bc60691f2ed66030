//! A bounded line splitter.
//!
//! POP3 commands and status lines are CRLF-terminated lines with a length
//! cap. A peer that never sends the line end must not make us buffer
//! forever, so the splitter keeps at most `cap` octets of an unfinished line;
//! the rest of an over-long line is dropped as it arrives and the line is
//! reported once as [`LineTooLong`]. Lines that fit come out without their
//! terminator; a lone LF is accepted as a terminator (liberal input).

/// A line exceeded the cap (octets including its line end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line too long")]
pub struct LineTooLong;

/// Bounded line splitter: accumulates input, yields lines (without CRLF /
/// lone LF); a line over `cap` is an error, never buffered.
#[derive(Debug)]
pub struct LineBuffer {
    /// Unconsumed input from `start`: complete lines, then at most `cap`
    /// octets of the unfinished line.
    buf: Vec<u8>,
    start: usize,
    cap: usize,
    /// Length of the unfinished line at the end of `buf`.
    tail: usize,
    /// Dropping input up to the next LF (the current line is too long).
    dropping: bool,
    /// The too-long line being dropped has already been reported.
    reported: bool,
}

impl LineBuffer {
    /// A splitter for lines of at most `cap` octets including the line end.
    pub fn new(cap: usize) -> Self {
        LineBuffer {
            buf: Vec::new(),
            start: 0,
            cap: cap.max(1),
            tail: 0,
            dropping: false,
            reported: false,
        }
    }

    /// Adds input. Never grows the unfinished line beyond the cap.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.dropping {
                let Some(i) = crate::text::find_lf(bytes) else {
                    return;
                };
                bytes = &bytes[i + 1..];
                self.dropping = false;
                if !self.reported {
                    // Close the truncated line: cap octets + LF is over the
                    // cap, so `next_line` reports it in order.
                    self.buf.push(b'\n');
                }
                self.reported = false;
                self.tail = 0;
                continue;
            }
            let room = self.cap - self.tail.min(self.cap);
            match crate::text::find_lf(bytes) {
                Some(i) if self.tail + i < self.cap => {
                    self.buf.extend_from_slice(&bytes[..=i]);
                    self.tail = 0;
                    bytes = &bytes[i + 1..];
                }
                Some(i) => {
                    // The line ends here but is too long: keep `cap` octets
                    // of it and a LF, so it is reported in order.
                    self.buf.extend_from_slice(&bytes[..room.min(i)]);
                    self.buf.push(b'\n');
                    self.tail = 0;
                    bytes = &bytes[i + 1..];
                }
                None => {
                    let keep = room.min(bytes.len());
                    self.buf.extend_from_slice(&bytes[..keep]);
                    self.tail += keep;
                    if keep < bytes.len() {
                        self.dropping = true;
                    }
                    return;
                }
            }
        }
    }

    /// The next complete line without its terminator, `Err(LineTooLong)`
    /// once per over-long line (as soon as it is known to be too long), or
    /// `None` if more input is needed.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineTooLong>> {
        let pending = &self.buf[self.start..];
        match crate::text::find_lf(pending) {
            Some(i) => {
                let line = &pending[..=i];
                let result = if line.len() > self.cap {
                    Err(LineTooLong)
                } else {
                    Ok(crate::text::strip_eol(line).to_vec())
                };
                self.start += i + 1;
                self.compact();
                Some(result)
            }
            None if self.tail >= self.cap => {
                // Unfinished but already too long: report now, drop the rest.
                let keep = self.buf.len() - self.tail;
                self.buf.truncate(keep);
                self.tail = 0;
                self.dropping = true;
                self.reported = true;
                self.compact();
                Some(Err(LineTooLong))
            }
            None => None,
        }
    }

    /// Octets held and not yet returned as lines.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes every held octet not yet returned (for a protocol switch such
    /// as STLS, where the rest belongs to another layer).
    pub fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start);
        self.buf.clear();
        self.start = 0;
        self.tail = 0;
        self.dropping = false;
        self.reported = false;
        rest
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(lb: &mut LineBuffer) -> Vec<Result<Vec<u8>, LineTooLong>> {
        std::iter::from_fn(|| lb.next_line()).collect()
    }

    #[test]
    fn splits_crlf_and_lone_lf() {
        let mut lb = LineBuffer::new(10);
        lb.feed(b"ab\r\ncd\nef");
        assert_eq!(lines(&mut lb), vec![Ok(b"ab".to_vec()), Ok(b"cd".to_vec())]);
        assert_eq!(lb.buffered(), 2);
        lb.feed(b"\r\n");
        assert_eq!(lines(&mut lb), vec![Ok(b"ef".to_vec())]);
        assert_eq!(lb.buffered(), 0);
    }

    #[test]
    fn cap_counts_the_crlf() {
        let mut lb = LineBuffer::new(5);
        lb.feed(b"abc\r\nabcd\r\nabc\n");
        assert_eq!(
            lines(&mut lb),
            vec![Ok(b"abc".to_vec()), Err(LineTooLong), Ok(b"abc".to_vec())]
        );
    }

    #[test]
    fn endless_line_is_reported_early_and_not_buffered() {
        let mut lb = LineBuffer::new(8);
        lb.feed(b"ok\n");
        for _ in 0..1000 {
            lb.feed(b"xxxxxxxxxxxxxxxxxxxxxxx");
            assert!(lb.buffered() <= 8 + 3);
        }
        assert_eq!(lb.next_line(), Some(Ok(b"ok".to_vec())));
        assert_eq!(lb.next_line(), Some(Err(LineTooLong)));
        assert_eq!(lb.next_line(), None);
        lb.feed(b"yyy\nnext\n");
        assert_eq!(lb.next_line(), Some(Ok(b"next".to_vec())));
        assert_eq!(lb.next_line(), None);
    }

    #[test]
    fn take_rest_returns_unread_bytes() {
        let mut lb = LineBuffer::new(100);
        lb.feed(b"STLS\r\n\x16\x03\x01");
        assert_eq!(lb.next_line(), Some(Ok(b"STLS".to_vec())));
        assert_eq!(lb.take_rest(), b"\x16\x03\x01".to_vec());
        assert_eq!(lb.buffered(), 0);
    }
}
