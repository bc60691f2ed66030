//! What every session of one client proxy process shares: the edge sessions
//! it lost, the bodies it keeps, its delete journal, the IMAP folders' UIDs,
//! how many mail clients it is serving, and what it counts (`crate::state`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::deletes::DeleteJournal;
use crate::lost::LostSessions;
use crate::mirror::Kept;
use crate::state::ClientState;
use crate::uids::UidBooks;

#[derive(Clone)]
pub(crate) struct Shared {
    pub state: ClientState,
    pub lost: LostSessions,
    pub kept: Kept,
    /// With a journal, DELE is answered by the proxy (see `crate::deletes`).
    pub deletes: Option<DeleteJournal>,
    /// Held while a session of the proxy's own commits with no mail client
    /// waiting for it: the carrier's (`crate::carrier`), or the QUIT of an
    /// IMAP client that hung up (`crate::imap_front`). Its server sessions
    /// hold the maildrop locks until then, so a new session's Hello waits
    /// for it rather than meet `[IN-USE]`.
    pub committing: Arc<tokio::sync::Mutex<()>>,
    serving: Arc<AtomicUsize>,
    /// The IMAP folders' UIDs and flags (`crate::uids`).
    pub uids: UidBooks,
}

/// Counts one mail client served while it lives.
pub(crate) struct Serving(Arc<AtomicUsize>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    pub(crate) fn new(
        state: ClientState,
        kept: Kept,
        deletes: Option<DeleteJournal>,
        uids: UidBooks,
    ) -> Self {
        Self {
            state,
            lost: LostSessions::default(),
            kept,
            deletes,
            committing: Arc::new(tokio::sync::Mutex::new(())),
            serving: Arc::new(AtomicUsize::new(0)),
            uids,
        }
    }

    /// Marks a mail client as served until the guard is dropped.
    pub(crate) fn serving(&self) -> Serving {
        self.serving.fetch_add(1, Ordering::Relaxed);
        Serving(self.serving.clone())
    }

    /// Mail clients being served now.
    pub(crate) fn mail_clients(&self) -> usize {
        self.serving.load(Ordering::Relaxed)
    }
}
