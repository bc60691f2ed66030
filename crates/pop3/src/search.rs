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
//! second argument. The IMAP front may add `IN name,name`: the servers
//! whose messages the folder shows, the only ones worth asking (a POP3
//! server is searched by the edge, which reads every message of it; see
//! [`TextKey::matches`]). Without it every server of the maildrop is
//! asked. The answer is a multi-line listing of the numbers of the
//! messages that match, one per line.

use serde::{Deserialize, Serialize};

/// The longest text one criterion carries (a header's name and value
/// together): in hex, with the rest of the line, well inside
/// [`crate::MAX_COMMAND_LINE`].
pub const MAX_SEARCH_TEXT: usize = 200;

/// Where a criterion looks (RFC 3501 §6.4.4): a header field, the body,
/// the whole message, or the day it was sent.
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
    /// The day of its `Date:` field (time and zone disregarded, as RFC
    /// 3501 says) against the criterion's day, `YYYY-MM-DD`
    /// (`SENTBEFORE`, `SENTON`, `SENTSINCE`).
    Sent(Sent),
}

/// How a message's day of sending compares with the criterion's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Sent {
    Before,
    On,
    Since,
}

/// A day of the calendar, as a `SENT*` criterion names it and a `Date:`
/// field gives it (no time, no zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Day {
    /// The day, if the numbers name one between the years 1 and 9999
    /// (a 31st of any month passes: a criterion's day only compares).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Day> {
        ((1..=9999).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day))
            .then_some(Day { year, month, day })
    }

    /// `YYYY-MM-DD`, the form a criterion carries.
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        Day::new(
            s[..4].parse().ok()?,
            s[5..7].parse().ok()?,
            s[8..].parse().ok()?,
        )
    }

    /// The day of an RFC 5322 date (`[Thu, ]1 Jan 2026 12:00:00 +0100`,
    /// comments and the obsolete two- and three-digit years too).
    fn of_date_field(value: &[u8]) -> Option<Day> {
        let text = std::str::from_utf8(value).ok()?;
        let mut clean = String::with_capacity(text.len());
        let mut depth = 0u32;
        for c in text.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => clean.push(' '),
                c if depth == 0 => clean.push(c),
                _ => {}
            }
        }
        let mut words = clean.split_ascii_whitespace().peekable();
        if words.peek()?.bytes().all(|b| b.is_ascii_alphabetic()) {
            words.next();
        }
        let day: u8 = words.next()?.parse().ok()?;
        let month = words.next()?;
        let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u8 + 1;
        let year = words.next()?;
        let year: u16 = match (year.len(), year.parse::<u16>().ok()?) {
            (2, y) if y < 50 => 2000 + y,
            (2 | 3, y) => 1900 + y,
            (4, y) => y,
            _ => return None,
        };
        Day::new(year, month, day)
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One text criterion: the messages whose `field` contains `value`, as the
/// server judges it (case-insensitively, by RFC 3501).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TextKey {
    pub field: TextField,
    pub value: String,
}

/// A criterion that cannot be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unaskable {
    #[error("a search text of {0} octets; at most {MAX_SEARCH_TEXT} are searched for")]
    TooLong(usize),
    #[error("{0:?} is not a day (YYYY-MM-DD)")]
    NotADay(String),
}

/// Why an `XSEARCH` line's arguments name no criterion (the command
/// parser words it for the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadCriterion {
    Missing(&'static str),
    Invalid { what: &'static str, got: String },
    Noise,
    TooLong,
}

/// The most servers an `IN` names: as many as a user may have
/// (`causeway_proto::user::MAX_SERVERS`).
const MAX_SERVERS_NAMED: usize = 16;

/// The servers an `XSEARCH` line can name: all of `servers`, or none
/// (every server is asked) when their names would not fit on the line
/// beside `key` or are not server names. Asking more servers than needed
/// costs time, never a wrong answer: the front keeps only the messages it
/// shows.
pub fn narrowed(key: &TextKey, servers: Vec<String>) -> Vec<String> {
    let mut line = b"XSEARCH".to_vec();
    key.encode(&mut line);
    push_servers(&mut line, &servers);
    let named = servers.len() <= MAX_SERVERS_NAMED && servers.iter().all(|s| server_name(s));
    match named && line.len() + 2 <= crate::MAX_COMMAND_LINE {
        true => servers,
        false => Vec::new(),
    }
}

/// ` IN a,b` for a non-empty list.
pub(crate) fn push_servers(out: &mut Vec<u8>, servers: &[String]) {
    if !servers.is_empty() {
        out.extend_from_slice(b" IN ");
        out.extend_from_slice(servers.join(",").as_bytes());
    }
}

/// A server's name as a user's configuration may spell it: 1 to 32 of
/// A-Z, a-z, 0-9, '-' and '_' (`causeway_proto::user::ServerSpec`).
fn server_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && (s.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The servers an `XSEARCH` line's `IN name,name` names (none without it).
pub(crate) fn parse_servers<'a>(
    mut args: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<String>, BadCriterion> {
    let Some(word) = args.next() else {
        return Ok(Vec::new());
    };
    if !word.eq_ignore_ascii_case(b"IN") {
        return Err(BadCriterion::Noise);
    }
    let list = args.next().ok_or(BadCriterion::Missing("server names"))?;
    let bad = || BadCriterion::Invalid {
        what: "server names",
        got: crate::text::quote(list),
    };
    let names = (list.split(|&b| b == b','))
        .map(|n| {
            String::from_utf8(n.to_vec())
                .ok()
                .filter(|n| server_name(n))
        })
        .collect::<Option<Vec<String>>>()
        .ok_or_else(bad)?;
    if names.len() > MAX_SERVERS_NAMED {
        return Err(bad());
    }
    if args.next().is_some() {
        return Err(BadCriterion::Noise);
    }
    Ok(names)
}

impl TextKey {
    /// The criterion, if its text is short enough to be asked (and, for
    /// a day, names one).
    pub fn new(field: TextField, value: String) -> Result<Self, Unaskable> {
        let len = value.len()
            + match &field {
                TextField::Header(name) => name.len(),
                _ => 0,
            };
        if len > MAX_SEARCH_TEXT {
            return Err(Unaskable::TooLong(len));
        }
        if matches!(field, TextField::Sent(_)) && Day::parse(&value).is_none() {
            return Err(Unaskable::NotADay(value));
        }
        Ok(Self { field, value })
    }

    /// The criterion an `XSEARCH` line's arguments name, and the
    /// arguments after it.
    pub(crate) fn parse<'a, I: Iterator<Item = &'a [u8]>>(
        mut args: I,
    ) -> Result<(Self, I), BadCriterion> {
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
            b"SENTBEFORE" => TextField::Sent(Sent::Before),
            b"SENTON" => TextField::Sent(Sent::On),
            b"SENTSINCE" => TextField::Sent(Sent::Since),
            _ => {
                return Err(BadCriterion::Invalid {
                    what: "search field",
                    got: crate::text::quote(field),
                });
            }
        };
        let value = text("search text")?;
        let key = Self::new(field, value).map_err(|e| match e {
            Unaskable::TooLong(_) => BadCriterion::TooLong,
            Unaskable::NotADay(got) => BadCriterion::Invalid { what: "day", got },
        })?;
        Ok((key, args))
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
            TextField::Sent(Sent::Before) => "SENTBEFORE",
            TextField::Sent(Sent::On) => "SENTON",
            TextField::Sent(Sent::Since) => "SENTSINCE",
        };
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        if let TextField::Header(h) = &self.field {
            push_hex(out, h);
        }
        push_hex(out, &self.value);
    }
}

impl TextKey {
    /// Whether `message` (its header, a blank line, its body) matches, as
    /// RFC 3501 §6.4.4 says a server judges it: the text anywhere in the
    /// field's unfolded value (`HEADER` with an empty text: the field is
    /// there), in the body, or in either, ignoring case; the day of its
    /// first `Date:` field before, on or since the day named (a message
    /// without a date it can read matches none). The edge judges
    /// a POP3 server's messages so, which cannot search its own; it reads
    /// the octets as they are, so unlike Dovecot it does not decode an
    /// encoded word (`=?UTF-8?Q?...?=`) or a base64 body first.
    pub fn matches(&self, message: &[u8]) -> bool {
        let (head, body) = split_message(message);
        let needle = self.value.to_lowercase();
        let lower = |b: &[u8]| String::from_utf8_lossy(b).to_lowercase();
        let name = match &self.field {
            TextField::Sent(order) => return sent(head, *order, &self.value),
            TextField::Body => return lower(body).contains(&needle),
            TextField::Text => {
                return lower(head).contains(&needle) || lower(body).contains(&needle);
            }
            TextField::From => "from",
            TextField::To => "to",
            TextField::Cc => "cc",
            TextField::Bcc => "bcc",
            TextField::Subject => "subject",
            TextField::Header(name) => name.as_str(),
        };
        header_fields(head)
            .filter(|(n, _)| n.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
            .any(|(_, v)| lower(&v).contains(&needle))
    }
}

/// Whether the day of the header's `Date:` compares as `order` says with
/// `day` (`YYYY-MM-DD`).
fn sent(head: &[u8], order: Sent, day: &str) -> bool {
    let date = header_fields(head).find(|(n, _)| n.trim_ascii().eq_ignore_ascii_case(b"date"));
    let (Some(sent), Some(day)) = (
        date.and_then(|(_, v)| Day::of_date_field(&v)),
        Day::parse(day),
    ) else {
        return false;
    };
    match order {
        Sent::Before => sent < day,
        Sent::On => sent == day,
        Sent::Since => sent >= day,
    }
}

/// The header (each line with its line end) and the body, split at the
/// first empty line; a message without one is all header.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    let mut start = 0;
    while start < message.len() {
        let end = (message[start..].iter().position(|&b| b == b'\n'))
            .map_or(message.len(), |i| start + i + 1);
        if matches!(&message[start..end], b"\r\n" | b"\n") {
            return (&message[..start], &message[end..]);
        }
        start = end;
    }
    (message, &[])
}

/// The header's fields, each its name and its value unfolded (the line
/// ends inside it taken out).
fn header_fields(head: &[u8]) -> impl Iterator<Item = (&[u8], Vec<u8>)> {
    let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match (line.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some((_, value))) => value.extend_from_slice(line),
            _ => {
                if let Some(colon) = line.iter().position(|&b| b == b':') {
                    fields.push((&line[..colon], line[colon + 1..].to_vec()));
                }
            }
        }
    }
    fields.into_iter()
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
        let (key, servers) = parse_in(line)?;
        assert_eq!(servers, Vec::<String>::new());
        Ok(key)
    }

    fn parse_in(line: &[u8]) -> Result<(TextKey, Vec<String>), BadCriterion> {
        let args = line.strip_prefix(b"XSEARCH").unwrap_or(line);
        let (key, rest) = TextKey::parse(args.split(|&b| b == b' ').filter(|a| !a.is_empty()))?;
        Ok((key, parse_servers(rest)?))
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
            Err(Unaskable::TooLong(MAX_SEARCH_TEXT + 1))
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

    #[test]
    fn the_servers_named_cross_the_line_or_every_server_is_asked() {
        let key = TextKey::new(TextField::Subject, "Hi".to_owned()).unwrap();
        let servers = vec!["home".to_owned(), "work-2".to_owned()];
        assert_eq!(narrowed(&key, servers.clone()), servers);
        let mut line = line(&key);
        push_servers(&mut line, &servers);
        assert_eq!(
            String::from_utf8_lossy(&line),
            "XSEARCH SUBJECT =4869 IN home,work-2"
        );
        assert_eq!(parse_in(&line), Ok((key.clone(), servers)));
        // Twelve of the longest names beside the longest text do not fit:
        // every server is asked instead.
        let long = TextKey::new(TextField::Body, "x".repeat(MAX_SEARCH_TEXT)).unwrap();
        let many: Vec<String> = (0..12).map(|i| format!("{i:0>32}")).collect();
        assert_eq!(narrowed(&long, many.clone()), Vec::<String>::new());
        assert_eq!(narrowed(&key, many.clone()), many);
        let mut line = b"XSEARCH".to_vec();
        key.encode(&mut line);
        push_servers(&mut line, &many);
        assert!(line.len() + 2 <= crate::MAX_COMMAND_LINE);
        assert_eq!(parse_in(&line), Ok((key.clone(), many)));
        assert_eq!(narrowed(&key, vec!["a b".to_owned()]), Vec::<String>::new());
        for bad in [
            &b"XSEARCH SUBJECT =68 IN"[..],
            b"XSEARCH SUBJECT =68 IN a,,b",
            b"XSEARCH SUBJECT =68 IN a,b c",
            b"XSEARCH SUBJECT =68 IN a/b",
            b"XSEARCH SUBJECT =68 AT a",
        ] {
            assert!(parse_in(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let seventeen = (0..17).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        assert!(parse_in(format!("XSEARCH TEXT =68 IN {seventeen}").as_bytes()).is_err());
    }

    #[test]
    fn a_message_is_judged_as_rfc_3501_says() {
        let message =
            b"From: Ann <ann@example.org>\r\nSubject: Quarterly\r\n  Report \xc3\x9cBER\r\n\
                        X-Tag:\r\nTo: bob@example.org\r\n\r\nThe body: GR\xc3\x9cSSE from Ann.\r\n";
        let k = |field: TextField, v: &str| TextKey::new(field, v.to_owned()).unwrap();
        let header = |name: &str| TextField::Header(name.to_owned());
        for (key, expected) in [
            (k(TextField::Subject, "quarterly"), true),
            (k(TextField::Subject, "report über"), true),
            (k(TextField::Subject, "Quarterly Report"), false),
            (k(TextField::Subject, "body"), false),
            (k(TextField::From, "ANN@EXAMPLE"), true),
            (k(TextField::To, "ann"), false),
            (k(TextField::Cc, ""), false),
            (k(header("x-tag"), ""), true),
            (k(header("X-Other"), ""), false),
            (k(header("subject"), "report"), true),
            (k(TextField::Body, "grüsse"), true),
            (k(TextField::Body, "quarterly"), false),
            (k(TextField::Text, "quarterly"), true),
            (k(TextField::Text, "grüsse from"), true),
            (k(TextField::Bcc, "bob"), false),
        ] {
            assert_eq!(key.matches(message), expected, "{key:?}");
        }
        // A message with no blank line is all header; bare LFs split too.
        assert!(!k(TextField::Body, "x").matches(b"Subject: x\r\n"));
        assert!(k(TextField::Body, "x").matches(b"Subject: y\n\nx\n"));
        assert!(!k(TextField::Subject, "x").matches(b"Subject: y\n\nSubject: x\n"));
    }

    #[test]
    fn a_day_of_sending_is_compared_without_time_or_zone() {
        let on = |date: &str, order, day: &str| {
            let key = TextKey::new(TextField::Sent(order), day.to_owned()).unwrap();
            key.matches(format!("Subject: x\r\nDate: {date}\r\n\r\nhi\r\n").as_bytes())
        };
        let late = "Thu, 01 Jan 2026 23:30:00 -0800";
        assert!(on(late, Sent::On, "2026-01-01"));
        assert!(!on(late, Sent::Before, "2026-01-01"));
        assert!(on(late, Sent::Before, "2026-01-02"));
        assert!(on(late, Sent::Since, "2026-01-01"));
        assert!(!on(late, Sent::Since, "2026-01-02"));
        assert!(on("1 jan 26 00:00 GMT", Sent::On, "2026-01-01"));
        assert!(on("(sent) 3 Feb 99 00:00 +0000", Sent::On, "1999-02-03"));
        assert!(on(
            "Mon (a comment), 2 Mar 2026 10:00:00 +0000",
            Sent::On,
            "2026-03-02"
        ));
        assert!(on(
            "  Mon,\r\n 2 Mar 2026 10:00 +0000",
            Sent::On,
            "2026-03-02"
        ));
        // No date it can read: no day matches.
        for bad in ["yesterday", "32 Jan 2026", "1 Foo 2026", ""] {
            for order in [Sent::Before, Sent::On, Sent::Since] {
                assert!(!on(bad, order, "2026-01-01"), "{bad}");
            }
        }
        let undated = TextKey::new(TextField::Sent(Sent::Before), "9999-12-31".to_owned()).unwrap();
        assert!(!undated.matches(b"Subject: x\r\n\r\nhi\r\n"));
        // The criterion must name a day, on the line too.
        for bad in ["2026-1-01", "2026-13-01", "0000-01-01", "yesterday"] {
            let e = TextKey::new(TextField::Sent(Sent::On), bad.to_owned());
            assert_eq!(e, Err(Unaskable::NotADay(bad.to_owned())));
        }
        let key = TextKey::new(TextField::Sent(Sent::Since), "2026-02-28".to_owned()).unwrap();
        round_trip(key);
        assert!(parse(b"XSEARCH SENTON =3230323620").is_err());
    }
}
