//! Failures counted per source, with a budget that refills: the rule behind
//! every "too many failures, wait a while" of the edge (handshakes per
//! address, mail-server logins per client key and per account).
//!
//! Each source has a bucket of `burst` tries that refills at `per_minute`;
//! a failure takes one, and a source with none left is refused until one is
//! back. Success costs nothing, so a source that only succeeds is never
//! tracked. Sans-IO (the caller passes the time) and integer arithmetic, so
//! a simulation replays it exactly; the map is bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use causeway_net::Instant;

/// A source that must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lockout {
    /// Until a try is back.
    pub wait: Duration,
    /// True for the first refusal since the source ran out: the one worth
    /// a log line.
    pub first: bool,
}

pub(crate) struct Failures<K> {
    /// Both may change while the edge runs (a reloaded configuration).
    burst: AtomicU32,
    per_minute: AtomicU32,
    /// Sources tracked at most: past this, sources whose bucket is full
    /// again are forgotten first, and a new one that still finds no room is
    /// not tracked (each user has a global bound besides).
    max_sources: usize,
    buckets: Mutex<BTreeMap<K, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tries left at `at`, in thousandths.
    milli: u64,
    at: Instant,
    /// A refusal was reported since the bucket last had a try.
    reported: bool,
}

impl<K: Ord> Failures<K> {
    pub fn new(burst: u32, per_minute: u32, max_sources: usize) -> Self {
        Failures {
            burst: AtomicU32::new(burst),
            per_minute: AtomicU32::new(per_minute),
            max_sources,
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// New limits, for every source from now on.
    pub fn set_rate(&self, burst: u32, per_minute: u32) {
        self.burst.store(burst, Ordering::Relaxed);
        self.per_minute.store(per_minute, Ordering::Relaxed);
    }

    fn burst(&self) -> u64 {
        u64::from(self.burst.load(Ordering::Relaxed))
    }

    fn per_minute(&self) -> u64 {
        u64::from(self.per_minute.load(Ordering::Relaxed))
    }

    /// May `key` try now?
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Lockout> {
        let mut buckets = self.lock();
        let Some(b) = buckets.get_mut(key) else {
            return Ok(());
        };
        let milli = self.refilled(b, now);
        if milli >= 1000 {
            b.reported = false;
            return Ok(());
        }
        let first = !b.reported;
        b.reported = true;
        let rate = self.per_minute().max(1);
        Err(Lockout {
            wait: Duration::from_millis(((1000 - milli) * 60).div_ceil(rate)),
            first,
        })
    }

    /// `key` failed once more.
    pub fn failed(&self, key: K, now: Instant) {
        let full = self.burst() * 1000;
        let mut buckets = self.lock();
        if !buckets.contains_key(&key) && buckets.len() >= self.max_sources {
            buckets.retain(|_, b| self.refilled(b, now) < full);
            if buckets.len() >= self.max_sources {
                return;
            }
        }
        let b = buckets.entry(key).or_insert(Bucket {
            milli: full,
            at: now,
            reported: false,
        });
        b.milli = self.refilled(b, now).saturating_sub(1000);
        b.at = now;
    }

    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// The bucket's tries at `now` (thousandths), capped at the burst.
    fn refilled(&self, b: &Bucket, now: Instant) -> u64 {
        let full = self.burst() * 1000;
        let ms = now.saturating_duration_since(b.at).as_millis() as u64;
        // per_minute tries per 60,000 ms: that many thousandths per 60 ms.
        let earned = ms.saturating_mul(self.per_minute()) / 60;
        b.milli.saturating_add(earned).min(full)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<K, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}
