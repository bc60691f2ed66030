//! `UID SEARCH` of the mail's text in the model server: `FROM`, `TO`, `CC`,
//! `BCC`, `SUBJECT`, `HEADER`, `BODY` and `TEXT`, and the day it was sent
//! (`SENTBEFORE`, `SENTON`, `SENTSINCE`), one criterion at a time (what
//! the edge sends for a mail client's search).
//!
//! As RFC 3501 §6.4.4 asks and Dovecot does: a match is a substring,
//! without regard to case; a header criterion looks in the unfolded value
//! of every field of that name, and `HEADER name ""` matches every message
//! that has the field. A day of sending is the day of the `Date:` field as
//! written, time and zone disregarded (read by chrono's RFC 2822 parser,
//! not the edge's own, so that the oracle does not share its mistakes); a
//! message without a readable date matches no day.

use std::cmp::Ordering;

use imap_types::core::AString;
use imap_types::search::SearchKey;

/// Whether the model server finds `message` by the text criterion `key`;
/// `None` if `key` is not one. The simulation's mail users judge a search
/// through the chain by it: the chain must find what the server finds.
pub fn text_matches(key: &SearchKey<'_>, message: &[u8]) -> Option<bool> {
    Text::of(key).map(|t| t.matches(message))
}

/// Where a text criterion looks, and for what (lower-cased).
pub(super) struct Text {
    field: Field,
    needle: String,
}

enum Field {
    Header(String),
    Body,
    Whole,
    /// The day sent, compared with this one: `Ordering::is_lt` for
    /// `SENTBEFORE`, `is_eq` for `SENTON`, `is_ge` for `SENTSINCE`.
    Sent(fn(Ordering) -> bool, chrono::NaiveDate),
}

impl Text {
    /// The criterion, if `key` is one on the mail's text.
    pub(super) fn of(key: &SearchKey<'_>) -> Option<Text> {
        let header = |name: &str, v: &AString<'_>| (Field::Header(name.to_owned()), lower(v));
        let (field, needle) = match key {
            SearchKey::From(v) => header("from", v),
            SearchKey::To(v) => header("to", v),
            SearchKey::Cc(v) => header("cc", v),
            SearchKey::Bcc(v) => header("bcc", v),
            SearchKey::Subject(v) => header("subject", v),
            SearchKey::Header(name, v) => header(&lower(name), v),
            SearchKey::Body(v) => (Field::Body, lower(v)),
            SearchKey::Text(v) => (Field::Whole, lower(v)),
            SearchKey::SentBefore(d) => (Field::Sent(Ordering::is_lt, *d.as_ref()), String::new()),
            SearchKey::SentOn(d) => (Field::Sent(Ordering::is_eq, *d.as_ref()), String::new()),
            SearchKey::SentSince(d) => (Field::Sent(Ordering::is_ge, *d.as_ref()), String::new()),
            _ => return None,
        };
        Some(Text { field, needle })
    }

    /// Whether `message` (header and body, CRLF line ends) matches.
    pub(super) fn matches(&self, message: &[u8]) -> bool {
        let text = String::from_utf8_lossy(message).to_lowercase();
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i + 2], &text[i + 4..]),
            None => (text.as_str(), ""),
        };
        let sent = || {
            let (_, date) = fields(head).find(|(n, _)| n.trim().eq_ignore_ascii_case("date"))?;
            let date = chrono::DateTime::parse_from_rfc2822(date.trim()).ok()?;
            Some(date.naive_local().date())
        };
        match &self.field {
            Field::Sent(wanted, day) => sent().is_some_and(|d| wanted(d.cmp(day))),
            Field::Whole => text.contains(&self.needle),
            Field::Body => body.contains(&self.needle),
            Field::Header(name) => {
                fields(head).any(|(n, v)| n.trim() == name && v.contains(&self.needle))
            }
        }
    }
}

fn lower(s: &AString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).to_lowercase()
}

/// The header's fields, each `(name, unfolded value)`.
fn fields(head: &str) -> impl Iterator<Item = (&str, String)> {
    let mut unfolded: Vec<(&str, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = unfolded.last_mut() {
                v.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            unfolded.push((name, value.to_owned()));
        }
    }
    unfolded.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, v: &str) -> Text {
        let v = AString::try_from(v).unwrap();
        let key = match k {
            "from" => SearchKey::From(v),
            "subject" => SearchKey::Subject(v),
            "body" => SearchKey::Body(v),
            "text" => SearchKey::Text(v),
            name => SearchKey::Header(AString::try_from(name).unwrap(), v),
        };
        Text::of(&key).unwrap()
    }

    #[test]
    fn text_criteria_match_substrings_without_case_where_they_look() {
        let m = b"From: Ann <ann@example.org>\r\nSubject: Quarterly\r\n report\r\nX-Tag: \
                  blue\r\n\r\nThe numbers from Bob.\r\n";
        assert!(key("from", "ANN@").matches(m));
        assert!(!key("from", "bob").matches(m));
        assert!(key("subject", "quarterly report").matches(m));
        assert!(key("body", "from bob").matches(m));
        assert!(!key("body", "quarterly").matches(m));
        assert!(key("text", "quarterly").matches(m));
        assert!(key("X-Tag", "").matches(m));
        assert!(key("x-tag", "BLUE").matches(m));
        assert!(!key("X-Other", "").matches(m));
        assert!(Text::of(&SearchKey::Deleted).is_none());
    }

    #[test]
    fn a_day_of_sending_is_the_date_fields_as_written() {
        let day = |s: &str| {
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
            imap_types::datetime::NaiveDate::try_from(d).unwrap()
        };
        let m = b"Date: Thu, 01 Jan 2026 23:30:00 -0800\r\nSubject: x\r\n\r\nhi\r\n";
        let judged = |k: SearchKey<'_>| text_matches(&k, m).unwrap();
        assert!(judged(SearchKey::SentOn(day("2026-01-01"))));
        assert!(!judged(SearchKey::SentOn(day("2026-01-02"))));
        assert!(judged(SearchKey::SentBefore(day("2026-01-02"))));
        assert!(!judged(SearchKey::SentBefore(day("2026-01-01"))));
        assert!(judged(SearchKey::SentSince(day("2026-01-01"))));
        assert!(!judged(SearchKey::SentSince(day("2026-01-02"))));
        let undated = b"Subject: x\r\n\r\nhi\r\n";
        assert!(!text_matches(&SearchKey::SentBefore(day("9999-12-31")), undated).unwrap());
    }
}
