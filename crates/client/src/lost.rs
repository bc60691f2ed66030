//! The edge sessions this proxy lost, to be named in the next `Hello`.
//!
//! After a cut the edge cannot tell a dead line from a quiet mail client, so
//! it keeps the old session (and its server sessions, with their maildrop
//! locks) until its idle timeout. The proxy saw the line die: it remembers
//! the session, and the next session it opens asks the edge to end it first
//! (`Hello::supersedes`), so the user's reconnect is not met by `[IN-USE]`.
//!
//! Every session that ended without `Bye` is remembered, whatever the cause:
//! naming one the edge already ended costs nothing. Only the latest
//! [`MAX_LOST`] are kept; this is memory of one proxy process, and a proxy
//! restart forgets it. So the first `Hello` after a start says so
//! (`restarted`), and the edge ends every earlier session of this proxy's
//! key, including those waiting for a resume that will never come.
//!
//! Until that `Hello` is answered, the proxy's other `Hello`s wait for it.
//! Otherwise, with several mail clients logging in at once after a start, a
//! later `Hello` could open its session first, and the edge would end that
//! one too as "earlier" (figure 5 of the bench: 9 of 9,900 sessions, each
//! met later by "no session … to resume").

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// As many as the edge accepts in one `Hello`.
pub const MAX_LOST: usize = 16;

/// Shared by every mail-client session of one proxy.
#[derive(Clone)]
pub(crate) struct LostSessions {
    ids: Arc<Mutex<VecDeque<String>>>,
    /// No `Hello` of this process has been answered yet.
    restarted: Arc<AtomicBool>,
    /// Held by the `Hello` that says `restarted` until it is answered.
    first: Arc<tokio::sync::Mutex<()>>,
}

impl Default for LostSessions {
    fn default() -> Self {
        Self {
            ids: Arc::default(),
            restarted: Arc::new(AtomicBool::new(true)),
            first: Arc::default(),
        }
    }
}

/// What one `Hello` names; give it back with [`LostSessions::answered`] or
/// [`LostSessions::restore`].
pub(crate) struct Taken {
    pub ids: Vec<String>,
    /// The first `Hello` since the proxy started.
    pub restarted: bool,
    /// Other `Hello`s wait while the first is on its way.
    _first: Option<OwnedMutexGuard<()>>,
}

impl LostSessions {
    fn ids(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        // Each change is one step: consistent after a panic elsewhere.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, id: String) {
        let mut ids = self.ids();
        if !ids.contains(&id) {
            if ids.len() == MAX_LOST {
                ids.pop_front();
            }
            ids.push_back(id);
        }
    }

    /// All of them, and whether this is the first `Hello` since the proxy
    /// started; while no `Hello` has been answered, waits until it is this
    /// one's turn to be the first.
    pub(crate) async fn take(&self) -> Taken {
        let mut first = None;
        if self.restarted.load(Ordering::SeqCst) {
            first = Some(self.first.clone().lock_owned().await);
        }
        // Whoever held the turn before may have been answered meanwhile.
        let restarted = self.restarted.load(Ordering::SeqCst);
        Taken {
            ids: self.ids().drain(..).collect(),
            restarted,
            _first: first.filter(|_| restarted),
        }
    }

    /// The edge answered the `Hello` that named `taken`: it acted on them.
    pub(crate) fn answered(&self, taken: Taken) {
        if taken.restarted {
            self.restarted.store(false, Ordering::SeqCst);
        }
    }

    /// The `Hello` that named `taken` did not reach the edge, or was
    /// refused before it acted: the next one names them again.
    pub(crate) fn restore(&self, taken: Taken) {
        for id in taken.ids {
            self.add(id);
        }
    }

    /// Remembers `id` when dropped, unless [`Guard::ended_with_bye`] said the
    /// session ended properly.
    pub(crate) fn guard(&self, id: String) -> Guard {
        Guard {
            lost: self.clone(),
            id: Some(id),
        }
    }
}

/// Held by an open edge link: whatever way the link goes (cut, abandoned,
/// dropped on an error path), its session is remembered as lost.
pub(crate) struct Guard {
    lost: LostSessions,
    id: Option<String>,
}

impl Guard {
    pub(crate) fn ended_with_bye(&mut self) {
        self.id = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.lost.add(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(t: &Taken) -> (Vec<String>, bool) {
        (t.ids.clone(), t.restarted)
    }

    #[tokio::test]
    async fn a_dropped_guard_remembers_its_session_unless_it_ended_with_bye() {
        let lost = LostSessions::default();
        drop(lost.guard("a".into()));
        let mut g = lost.guard("b".into());
        g.ended_with_bye();
        drop(g);
        let first = lost.take().await;
        assert_eq!(seen(&first), (vec!["a".to_owned()], true));
        lost.answered(first);
        assert_eq!(seen(&lost.take().await), (vec![], false), "taken once");
    }

    #[tokio::test]
    async fn only_the_latest_are_kept_and_restored_ones_come_back() {
        let lost = LostSessions::default();
        for i in 0..MAX_LOST + 3 {
            lost.add(i.to_string());
        }
        let taken = lost.take().await;
        let ids = taken.ids.clone();
        assert_eq!(ids.len(), MAX_LOST);
        assert_eq!(ids[0], "3");
        lost.restore(taken);
        lost.add("3".into());
        assert_eq!(
            seen(&lost.take().await),
            (ids, true),
            "no duplicates, and still the first Hello"
        );
    }

    #[tokio::test]
    async fn until_the_first_hello_is_answered_the_others_wait_for_it() {
        let lost = LostSessions::default();
        let first = lost.take().await;
        assert!(first.restarted);
        // A second Hello waits while the first is on its way.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), lost.take());
        assert!(waiting.await.is_err(), "a second Hello did not wait");
        // The first was not answered: the next Hello is the first again.
        lost.restore(first);
        let again = lost.take().await;
        assert!(again.restarted);
        let (other, ()) = tokio::join!(lost.take(), async {
            lost.answered(again);
        });
        assert!(
            !other.restarted,
            "answered once: no later Hello says restarted"
        );
    }
}
