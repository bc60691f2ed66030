//! What every session of one client proxy process shares: the edge sessions
//! it lost, the bodies it keeps, its delete journal, how many mail clients
//! it is serving, and what it counts ([`ClientState`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::deletes::DeleteJournal;
use crate::lost::LostSessions;
use crate::mirror::Kept;

/// What the client proxy counts, for operators and the benchmark.
#[derive(Clone, Debug, Default)]
pub struct ClientState {
    waits: Arc<AtomicU64>,
    deletes: Arc<AtomicU64>,
}

impl ClientState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Round trips on the line the proxy waited for: one per handshake,
    /// `Hello`, request, ping and `Quit`. Bodies streaming in, read marks,
    /// deletes and window credits cost none.
    pub fn line_waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    pub(crate) fn waited(&self, n: u64) {
        self.waits.fetch_add(n, Ordering::Relaxed);
    }

    /// Deletes in the proxy's journal that the edge has not confirmed yet
    /// (held or committed): acknowledged work only this proxy knows of.
    pub fn deletes_pending(&self) -> u64 {
        self.deletes.load(Ordering::Relaxed)
    }

    pub(crate) fn set_deletes_pending(&self, n: usize) {
        self.deletes.store(n as u64, Ordering::Relaxed);
    }
}

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
