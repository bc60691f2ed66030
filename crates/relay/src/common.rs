//! What the relay and the edge both need around a secure channel: counts that
//! give themselves back, channel I/O where every wait has a deadline and the
//! credential rule is applied in one place, and waiting for shutdown.
//!
//! The edge depends on this crate for it (and for [`crate::server`]) rather
//! than keeping a twin copy.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use causeway_net::{Env, Listener, Stream};
use causeway_proto::Message;
use causeway_wire::{Compress, Received, SecureChannel, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A live count (sessions, links, replicas...), read by tests and operators.
#[derive(Clone, Debug, Default)]
pub struct Count(Arc<AtomicUsize>);

/// One unit of a [`Count`], given back when dropped, on every path out of
/// the task that holds it.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Count {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub fn ticket(&self) -> Ticket {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ticket(self.0.clone())
    }

    /// A ticket, unless `limit` are already out.
    pub fn ticket_within(&self, limit: usize) -> Option<Ticket> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Ticket(self.0.clone()))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a channel stopped before the protocol said it was done.
#[derive(Debug)]
pub enum LinkEnd {
    /// The peer closed the channel (with its reason) when we expected more.
    Closed(String),
    /// The channel failed: cut, tampered with, or refused.
    Failed(WireError),
    /// Nothing arrived (or could be sent) within the deadline.
    Silent { what: &'static str, after: Duration },
}

impl fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkEnd::Closed(r) => write!(f, "the peer closed the channel: {r}"),
            LinkEnd::Failed(e) => write!(f, "{e}"),
            LinkEnd::Silent { what, after } => {
                write!(f, "nothing for {} ms while {what}", after.as_millis())
            }
        }
    }
}

/// Receives one message within `within`.
pub async fn recv<E: Env, S: Stream, T: DeserializeOwned + Send>(
    env: &E,
    channel: &mut SecureChannel<S>,
    within: Duration,
    what: &'static str,
) -> Result<T, LinkEnd> {
    match env.timeout(within, what, channel.recv::<T>()).await {
        Err(_) => Err(LinkEnd::Silent {
            what,
            after: within,
        }),
        Ok(Err(e)) => Err(LinkEnd::Failed(e)),
        Ok(Ok(Received::Closed { reason })) => Err(LinkEnd::Closed(reason)),
        Ok(Ok(Received::Msg(m))) => Ok(m),
    }
}

/// Sends one message within `within`. Messages that carry credentials go
/// uncompressed, outside the compression context (the catalogue's rule).
pub async fn send<E: Env, S: Stream, T: Serialize + Message + Sync>(
    env: &E,
    channel: &mut SecureChannel<S>,
    msg: &T,
    within: Duration,
) -> Result<(), LinkEnd> {
    let compress = if msg.carries_credentials() {
        Compress::Never
    } else {
        Compress::Yes
    };
    match env
        .timeout(
            within,
            "sending on the channel",
            channel.send(msg, compress),
        )
        .await
    {
        Err(_) => Err(LinkEnd::Silent {
            what: "sending on the channel",
            after: within,
        }),
        Ok(r) => r.map_err(LinkEnd::Failed),
    }
}

/// Closes the channel with `reason`, giving up after `within`.
pub async fn close<E: Env, S: Stream>(
    env: &E,
    channel: SecureChannel<S>,
    reason: &str,
    within: Duration,
) {
    if let Ok(Err(e)) = env
        .timeout(within, "closing the channel", channel.close(reason))
        .await
    {
        tracing::debug!(error = %e, "closing the channel failed; the peer will see a cut");
    }
}

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
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
                    env.sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    Ok(())
}
