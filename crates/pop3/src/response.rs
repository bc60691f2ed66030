//! POP3 status lines: "+OK text" / "-ERR [CODE] text" (RFC 1939 §3,
//! RFC 2449 §8 extended response codes).
//!
//! Only the first line of a reply is a status line; a multi-line body
//! follows for some commands (see [`crate::multiline`]).
//!
//! Parsing is liberal: the indicator is matched case-insensitively, the text
//! is kept as bytes (servers send 8-bit greetings), and a bracketed prefix is
//! taken as a response code only if it has RFC 2449's shape (no spaces or
//! control characters inside the brackets), so "+OK [some text]" keeps its
//! text. Codes are recognised after `+OK` as well as `-ERR`.

use std::fmt;

use crate::text::{lossy, push_no_eol, quote};

/// The status indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `+OK`
    Ok,
    /// `-ERR`
    Err,
}

/// An RFC 2449 extended response code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespCode {
    /// `[IN-USE]`: the mailbox is locked by another session.
    InUse,
    /// `[LOGIN-DELAY]`: logging in too often.
    LoginDelay,
    /// `[AUTH]` (RFC 3206): the credentials were wrong.
    Auth,
    /// `[SYS/TEMP]` (RFC 3206): a temporary server problem; try again later.
    SysTemp,
    /// `[SYS/PERM]` (RFC 3206): a permanent server problem.
    SysPerm,
    /// Any other code, as sent (without the brackets).
    Other(String),
}

impl RespCode {
    /// The code as written between the brackets.
    pub fn as_str(&self) -> &str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::LoginDelay => "LOGIN-DELAY",
            RespCode::Auth => "AUTH",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::Other(s) => s,
        }
    }

    /// Recognises a code (case-insensitively), or `None` if `raw` does not
    /// have the RFC 2449 shape `level *("/" level)`, where a level is one or
    /// more printable ASCII characters other than space, "/" and "]".
    pub fn parse(raw: &[u8]) -> Option<RespCode> {
        let level_ok =
            |l: &[u8]| !l.is_empty() && l.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b']');
        if !raw.split(|&b| b == b'/').all(level_ok) {
            return None;
        }
        let upper = raw.to_ascii_uppercase();
        Some(match &upper[..] {
            b"IN-USE" => RespCode::InUse,
            b"LOGIN-DELAY" => RespCode::LoginDelay,
            b"AUTH" => RespCode::Auth,
            b"SYS/TEMP" => RespCode::SysTemp,
            b"SYS/PERM" => RespCode::SysPerm,
            // The shape check above made it printable ASCII.
            _ => RespCode::Other(String::from_utf8_lossy(raw).into_owned()),
        })
    }
}

/// The first line of a POP3 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub status: Status,
    pub code: Option<RespCode>,
    /// The human-readable text after the indicator (and code), as bytes.
    pub text: Vec<u8>,
}

/// A line that is not a POP3 status line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("empty status line")]
    Empty,
    #[error("not a POP3 status line (expected +OK or -ERR): {0}")]
    BadStatus(String),
}

impl StatusLine {
    /// `+OK text`.
    pub fn ok(text: impl Into<Vec<u8>>) -> Self {
        StatusLine {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }

    /// `-ERR [code] text`.
    pub fn err(code: Option<RespCode>, text: impl Into<Vec<u8>>) -> Self {
        StatusLine {
            status: Status::Err,
            code,
            text: text.into(),
        }
    }

    /// Parses a status line given without its CRLF / LF.
    pub fn parse(line: &[u8]) -> Result<Self, ResponseError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(ResponseError::Empty);
        }
        let starts = |p: &[u8]| line.len() >= p.len() && line[..p.len()].eq_ignore_ascii_case(p);
        let (status, rest) = if starts(b"+OK") {
            (Status::Ok, &line[3..])
        } else if starts(b"-ERR") {
            (Status::Err, &line[4..])
        } else {
            return Err(ResponseError::BadStatus(quote(line)));
        };
        let rest = match rest.first() {
            None => rest,
            Some(b' ' | b'\t') => &rest[1..],
            Some(_) => return Err(ResponseError::BadStatus(quote(line))),
        };
        let (code, text) = split_code(rest);
        Ok(StatusLine {
            status,
            code,
            text: text.to_vec(),
        })
    }

    /// Appends "+OK [CODE] text\r\n" (code and text only if present). CR and
    /// LF inside the text are dropped.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.status {
            Status::Ok => b"+OK",
            Status::Err => b"-ERR",
        });
        if let Some(code) = &self.code {
            out.extend_from_slice(b" [");
            push_no_eol(out, code.as_str().as_bytes());
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            push_no_eol(out, &self.text);
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Whether the status is `+OK`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The text, lossily as printable ASCII (for logs and errors).
    pub fn text_lossy(&self) -> String {
        lossy(&self.text)
    }
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_ok() { "+OK" } else { "-ERR" })?;
        if let Some(code) = &self.code {
            write!(f, " [{}]", code.as_str())?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text_lossy())?;
        }
        Ok(())
    }
}

/// Splits "[CODE] text" into its code and text, if it has a well-formed code.
fn split_code(rest: &[u8]) -> (Option<RespCode>, &[u8]) {
    if rest.first() != Some(&b'[') {
        return (None, rest);
    }
    let Some(close) = rest.iter().position(|&b| b == b']') else {
        return (None, rest);
    };
    let Some(code) = RespCode::parse(&rest[1..close]) else {
        return (None, rest);
    };
    let text = &rest[close + 1..];
    let text = match text.first() {
        Some(b' ') => &text[1..],
        _ => text,
    };
    (Some(code), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecot_lines() {
        let s = StatusLine::parse(b"+OK Dovecot (Debian) ready.").unwrap();
        assert_eq!(s, StatusLine::ok("Dovecot (Debian) ready."));
        let s = StatusLine::parse(b"-ERR [AUTH] Authentication failed.\r").unwrap();
        assert_eq!(
            s,
            StatusLine::err(Some(RespCode::Auth), "Authentication failed.")
        );
        assert_eq!(StatusLine::parse(b"+OK").unwrap(), StatusLine::ok(""));
        let s = StatusLine::parse(b"-ERR [IN-USE] Mailbox is locked").unwrap();
        assert_eq!(s.code, Some(RespCode::InUse));
        let s = StatusLine::parse(b"-err [sys/temp]").unwrap();
        assert_eq!((s.code, s.text), (Some(RespCode::SysTemp), vec![]));
        let s = StatusLine::parse(b"-ERR [LOGIN-DELAY] wait").unwrap();
        assert_eq!(s.code, Some(RespCode::LoginDelay));
        let s = StatusLine::parse(b"-ERR [SYS/PERM] gone").unwrap();
        assert_eq!(s.code, Some(RespCode::SysPerm));
        let s = StatusLine::parse(b"-ERR [X-FOO/BAR] x").unwrap();
        assert_eq!(s.code, Some(RespCode::Other("X-FOO/BAR".into())));
    }

    #[test]
    fn bracketed_text_is_not_a_code() {
        let s = StatusLine::parse(b"+OK [some text] here").unwrap();
        assert_eq!(s, StatusLine::ok("[some text] here"));
        let s = StatusLine::parse(b"+OK [unclosed").unwrap();
        assert_eq!(s.text, b"[unclosed");
    }

    #[test]
    fn refuses_non_status_lines() {
        assert!(StatusLine::parse(b"").is_err());
        assert!(StatusLine::parse(b"+OKAY").is_err());
        assert!(StatusLine::parse(b"* OK IMAP").is_err());
        assert!(StatusLine::parse(b"+ ").is_err());
    }

    #[test]
    fn encodes() {
        let mut out = Vec::new();
        StatusLine::err(Some(RespCode::InUse), "locked").encode(&mut out);
        StatusLine::ok("").encode(&mut out);
        assert_eq!(out, b"-ERR [IN-USE] locked\r\n+OK\r\n");
    }
}
