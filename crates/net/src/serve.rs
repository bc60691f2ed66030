//! Serving connections until asked to stop: the accept loop every node
//! (client proxy, edge, relay) runs, and the shutdown signal it obeys.
//!
//! Shutdown is a `watch::Receiver<bool>` turned true by whoever runs the
//! node (a signal handler, a test, the simulation). A dropped sender means
//! "never": a node whose owner went away keeps serving rather than spinning
//! on a closed channel.
//!
//! A node whose configuration can change while it runs (the edge and the
//! relay on SIGHUP) keeps it in a `watch` channel too. Each connection takes
//! the latest when it starts; one whose peer's key a new configuration no
//! longer allows must not keep running (the operator removed the key because
//! it was lost or stolen), so [`stop_unless_allowed`] gives it a stop signal
//! that also turns true then, and the connection ends as at shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::{Env, Listener};

/// Resolves once shutdown was asked for. A dropped sender means "never".
pub async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The accept loop of a node: a task per connection until `shutdown`; then
/// stops accepting and returns once every connection's task has ended (each
/// ends its own work cleanly on shutdown).
pub async fn accept_until_shutdown<E, F, Fut>(
    env: &E,
    mut listener: E::Listener,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) -> io::Result<()>
where
    E: Env,
    F: FnMut(E::Stream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tasks.spawn(serve(stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
                    env.sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Aborts the watching task of [`stop_unless_allowed`] when the connection
/// that asked for it ends.
pub struct Watching(JoinHandle<()>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A stop signal for one connection: true on the node's `shutdown`, or
/// once a new configuration in `configs` fails `allowed` (`removed` runs
/// then, once, to say so in the log). With the task that watches, to hold
/// for the connection's life. Without a sender (a node started with a fixed
/// configuration, as in the simulation) nothing watches: `shutdown` is
/// returned as it is.
pub fn stop_unless_allowed<C: Send + Sync + 'static>(
    configs: &watch::Receiver<Arc<C>>,
    shutdown: &watch::Receiver<bool>,
    allowed: impl Fn(&C) -> bool + Send + 'static,
    removed: impl FnOnce() + Send + 'static,
) -> (watch::Receiver<bool>, Option<Watching>) {
    let mut configs = configs.clone();
    if configs.has_changed().is_err() {
        return (shutdown.clone(), None);
    }
    configs.mark_unchanged();
    let (tx, rx) = watch::channel(*shutdown.borrow());
    let mut shutdown = shutdown.clone();
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
                    if !allowed(&configs.borrow_and_update()) {
                        removed();
                        break;
                    }
                }
            }
        }
        let _ = tx.send(true);
    });
    (rx, Some(Watching(task)))
}
