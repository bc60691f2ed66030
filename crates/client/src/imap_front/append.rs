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

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::core::Tag;
use causeway_imap::imap_types::extensions::binary::LiteralOrLiteral8;
use causeway_imap::imap_types::flag::Flag;
use causeway_imap::imap_types::mailbox::Mailbox;
use causeway_net::Env;
use causeway_proto::session::MAX_APPEND;

use super::commands::{Flow, Front, mailbox_bytes};
use super::heartbeat::ClientGone;
use super::replies::{code, no, ok};

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
        let folder = String::from_utf8_lossy(&mailbox_bytes(mailbox)).into_owned();
        let folder = if folder.eq_ignore_ascii_case("INBOX") {
            super::commands::INBOX.to_owned()
        } else {
            folder
        };
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
        let flags: Vec<Vec<u8>> = flags.iter().map(|f| f.to_string().into_bytes()).collect();
        let beat = self.heartbeat(mail, server);
        let m = match self.maildrop() {
            Ok(m) => m,
            Err(e) => {
                drop(beat);
                return self.lost(server, tag, &e);
            }
        };
        let line = b"* OK Still storing the message on its server.\r\n";
        let stored = beat.around(line, m.append(&entry, &flags, message)).await;
        match stored {
            Ok(Ok(())) => {
                tracing::info!(server = %entry, octets = message.len(), "stored a message the mail client appended");
                server.enqueue_status(ok(tag, None, "APPEND completed"));
                Flow::Go
            }
            Ok(Err(e)) => self.lost(server, tag, &e),
            Err(ClientGone) => Flow::Close(CLIENT_GONE),
        }
    }
}
