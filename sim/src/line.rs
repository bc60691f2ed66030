//! A line with a bit rate: a serialising queue per direction.
//!
//! turmoil models latency and loss but not bandwidth: a megabyte crosses a
//! simulated link as fast as a kilobyte. The lines Causeway exists for are
//! slow first (GPRS at 5 kB/s, a satellite share, a hotel uplink), and the
//! bugs of a slow line are timeouts that count the length of a transfer
//! instead of its progress. So the client proxy's connections to the edge
//! (the bad line) are wrapped in [`Paced`]: each direction lets bytes
//! through at its rate, one packet at a time, as a bottleneck link does.
//!
//! Writes (client proxy to edge) are serialised at the writer: a write of
//! `n` bytes takes `n / rate` before the next one is accepted. Reads (edge
//! to client proxy) are serialised at the reader: bytes wait in the
//! socket's queue (turmoil's buffer, as deep as a bufferbloated modem's) and
//! come out at the rate. The edge's window of credits, returned only as the
//! client proxy reads, is what bounds that queue, as in production.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::swarm::LineRate;

/// Bytes per packet: what one step of the queue lets through.
const PACKET: usize = 1400;

/// One direction's queue: when it is free again.
struct Queue {
    bytes_per_sec: u64,
    wait: Option<Pin<Box<Sleep>>>,
}

impl Queue {
    fn new(bytes_per_sec: u64) -> Self {
        Queue {
            bytes_per_sec: bytes_per_sec.max(1),
            wait: None,
        }
    }

    /// Ready once the last packet has gone out.
    fn poll_free(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(w) = &mut self.wait {
            if w.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
        }
        Poll::Ready(())
    }

    /// `n` bytes went out: the queue is busy for their serialisation time.
    fn sent(&mut self, n: usize) {
        let nanos = (n as u128 * 1_000_000_000) / u128::from(self.bytes_per_sec);
        let d = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // turmoil's clock: tokio's timers run on simulated time.
        self.wait = Some(Box::pin(tokio::time::sleep(d)));
    }
}

/// `S` behind a line of rate [`LineRate`] (or, `None`, as fast as turmoil).
pub struct Paced<S> {
    inner: S,
    queues: Option<(Queue, Queue)>,
}

impl<S> Paced<S> {
    pub fn new(inner: S, rate: Option<LineRate>) -> Self {
        Paced {
            inner,
            queues: rate.map(|r| (Queue::new(r.down), Queue::new(r.up))),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some((down, _)) = &mut this.queues else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if down.poll_free(cx).is_pending() {
            return Poll::Pending;
        }
        let mut packet = [0u8; PACKET];
        let room = buf.remaining().min(PACKET);
        let mut part = ReadBuf::new(&mut packet[..room]);
        let r = Pin::new(&mut this.inner).poll_read(cx, &mut part);
        if let Poll::Ready(Ok(())) = r {
            let n = part.filled().len();
            buf.put_slice(&packet[..n]);
            if n > 0 {
                down.sent(n);
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some((_, up)) = &mut this.queues else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        if up.poll_free(cx).is_pending() {
            return Poll::Pending;
        }
        let packet = &buf[..buf.len().min(PACKET)];
        let r = Pin::new(&mut this.inner).poll_write(cx, packet);
        if let Poll::Ready(Ok(n)) = r {
            up.sent(n);
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
