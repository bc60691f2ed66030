//! A stream wrapper that copies every byte read and written into a shared log.
//!
//! Tests and the simulation use it to look at what actually crossed a link:
//! "no password or mail body in the clear on the edge <-> relay link" is checked
//! on these bytes, not on what our own code believes it sent.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes seen on a tapped link, in each direction. Capped so a long run
/// cannot exhaust memory: past the cap, further bytes are counted, not kept.
#[derive(Clone, Default)]
pub struct TapLog {
    inner: Arc<Mutex<TapInner>>,
}

#[derive(Default)]
struct TapInner {
    read: Vec<u8>,
    written: Vec<u8>,
    dropped: u64,
    /// Every byte read, kept or not.
    read_total: u64,
}

/// Keep at most this many bytes per direction.
const TAP_CAP: usize = 64 << 20;

impl TapLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&self, written: bool, bytes: &[u8]) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !written {
            g.read_total += bytes.len() as u64;
        }
        let buf = if written { &mut g.written } else { &mut g.read };
        let room = TAP_CAP.saturating_sub(buf.len());
        let keep = bytes.len().min(room);
        buf.extend_from_slice(&bytes[..keep]);
        g.dropped += (bytes.len() - keep) as u64;
    }

    /// Bytes read from the tapped stream so far.
    pub fn read_bytes(&self) -> Vec<u8> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read
            .clone()
    }

    /// How many bytes were read from the tapped stream so far (past the
    /// cap too): a cheap look at whether it is carrying data now.
    pub fn read_total(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read_total
    }

    /// Bytes written to the tapped stream so far.
    pub fn written_bytes(&self) -> Vec<u8> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .written
            .clone()
    }

    /// True if `needle` occurs in either direction (needle must be non-empty).
    pub fn contains(&self, needle: &[u8]) -> bool {
        assert!(
            !needle.is_empty(),
            "TapLog::contains needs a non-empty needle"
        );
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        [&g.read, &g.written]
            .iter()
            .any(|hay| hay.windows(needle.len()).any(|w| w == needle))
    }
}

/// `S`, with every byte copied into a [`TapLog`] (or, [`Tapped::untapped`],
/// passed through as is: for an `Env` that taps only some of its streams).
pub struct Tapped<S> {
    inner: S,
    log: Option<TapLog>,
}

impl<S> Tapped<S> {
    pub fn new(inner: S, log: TapLog) -> Self {
        Self {
            inner,
            log: Some(log),
        }
    }

    /// The same stream type, recording nothing.
    pub fn untapped(inner: S) -> Self {
        Self { inner, log: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(log)) = (&r, &self.log) {
            log.push(false, &buf.filled()[before..]);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(log)) = (&r, &self.log) {
            log.push(true, &buf[..*n]);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn records_both_directions() {
        let (a, mut b) = tokio::io::duplex(64);
        let log = TapLog::new();
        let mut t = Tapped::new(a, log.clone());
        t.write_all(b"secret-password").await.unwrap();
        b.write_all(b"reply").await.unwrap();
        let mut buf = [0u8; 5];
        t.read_exact(&mut buf).await.unwrap();
        assert!(log.contains(b"password"));
        assert!(log.contains(b"reply"));
        assert!(!log.contains(b"absent"));
        assert_eq!(log.written_bytes(), b"secret-password");
    }
}
