//! Serving connections until asked to stop: the accept loop every node
//! (client proxy, edge, relay) runs, and the shutdown signal it obeys.
//!
//! Shutdown is a `watch::Receiver<bool>` turned true by whoever runs the
//! node (a signal handler, a test, the simulation). A dropped sender means
//! "never": a node whose owner went away keeps serving rather than spinning
//! on a closed channel.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

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
