//! The relay: a remote POP3 client that sits beside a mail server, for edges
//! that may not (or cannot) reach the server directly.
//!
//! Each edge link (Noise KK, both keys pinned) carries one server session at
//! a time (the next may follow on the same link once the edge ended the
//! last with `Quit`), on the relay's allow list only, and runs the
//! transaction commands
//! the edge sends. The relay keeps no mailbox state: the replica and every
//! decision about read marks and deletes stay with the edge. However a link
//! ends, the server session ends with QUIT (see [`causeway_proto::relay`]
//! for why that is always safe).
//!
//! Owns: accepting edge links, checking each `Open` against its allow list,
//! and the life of one link (`link`). The server session itself, TLS
//! included, is `causeway_upstream`'s, shared with the edge's direct path.
//!
//! Must not depend on: the edge or the client proxy.

pub mod broken;
mod config;
mod link;
mod metrics;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use causeway_net::{Count, Env};
use causeway_wire::Counters;
use tokio::sync::watch;

pub use config::{RelayConfig, RelayTimeouts};
pub use link::status_bytes;
pub use metrics::metrics_text;

/// Live counts, for tests and operators. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RelayState {
    links: Count,
    server_sessions: Count,
    /// Edge handshakes completed since start: fewer than server sessions
    /// when the edge keeps links for its next session.
    handshakes: Arc<std::sync::atomic::AtomicU64>,
    handshake_failures: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    /// Every edge link's bytes, fed by each link's `Meter`.
    edge_hop: Counters,
}

impl RelayState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Edge links carrying a server session (past `Open`, before its end);
    /// a link the edge keeps between sessions is not counted.
    pub fn live_links(&self) -> usize {
        self.links.get()
    }

    /// Edge handshakes completed since start.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Server sessions logged in and not yet ended.
    pub fn live_server_sessions(&self) -> usize {
        self.server_sessions.get()
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        // Counts are bumped in one step: still consistent after a panic.
        self.handshake_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn handshake_failed(&self, cause: &'static str) {
        *self.tally().entry(cause).or_default() += 1;
    }

    /// Edge handshakes that failed since start, by cause (see
    /// `causeway_wire::link::handshake_failure_cause`).
    pub fn handshake_failures(&self) -> Vec<(&'static str, u64)> {
        self.tally().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Bytes of every edge link so far (the edge hop).
    pub fn edge_hop(&self) -> &Counters {
        &self.edge_hop
    }
}

/// Serves edge links on `listener` until `shutdown` turns true; then stops
/// accepting, ends every link (each server session with QUIT) and returns.
pub async fn run_relay<E: Env>(
    env: E,
    listener: E::Listener,
    config: Arc<RelayConfig>,
    state: RelayState,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    // The sender goes at once: this configuration never changes.
    let (_, configs) = watch::channel(config);
    run_relay_reloadable(env, listener, configs, state, shutdown).await
}

/// [`run_relay`] with a configuration that may change while it runs (the
/// binary's SIGHUP): each new link takes the latest; an edge whose key
/// leaves `allowed_edges` has its links ended (each server session RSET,
/// then QUIT). The keypair and the listener stay those of the start.
pub async fn run_relay_reloadable<E: Env>(
    env: E,
    listener: E::Listener,
    configs: watch::Receiver<Arc<RelayConfig>>,
    state: RelayState,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let links_shutdown = shutdown.clone();
    causeway_net::accept_until_shutdown(&env, listener, shutdown, |stream, peer| {
        let link = link::Link {
            env: env.clone(),
            config: configs.borrow().clone(),
            configs: configs.clone(),
            state: state.clone(),
            shutdown: links_shutdown.clone(),
            meter: causeway_wire::Meter::default(),
        };
        link.serve(stream, peer)
    })
    .await
}
