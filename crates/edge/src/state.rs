//! What the edge exposes to whoever runs it: counts that tests and the fault
//! simulation check invariants against ("no replica outlives its session", "no
//! acknowledged work is left pending once every session ended"), and a short
//! record of how each session ended.
//!
//! Counts are kept by [`Ticket`]s that decrement on drop, so a task that dies
//! on any path (error, panic, cancellation) still gives its count back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use causeway_net::Ticket;
use causeway_net::metrics::Histogram;
use causeway_net::{AgedCount, Count, Instant};
use causeway_wire::Counters;

use crate::records::Records;
pub use crate::records::{MAX_RECORDS, SessionEnd, SessionRecord};

/// Shared, cheap to clone; created by the caller of [`crate::run_edge`].
#[derive(Clone, Default)]
pub struct EdgeState {
    inner: Arc<Inner>,
}

struct Inner {
    live_sessions: Count,
    live_replicas: Count,
    /// The bodies all replicas keep, under one cap.
    body_pool: causeway_cache::Pool,
    /// The messages all sessions hold on their way up, under one cap.
    upload_pool: causeway_cache::Pool,
    pending_work: AgedCount,
    sessions: Mutex<Records>,
    journal_entries: AtomicUsize,
    taken_records: AtomicUsize,
    journal_failures: AtomicUsize,
    journal_unreadable: AtomicUsize,
    replaying: Count,
    replay_loaded: AtomicBool,
    adopted: AtomicUsize,
    carried_taken_before: AtomicUsize,
    streamed_ahead_unread: AtomicUsize,
    superseded: AtomicUsize,
    resumed: AtomicUsize,
    resumed_partial: AtomicUsize,
    resumed_primed: AtomicUsize,
    bulk_contexts: Count,
    handshakes: Count,
    refused_connections: AtomicUsize,
    handshake_failures: Mutex<BTreeMap<&'static str, u64>>,
    owed_lock_busy: AtomicUsize,
    /// Every client channel's bytes, fed by each session's `Meter`.
    client_hop: Counters,
    /// How long each crash-journal commit (write and fsync) took.
    journal_commit: Histogram,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            live_sessions: Count::default(),
            live_replicas: Count::default(),
            body_pool: causeway_cache::Pool::default(),
            // Capped by the configuration as the edge starts (`run`).
            upload_pool: causeway_cache::Pool::new(usize::MAX),
            pending_work: AgedCount::default(),
            sessions: Mutex::default(),
            journal_entries: AtomicUsize::default(),
            taken_records: AtomicUsize::default(),
            journal_failures: AtomicUsize::default(),
            journal_unreadable: AtomicUsize::default(),
            replaying: Count::default(),
            replay_loaded: AtomicBool::default(),
            adopted: AtomicUsize::default(),
            carried_taken_before: AtomicUsize::default(),
            streamed_ahead_unread: AtomicUsize::default(),
            superseded: AtomicUsize::default(),
            resumed: AtomicUsize::default(),
            resumed_partial: AtomicUsize::default(),
            resumed_primed: AtomicUsize::default(),
            bulk_contexts: Count::default(),
            handshakes: Count::default(),
            refused_connections: AtomicUsize::default(),
            handshake_failures: Mutex::default(),
            owed_lock_busy: AtomicUsize::default(),
            client_hop: Counters::default(),
            // 0.5 ms (a page cache write) to 4 s (a disk in trouble).
            journal_commit: Histogram::new(causeway_net::metrics::exponential_buckets(
                0.0005, 2.0, 14,
            )),
        }
    }
}

/// A time for tickets taken in unit tests.
#[cfg(test)]
pub(crate) fn test_now() -> Instant {
    causeway_net::Env::now(&causeway_net::TokioEnv::new())
}

/// Records and tallies are appended or edited in one step: still
/// consistent after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EdgeState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A handshake's place, unless `max` are in progress.
    pub(crate) fn handshake_ticket(&self, max: usize) -> Option<Ticket> {
        self.inner.handshakes.ticket_within(max)
    }

    pub(crate) fn refused_connection(&self) {
        self.inner
            .refused_connections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed before their handshake: too many handshakes in
    /// progress, or an address that failed too often.
    pub fn refused_connections(&self) -> usize {
        self.inner.refused_connections.load(Ordering::Relaxed)
    }

    /// A place for one session's bulk-level compression context, if fewer
    /// than `limit` are in use (see `compression.rs`).
    pub(crate) fn bulk_context(&self, limit: usize) -> Option<Ticket> {
        self.inner.bulk_contexts.ticket_within(limit)
    }

    /// Sessions streaming at the bulk level now.
    pub fn bulk_contexts(&self) -> usize {
        self.inner.bulk_contexts.get()
    }

    /// Client handshakes in progress now.
    pub fn handshakes(&self) -> usize {
        self.inner.handshakes.get()
    }

    pub(crate) fn handshake_failed(&self, cause: &'static str) {
        *lock(&self.inner.handshake_failures)
            .entry(cause)
            .or_default() += 1;
    }

    /// Client handshakes that failed since start, by cause (see
    /// `causeway_wire::link::handshake_failure_cause`).
    pub fn handshake_failures(&self) -> Vec<(&'static str, u64)> {
        lock(&self.inner.handshake_failures)
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    pub(crate) fn owed_lock_busy(&self) {
        self.inner.owed_lock_busy.fetch_add(1, Ordering::Relaxed);
    }

    /// Times owed work found its maildrop locked by another session (and
    /// waited, or was handed to that session).
    pub fn owed_lock_busy_waits(&self) -> usize {
        self.inner.owed_lock_busy.load(Ordering::Relaxed)
    }

    /// Bytes of every client channel so far (the client proxy hop).
    pub fn client_hop(&self) -> &Counters {
        &self.inner.client_hop
    }

    pub(crate) fn journal_committed(&self, took: Duration) {
        self.inner.journal_commit.observe(took.as_secs_f64());
    }

    /// How long crash-journal commits took.
    pub fn journal_commit_times(&self) -> &Histogram {
        &self.inner.journal_commit
    }

    /// When the oldest owed item still waiting for its server was owed.
    pub fn oldest_pending_work(&self) -> Option<Instant> {
        self.inner.pending_work.oldest()
    }

    /// Client sessions running now (handshake done, not yet ended).
    pub fn live_sessions(&self) -> usize {
        self.inner.live_sessions.get()
    }

    /// Replicas alive now; 0 whenever no session runs.
    pub fn live_replicas(&self) -> usize {
        self.inner.live_replicas.get()
    }

    /// Acknowledged deletes and read marks not yet committed by a server's
    /// QUIT (nor given up on).
    pub fn pending_work(&self) -> usize {
        self.inner.pending_work.get()
    }

    /// Owed items recorded in the crash journal and not yet erased, as this
    /// life of the edge knows them (found at start plus recorded minus
    /// erased). 0 without a journal.
    pub fn journal_entries(&self) -> usize {
        self.inner.journal_entries.load(Ordering::SeqCst)
    }

    /// Records of deletes taken from client proxies that the journal keeps
    /// (`journal::taken`): each goes at its proxy's next `Hello`, so a
    /// count that only grows is proxies that never came back.
    pub fn taken_records(&self) -> usize {
        self.inner.taken_records.load(Ordering::SeqCst)
    }

    /// Journal commits that failed (each refused an acknowledgement, or left
    /// an entry that the next start will redo).
    pub fn journal_failures(&self) -> usize {
        self.inner.journal_failures.load(Ordering::SeqCst)
    }

    /// Journal entries found at start that could not be read (wrong key or
    /// damage); they are left in place, and their work is not done.
    pub fn journal_unreadable_entries(&self) -> usize {
        self.inner.journal_unreadable.load(Ordering::SeqCst)
    }

    /// Groups of journaled work (one server of one earlier session) being
    /// replayed now.
    pub fn replaying(&self) -> usize {
        self.inner.replaying.get()
    }

    /// True once the journal was read at start and every group found in it
    /// has been committed or given up on (at once when there is no journal).
    pub fn replay_finished(&self) -> bool {
        self.inner.replay_loaded.load(Ordering::SeqCst) && self.replaying() == 0
    }

    /// Owed items one worker took over from another of the same maildrop
    /// (whose lock it held), since this edge started.
    pub fn adopted_items(&self) -> usize {
        self.inner.adopted.load(Ordering::SeqCst)
    }

    /// Deletes a client proxy carried that this edge had taken before (the
    /// proxy lost its `Held`), not taken twice, since this edge started.
    pub fn carried_taken_before(&self) -> usize {
        self.inner.carried_taken_before.load(Ordering::SeqCst)
    }

    /// Bodies streamed to a client proxy ahead of demand that its session
    /// ended without reporting delivered (so never marked read), since this
    /// edge started.
    pub fn streamed_ahead_unread(&self) -> usize {
        self.inner.streamed_ahead_unread.load(Ordering::SeqCst)
    }

    /// Sessions ended early because their client, back after a cut, named
    /// them lost (instead of lingering until `client_idle`).
    pub fn superseded_sessions(&self) -> usize {
        self.inner.superseded.load(Ordering::SeqCst)
    }

    /// Resumes taken: a session re-attached to a new channel after a cut.
    pub fn resumes(&self) -> usize {
        self.inner.resumed.load(Ordering::SeqCst)
    }

    /// Bodies a resume continued part-way, from the byte the client proxy
    /// held (not from their start).
    pub fn resumed_partial_bodies(&self) -> usize {
        self.inner.resumed_partial.load(Ordering::SeqCst)
    }

    /// Resumes whose new stream started primed with the cut one's recent
    /// plaintext (see `serving::resume`).
    pub fn resumes_primed(&self) -> usize {
        self.inner.resumed_primed.load(Ordering::SeqCst)
    }

    /// The latest sessions (at most [`MAX_RECORDS`] unless more run), in
    /// start order.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.records().all()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        lock(&self.inner.sessions)
    }

    /// A session ticket, unless `max` sessions already run.
    pub(crate) fn session_ticket(&self, max: usize) -> Option<Ticket> {
        self.inner.live_sessions.ticket_within(max)
    }

    pub(crate) fn replica_ticket(&self) -> Ticket {
        self.inner.live_replicas.ticket()
    }

    /// The pool every replica's bodies share.
    pub(crate) fn body_pool(&self) -> causeway_cache::Pool {
        self.inner.body_pool.clone()
    }

    /// Caps the bodies of all replicas together at `cap` bytes from now on
    /// (`replica_cache_total_bytes`, at the start and at each reload).
    pub(crate) fn set_body_cap(&self, cap: usize) {
        self.inner.body_pool.set_cap(cap);
    }

    /// Bytes of bodies all replicas keep.
    pub fn cached_body_bytes(&self) -> usize {
        self.inner.body_pool.used()
    }

    /// The budget every session's uploads share (`upload_total_bytes`,
    /// set at the start and at each reload).
    pub(crate) fn upload_pool(&self) -> causeway_cache::Pool {
        self.inner.upload_pool.clone()
    }

    /// Bytes of messages all sessions hold on their way up.
    pub fn upload_bytes(&self) -> usize {
        self.inner.upload_pool.used()
    }

    pub(crate) fn work_ticket(&self, now: Instant) -> Ticket {
        self.inner.pending_work.ticket(now)
    }

    pub(crate) fn journal_entries_add(&self, n: usize) {
        self.inner.journal_entries.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn set_taken_records(&self, n: usize) {
        self.inner.taken_records.store(n, Ordering::SeqCst);
    }

    pub(crate) fn journal_entries_sub(&self, n: usize) {
        let _ = self
            .inner
            .journal_entries
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_sub(n))
            });
    }

    pub(crate) fn resumed(&self, partial_bodies: usize, primed: bool) {
        self.inner.resumed.fetch_add(1, Ordering::SeqCst);
        if primed {
            self.inner.resumed_primed.fetch_add(1, Ordering::SeqCst);
        }
        self.inner
            .resumed_partial
            .fetch_add(partial_bodies, Ordering::SeqCst);
    }

    pub(crate) fn superseded(&self, n: usize) {
        self.inner.superseded.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn journal_failed(&self) {
        self.inner.journal_failures.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn journal_unreadable(&self) {
        self.inner.journal_unreadable.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn replay_ticket(&self) -> Ticket {
        self.inner.replaying.ticket()
    }

    pub(crate) fn replay_loaded(&self) {
        self.inner.replay_loaded.store(true, Ordering::SeqCst);
    }

    pub(crate) fn adopted(&self, n: usize) {
        self.inner.adopted.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn carried_again(&self, n: usize) {
        self.inner
            .carried_taken_before
            .fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn streamed_ahead(&self, unread: usize) {
        self.inner
            .streamed_ahead_unread
            .fetch_add(unread, Ordering::SeqCst);
    }

    pub(crate) fn session_started(&self, id: &str) {
        self.records().started(id);
    }

    pub(crate) fn session_ended(&self, id: &str, end: SessionEnd, abandoned: Vec<String>) {
        self.records().ended(id, end, abandoned);
    }
}
