//! The server side of POP3: commands in, replies out.
//!
//! Used by the client proxy (which plays a POP3 server to an unchanged mail
//! client) and by the model mail server. [`ServerCodec`] splits the client's
//! byte stream into bounded command lines and parses them; the `write_*`
//! functions encode replies. No I/O happens here.
//!
//! Pipelining (RFC 2449 PIPELINING) needs nothing special: feed whatever
//! arrived and call [`ServerCodec::next_command`] until it returns `None`.
//! After `STLS`, [`ServerCodec::buffered`] tells the caller whether the
//! client sent bytes that would have to cross the TLS boundary in clear
//! text (RFC 2595 §4: such data must be refused, not carried over).

use crate::MAX_COMMAND_LINE;
use crate::command::{Command, CommandError};
use crate::line::LineBuffer;
use crate::response::StatusLine;

/// Server side: feed bytes from the client, get commands; encode replies.
#[derive(Debug)]
pub struct ServerCodec {
    lines: LineBuffer,
}

impl Default for ServerCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCodec {
    /// A codec with the [`MAX_COMMAND_LINE`] cap.
    pub fn new() -> Self {
        Self::with_cap(MAX_COMMAND_LINE)
    }

    /// A codec with another command line cap (octets including CRLF).
    pub fn with_cap(cap: usize) -> Self {
        ServerCodec {
            lines: LineBuffer::new(cap),
        }
    }

    /// Adds bytes received from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// The next complete command, an error to answer with "-ERR {error}",
    /// or `None` if more input is needed. A too-long line yields
    /// `Err(CommandError::LineTooLong)` once.
    pub fn next_command(&mut self) -> Option<Result<Command, CommandError>> {
        Some(match self.lines.next_line()? {
            Ok(line) => Command::parse(&line),
            Err(_) => Err(CommandError::LineTooLong),
        })
    }

    /// Octets received and not yet returned as commands.
    pub fn buffered(&self) -> usize {
        self.lines.buffered()
    }

    /// Takes the octets not yet returned as commands.
    pub fn take_rest(&mut self) -> Vec<u8> {
        self.lines.take_rest()
    }
}

/// Appends a single-line reply.
pub fn write_status(out: &mut Vec<u8>, s: &StatusLine) {
    s.encode(out);
}

/// Appends a `+OK` line, then `body` dot-stuffed and terminated (see
/// [`crate::multiline::encode_body`] for line-end normalisation).
pub fn write_multiline(out: &mut Vec<u8>, s: &StatusLine, body: &[u8]) {
    s.encode(out);
    crate::multiline::encode_body(body, out);
}

/// Appends a `+OK` line, one line per entry ("1 120", "TOP", ...), each
/// dot-stuffed and CRLF-terminated, then ".\r\n". CR/LF inside an entry are
/// dropped. For LIST, UIDL and CAPA.
pub fn write_listing(out: &mut Vec<u8>, s: &StatusLine, lines: &[Vec<u8>]) {
    s.encode(out);
    for line in lines {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        crate::text::push_no_eol(out, line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_commands_and_errors() {
        let mut c = ServerCodec::new();
        c.feed(b"USER a\r\nPASS b c\nRETR x\r\nST");
        assert_eq!(c.next_command(), Some(Ok(Command::User(b"a".to_vec()))));
        assert_eq!(c.next_command(), Some(Ok(Command::Pass(b"b c".to_vec()))));
        assert!(matches!(
            c.next_command(),
            Some(Err(CommandError::InvalidNumber { .. }))
        ));
        assert_eq!(c.next_command(), None);
        assert_eq!(c.buffered(), 2);
        c.feed(b"AT\r\n");
        assert_eq!(c.next_command(), Some(Ok(Command::Stat)));
    }

    #[test]
    fn long_line_is_one_error() {
        let mut c = ServerCodec::new();
        c.feed(&vec![b'X'; 2000]);
        c.feed(b"\r\nNOOP\r\n");
        assert_eq!(c.next_command(), Some(Err(CommandError::LineTooLong)));
        assert_eq!(c.next_command(), Some(Ok(Command::Noop)));
        assert_eq!(c.next_command(), None);
    }

    #[test]
    fn writes_replies() {
        let mut out = Vec::new();
        write_listing(
            &mut out,
            &StatusLine::ok("2 messages"),
            &[b"1 120".to_vec(), b"2 7".to_vec()],
        );
        write_multiline(&mut out, &StatusLine::ok(""), b".hi\n");
        assert_eq!(
            out,
            b"+OK 2 messages\r\n1 120\r\n2 7\r\n.\r\n+OK\r\n..hi\r\n.\r\n"
        );
    }

    #[test]
    fn bytes_after_stls_are_visible() {
        let mut c = ServerCodec::new();
        c.feed(b"STLS\r\nUSER evil\r\n");
        assert_eq!(c.next_command(), Some(Ok(Command::Stls)));
        assert_eq!(c.buffered(), 11);
    }
}
