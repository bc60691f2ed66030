//! The parts of a message a FETCH can ask for (RFC 3501 §6.4.5), cut from
//! the message's bytes exactly as they are: the header (with the blank line
//! that ends it), the text after it, a subset of header fields, and a
//! partial range of any of those.
//!
//! Nothing is parsed beyond the header's field boundaries: MIME parts
//! (`BODY[1]`, `BODY[1.MIME]`) need the message's structure and are
//! refused, so no answer is ever a guess.

use std::borrow::Cow;

use imap_types::core::AString;
use imap_types::fetch::Section;

/// How much of a message a section needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Only the header (a POP3 `TOP n 0` gives exactly that).
    Header,
    /// The whole message.
    Whole,
}

/// A section this module does not cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("body part sections (BODY[1], BODY[1.MIME], ...) are not served here")]
pub struct PartsUnsupported;

/// What `section` (None: the whole message) needs of the message.
pub fn need(section: Option<&Section<'_>>) -> Result<Need, PartsUnsupported> {
    match section {
        None | Some(Section::Text(None)) => Ok(Need::Whole),
        Some(Section::Header(None) | Section::HeaderFields(None, _))
        | Some(Section::HeaderFieldsNot(None, _)) => Ok(Need::Header),
        Some(_) => Err(PartsUnsupported),
    }
}

/// Where the header ends: just after the blank line, or the whole message
/// if it has none.
pub fn header_end(message: &[u8]) -> usize {
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |p| p + 4)
}

/// The bytes of `section` of `message`. For header sections, `message`
/// may be the header alone.
pub fn cut<'m>(
    message: &'m [u8],
    section: Option<&Section<'_>>,
) -> Result<Cow<'m, [u8]>, PartsUnsupported> {
    Ok(match section {
        None => Cow::Borrowed(message),
        Some(Section::Header(None)) => Cow::Borrowed(&message[..header_end(message)]),
        Some(Section::Text(None)) => Cow::Borrowed(&message[header_end(message)..]),
        Some(Section::HeaderFields(None, names)) => {
            Cow::Owned(fields(message, names.as_ref(), true))
        }
        Some(Section::HeaderFieldsNot(None, names)) => {
            Cow::Owned(fields(message, names.as_ref(), false))
        }
        Some(_) => return Err(PartsUnsupported),
    })
}

/// The header fields whose names are (`keep`) or are not in `names`, each
/// with its continuation lines, then the blank line.
fn fields(message: &[u8], names: &[AString<'_>], keep: bool) -> Vec<u8> {
    let header = &message[..header_end(message)];
    let mut out = Vec::new();
    let mut start = 0;
    while start < header.len() {
        let mut end = next_line(header, start);
        while end < header.len() && matches!(header[end], b' ' | b'\t') {
            end = next_line(header, end);
        }
        let field = &header[start..end];
        if field != b"\r\n" {
            let name = field.split(|&b| b == b':').next().unwrap_or(field);
            let listed = names
                .iter()
                .any(|n| n.as_ref().eq_ignore_ascii_case(name.trim_ascii()));
            if listed == keep {
                out.extend_from_slice(field);
            }
        }
        start = end;
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The index after the line that starts at `from` (after its LF).
fn next_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p + 1)
}

/// The `<origin.length>` range of `bytes` (RFC 3501: an origin past the
/// end gives nothing, a length past the end gives what there is).
pub fn partial(bytes: &[u8], origin: u32, length: u32) -> &[u8] {
    let start = (origin as usize).min(bytes.len());
    let end = start.saturating_add(length as usize).min(bytes.len());
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_types::core::Vec1;

    const MSG: &[u8] = b"From: a@example.org\r\nSubject: hello\r\n  world\r\nTo: b@example.org\r\n\r\nbody line\r\n";

    fn names(list: &[&'static str]) -> Vec1<AString<'static>> {
        Vec1::try_from(
            list.iter()
                .map(|n| AString::try_from(*n).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn header_and_text_split_at_the_blank_line() {
        let h = cut(MSG, Some(&Section::Header(None))).unwrap();
        let t = cut(MSG, Some(&Section::Text(None))).unwrap();
        assert!(h.ends_with(b"\r\n\r\n"));
        assert_eq!([h.as_ref(), t.as_ref()].concat(), MSG);
        assert_eq!(t.as_ref(), b"body line\r\n");
        assert_eq!(cut(MSG, None).unwrap().as_ref(), MSG);
    }

    #[test]
    fn header_fields_keep_continuations_and_ignore_case() {
        let f = cut(
            MSG,
            Some(&Section::HeaderFields(None, names(&["SUBJECT", "to"]))),
        )
        .unwrap();
        assert_eq!(
            f.as_ref(),
            b"Subject: hello\r\n  world\r\nTo: b@example.org\r\n\r\n"
        );
        let n = cut(
            MSG,
            Some(&Section::HeaderFieldsNot(None, names(&["subject"]))),
        )
        .unwrap();
        assert_eq!(
            n.as_ref(),
            b"From: a@example.org\r\nTo: b@example.org\r\n\r\n"
        );
        // A header alone (what `TOP n 0` gives) cuts the same.
        let header = &MSG[..header_end(MSG)];
        assert_eq!(
            cut(header, Some(&Section::HeaderFields(None, names(&["from"]))))
                .unwrap()
                .as_ref(),
            b"From: a@example.org\r\n\r\n"
        );
    }

    #[test]
    fn a_message_without_a_blank_line_is_all_header() {
        let m = b"Subject: x\r\n";
        assert_eq!(header_end(m), m.len());
        assert_eq!(cut(m, Some(&Section::Text(None))).unwrap().as_ref(), b"");
    }

    #[test]
    fn partials_clamp_to_the_end() {
        assert_eq!(partial(b"0123456789", 2, 3), b"234");
        assert_eq!(partial(b"0123456789", 8, 100), b"89");
        assert_eq!(partial(b"0123456789", 20, 5), b"");
        assert_eq!(partial(b"0123", u32::MAX, u32::MAX), b"");
    }

    #[test]
    fn parts_are_refused_not_guessed() {
        let one = imap_types::fetch::Part(Vec1::from(std::num::NonZeroU32::new(1).unwrap()));
        assert_eq!(
            need(Some(&Section::Part(one.clone()))),
            Err(PartsUnsupported)
        );
        assert!(cut(MSG, Some(&Section::Mime(one))).is_err());
        assert_eq!(need(Some(&Section::Header(None))), Ok(Need::Header));
        assert_eq!(need(None), Ok(Need::Whole));
    }
}
