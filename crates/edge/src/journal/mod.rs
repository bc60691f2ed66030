//! The crash journal: acknowledged work the edge still owes a mail server,
//! kept on disk so that it survives the edge's own crash.
//!
//! What is journaled, and when:
//!
//! - an acknowledged **delete**: recorded and synced *before* the client gets
//!   `Done` for its `DELE`. If the journal cannot make it durable the client
//!   gets an error instead and nothing is owed;
//! - a **read mark** after a delivered body: recorded before the worker is
//!   told (if that fails the mark is simply not made: the message stays
//!   unread, which is benign);
//! - an **RSET** erases the session's delete records before `Done`;
//! - before a POP3 server session that sent work is sent **QUIT**, which of
//!   the group's entries it is sent for ([`quit_sent`]): one batch, should
//!   the edge stop before the answer.
//!
//! Entries are erased once the server confirmed the work *and* its session
//! answered `QUIT` with `+OK` (or when the edge gives up on the work, loudly).
//!
//! On start [`crate::run_edge`] replays whatever is left (see `replay`).
//!
//! Layout: one group per (client session, server), with a header holding the
//! server's [`ServerSpec`] (credentials included) and one entry per owed
//! item. Keys are opaque (`g/<group>`, `o/<group>/<seq>`); every value is
//! sealed with ChaCha20-Poly1305 under the configured key, a fresh random
//! nonce from the environment, and the entry's key as associated data (so
//! a value cannot be moved to another key). Nothing in the store is readable
//! without the key: not the password, not the user name, not a UIDL.
//!
//! Storage goes through the [`JournalStore`] seam: [`RedbStore`] in
//! production, [`SimDisk`] in simulation and tests.

pub mod inspect;
pub(crate) mod quit_sent;
mod taken;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::sync::Arc;

use causeway_net::EnvRng;
use causeway_proto::user::{INBOX, ServerSpec};
pub use causeway_store::{
    CommitFault, JournalConfig, JournalKey, JournalStore, RedbStore, SimDisk, StoreFuture, Write,
};
use causeway_store::{Sealer, decode, encode};
use causeway_wire::PublicKey;
use serde::{Deserialize, Serialize};
use tracing::{error, warn};

use crate::owed::{Owed, Target};
use crate::state::EdgeState;

/// The edge's journal key, derived from its static private key (see
/// [`JournalKey::derive_from`]).
pub fn edge_key(private: &causeway_wire::PrivateKey) -> JournalKey {
    JournalKey::derive_from("causeway edge journal key v1", private)
}

/// Entries of a store that hold acknowledged work (one per delete or read
/// mark, headers not counted), for tests and the simulation. Counts keys
/// only: needs no key and decrypts nothing.
pub fn owed_entries(entries: &[(Vec<u8>, Vec<u8>)]) -> usize {
    census(entries.iter().map(|(k, _)| k.as_slice()))
        .entries
        .values()
        .sum()
}

/// A journal's groups by key, for the simulation's check after each
/// commit: owed entries with no header beside them ([`Census::headless`])
/// are work the next start cannot do (the header holds where and how to
/// log in) and erases as orphaned. The journal commits a group's header
/// with its first entry and erases it with its last, so there are none at
/// any instant. Reads keys only.
pub fn census<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Census {
    let mut census = Census::default();
    for k in keys {
        match parse_key(k) {
            Some(EntryKey::Header(g)) => {
                census.headers.insert(g);
            }
            Some(EntryKey::Op(g, _)) => *census.entries.entry(g).or_default() += 1,
            Some(EntryKey::QuitSent(g)) => {
                census.quits_sent.insert(g);
            }
            Some(EntryKey::Taken(_)) | None => {}
        }
    }
    census
}

/// What a journal's keys say ([`census`]): its groups' headers and how
/// many owed entries each group has.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub headers: BTreeSet<u64>,
    /// Owed entries per group.
    pub entries: BTreeMap<u64, usize>,
    /// The groups with a record of the work a `QUIT` was sent for
    /// ([`quit_sent`]).
    pub quits_sent: BTreeSet<u64>,
}

impl Census {
    /// The groups with owed entries and no header.
    pub fn headless(&self) -> Vec<u64> {
        self.entries
            .keys()
            .filter(|g| !self.headers.contains(g))
            .copied()
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Records and keys.

/// Headers are at version 2 (1 had no folder: still read, see
/// [`decode_header`]); entries at 3 (2 had no witness, 1 no size: both
/// still read).
const VERSION: u8 = 2;
const OP_VERSION: u8 = 3;

#[derive(Serialize, Deserialize)]
struct Header {
    version: u8,
    /// The client session the work was acknowledged in, for the log.
    session: String,
    /// Where and how to log in, credentials included.
    spec: ServerSpec,
}

#[derive(Serialize, Deserialize)]
struct OpRecord {
    version: u8,
    uidl: String,
    /// 0: read mark, 1: delete.
    kind: u8,
    /// The message's size, its second key.
    size: Option<u64>,
    /// A message the session listed after this one (see
    /// `crate::ledger`'s witness): UIDL and size.
    witness: Option<(String, Option<u64>)>,
}

/// Version 2 of [`OpRecord`], before witnesses were recorded.
#[derive(Serialize, Deserialize)]
struct OpRecordV2 {
    version: u8,
    uidl: String,
    kind: u8,
    size: Option<u64>,
}

/// Version 1 of [`OpRecord`], before sizes were recorded.
#[derive(Serialize, Deserialize)]
struct OpRecordV1 {
    version: u8,
    uidl: String,
    kind: u8,
}

/// A group's header, whichever version wrote it. Version 1 is version 2
/// without the spec's folder; as the folder is the spec's last field and
/// the spec the header's last, bincode wrote a version 1 header as
/// exactly the bytes of a version 2 one whose folder is INBOX, minus that
/// folder at the end: the only folder there was.
fn decode_header(plain: &[u8]) -> Result<Header, String> {
    match decode::<Header>(plain) {
        Err(_) if plain.first() == Some(&1) => {
            let mut whole = plain.to_vec();
            whole.extend(encode(&INBOX));
            let h: Header = decode(&whole)?;
            Ok(Header {
                version: VERSION,
                ..h
            })
        }
        other => other,
    }
}

/// One owed item as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub target: Target,
    pub owed: Owed,
    /// The message listed after it when the work was acknowledged, if the
    /// session knew one (entries of version 2 and 1 have none).
    pub witness: Option<Target>,
    /// A `QUIT` was sent for it before the edge stopped, and not seen
    /// answered: it is one of a batch in doubt ([`quit_sent`]).
    pub quit_sent: bool,
}

/// An entry's content, whichever version wrote it.
fn decode_op(plain: &[u8]) -> Option<Recorded> {
    let (uidl, kind, size, witness) = match decode::<OpRecord>(plain) {
        Ok(r) if r.version == OP_VERSION => (r.uidl, r.kind, r.size, r.witness),
        _ => match decode::<OpRecordV2>(plain) {
            Ok(r) if r.version == 2 => (r.uidl, r.kind, r.size, None),
            _ => match decode::<OpRecordV1>(plain) {
                Ok(r) if r.version == 1 => (r.uidl, r.kind, None, None),
                _ => return None,
            },
        },
    };
    Some(Recorded {
        target: Target { uidl, size },
        owed: owed_of(kind)?,
        witness: witness.map(|(uidl, size)| Target { uidl, size }),
        quit_sent: false,
    })
}

fn kind_of(owed: Owed) -> u8 {
    match owed {
        Owed::Read => 0,
        Owed::Delete => 1,
    }
}

fn owed_of(kind: u8) -> Option<Owed> {
    match kind {
        0 => Some(Owed::Read),
        1 => Some(Owed::Delete),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum EntryKey {
    Header(u64),
    Op(u64, u64),
    /// A delete taken from a client proxy, remembered ([`taken`]).
    Taken(u64),
    /// The entries of a group a `QUIT` was sent for ([`quit_sent`]).
    QuitSent(u64),
}

fn header_key(group: u64) -> Vec<u8> {
    format!("g/{group:016x}").into_bytes()
}

fn op_key(group: u64, seq: u64) -> Vec<u8> {
    format!("o/{group:016x}/{seq:016x}").into_bytes()
}

fn parse_key(k: &[u8]) -> Option<EntryKey> {
    let s = std::str::from_utf8(k).ok()?;
    let hex = |x: &str| (x.len() == 16).then(|| u64::from_str_radix(x, 16).ok())?;
    if let Some(g) = s.strip_prefix("g/") {
        return hex(g).map(EntryKey::Header);
    }
    if let Some(id) = s.strip_prefix("t/") {
        return hex(id).map(EntryKey::Taken);
    }
    if let Some(g) = s.strip_prefix("q/") {
        return hex(g).map(EntryKey::QuitSent);
    }
    let rest = s.strip_prefix("o/")?;
    let (g, seq) = rest.split_once('/')?;
    Some(EntryKey::Op(hex(g)?, hex(seq)?))
}

// ---------------------------------------------------------------------------
// The journal as the edge uses it.

/// The journal of one running edge: store, cipher, random source, counts.
#[derive(Clone)]
pub(crate) struct Journal {
    store: Arc<dyn JournalStore>,
    sealer: Sealer,
    state: EdgeState,
    /// The deletes taken from client proxies, by their numbers ([`taken`]).
    taken: taken::Taken,
    /// The environment's clock, to time each commit for the operators.
    clock: Clock,
    /// [`crate::broken::Broken::JournalHeaderErasedEarly`] (always false
    /// outside the simulation's bug hunts).
    header_erased_early: bool,
}

/// `Env::now` without the edge's `Env` type parameter.
pub(crate) type Clock = Arc<dyn Fn() -> causeway_net::Instant + Send + Sync>;

/// A group found on disk at start: the work of one (session, server) that
/// the previous life of the edge did not finish.
pub(crate) struct Restored {
    pub group: Group,
    pub session: String,
    pub spec: ServerSpec,
    pub ops: Vec<(u64, Recorded)>,
}

/// One journal entry: its group (whose header holds the credentials) and
/// its number in it. Work can change hands between workers, so each item
/// carries its entries wherever it goes, and whoever commits the work
/// erases them.
#[derive(Clone)]
pub(crate) struct Entry {
    group: Group,
    seq: u64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}/{}", self.group.id(), self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.group.id(), self.seq) == (other.group.id(), other.seq)
    }
}

impl Eq for Entry {}

impl Entry {
    pub(crate) fn new(group: &Group, seq: u64) -> Self {
        Self {
            group: group.clone(),
            seq,
        }
    }
}

/// Erases `entries` (work committed, or that can never be done), group by
/// group; each group's header goes with its last entry.
pub(crate) async fn erase(entries: Vec<Entry>) -> io::Result<()> {
    let mut by_group: BTreeMap<u64, (Group, Vec<u64>)> = BTreeMap::new();
    for e in entries {
        by_group
            .entry(e.group.id())
            .or_insert_with(|| (e.group.clone(), Vec::new()))
            .1
            .push(e.seq);
    }
    let mut result = Ok(());
    for (_, (group, seqs)) in by_group {
        if let Err(e) = group.erase(&seqs).await {
            result = Err(e);
        }
    }
    result
}

impl Journal {
    pub(crate) fn new(config: &JournalConfig, rng: EnvRng, state: EdgeState, clock: Clock) -> Self {
        Self {
            store: config.store.clone(),
            sealer: config.sealer(rng),
            state,
            taken: taken::Taken::default(),
            clock,
            header_erased_early: false,
        }
    }

    /// The simulation's broken variant: headers erased with their group's
    /// first erased entries.
    pub(crate) fn erasing_headers_early(mut self, yes: bool) -> Self {
        self.header_erased_early = yes;
        self
    }

    pub(crate) fn describe(&self) -> String {
        self.store.describe()
    }

    fn seal(&self, key: &[u8], plain: &[u8]) -> Vec<u8> {
        self.sealer.seal(key, plain)
    }

    fn open(&self, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        self.sealer.open(key, sealed)
    }

    /// Commits `batch`, timed for the operators; a failure is counted.
    async fn commit_timed(&self, batch: Vec<Write>) -> io::Result<()> {
        let started = (self.clock)();
        if let Err(e) = self.store.commit(batch).await {
            self.state.journal_failed();
            return Err(e);
        }
        (self.state).journal_committed((self.clock)().saturating_duration_since(started));
        Ok(())
    }

    /// A new, empty group for the work a session will owe `spec`'s server.
    /// Nothing is written until the first item is recorded.
    #[cfg(test)]
    pub(crate) fn group(&self, session: &str, spec: &ServerSpec) -> Group {
        Group::new(self.clone(), self.sealer.next_u64(), session, spec, None)
    }

    /// [`Journal::group`] of a session of `client`: the deletes it takes
    /// by the client proxy's numbers are remembered past their commit
    /// ([`taken`]).
    pub(crate) fn group_of(&self, session: &str, spec: &ServerSpec, client: &PublicKey) -> Group {
        let id = self.sealer.next_u64();
        Group::new(self.clone(), id, session, spec, Some(*client.as_bytes()))
    }

    /// Reads the journal left by the previous life of the edge. Entries that
    /// do not open with the key are left alone (and reported); a header with
    /// no work, or work with no header, is erased. Work whose header is there
    /// but cannot be read (another key, a later Causeway's version, damage)
    /// is left in place with it: it is acknowledged work an operator can
    /// still have done (`causeway owed`), not debris.
    pub(crate) async fn load(&self) -> io::Result<Vec<Restored>> {
        let entries = self.store.scan().await?;
        let mut headers: BTreeMap<u64, Header> = BTreeMap::new();
        let mut unread_headers = BTreeSet::new();
        let mut ops: BTreeMap<u64, Vec<(u64, Recorded)>> = BTreeMap::new();
        let mut quits: BTreeMap<u64, quit_sent::QuitSent> = BTreeMap::new();
        let mut junk = Vec::new();
        for (k, v) in entries {
            let Some(parsed) = parse_key(&k) else {
                warn!(key = %String::from_utf8_lossy(&k), "journal: ignoring an entry that is not ours");
                continue;
            };
            let plain = match self.open(&k, &v) {
                Ok(p) => p,
                Err(e) => {
                    if let EntryKey::Header(g) = parsed {
                        unread_headers.insert(g);
                    }
                    error!(key = %String::from_utf8_lossy(&k), error = %e,
                        "journal: CANNOT READ an entry; it is left in place. If the journal key \
                         was changed, put the old one back, start the edge once so it finishes \
                         the work, then change the key");
                    self.state.journal_unreadable();
                    continue;
                }
            };
            match parsed {
                EntryKey::Header(g) => match decode_header(&plain) {
                    Ok(h) if h.version == VERSION => {
                        headers.insert(g, h);
                    }
                    Ok(h) => {
                        error!(
                            group = g,
                            version = h.version,
                            "journal: header of an unknown version; left in place with its work \
                             (an edge of that version can do it)"
                        );
                        self.state.journal_unreadable();
                        unread_headers.insert(g);
                    }
                    Err(e) => {
                        error!(group = g, error = %e, "journal: header does not decode; left in place with its work");
                        self.state.journal_unreadable();
                        unread_headers.insert(g);
                    }
                },
                EntryKey::Op(g, seq) => match decode_op(&plain) {
                    Some(r) => ops.entry(g).or_default().push((seq, r)),
                    None => {
                        error!(
                            group = g,
                            seq, "journal: entry does not decode; left in place"
                        );
                        self.state.journal_unreadable();
                    }
                },
                EntryKey::QuitSent(g) => match quit_sent::decode_quit_sent(&plain) {
                    Some(q) => {
                        quits.insert(g, q);
                    }
                    // Without it the batch is replayed item by item, as
                    // before the records were kept.
                    None => warn!(
                        group = g,
                        "journal: the record of a QUIT sent does not decode; left in place"
                    ),
                },
                EntryKey::Taken(id) => {
                    if !self.taken_found(id, &plain) {
                        // No work: a later Causeway's record, or damage.
                        warn!(
                            record = id,
                            "journal: the record of a taken delete does not decode; left in place"
                        );
                    }
                }
            }
        }
        let mut restored = Vec::new();
        for (g, h) in headers {
            let quit = quits.remove(&g);
            match ops.remove(&g) {
                Some(mut items) => {
                    for (seq, r) in &mut items {
                        r.quit_sent = quit.as_ref().is_some_and(|q| q.contains(*seq));
                    }
                    let group = Group::new(self.clone(), g, &h.session, &h.spec, None);
                    group.adopt(&items);
                    restored.push(Restored {
                        group,
                        session: h.session,
                        spec: h.spec,
                        ops: items,
                    });
                }
                None => {
                    junk.push(Write::Delete { key: header_key(g) });
                    junk.push(Write::Delete {
                        key: quit_sent::quit_key(g),
                    });
                }
            }
        }
        // A record whose group's header is gone names no work.
        for g in quits.keys().filter(|g| !unread_headers.contains(g)) {
            junk.push(Write::Delete {
                key: quit_sent::quit_key(*g),
            });
        }
        for (g, items) in ops {
            if unread_headers.contains(&g) {
                continue;
            }
            warn!(
                group = g,
                entries = items.len(),
                "journal: work without its server header (cannot be done); erasing it"
            );
            for (seq, _) in items {
                junk.push(Write::Delete {
                    key: op_key(g, seq),
                });
            }
        }
        if !junk.is_empty() {
            self.store.commit(junk).await?;
        }
        Ok(restored)
    }
}

/// The journal entries of one (session, server): the server's header
/// (credentials) while any work is recorded, and one entry per owed item.
/// Shared by the session (which records) and the worker (which erases).
#[derive(Clone)]
pub(crate) struct Group {
    inner: Arc<GroupInner>,
}

struct GroupInner {
    journal: Journal,
    id: u64,
    /// The key of the client proxy whose session records here (`None`: a
    /// group restored at start, which records nothing new).
    client: Option<[u8; 32]>,
    session: String,
    spec: ServerSpec,
    /// Held across each store commit, so the header is written and erased in
    /// step with the entries that need it.
    live: tokio::sync::Mutex<Live>,
}

#[derive(Default)]
struct Live {
    header_durable: bool,
    next_seq: u64,
    entries: BTreeMap<u64, Owed>,
}

impl Group {
    fn new(
        journal: Journal,
        id: u64,
        session: &str,
        spec: &ServerSpec,
        client: Option<[u8; 32]>,
    ) -> Self {
        Self {
            inner: Arc::new(GroupInner {
                journal,
                id,
                client,
                session: session.to_owned(),
                spec: spec.clone(),
                live: tokio::sync::Mutex::new(Live::default()),
            }),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// Entries found on disk at start.
    fn adopt(&self, items: &[(u64, Recorded)]) {
        let mut live = self
            .inner
            .live
            .try_lock()
            .expect("a restored group is not shared yet");
        live.header_durable = true;
        for (seq, r) in items {
            live.entries.insert(*seq, r.owed);
            live.next_seq = live.next_seq.max(seq + 1);
        }
        self.inner.journal.state.journal_entries_add(items.len());
    }

    /// Records `owed` on `target` durably (with the header, the first
    /// time), with the message listed after it if the session knows one;
    /// returns the entry, to erase once the work is committed.
    #[cfg(test)]
    pub(crate) async fn record(
        &self,
        target: &Target,
        owed: Owed,
        witness: Option<&Target>,
    ) -> io::Result<Entry> {
        self.record_numbered(target, owed, witness, None).await
    }

    /// [`Group::record`] of work the client proxy numbered (`number`: a
    /// batched or carried delete's sequence number): in the same commit, the record that it
    /// was taken, which outlives the entry ([`taken`]).
    pub(crate) async fn record_numbered(
        &self,
        target: &Target,
        owed: Owed,
        witness: Option<&Target>,
        number: Option<u64>,
    ) -> io::Result<Entry> {
        let g = &self.inner;
        let j = &g.journal;
        let mut live = g.live.lock().await;
        let seq = live.next_seq;
        let mut batch = Vec::new();
        if !live.header_durable {
            let key = header_key(g.id);
            let h = Header {
                version: VERSION,
                session: g.session.clone(),
                spec: g.spec.clone(),
            };
            let value = j.seal(&key, &encode(&h));
            batch.push(Write::Put { key, value });
        }
        let key = op_key(g.id, seq);
        let rec = OpRecord {
            version: OP_VERSION,
            uidl: target.uidl.clone(),
            kind: kind_of(owed),
            size: target.size,
            witness: witness.map(|w| (w.uidl.clone(), w.size)),
        };
        let value = j.seal(&key, &encode(&rec));
        batch.push(Write::Put { key, value });
        let taken = match (g.client, number) {
            (Some(client), Some(n)) => {
                let (pending, write) = j.taken_record((client, n), &g.spec.name, target);
                batch.push(write);
                Some(pending)
            }
            _ => None,
        };
        j.commit_timed(batch).await?;
        if let Some(t) = taken {
            t.committed(j);
        }
        live.next_seq = seq + 1;
        live.header_durable = true;
        live.entries.insert(seq, owed);
        j.state.journal_entries_add(1);
        Ok(Entry::new(self, seq))
    }

    /// Erases the given entries (done, or given up on); with the last one,
    /// the header and so the credentials.
    pub(crate) async fn erase(&self, seqs: &[u64]) -> io::Result<()> {
        let mut live = self.inner.live.lock().await;
        self.erase_locked(&mut live, seqs.to_vec()).await
    }

    /// Erases every entry of the group (the mail client's RSET undoes the
    /// session's work on this server).
    pub(crate) async fn erase_all(&self) -> io::Result<()> {
        let mut live = self.inner.live.lock().await;
        let seqs = live.entries.keys().copied().collect();
        self.erase_locked(&mut live, seqs).await
    }

    async fn erase_locked(&self, live: &mut Live, seqs: Vec<u64>) -> io::Result<()> {
        let g = &self.inner;
        let seqs: Vec<u64> = seqs
            .into_iter()
            .filter(|s| live.entries.contains_key(s))
            .collect();
        let last = seqs.len() == live.entries.len();
        if seqs.is_empty() && !(last && live.header_durable) {
            return Ok(());
        }
        let mut batch: Vec<Write> = seqs
            .iter()
            .map(|s| Write::Delete {
                key: op_key(g.id, *s),
            })
            .collect();
        if (last || g.journal.header_erased_early) && live.header_durable {
            batch.push(Write::Delete {
                key: header_key(g.id),
            });
        }
        if last {
            batch.push(Write::Delete {
                key: quit_sent::quit_key(g.id),
            });
        }
        if let Err(e) = g.journal.store.commit(batch).await {
            g.journal.state.journal_failed();
            return Err(e);
        }
        for s in &seqs {
            live.entries.remove(s);
        }
        if last {
            live.header_durable = false;
        }
        g.journal.state.journal_entries_sub(seqs.len());
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
