//! Opening a channel: run the handshake over the stream (under the
//! configured timeout), check the peer's key, and hand both directions'
//! keys to a [`SecureChannel`].

use std::future::Future;

use causeway_net::{Env, Stream};
use tokio::io::AsyncWriteExt;

use crate::channel::{SecureChannel, read_record};
use crate::config::ChannelConfig;
use crate::counters::{Counters, Dir};
use crate::error::WireError;
use crate::handshake::Handshake;
use crate::keys::{Keypair, Psk, PublicKey};
use crate::record::{HEADER_LEN, RecordBuf};
use crate::seal::{Opener, Sealer};

/// Client proxy -> edge (XK, or XKpsk3 when `psk` is set). `edge` is the
/// edge's pinned key; the handshake fails unless the peer holds it.
///
/// Returns as soon as the client has sent handshake message 3: the edge
/// checks our key against its allow list only after that, so a refusal shows
/// up on the first `recv` (as `Closed` with the edge's reason, or as
/// `Truncated` if our pre-shared key was wrong).
pub async fn connect_xk<E: Env, S: Stream>(
    env: &E,
    stream: S,
    local: &Keypair,
    edge: &PublicKey,
    psk: Option<&Psk>,
    cfg: &ChannelConfig,
) -> Result<SecureChannel<S>, WireError> {
    cfg.validate()?;
    let hs = Handshake::xk_initiator(env.rng(), local, edge, psk)?;
    within_timeout(env, cfg, establish(stream, hs, cfg, Counters::default())).await
}

/// Edge side of XK. `allowed` decides on the client's (authenticated) key;
/// a refused client is told why in an encrypted close frame, and this returns
/// `PeerNotAllowed` naming its key. The key is `channel.peer()`.
pub async fn accept_xk<E, S, A>(
    env: &E,
    stream: S,
    local: &Keypair,
    allowed: A,
    psk: Option<&Psk>,
    cfg: &ChannelConfig,
) -> Result<SecureChannel<S>, WireError>
where
    E: Env,
    S: Stream,
    A: Fn(&PublicKey) -> bool + Send,
{
    cfg.validate()?;
    let hs = Handshake::xk_responder(env.rng(), local, psk)?;
    within_timeout(env, cfg, async move {
        let channel = establish(stream, hs, cfg, Counters::default()).await?;
        let key = *channel.peer();
        if allowed(&key) {
            return Ok(channel);
        }
        let refusal = WireError::PeerNotAllowed { key };
        // Best effort: the refusal is what we report either way. Only the
        // holder of that client key can read the reason.
        let _ = channel.close(&refusal.to_string()).await;
        Err(refusal)
    })
    .await
}

/// Edge -> relay (KK): both keys pinned; `peer` is the relay's.
pub async fn connect_kk<E: Env, S: Stream>(
    env: &E,
    stream: S,
    local: &Keypair,
    peer: &PublicKey,
    cfg: &ChannelConfig,
) -> Result<SecureChannel<S>, WireError> {
    cfg.validate()?;
    let hs = Handshake::kk(env.rng(), local, peer, true)?;
    within_timeout(env, cfg, establish(stream, hs, cfg, Counters::default())).await
}

/// Relay side of KK: `peer` is the edge's pinned key ([`accept_kk_any`]
/// with one key; a stranger gets `KkMismatch`).
pub async fn accept_kk<E: Env, S: Stream>(
    env: &E,
    stream: S,
    local: &Keypair,
    peer: &PublicKey,
    cfg: &ChannelConfig,
) -> Result<SecureChannel<S>, WireError> {
    accept_kk_any(env, stream, local, std::slice::from_ref(peer), cfg).await
}

/// Relay side of KK when several edges may connect: `allowed` are their
/// pinned keys. KK's responder must know the initiator's key before it can
/// read message 1, so each allowed key is tried against that message (one
/// trial decryption each, nothing written until one matches).
pub async fn accept_kk_any<E: Env, S: Stream>(
    env: &E,
    mut stream: S,
    local: &Keypair,
    allowed: &[PublicKey],
    cfg: &ChannelConfig,
) -> Result<SecureChannel<S>, WireError> {
    cfg.validate()?;
    if allowed.is_empty() {
        return Err(WireError::Config(
            "no peer key is allowed to connect".into(),
        ));
    }
    within_timeout(env, cfg, async move {
        let counters = Counters::default();
        let mut rb = RecordBuf::new();
        let first = match read_record(&mut stream, &mut rb, &counters).await {
            Ok(msg) => msg,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(WireError::Handshake {
                    stage: "message 1",
                    detail: "the peer closed the connection".into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        counters.add_wire(Dir::Received, HEADER_LEN + first.len());
        let mut refused = None;
        for key in allowed {
            let mut hs = Handshake::kk(env.rng(), local, key, false)?;
            match hs.read(first) {
                Ok(()) => return establish(stream, hs, cfg, counters).await,
                Err(e @ WireError::KkMismatch { .. }) => refused = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(match refused {
            Some(e) if allowed.len() == 1 => e,
            _ => WireError::NoPinnedPeerMatched {
                tried: allowed.len(),
                ours: local.public,
            },
        })
    })
    .await
}

async fn within_timeout<E, T, F>(env: &E, cfg: &ChannelConfig, fut: F) -> Result<T, WireError>
where
    E: Env,
    F: Future<Output = Result<T, WireError>> + Send,
{
    env.timeout(cfg.handshake_timeout, "the Noise handshake", fut)
        .await
        .map_err(|_| WireError::HandshakeTimeout {
            after_ms: cfg.handshake_timeout.as_millis(),
        })?
}

/// Runs `hs` to completion over `stream` (`counters` already hold any
/// handshake bytes exchanged before).
async fn establish<S: Stream>(
    mut stream: S,
    mut hs: Handshake,
    cfg: &ChannelConfig,
    counters: Counters,
) -> Result<SecureChannel<S>, WireError> {
    // Reads stop at record boundaries, so whatever the peer sends right after
    // the handshake stays in the stream for the channel.
    let mut rb = RecordBuf::new();
    while !hs.is_finished() {
        if hs.is_my_turn() {
            let record = hs.write()?;
            stream.write_all(&record).await?;
            stream.flush().await?;
            counters.add_wire(Dir::Sent, record.len());
        } else {
            let msg = match read_record(&mut stream, &mut rb, &counters).await {
                Ok(msg) => msg,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(hs.eof_error());
                }
                Err(e) => return Err(e.into()),
            };
            counters.add_wire(Dir::Received, HEADER_LEN + msg.len());
            hs.read(msg)?;
        }
    }
    let binding = hs.binding();
    let (transport, peer) = hs.finish()?;
    let sealer = Sealer::new(transport.clone(), cfg, counters.clone());
    let opener = Opener::new(transport, cfg, counters.clone());
    let mut channel = SecureChannel::new(stream, sealer, opener, peer, counters);
    channel.binding = binding;
    Ok(channel)
}
