//! A simulated disk for the journal, for turmoil tests and the fault
//! simulation.
//!
//! Create it *outside* the turmoil host closure and hand a clone to every
//! incarnation of the edge: like a disk, it outlives the process. A commit
//! first lands in a volatile area and becomes durable only when its (simulated)
//! sync completes. What was not synced when the edge crashed is lost:
//! [`SimDisk::crash`] drops everything still volatile, and a harness that
//! crashes a host calls it first, then drops the host's tasks.
//!
//! A commit whose future is dropped while the host lives (a task
//! cancelled, a `select!` that chose another branch) still completes, as a
//! real store's does: redb's commit runs to its end on a blocking thread
//! whether or not anyone still waits for it (`RedbStore`). Until 2026-12-06
//! such a commit was lost, so the simulation never met the state real
//! edges and proxies can reach: a journal entry its writer gave up on. The
//! writes become durable when the future is dropped, a little before a
//! real sync would have ended; a commit stalled before its sync (a hung
//! disk) stays volatile, for a later crash to lose.
//!
//! Faults: [`SimDisk::fail_next_commits`] makes commits fail (the edge must
//! then refuse the acknowledgement), [`SimDisk::inject`] stalls a commit
//! before or after it became durable, to crash the edge at that instant.
//! [`SimDisk::set_sync_latency`] makes each sync take simulated time.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::{JournalStore, StoreFuture, Write};

/// How the next commits misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitFault {
    /// No fault: this commit goes through, so that the fault queued after
    /// it strikes the commit after it.
    Pass,
    /// The commit fails with an I/O error; nothing is written.
    Fail,
    /// The writes reach the volatile area, and the sync never completes: a
    /// crash now loses them.
    StallBeforeSync,
    /// The commit becomes durable, and the caller is never told: the instant
    /// between `fsync` returning and the edge acting on it.
    StallAfterSync,
}

#[derive(Clone, Default)]
pub struct SimDisk {
    inner: Arc<Mutex<Disk>>,
}

#[derive(Default)]
struct Disk {
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Commits written but not synced, by commit number.
    volatile: BTreeMap<u64, Vec<Write>>,
    next_commit: u64,
    faults: Vec<CommitFault>,
    sync_latency: Duration,
    /// Commits stalled now (their futures alive and never answering).
    stalled: std::collections::BTreeSet<u64>,
    commits: u64,
    failed: u64,
    lost_on_crash: u64,
}

impl std::fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.lock();
        write!(
            f,
            "SimDisk({} durable, {} unsynced commits)",
            d.durable.len(),
            d.volatile.len()
        )
    }
}

/// A commit between its writes and its sync. Dropped before the sync
/// ended (its future dropped), it completes at once, unless it is stalled
/// before its sync (see the module docs).
struct Pending {
    disk: SimDisk,
    id: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut d = self.disk.lock();
        if d.stalled.remove(&self.id) {
            // Stalled before its sync: volatile until a crash. Stalled
            // after it: already durable.
            return;
        }
        if let Some(batch) = d.volatile.remove(&self.id) {
            apply(&mut d.durable, batch);
            d.commits += 1;
        }
    }
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The edge crashed: every write not yet synced is lost. Returns how
    /// many commits were lost.
    pub fn crash(&self) -> usize {
        let mut d = self.lock();
        let n = d.volatile.len();
        d.volatile.clear();
        d.lost_on_crash += n as u64;
        d.stalled.clear();
        n
    }

    /// Same as [`SimDisk::crash`] (the name the simulation's harness uses).
    pub fn lose_unsynced(&self) -> usize {
        self.crash()
    }

    /// The next `n` commits fail with an I/O error.
    pub fn fail_next_commits(&self, n: usize) {
        self.lock()
            .faults
            .extend(std::iter::repeat_n(CommitFault::Fail, n));
    }

    /// The next commit (after any faults already queued) misbehaves so.
    pub fn inject(&self, fault: CommitFault) {
        self.lock().faults.push(fault);
    }

    /// Forgets queued faults that have not struck yet.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Each sync takes this long (simulated time; zero by default).
    pub fn set_sync_latency(&self, d: Duration) {
        self.lock().sync_latency = d;
    }

    /// Commits stalled now by [`CommitFault::StallBeforeSync`] or
    /// [`CommitFault::StallAfterSync`]: the edge is waiting on them, and a
    /// test may crash it at this instant.
    pub fn stalled(&self) -> usize {
        self.lock().stalled.len()
    }

    /// (commits made durable, commits failed, commits lost to crashes).
    pub fn counts(&self) -> (u64, u64, u64) {
        let d = self.lock();
        (d.commits, d.failed, d.lost_on_crash)
    }

    /// Durable entries.
    pub fn len(&self) -> usize {
        self.lock().durable.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every durable entry, in key order.
    pub fn durable(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.lock()
            .durable
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every durable key, in order (cheaper than [`SimDisk::durable`] for a
    /// check made after each commit).
    pub fn durable_keys(&self) -> Vec<Vec<u8>> {
        self.lock().durable.keys().cloned().collect()
    }

    /// Whether `needle` occurs anywhere on the disk, synced or not, keys and
    /// values alike (for "no password in the clear").
    pub fn contains(&self, needle: &[u8]) -> bool {
        let d = self.lock();
        let has = |b: &[u8]| !needle.is_empty() && b.windows(needle.len()).any(|w| w == needle);
        d.durable.iter().any(|(k, v)| has(k) || has(v))
            || d.volatile.values().flatten().any(|w| match w {
                Write::Put { key, value } => has(key) || has(value),
                Write::Delete { key } => has(key),
            })
    }
}

fn apply(durable: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: Vec<Write>) {
    for w in batch {
        match w {
            Write::Put { key, value } => {
                durable.insert(key, value);
            }
            Write::Delete { key } => {
                durable.remove(&key);
            }
        }
    }
}

impl JournalStore for SimDisk {
    fn commit(&self, batch: Vec<Write>) -> StoreFuture<()> {
        let disk = self.clone();
        Box::pin(async move {
            let (fault, latency, pending) = {
                let mut d = disk.lock();
                let fault = if d.faults.is_empty() {
                    None
                } else {
                    Some(d.faults.remove(0))
                };
                if fault == Some(CommitFault::Fail) {
                    d.failed += 1;
                    return Err(io::Error::other("simulated disk: the commit failed"));
                }
                let id = d.next_commit;
                d.next_commit += 1;
                d.volatile.insert(id, batch);
                (
                    fault,
                    d.sync_latency,
                    Pending {
                        disk: disk.clone(),
                        id,
                    },
                )
            };
            if fault == Some(CommitFault::StallBeforeSync) {
                disk.lock().stalled.insert(pending.id);
                std::future::pending::<()>().await;
            }
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            {
                let mut d = disk.lock();
                // Gone if the disk "crashed" while this commit was syncing.
                if let Some(batch) = d.volatile.remove(&pending.id) {
                    apply(&mut d.durable, batch);
                    d.commits += 1;
                } else {
                    return Err(io::Error::other(
                        "simulated disk: the write was lost before it synced",
                    ));
                }
            }
            if fault == Some(CommitFault::StallAfterSync) {
                disk.lock().stalled.insert(pending.id);
                std::future::pending::<()>().await;
            }
            drop(pending);
            Ok(())
        })
    }

    fn scan(&self) -> StoreFuture<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries = self.durable();
        Box::pin(async move { Ok(entries) })
    }

    fn describe(&self) -> String {
        format!("{self:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str) -> Write {
        Write::Put {
            key: k.as_bytes().to_vec(),
            value: b"v".to_vec(),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn commits_are_durable_and_faults_strike_in_order() {
        rt().block_on(async {
            let d = SimDisk::new();
            d.commit(vec![put("a")]).await.unwrap();
            d.fail_next_commits(1);
            assert!(d.commit(vec![put("b")]).await.is_err());
            d.commit(vec![put("c"), Write::Delete { key: b"a".to_vec() }])
                .await
                .unwrap();
            let keys: Vec<_> = d.durable().into_iter().map(|(k, _)| k).collect();
            assert_eq!(keys, vec![b"c".to_vec()]);
            assert_eq!(d.counts(), (2, 1, 0));
        });
    }

    #[test]
    fn a_commit_whose_caller_stops_waiting_still_completes() {
        rt().block_on(async {
            let d = SimDisk::new();
            d.set_sync_latency(Duration::from_millis(50));
            let f = d.commit(vec![put("a")]);
            let r = tokio::time::timeout(Duration::from_millis(10), f).await;
            assert!(r.is_err(), "still syncing");
            assert_eq!(d.durable_keys(), [b"a".to_vec()]);
            assert_eq!(d.counts(), (1, 0, 0));
            // A crash first loses it, as a crash during the sync would.
            let d2 = d.clone();
            let task = tokio::spawn(async move { d2.commit(vec![put("b")]).await });
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(d.crash(), 1);
            task.abort();
            let _ = task.await;
            assert!(!d.contains(b"b"));
            assert_eq!(d.counts(), (1, 0, 1));
        });
    }

    #[test]
    fn a_stalled_commit_is_lost_by_a_crash_and_kept_volatile_by_a_dropped_future() {
        rt().block_on(async {
            let d = SimDisk::new();
            d.inject(CommitFault::StallBeforeSync);
            let f = d.commit(vec![put("a")]);
            let r = tokio::time::timeout(Duration::from_millis(10), f).await;
            assert!(r.is_err(), "stalled");
            // The future was dropped by the timeout: a hung disk, the write
            // volatile until a crash.
            assert!(d.is_empty() && d.contains(b"a"));
            assert_eq!(d.crash(), 1);
            assert!(!d.contains(b"a"));

            d.inject(CommitFault::StallBeforeSync);
            let d2 = d.clone();
            let task = tokio::spawn(async move { d2.commit(vec![put("b")]).await });
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(d.contains(b"b"), "in the volatile area");
            assert_eq!((d.stalled(), d.crash()), (1, 1));
            assert!(!d.contains(b"b"));
            task.abort();

            d.inject(CommitFault::StallAfterSync);
            let r = tokio::time::timeout(Duration::from_millis(10), d.commit(vec![put("c")])).await;
            assert!(r.is_err());
            assert_eq!(d.len(), 1, "durable although the caller never heard");
        });
    }
}
