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

use causeway_net::serve::{Watching, stop_unless_allowed};
use causeway_wire::PublicKey;
use tokio::sync::watch;
use tracing::warn;

use crate::config::EdgeConfig;

/// The edge's configuration as it changes.
pub(crate) type Configs = watch::Receiver<Arc<EdgeConfig>>;

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
    let session = session.to_owned();
    stop_unless_allowed(
        configs,
        shutdown,
        move |c: &EdgeConfig| c.allowed_clients.contains(&client),
        move || {
            warn!(%session, %client, "the client's key was removed from allowed_clients: \
                ending its session (its server sessions end with QUIT, acknowledged \
                work is still committed)");
        },
    )
}
