//! The deletes this edge took from each client proxy, by the proxy's own
//! number for each, remembered past their commit so that one carried again
//! is answered `Held` and not taken a second time.
//!
//! A client proxy erases a delete from its journal when the edge says
//! `Held`, and carries one whose `Held` never came into its next `Hello`.
//! A crash of the proxy, or a cut, can take that `Held` after the session
//! that took the delete has committed it and ended: the proxy then carries
//! work already done. Nothing else on the edge can tell: the session's
//! memory is gone, and the message being gone from the listing says
//! nothing, for the next listing may hold a later message with the same
//! UIDL and size (a resent or re-delivered copy), which a delete by UIDL
//! and size done twice deletes (seed 72540: the user's copy deleted 124 s
//! after the original was, by a delete carried after a proxy crash).
//!
//! So each delete the edge takes with a number (batched, or carried) is
//! written down here in the same store commit as its journal entry, and
//! outlives the entry: a delete carried again whose record names the same
//! server, UIDL and size is held without being owed again. A record is
//! erased when the proxy's `Hello` says it can carry that number no more
//! (`oldest`: every number it still holds is at least that), so the
//! records of a proxy are about as many as the deletes in its own journal
//! plus those in flight. A record whose number names another delete (a
//! proxy whose clock went back reuses numbers) is no match: that delete is
//! taken.
//!
//! Keys are `t/<16 hex digits>`, random; the value, sealed like every
//! journal value, holds the client's key, the number and the delete.
//! `census` and `causeway owed` do not count them: they are no work.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use causeway_store::{Write, decode, encode};
use causeway_wire::PublicKey;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::Journal;
use crate::owed::Target;
use crate::state::EdgeState;

const VERSION: u8 = 1;

/// The key of a record.
pub(super) fn taken_key(id: u64) -> Vec<u8> {
    format!("t/{id:016x}").into_bytes()
}

/// One delete taken, as the journal keeps it.
#[derive(Serialize, Deserialize)]
struct Record {
    version: u8,
    client: [u8; 32],
    seq: u64,
    server: String,
    uidl: String,
    size: Option<u64>,
}

/// A client proxy's number for a delete: its key and the sequence number.
type Numbered = ([u8; 32], u64);

/// What a record says was taken, and where it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Took {
    id: u64,
    server: String,
    target: Target,
}

/// The records in memory, by client and number; shared by every clone of
/// the journal.
#[derive(Clone, Default)]
pub(super) struct Taken(Arc<Mutex<BTreeMap<Numbered, Took>>>);

impl Taken {
    fn map(&self) -> MutexGuard<'_, BTreeMap<Numbered, Took>> {
        // Each change is one insert or remove.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a record, and the count the metrics show.
    fn insert(&self, numbered: Numbered, took: Took, state: &EdgeState) {
        let mut map = self.map();
        map.insert(numbered, took);
        state.set_taken_records(map.len());
    }
}

/// A record to write with the journal entry of the delete it names.
pub(super) struct Pending {
    numbered: Numbered,
    took: Took,
}

impl Pending {
    /// Remembers the record once its commit is durable.
    pub(super) fn committed(self, journal: &Journal) {
        journal
            .taken
            .insert(self.numbered, self.took, &journal.state);
    }
}

impl Journal {
    /// The record of `numbered`, taken by a session for `server`'s
    /// `target`, and the write that keeps it.
    pub(super) fn taken_record(
        &self,
        numbered: Numbered,
        server: &str,
        target: &Target,
    ) -> (Pending, Write) {
        let id = self.sealer.next_u64();
        let key = taken_key(id);
        let record = Record {
            version: VERSION,
            client: numbered.0,
            seq: numbered.1,
            server: server.to_owned(),
            uidl: target.uidl.clone(),
            size: target.size,
        };
        let value = self.seal(&key, &encode(&record));
        let write = Write::Put { key, value };
        let took = Took {
            id,
            server: server.to_owned(),
            target: target.clone(),
        };
        (Pending { numbered, took }, write)
    }

    /// A record found on disk at start (`false`: it does not decode).
    pub(super) fn taken_found(&self, id: u64, plain: &[u8]) -> bool {
        match decode::<Record>(plain) {
            Ok(r) if r.version == VERSION => {
                let took = Took {
                    id,
                    server: r.server,
                    target: Target {
                        uidl: r.uidl,
                        size: r.size,
                    },
                };
                self.taken.insert((r.client, r.seq), took, &self.state);
                true
            }
            _ => false,
        }
    }

    /// Whether this edge took `seq` of `client` as a delete of `server`'s
    /// `target` (and so holds it, done or owed).
    pub(crate) fn took(&self, client: &PublicKey, seq: u64, server: &str, target: &Target) -> bool {
        self.taken
            .map()
            .get(&(*client.as_bytes(), seq))
            .is_some_and(|t| t.server == server && t.target == *target)
    }

    /// Erases the records of `client`'s deletes numbered below `oldest`:
    /// its `Hello` says it will never carry them. Best effort: a record the
    /// store would not erase stays, and is erased at a later `Hello`.
    pub(crate) async fn forget_taken_below(&self, client: &PublicKey, oldest: u64) {
        let c = *client.as_bytes();
        let ids: Vec<(u64, u64)> = self
            .taken
            .map()
            .range((c, 0)..(c, oldest))
            .map(|(&(_, seq), t)| (seq, t.id))
            .collect();
        if ids.is_empty() {
            return;
        }
        let batch = ids
            .iter()
            .map(|&(_, id)| Write::Delete { key: taken_key(id) })
            .collect();
        if let Err(e) = self.store.commit(batch).await {
            warn!(records = ids.len(), error = %e,
                "journal: could not erase the records of deletes a client proxy can no longer carry; \
                 they are erased at its next session (check the journal's disk)");
            return;
        }
        let mut map = self.taken.map();
        for (seq, id) in ids {
            if map.get(&(c, seq)).is_some_and(|t| t.id == id) {
                map.remove(&(c, seq));
            }
        }
        self.state.set_taken_records(map.len());
    }
}
