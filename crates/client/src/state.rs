//! What the client proxy counts, for operators and the benchmark.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the client proxy counts, for operators and the benchmark.
#[derive(Clone, Debug, Default)]
pub struct ClientState {
    waits: Arc<AtomicU64>,
    deletes: Arc<AtomicU64>,
    resumes: Arc<AtomicU64>,
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

    /// Edge sessions taken up again after a cut, with the mail client
    /// none the wiser.
    pub fn resumes(&self) -> u64 {
        self.resumes.load(Ordering::Relaxed)
    }

    pub(crate) fn resumed(&self) {
        self.resumes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_deletes_pending(&self, n: usize) {
        self.deletes.store(n as u64, Ordering::Relaxed);
    }
}
