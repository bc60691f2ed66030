//! Live counts that give themselves back.
//!
//! Tests, the simulation and operators read how many sessions, links,
//! replicas or pieces of owed work are alive. A count kept by hand drifts the
//! first time a task dies on an unusual path (an error, a panic, a cancelled
//! future), so each unit is a [`Ticket`] held by whatever it counts and given
//! back when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A live count (sessions, links, replicas...), read by tests and operators.
#[derive(Clone, Debug, Default)]
pub struct Count(Arc<AtomicUsize>);

/// One unit of a [`Count`], given back when dropped, on every path out of
/// the task that holds it.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Count {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub fn ticket(&self) -> Ticket {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ticket(self.0.clone())
    }

    /// A ticket, unless `limit` are already out.
    pub fn ticket_within(&self, limit: usize) -> Option<Ticket> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Ticket(self.0.clone()))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
}
