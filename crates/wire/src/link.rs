//! Talking over an established channel with a deadline on every wait, and the
//! compression rule applied in one place.
//!
//! A node must never wait for ever on a peer that went away (a dead mobile
//! line often looks like silence, not like an error), so each helper here
//! takes a bound and turns its expiry into [`LinkEnd::Silent`]. And a
//! message that carries a credential must never enter a compression context
//! shared with mail (CRIME/BREACH): [`send`] asks the message itself
//! ([`Message::carries_credentials`]) and sends such messages
//! [`Compress::Never`], so no caller can forget.

use std::fmt;
use std::time::Duration;

use causeway_net::{Env, Stream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::{Received, SecureChannel};
use crate::error::WireError;
use crate::seal::Compress;

/// What every message sent on a channel can tell its sender.
pub trait Message {
    /// True if this message contains a password or other credential: it is
    /// sent uncompressed and never through the shared compression context.
    fn carries_credentials(&self) -> bool;
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

/// Sends one message within `within`; messages that carry credentials go
/// uncompressed, outside the compression context.
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

/// The log line for a handshake a node accepted and that did not complete,
/// worded by what it proves: a cut line is not a key problem.
pub fn log_refused_handshake(role: &str, peer: std::net::SocketAddr, e: &WireError) {
    match e {
        WireError::PeerNotAllowed { .. } => tracing::warn!(%peer, error = %e,
            "refused a {role}: if it should be served, add its public key to the allow list"),
        WireError::PskMismatch => tracing::warn!(%peer, error = %e,
            "refused a {role}: its pre-shared key differs from ours"),
        WireError::NotForUs { .. }
        | WireError::KkMismatch { .. }
        | WireError::NoPinnedPeerMatched { .. } => tracing::warn!(%peer, error = %e,
            "refused a {role} that pinned another key for this node (or is not a key we know)"),
        e if e.is_line_failure() => tracing::info!(%peer, error = %e,
            "a {role}'s handshake did not complete: the line was cut or the peer gave up"),
        e => tracing::warn!(%peer, error = %e, "refused a {role}: its handshake was malformed"),
    }
}
