//! Talking over an established channel with a deadline on every wait, and the
//! compression rule applied in one place.
//!
//! A node must never wait for ever on a peer that went away (a dead mobile
//! line often looks like silence, not like an error), so each helper here
//! takes a bound and turns its expiry into [`LinkEnd::Silent`]. The bound is
//! on **silence, never on size**: it is how long no byte may move through
//! the socket in the direction waited on ([`crate::Counters::moved_in`],
//! [`crate::Counters::moved_out`]) while the helper waits, so a
//! 20 MB body crossing a 40 kbit/s line in an hour is fine as long as it
//! keeps moving, and a line that stops is noticed within the bound whatever
//! was being sent. And a
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
use crate::counters::Counters;
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

/// Receives one message; fails once nothing at all arrived for `within`
/// (a message still arriving, however slowly, is progress).
pub async fn recv<E: Env, S: Stream, T: DeserializeOwned + Send>(
    env: &E,
    channel: &mut SecureChannel<S>,
    within: Duration,
    what: &'static str,
) -> Result<T, LinkEnd> {
    let counters = channel.counters();
    let progress = || counters.moved_in();
    match while_moving(env, progress, within, what, channel.recv::<T>()).await? {
        Err(e) => Err(LinkEnd::Failed(e)),
        Ok(Received::Closed { reason }) => Err(LinkEnd::Closed(reason)),
        Ok(Received::Msg(m)) => Ok(m),
    }
}

/// Sends one message; fails once no byte of it could be written for
/// `within`. Messages that carry credentials go uncompressed, outside the
/// compression context.
pub async fn send<E: Env, S: Stream, T: Serialize + Message + Sync>(
    env: &E,
    channel: &mut SecureChannel<S>,
    msg: &T,
    within: Duration,
) -> Result<(), LinkEnd> {
    queue(channel, msg)?;
    flush(env, channel, within).await
}

/// Adds one message to what the next [`flush`] sends (one compressed unit
/// for all of them); credentials stay out of the unit and its context.
pub fn queue<S: Stream, T: Serialize + Message>(
    channel: &mut SecureChannel<S>,
    msg: &T,
) -> Result<(), LinkEnd> {
    let compress = if msg.carries_credentials() {
        Compress::Never
    } else {
        Compress::Yes
    };
    channel.queue(msg, compress).map_err(LinkEnd::Failed)
}

/// Sends what was queued; fails once no byte could be written for `within`.
pub async fn flush<E: Env, S: Stream>(
    env: &E,
    channel: &mut SecureChannel<S>,
    within: Duration,
) -> Result<(), LinkEnd> {
    let counters = channel.counters();
    sending(env, &counters, within, channel.flush()).await
}

/// Sends what was queued and ends the compression frame, freeing the
/// contexts on both ends (see [`SecureChannel::rest`]).
pub async fn rest<E: Env, S: Stream>(
    env: &E,
    channel: &mut SecureChannel<S>,
    within: Duration,
) -> Result<(), LinkEnd> {
    let counters = channel.counters();
    sending(env, &counters, within, channel.rest()).await
}

/// Runs a send for as long as bytes keep leaving.
async fn sending<E: Env, F: Future<Output = Result<(), WireError>> + Send>(
    env: &E,
    counters: &Counters,
    within: Duration,
    fut: F,
) -> Result<(), LinkEnd> {
    while_moving(
        env,
        || counters.moved_out(),
        within,
        "sending on the channel",
        fut,
    )
    .await?
    .map_err(LinkEnd::Failed)
}

/// Runs `fut` for as long as bytes keep moving: each time `within` passes,
/// it goes on if `progress` (bytes moved in the direction waited on) grew
/// meanwhile, and gives up if it did not.
async fn while_moving<E: Env, F: Future + Send>(
    env: &E,
    progress: impl Fn() -> u64,
    within: Duration,
    what: &'static str,
    fut: F,
) -> Result<F::Output, LinkEnd> {
    let mut fut = std::pin::pin!(fut);
    let mut seen = progress();
    loop {
        match env.timeout(within, what, fut.as_mut()).await {
            Ok(out) => return Ok(out),
            Err(_) => {
                let now = progress();
                if now == seen {
                    return Err(LinkEnd::Silent {
                        what,
                        after: within,
                    });
                }
                seen = now;
            }
        }
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
    match handshake_failure_cause(e) {
        "not_allowed" => tracing::warn!(%peer, error = %e,
            "refused a {role}: if it should be served, add its public key to the allow list"),
        "psk" => tracing::warn!(%peer, error = %e,
            "refused a {role}: its pre-shared key differs from ours"),
        "other_key" => tracing::warn!(%peer, error = %e,
            "refused a {role} that pinned another key for this node (or is not a key we know)"),
        "line" => tracing::info!(%peer, error = %e,
            "a {role}'s handshake did not complete: the line was cut or the peer gave up"),
        _ => tracing::warn!(%peer, error = %e, "refused a {role}: its handshake was malformed"),
    }
}

/// Why a handshake failed, as the operators' metrics label it: a key not on
/// the allow list (`not_allowed`), a wrong pre-shared key (`psk`), a peer
/// that pinned another key (`other_key`), a line cut or a peer that gave up
/// (`line`, proving nothing against anyone), or bytes that were no handshake
/// (`malformed`).
pub fn handshake_failure_cause(e: &WireError) -> &'static str {
    match e {
        WireError::PeerNotAllowed { .. } => "not_allowed",
        WireError::PskMismatch => "psk",
        WireError::NotForUs { .. }
        | WireError::KkMismatch { .. }
        | WireError::NoPinnedPeerMatched { .. } => "other_key",
        e if e.is_line_failure() => "line",
        _ => "malformed",
    }
}
