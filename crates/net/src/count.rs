//! Live counts that give themselves back.
//!
//! Tests, the simulation and operators read how many sessions, links,
//! replicas or pieces of owed work are alive. A count kept by hand drifts the
//! first time a task dies on an unusual path (an error, a panic, a cancelled
//! future), so each unit is a [`Ticket`] held by whatever it counts and given
//! back when dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::Instant;

/// A live count (sessions, links, replicas...), read by tests and operators.
#[derive(Clone, Debug, Default)]
pub struct Count(Arc<AtomicUsize>);

/// One unit of a [`Count`], given back when dropped, on every path out of
/// the task that holds it.
#[derive(Debug)]
pub struct Ticket {
    n: Arc<AtomicUsize>,
    /// For an [`AgedCount`]'s ticket: where its start time is kept.
    stamp: Option<(Arc<Mutex<Stamps>>, u64)>,
}

/// A [`Count`] that also keeps when each live ticket was taken, so that an
/// operator sees how long the oldest has waited (owed work a mail server has
/// not committed yet), not only how many there are.
#[derive(Clone, Debug, Default)]
pub struct AgedCount {
    count: Count,
    stamps: Arc<Mutex<Stamps>>,
}

#[derive(Debug, Default)]
struct Stamps {
    next: u64,
    /// In the order taken, so the first is the oldest (time never goes back).
    taken: BTreeMap<u64, Instant>,
}

impl Count {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub fn ticket(&self) -> Ticket {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ticket {
            n: self.0.clone(),
            stamp: None,
        }
    }

    /// A ticket, unless `limit` are already out.
    pub fn ticket_within(&self, limit: usize) -> Option<Ticket> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Ticket {
                n: self.0.clone(),
                stamp: None,
            })
    }
}

impl AgedCount {
    pub fn get(&self) -> usize {
        self.count.get()
    }

    /// A ticket taken at `now`.
    pub fn ticket(&self, now: Instant) -> Ticket {
        let mut t = self.count.ticket();
        let mut s = lock(&self.stamps);
        let id = s.next;
        s.next += 1;
        s.taken.insert(id, now);
        t.stamp = Some((self.stamps.clone(), id));
        t
    }

    /// When the oldest live ticket was taken.
    pub fn oldest(&self) -> Option<Instant> {
        lock(&self.stamps).taken.values().next().copied()
    }
}

/// Stamps are inserted or removed in one step: still consistent after a
/// panic elsewhere.
fn lock(m: &Mutex<Stamps>) -> std::sync::MutexGuard<'_, Stamps> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some((stamps, id)) = self.stamp.take() {
            lock(&stamps).taken.remove(&id);
        }
        self.n.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_count_until_dropped_and_respect_a_limit() {
        let c = Count::default();
        let a = c.ticket();
        let b = c.ticket_within(2).expect("room for a second");
        assert_eq!(c.get(), 2);
        assert!(c.ticket_within(2).is_none(), "no third within 2");
        drop(a);
        assert_eq!(c.get(), 1);
        drop(b);
        assert_eq!(c.get(), 0);
    }

    #[test]
    fn an_aged_count_knows_its_oldest_live_ticket() {
        let c = AgedCount::default();
        let t0 = crate::Env::now(&crate::TokioEnv::new());
        let later = t0 + std::time::Duration::from_secs(5);
        assert_eq!(c.oldest(), None);
        let a = c.ticket(t0);
        let b = c.ticket(later);
        assert_eq!((c.get(), c.oldest()), (2, Some(t0)));
        drop(a);
        assert_eq!((c.get(), c.oldest()), (1, Some(later)));
        drop(b);
        assert_eq!((c.get(), c.oldest()), (0, None));
    }
}
