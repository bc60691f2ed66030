//! MOVE, and the proxy's own Trash folder.
//!
//! Thunderbird, Apple Mail, Outlook and K-9 delete by moving a message to
//! the Trash folder (RFC 6851 MOVE, or COPY, `\Deleted` and EXPUNGE
//! without it) and empty the Trash later; a user expects a message in the
//! Trash to be there until then. The servers behind the edge may be POP3,
//! which has no folders at all, so the Trash is the client proxy's:
//!
//! - MOVE to [`TRASH`] takes the messages out of the folder shown (each
//!   reported `EXPUNGE`) and into Trash's UID book, durably, under new
//!   UIDs (`COPYUID` says which). Nothing reaches a server: the message
//!   stays on it, unread if it was, and every folder's listing leaves it
//!   out while Trash holds it (`Front::number_folder`).
//! - In Trash, `\Deleted` and EXPUNGE delete on the server as in any other
//!   folder: a DELE each, answered once each is durable.
//! - MOVE out of Trash puts a message back into the folder of its entry,
//!   under a new UID there (UIDs only grow in a folder); to any other
//!   folder it is refused: Causeway cannot move mail between servers or
//!   folders.
//! - COPY is refused (the servers have nowhere to keep a copy), which
//!   mail clients take as "delete without Trash" or report; MOVE between
//!   two other folders too.
//!
//! A message stays in Trash across sessions and restarts, until expunged
//! there, put back, or gone from its server (another client deleted it).

use std::num::NonZeroU32;

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::core::{Tag, Vec1};
use causeway_imap::imap_types::extensions::uidplus::{UidElement, UidSet};
use causeway_imap::imap_types::mailbox::Mailbox;
use causeway_imap::imap_types::response::{Code, Data, Status};
use causeway_imap::imap_types::sequence::SequenceSet;
use causeway_imap::serve::view::Flags;
use causeway_net::Env;

use super::commands::{Flow, Front};
use super::replies::{code, no, ok};
use crate::config::TRASH;
use crate::uids::server_of;

impl<E: Env> Front<E> {
    /// MOVE (RFC 6851): to Trash, or out of Trash back to each message's
    /// own folder; anything else is refused.
    pub(super) async fn move_messages(
        &mut self,
        server: &mut Server,
        tag: Tag<'static>,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
    ) -> Flow {
        if self.refused_read_only(server, &tag) {
            return Flow::Go;
        }
        let Some(target) = self.folder_named(mailbox) else {
            server.enqueue_status(no(
                tag,
                Some(Code::TryCreate),
                "no such folder; Causeway shows the configured folders and Trash",
            ));
            return Flow::Go;
        };
        let v = self.view.as_ref().expect("selected states have a view");
        let indices = v.resolve(set, uid);
        if indices.is_empty() {
            server.enqueue_status(ok(tag, None, "nothing to move"));
            return Flow::Go;
        }
        let moved: Vec<(usize, NonZeroU32, String, Flags)> = indices
            .iter()
            .filter_map(|&i| {
                let m = v.get(i);
                let key = self.book_keys.get(&m.uid)?;
                // Keywords are bits into the folder's own table. `\Seen`
                // goes along only once its read mark is proved, as the
                // books keep it: else the next session would take the
                // mark for made, and never send it.
                let mut flags = Flags::from_bits(m.flags.bits(), 0);
                flags.seen &= self.marks.proved.contains(&m.key);
                Some((i, m.uid, key.clone(), flags))
            })
            .collect();
        if let Some(why) = self.refused_move(&target, &moved) {
            server.enqueue_status(no(tag, Some(code("CANNOT")), why));
            return Flow::Go;
        }
        let keys: Vec<(&str, Flags)> = moved.iter().map(|(_, _, k, f)| (k.as_str(), *f)).collect();
        let now_ms = self.env.unix_millis();
        let to = self.shared.uids.folder(&target).clone();
        let from = self.shared.uids.folder(&self.folder).clone();
        let (validity, given) = match to.take_in(&keys, now_ms).await {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(error = %e, folder = %target, "the IMAP UID book cannot be written; MOVE refused");
                server.enqueue_status(no(
                    tag,
                    Some(code("UNAVAILABLE")),
                    "the move cannot be kept now; nothing was moved",
                ));
                return Flow::Go;
            }
        };
        let keys: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        if let Err(e) = from.forget(&keys).await {
            // Shown in both until the folder's next listing leaves it out.
            tracing::warn!(error = %e, folder = %self.folder, "the IMAP UID book could not forget moved messages");
        }
        tracing::info!(from = %self.folder, to = %target, messages = moved.len(), "IMAP MOVE");
        let source: Vec<NonZeroU32> = moved.iter().map(|(_, u, _, _)| *u).collect();
        server.enqueue_status(
            Status::ok(
                None,
                Some(Code::CopyUid {
                    uid_validity: validity,
                    source: uid_set(&source),
                    destination: uid_set(&given),
                }),
                "moved",
            )
            .expect("valid text"),
        );
        for (_, uid, _, _) in &moved {
            self.book_keys.remove(uid);
        }
        let done: Vec<usize> = moved.iter().map(|(i, _, _, _)| *i).collect();
        for seq in self.view().expunge(&done) {
            server.enqueue_data(Data::Expunge(seq));
        }
        server.enqueue_status(ok(tag, None, "MOVE completed"));
        Flow::Go
    }

    /// Why these messages cannot go to `target`, if they cannot.
    fn refused_move(
        &self,
        target: &str,
        moved: &[(usize, NonZeroU32, String, Flags)],
    ) -> Option<String> {
        if target == self.folder {
            return Some(format!("the messages are in {target} already"));
        }
        if target == TRASH {
            return None;
        }
        if self.folder != TRASH {
            return Some(format!(
                "Causeway cannot move mail between folders or servers; a message can go to \
                 {TRASH} and back"
            ));
        }
        let elsewhere = moved
            .iter()
            .find(|(_, _, key, _)| self.config.imap_folder_of(server_of(key)) != Some(target))?;
        let home = self
            .config
            .imap_folder_of(server_of(&elsewhere.2))
            .unwrap_or("its own folder");
        Some(format!(
            "a message in {TRASH} can go back only to the folder it came from ({home} for UID {})",
            elsewhere.1
        ))
    }
}

/// `uids` as a UID set for `COPYUID`, in the order given.
fn uid_set(uids: &[NonZeroU32]) -> UidSet {
    let elements: Vec<UidElement> = uids.iter().map(|u| UidElement::Single(*u)).collect();
    UidSet(Vec1::try_from(elements).expect("at least one message moved"))
}
