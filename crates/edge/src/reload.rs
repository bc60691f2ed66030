//! A new configuration reaching a running edge (SIGHUP in the binary).
//!
//! The edge's configuration travels in a `watch` channel: each new
//! connection takes the latest, so changed allow lists and limits apply to
//! it at once, and sessions already running keep theirs, with one
//! exception: a client whose key left `allowed_clients` must not keep the
//! sessions it has (the operator removed the key because it was lost or
//! stolen). Each session therefore watches for that and stops as it would
//! at shutdown: its server sessions end with QUIT and its owed work is
//! still committed (the workers keep the edge's own shutdown signal, not
//! this one).
//!
//! Without a sender (an edge started with a fixed configuration, as in the
//! simulation) nothing watches and nothing is spawned.

use std::sync::Arc;

use causeway_net::shutdown_requested;
use causeway_wire::PublicKey;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::EdgeConfig;

/// The edge's configuration as it changes.
pub(crate) type Configs = watch::Receiver<Arc<EdgeConfig>>;

/// Aborts the watching task when the session that asked for it ends.
pub(crate) struct Watching(JoinHandle<()>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A stop signal for the session of `client`: true on the edge's shutdown,
/// or once a new configuration no longer allows `client`. With the task
/// that watches, to hold for the session's life (None: the configuration
/// cannot change, and the edge's shutdown signal is returned as it is).
pub(crate) fn stop_for(
    configs: &Configs,
    shutdown: &watch::Receiver<bool>,
    client: PublicKey,
    session: &str,
) -> (watch::Receiver<bool>, Option<Watching>) {
    let mut configs = configs.clone();
    if configs.has_changed().is_err() {
        return (shutdown.clone(), None);
    }
    configs.mark_unchanged();
    let (tx, rx) = watch::channel(*shutdown.borrow());
    let mut shutdown = shutdown.clone();
    let session = session.to_owned();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown_requested(&mut shutdown) => break,
                changed = configs.changed() => {
                    if changed.is_err() {
                        // No more configurations: only shutdown is left.
                        shutdown_requested(&mut shutdown).await;
                        break;
                    }
                    if !configs.borrow_and_update().allowed_clients.contains(&client) {
                        warn!(%session, %client, "the client's key was removed from allowed_clients: \
                            ending its session (its server sessions end with QUIT, acknowledged \
                            work is still committed)");
                        break;
                    }
                }
            }
        }
        let _ = tx.send(true);
    });
    (rx, Some(Watching(task)))
}
