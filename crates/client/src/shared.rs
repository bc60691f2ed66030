//! What every session of one client proxy process shares: the edge sessions
//! it lost, the bodies it keeps, its delete journal, how many mail clients
//! it is serving, and what it counts (`crate::state`).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::deletes::DeleteJournal;
use crate::lost::LostSessions;
use crate::mirror::Kept;
use crate::state::ClientState;

#[derive(Clone)]
pub(crate) struct Shared {
    pub state: ClientState,
    pub lost: LostSessions,
    pub kept: Kept,
    /// With a journal, DELE is answered by the proxy (see `crate::deletes`).
    pub deletes: Option<DeleteJournal>,
    /// Held while the proxy's own session carries deletes (`crate::carrier`).
    pub carrying: Arc<tokio::sync::Mutex<()>>,
    serving: Arc<AtomicUsize>,
    /// The last UIDVALIDITY an IMAP session was given.
    uid_validity: Arc<AtomicU32>,
}

/// Counts one mail client served while it lives.
pub(crate) struct Serving(Arc<AtomicUsize>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    pub(crate) fn new(state: ClientState, kept: Kept, deletes: Option<DeleteJournal>) -> Self {
        Self {
            state,
            lost: LostSessions::default(),
            kept,
            deletes,
            carrying: Arc::new(tokio::sync::Mutex::new(())),
            serving: Arc::new(AtomicUsize::new(0)),
            uid_validity: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Marks a mail client as served until the guard is dropped.
    pub(crate) fn serving(&self) -> Serving {
        self.serving.fetch_add(1, Ordering::Relaxed);
        Serving(self.serving.clone())
    }

    /// A UIDVALIDITY for a new IMAP session: the time in seconds, as
    /// Dovecot chooses them, but never one this process gave out before
    /// (two sessions in one second number their folders differently).
    pub(crate) fn uid_validity(&self, unix_millis: u64) -> NonZeroU32 {
        let now = u32::try_from(unix_millis / 1000).unwrap_or(u32::MAX).max(1);
        let prev = self
            .uid_validity
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .expect("always Some");
        NonZeroU32::new(now.max(prev.saturating_add(1))).expect("at least 1")
    }

    /// Mail clients being served now.
    pub(crate) fn mail_clients(&self) -> usize {
        self.serving.load(Ordering::Relaxed)
    }
}
