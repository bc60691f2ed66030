//! A message's MIME structure (RFC 2045, RFC 2046), found from its bytes:
//! the tree of parts with where each one's header and body lie, and the
//! `Content-*` fields of each. `BODYSTRUCTURE` ([`super::structure`]) and
//! the part sections of a FETCH (`BODY[1.2]`, `BODY[2.MIME]`,
//! [`super::sections`]) are read off this tree, so a mail client that
//! downloads one attachment of a large message (Thunderbird does above
//! 30 KB) gets the same bytes the server would give.
//!
//! The rules are the ones Dovecot follows, because the answers must match
//! what the client would have had from the server directly (checked
//! against Dovecot in `tests/tests/interop_imap_structure.rs`):
//! `Content-*` fields count with or without `Mime-Version`; the first of a
//! repeated field wins; a part with no `Content-Type` is `text/plain`, or
//! `message/rfc822` inside `multipart/digest`; the line break before a
//! boundary belongs to the boundary, except after a multipart that was
//! closed (its `--boundary--` line), which keeps it, as Dovecot counts;
//! a multipart without its closing boundary ends with the message.
//!
//! The message comes from another machine: nesting deeper than
//! [`MAX_DEPTH`] stays one opaque part and parts beyond [`MAX_PARTS`] are
//! left out, so a hostile message costs at most that many small nodes and
//! never a deep recursion.

use std::ops::Range;

/// Nesting deeper than this is one opaque part (Dovecot stops at 100;
/// real mail nests a few levels).
pub const MAX_DEPTH: usize = 32;
/// Parts beyond this many in one message are left out of its tree.
pub const MAX_PARTS: usize = 10_000;

/// One part of a message: the message itself at the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its header, blank line included (the MIME header of a part, the
    /// message header at the top and inside `message/rfc822`).
    pub header: Range<usize>,
    /// Its body: what follows the blank line, up to the line break before
    /// the next boundary.
    pub body: Range<usize>,
    pub content: Content,
    pub kind: Kind,
}

/// What a part holds beside its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A leaf (text, image, ...).
    Single,
    /// `multipart/*`: its parts, in order (none if no boundary was found).
    Multi(Vec<Part>),
    /// `message/rfc822`: the message its body holds.
    Message(Box<Part>),
}

/// The `Content-*` fields of a part, as written (names and values keep
/// their case, as Dovecot answers them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    /// `type/subtype`; `None` when the part has no (usable) Content-Type.
    pub media: Option<(String, String)>,
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub encoding: Option<String>,
    pub md5: Option<String>,
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Vec<String>,
    pub location: Option<String>,
}

impl Content {
    /// Whether the media type is `kind/subtype` (in any case).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.media
            .as_ref()
            .is_some_and(|(t, s)| t.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype))
    }

    fn kind_is(&self, kind: &str) -> bool {
        self.media
            .as_ref()
            .is_some_and(|(t, _)| t.eq_ignore_ascii_case(kind))
    }

    /// Whether the part is text (no Content-Type counts as text/plain).
    pub fn is_text(&self) -> bool {
        self.media.is_none() || self.kind_is("text")
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The structure of `message` (a whole message, CRLF or LF line ends).
pub fn parse(message: &[u8]) -> Part {
    let mut budget = MAX_PARTS;
    entity(message, 0..message.len(), None, 0, &mut budget).0
}

/// One entity in `range`, a message or a part of a multipart; `default`
/// is the media type it has without a Content-Type. Also gives where the
/// closing delimiter line of the multipart it is (or holds) ends, if it
/// came.
fn entity(
    msg: &[u8],
    range: Range<usize>,
    default: Option<(&str, &str)>,
    depth: usize,
    budget: &mut usize,
) -> (Part, Option<usize>) {
    let header_end = header_end(msg, range.clone());
    let header = range.start..header_end;
    let body = header_end..range.end;
    let fields = header_fields(&msg[header.clone()]);
    let mut content = content(&fields);
    if content.media.is_none() {
        if let Some((t, s)) = default {
            content.media = Some((t.into(), s.into()));
        }
    }
    *budget = budget.saturating_sub(1);
    let deeper = depth < MAX_DEPTH && *budget > 0;
    let mut closed = None;
    let kind = if content.kind_is("multipart") && deeper {
        let digest = content.is("multipart", "digest");
        let child_default = if digest {
            Some(("message", "rfc822"))
        } else {
            None
        };
        match content.param("boundary") {
            Some(b) if !b.is_empty() => {
                let (ranges, found_close) = split(msg, body.clone(), b.as_bytes(), *budget);
                closed = found_close;
                let mut parts = Vec::new();
                for (r, with_break) in ranges {
                    if *budget == 0 {
                        break;
                    }
                    let (mut part, part_closed) = entity(msg, r, child_default, depth + 1, budget);
                    // A part that ends with its own closing delimiter line
                    // keeps that line's break, which is then also the one
                    // before our delimiter (Dovecot counts it so).
                    let end = part.body.end;
                    if part_closed == Some(end) && end > 0 && msg[end - 1] != b'\n' {
                        extend(&mut part, with_break);
                    }
                    parts.push(part);
                }
                Kind::Multi(parts)
            }
            _ => Kind::Multi(Vec::new()),
        }
    } else if content.is("message", "rfc822") && deeper {
        let (inner, inner_closed) = entity(msg, body.clone(), None, depth + 1, budget);
        closed = inner_closed;
        Kind::Message(Box::new(inner))
    } else {
        Kind::Single
    };
    let part = Part {
        header,
        body,
        content,
        kind,
    };
    (part, closed)
}

/// Moves the end of `part`'s body (and of the message it holds, if any)
/// to `end`.
fn extend(part: &mut Part, end: usize) {
    part.body.end = end;
    if let Kind::Message(inner) = &mut part.kind {
        extend(inner, end);
    }
}

/// Where the header in `range` ends: after its blank line; at the end of
/// `range` if it has none. A part that opens with a blank line has an
/// empty header but that line.
pub(crate) fn header_end(msg: &[u8], range: Range<usize>) -> usize {
    let mut at = range.start;
    while at < range.end {
        let end = line_end(msg, at, range.end);
        let line = &msg[at..end];
        if line == b"\r\n" || line == b"\n" {
            return end;
        }
        at = end;
    }
    range.end
}

/// The index after the line starting at `from` (after its LF), at most
/// `limit`.
fn line_end(msg: &[u8], from: usize, limit: usize) -> usize {
    msg[from..limit]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(limit, |p| from + p + 1)
}

/// A header's fields: each name and its value as Dovecot keeps it, the
/// white space after the colon dropped and the line breaks of a folded
/// value kept (CRLF). Lines without a colon are skipped.
pub fn header_fields(header: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::new();
    let mut at = 0;
    while at < header.len() {
        let end = line_end(header, at, header.len());
        let line = trim_eol(&header[at..end]);
        at = end;
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, value)) = out.last_mut() {
                value.extend_from_slice(b"\r\n");
                value.extend_from_slice(line);
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let start = value
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t'))
            .unwrap_or(value.len());
        out.push((line[..colon].trim_ascii(), value[start..].to_vec()));
    }
    out
}

/// A folded value on one line: its line breaks removed (the white space
/// that folded it stays).
pub fn unfold(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect()
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The ranges of the first `limit` parts of a multipart body with
/// `boundary`: each starts after a delimiter line and ends before the line
/// break that precedes the next one (also given: where that break ends).
/// The preamble and the epilogue are not parts. Also gives where the
/// closing delimiter line ends, if it came.
fn split(
    msg: &[u8],
    body: Range<usize>,
    boundary: &[u8],
    limit: usize,
) -> (Vec<(Range<usize>, usize)>, Option<usize>) {
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut at = body.start;
    while at < body.end && parts.len() < limit {
        let end = line_end(msg, at, body.end);
        if let Some(close) = delimiter(&msg[at..end], boundary) {
            if let Some(start) = open.take() {
                // The line break before the delimiter is the delimiter's.
                let mut stop = at;
                if stop > start && msg[stop - 1] == b'\n' {
                    stop -= 1;
                    if stop > start && msg[stop - 1] == b'\r' {
                        stop -= 1;
                    }
                }
                parts.push((start..stop.max(start), at));
            }
            if close {
                return (parts, Some(end));
            }
            open = Some(end);
        }
        at = end;
    }
    if let Some(start) = open.filter(|_| parts.len() < limit) {
        parts.push((start..body.end, body.end));
    }
    (parts, None)
}

/// Whether `line` is a delimiter of `boundary` (`Some(false)`) or its
/// closing delimiter (`Some(true)`): `--boundary`, then `--` for the close,
/// then only white space (RFC 2046 §5.1.1).
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = trim_eol(line).strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    rest.iter()
        .all(|b| matches!(b, b' ' | b'\t'))
        .then_some(close)
}

/// The `Content-*` fields among `fields` (the first of each counts).
fn content(fields: &[(&[u8], Vec<u8>)]) -> Content {
    let mut c = Content::default();
    let mut seen_type = false;
    for (name, value) in fields {
        let Some(which) = strip_prefix_ci(name, b"Content-") else {
            continue;
        };
        let text = || String::from_utf8_lossy(&unfold(value)).into_owned();
        let which = which.to_ascii_lowercase();
        match which.as_slice() {
            b"type" if !seen_type => {
                seen_type = true;
                let mut lex = crate::serve::lex::Lexer::new(value);
                if let Some(media) = lex.media_type() {
                    c.media = Some(media);
                    c.params = lex.params();
                }
            }
            b"transfer-encoding" if c.encoding.is_none() => {
                c.encoding = crate::serve::lex::Lexer::new(value).token();
            }
            b"id" if c.id.is_none() => c.id = Some(text()),
            b"description" if c.description.is_none() => c.description = Some(text()),
            b"md5" if c.md5.is_none() => c.md5 = Some(text()),
            b"location" if c.location.is_none() => c.location = Some(text()),
            b"language" if c.language.is_empty() => {
                c.language = crate::serve::lex::Lexer::new(value).token_list();
            }
            b"disposition" if c.disposition.is_none() => {
                let mut lex = crate::serve::lex::Lexer::new(value);
                if let Some(d) = lex.token() {
                    c.disposition = Some((d, lex.params()));
                }
            }
            _ => {}
        }
    }
    c
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Lines in `bytes` as IMAP counts them for a text part: its line breaks.
pub fn lines(bytes: &[u8]) -> u32 {
    let n = bytes.iter().filter(|&&b| b == b'\n').count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
