//! APPEND: a message the mail client stores (its sent mail, its drafts)
//! goes to the server of the folder it names, through the POP3 session
//! behind (`XAPPEND`) and up the line in pieces (`crate::link`'s upload).
//!
//! Which server: the entry a folder shows, or for `INBOX` the one IMAP
//! entry that reads an INBOX (`ClientConfig::imap_append_target`); a POP3
//! server cannot store mail, and `Trash` is the proxy's own. A folder that
//! does not exist is `NO [TRYCREATE]`, as RFC 3501 §6.3.11 asks, with what
//! to configure. `OK` means the server said `OK`: the message is stored,
//! once (the edge stores each upload once, whatever the line does). The
//! date the client gives is not passed on: the server dates the message
//! when it stores it. The message shows in the folder from the next time
//! it is listed (`super::recheck`).
//!
//! `APPENDUID` (RFC 4315): a client that pushes mail it keeps a copy of
//! (mbsync) needs the UID the stored message will have, or it loses track
//! of it and later copies it back as new mail. When the server said where
//! it stored the message, the edge answers with the UIDL it will list it
//! by; the front gives the message its UID in the folder's book at once,
//! under the key the next listing will show it by, and answers with it.

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::core::Tag;
use causeway_imap::imap_types::extensions::binary::LiteralOrLiteral8;
use std::num::NonZeroU32;

use causeway_imap::imap_types::flag::{Flag, StoreType};
use causeway_imap::imap_types::mailbox::Mailbox;
use causeway_imap::imap_types::response::Code;
use causeway_imap::serve::view::Flags;
use causeway_net::Env;
use causeway_proto::session::MAX_APPEND;

use super::commands::{Flow, Front, mailbox_bytes};
use super::heartbeat::ClientGone;
use super::replies::{code, no, ok};
use crate::broken::Broken;
use crate::mailbox::shown_uidl;
use crate::uids::book_key;

/// Why an APPEND ends the session, when the mail client hung up while its
/// message was on its way.
const CLIENT_GONE: &str = "the mail client closed the connection while its message was stored";

impl<E: Env> Front<E> {
    pub(super) async fn append(
        &mut self,
        server: &mut Server,
        mail: &mut E::Stream,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        flags: &[Flag<'_>],
        message: &LiteralOrLiteral8<'_>,
    ) -> Flow {
        // imap-types reads `INBOX` in any case as `Mailbox::Inbox`, written
        // back as `INBOX`.
        let folder = String::from_utf8_lossy(&mailbox_bytes(mailbox)).into_owned();
        let entry = match self.config.imap_append_target(&folder) {
            Ok(s) => s.name.clone(),
            Err(why) => {
                let c = if self.folder_named(mailbox).is_some() {
                    "CANNOT"
                } else {
                    "TRYCREATE"
                };
                server.enqueue_status(no(tag, Some(code(c)), why));
                return Flow::Go;
            }
        };
        let message = match message {
            LiteralOrLiteral8::Literal(l) => l.data(),
            LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
        };
        if message.len() > MAX_APPEND {
            let why = format!("a message over {MAX_APPEND} octets is not stored");
            server.enqueue_status(no(tag, Some(code("TOOBIG")), why));
            return Flow::Go;
        }
        let names: Vec<Vec<u8>> = flags.iter().map(|f| f.to_string().into_bytes()).collect();
        let beat = self.heartbeat(mail, server);
        let m = match self.maildrop() {
            Ok(m) => m,
            Err(e) => {
                drop(beat);
                return self.lost(server, tag, &e);
            }
        };
        let line = b"* OK Still storing the message on its server.\r\n";
        let stored = beat.around(line, m.append(&entry, &names, message)).await;
        match stored {
            Ok(Ok(uidl)) => {
                let at = match uidl {
                    Some(uidl) => self.number_appended(&entry, &uidl, flags, message).await,
                    None => None,
                };
                tracing::info!(server = %entry, octets = message.len(), uid = ?at.map(|(_, u)| u),
                    "stored a message the mail client appended");
                let code = at.map(|(uid_validity, uid)| Code::AppendUid { uid_validity, uid });
                server.enqueue_status(ok(tag, code, "APPEND completed"));
                Flow::Go
            }
            Ok(Err(e)) => self.lost(server, tag, &e),
            Err(ClientGone) => Flow::Close(CLIENT_GONE),
        }
    }

    /// Gives a stored message its UID in the folder that shows `entry` at
    /// once, by the key its next listing will show (`uidl` as the edge
    /// lists it, and the size a server lists: [`listed_size`]), with the
    /// flags it was stored with; the folder's UIDVALIDITY and that UID, for
    /// `APPENDUID`. `None` (no APPENDUID; the next listing numbers it)
    /// when the book cannot be written.
    async fn number_appended(
        &self,
        entry: &str,
        uidl: &str,
        flags: &[Flag<'_>],
        message: &[u8],
    ) -> Option<(NonZeroU32, NonZeroU32)> {
        let folder = self.config.imap_folder_of(entry)?;
        let book = self.shared.uids.folder(folder).clone();
        // A keyword the folder's table cannot take is stored on the server
        // all the same; the front just does not show it.
        let keywords = match book.admit(flags, true).await {
            Ok(Ok(table)) => table.mask(flags),
            Ok(Err(_)) => 0,
            Err(e) => return unnumbered(folder, &e),
        };
        let mut kept = Flags::default();
        kept.store(StoreType::Add, flags, keywords);
        let key = book_key(&shown_uidl(entry, uidl), listed_size(message));
        let (validity, uid) = match book
            .take_in(&[(key.as_str(), kept)], self.env.unix_millis())
            .await
        {
            Ok((validity, uids)) => (validity, *uids.first()?),
            Err(e) => return unnumbered(folder, &e),
        };
        if self.config.broken(Broken::ImapAppendUidUnkept) {
            let _ = book.forget(&[key.as_str()]).await;
        }
        Some((validity, uid))
    }
}

fn unnumbered(folder: &str, e: &std::io::Error) -> Option<(NonZeroU32, NonZeroU32)> {
    tracing::warn!(folder, error = %e, "the IMAP UID book cannot be written; the appended \
        message is numbered at its folder's next listing (no APPENDUID)");
    None
}

/// The size a server lists a stored message by (RFC822.SIZE counts every
/// line end as CRLF; IMAP asks for CRLF, but a lone LF is counted as the
/// server will store it).
fn listed_size(message: &[u8]) -> u64 {
    let lone_lf = message
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || message[i - 1] != b'\r'))
        .count();
    (message.len() + lone_lf) as u64
}

#[cfg(test)]
mod tests {
    use super::listed_size;

    #[test]
    fn a_stored_message_is_listed_by_its_size_in_crlf_lines() {
        assert_eq!(listed_size(b"a\r\nb\r\n"), 6);
        assert_eq!(listed_size(b"a\nb\n"), 6);
        assert_eq!(listed_size(b"\na"), 3);
        assert_eq!(listed_size(b"a\r\n\nb"), 6);
        assert_eq!(listed_size(b"no line end"), 11);
    }
}
