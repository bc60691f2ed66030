//! How a folder's book is kept in the store (the layout the module doc of
//! `crate::uids` gives): its keys, and the records of each version,
//! written at the latest and read at any. Apart from the books' logic so
//! that a change of layout is one place, and its old versions beside it.

use std::num::NonZeroU32;

use causeway_imap::serve::keywords::Keywords;
use causeway_imap::serve::view::Flags;
use causeway_store::{decode, encode};
use serde::{Deserialize, Serialize};

use super::Kept;

const VERSION: u8 = 2;

/// Every key of the books starts so (the delete journal shares the store).
pub(crate) const PREFIX: &[u8] = b"u/";
/// Where a folder's keys are, after its own prefix.
pub(super) const META: &str = "validity";
const MESSAGE: &str = "m/";
/// Folders other than INBOX: `u/f/<folder>/`.
const FOLDERS: &str = "u/f/";

#[derive(Serialize, Deserialize)]
struct Meta {
    version: u8,
    validity: u32,
    next: u32,
    keywords: Vec<Option<String>>,
}

/// [`Meta`] as version 1 wrote it.
#[derive(Deserialize)]
struct MetaV1 {
    version: u8,
    validity: u32,
    next: u32,
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: u8,
    uidl: String,
    flags: u8,
    arrived: u64,
    keywords: u32,
}

/// [`Record`] as version 1 wrote it.
#[derive(Deserialize)]
struct RecordV1 {
    version: u8,
    uidl: String,
    flags: u8,
    arrived: u64,
}

/// A folder's numbering, whichever version wrote it.
pub(super) fn decode_meta(plain: &[u8]) -> Option<(u32, u32, Vec<Option<String>>)> {
    match decode::<Meta>(plain) {
        Ok(m) if m.version == VERSION => Some((m.validity, m.next, m.keywords)),
        _ => match decode::<MetaV1>(plain) {
            Ok(m) if m.version == 1 => Some((m.validity, m.next, Vec::new())),
            _ => None,
        },
    }
}

/// The bit of [`Record::flags`] that keeps [`Kept::seen_there`] (above
/// those of [`Flags::bits`], which ignores it).
const SEEN_THERE: u8 = 1 << 7;

/// A message's record, whichever version wrote it: its UIDL, its flags and
/// whether its server had it `\Seen`, and its arrival.
pub(super) fn decode_record(plain: &[u8]) -> Option<(String, (Flags, bool), u64)> {
    let (uidl, bits, keywords, arrived) = match decode::<Record>(plain) {
        Ok(r) if r.version == VERSION => (r.uidl, r.flags, r.keywords, r.arrived),
        _ => match decode::<RecordV1>(plain) {
            Ok(r) if r.version == 1 => (r.uidl, r.flags, 0, r.arrived),
            _ => return None,
        },
    };
    let flags = Flags::from_bits(bits, keywords);
    Some((uidl, (flags, bits & SEEN_THERE != 0), arrived))
}

/// Where the keys of `folder`'s book are.
pub(super) fn prefix_of(folder: &str) -> String {
    if folder == causeway_proto::user::INBOX {
        String::from_utf8(PREFIX.to_vec()).expect("ASCII")
    } else {
        format!("{FOLDERS}{folder}/")
    }
}

/// Whether `key` is one of the book whose keys are under `prefix` (the
/// INBOX's `u/` holds the other folders' `u/f/...`).
pub(super) fn in_folder(key: &[u8], prefix: &str) -> bool {
    key.starts_with(prefix.as_bytes())
        && (prefix.as_bytes() != PREFIX || !key.starts_with(FOLDERS.as_bytes()))
}

pub(super) fn meta_key(prefix: &str) -> Vec<u8> {
    format!("{prefix}{META}").into_bytes()
}

pub(super) fn message_key(prefix: &str, uid: NonZeroU32) -> Vec<u8> {
    format!("{prefix}{MESSAGE}{:08x}", uid.get()).into_bytes()
}

pub(super) fn parse_message_key(rest: &str) -> Option<NonZeroU32> {
    let hex = rest.strip_prefix(MESSAGE)?;
    (hex.len() == 8).then(|| u32::from_str_radix(hex, 16).ok().and_then(NonZeroU32::new))?
}

/// A folder's record: its UIDVALIDITY, next UID and keyword table.
pub(super) fn meta_record(validity: NonZeroU32, next: NonZeroU32, keywords: &Keywords) -> Vec<u8> {
    encode(&Meta {
        version: VERSION,
        validity: validity.get(),
        next: next.get(),
        keywords: keywords.slots().to_vec(),
    })
}

/// A message's record: its UIDL and what [`Kept`] holds but its UID.
pub(super) fn message_record(uidl: &str, kept: Kept) -> Vec<u8> {
    encode(&Record {
        version: VERSION,
        uidl: uidl.to_owned(),
        flags: kept.flags.bits() | if kept.seen_there { SEEN_THERE } else { 0 },
        arrived: kept.arrived,
        keywords: kept.flags.keywords,
    })
}
