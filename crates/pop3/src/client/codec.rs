//! The sans-IO client codec.
//!
//! The codec knows which replies it is waiting for (a queue: the greeting,
//! then one entry per command sent), reads a status line for each, and, when
//! the reply is `+OK` to a command whose reply is multi-line, hands the
//! following bytes to a [`BodyDecoder`] until the "." line.
//!
//! Memory is bounded: an unfinished status line is held up to
//! [`CLIENT_MAX_RESPONSE_LINE`] octets, a body up to `max_message` bytes, and
//! body bytes are decoded as they arrive instead of being buffered raw.
//! Completed responses wait in a queue until [`ClientCodec::next_response`].
//!
//! After an error the codec is poisoned: the byte stream's framing is lost,
//! so every later `feed` fails too.

use std::collections::VecDeque;

use super::ClientError;
use crate::command::{Command, XPROGRESS};
use crate::multiline::BodyDecoder;
use crate::response::{RespCode, StatusLine};
use crate::text::{find_lf, quote, strip_eol};

/// Longest status line the client accepts, in octets including CRLF.
///
/// RFC 2449 caps it at 512 ([`crate::MAX_RESPONSE_LINE`]) and that is what
/// our own servers keep to, but real servers send longer greetings and
/// `-ERR` texts (quoting paths, long host names, banner ads). Refusing those
/// would make mail unreachable for no safety gain, so the client accepts up
/// to 4 KiB: still a hard cap, and small next to a message body.
pub const CLIENT_MAX_RESPONSE_LINE: usize = 4096;

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: StatusLine,
    /// The multi-line body, un-stuffed, CRLF line ends, without the "."
    /// line; `None` for single-line replies and for `-ERR`.
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Single,
    Multi,
    /// `XAPPEND`'s outcome, after its progress lines.
    Outcome,
}

#[derive(Debug)]
enum State {
    Status,
    Body {
        status: StatusLine,
        decoder: BodyDecoder,
    },
}

/// sans-IO POP3 client codec (see the module docs).
#[derive(Debug)]
pub struct ClientCodec {
    max_message: usize,
    line_cap: usize,
    /// Unprocessed input: at most a partial status line between feeds.
    buf: Vec<u8>,
    expected: VecDeque<Expect>,
    state: State,
    ready: VecDeque<Response>,
    poisoned: bool,
}

impl ClientCodec {
    /// A codec that refuses multi-line replies over `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        ClientCodec {
            max_message,
            line_cap: CLIENT_MAX_RESPONSE_LINE,
            buf: Vec::new(),
            expected: VecDeque::new(),
            state: State::Status,
            ready: VecDeque::new(),
            poisoned: false,
        }
    }

    /// Expects the server greeting (a single status line) next.
    pub fn expect_greeting(&mut self) {
        self.expected.push_back(Expect::Greeting);
    }

    /// Encodes `cmd` into `out` and queues the expectation of its reply.
    pub fn send(&mut self, cmd: &Command, out: &mut Vec<u8>) {
        cmd.encode(out);
        self.expected.push_back(if cmd.expects_multiline() {
            Expect::Multi
        } else {
            Expect::Single
        });
    }

    /// Queues the expectation of a reply to a command sent some other way
    /// (a proxy forwarding a line it could not parse, for instance):
    /// `multiline` says whether a `+OK` reply is followed by a body.
    pub fn expect(&mut self, multiline: bool) {
        self.expected.push_back(if multiline {
            Expect::Multi
        } else {
            Expect::Single
        });
    }

    /// Queues the expectation of `XAPPEND`'s outcome: a single line, before
    /// which any number of `+OK [XPROGRESS]` lines may come (each is a
    /// response of its own, and the outcome is still awaited after it).
    pub fn expect_outcome(&mut self) {
        self.expected.push_back(Expect::Outcome);
    }

    /// Number of replies still awaited (including one being received).
    pub fn outstanding(&self) -> usize {
        self.expected.len()
    }

    /// Octets received but not yet part of a complete response or body.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a multi-line body is being received; `(bytes so far)`.
    pub fn body_progress(&self) -> Option<usize> {
        match &self.state {
            State::Body { decoder, .. } => Some(decoder.len()),
            State::Status => None,
        }
    }

    /// Feeds bytes from the server. Complete responses become available
    /// from [`ClientCodec::next_response`]. Errors poison the codec.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        if self.poisoned {
            return Err(ClientError::Broken);
        }
        let r = self.process(bytes);
        if r.is_err() {
            self.poisoned = true;
            self.buf = Vec::new();
            self.state = State::Status;
        }
        r
    }

    /// The next complete response, oldest first.
    pub fn next_response(&mut self) -> Option<Response> {
        self.ready.pop_front()
    }

    fn process(&mut self, mut input: &[u8]) -> Result<(), ClientError> {
        loop {
            match &mut self.state {
                State::Body { decoder, .. } => {
                    // Decode straight from the input: body bytes are never
                    // held raw.
                    let p = decoder.feed(input)?;
                    input = &input[p.consumed..];
                    if !p.done {
                        return Ok(());
                    }
                    let State::Body { status, decoder } =
                        std::mem::replace(&mut self.state, State::Status)
                    else {
                        unreachable!("matched above")
                    };
                    self.expected.pop_front();
                    self.ready.push_back(Response {
                        status,
                        body: Some(decoder.into_body()),
                    });
                }
                State::Status => {
                    if input.is_empty() && self.buf.is_empty() {
                        return Ok(());
                    }
                    let Some(&expect) = self.expected.front() else {
                        let mut junk = std::mem::take(&mut self.buf);
                        junk.extend_from_slice(&input[..input.len().min(64)]);
                        return Err(ClientError::Protocol(format!(
                            "unexpected data from the server with no command outstanding: \"{}\"",
                            quote(&junk)
                        )));
                    };
                    // Complete the status line from `buf` + `input`.
                    let line: Vec<u8> = match find_lf(input) {
                        Some(i) => {
                            if self.buf.len() + i + 1 > self.line_cap {
                                return Err(ClientError::LineTooLong);
                            }
                            let mut line = std::mem::take(&mut self.buf);
                            line.extend_from_slice(&input[..=i]);
                            input = &input[i + 1..];
                            line
                        }
                        None => {
                            if self.buf.len() + input.len() >= self.line_cap {
                                return Err(ClientError::LineTooLong);
                            }
                            self.buf.extend_from_slice(input);
                            return Ok(());
                        }
                    };
                    let status = StatusLine::parse(strip_eol(&line))
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    if expect == Expect::Greeting && !status.is_ok() {
                        // A -ERR greeting is a legal "go away"; surface it.
                        tracing::debug!(%status, "POP3 server refused the connection");
                    }
                    if expect == Expect::Multi && status.is_ok() {
                        self.state = State::Body {
                            status,
                            decoder: BodyDecoder::new(self.max_message),
                        };
                    } else {
                        let progress = matches!(&status.code,
                            Some(RespCode::Other(c)) if c == XPROGRESS);
                        if !(expect == Expect::Outcome && progress && status.is_ok()) {
                            self.expected.pop_front();
                        }
                        self.ready.push_back(Response { status, body: None });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::RespCode;

    #[test]
    fn an_xappend_outcome_comes_after_any_number_of_progress_lines() {
        let mut c = ClientCodec::new(1000);
        c.expect_outcome();
        // All in one read: the progress lines must not use the outcome up.
        c.feed(b"+OK [XPROGRESS] 1 3\r\n+OK [XPROGRESS] 3 3\r\n-ERR [SYS/TEMP] lost\r\n")
            .unwrap();
        let r: Vec<Response> = std::iter::from_fn(|| c.next_response()).collect();
        assert_eq!(r.len(), 3);
        assert_eq!(r[2].status.code, Some(RespCode::SysTemp));
        assert_eq!(c.outstanding(), 0);
        // Nothing more is awaited: a fourth line is out of turn.
        assert!(c.feed(b"+OK [XPROGRESS] 3 3\r\n").is_err());
    }

    #[test]
    fn greeting_then_pipelined_replies() {
        let mut c = ClientCodec::new(1000);
        c.expect_greeting();
        let mut out = Vec::new();
        for cmd in [
            Command::Stat,
            Command::Retr(1),
            Command::Retr(9),
            Command::List(None),
        ] {
            c.send(&cmd, &mut out);
        }
        assert_eq!(out, b"STAT\r\nRETR 1\r\nRETR 9\r\nLIST\r\n");
        let wire: &[u8] = b"+OK hi <1.2@x>\r\n+OK 1 5\r\n+OK\r\n..a\r\n.\r\n-ERR [SYS/TEMP] no\r\n+OK\r\n1 5\r\n.\r\n";
        for chunk in wire.chunks(3) {
            c.feed(chunk).unwrap();
        }
        let r: Vec<Response> = std::iter::from_fn(|| c.next_response()).collect();
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].status.text, b"hi <1.2@x>");
        assert_eq!(r[1].body, None);
        assert_eq!(r[2].body.as_deref(), Some(&b".a\r\n"[..]));
        assert_eq!(r[3].status.code, Some(RespCode::SysTemp));
        assert_eq!(r[3].body, None);
        assert_eq!(r[4].body.as_deref(), Some(&b"1 5\r\n"[..]));
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn unsolicited_data_is_an_error_and_poisons() {
        let mut c = ClientCodec::new(1000);
        assert!(matches!(c.feed(b"+OK\r\n"), Err(ClientError::Protocol(_))));
        c.expect_greeting();
        assert!(matches!(c.feed(b"+OK\r\n"), Err(ClientError::Broken)));
    }

    #[test]
    fn oversized_body_fails_early() {
        let mut c = ClientCodec::new(100);
        let mut out = Vec::new();
        c.send(&Command::Retr(1), &mut out);
        c.feed(b"+OK\r\n").unwrap();
        c.feed(&[b'a'; 100]).unwrap();
        assert!(matches!(
            c.feed(b"a"),
            Err(ClientError::MessageTooLarge { max: 100 })
        ));
    }

    #[test]
    fn long_status_line_is_refused_without_buffering() {
        let mut c = ClientCodec::new(100);
        c.expect_greeting();
        c.feed(&[b'+'; 4000]).unwrap();
        assert!(matches!(
            c.feed(&[b'x'; 100]),
            Err(ClientError::LineTooLong)
        ));
        assert_eq!(c.buffered(), 0);
    }

    #[test]
    fn bad_status_line_is_a_protocol_error() {
        let mut c = ClientCodec::new(100);
        c.expect_greeting();
        assert!(matches!(
            c.feed(b"* OK IMAP4rev1\r\n"),
            Err(ClientError::Protocol(_))
        ));
    }
}
