//! `XSEARCH`: one text criterion of an IMAP `SEARCH`, asked of the servers.
//!
//! Why it exists: the client proxy's IMAP front answers a `SEARCH` on flags,
//! sizes, dates and numbers from its own book, but a search of the mail's
//! text (`FROM`, `SUBJECT`, `BODY`, `HEADER`...) needs every message whole,
//! and the proxy holds only those it fetched. The IMAP server holds them all
//! and searches them where they lie, so the front asks each text criterion
//! of the servers, one `XSEARCH` per criterion, and combines the answers
//! with its own (`NOT`, `OR`, flags) itself. The command travels the same
//! path as `XSTORE`: the front's POP3 session in process, the line to the
//! edge (`causeway_proto::session::Op::Search`), the edge's worker, a relay,
//! and finally the edge's IMAP session, which sends `UID SEARCH`. A POP3
//! server cannot search and is never asked.
//!
//! On the POP3 line a criterion is `XSEARCH FIELD =hex` (`HEADER =hex
//! =hex`, name then value): the text is UTF-8 of any kind, spaces and
//! quotes included, and in hex it can neither end the line nor read as a
//! second argument. The answer is a multi-line listing of the numbers of
//! the messages that match, one per line.

use serde::{Deserialize, Serialize};

/// The longest text one criterion carries (a header's name and value
/// together): in hex, with the rest of the line, well inside
/// [`crate::MAX_COMMAND_LINE`].
pub const MAX_SEARCH_TEXT: usize = 200;

/// Where a criterion looks (RFC 3501 §6.4.4): a header field, the body,
/// or the whole message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TextField {
    From,
    To,
    Cc,
    Bcc,
    Subject,
    /// The body, after the header.
    Body,
    /// The header and the body.
    Text,
    /// The header field of this name.
    Header(String),
}

/// One text criterion: the messages whose `field` contains `value`, as the
/// server judges it (case-insensitively, by RFC 3501).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TextKey {
    pub field: TextField,
    pub value: String,
}

/// A criterion longer than [`MAX_SEARCH_TEXT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a search text of {0} octets; at most {MAX_SEARCH_TEXT} are searched for")]
pub struct TooLong(pub usize);

/// Why an `XSEARCH` line's arguments name no criterion (the command
/// parser words it for the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadCriterion {
    Missing(&'static str),
    Invalid { what: &'static str, got: String },
    Noise,
    TooLong,
}

impl TextKey {
    /// The criterion, if its text is short enough to be asked.
    pub fn new(field: TextField, value: String) -> Result<Self, TooLong> {
        let len = value.len()
            + match &field {
                TextField::Header(name) => name.len(),
                _ => 0,
            };
        if len > MAX_SEARCH_TEXT {
            return Err(TooLong(len));
        }
        Ok(Self { field, value })
    }

    /// The criterion an `XSEARCH` line's arguments name.
    pub(crate) fn parse<'a>(
        mut args: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Self, BadCriterion> {
        let field = (args.next()).ok_or(BadCriterion::Missing("search field"))?;
        let mut text = |what| text(args.next(), what);
        let field = match field.to_ascii_uppercase().as_slice() {
            b"FROM" => TextField::From,
            b"TO" => TextField::To,
            b"CC" => TextField::Cc,
            b"BCC" => TextField::Bcc,
            b"SUBJECT" => TextField::Subject,
            b"BODY" => TextField::Body,
            b"TEXT" => TextField::Text,
            b"HEADER" => TextField::Header(text("header name")?),
            _ => {
                return Err(BadCriterion::Invalid {
                    what: "search field",
                    got: crate::text::quote(field),
                });
            }
        };
        let value = text("search text")?;
        if args.next().is_some() {
            return Err(BadCriterion::Noise);
        }
        Self::new(field, value).map_err(|_| BadCriterion::TooLong)
    }

    /// The arguments of its `XSEARCH` line, each after a space.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let name = match &self.field {
            TextField::From => "FROM",
            TextField::To => "TO",
            TextField::Cc => "CC",
            TextField::Bcc => "BCC",
            TextField::Subject => "SUBJECT",
            TextField::Body => "BODY",
            TextField::Text => "TEXT",
            TextField::Header(_) => "HEADER",
        };
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        if let TextField::Header(h) = &self.field {
            push_hex(out, h);
        }
        push_hex(out, &self.value);
    }
}

fn push_hex(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b" =");
    for b in s.bytes() {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// A `=hex` argument, as UTF-8 text.
fn text(arg: Option<&[u8]>, what: &'static str) -> Result<String, BadCriterion> {
    let arg = arg.ok_or(BadCriterion::Missing(what))?;
    let bad = || BadCriterion::Invalid {
        what,
        got: crate::text::quote(arg),
    };
    let hex = arg.strip_prefix(b"=").ok_or_else(bad)?;
    if hex.len() % 2 != 0 || hex.len() / 2 > MAX_SEARCH_TEXT {
        return Err(bad());
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = hex
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Its `XSEARCH` line, without CRLF.
    fn line(key: &TextKey) -> Vec<u8> {
        let mut line = b"XSEARCH".to_vec();
        key.encode(&mut line);
        line
    }

    fn parse(line: &[u8]) -> Result<TextKey, BadCriterion> {
        let args = line.strip_prefix(b"XSEARCH").unwrap_or(line);
        TextKey::parse(args.split(|&b| b == b' ').filter(|a| !a.is_empty()))
    }

    fn round_trip(key: TextKey) {
        let line = line(&key);
        assert!(line.len() + 2 <= crate::MAX_COMMAND_LINE, "{}", line.len());
        assert!(!line.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)));
        assert_eq!(parse(&line), Ok(key));
    }

    #[test]
    fn every_field_and_any_text_cross_the_line_unchanged() {
        for field in [
            TextField::From,
            TextField::To,
            TextField::Cc,
            TextField::Bcc,
            TextField::Subject,
            TextField::Body,
            TextField::Text,
            TextField::Header(String::new()),
            TextField::Header("X-Mailer".to_owned()),
        ] {
            for value in ["", "plain", "two words \"quoted\"\r\nA1 LOGOUT", "Grüße 🌍"] {
                round_trip(TextKey::new(field.clone(), value.to_owned()).unwrap());
            }
        }
        let longest = "é".repeat(MAX_SEARCH_TEXT / 4) + &"x".repeat(MAX_SEARCH_TEXT / 2);
        round_trip(TextKey::new(TextField::Header("x".repeat(0)), longest).unwrap());
    }

    #[test]
    fn too_long_or_malformed_criteria_are_refused() {
        let long = "x".repeat(MAX_SEARCH_TEXT - 3);
        assert_eq!(
            TextKey::new(TextField::Header("Subj".to_owned()), long.clone()),
            Err(TooLong(MAX_SEARCH_TEXT + 1))
        );
        assert!(TextKey::new(TextField::Subject, long).is_ok());
        for bad in [
            &b"XSEARCH"[..],
            b"XSEARCH SUBJECT",
            b"XSEARCH SUBJECT 6869",
            b"XSEARCH SUBJECT =686",
            b"XSEARCH SUBJECT =zz",
            b"XSEARCH SUBJECT =ff",
            b"XSEARCH SUBJECT =68 =69",
            b"XSEARCH KEYWORD =68",
            b"XSEARCH HEADER =68",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let hex = "=".to_owned() + &"61".repeat(MAX_SEARCH_TEXT + 1);
        assert!(parse(format!("XSEARCH BODY {hex}").as_bytes()).is_err());
        assert_eq!(
            parse(b"XSEARCH subject =4869"),
            Ok(TextKey::new(TextField::Subject, "Hi".to_owned()).unwrap())
        );
    }
}
