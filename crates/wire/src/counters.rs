//! Byte counters per direction, readable while the channel runs.
//!
//! Three stages, so a benchmark can tell what each layer costs or saves:
//! `plain` (serialized application messages), `compressed` (frame bodies as
//! carried: zstd output for `Compress::Yes` frames, the plain bytes for
//! `Compress::Never` ones) and `wire` (everything written to or read from the
//! socket: handshake messages, record headers, frame encoding, tags).
//!
//! Apart from those, [`Counters::moved_in`] and [`Counters::moved_out`]
//! count bytes as they actually move through the socket, a read or a write
//! at a time: the progress that the deadlines in `link` watch, so that a message of any size may take as long
//! as it needs while it keeps moving.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cloneable handle on one channel's counters.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    inner: Arc<[Stage; 2]>,
    moved: Arc<[AtomicU64; 2]>,
}

#[derive(Debug, Default)]
struct Stage {
    plain: AtomicU64,
    compressed: AtomicU64,
    wire: AtomicU64,
}

/// A snapshot of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionCounts {
    pub plain: u64,
    pub compressed: u64,
    pub wire: u64,
}

#[derive(Clone, Copy)]
pub(crate) enum Dir {
    Sent = 0,
    Received = 1,
}

impl Counters {
    pub fn sent(&self) -> DirectionCounts {
        self.snapshot(Dir::Sent)
    }

    pub fn received(&self) -> DirectionCounts {
        self.snapshot(Dir::Received)
    }

    fn snapshot(&self, d: Dir) -> DirectionCounts {
        let s = &self.inner[d as usize];
        DirectionCounts {
            plain: s.plain.load(Ordering::Relaxed),
            compressed: s.compressed.load(Ordering::Relaxed),
            wire: s.wire.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add_frame(&self, d: Dir, plain: usize, compressed: usize) {
        let s = &self.inner[d as usize];
        s.plain.fetch_add(plain as u64, Ordering::Relaxed);
        s.compressed.fetch_add(compressed as u64, Ordering::Relaxed);
    }

    /// Bytes written to the socket so far, counted as each write completes
    /// (unlike `wire`, which counts whole records).
    pub fn moved_out(&self) -> u64 {
        self.moved[Dir::Sent as usize].load(Ordering::Relaxed)
    }

    /// Bytes read from the socket so far, counted as each read completes.
    pub fn moved_in(&self) -> u64 {
        self.moved[Dir::Received as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn add_moved(&self, d: Dir, n: usize) {
        self.moved[d as usize].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Adds a snapshot's worth of bytes to each stage (a node-wide total
    /// fed by a [`Meter`]).
    fn add(&self, d: Dir, c: DirectionCounts) {
        let s = &self.inner[d as usize];
        s.plain.fetch_add(c.plain, Ordering::Relaxed);
        s.compressed.fetch_add(c.compressed, Ordering::Relaxed);
        s.wire.fetch_add(c.wire, Ordering::Relaxed);
    }

    /// Writes these counts (a hop's node-wide total) as one metric family
    /// by direction (`out`, `in`) and stage (`plain`, `compressed`, `wire`).
    pub fn write_metric(
        &self,
        e: &mut causeway_net::metrics::DescriptorEncoder,
        name: &str,
        help: &str,
    ) -> std::fmt::Result {
        let (out, inn) = (self.sent(), self.received());
        causeway_net::metrics::counters_by2(
            e,
            name,
            help,
            ("direction", "stage"),
            &[
                (("out", "plain"), out.plain),
                (("out", "compressed"), out.compressed),
                (("out", "wire"), out.wire),
                (("in", "plain"), inn.plain),
                (("in", "compressed"), inn.compressed),
                (("in", "wire"), inn.wire),
            ],
        )
    }

    pub(crate) fn add_wire(&self, d: Dir, n: usize) {
        self.inner[d as usize]
            .wire
            .fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Carries what one channel counted into a node-wide total (the bytes of a
/// hop, for operators), a little at a time: each [`Meter::flush`] adds what
/// the channel counted since the last one. One meter per channel.
#[derive(Debug, Default)]
pub struct Meter {
    sent: DirectionCounts,
    received: DirectionCounts,
}

impl Meter {
    pub fn flush(&mut self, channel: &Counters, total: &Counters) {
        for (d, last) in [
            (Dir::Sent, &mut self.sent),
            (Dir::Received, &mut self.received),
        ] {
            let now = channel.snapshot(d);
            total.add(
                d,
                DirectionCounts {
                    plain: now.plain.saturating_sub(last.plain),
                    compressed: now.compressed.saturating_sub(last.compressed),
                    wire: now.wire.saturating_sub(last.wire),
                },
            );
            *last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_adds_each_byte_to_the_total_once() {
        let (channel, total) = (Counters::default(), Counters::default());
        let mut m = Meter::default();
        channel.add_frame(Dir::Sent, 100, 40);
        channel.add_wire(Dir::Sent, 60);
        m.flush(&channel, &total);
        channel.add_frame(Dir::Received, 10, 10);
        channel.add_wire(Dir::Sent, 5);
        m.flush(&channel, &total);
        m.flush(&channel, &total);
        let sent = total.sent();
        assert_eq!((sent.plain, sent.compressed, sent.wire), (100, 40, 65));
        assert_eq!(total.received().plain, 10);
    }
}
