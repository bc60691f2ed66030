//! How hard the edge compresses what it sends the client proxy, and when it
//! lets go of the compression context.
//!
//! The level follows the line, as `zstd --adapt` does: while the client
//! proxy takes body bytes more slowly than [`BULK_BELOW`] (GPRS, 3G,
//! satellite, a shared uplink), the line is the bottleneck and every byte
//! saved is time saved, so the stream uses `bulk_level` (9: about 55 MB of
//! mail per CPU-second, a 4 MiB window); on a line that keeps up (a LAN,
//! loopback) it stays at `zstd_level` (3, about 200 MB per CPU-second). The
//! rate is the outbox's own measurement from `Window` acknowledgements
//! (with each acknowledged chunk's own round trip, so that a mail client
//! reading one message at a time on a LAN is seen as fast), so the choice is
//! the same in simulation. Single-threaded zstd changes level
//! only at a new frame, which loses the history once, so the choice has
//! hysteresis: down to the fast level only above twice the threshold.
//!
//! A context at level 9 is about 15 MB (level 3: 3.7 MB), so it is held only
//! while it is used:
//! - a bulk-level frame ends (`rest`) as soon as the stream of wanted
//!   bodies drained (nothing queued, fetched or wanted), which lets go of
//!   the context here (back to the edge's pool of at most 16,
//!   `causeway_wire::ContextPool`) and frees the window at the client
//!   proxy; the next burst opens a new one (bodies sent one by one as
//!   answers keep their frame: a new one per body would lose the history
//!   between them);
//! - any frame ends once the session sent nothing for [`REST_AFTER`];
//! - at most [`MAX_BULK_CONTEXTS`] sessions of the edge stream at the bulk
//!   level at once (about 1 GB); the others stream at the fast level until
//!   a place frees up.

use std::time::Duration;

use causeway_net::{Instant, Stream};

use crate::state::{EdgeState, Ticket};
use causeway_wire::{ChannelConfig, SecureChannel};

/// Below this delivery rate (body bytes per second) the body stream uses
/// the bulk level: level 9 compresses mail about seven times faster, so the
/// CPU stays well ahead of such a line.
pub(crate) const BULK_BELOW: f64 = 8e6;

/// A session that sent nothing for this long frees its compression context.
pub(crate) const REST_AFTER: Duration = Duration::from_secs(2);

/// Sessions that may hold a bulk-level context at once, edge-wide.
pub(crate) const MAX_BULK_CONTEXTS: usize = 64;

pub(crate) struct Compression {
    state: EdgeState,
    /// This session's place among the bulk contexts, while it holds one.
    place: Option<Ticket>,
    /// The level's choice; None until the line's rate is first measured.
    bulk: Option<bool>,
    /// Bytes moved out at the last look, and since when they have not grown.
    idle: (u64, Instant),
}

impl Compression {
    pub fn new(state: EdgeState, now: Instant) -> Self {
        Self {
            state,
            place: None,
            // Until the line is measured it is taken to be slow: that is
            // what Causeway is for, and a fast line pays only some CPU for
            // its first few hundred kilobytes.
            bulk: None,
            idle: (0, now),
        }
    }

    /// True while the body stream uses the bulk level (a slow line).
    pub fn bulk(&self) -> bool {
        self.bulk.unwrap_or(true)
    }

    /// Before a burst of body chunks: sets the level the line's measured
    /// delivery rate calls for.
    pub fn before_burst<S: Stream>(
        &mut self,
        cfg: &ChannelConfig,
        rate: Option<f64>,
        channel: &mut SecureChannel<S>,
    ) {
        self.bulk = bulk_after(self.bulk, rate);
        if !self.bulk() {
            self.place = None;
        } else if self.place.is_none() {
            self.place = self.state.bulk_context(MAX_BULK_CONTEXTS);
        }
        channel.set_level(if self.place.is_some() {
            cfg.bulk_level
        } else {
            cfg.zstd_level
        });
    }

    /// At each turn of the serving loop: true when the channel holds a
    /// context it should let go of: a bulk one once the stream `drained`,
    /// any once nothing was sent for [`REST_AFTER`] while no body is
    /// `queued`. Resting also returns to the fast level for what follows.
    pub fn should_rest<S: Stream>(
        &mut self,
        cfg: &ChannelConfig,
        channel: &mut SecureChannel<S>,
        now: Instant,
        queued: bool,
        drained: bool,
    ) -> bool {
        let moved = channel.counters().moved_out();
        let quiet = if moved != self.idle.0 || queued {
            self.idle = (moved, now);
            false
        } else {
            now.saturating_duration_since(self.idle.1) >= REST_AFTER
        };
        let bulk_done = drained && self.place.is_some();
        if channel.compressing().is_none() || !(quiet || bulk_done) {
            return false;
        }
        self.place = None;
        channel.set_level(cfg.zstd_level);
        true
    }

    /// How long until an open frame rests if nothing more is sent and no
    /// body is `queued`: the serving loop wakes then, so an idle session
    /// lets go of its context without waiting for the client proxy's next
    /// message. None while a body is queued: a wake that cannot rest would
    /// only turn the loop, and each turn starts the wait for the client's
    /// next message afresh (a dead proxy would never time out).
    pub fn rest_due<S: Stream>(
        &self,
        channel: &SecureChannel<S>,
        now: Instant,
        queued: bool,
    ) -> Option<Duration> {
        if queued {
            return None;
        }
        channel.compressing()?;
        Some(REST_AFTER.saturating_sub(now.saturating_duration_since(self.idle.1)))
    }
}

/// Whether the stream uses the bulk level, given the last choice and the
/// measured rate: below [`BULK_BELOW`] yes, above twice it no, in between
/// (or unmeasured) as before. The first measurement decides at
/// [`BULK_BELOW`] alone: the hysteresis keeps a measured choice from
/// flapping, and the guess made before any measurement is not one (a LAN
/// whose lock-step reader shows 10 MB/s would otherwise stay at the bulk
/// level for good).
fn bulk_after(last: Option<bool>, rate: Option<f64>) -> Option<bool> {
    let Some(r) = rate else {
        return last;
    };
    Some(match last {
        None => r < BULK_BELOW,
        Some(_) if r < BULK_BELOW => true,
        Some(_) if r > 2.0 * BULK_BELOW => false,
        Some(bulk) => bulk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_follows_the_line_with_hysteresis() {
        // GPRS, 3G, satellite: bulk, whatever came before.
        for rate in [20e3, 600e3, 5e6] {
            for last in [None, Some(true), Some(false)] {
                assert_eq!(bulk_after(last, Some(rate)), Some(true), "{rate}");
            }
        }
        // A LAN or loopback: fast.
        assert_eq!(bulk_after(Some(true), Some(100e6)), Some(false));
        // Between the thresholds, or before a measurement, it stays.
        assert_eq!(bulk_after(Some(true), Some(12e6)), Some(true));
        assert_eq!(bulk_after(Some(false), Some(12e6)), Some(false));
        for last in [None, Some(true), Some(false)] {
            assert_eq!(bulk_after(last, None), last);
        }
        // The first measurement is not held to the guess before it.
        assert_eq!(bulk_after(None, Some(12e6)), Some(false));
        assert_eq!(bulk_after(None, Some(7e6)), Some(true));
    }
}
