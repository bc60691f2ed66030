//! The bodies on their way to the client proxy, as a sans-IO scheduler.
//!
//! A body does not go out as one message: on a 40 kbit/s line a 1 MB body
//! takes minutes, and nothing else (an answer the mail client waits for, a
//! `Pong`) could pass it. The outbox cuts bodies into `Chunk`s of at most
//! [`CHUNK`] bytes and hands the session one chunk at a time, so the session
//! can send anything else between two chunks.
//!
//! Two rules bound what the stream costs:
//! - **Order**: bodies go out in the order they were queued (the listing
//!   order, which is the order mail clients read), except that a body the
//!   mail client asked for jumps to the front, where it continues from the
//!   byte it had reached (the client proxy holds the bytes before it).
//! - **Window**: at most a window of body bytes is unacknowledged by the
//!   client proxy's `Window`. Without it the stream would fill every buffer
//!   on the way (kernel, forwarders, the line itself) and an urgent answer
//!   would wait behind all of them. The window adapts ([`Pacer`]) to about
//!   twice the bytes the line delivers per round trip, so a slow line holds
//!   little in flight and a long fat one (satellite) is kept full.
//!
//! Memory: the session queues a body here only while [`Outbox::unsent`] is
//! under its fetch-ahead bound, so the outbox holds a bounded number of bodies.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use causeway_net::Instant;
use causeway_proto::line_ends;
use causeway_proto::session::{CHUNK, EdgeToClient, MessageId, Place};

/// A body's identity: its server's name and the message.
pub(crate) type Key = (String, MessageId);

/// The smallest window, in body bytes: enough for a slow line to stay busy
/// while the first round trips are measured (8 chunks).
const MIN_WINDOW: u64 = 64 << 10;

/// The largest window: a 10 Mbit/s satellite line with 700 ms of round trip
/// carries about 0.9 MB per round trip, which compressed mail makes about
/// 3.5 MB of body bytes; twice that is in flight at most.
const MAX_WINDOW: u64 = 8 << 20;

struct Queued {
    key: Key,
    /// Its place in the session's listing, which names it in `Chunk`.
    at: Place,
    body: Arc<Vec<u8>>,
    /// The next byte to send.
    offset: usize,
    /// Requests answered once the last chunk is out.
    waiters: Vec<u64>,
}

/// One chunk to send and, when it is a body's last, the requests it answers.
pub(crate) struct Next {
    pub chunk: EdgeToClient,
    pub finished: Option<(Key, u64, Vec<u64>)>,
}

#[derive(Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Queued>,
    /// Body bytes queued and not yet sent.
    unsent: usize,
    /// Body bytes sent in this session, and acknowledged by `Window`.
    sent: u64,
    acked: u64,
    /// Bodies whose last byte went out, with the session's body byte count
    /// at their end, oldest first: a `Window` past it says the client
    /// proxy holds that body whole ([`Outbox::window`]).
    whole: VecDeque<(u64, Key)>,
    pacer: Pacer,
}

impl Outbox {
    /// Queues `body` from byte `from` on (from the start if `from` is past
    /// its end). `urgent` puts it first. A body already queued is not queued
    /// twice: it gains the waiters, and moves first if urgent.
    pub fn push(
        &mut self,
        key: Key,
        at: Place,
        body: Arc<Vec<u8>>,
        from: u64,
        urgent: bool,
        waiters: Vec<u64>,
    ) {
        if let Some(i) = self.position(&key) {
            self.queue[i].waiters.extend(waiters);
            self.move_first(i, urgent);
            return;
        }
        let offset = usize::try_from(from)
            .ok()
            .filter(|&f| f <= body.len())
            .unwrap_or(0);
        self.unsent += body.len() - offset;
        let q = Queued {
            key,
            at,
            body,
            offset,
            waiters,
        };
        if urgent {
            self.queue.push_front(q);
        } else {
            self.queue.push_back(q);
        }
    }

    /// If `key` is queued: adds `waiters` and, if `urgent`, moves it first.
    pub fn promote(&mut self, key: &Key, urgent: bool, waiters: Vec<u64>) -> bool {
        let Some(i) = self.position(key) else {
            return false;
        };
        self.queue[i].waiters.extend(waiters);
        self.move_first(i, urgent);
        true
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.position(key).is_some()
    }

    fn position(&self, key: &Key) -> Option<usize> {
        self.queue.iter().position(|q| &q.key == key)
    }

    /// Moves entry `i` first if `urgent`.
    fn move_first(&mut self, i: usize, urgent: bool) {
        if urgent && i > 0 {
            let q = self.queue.remove(i).expect("index in the queue");
            self.queue.push_front(q);
        }
    }

    /// Body bytes queued and not yet sent.
    pub fn unsent(&self) -> usize {
        self.unsent
    }

    /// Body bytes sent in this session.
    pub fn streamed(&self) -> u64 {
        self.sent
    }

    /// Body bytes that could go out now: queued and within the window.
    pub fn sendable(&self) -> u64 {
        let room = self.pacer.window().saturating_sub(self.sent - self.acked);
        room.min(self.unsent as u64)
    }

    /// True when a queued body answers a request the mail client waits on.
    pub fn awaited(&self) -> bool {
        self.queue.iter().any(|q| !q.waiters.is_empty())
    }

    /// True when no body is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The line's delivery rate in body bytes per second, once measured
    /// over [`RATE_SAMPLES`] / 2 samples (the first ones, taken while the
    /// stream starts, say little).
    pub fn rate(&self) -> Option<f64> {
        (self.pacer.rates.len() >= RATE_SAMPLES / 2)
            .then(|| self.pacer.rate())
            .flatten()
    }

    /// True when a chunk may go out now (something queued, window open).
    pub fn ready(&self) -> bool {
        !self.queue.is_empty() && self.sent - self.acked < self.pacer.window()
    }

    /// The next chunk, if [`Outbox::ready`].
    pub fn next_chunk(&mut self, now: Instant) -> Option<Next> {
        if !self.ready() {
            return None;
        }
        let q = self.queue.front_mut()?;
        let mut end = (q.offset + CHUNK).min(q.body.len());
        if end < q.body.len() && q.body[end - 1] == b'\r' && q.body[end] == b'\n' {
            // Never between a CR and its LF: the LF form needs both.
            end += 1;
        }
        let piece = &q.body[q.offset..end];
        let (lf, data) = line_ends::encode(piece);
        let offset = q.offset as u64;
        let total = q.body.len() as u64;
        q.offset = end;
        let n = piece.len();
        let chunk = EdgeToClient::Chunk {
            server: q.key.0.clone(),
            at: q.at,
            offset,
            total,
            lf,
            data,
        };
        self.unsent -= n;
        self.sent += n as u64;
        let finished = if end == q.body.len() {
            let q = self.queue.pop_front().expect("front exists");
            self.whole.push_back((self.sent, q.key.clone()));
            Some((q.key, total, q.waiters))
        } else {
            None
        };
        self.pacer.sent(self.sent - n as u64, self.sent, now);
        Some(Next { chunk, finished })
    }

    /// The line was replaced after a cut (a resume): what went out on the
    /// old one and did not arrive is sent again. `received` is what the
    /// client proxy says it received in the session (the window restarts
    /// there); `holds` gives, for each body it still wants, the bytes it
    /// holds. A queued body it does not want is dropped; one it wants
    /// continues from what it holds. Requests are forgotten (the client
    /// proxy asks again). Returns how many bodies continue part-way.
    pub fn resume(&mut self, received: u64, holds: impl Fn(&Key) -> Option<u64>) -> usize {
        self.queue.retain(|q| holds(&q.key).is_some());
        let mut partial = 0;
        for q in &mut self.queue {
            let from = holds(&q.key).unwrap_or(0);
            q.offset = usize::try_from(from)
                .ok()
                .filter(|&f| f < q.body.len())
                .unwrap_or(0);
            partial += usize::from(q.offset > 0);
            q.waiters.clear();
        }
        self.unsent = self.queue.iter().map(|q| q.body.len() - q.offset).sum();
        // Counts restart at `received`: the ends noted are of the old count.
        self.whole.clear();
        (self.sent, self.acked) = (received, received);
        self.pacer.in_flight.clear();
        self.pacer.last_ack = None;
        partial
    }

    /// The client proxy's `Window`: it has received `received` body bytes.
    /// More than was sent, or less than it said before, is a broken peer.
    /// Returns the bodies it now holds whole, which the edge need not keep.
    pub fn window(&mut self, received: u64, now: Instant) -> Result<Vec<Key>, String> {
        if received > self.sent || received < self.acked {
            return Err(format!(
                "the client acknowledged {received} body bytes; {} were sent, {} acknowledged before",
                self.sent, self.acked
            ));
        }
        self.acked = received;
        self.pacer.acked(received, now);
        let mut held = Vec::new();
        while self.whole.front().is_some_and(|(end, _)| *end <= received) {
            held.extend(self.whole.pop_front().map(|(_, key)| key));
        }
        Ok(held)
    }
}

/// How many rate samples the window's rate estimate keeps (the highest
/// wins, as in BBR: a sample taken while the stream had little to send
/// understates the line).
const RATE_SAMPLES: usize = 8;

/// The adaptive window: twice the delivery rate times the shortest round
/// trip seen, between [`MIN_WINDOW`] and [`MAX_WINDOW`]. Both are measured
/// from `Window` acknowledgements, in the session's clock (so it runs the
/// same in simulation).
///
/// Two kinds of rate sample, both lower bounds of what the line carries:
/// the bytes acknowledged between two acknowledgements over the time
/// between them, and the newest acknowledged chunk over its own round trip
/// (sent to acknowledged). The first understates a line whose mail client
/// reads in lock step (one message, then a pause for its next command: the
/// proxy acknowledges every 32 KiB, so the pauses are in the sample); the
/// second does not see those pauses, and lets a fast line be seen as one
/// when nothing streams ahead (`compression.rs` picks the level from it).
#[derive(Default)]
pub(crate) struct Pacer {
    /// (byte counts at the start and end of a chunk, when it was sent),
    /// oldest first.
    in_flight: VecDeque<(u64, u64, Instant)>,
    min_rtt: Option<Duration>,
    last_ack: Option<(u64, Instant)>,
    /// Delivery rates, body bytes per second, newest last.
    rates: VecDeque<f64>,
}

impl Pacer {
    /// The highest recent delivery rate, body bytes per second.
    fn rate(&self) -> Option<f64> {
        self.rates.iter().copied().reduce(f64::max)
    }

    pub fn window(&self) -> u64 {
        let (Some(rtt), Some(rate)) = (self.min_rtt, self.rate()) else {
            return MIN_WINDOW;
        };
        let w = 2.0 * rate * rtt.as_secs_f64();
        (w as u64).clamp(MIN_WINDOW, MAX_WINDOW)
    }

    fn sent(&mut self, start: u64, end: u64, now: Instant) {
        self.in_flight.push_back((start, end, now));
    }

    fn acked(&mut self, received: u64, now: Instant) {
        let mut newest = None;
        while let Some(&(start, end, at)) = self.in_flight.front() {
            if end > received {
                break;
            }
            newest = Some((end - start, at));
            self.in_flight.pop_front();
        }
        // The newest acknowledged chunk over its own round trip.
        let mut chunk_rate = 0.0;
        if let Some((bytes, at)) = newest {
            let rtt = now.saturating_duration_since(at);
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
            if !rtt.is_zero() {
                chunk_rate = bytes as f64 / rtt.as_secs_f64();
            }
        }
        // A rate sample spans at least half a round trip: acknowledgements
        // arrive in bursts, and one burst measured alone says nothing.
        let span = self.min_rtt.unwrap_or_default() / 2;
        match self.last_ack {
            None => self.last_ack = Some((received, now)),
            Some((bytes, at)) => {
                let dt = now.saturating_duration_since(at);
                if dt > span && !dt.is_zero() {
                    // Both are lower bounds: the higher is the sample.
                    let between = (received - bytes) as f64 / dt.as_secs_f64();
                    self.rates.push_back(between.max(chunk_rate));
                    if self.rates.len() > RATE_SAMPLES {
                        self.rates.pop_front();
                    }
                    self.last_ack = Some((received, now));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
