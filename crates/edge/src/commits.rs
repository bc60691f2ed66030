//! The deletes this edge's own server sessions committed, so that one of
//! them is not taken for evidence about another session's work.
//!
//! When a session's `QUIT` goes unanswered, its work is one batch that a
//! POP3 server committed whole or not at all, and one of its deletes gone
//! from the next listing says the whole batch was committed
//! (`crate::ledger`). A message can also be gone because someone else
//! deleted it meanwhile, and most often that someone is us: a second mail
//! client of the same user (a phone and a laptop that both delete what
//! they fetched) whose session, through this edge, deleted the same message
//! and committed while the first session's answer was lost. Dovecot lets
//! both sessions hold the maildrop at once by default, and a POP3 server
//! that locks frees the lock of the session whose connection died. Taking
//! that delete for a commit would leave the first session's other deletes
//! undone, so the ledger asks here first: a message one of our sessions
//! deleted after the doubtful session listed it is no evidence.
//!
//! Deletes by other programs stay indistinguishable from a commit (the
//! trade-off in `docs/architecture.md`). The log is bounded: past
//! [`KEPT`] deletes the oldest are forgotten, and a batch listed before
//! what was forgotten finds no evidence at all (each of its items is then
//! judged alone, as if no batch rule existed).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::account::MaildropKey;
use crate::owed::Target;

/// Deletes remembered at most (about 150 bytes each), across maildrops.
pub(crate) const KEPT: usize = 8192;

/// This edge's log of committed deletes; cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct Commits {
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    /// Commits recorded so far: the log's clock.
    clock: u64,
    /// Each delete remembered, with the clock of the last commit that
    /// made it.
    last: BTreeMap<(MaildropKey, Target), u64>,
    /// The same deletes, oldest first, to forget beyond [`KEPT`].
    order: VecDeque<(u64, MaildropKey, Target)>,
    /// The clock of the newest commit partly forgotten (0: none).
    forgotten: u64,
}

/// The log as one maildrop's ledger sees it.
#[derive(Clone)]
pub(crate) struct OurCommits {
    commits: Commits,
    key: MaildropKey,
}

impl Commits {
    fn log(&self) -> MutexGuard<'_, Log> {
        // Each change is made in one step under the lock.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn of(&self, key: &MaildropKey) -> OurCommits {
        OurCommits {
            commits: self.clone(),
            key: key.clone(),
        }
    }
}

impl OurCommits {
    /// The clock now: a listing taken now has seen every commit up to it.
    pub(crate) fn now(&self) -> u64 {
        self.commits.log().clock
    }

    /// A `QUIT` of ours was answered `+OK`, deleting `deleted`.
    pub(crate) fn record(&self, deleted: Vec<Target>) {
        if deleted.is_empty() {
            return;
        }
        let mut log = self.commits.log();
        log.clock += 1;
        let clock = log.clock;
        for target in deleted {
            log.last.insert((self.key.clone(), target.clone()), clock);
            log.order.push_back((clock, self.key.clone(), target));
        }
        while log.order.len() > KEPT {
            let Some((at, key, target)) = log.order.pop_front() else {
                break;
            };
            log.forgotten = log.forgotten.max(at);
            let slot = (key, target);
            if log.last.get(&slot) == Some(&at) {
                log.last.remove(&slot);
            }
        }
    }

    /// Whether one of our sessions may have deleted `target` after clock
    /// `since` (true too when the log no longer knows).
    pub(crate) fn deleted_since(&self, target: &Target, since: u64) -> bool {
        let log = self.commits.log();
        log.forgotten > since
            || log
                .last
                .get(&(self.key.clone(), target.clone()))
                .is_some_and(|&at| at > since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str) -> MaildropKey {
        MaildropKey::for_test(user)
    }

    #[test]
    fn a_delete_counts_only_after_the_clock_it_is_asked_about_and_only_for_its_maildrop() {
        let commits = Commits::default();
        let (alice, bob) = (commits.of(&key("alice")), commits.of(&key("bob")));
        let listed = alice.now();
        alice.record(vec![Target::new("a", 1)]);
        assert!(alice.deleted_since(&Target::new("a", 1), listed));
        assert!(!alice.deleted_since(&Target::new("a", 1), alice.now()));
        assert!(!alice.deleted_since(&Target::new("a", 2), listed), "size");
        assert!(!bob.deleted_since(&Target::new("a", 1), listed));
        alice.record(Vec::new());
        assert_eq!(alice.now(), listed + 1, "an empty commit is no commit");
    }

    #[test]
    fn past_its_bound_the_log_forgets_the_oldest_and_then_knows_nothing_before() {
        let commits = Commits::default();
        let alice = commits.of(&key("alice"));
        let early = alice.now();
        alice.record(vec![Target::new("first", 1)]);
        let after_first = alice.now();
        for i in 0..KEPT {
            alice.record(vec![Target::new(&format!("m{i}"), 1)]);
        }
        let log = commits.log();
        assert_eq!(log.order.len(), KEPT);
        assert_eq!(log.last.len(), KEPT);
        drop(log);
        // Asked about a time before what was forgotten: maybe ours.
        assert!(alice.deleted_since(&Target::new("never", 1), early));
        // After it: known exactly.
        assert!(!alice.deleted_since(&Target::new("never", 1), after_first));
        assert!(alice.deleted_since(&Target::new("m5", 1), after_first));
    }
}
