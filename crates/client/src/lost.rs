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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// As many as the edge accepts in one `Hello`.
pub const MAX_LOST: usize = 16;

/// Shared by every mail-client session of one proxy.
#[derive(Clone)]
pub(crate) struct LostSessions {
    ids: Arc<Mutex<VecDeque<String>>>,
    /// No `Hello` of this process has been answered yet.
    restarted: Arc<AtomicBool>,
}

impl Default for LostSessions {
    fn default() -> Self {
        Self {
            ids: Arc::default(),
            restarted: Arc::new(AtomicBool::new(true)),
        }
    }
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
    /// started; give them back with [`Self::restore`] if that `Hello` did
    /// not reach the edge.
    pub(crate) fn take(&self) -> (Vec<String>, bool) {
        let ids = self.ids().drain(..).collect();
        (ids, self.restarted.swap(false, Ordering::SeqCst))
    }

    pub(crate) fn restore(&self, ids: Vec<String>, restarted: bool) {
        for id in ids {
            self.add(id);
        }
        if restarted {
            self.restarted.store(true, Ordering::SeqCst);
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

    #[test]
    fn a_dropped_guard_remembers_its_session_unless_it_ended_with_bye() {
        let lost = LostSessions::default();
        drop(lost.guard("a".into()));
        let mut g = lost.guard("b".into());
        g.ended_with_bye();
        drop(g);
        assert_eq!(lost.take(), (vec!["a".to_owned()], true));
        assert_eq!(lost.take(), (vec![], false), "taken once");
    }

    #[test]
    fn only_the_latest_are_kept_and_restored_ones_come_back() {
        let lost = LostSessions::default();
        for i in 0..MAX_LOST + 3 {
            lost.add(i.to_string());
        }
        let (ids, restarted) = lost.take();
        assert_eq!(ids.len(), MAX_LOST);
        assert_eq!(ids[0], "3");
        lost.restore(ids.clone(), restarted);
        lost.add("3".into());
        assert_eq!(
            lost.take(),
            (ids, true),
            "no duplicates, and still the first Hello"
        );
    }
}
