//! The folder over time: listed at login, and listed again while a client
//! stays connected, so new mail shows up and mail gone elsewhere goes.
//!
//! The POP3 session behind the front lists the maildrops once, at its
//! start: a POP3 session is a snapshot (RFC 1939), and so is the edge's
//! replica. IMAP clients stay connected for hours (Thunderbird, neomutt)
//! and look for new mail with NOOP, CHECK or IDLE. So when one asks, and
//! the folder was listed `timeouts.imap_recheck` ago or more, the front
//! ends the session behind with QUIT (committing what it owes at once,
//! which in IMAP was done when answered anyway) and opens another, whose
//! listing is merged into the folder the client sees:
//!
//! - a message no longer listed is reported `* n EXPUNGE` (another client
//!   deleted it, or its server did), but only if its server was listed:
//!   the messages of a server out of reach now (or emptied) stay shown
//!   until the next SELECT, unreachable ([`OUT_OF_REACH`]): a FETCH, STORE
//!   or EXPUNGE of one is refused, never taken for a deletion;
//! - a listed message the folder lacks is added under the UID the UID book
//!   gives it (`* n EXISTS`). UIDs only grow under one UIDVALIDITY, so a
//!   message whose UID is below the folder's UIDNEXT (one of a server that
//!   was out of reach when the folder was listed, whose UIDs the book kept)
//!   waits for the next SELECT;
//! - every message keeps the flags the session gave it; a read mark the
//!   old session behind took down with it unproved (its QUIT was not
//!   answered `+OK`) is sent again in the new one.
//!
//! Each listing costs a new session with the edge (a login to every
//! server): `imap_recheck` (a minute by default) bounds how often. A line
//! cut while it opens is tried again as a resume would be: the client's
//! command waits, and only a refusal or a cut that outlasts
//! `timeouts.resume` ends its session.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::core::Tag;
use causeway_imap::imap_types::response::{CommandContinuationRequest, Data};
use causeway_imap::serve::keywords::Keywords;
use causeway_imap::serve::view::{Message, View};
use causeway_net::Env;
use causeway_pop3::ClientError;
use causeway_proto::session::ServerFlags;

use super::commands::{Front, State};
use super::maildrop::Maildrop;
use super::replies::{bad, no, ok, refusal};
use crate::broken::Broken;
use crate::config::TRASH;
use crate::link::{FIRST_PAUSE, MAX_PAUSE};
use crate::uids::{Kept, book_key, server_of};

/// The key of a shown message whose server is out of reach in the current
/// session behind: POP3 numbers start at 1, so every operation on it is
/// refused by the POP3 session.
pub(super) const OUT_OF_REACH: u32 = 0;

/// What became of an IDLE.
pub(super) enum Idle {
    /// Accepted: the client waits for news until it sends DONE.
    Idling(Tag<'static>),
    Refused,
    /// The session behind is gone: the client was told, and the session
    /// ends.
    Over,
}

/// Why the folder could not be listed.
pub(super) enum Unlisted {
    /// The POP3 session behind refused or ended.
    Session(ClientError),
    /// The UID book could not keep the numbering (logged): nothing may be
    /// shown.
    Book,
}

/// A listing numbered by the UID book: each message with its book key.
pub(super) struct Listed {
    validity: NonZeroU32,
    next: NonZeroU32,
    keywords: Keywords,
    messages: Vec<(Message<u32>, String)>,
}

impl Listed {
    /// The folder as a view, for a STATUS of a folder not shown.
    pub(super) fn into_view(self) -> View<u32> {
        let messages = self.messages.into_iter().map(|(m, _)| m).collect();
        View::with_uids((self.validity, self.next), self.keywords, messages)
    }
}

impl<E: Env> Front<E> {
    /// Lists the session behind (every folder's messages, kept for a
    /// SELECT of another folder) and numbers the shown folder's with its
    /// UID book.
    pub(super) async fn list_folder(&mut self) -> Result<Listed, Unlisted> {
        let (list, opened_ms) = match self.maildrop() {
            Ok(m) => {
                let list = m.listing().await;
                let flags = m.server_flags().await;
                (list.and_then(|l| Ok((l, flags?))), m.opened_ms())
            }
            Err(e) => (Err(e), 0),
        };
        let (list, flags) = list.map_err(Unlisted::Session)?;
        self.listed_at = self.env.now();
        self.listed_ms = opened_ms;
        self.listing = list;
        self.server_flags = flags;
        let folder = self.folder.clone();
        self.number_folder(&folder).await
    }

    /// The messages of `folder` in the session behind's listing, numbered
    /// with the folder's UID book.
    /// A message moved to Trash is Trash's alone (`super::trash`).
    pub(super) async fn number_folder(&mut self, folder: &str) -> Result<Listed, Unlisted> {
        let all: Vec<String> = self.listing.iter().map(|m| book_key(&m.2, m.1)).collect();
        let trash = self.shared.uids.folder(TRASH);
        let trashed = trash.holds(all.iter().map(String::as_str)).await;
        let (list, keys): (Vec<(u32, u64, String)>, Vec<String>) = self
            .listing
            .iter()
            .zip(&all)
            .filter(|((_, _, uidl), key)| {
                if folder == TRASH {
                    trashed.contains(key.as_str())
                } else {
                    !trashed.contains(key.as_str())
                        && self.config.imap_folder_of(server_of(uidl)) == Some(folder)
                }
            })
            .map(|(m, key)| (m.clone(), key.clone()))
            .unzip();
        let now = self.env.unix_millis() / 1000;
        let book = self.shared.uids.folder(folder);
        // Broken on purpose: as if every message taken in (moved or
        // appended here) came before the listing.
        let listed_ms = match self.config.broken(Broken::ImapTakenInForgotten) {
            true => u64::MAX,
            false => self.listed_ms,
        };
        let mut numbered = book.number(&keys, listed_ms, now).await.map_err(|e| {
            tracing::error!(folder, error = %e, "the IMAP UID book cannot be written; the \
                folder cannot be shown (check the journal's disk)");
            Unlisted::Book
        })?;
        self.take_server_flags(folder, &list, &keys, &mut numbered.messages)
            .await;
        if self.uids_by_listing {
            let ones = (1u32..).filter_map(NonZeroU32::new);
            for (k, uid) in numbered.messages.iter_mut().zip(ones) {
                k.uid = uid;
            }
            numbered.next = numbered.next.max(
                numbered
                    .messages
                    .last()
                    .map_or(NonZeroU32::MIN, |k| k.uid.saturating_add(1)),
            );
        }
        let messages = list
            .into_iter()
            .zip(keys)
            .zip(numbered.messages)
            .map(|(((n, size, _), key), kept)| {
                let m = Message {
                    key: n,
                    uid: kept.uid,
                    size,
                    flags: kept.flags,
                    arrived: kept.arrived,
                };
                (m, key)
            })
            .collect();
        Ok(Listed {
            validity: numbered.validity,
            next: numbered.next,
            keywords: numbered.keywords,
            messages,
        })
    }

    /// Takes what the IMAP servers of `list` said of its flags into the
    /// folder's book (`UidBook::take_server_flags`), and into `kept`: shown
    /// even when the book cannot be written.
    async fn take_server_flags(
        &self,
        folder: &str,
        list: &[(u32, u64, String)],
        keys: &[String],
        kept: &mut [Kept],
    ) {
        let said: Vec<(&str, ServerFlags)> = (list.iter().zip(keys))
            .filter(|((_, _, uidl), _)| self.config.keeps_flags(server_of(uidl)))
            .filter_map(|((n, _, _), key)| Some((key.as_str(), *self.server_flags.get(n)?)))
            .collect();
        if said.is_empty() || self.config.broken(Broken::ImapServerFlagsIgnored) {
            return;
        }
        let book = self.shared.uids.folder(folder);
        let (changed, kept_them) = book.take_server_flags(&said).await;
        for (k, key) in kept.iter_mut().zip(keys) {
            if let Some(flags) = changed.get(key) {
                k.flags = *flags;
            }
        }
        if let Err(e) = kept_them {
            tracing::warn!(folder, error = %e, "the IMAP UID book cannot be written; the flags \
                set on the server elsewhere are shown, not kept, and are taken again at the next \
                listing (check the journal's disk)");
        }
    }

    /// Shows `listed` as the folder (at login, and at a SELECT of another
    /// folder).
    pub(super) fn show(&mut self, listed: Listed) {
        self.book_keys.clear();
        let mut messages = Vec::with_capacity(listed.messages.len());
        for (m, key) in listed.messages {
            self.know(&m, m.flags.seen, key);
            messages.push(m);
        }
        let numbering = (listed.validity, listed.next);
        self.view = Some(View::with_uids(numbering, listed.keywords, messages));
    }

    /// The POP3 session's message `m.key` is the book's `key`; `read` if
    /// the book keeps its `\Seen` (its read mark went to the server in an
    /// earlier session).
    fn know(&mut self, m: &Message<u32>, read: bool, key: String) {
        if read {
            self.marks.done.insert(m.key);
            self.marks.proved.insert(m.key);
        }
        self.book_keys.insert(m.uid, key);
    }

    /// NOOP, CHECK, IDLE and SELECT: if the folder was listed
    /// `imap_recheck` ago or more, a new session behind lists it again and
    /// the changes are merged in (reported to a client that has the folder
    /// selected). Read marks the client earned are sent before (the caller
    /// settled them). `Err`: the session behind is gone.
    pub(super) async fn recheck(
        &mut self,
        server: &mut Server,
        report: bool,
    ) -> Result<(), ClientError> {
        if self.state == State::Greeted || self.env.now() < self.recheck_at() {
            return Ok(());
        }
        let lost = self.reopen().await?;
        let listed = match self.list_folder().await {
            Ok(l) => l,
            Err(Unlisted::Session(e)) => return Err(e),
            // The folder cannot be merged, and its message numbers are the
            // old session's: used in the new one they would name other
            // messages (a DELE of the wrong one). The session ends, as a
            // login would be refused now.
            Err(Unlisted::Book) => {
                self.maildrop = None;
                return Err(ClientError::Broken);
            }
        };
        self.merge(server, listed, report);
        self.send_again(&lost);
        Ok(())
    }

    /// The shown messages whose read marks were sent in the session behind
    /// and not yet proved owed: a session behind that ends without a `+OK`
    /// to its QUIT may have taken them down.
    fn unproved(&self) -> Vec<NonZeroU32> {
        let Some(v) = self.view.as_ref() else {
            return Vec::new();
        };
        (0..v.exists() as usize)
            .map(|i| v.get(i))
            .filter(|m| self.marks.done.contains(&m.key) && !self.marks.proved.contains(&m.key))
            .map(|m| m.uid)
            .collect()
    }

    /// Read marks `lost` with the old session behind (by UID) go again in
    /// the new one, with the client's next command: each was earned (a
    /// whole non-peek FETCH the client spoke after) and is still shown
    /// `\Seen`. One the book has (proved meanwhile) or whose message is
    /// gone or out of reach is not sent, and the `BYE` will say that some
    /// read marks could not be made.
    fn send_again(&mut self, lost: &[NonZeroU32]) {
        let Some(v) = self.view.as_ref() else {
            self.uncommitted |= !lost.is_empty();
            return;
        };
        let mut sent = 0;
        for i in 0..v.exists() as usize {
            let m = v.get(i);
            if !lost.contains(&m.uid) || m.key == OUT_OF_REACH {
                continue;
            }
            sent += 1;
            if !self.marks.done.contains(&m.key) {
                self.marks.due.push(m.key);
            }
        }
        self.uncommitted |= sent < lost.len();
    }

    /// When the folder is due to be listed again.
    pub(super) fn recheck_at(&self) -> causeway_net::Instant {
        self.listed_at + self.config.timeouts.imap_recheck
    }

    /// IDLE (RFC 2177), served here: accepted with the folder selected
    /// (the read marks the IDLE proves earned go first); while it lasts the
    /// driver rechecks the folder when due and the changes go out at once.
    pub(super) async fn idle(&mut self, server: &mut Server, tag: Tag<'static>) -> Idle {
        if !matches!(self.state, State::Selected { .. }) {
            let _ = server.idle_reject(bad(tag, "select a folder first"));
            return Idle::Refused;
        }
        if let Err(e) = self.settle_marks().await {
            let (c, t, over) = refusal(&e);
            if over {
                self.maildrop = None;
                self.bye(server, &t);
            }
            let _ = server.idle_reject(no(tag, c, t));
            return if over { Idle::Over } else { Idle::Refused };
        }
        let idling = CommandContinuationRequest::basic(None, "idling").expect("valid text");
        let _ = server.idle_accept(idling);
        Idle::Idling(tag)
    }

    /// The client sent DONE.
    pub(super) fn idle_done(&mut self, server: &mut Server, tag: Tag<'static>) {
        server.enqueue_status(ok(tag, None, "IDLE terminated"));
    }

    /// A new view (SELECT) shows no message of a server out of reach, as
    /// at login.
    pub(super) fn drop_out_of_reach(&mut self) {
        let Some(view) = self.view.as_mut() else {
            return;
        };
        let unreachable: Vec<usize> = (0..view.exists() as usize)
            .filter(|&i| view.get(i).key == OUT_OF_REACH)
            .collect();
        view.expunge(&unreachable);
    }

    /// Ends the session behind with QUIT and opens another, logged in.
    /// Returns the shown messages (by UID) whose read marks the old session
    /// may have taken down unmade ([`Front::unproved`]).
    async fn reopen(&mut self) -> Result<Vec<NonZeroU32>, ClientError> {
        if self.maildrop.is_some() {
            // As at LOGOUT: its server sessions hold the maildrop locks
            // until the QUIT is done.
            let committing = self.shared.committing.clone();
            let _committing = committing.lock().await;
            let whole = !self.uncommitted;
            if let Some(r) = self.quit_behind().await {
                // A QUIT without `+OK` may take unproved read marks down
                // with it; they go again in the next session behind
                // (`send_again`), which tells the `BYE` of any it cannot
                // send. Proved marks and deletes the edge owes already.
                self.uncommitted = !whole;
                r?;
            }
        }
        let lost = self.unproved();
        self.maildrop = Some(self.open_again().await?);
        // Numbers of the old session mean nothing in the new one.
        self.cache = None;
        self.marks = Default::default();
        Ok(lost)
    }

    /// Opens the new session behind, logged in. The edge out of reach (the
    /// session hangs up before its greeting or at PASS: a line cut) is
    /// tried again as a resume would be, with pauses from half a second
    /// doubling to 20 s, for `timeouts.resume` after the first failure; the
    /// client's command waits.
    /// A refusal is not tried again.
    async fn open_again(&mut self) -> Result<Maildrop<E>, ClientError> {
        let mut give_up = None;
        let mut pause = FIRST_PAUSE;
        loop {
            let opened = Maildrop::open(&self.env, &self.config, &self.shared, &self.shutdown);
            let failed = match opened.await {
                Some(mut m) => {
                    let (user, password) = (&self.config.user, &self.config.password);
                    match m.login(user.as_bytes(), password.expose()).await {
                        Ok(()) => return Ok(m),
                        Err(e) => e,
                    }
                }
                None => ClientError::Broken,
            };
            // As a resume: counted from the first failure, however long
            // that attempt waited on the cut line.
            let give_up = *give_up.get_or_insert(self.env.now() + self.config.timeouts.resume);
            if matches!(failed, ClientError::Refused(_)) || self.env.now() + pause > give_up {
                return Err(failed);
            }
            tracing::info!(error = %failed, "the folder's new session behind could not be opened; trying again");
            self.env.sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Merges a new listing into the folder (see the module doc).
    fn merge(&mut self, server: &mut Server, listed: Listed, report: bool) {
        let mut view = self.view.take().expect("logged in: a view");
        let mut fresh: BTreeMap<NonZeroU32, (Message<u32>, String)> = listed
            .messages
            .into_iter()
            .map(|(m, key)| (m.uid, (m, key)))
            .collect();
        let listed_servers: BTreeSet<String> = fresh
            .values()
            .map(|(_, key)| server_of(key).to_owned())
            .collect();
        let gone: Vec<usize> = (0..view.exists() as usize)
            .filter(|&i| {
                let uid = view.get(i).uid;
                let server = self.book_keys.get(&uid).map(|k| server_of(k));
                !fresh.contains_key(&uid) && server.is_some_and(|s| listed_servers.contains(s))
            })
            .collect();
        for &i in &gone {
            self.book_keys.remove(&view.get(i).uid);
        }
        for seq in view.expunge(&gone) {
            if report {
                server.enqueue_data(Data::Expunge(seq));
            }
        }
        let mut unreachable = 0;
        for m in view.messages_mut() {
            match fresh.remove(&m.uid) {
                Some((now, key)) => {
                    m.key = now.key;
                    // The book's `\Seen`, not the view's: a part or a lost
                    // mark shows `\Seen` too, and neither is on the server.
                    self.know(m, now.flags.seen, key);
                }
                None => {
                    m.key = OUT_OF_REACH;
                    unreachable += 1;
                }
            }
        }
        let before = view.exists();
        for (m, key) in fresh.into_values() {
            let n = m.key;
            if let Some(shown) = view.arrived(m) {
                self.know(shown, shown.flags.seen, key);
            } else {
                tracing::debug!(
                    message = n,
                    "a message listed again below UIDNEXT waits for the next SELECT"
                );
            }
        }
        view.raise_uid_next(listed.next);
        // The book's table names at least what this session's did: slots
        // are freed only at a start.
        view.keywords = listed.keywords;
        if report && view.exists() != before {
            server.enqueue_data(Data::Exists(view.exists()));
            server.enqueue_data(Data::Recent(0));
        }
        if unreachable > 0 {
            tracing::info!(
                messages = unreachable,
                "messages of servers out of reach stay shown until the next SELECT"
            );
        }
        self.view = Some(view);
    }
}
