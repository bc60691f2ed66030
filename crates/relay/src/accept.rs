//! Accepting an edge whose key is one of several allowed.
//!
//! In Noise KK the responder must know the initiator's static key before it
//! can read the first handshake message, and `causeway_wire::accept_kk` takes
//! exactly one. A relay may serve several edges, so we read the first record
//! ourselves and try each allowed key against a replay of it. KK's responder
//! reads before it writes, so a wrong guess fails on that record (with
//! `KkMismatch`) without touching the real stream; the right guess continues
//! on the real stream. The cost is one trial decryption per allowed key.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use causeway_net::{Env, Stream};
use causeway_wire::record::HEADER_LEN;
use causeway_wire::{ChannelConfig, Keypair, PublicKey, SecureChannel, WireError, accept_kk};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The stream a relay link runs over: the accepted stream, shared between
/// handshake trials, with the first record replayed to each.
pub struct Replay<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: Arc<Mutex<S>>,
}

impl<S> Replay<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut *self.lock()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, b)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}

/// Runs the KK handshake as responder, accepting any key in `allowed`.
pub async fn accept_any_kk<E: Env, S: Stream>(
    env: &E,
    mut stream: S,
    local: &Keypair,
    allowed: &[PublicKey],
    cfg: &ChannelConfig,
) -> Result<SecureChannel<Replay<S>>, WireError> {
    let first = env
        .timeout(
            cfg.handshake_timeout,
            "the first handshake message",
            read_record(&mut stream),
        )
        .await
        .map_err(|_| WireError::HandshakeTimeout {
            after_ms: cfg.handshake_timeout.as_millis(),
        })??;
    let inner = Arc::new(Mutex::new(stream));
    let mut last = WireError::Handshake {
        stage: "accepting an edge",
        detail: "this relay allows no edge key (allowed_edges is empty)".into(),
    };
    for key in allowed {
        let replay = Replay {
            prefix: first.clone(),
            at: 0,
            inner: inner.clone(),
        };
        match accept_kk(env, replay, local, key, cfg).await {
            Err(e @ WireError::KkMismatch { .. }) => last = e,
            other => return other,
        }
    }
    if allowed.len() > 1 {
        last = WireError::Handshake {
            stage: "accepting an edge",
            detail: format!(
                "the edge's first message matched none of the {} allowed edge keys \
                 (or it does not know this relay as {})",
                allowed.len(),
                local.public
            ),
        };
    }
    Err(last)
}

async fn read_record<S: Stream>(stream: &mut S) -> Result<Vec<u8>, WireError> {
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header).await?;
    let len = usize::from(u16::from_be_bytes(header));
    let mut record = vec![0u8; HEADER_LEN + len];
    record[..HEADER_LEN].copy_from_slice(&header);
    stream.read_exact(&mut record[HEADER_LEN..]).await?;
    Ok(record)
}
