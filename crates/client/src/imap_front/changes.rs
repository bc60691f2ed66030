//! What an IMAP client changes: read marks, flags and expunges, each
//! answered only once it is owed.
//!
//! Read marks follow the delivery proof: a non-peek FETCH queues a mark
//! that becomes *due* once imap-next has put the whole response on the
//! socket (it asks for input only then), and is sent to the POP3 session (a
//! RETR) when the next command is handled, which was read after that: the
//! client took the response whole. A command the client had pipelined,
//! already read, proves nothing and does not send it, and neither does one
//! that was waiting when the response's last byte went out (it was sent
//! before the client could have the whole response:
//! `crate::session::write_proved` reads those in first); a client that
//! hangs up instead leaves the message unread.
//!
//! A stored `\Seen` is a change the client is told is done, so its read
//! mark is sent before the STORE is answered, and the STORE is answered
//! `OK` only once the edge owes the mark ([`super::maildrop::Maildrop::mark_read_owed`]):
//! a line cut or a hang-up right after the `OK` loses nothing. That holds
//! too for a message a non-peek FETCH already showed `\Seen`: its mark
//! went without that proof, so the STORE waits for it (a `NOOP`, a turn
//! on the line only if something was sent since the edge last answered).
//! The UID book keeps `\Seen` across sessions only for marks so proved (or
//! committed by the QUIT, answered `+OK`, that ends the session behind;
//! the session answers QUIT itself when the edge is out of reach, with
//! `-ERR`): a mark lost with
//! its session leaves the message unread on its server, and the next
//! session must show it unread, or a STORE of `\Seen` there would change
//! nothing.
//! A `\Seen` taken away ("mark as unread") undoes the marks: the message's
//! mark is forgotten here, whether sent or not, so a later read marks it
//! again, and on an IMAP entry the server is told
//! (`super::server_flags`), after the edge dropped the mark it owes.
//! An EXPUNGE is one DELE per message, each reported only once durable.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::core::{Tag, Vec1};
use causeway_imap::imap_types::fetch::MessageDataItem;
use causeway_imap::imap_types::flag::{Flag, StoreResponse, StoreType};
use causeway_imap::imap_types::response::{Code, Data};
use causeway_imap::imap_types::sequence::SequenceSet;
use causeway_imap::serve::view::seq_of;
use causeway_net::Env;
use causeway_pop3::ClientError;

use super::commands::{Flow, Front};
use super::replies::{code, no, ok};

/// Read marks on their way: see the module doc.
#[derive(Default)]
pub(super) struct Marks {
    pub(super) awaiting: Vec<u32>,
    pub(super) due: Vec<u32>,
    /// Sent (or read on the server already).
    pub(super) done: BTreeSet<u32>,
    /// Known to be owed by the edge, or read on the server already: the
    /// UID book keeps their `\Seen`.
    pub(super) proved: BTreeSet<u32>,
}

impl Marks {
    /// A non-peek FETCH of POP3 message `n` was answered.
    pub fn owed(&mut self, n: u32) {
        if !self.done.contains(&n) {
            self.awaiting.push(n);
        }
    }

    /// Message `n` is gone (expunged): nothing to mark.
    pub(super) fn forget(&mut self, n: u32) {
        for q in [&mut self.awaiting, &mut self.due] {
            q.retain(|&m| m != n);
        }
    }

    /// Message `n` was marked unread: nothing to mark, and a later read
    /// (a non-peek FETCH, a stored `\Seen`) marks it anew.
    pub(super) fn unread(&mut self, n: u32) {
        self.forget(n);
        self.done.remove(&n);
        self.proved.remove(&n);
    }
}

impl<E: Env> Front<E> {
    /// Sends the read marks the client has earned by taking non-peek
    /// FETCHes whole.
    pub(super) async fn settle_marks(&mut self) -> Result<(), ClientError> {
        let due = std::mem::take(&mut self.marks.due);
        self.send_marks(due, false).await.map(drop)
    }

    /// Sends read marks for POP3 messages `due` (with `owed`, returns only
    /// once the edge owes them, those sent before included) and keeps
    /// `\Seen` for them. Returns the messages whose mark was refused: they
    /// stay unread.
    async fn send_marks(&mut self, mut due: Vec<u32>, owed: bool) -> Result<Vec<u32>, ClientError> {
        due.sort_unstable();
        due.dedup();
        let sync = owed && due.iter().any(|n| !self.marks.proved.contains(n));
        due.retain(|n| !self.marks.done.contains(n));
        if due.is_empty() && !sync {
            return Ok(Vec::new());
        }
        let maildrop = self.maildrop()?;
        let refused = match owed {
            true => maildrop.mark_read_owed(&due).await?,
            false => maildrop.mark_read(&due).await?,
        };
        for (n, e) in &refused {
            tracing::warn!(message = n, error = %e, "a read mark was refused; the message stays unread on its server");
        }
        let refused: Vec<u32> = refused.into_iter().map(|(n, _)| n).collect();
        self.uncommitted |= !refused.is_empty();
        due.retain(|n| !refused.contains(n));
        self.marks.done.extend(due);
        if owed {
            // The sync proved every mark sent before it.
            self.prove_sent().await;
        }
        Ok(refused)
    }

    /// Ends the session behind with QUIT (`None`: none was open). A `+OK`
    /// committed every mark sent, so the UID book keeps their `\Seen`; an
    /// `-ERR` is logged (deletes already acknowledged are still carried
    /// out).
    pub(super) async fn quit_behind(
        &mut self,
    ) -> Option<Result<causeway_pop3::StatusLine, ClientError>> {
        let r = self.maildrop.take()?.quit().await;
        match &r {
            Ok(s) if s.status == causeway_pop3::Status::Ok => self.prove_sent().await,
            Ok(s) => {
                self.uncommitted = true;
                tracing::info!(reply = %String::from_utf8_lossy(&s.text),
                "the POP3 session behind could not commit everything now; deletes already \
                 acknowledged are still carried out")
            }
            Err(_) => self.uncommitted = true,
        }
        Some(r)
    }

    /// Makes every read mark sent owed by the edge (a `NOOP`, which the
    /// POP3 session answers once the edge has them) and keeps their `\Seen`
    /// in the UID book, before the shown folder changes. Nothing to prove,
    /// nothing sent.
    pub(super) async fn prove_marks(&mut self) -> Result<(), ClientError> {
        if self.marks.done.is_subset(&self.marks.proved) {
            return Ok(());
        }
        self.maildrop()?.noop().await?;
        self.prove_sent().await;
        Ok(())
    }

    /// Every mark sent is owed by the edge now (a sync, or a `+OK` to the
    /// QUIT that ended the session behind): the UID book keeps their
    /// `\Seen`.
    async fn prove_sent(&mut self) {
        let new: Vec<u32> = self
            .marks
            .done
            .difference(&self.marks.proved)
            .copied()
            .collect();
        if new.is_empty() {
            return;
        }
        let v = self.view.as_ref().expect("marks are for a shown folder");
        let marked: Vec<&str> = (0..v.exists() as usize)
            .map(|i| v.get(i))
            .filter(|m| new.binary_search(&m.key).is_ok())
            .filter_map(|m| self.book_keys.get(&m.uid).map(String::as_str))
            .collect();
        if let Err(e) = self
            .shared
            .uids
            .folder(&self.folder)
            .change(&marked, |f| f.seen = true)
            .await
        {
            tracing::warn!(error = %e, "the IMAP UID book could not keep \\Seen; the messages are read on their servers but show unread in the next IMAP session");
        }
        self.marks.proved.extend(new);
    }

    /// A folder opened with EXAMINE takes no change: `true` if refused.
    pub(super) fn refused_read_only(&self, server: &mut Server, tag: &Tag<'static>) -> bool {
        if !self.read_only() {
            return false;
        }
        let why = format!("{} was opened with EXAMINE", self.folder);
        server.enqueue_status(no(tag.clone(), Some(Code::ReadOnly), why));
        true
    }

    /// Changes flags: kept in the UID book first (all but an added
    /// `\Seen`, which is kept once its read mark went to the server), then
    /// the read marks an added `\Seen` makes, owed by the edge before the
    /// answer; then shown. A refused mark leaves its message unseen and the
    /// STORE answered `NO`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store(
        &mut self,
        server: &mut Server,
        tag: Tag<'static>,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
    ) -> Flow {
        if self.refused_read_only(server, &tag) {
            return Flow::Go;
        }
        let Some(keywords) = self.keywords_for(server, &tag, kind, flags).await else {
            return Flow::Go;
        };
        let mut indices = self.view().resolve(set, uid);
        // Flags kept on IMAP servers go there first; a message whose server
        // refused keeps the flags it had, and the STORE says so.
        let (unstored, unread_there) = match self.store_on_servers(&indices, kind, flags).await {
            Ok(stored) => stored,
            Err(e) => return self.lost(server, tag, &e),
        };
        indices.retain(|i| !unstored.contains(i));
        let unread = match kind {
            StoreType::Add => false,
            StoreType::Remove => flags.contains(&Flag::Seen),
            StoreType::Replace => !flags.contains(&Flag::Seen),
        };
        if unread {
            for &i in &indices {
                let n = self.view().get(i).key;
                self.marks.unread(n);
            }
        }
        let v = self.view.as_ref().expect("selected states have a view");
        let keys: Vec<&str> = indices
            .iter()
            .filter_map(|&i| self.book_keys.get(&v.get(i).uid).map(String::as_str))
            .collect();
        // Every message the STORE leaves `\Seen` whose mark is not proved
        // owed: not yet shown `\Seen`, or shown so by a non-peek FETCH.
        let reads: Vec<u32> = indices
            .iter()
            .map(|&i| v.get(i))
            .filter(|m| {
                let mut after = m.flags;
                after.store(kind, flags, keywords);
                after.seen && !self.marks.proved.contains(&m.key)
            })
            .map(|m| m.key)
            .collect();
        let kept = self
            .shared
            .uids
            .folder(&self.folder)
            .change(&keys, |f| {
                let was_seen = f.seen;
                f.store(kind, flags, keywords);
                if f.seen && !was_seen {
                    f.seen = false;
                }
            })
            .await;
        let book = self.shared.uids.folder(&self.folder);
        let unread_there: Vec<&str> = unread_there.iter().map(String::as_str).collect();
        if let Err(e) = book.unread_there(&unread_there).await {
            tracing::warn!(error = %e, "the IMAP UID book could not keep that messages were marked unread on their servers; one read elsewhere later may show unread here");
        }
        if let Err(e) = kept {
            tracing::warn!(error = %e, "the IMAP UID book cannot be written; STORE refused");
            server.enqueue_status(no(
                tag,
                Some(code("UNAVAILABLE")),
                "the flags cannot be kept now; nothing was changed",
            ));
            return Flow::Go;
        }
        let refused = match self.send_marks(reads, !self.seen_unowed).await {
            Ok(refused) => refused,
            Err(e) => return self.lost(server, tag, &e),
        };
        for i in indices {
            let m = self.view().get_mut(i);
            m.flags.store(kind, flags, keywords);
            if refused.contains(&m.key) {
                m.flags.seen = false;
            }
            let (uid_n, flags, key) = (m.uid, m.flags, m.key);
            let fetched = flags.fetched(self.keywords());
            if response == StoreResponse::Answer || refused.contains(&key) {
                let mut items = vec![MessageDataItem::Flags(fetched)];
                if uid {
                    items.push(MessageDataItem::Uid(uid_n));
                }
                let seq = seq_of(i).expect("in range");
                server.enqueue_data(Data::Fetch {
                    seq,
                    items: Vec1::try_from(items).expect("not empty"),
                });
            }
        }
        if !unstored.is_empty() {
            let n = unstored.len();
            server.enqueue_status(no(
                tag,
                Some(code("UNAVAILABLE")),
                format!("the server of {n} message(s) did not store their flags; nothing changed for them"),
            ));
        } else if refused.is_empty() {
            server.enqueue_status(ok(tag, None, "STORE completed"));
        } else {
            let n = refused.len();
            server.enqueue_status(no(
                tag,
                Some(code("CANNOT")),
                format!("{n} message(s) could not be marked read on their server and stay unseen; the other flags were stored"),
            ));
        }
        Flow::Go
    }

    /// The bits of a STORE's keywords in the folder's table, from the UID
    /// book (which another session may have given more); an added keyword
    /// the table lacks gets a slot first, and the client is told the
    /// folder's new FLAGS. `None`: refused, and the client was told why.
    async fn keywords_for(
        &mut self,
        server: &mut Server,
        tag: &Tag<'static>,
        kind: StoreType,
        flags: &[Flag<'_>],
    ) -> Option<u32> {
        if !flags.iter().any(|f| matches!(f, Flag::Keyword(_))) {
            return Some(0);
        }
        let book = self.shared.uids.folder(&self.folder).clone();
        let table = match book.admit(flags, kind != StoreType::Remove).await {
            Ok(Ok(table)) => table,
            Ok(Err(why)) => {
                tracing::info!(folder = %self.folder, %why, "a STORE's keyword was refused");
                server.enqueue_status(no(tag.clone(), Some(code("LIMIT")), why.to_string()));
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the IMAP UID book cannot be written; STORE refused");
                server.enqueue_status(no(
                    tag.clone(),
                    Some(code("UNAVAILABLE")),
                    "the flags cannot be kept now; nothing was changed",
                ));
                return None;
            }
        };
        let mask = table.mask(flags);
        let view = self.view.as_mut().expect("selected states have a view");
        if view.keywords != table {
            view.keywords = table;
            self.announce_flags(server, false);
        }
        Some(mask)
    }

    /// Removes the messages flagged `\Deleted` (of `uids`, if given): a
    /// DELE each, and each reported only once the POP3 session has it
    /// durably. A refusal stops there; what was done is reported.
    pub(super) async fn expunge(
        &mut self,
        server: &mut Server,
        tag: Tag<'static>,
        uids: Option<SequenceSet>,
        report: bool,
    ) -> Flow {
        if self.refused_read_only(server, &tag) {
            return Flow::Go;
        }
        let v = self.view();
        let chosen = match &uids {
            Some(set) => v.resolve(set, true),
            None => (0..v.exists() as usize).collect(),
        };
        let doomed: Vec<(usize, u32, NonZeroU32)> = chosen
            .into_iter()
            .filter(|&i| v.get(i).flags.deleted)
            .map(|i| (i, v.get(i).key, v.get(i).uid))
            .collect();
        let mut done = Vec::new();
        let mut gone = Vec::new();
        let mut failed = None;
        for (i, n, uid) in doomed {
            let r = match self.maildrop() {
                Ok(m) => m.delete(n).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {
                    done.push(i);
                    gone.extend(self.book_keys.remove(&uid));
                    self.marks.forget(n);
                    if self.cache.as_ref().is_some_and(|c| c.message == n) {
                        self.cache = None;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
        if let Err(e) = self.shared.uids.folder(&self.folder).forget(&gone).await {
            tracing::warn!(error = %e, "the IMAP UID book could not forget expunged messages; a later message with the same UIDL and size would take their UIDs");
        }
        let reported = self.view().expunge(&done);
        if report {
            for seq in reported {
                server.enqueue_data(Data::Expunge(seq));
            }
        }
        match failed {
            None => {
                server.enqueue_status(ok(tag, None, "EXPUNGE completed"));
                Flow::Go
            }
            Some(e) => self.lost(server, tag, &e),
        }
    }
}
