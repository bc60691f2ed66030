//! The short record of how each client session ended, kept for tests, the
//! simulation's judge and operators' tooling (`EdgeState::sessions`).
//!
//! Every session's start and end touches it, under one lock shared by all
//! sessions, so both take `O(log n)` of the `n` sessions running: an edge
//! holds ten thousand at once (bench figure 5), and a scan of the records
//! at each start and end made opening them all cost the square of their
//! number. Running sessions are always kept; of the ended ones, the oldest
//! (by start) are forgotten first once [`MAX_RECORDS`] are kept.

use std::collections::{BTreeMap, BTreeSet};

/// Session records kept (the oldest ended ones are forgotten first), so a
/// long-running edge does not grow without bound.
pub const MAX_RECORDS: usize = 1024;

/// How one client session went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    /// `None` while the session runs.
    pub end: Option<SessionEnd>,
    /// Acknowledged work that could never be done (server name, UIDL,
    /// what): a message that a duplicate UIDL made impossible to name.
    pub abandoned: Vec<String>,
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client said `Quit` and got `Bye`.
    Quit,
    /// The line was cut (error, EOF without close, or silence); the reason.
    LineCut(String),
    /// The edge was shut down.
    Shutdown,
    /// The session was refused before `Welcome`; the reason sent.
    Refused(String),
    /// Its line had been cut, and the client's next session ended it (see
    /// `Hello::supersedes`).
    Superseded,
    /// This connection resumed another session (named), which goes on.
    Resumed(String),
}

#[derive(Default)]
pub(crate) struct Records {
    /// Each record kept, by the order its session started in.
    by_start: BTreeMap<u64, SessionRecord>,
    /// The start numbers of the ended sessions kept.
    ended: BTreeSet<u64>,
    /// Each running session's start number, by its id.
    running: BTreeMap<String, u64>,
    next: u64,
}

impl Records {
    pub(crate) fn started(&mut self, id: &str) {
        if self.by_start.len() >= MAX_RECORDS
            && let Some(oldest) = self.ended.pop_first()
        {
            self.by_start.remove(&oldest);
        }
        let n = self.next;
        self.next += 1;
        self.by_start.insert(
            n,
            SessionRecord {
                id: id.to_owned(),
                end: None,
                abandoned: Vec::new(),
            },
        );
        self.running.insert(id.to_owned(), n);
    }

    pub(crate) fn ended(&mut self, id: &str, end: SessionEnd, abandoned: Vec<String>) {
        let Some(n) = self.running.remove(id) else {
            return;
        };
        if let Some(r) = self.by_start.get_mut(&n) {
            r.end = Some(end);
            r.abandoned = abandoned;
            self.ended.insert(n);
        }
    }

    /// In start order.
    pub(crate) fn all(&self) -> Vec<SessionRecord> {
        self.by_start.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(records: &Records) -> Vec<String> {
        records.all().into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn the_oldest_ended_sessions_are_forgotten_first_and_running_ones_never() {
        let mut r = Records::default();
        // More sessions running than records kept: all are kept.
        for i in 0..MAX_RECORDS + 10 {
            r.started(&format!("run{i}"));
        }
        assert_eq!(r.all().len(), MAX_RECORDS + 10);
        // Three end, the middle one first; then new ones start: the ended
        // are forgotten, oldest start first, and never a running one.
        r.ended("run7", SessionEnd::Quit, Vec::new());
        r.ended(
            "run3",
            SessionEnd::LineCut("cut".into()),
            vec!["abandoned".into()],
        );
        r.ended("run900", SessionEnd::Shutdown, Vec::new());
        let ended: Vec<_> = r.all().into_iter().filter(|s| s.end.is_some()).collect();
        assert_eq!(ended.len(), 3);
        assert_eq!(ended[0].id, "run3");
        assert_eq!(ended[0].abandoned, ["abandoned"]);
        r.started("new0");
        assert!(!ids(&r).contains(&"run3".to_owned()));
        r.started("new1");
        r.started("new2");
        r.started("new3");
        let now = ids(&r);
        for gone in ["run7", "run900"] {
            assert!(!now.contains(&gone.to_owned()), "{gone}");
        }
        assert_eq!(now.len(), MAX_RECORDS + 10 - 3 + 4);
        assert!(r.all().iter().all(|s| s.end.is_none()));
        // In start order.
        assert_eq!(now[..3], ["run0", "run1", "run2"]);
        assert_eq!(now[now.len() - 4..], ["new0", "new1", "new2", "new3"]);
        // An id that is not running is ignored.
        r.ended("run3", SessionEnd::Quit, Vec::new());
        r.ended("never", SessionEnd::Quit, Vec::new());
        assert!(r.all().iter().all(|s| s.end.is_none()));
    }

    #[test]
    fn under_the_cap_every_session_is_kept_with_how_it_ended() {
        let mut r = Records::default();
        for i in 0..10 {
            r.started(&format!("s{i}"));
            if i % 2 == 0 {
                r.ended(&format!("s{i}"), SessionEnd::Quit, Vec::new());
            }
        }
        let all = r.all();
        assert_eq!(all.len(), 10);
        for (i, s) in all.iter().enumerate() {
            assert_eq!(s.id, format!("s{i}"));
            assert_eq!(s.end.is_some(), i % 2 == 0);
        }
    }
}
