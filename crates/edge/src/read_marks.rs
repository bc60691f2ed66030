//! The read marks owed on each maildrop, by every worker at once, so that
//! a message marked unread is never marked read again by a mark owed from
//! before.
//!
//! Why: a read mark is owed from the delivery of the body until a `QUIT`
//! commits it, and the worker that owes it may not be the one the mail
//! client asks to mark the message unread. The user's earlier session can
//! still be finishing (its server refuses to expunge for now, so it keeps
//! retrying with the marks it owes), or its work waits in the maildrop's
//! backlog or the crash journal. Its mark, committed after the unread, would
//! undo what the mail client was told is done (seed 11245: an earlier
//! session's retry read uid 3 again 6 s after the unread). So every read
//! mark owed is registered here under a [`Claim`], wherever its item goes
//! (handed over, parked, restored from the journal), and an unread:
//!
//! 1. takes its [`Turn`], which orders it with every commit of the maildrop:
//!    a `QUIT` either committed before the unread begins, and the unread's
//!    `-\Seen` then comes after it, or begins after the unread, and finds
//!    its mark taken back;
//! 2. erases every worker's journal entries of marks on the message
//!    ([`MaildropReads::entries_of`]), so that a crash cannot bring one back;
//! 3. takes back every claim on the message ([`MaildropReads::take_back`]).
//!
//! A worker, in its turn before each `QUIT`, drops the marks taken back from
//! its ledger (and takes back a `RETR` its server session already had).
//! Pure bookkeeping under one lock; the workers do the I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OwnedMutexGuard;

use crate::account::MaildropKey;
use crate::journal::Entry;
use crate::owed::Target;

/// Every maildrop's read marks owed; cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct ReadMarks {
    maildrops: Arc<Mutex<BTreeMap<MaildropKey, Marks>>>,
    next_claim: Arc<AtomicU64>,
}

/// One maildrop's.
#[derive(Default)]
struct Marks {
    /// Each mark owed, by message: its claim's number and journal entries.
    owed: BTreeMap<Target, BTreeMap<u64, Vec<Entry>>>,
    /// Claims taken back by an unread that their ledger has not dropped yet.
    taken_back: BTreeSet<u64>,
    /// Orders the maildrop's unreads with its commits ([`Turn`]).
    order: Arc<tokio::sync::Mutex<()>>,
}

impl Marks {
    /// Nothing owed, nothing taken back, and no turn held or awaited: the
    /// record can go (a new one starts with a new lock nobody holds).
    fn is_idle(&self) -> bool {
        self.owed.is_empty() && self.taken_back.is_empty() && Arc::strong_count(&self.order) == 1
    }
}

/// The registry as one maildrop's workers see it.
#[derive(Clone)]
pub(crate) struct MaildropReads {
    marks: ReadMarks,
    key: MaildropKey,
}

/// One read mark owed, registered for as long as an item of some ledger
/// holds it: dropped with the item (committed, impossible, undone).
pub(crate) struct Claim {
    reads: MaildropReads,
    target: Target,
    id: u64,
}

/// A worker's turn on its maildrop: held from an unread's erase to its
/// `-\Seen` answered, and from a commit's last look at what was taken
/// back to its `QUIT` answered.
pub(crate) struct Turn {
    guard: Option<OwnedMutexGuard<()>>,
    reads: MaildropReads,
}

impl ReadMarks {
    pub(crate) fn of(&self, key: &MaildropKey) -> MaildropReads {
        MaildropReads {
            marks: self.clone(),
            key: key.clone(),
        }
    }
}

impl MaildropReads {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<MaildropKey, Marks>> {
        // Each change is one step under the lock: consistent after a panic
        // elsewhere.
        (self.marks.maildrops.lock()).unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on this maildrop's record; drops the record once idle.
    fn with<R>(&self, f: impl FnOnce(&mut Marks) -> R) -> R {
        let mut all = self.lock();
        let marks = all.entry(self.key.clone()).or_default();
        let r = f(marks);
        if marks.is_idle() {
            all.remove(&self.key);
        }
        r
    }

    /// Registers a read mark owed on `target`, journaled as `entries`.
    pub(crate) fn claim(&self, target: &Target, entries: &[Entry]) -> Claim {
        let id = self.marks.next_claim.fetch_add(1, Ordering::Relaxed);
        self.with(|m| {
            let on = m.owed.entry(target.clone()).or_default();
            on.insert(id, entries.to_vec());
        });
        Claim {
            reads: self.clone(),
            target: target.clone(),
            id,
        }
    }

    /// Waits for the maildrop's turn (see the module doc).
    pub(crate) async fn turn(&self) -> Turn {
        let order = self.with(|m| m.order.clone());
        Turn {
            guard: Some(order.lock_owned().await),
            reads: self.clone(),
        }
    }

    /// The journal entries of every mark owed on `target`, by any worker:
    /// to erase before [`MaildropReads::take_back`].
    pub(crate) fn entries_of(&self, target: &Target) -> Vec<Entry> {
        self.with(|m| {
            (m.owed.get(target).into_iter())
                .flat_map(|claims| claims.values().flatten().cloned())
                .collect()
        })
    }

    /// The message was marked unread: every mark owed on it is taken back.
    pub(crate) fn take_back(&self, target: &Target) {
        self.with(|m| {
            let ids = m.owed.get(target).into_iter().flat_map(|c| c.keys());
            m.taken_back.extend(ids);
        });
    }
}

impl Claim {
    /// The mark was owed again (another entry for it in the journal).
    pub(crate) fn add(&self, entries: &[Entry]) {
        self.reads.with(|m| {
            let on = m.owed.entry(self.target.clone()).or_default();
            on.entry(self.id).or_default().extend_from_slice(entries);
        });
    }

    /// An unread took this mark back: the ledger drops it.
    pub(crate) fn taken_back(&self) -> bool {
        self.reads.with(|m| m.taken_back.contains(&self.id))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.reads.with(|m| {
            m.taken_back.remove(&self.id);
            if let Some(on) = m.owed.get_mut(&self.target) {
                on.remove(&self.id);
                if on.is_empty() {
                    m.owed.remove(&self.target);
                }
            }
        });
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        // The record may be idle now that the turn is given back.
        self.reads.with(|_| ());
    }
}

#[cfg(test)]
mod tests;
