//! The client proxy's delete journal: deletes it acknowledged to a mail
//! client on its own, kept on disk until the edge says its journal holds
//! them.
//!
//! A POP3 mail client waits for `+OK` after every DELE. Asking the edge each
//! time costs a turn on the line per message (1,549 turns for a mailbox the
//! body stream downloads in a handful), so a proxy with a journal answers
//! DELE itself, and the promise "a delete acknowledged to the mail client is
//! carried out even if the line dies the next instant" moves here:
//!
//! - the entry is **durable before `+OK`** (one store commit, `fsync` with
//!   redb); if the journal cannot take it, the mail client gets `-ERR` and
//!   nothing is owed;
//! - it reaches the edge in a `Deletes` batch, and is erased only when the
//!   edge says `Held` (its own journal has it), or when the session's `Bye`
//!   says the server committed, or when the mail client's RSET was answered
//!   `+OK` by the edge (the user undid it);
//! - an entry no live session owns (its session was cut, or the proxy
//!   restarted) is **carried** in the next `Hello`, by the next mail client's
//!   session or by the proxy itself when it is idle (`crate::carrier`).
//!
//! Sessions mark the entries they own as live, so two mail clients at once
//! never carry the same entry, and an entry is carried again only after the
//! session that had it is gone. An entry whose `Held` a cut lost is sent
//! again (the edge takes a sequence number once: it keeps a record of each
//! delete it took, and answers `Held` for one carried again). An entry
//! that is done (held by the edge, or committed by its server) but that the
//! disk would not erase is never carried again: applied twice, a delete by
//! UIDL and size would hit a later message that came with the same UIDL
//! and size (a server may reuse a UIDL once its message is gone). It is
//! *settled*: erased with the next erase that works, or by the carrier
//! ([`DeleteJournal::erase_settled`]). (A restart forgets which entries
//! were settled; those are carried again.)
//!
//! Each entry keeps the delete's *witness* too (a message the session
//! listed after it, [`causeway_proto::session::witness`]), and a carried
//! delete takes it to the edge: after a restart, an entry carried again
//! must not hit an exact copy that came after the delete was committed.
//!
//! Sequence numbers are never used twice, across restarts too: the edge
//! knows the deletes it took by their numbers (seed 305270335: a restarted
//! proxy numbered a new delete from what its disk held, a number an earlier
//! life had used, and the delete was dropped as held elsewhere). Each life
//! numbers from the time it started (milliseconds since 1970, times 2^20)
//! or past the disk's highest, whichever is higher.
//!
//! Recording is safe to cancel: the commit runs in a task of its own, for
//! a real disk finishes a write its caller stopped waiting for (redb's runs
//! on a blocking thread). A session dropped meanwhile (its mail client hung
//! up while the disk synced: `Session::ask_watching`) never said `+OK`, so
//! the entry it leaves is erased, never carried ([`Recording`]).
//!
//! Layout: one key per entry, `d/<seq>` (16 hex digits); the value (server
//! name, UIDL, size, witness; version 1 had no witness and is still read)
//! sealed under the journal key with the key as
//! associated data ([`causeway_store::Sealer`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use causeway_net::EnvRng;
use causeway_proto::session::{DeleteOp, MessageId, Places};
use causeway_store::{JournalConfig, JournalStore, Sealer, Write, decode, encode};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::state::ClientState;

mod hiding;

const VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
struct Record {
    version: u8,
    server: String,
    uidl: String,
    size: u64,
    witness: Option<(String, u64)>,
}

/// Version 1 of [`Record`], before witnesses were kept.
#[derive(Serialize, Deserialize)]
struct RecordV1 {
    version: u8,
    server: String,
    uidl: String,
    size: u64,
}

/// An entry's content, whichever version wrote it (`Err`: its version).
fn decode_record(plain: &[u8]) -> Result<Result<Record, u8>, String> {
    match decode::<Record>(plain) {
        Ok(r) if r.version == VERSION => Ok(Ok(r)),
        _ => {
            let r: RecordV1 = decode(plain)?;
            if r.version != 1 {
                return Ok(Err(r.version));
            }
            Ok(Ok(Record {
                version: VERSION,
                server: r.server,
                uidl: r.uidl,
                size: r.size,
                witness: None,
            }))
        }
    }
}

fn entry_key(seq: u64) -> Vec<u8> {
    format!("d/{seq:016x}").into_bytes()
}

fn parse_key(k: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(k).ok()?.strip_prefix("d/")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// Entries of a store that hold acknowledged deletes (the IMAP UID book
/// beside them not counted), for tests and the simulation. Counts keys
/// only: needs no key and decrypts nothing.
pub fn owed_deletes(entries: &[(Vec<u8>, Vec<u8>)]) -> usize {
    entries
        .iter()
        .filter(|(k, _)| parse_key(k).is_some())
        .count()
}

/// The proxy's delete journal, shared by its sessions.
#[derive(Clone)]
pub(crate) struct DeleteJournal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn JournalStore>,
    /// Where the number of entries is shown.
    state: ClientState,
    sealer: Sealer,
    book: Mutex<Book>,
    /// Woken when entries are left for carrying (a session ended).
    left: Notify,
}

#[derive(Default)]
struct Book {
    next_seq: u64,
    entries: BTreeMap<u64, DeleteOp>,
    /// Entries a live session owns.
    live: BTreeSet<u64>,
    /// Entries done that the disk would not erase: never carried.
    settled: BTreeSet<u64>,
    /// Entries being written for a caller still waiting ([`Recording`]).
    recording: BTreeSet<u64>,
    /// Deletes done while new sessions were being opened ([`hiding`]).
    done: hiding::DoneLog,
}

impl DeleteJournal {
    /// Reads what an earlier life of the proxy left. Entries for servers no
    /// longer configured cannot be carried (the edge would not know where
    /// to log in): they stay on disk, with an error line naming them.
    /// `started_ms`: this life's start, in milliseconds since 1970 (see the
    /// module doc on sequence numbers).
    pub(crate) async fn load(
        config: &JournalConfig,
        rng: EnvRng,
        servers: &[String],
        state: ClientState,
        started_ms: u64,
    ) -> io::Result<Self> {
        let sealer = config.sealer(rng);
        let mut book = Book {
            next_seq: started_ms.saturating_mul(1 << 20),
            ..Book::default()
        };
        for (k, v) in config.store.scan().await? {
            if k.starts_with(crate::uids::PREFIX) {
                continue; // the IMAP UID book shares the store
            }
            let Some(seq) = parse_key(&k) else {
                tracing::warn!(key = %String::from_utf8_lossy(&k), "delete journal: ignoring an entry that is not ours");
                continue;
            };
            book.next_seq = book.next_seq.max(seq + 1);
            let record = sealer.open(&k, &v).and_then(|plain| decode_record(&plain));
            match record {
                Ok(Ok(r)) if servers.contains(&r.server) => {
                    let msg = MessageId {
                        uidl: r.uidl,
                        size: r.size,
                    };
                    let op = DeleteOp {
                        seq,
                        server: r.server,
                        msg,
                        witness: r.witness.map(|(uidl, size)| MessageId { uidl, size }),
                    };
                    book.entries.insert(seq, op);
                }
                Ok(Ok(r)) => tracing::error!(seq, server = %r.server,
                    "delete journal: an acknowledged delete for a server no longer configured; \
                     left on disk. Put the server back in the configuration to carry it out"),
                Ok(Err(version)) => tracing::error!(
                    seq,
                    version,
                    "delete journal: an entry of an unknown version; left on disk"
                ),
                Err(e) => tracing::error!(seq, error = %e,
                    "delete journal: CANNOT READ an entry; left on disk (was the key changed?)"),
            }
        }
        if !book.entries.is_empty() {
            tracing::info!(
                deletes = book.entries.len(),
                "delete journal: acknowledged deletes from before a restart; they go to the edge"
            );
        }
        state.set_deletes_pending(book.entries.len());
        Ok(Self {
            inner: Arc::new(Inner {
                store: config.store.clone(),
                state,
                sealer,
                book: Mutex::new(book),
                left: Notify::new(),
            }),
        })
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // Each change is one step: consistent after a panic elsewhere.
        self.inner.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a delete durably, with its witness, owned by the calling
    /// session; `Err`: it was not recorded, and must not be acknowledged.
    pub(crate) async fn record(
        &self,
        server: &str,
        msg: &MessageId,
        witness: Option<MessageId>,
    ) -> io::Result<DeleteOp> {
        let seq = {
            let mut book = self.book();
            let seq = book.next_seq;
            book.next_seq += 1;
            book.recording.insert(seq);
            seq
        };
        let mut waiting = Recording {
            journal: self.clone(),
            seq,
            answered: false,
        };
        let op = DeleteOp {
            seq,
            server: server.to_owned(),
            msg: msg.clone(),
            witness,
        };
        let journal = self.clone();
        let written = tokio::spawn(async move { journal.write(op).await })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(format!("delete journal task failed: {e}"))));
        waiting.answered = true;
        written
    }

    /// The durable half of [`DeleteJournal::record`], run to its end
    /// whether or not its caller still waits: an entry written for a caller
    /// gone is erased (it was never acknowledged).
    async fn write(&self, op: DeleteOp) -> io::Result<DeleteOp> {
        let key = entry_key(op.seq);
        let record = Record {
            version: VERSION,
            server: op.server.clone(),
            uidl: op.msg.uidl.clone(),
            size: op.msg.size,
            witness: op.witness.as_ref().map(|w| (w.uidl.clone(), w.size)),
        };
        let value = self.inner.sealer.seal(&key, &encode(&record));
        let written = self
            .inner
            .store
            .commit(vec![Write::Put { key, value }])
            .await;
        let waited = {
            let mut book = self.book();
            let waited = book.recording.remove(&op.seq);
            written?;
            book.entries.insert(op.seq, op.clone());
            if waited {
                book.live.insert(op.seq);
            } else {
                book.settled.insert(op.seq);
            }
            self.inner.state.set_deletes_pending(book.entries.len());
            waited
        };
        if !waited {
            tracing::info!(
                seq = op.seq,
                "delete journal: the session went away before its delete was written, so it was \
                 never acknowledged; erasing it"
            );
            if !self.erase(&[]).await {
                self.wake_carrier();
            }
        }
        Ok(op)
    }

    /// Erases entries the edge holds or the server committed (or the user
    /// undid); `false` if the disk refused (they are still there, and still
    /// owned by the caller).
    /// Settled entries go with them.
    pub(crate) async fn erase(&self, seqs: &[u64]) -> bool {
        let settled: Vec<u64> = self.book().settled.iter().copied().collect();
        let all: BTreeSet<u64> = seqs.iter().copied().chain(settled).collect();
        let batch: Vec<Write> = all
            .iter()
            .map(|s| Write::Delete { key: entry_key(*s) })
            .collect();
        if batch.is_empty() {
            return true;
        }
        if let Err(e) = self.inner.store.commit(batch).await {
            tracing::warn!(error = %e, entries = all.len(), "delete journal: could not erase entries");
            return false;
        }
        let mut book = self.book();
        for s in &all {
            book.entries.remove(s);
            book.live.remove(s);
            book.settled.remove(s);
        }
        self.inner.state.set_deletes_pending(book.entries.len());
        true
    }

    /// Done entries, to be erased: no session owns them any more, and
    /// none carries them ([`Book::settled`]). Those left after an erase
    /// (the disk would not) are the carrier's to try again
    /// ([`DeleteJournal::wake_carrier`]).
    fn settle(&self, seqs: &[u64]) {
        let mut book = self.book();
        let Book {
            entries,
            live,
            settled,
            done,
            ..
        } = &mut *book;
        for s in seqs {
            live.remove(s);
            settled.insert(*s);
            if let Some(op) = entries.get(s) {
                done.push(op);
            }
        }
    }

    /// Wakes the carrier: entries wait for it (settled ones, to erase).
    fn wake_carrier(&self) {
        self.inner.left.notify_one();
    }

    /// Whether settled entries wait to be erased.
    pub(crate) fn has_settled(&self) -> bool {
        !self.book().settled.is_empty()
    }

    /// Tries again to erase the settled entries.
    pub(crate) async fn erase_settled(&self) -> bool {
        self.erase(&[]).await
    }

    /// The lowest sequence number this proxy may still carry: its
    /// journal's lowest, or the next it will give. Sent in `Hello`, so the
    /// edge forgets the deletes of ours it took below it.
    pub(crate) fn oldest(&self) -> u64 {
        let book = self.book();
        book.entries.keys().next().copied().unwrap_or(book.next_seq)
    }

    /// Entries no live session owns, for `servers`; the caller's session
    /// owns them from now on.
    pub(crate) fn take_carried(&self, servers: &[String]) -> Vec<DeleteOp> {
        let mut book = self.book();
        let Book {
            entries,
            live,
            settled,
            ..
        } = &mut *book;
        let carried: Vec<DeleteOp> = entries
            .values()
            .filter(|op| {
                !live.contains(&op.seq)
                    && !settled.contains(&op.seq)
                    && servers.contains(&op.server)
            })
            .cloned()
            .collect();
        live.extend(carried.iter().map(|op| op.seq));
        carried
    }

    /// A session that owned these entries ended: what is left of them is
    /// carried by a later one.
    pub(crate) fn release(&self, seqs: impl IntoIterator<Item = u64>) {
        let left = {
            let mut book = self.book();
            for s in seqs {
                book.live.remove(&s);
            }
            book.entries.len() > book.live.len()
        };
        if left {
            self.inner.left.notify_one();
        }
    }

    /// Servers with entries no live session owns, in name order.
    pub(crate) fn carriable_servers(&self) -> Vec<String> {
        let book = self.book();
        let servers: BTreeSet<&String> = book
            .entries
            .values()
            .filter(|op| !book.live.contains(&op.seq) && !book.settled.contains(&op.seq))
            .map(|op| &op.server)
            .collect();
        servers.into_iter().cloned().collect()
    }

    /// Resolves when a session leaves entries for carrying.
    pub(crate) async fn entries_left(&self) {
        self.inner.left.notified().await;
    }
}

/// A caller waiting in [`DeleteJournal::record`]. Dropped unanswered (the
/// session went away while the disk wrote), it tells the write so; if the
/// write already finished, the entry it made live for this caller is
/// settled instead: never carried, erased by the carrier.
struct Recording {
    journal: DeleteJournal,
    seq: u64,
    answered: bool,
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut book = self.journal.book();
        if book.recording.remove(&self.seq) {
            return; // the write, still running, erases what it wrote
        }
        if book.live.remove(&self.seq) {
            book.settled.insert(self.seq);
            drop(book);
            self.journal.wake_carrier();
        }
    }
}

/// One session's share of the journal: the entries it recorded or carried,
/// the ones not yet sent, and which were carried (an RSET leaves those).
/// Dropped with the session, it releases what is left for carrying.
pub(crate) struct SessionDeletes {
    journal: DeleteJournal,
    unsent: Vec<DeleteOp>,
    owned: BTreeMap<u64, DeleteOp>,
    carried: BTreeSet<u64>,
    /// The messages of the carried entries, and those this session
    /// deleted (held by the edge or not; an RSET forgets a server's):
    /// what no witness may be, as in the edge's replica.
    carried_msgs: ByServer,
    deleted_msgs: ByServer,
}

/// Messages by server, looked up without building a key.
#[derive(Default)]
struct ByServer(BTreeMap<String, BTreeSet<MessageId>>);

impl ByServer {
    fn insert(&mut self, server: &str, msg: &MessageId) {
        match self.0.get_mut(server) {
            Some(set) => {
                set.insert(msg.clone());
            }
            None => {
                self.0
                    .insert(server.to_owned(), BTreeSet::from([msg.clone()]));
            }
        }
    }

    fn contains(&self, server: &str, msg: &MessageId) -> bool {
        self.0.get(server).is_some_and(|s| s.contains(msg))
    }
}

impl SessionDeletes {
    /// A session's share, owning `carried` (from [`DeleteJournal::take_carried`]).
    pub(crate) fn new(journal: DeleteJournal, carried: &[DeleteOp]) -> Self {
        let mut carried_msgs = ByServer::default();
        for op in carried {
            carried_msgs.insert(&op.server, &op.msg);
        }
        Self {
            journal,
            unsent: Vec::new(),
            owned: carried.iter().map(|op| (op.seq, op.clone())).collect(),
            carried: carried.iter().map(|op| op.seq).collect(),
            carried_msgs,
            deleted_msgs: ByServer::default(),
        }
    }

    /// Records a delete the mail client asked for, with its witness in
    /// `places` (the session's listing; not one this session deleted);
    /// `Err`: not acknowledged.
    pub(crate) async fn record(
        &mut self,
        server: &str,
        msg: &MessageId,
        places: &Places,
    ) -> io::Result<()> {
        let witness = places.witness(server, msg, |id| {
            self.deleted_msgs.contains(server, id) || self.carried_msgs.contains(server, id)
        });
        let op = self.journal.record(server, msg, witness).await?;
        self.deleted_msgs.insert(server, msg);
        self.owned.insert(op.seq, op.clone());
        self.unsent.push(op);
        Ok(())
    }

    /// A broken proxy's DELE: acknowledged, queued, never written down
    /// (`Broken::DeleNotJournaled`; no shipped build calls this).
    pub(crate) fn record_in_memory(&mut self, server: &str, msg: &MessageId) {
        let seq = {
            let mut book = self.journal.book();
            book.next_seq += 1;
            book.next_seq - 1
        };
        let op = DeleteOp {
            seq,
            server: server.to_owned(),
            msg: msg.clone(),
            witness: None,
        };
        self.deleted_msgs.insert(server, msg);
        self.owned.insert(seq, op.clone());
        self.unsent.push(op);
    }

    pub(crate) fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// The batch to send now.
    pub(crate) fn take_unsent(&mut self) -> Vec<DeleteOp> {
        std::mem::take(&mut self.unsent)
    }

    /// A resume: the deletes sent that the edge has not said it holds go
    /// again (it answers `Held` at once for those it had). Carried ones
    /// went in `Hello` and stay with it.
    pub(crate) fn send_again(&mut self) {
        let unsent: std::collections::BTreeSet<u64> = self.unsent.iter().map(|op| op.seq).collect();
        let again: Vec<DeleteOp> = self
            .owned
            .values()
            .filter(|op| !self.carried.contains(&op.seq) && !unsent.contains(&op.seq))
            .cloned()
            .collect();
        self.unsent.extend(again);
        self.unsent.sort_by_key(|op| op.seq);
    }

    /// The edge's journal holds these: done here. If the disk refuses the
    /// erase they are settled (never carried again).
    pub(crate) async fn held(&mut self, seqs: &[u64]) {
        let mine: Vec<u64> = seqs
            .iter()
            .copied()
            .filter(|s| self.owned.contains_key(s))
            .collect();
        self.done(&mine).await;
    }

    /// `seqs` (owned) are done: erased, or else settled. Settled before the
    /// erase is tried: a session dropped while the disk erases (its mail
    /// client hung up) owns them no more and must not leave them live,
    /// never carried and never erased (seed 898010586: an entry the edge
    /// held stayed on the proxy's disk for good); settled, the next erase
    /// or the carrier takes them.
    async fn done(&mut self, seqs: &[u64]) {
        for s in seqs {
            self.owned.remove(s);
        }
        self.journal.settle(seqs);
        if !self.journal.erase(seqs).await {
            self.journal.wake_carrier();
        }
    }

    /// The mail client's RSET on `server` was done by the edge: this
    /// session's deletes there are undone (carried ones stand). `Err`: the
    /// journal could not forget them, so they stand after all; they are
    /// sent to the edge again, and the mail client is told the RSET failed
    /// (and its session ends: the edge did undo the session's read marks).
    pub(crate) async fn undone(&mut self, server: &str) -> Result<(), ()> {
        let seqs = self.which(|op, carried| op.server == server && !carried);
        if self.journal.erase(&seqs).await {
            for s in &seqs {
                self.owned.remove(s);
            }
            self.unsent.retain(|op| !seqs.contains(&op.seq));
            self.deleted_msgs.0.remove(server);
            return Ok(());
        }
        tracing::warn!(%server, "delete journal: could not record an RSET; the deletes stand");
        self.unsent.retain(|op| op.server != server);
        self.unsent
            .extend(seqs.iter().filter_map(|s| self.owned.get(s)).cloned());
        Err(())
    }

    /// `server` committed the session's work (its `Bye` outcome was `+OK`).
    /// Entries the disk would not erase are settled, never carried again.
    pub(crate) async fn committed(&mut self, server: &str) {
        let seqs = self.which(|op, _| op.server == server);
        self.done(&seqs).await;
    }

    /// Owned entries matching `f(op, carried)`.
    fn which(&self, f: impl Fn(&DeleteOp, bool) -> bool) -> Vec<u64> {
        self.owned
            .values()
            .filter(|op| f(op, self.carried.contains(&op.seq)))
            .map(|op| op.seq)
            .collect()
    }
}

impl Drop for SessionDeletes {
    fn drop(&mut self) {
        self.journal
            .release(std::mem::take(&mut self.owned).into_keys());
    }
}

#[cfg(test)]
mod tests;
