//! `BODYSTRUCTURE` and `BODY` (RFC 3501 §7.4.2) from a message's MIME
//! tree ([`super::mime`]), written as Dovecot writes them: types and
//! parameters as the message spells them (but a message that is plain
//! 7-bit `text/plain` in the canonical lower-case form), `("charset"
//! "us-ascii")` after the parameters of a text part that names none, `"7bit"` when no encoding is given, sizes in
//! bytes and lines of the body as the client receives it (CRLF), and for
//! `BODYSTRUCTURE` the extension data (MD5, disposition, language,
//! location). A multipart with no parts shows one empty text part, as
//! Dovecot does, since IMAP's grammar needs at least one.

use imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_types::core::{IString, NString, Vec1};

use super::envelope::envelope;
use super::mime::{Content, Kind, Part, lines};
use super::strings::{istring, nstring};

/// The structure of `message` as parsed into `part`; `extended`:
/// `BODYSTRUCTURE` (with extension data), else `BODY`.
pub fn structure(message: &[u8], part: &Part, extended: bool) -> BodyStructure<'static> {
    if plain_7bit(part) {
        // Dovecot keeps no structure for such a message and writes the
        // default, in lower case, whatever the spelling.
        let plain = Part {
            content: Content::default(),
            ..part.clone()
        };
        return part_structure(message, &plain, extended);
    }
    part_structure(message, part, extended)
}

/// A message that is one `text/plain` part in `us-ascii` and 7bit, with
/// no other `Content-*` field.
fn plain_7bit(top: &Part) -> bool {
    let c = &top.content;
    let ci =
        |v: &Option<String>, want: &str| v.as_deref().is_none_or(|x| x.eq_ignore_ascii_case(want));
    top.kind == Kind::Single
        && (c.media.is_none() || c.is("text", "plain"))
        && c.params
            .iter()
            .all(|(n, v)| n.eq_ignore_ascii_case("charset") && v.eq_ignore_ascii_case("us-ascii"))
        && c.params.len() <= 1
        && c.id.is_none()
        && c.description.is_none()
        && ci(&c.encoding, "7bit")
        && c.md5.is_none()
        && c.disposition.is_none()
        && c.language.is_empty()
        && c.location.is_none()
}

fn part_structure(message: &[u8], part: &Part, extended: bool) -> BodyStructure<'static> {
    match &part.kind {
        Kind::Multi(children) => {
            let bodies = children
                .iter()
                .map(|c| part_structure(message, c, extended))
                .collect::<Vec<_>>();
            let bodies = Vec1::try_from(bodies).unwrap_or_else(|_| Vec1::from(empty(extended)));
            let subtype = part
                .content
                .media
                .as_ref()
                .map_or_else(|| istring(b"x-unknown"), |(_, s)| istring(s.as_bytes()));
            BodyStructure::Multi {
                bodies,
                subtype,
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: params(&part.content.params),
                    tail: Some(disposition(&part.content)),
                }),
            }
        }
        kind => {
            let c = &part.content;
            let body = &message[part.body.clone()];
            let text = c.is_text();
            let (kind_name, subtype) = match &c.media {
                Some((t, s)) => (t.as_str(), s.as_str()),
                None => ("text", "plain"),
            };
            let mut parameter_list = params(&c.params);
            if text
                && !c
                    .params
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("charset"))
            {
                parameter_list.push((istring(b"charset"), istring(b"us-ascii")));
            }
            let basic = BasicFields {
                parameter_list,
                id: opt(&c.id),
                description: opt(&c.description),
                content_transfer_encoding: istring(
                    c.encoding.as_deref().unwrap_or("7bit").as_bytes(),
                ),
                size: u32::try_from(body.len()).unwrap_or(u32::MAX),
            };
            let specific = match kind {
                Kind::Message(inner) => SpecificFields::Message {
                    envelope: Box::new(envelope(&message[inner.header.clone()])),
                    body_structure: Box::new(part_structure(message, inner, extended)),
                    number_of_lines: lines(body),
                },
                _ if text => SpecificFields::Text {
                    subtype: istring(subtype.as_bytes()),
                    number_of_lines: lines(body),
                },
                _ => SpecificFields::Basic {
                    r#type: istring(kind_name.as_bytes()),
                    subtype: istring(subtype.as_bytes()),
                },
            };
            BodyStructure::Single {
                body: Body { basic, specific },
                extension_data: extended.then(|| SinglePartExtensionData {
                    md5: opt(&c.md5),
                    tail: Some(disposition(c)),
                }),
            }
        }
    }
}

/// The empty `text/plain` Dovecot shows for a multipart with no parts.
fn empty(extended: bool) -> BodyStructure<'static> {
    let part = Part {
        header: 0..0,
        body: 0..0,
        content: Content::default(),
        kind: Kind::Single,
    };
    part_structure(b"", &part, extended)
}

fn params(list: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(n, v)| (istring(n.as_bytes()), istring(v.as_bytes())))
        .collect()
}

fn opt(v: &Option<String>) -> NString<'static> {
    v.as_deref()
        .map_or(NString(None), |s| nstring(s.as_bytes()))
}

/// Disposition, language and location: written out in full (as NIL where
/// absent), as Dovecot does.
fn disposition(c: &Content) -> Disposition<'static> {
    Disposition {
        disposition: c
            .disposition
            .as_ref()
            .map(|(d, p)| (istring(d.as_bytes()), params(p))),
        tail: Some(Language {
            language: c.language.iter().map(|l| istring(l.as_bytes())).collect(),
            tail: Some(Location {
                location: opt(&c.location),
                extensions: Vec::new(),
            }),
        }),
    }
}
