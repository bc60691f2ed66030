//! The parts of a message a FETCH can ask for (RFC 3501 §6.4.5), cut from
//! the message's bytes exactly as they are: the header (with the blank line
//! that ends it), the text after it, a subset of header fields, a MIME
//! part (`BODY[1.2]`), its MIME header (`BODY[1.2.MIME]`), the header and
//! text of a message inside one (`BODY[2.HEADER]`), and a partial range of
//! any of those. Parts are found by [`super::mime`]'s tree; a part number
//! the message does not have gives nothing, as Dovecot answers.

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_types::core::AString;
use imap_types::fetch::{Part as PartPath, Section};

use super::mime::{self, Kind, Part};

/// How much of a message a section needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Only the header (a POP3 `TOP n 0` gives exactly that).
    Header,
    /// The whole message.
    Whole,
}

/// What `section` (None: the whole message) needs of the message.
pub fn need(section: Option<&Section<'_>>) -> Need {
    match section {
        Some(Section::Header(None) | Section::HeaderFields(None, _))
        | Some(Section::HeaderFieldsNot(None, _)) => Need::Header,
        _ => Need::Whole,
    }
}

/// Where the message's header ends: just after its blank line, or the
/// whole message if it has none. The MIME parser's rule, so that
/// `BODY[HEADER]` and `BODYSTRUCTURE` agree: a message that opens with a
/// blank line has an empty header but that line.
pub fn header_end(message: &[u8]) -> usize {
    mime::header_end(message, 0..message.len())
}

/// The bytes of `section` of `message`. For header sections without a
/// part number, `message` may be the header alone.
pub fn cut<'m>(message: &'m [u8], section: Option<&Section<'_>>) -> Cow<'m, [u8]> {
    cut_in(message, section, &mut None)
}

/// [`cut`], with the message's MIME tree kept in `tree`: found the first
/// time a part section needs it, then reused (a FETCH of several parts,
/// or of parts and `BODYSTRUCTURE`, parses the message once).
pub fn cut_in<'m>(
    message: &'m [u8],
    section: Option<&Section<'_>>,
    tree: &mut Option<Part>,
) -> Cow<'m, [u8]> {
    let Some(section) = section else {
        return Cow::Borrowed(message);
    };
    match section {
        Section::Header(None) => Cow::Borrowed(&message[..header_end(message)]),
        Section::Text(None) => Cow::Borrowed(&message[header_end(message)..]),
        Section::HeaderFields(None, names) => Cow::Owned(fields(message, names.as_ref(), true)),
        Section::HeaderFieldsNot(None, names) => Cow::Owned(fields(message, names.as_ref(), false)),
        Section::Part(path) => {
            let tree = tree.get_or_insert_with(|| mime::parse(message));
            let body = resolve(tree, path).map_or(0..0, |p| p.body.clone());
            Cow::Borrowed(&message[body])
        }
        Section::Mime(path) => {
            let tree = tree.get_or_insert_with(|| mime::parse(message));
            let header = resolve(tree, path).map_or(0..0, |p| p.header.clone());
            Cow::Borrowed(&message[header])
        }
        Section::Header(Some(path))
        | Section::Text(Some(path))
        | Section::HeaderFields(Some(path), _)
        | Section::HeaderFieldsNot(Some(path), _) => {
            let tree = tree.get_or_insert_with(|| mime::parse(message));
            // These name the message inside a message/rfc822 part.
            let Some(inner) = resolve(tree, path).and_then(|p| match &p.kind {
                Kind::Message(inner) => Some(&**inner),
                _ => None,
            }) else {
                return Cow::Borrowed(&[]);
            };
            let header = &message[inner.header.clone()];
            match section {
                Section::Text(_) => Cow::Borrowed(&message[inner.body.clone()]),
                Section::HeaderFields(_, names) => Cow::Owned(fields(header, names.as_ref(), true)),
                Section::HeaderFieldsNot(_, names) => {
                    Cow::Owned(fields(header, names.as_ref(), false))
                }
                _ => Cow::Borrowed(header),
            }
        }
    }
}

/// The part `path` names (RFC 3501 §6.4.5), as Dovecot finds it: a
/// multipart's parts count from 1; a part that is not multipart is its own
/// part 1 when that number ends the path (so a plain message's `BODY[1]`
/// is its text, and an attachment's `BODY[2.1]` the attachment); a
/// `message/rfc822` part with more numbers after it is entered, and they
/// count the parts of the message it holds.
fn resolve<'t>(tree: &'t Part, path: &PartPath) -> Option<&'t Part> {
    let numbers = path.0.as_ref();
    let mut p = tree;
    for (i, n) in numbers.iter().enumerate() {
        let last = i + 1 == numbers.len();
        p = match &p.kind {
            Kind::Multi(children) => children.get(index(*n))?,
            Kind::Message(_) if n.get() == 1 => p,
            _ if n.get() == 1 && last => p,
            _ => return None,
        };
        if !last {
            if let Kind::Message(inner) = &p.kind {
                p = inner;
            }
        }
    }
    Some(p)
}

fn index(n: NonZeroU32) -> usize {
    usize::try_from(n.get() - 1).unwrap_or(usize::MAX)
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
        let h = cut(MSG, Some(&Section::Header(None)));
        let t = cut(MSG, Some(&Section::Text(None)));
        assert!(h.ends_with(b"\r\n\r\n"));
        assert_eq!([h.as_ref(), t.as_ref()].concat(), MSG);
        assert_eq!(t.as_ref(), b"body line\r\n");
        assert_eq!(cut(MSG, None).as_ref(), MSG);
    }

    #[test]
    fn header_fields_keep_continuations_and_ignore_case() {
        let f = cut(
            MSG,
            Some(&Section::HeaderFields(None, names(&["SUBJECT", "to"]))),
        );
        assert_eq!(
            f.as_ref(),
            b"Subject: hello\r\n  world\r\nTo: b@example.org\r\n\r\n"
        );
        let n = cut(
            MSG,
            Some(&Section::HeaderFieldsNot(None, names(&["subject"]))),
        );
        assert_eq!(
            n.as_ref(),
            b"From: a@example.org\r\nTo: b@example.org\r\n\r\n"
        );
        // A header alone (what `TOP n 0` gives) cuts the same.
        let header = &MSG[..header_end(MSG)];
        assert_eq!(
            cut(header, Some(&Section::HeaderFields(None, names(&["from"])))).as_ref(),
            b"From: a@example.org\r\n\r\n"
        );
    }

    #[test]
    fn a_message_that_opens_with_a_blank_line_has_an_empty_header() {
        let m = b"\r\nno header\r\n\r\nat all\r\n";
        assert_eq!(cut(m, Some(&Section::Header(None))).as_ref(), b"\r\n");
        assert_eq!(
            cut(m, Some(&Section::Text(None))).as_ref(),
            b"no header\r\n\r\nat all\r\n"
        );
    }

    #[test]
    fn a_message_without_a_blank_line_is_all_header() {
        let m = b"Subject: x\r\n";
        assert_eq!(header_end(m), m.len());
        assert_eq!(cut(m, Some(&Section::Text(None))).as_ref(), b"");
    }

    #[test]
    fn partials_clamp_to_the_end() {
        assert_eq!(partial(b"0123456789", 2, 3), b"234");
        assert_eq!(partial(b"0123456789", 8, 100), b"89");
        assert_eq!(partial(b"0123456789", 20, 5), b"");
        assert_eq!(partial(b"0123", u32::MAX, u32::MAX), b"");
    }

    #[test]
    fn what_each_section_needs() {
        let one = imap_types::fetch::Part(Vec1::from(std::num::NonZeroU32::new(1).unwrap()));
        assert_eq!(need(Some(&Section::Part(one.clone()))), Need::Whole);
        assert_eq!(need(Some(&Section::Mime(one.clone()))), Need::Whole);
        assert_eq!(need(Some(&Section::Header(Some(one)))), Need::Whole);
        assert_eq!(need(Some(&Section::Header(None))), Need::Header);
        assert_eq!(need(None), Need::Whole);
    }
}
