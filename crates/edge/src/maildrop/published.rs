//! The deletes each worker owes, as the other sessions of its maildrop see
//! them.
//!
//! Why: a delete acknowledged in one session is owed until that session's
//! QUIT commits it, which may be minutes away (the mail client stays
//! connected, or the server is out of reach and the worker keeps trying).
//! Meanwhile another session of the same maildrop (the user's second mail
//! client, or Thunderbird's second connection, on a server that does not
//! lock) would list the message again, as if the delete had never been
//! made, and a client that keeps copies would fetch it anew. So each
//! worker publishes what it owes, and a new session's listing leaves out
//! what any other worker of the maildrop owed at any time between the
//! start of its server session and its `Welcome`:
//!
//! - owed when the listing began: a delete another session commits while
//!   this one logs in may still be in this session's view of the folder
//!   (seed 421531487);
//! - published since, even if committed since: the server listed the
//!   message before the commit (seed 5555: a resumed session's delete
//!   reached the edge after the other session's listing and before its
//!   `Welcome`, and the client proxy had erased it by then). The session
//!   reads [`Published::left_out`] again as it builds its `Welcome`.
//!
//! Leaving out a message whose delete is later undone only hides it until
//! the next session; it never deletes anything. A worker's deletes are
//! withdrawn when it ends, however it ends; the log of what was published
//! keeps only what a listing in progress still needs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use super::Maildrops;
use crate::account::MaildropKey;
use crate::ledger::Target;

/// A worker's place among those publishing deletes for its maildrop.
pub(crate) struct Published {
    maildrops: Maildrops,
    key: MaildropKey,
    id: u64,
}

/// Every maildrop's published deletes.
#[derive(Default)]
pub(super) struct Owing {
    /// How many deletes were logged, ever: numbers the log.
    logged: u64,
    maildrops: BTreeMap<MaildropKey, Owers>,
}

/// One maildrop's published deletes.
#[derive(Default)]
struct Owers {
    /// What each worker (by its number) owes now.
    owes: BTreeMap<u64, BTreeSet<Target>>,
    /// Workers whose listing is in progress: what others owed when it
    /// began, and the log's number then.
    listings: BTreeMap<u64, (u64, BTreeSet<Target>)>,
    /// `(number, worker, delete)`: deletes published while a listing was
    /// in progress.
    log: VecDeque<(u64, u64, Target)>,
}

impl Owers {
    fn owed_by_others(&self, me: u64) -> BTreeSet<Target> {
        (self.owes.iter())
            .filter(|(id, _)| **id != me)
            .flat_map(|(_, deletes)| deletes.iter().cloned())
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.owes.is_empty() && self.listings.is_empty()
    }
}

impl Maildrops {
    fn owing_lock(&self) -> MutexGuard<'_, Owing> {
        // Each change is one step under the lock: consistent after a panic
        // elsewhere.
        self.owing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new worker's place among those publishing deletes for `key`.
    pub(crate) fn publisher(&self, key: &MaildropKey) -> Published {
        Published {
            maildrops: self.clone(),
            key: key.clone(),
            id: self.next_worker.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Published {
    /// Runs `f` on this maildrop's record; drops the record once it holds
    /// nothing.
    fn with<R>(&self, f: impl FnOnce(&mut Owers, &mut u64) -> R) -> R {
        let mut owing = self.maildrops.owing_lock();
        let Owing { logged, maildrops } = &mut *owing;
        let owers = maildrops.entry(self.key.clone()).or_default();
        let r = f(owers, logged);
        if owers.is_empty() {
            maildrops.remove(&self.key);
        }
        r
    }

    /// The worker owes these deletes now (all of them).
    pub(crate) fn all(&self, deletes: BTreeSet<Target>) {
        self.with(|o, logged| {
            let before = o.owes.remove(&self.id).unwrap_or_default();
            if !o.listings.is_empty() {
                for t in deletes.difference(&before) {
                    *logged += 1;
                    o.log.push_back((*logged, self.id, t.clone()));
                }
            }
            if !deletes.is_empty() {
                o.owes.insert(self.id, deletes);
            }
        });
    }

    /// The worker owes this delete too.
    pub(crate) fn one(&self, delete: Target) {
        self.with(|o, logged| {
            let mine = o.owes.entry(self.id).or_default();
            if mine.insert(delete.clone()) && !o.listings.is_empty() {
                *logged += 1;
                o.log.push_back((*logged, self.id, delete));
            }
        });
    }

    /// The worker's listing begins (before it logs in).
    pub(crate) fn begin_listing(&self) {
        self.with(|o, logged| {
            let owed = o.owed_by_others(self.id);
            o.listings.insert(self.id, (*logged, owed));
        });
    }

    /// What the worker's listing leaves out: every delete another worker
    /// owes, owed when the listing began, or published since.
    pub(crate) fn left_out(&self) -> BTreeSet<Target> {
        self.with(|o, _| {
            let mut out = o.owed_by_others(self.id);
            if let Some((mark, before)) = o.listings.get(&self.id) {
                out.extend(before.iter().cloned());
                let since = (o.log.iter()).filter(|(n, id, _)| n > mark && *id != self.id);
                out.extend(since.map(|(_, _, t)| t.clone()));
            }
            out
        })
    }

    /// The listing is in the `Welcome`: the log no longer keeps deletes
    /// for it.
    pub(crate) fn end_listing(&self) {
        self.with(|o, logged| {
            o.listings.remove(&self.id);
            let oldest = (o.listings.values()).map(|(m, _)| *m).min();
            let oldest = oldest.unwrap_or(*logged);
            while o.log.front().is_some_and(|(n, _, _)| *n <= oldest) {
                o.log.pop_front();
            }
        });
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        self.all(BTreeSet::new());
        self.end_listing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MaildropKey {
        MaildropKey::for_test("alice")
    }

    fn t(u: &str) -> Target {
        Target::new(u, 1)
    }

    #[test]
    fn what_a_worker_owes_is_left_out_for_the_others_until_it_ends() {
        let m = Maildrops::default();
        let (a, b) = (m.publisher(&key()), m.publisher(&key()));
        a.one(t("x"));
        a.one(t("y"));
        b.all(BTreeSet::from([t("z")]));
        assert_eq!(b.left_out(), BTreeSet::from([t("x"), t("y")]));
        assert_eq!(a.left_out(), BTreeSet::from([t("z")]));
        // An RSET (everything again), then the end of the worker.
        a.all(BTreeSet::from([t("y")]));
        assert_eq!(b.left_out(), BTreeSet::from([t("y")]));
        drop(a);
        assert!(b.left_out().is_empty());
        drop(b);
        assert!(m.owing_lock().maildrops.is_empty(), "nothing left behind");
    }

    #[test]
    fn a_listing_leaves_out_what_was_owed_during_it_even_if_committed_since() {
        let m = Maildrops::default();
        let (a, b, c) = (
            m.publisher(&key()),
            m.publisher(&key()),
            m.publisher(&key()),
        );
        a.one(t("before"));
        b.begin_listing();
        // Committed (withdrawn) while b logged in: still in b's view.
        a.all(BTreeSet::new());
        // Published and committed after b listed, before its Welcome.
        c.one(t("during"));
        drop(c);
        assert_eq!(b.left_out(), BTreeSet::from([t("before"), t("during")]));
        b.end_listing();
        assert!(b.left_out().is_empty(), "a listing ended keeps nothing");
        a.one(t("after"));
        assert_eq!(b.left_out(), BTreeSet::from([t("after")]));
        drop((a, b));
        assert!(m.owing_lock().maildrops.is_empty(), "nothing left behind");
    }
}
