//! The commands the edge sends to an IMAP server, and nothing else.
//!
//! Why a module of its own: the read and delete rules of Causeway are
//! decided by which IMAP commands go out, and a wrong one is silent (a
//! `BODY[]` marks a message read on the server before anyone read it; a bare
//! `EXPUNGE` removes messages another client flagged `\Deleted`). So every
//! command is built here, from UIDs only (a sequence number is one
//! session's view and is never carried across sessions), and the tests pin
//! the bytes each one puts on the wire.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use imap_types::IntoStatic;
use imap_types::command::CommandBody;
use imap_types::core::{Charset, Vec1};
use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::mailbox::Mailbox;
use imap_types::search::SearchKey;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// A value that cannot be put in an IMAP command (a NUL or a line break in
/// a user name, an empty folder name, an empty UID list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot be sent in an IMAP command: {0}")]
pub struct Unsendable(pub &'static str);

/// `LOGIN user password` (a literal where the grammar needs one).
pub fn login(user: &str, password: &[u8]) -> Result<CommandBody<'static>, Unsendable> {
    CommandBody::login(user.to_owned(), password.to_vec())
        .map_err(|_| Unsendable("a user name or password with a NUL or a line break"))
}

/// How to log in to a server, from its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// `AUTHENTICATE PLAIN`, its response with the command if the server
    /// lists `SASL-IR`.
    Plain { initial_response: bool },
    /// `LOGIN`.
    Login,
    /// Neither: `LOGINDISABLED` without `AUTH=PLAIN`.
    None,
}

impl Login {
    /// `AUTH=PLAIN` first (it carries any octets of a password, where
    /// LOGIN's strings are 7-bit unless sent as literals, and it is what
    /// a server that disables LOGIN still takes), then `LOGIN` unless the
    /// server lists `LOGINDISABLED`. `capabilities` are upper case.
    pub fn choose(capabilities: &BTreeSet<String>) -> Login {
        if capabilities.contains("AUTH=PLAIN") {
            Login::Plain {
                initial_response: capabilities.contains("SASL-IR"),
            }
        } else if capabilities.contains("LOGINDISABLED") {
            Login::None
        } else {
            Login::Login
        }
    }
}

/// The PLAIN response (RFC 4616): no authorisation identity, the user,
/// the password, separated by NUL (which neither may hold).
pub fn plain_response(user: &str, password: &[u8]) -> Result<Vec<u8>, Unsendable> {
    if user.is_empty() || user.contains('\0') || password.contains(&0) {
        return Err(Unsendable(
            "an empty user name, or a user name or password with a NUL",
        ));
    }
    let mut r = Vec::with_capacity(user.len() + password.len() + 2);
    r.push(0);
    r.extend_from_slice(user.as_bytes());
    r.push(0);
    r.extend_from_slice(password);
    Ok(r)
}

/// `SELECT folder` (read-write: the edge stores flags and expunges here).
pub fn select(folder: &str) -> Result<CommandBody<'static>, Unsendable> {
    CommandBody::select(folder.to_owned()).map_err(|_| Unsendable("this folder name"))
}

/// `LIST "" "*"`: every folder of the account.
pub fn list_all() -> CommandBody<'static> {
    CommandBody::list("", "*").expect("a valid LIST")
}

/// `UID FETCH 1:* (UID RFC822.SIZE FLAGS)`: the folder's listing.
pub fn listing() -> CommandBody<'static> {
    let all = SequenceSet::from(Sequence::Range(
        SeqOrUid::Value(NonZeroU32::MIN),
        SeqOrUid::Asterisk,
    ));
    CommandBody::Fetch {
        sequence_set: all,
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(vec![
            MessageDataItemName::Uid,
            MessageDataItemName::Rfc822Size,
            MessageDataItemName::Flags,
        ]),
        uid: true,
    }
}

/// `UID FETCH uid (UID BODY.PEEK[])`: the whole message, **without**
/// setting `\Seen` (RFC 3501 §6.4.5). `UID` comes back with it so that the
/// answer can be told from an unsolicited FETCH.
pub fn body(uid: NonZeroU32) -> CommandBody<'static> {
    whole(uid, true)
}

/// `UID FETCH uid (UID BODY[])`: the whole message, setting `\Seen` as it
/// is sent. What a mail client that reads sends; never the edge (its
/// bodies stay unread until the mail client has them).
pub fn read(uid: NonZeroU32) -> CommandBody<'static> {
    whole(uid, false)
}

/// `UID FETCH uid (UID BODYSTRUCTURE BODY[1])`: a message's structure,
/// then its first part, not peeked, as Thunderbird reads a large message
/// a part at a time. The server sets `\Seen`; the client proxy marks it
/// read on the mail server only for a whole message.
pub fn read_first_part(uid: NonZeroU32) -> CommandBody<'static> {
    let one = imap_types::fetch::Part(imap_types::core::Vec1::from(NonZeroU32::MIN));
    CommandBody::Fetch {
        sequence_set: SequenceSet::from(uid),
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(vec![
            MessageDataItemName::Uid,
            MessageDataItemName::BodyStructure,
            MessageDataItemName::BodyExt {
                section: Some(imap_types::fetch::Section::Part(one)),
                partial: None,
                peek: false,
            },
        ]),
        uid: true,
    }
}

fn whole(uid: NonZeroU32, peek: bool) -> CommandBody<'static> {
    CommandBody::Fetch {
        sequence_set: SequenceSet::from(uid),
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(vec![
            MessageDataItemName::Uid,
            MessageDataItemName::BodyExt {
                section: None,
                partial: None,
                peek,
            },
        ]),
        uid: true,
    }
}

/// `UID STORE uids +FLAGS.SILENT (flag)`.
fn add_flag(uids: &[NonZeroU32], flag: Flag<'static>) -> Result<CommandBody<'static>, Unsendable> {
    store_flag(uids, StoreType::Add, flag)
}

/// `UID STORE uids -FLAGS.SILENT (\Deleted)`: a delete taken back (only
/// for a server without UIDPLUS, where it cannot be limited to `uids`).
pub fn unflag_deleted(uids: &[NonZeroU32]) -> Result<CommandBody<'static>, Unsendable> {
    store_flag(uids, StoreType::Remove, Flag::Deleted)
}

fn store_flag(
    uids: &[NonZeroU32],
    kind: StoreType,
    flag: Flag<'static>,
) -> Result<CommandBody<'static>, Unsendable> {
    let set = uid_set(uids)?;
    Ok(CommandBody::Store {
        sequence_set: set,
        kind,
        response: StoreResponse::Silent,
        flags: vec![flag],
        uid: true,
    })
}

/// `UID STORE uids +FLAGS.SILENT (flags)` (`add`) or `-FLAGS.SILENT`: flags
/// the mail client stored itself (`\Flagged`, `\Answered`, `\Draft`,
/// keywords). Never `\Seen` or `\Deleted`: a read mark waits for the
/// delivery of the whole message and a delete for its owed work's rules
/// (see [`mark_seen`], [`flag_deleted`]); nor `\Recent`, the server's alone.
pub fn store_flags(
    uids: &[NonZeroU32],
    add: bool,
    flags: &[String],
) -> Result<CommandBody<'static>, Unsendable> {
    let flags = flags
        .iter()
        .map(|f| match Flag::try_from(f.as_str()) {
            Ok(Flag::Seen | Flag::Deleted | Flag::Extension(_)) | Err(_) => {
                Err(Unsendable("a flag that STORE may not change here"))
            }
            Ok(flag) => Ok(flag.into_static()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if flags.is_empty() {
        return Err(Unsendable("no flag"));
    }
    Ok(CommandBody::Store {
        sequence_set: uid_set(uids)?,
        kind: if add {
            StoreType::Add
        } else {
            StoreType::Remove
        },
        response: StoreResponse::Silent,
        flags,
        uid: true,
    })
}

/// `UID STORE uids +FLAGS.SILENT (\Seen)`: the read mark, sent only once
/// the mail client has the whole message.
pub fn mark_seen(uids: &[NonZeroU32]) -> Result<CommandBody<'static>, Unsendable> {
    add_flag(uids, Flag::Seen)
}

/// `UID STORE uids -FLAGS.SILENT (\Seen)`: the mail client marked them
/// unread, which undoes a read mark only as the last word (the edge drops
/// a read mark it still owes first).
pub fn unmark_seen(uids: &[NonZeroU32]) -> Result<CommandBody<'static>, Unsendable> {
    store_flag(uids, StoreType::Remove, Flag::Seen)
}

/// `UID STORE uids +FLAGS.SILENT (\Deleted)`: the first half of a delete.
pub fn flag_deleted(uids: &[NonZeroU32]) -> Result<CommandBody<'static>, Unsendable> {
    add_flag(uids, Flag::Deleted)
}

/// `UID EXPUNGE uids` (RFC 4315): removes those of `uids` that are flagged
/// `\Deleted`, and nothing else.
pub fn uid_expunge(uids: &[NonZeroU32]) -> Result<CommandBody<'static>, Unsendable> {
    Ok(CommandBody::ExpungeUid {
        sequence_set: uid_set(uids)?,
    })
}

/// `UID MOVE uids folder` (RFC 6851).
pub fn uid_move(uids: &[NonZeroU32], folder: &str) -> Result<CommandBody<'static>, Unsendable> {
    Ok(CommandBody::Move {
        sequence_set: uid_set(uids)?,
        mailbox: Mailbox::try_from(folder.to_owned())
            .map_err(|_| Unsendable("this folder name"))?,
        uid: true,
    })
}

/// `APPEND folder (flags) {n}` with `message` as a synchronising literal
/// (every server takes one; the client waits for its go-ahead, so a server
/// that refuses the size says so before the bytes go). `flags` by their
/// IMAP names (`\Seen`, `\Draft`, keywords); `\Recent` is the server's
/// alone (RFC 3501 §2.3.2). A NUL in the message cannot be sent as a
/// literal (RFC 3501 §4.3).
pub fn append(
    folder: &str,
    flags: &[String],
    message: &[u8],
) -> Result<CommandBody<'static>, Unsendable> {
    let flags = flags
        .iter()
        .map(|f| match Flag::try_from(f.as_str()) {
            Ok(Flag::Extension(_)) | Err(_) => Err(Unsendable("a flag that APPEND cannot set")),
            Ok(flag) => Ok(flag.into_static()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    CommandBody::append(folder.to_owned(), flags, None, message.to_vec()).map_err(|e| match e {
        imap_types::command::error::AppendError::Mailbox(_) => Unsendable("this folder name"),
        imap_types::command::error::AppendError::Data(_) => {
            Unsendable("a message with a NUL octet")
        }
    })
}

/// `UID SEARCH CHARSET UTF-8 key`: the messages one criterion matches.
/// The charset is always named: a text criterion may be any UTF-8, and
/// every server must take UTF-8 (RFC 3501 §6.4.4).
pub fn uid_search(key: SearchKey<'static>) -> CommandBody<'static> {
    CommandBody::Search {
        charset: Some(Charset::try_from("UTF-8").expect("an atom")),
        criteria: Vec1::from(key),
        uid: true,
    }
}

/// The day a `SENTBEFORE`, `SENTON` or `SENTSINCE` criterion names, if
/// the calendar has it (IMAP's years are 0 to 9999).
pub fn search_day(year: u16, month: u8, day: u8) -> Option<imap_types::datetime::NaiveDate> {
    let d = chrono::NaiveDate::from_ymd_opt(year.into(), month.into(), day.into())?;
    imap_types::datetime::NaiveDate::try_from(d).ok()
}

/// `UID SEARCH DELETED`: the messages a bare `EXPUNGE` would remove.
pub fn search_deleted() -> CommandBody<'static> {
    CommandBody::Search {
        charset: None,
        criteria: Vec1::from(SearchKey::Deleted),
        uid: true,
    }
}

fn uid_set(uids: &[NonZeroU32]) -> Result<SequenceSet, Unsendable> {
    SequenceSet::try_from(uids).map_err(|_| Unsendable("an empty UID list"))
}

#[cfg(test)]
mod tests {
    use imap_next::imap_types::command::Command;
    use imap_next::imap_types::core::Tag;
    use imap_types::command::CommandBody;

    use super::*;

    /// The bytes a command puts on the wire, literals inline.
    pub(crate) fn wire(body: CommandBody<'static>) -> String {
        use imap_codec::encode::Encoder;
        let cmd = Command {
            tag: Tag::try_from("A1").unwrap(),
            body,
        };
        let bytes: Vec<u8> = imap_codec::CommandCodec::default().encode(&cmd).dump();
        String::from_utf8(bytes).unwrap()
    }

    fn uid(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn bodies_are_always_peeked_and_deletes_name_their_uids() {
        assert_eq!(wire(body(uid(7))), "A1 UID FETCH 7 (UID BODY.PEEK[])\r\n");
        assert_eq!(
            wire(listing()),
            "A1 UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n"
        );
        // Consecutive UIDs may be written as a range; a gap never is.
        assert_eq!(
            wire(mark_seen(&[uid(3), uid(4), uid(9)]).unwrap()),
            "A1 UID STORE 3:4,9 +FLAGS.SILENT (\\Seen)\r\n"
        );
        assert_eq!(
            wire(flag_deleted(&[uid(5)]).unwrap()),
            "A1 UID STORE 5 +FLAGS.SILENT (\\Deleted)\r\n"
        );
        assert_eq!(
            wire(uid_expunge(&[uid(5), uid(7)]).unwrap()),
            "A1 UID EXPUNGE 5,7\r\n"
        );
        assert_eq!(wire(select("INBOX").unwrap()), "A1 SELECT INBOX\r\n");
        assert_eq!(wire(list_all()), "A1 LIST \"\" *\r\n");
    }

    #[test]
    fn a_search_names_its_charset_and_sends_any_text() {
        use imap_types::core::AString;
        let text = |s: &str| AString::try_from(s.to_owned()).unwrap();
        assert_eq!(
            wire(uid_search(SearchKey::Subject(text("two words")))),
            "A1 UID SEARCH CHARSET UTF-8 SUBJECT \"two words\"\r\n"
        );
        assert_eq!(
            wire(uid_search(SearchKey::Header(text("X-Tag"), text("")))),
            "A1 UID SEARCH CHARSET UTF-8 HEADER X-Tag \"\"\r\n"
        );
        assert_eq!(
            wire(uid_search(SearchKey::Body(text("Grüße\r\nA2 LOGOUT")))),
            "A1 UID SEARCH CHARSET UTF-8 BODY {18}\r\nGrüße\r\nA2 LOGOUT\r\n"
        );
    }

    #[test]
    fn an_append_is_a_synchronising_literal_with_its_flags() {
        let flags = ["\\Seen".to_string(), "$Sent".to_string()];
        assert_eq!(
            wire(append("Sent", &flags, b"Subject: x\r\n\r\nhi\r\n").unwrap()),
            "A1 APPEND Sent (\\Seen $Sent) {18}\r\nSubject: x\r\n\r\nhi\r\n\r\n"
        );
        // \Recent is the server's; a NUL cannot go in a literal.
        assert!(append("Sent", &["\\Recent".into()], b"x").is_err());
        assert!(append("Sent", &[], b"a\0b").is_err());
    }

    #[test]
    fn stored_flags_go_as_asked_but_never_seen_or_deleted() {
        let f = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            wire(store_flags(&[uid(5)], true, &f(&["\\Flagged", "$Label1"])).unwrap()),
            "A1 UID STORE 5 +FLAGS.SILENT (\\Flagged $Label1)\r\n"
        );
        assert_eq!(
            wire(store_flags(&[uid(5)], false, &f(&["\\Answered"])).unwrap()),
            "A1 UID STORE 5 -FLAGS.SILENT (\\Answered)\r\n"
        );
        // Read marks and deletes have their own rules; \Recent is the
        // server's; a flag that is no flag cannot smuggle a command in.
        for bad in [
            "\\Seen",
            "\\Deleted",
            "\\Recent",
            "a b",
            "x)\r\nA2 EXPUNGE",
            "",
        ] {
            assert!(store_flags(&[uid(5)], true, &f(&[bad])).is_err(), "{bad:?}");
        }
        assert!(store_flags(&[uid(5)], true, &[]).is_err());
        assert!(store_flags(&[], true, &f(&["\\Flagged"])).is_err());
    }

    #[test]
    fn what_cannot_be_sent_is_refused_not_mangled() {
        assert!(mark_seen(&[]).is_err());
        assert!(uid_expunge(&[]).is_err());
        assert!(login("alice", b"pa\0ss").is_err());
        // A line break cannot start a command of its own: the name goes
        // as a literal.
        let w = wire(login("alice\r\nA2 DELETE INBOX", b"x").unwrap());
        assert!(
            w.starts_with("A1 LOGIN {22}\r\nalice\r\nA2 DELETE INBOX x"),
            "{w}"
        );
        // A password with spaces and quotes is quoted or sent as a literal,
        // never split.
        let w = wire(login("alice", b"p \"w").unwrap());
        assert!(w.starts_with("A1 LOGIN alice "), "{w}");
        assert!(w.contains("p \\\"w") || w.contains("{4}"), "{w}");
    }

    #[test]
    fn the_login_is_chosen_from_the_capabilities() {
        let caps = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            Login::choose(&caps(&["IMAP4REV1", "AUTH=PLAIN", "SASL-IR"])),
            Login::Plain {
                initial_response: true
            }
        );
        assert_eq!(
            Login::choose(&caps(&["IMAP4REV1", "AUTH=PLAIN", "LOGINDISABLED"])),
            Login::Plain {
                initial_response: false
            }
        );
        assert_eq!(
            Login::choose(&caps(&["IMAP4REV1", "AUTH=CRAM-MD5"])),
            Login::Login
        );
        assert_eq!(
            Login::choose(&caps(&["IMAP4REV1", "LOGINDISABLED", "STARTTLS"])),
            Login::None
        );
    }

    #[test]
    fn the_plain_response_is_the_user_and_password_after_an_empty_identity() {
        assert_eq!(
            plain_response("alice", "pässword".as_bytes()).unwrap(),
            b"\0alice\0p\xc3\xa4ssword".to_vec()
        );
        assert!(plain_response("alice", b"pa\0ss").is_err());
        assert!(plain_response("al\0ice", b"x").is_err());
        assert!(plain_response("", b"x").is_err());
    }
}
