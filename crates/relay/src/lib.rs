//! The relay: a remote POP3 client that sits beside a mail server, for edges
//! that may not (or cannot) reach the server directly.
//!
//! Each edge link (Noise KK, both keys pinned) opens exactly one server
//! session, on the relay's allow list only, and runs the transaction commands
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

use std::io;
use std::sync::Arc;

use causeway_net::{Count, Env};
use tokio::sync::watch;

pub use config::{RelayConfig, RelayTimeouts};
pub use link::status_bytes;

/// Live counts, for tests and operators. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RelayState {
    links: Count,
    server_sessions: Count,
}

impl RelayState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Edge links past `Open` and not yet ended.
    pub fn live_links(&self) -> usize {
        self.links.get()
    }

    /// Server sessions logged in and not yet ended.
    pub fn live_server_sessions(&self) -> usize {
        self.server_sessions.get()
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
    let links_shutdown = shutdown.clone();
    causeway_net::accept_until_shutdown(&env, listener, shutdown, |stream, peer| {
        let link = link::Link {
            env: env.clone(),
            config: config.clone(),
            state: state.clone(),
            shutdown: links_shutdown.clone(),
        };
        link.serve(stream, peer)
    })
    .await
}
