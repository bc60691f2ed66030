//! Which bodies to ask the edge for ahead of demand, and how many at once.
//!
//! Every mail client we measured reads in listing order, so the plan is the
//! unified listing in order, minus what would be wasted:
//! - messages this mail client already received in an earlier session (a
//!   keep-mode client never asks for them again);
//! - bodies the proxy already holds whole;
//! - bodies over `max_message` (they wait for an explicit RETR: one large
//!   attachment should not hold the line for mail the user wants first).
//!
//! A half-held body is wanted from the byte reached. What is wanted and not
//! yet delivered is bounded by `budget`: each delivery frees its share, and
//! the plan goes on. Sans-IO: the session sends what [`Planner::next`] says.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use causeway_proto::session::{ServerListing, Wanted};

use crate::config::Prefetch;
use crate::mirror::{Kept, Key, Mirror, listed};

pub(crate) struct Planner {
    queue: VecDeque<Key>,
    budget: u64,
    /// Bodies wanted and not yet delivered: the order they were wanted in
    /// (the plan's) and their bytes (by listing size).
    outstanding: BTreeMap<Key, (u64, u64)>,
    /// The order the next wanted body gets.
    wanted_so_far: u64,
}

impl Planner {
    /// The plan for a session's listings (`order`: server names in the
    /// unified mailbox's order).
    pub fn new(
        policy: &Prefetch,
        order: &[String],
        listings: &[ServerListing],
        kept: &Kept,
        mirror: &Mirror,
    ) -> Self {
        let queue = if policy.enabled {
            listed(order, listings)
                .into_iter()
                .filter(|key| {
                    key.1.size <= policy.max_message
                        && !kept.was_delivered(key)
                        && mirror.complete(key).is_none()
                })
                .collect()
        } else {
            VecDeque::new()
        };
        Planner {
            queue,
            budget: policy.budget,
            outstanding: BTreeMap::new(),
            wanted_so_far: 0,
        }
    }

    /// The next bodies to want, per server in the order of their first
    /// body, within the budget.
    pub fn next(&mut self, mirror: &Mirror) -> Vec<(String, Vec<Wanted>)> {
        let mut out: Vec<(String, Vec<Wanted>)> = Vec::new();
        let mut used: u64 = self.outstanding.values().map(|&(_, cost)| cost).sum();
        while let Some(key) = self.queue.front() {
            let from = mirror.held(key);
            let cost = key.1.size.saturating_sub(from);
            if used + cost > self.budget {
                break;
            }
            let key = self.queue.pop_front().expect("front exists");
            used += cost;
            self.outstanding
                .insert(key.clone(), (self.wanted_so_far, cost));
            self.wanted_so_far += 1;
            let wanted = Wanted {
                msg: key.1.clone(),
                from,
            };
            match out.iter_mut().find(|(s, _)| *s == key.0) {
                Some((_, list)) => list.push(wanted),
                None => out.push((key.0, vec![wanted])),
            }
        }
        out
    }

    /// `key` was delivered (or is no longer wanted): its share is free.
    /// True if `key` was wanted and is not delivered yet: the stream will
    /// bring it, in its turn.
    pub fn is_wanted(&self, key: &Key) -> bool {
        self.outstanding.contains_key(key)
    }

    /// The bodies wanted and not delivered yet.
    pub fn wanted(&self) -> impl Iterator<Item = &Key> {
        self.outstanding.keys()
    }

    /// Bytes the stream may bring before `key`'s body starts: what is still
    /// to come of the bodies arriving now and of those wanted before it.
    pub fn bytes_ahead(&self, key: &Key, mirror: &Mirror) -> u64 {
        let before = self.outstanding.get(key).map_or(0, |&(order, _)| order);
        let wanted_before = self
            .outstanding
            .iter()
            .filter(|(_, (order, _))| *order < before)
            .map(|(k, _)| k);
        let ahead: BTreeSet<&Key> = mirror
            .arriving_keys()
            .chain(wanted_before)
            .filter(|k| *k != key)
            .collect();
        ahead
            .into_iter()
            .map(|k| k.1.size.saturating_sub(mirror.held(k)))
            .sum()
    }

    pub fn done(&mut self, key: &Key) {
        self.outstanding.remove(key);
        self.queue.retain(|k| k != key);
    }
}

#[cfg(test)]
mod tests {
    use causeway_proto::session::{ListEntry, ListingState, MessageId};

    use super::*;

    fn listing(name: &str, sizes: &[(&str, u64)]) -> ServerListing {
        ServerListing {
            name: name.into(),
            state: ListingState::Ready {
                messages: sizes
                    .iter()
                    .map(|(u, s)| ListEntry {
                        uidl: (*u).into(),
                        size: *s,
                        flags: None,
                    })
                    .collect(),
            },
        }
    }

    fn key(s: &str, u: &str, size: u64) -> Key {
        (
            s.into(),
            MessageId {
                uidl: u.into(),
                size,
            },
        )
    }

    fn policy(budget: u64, max_message: u64) -> Prefetch {
        Prefetch {
            enabled: true,
            budget,
            max_message,
            ..Prefetch::default()
        }
    }

    fn names(plan: &[(String, Vec<Wanted>)]) -> Vec<(String, Vec<String>)> {
        plan.iter()
            .map(|(s, w)| (s.clone(), w.iter().map(|w| w.msg.uidl.clone()).collect()))
            .collect()
    }

    #[test]
    fn listing_order_within_the_budget_and_deliveries_free_it() {
        let order = ["A".to_owned(), "B".to_owned()];
        let lists = [
            listing("B", &[("b1", 10)]),
            listing("A", &[("a1", 10), ("big", 1000), ("a2", 10)]),
        ];
        let (kept, mirror) = (Kept::new(0), Mirror::default());
        let mut p = Planner::new(&policy(25, 100), &order, &lists, &kept, &mirror);
        let first = p.next(&mirror);
        assert_eq!(
            names(&first),
            [("A".to_owned(), vec!["a1".to_owned(), "a2".to_owned()])]
        );
        assert!(p.next(&mirror).is_empty(), "budget used up");
        p.done(&key("A", "a1", 10));
        assert_eq!(
            names(&p.next(&mirror)),
            [("B".to_owned(), vec!["b1".to_owned()])]
        );
    }

    #[test]
    fn what_was_delivered_or_is_held_is_skipped_and_a_half_body_continues() {
        let order = ["A".to_owned()];
        let lists = [listing(
            "A",
            &[("seen", 5), ("held", 5), ("half", 8), ("new", 5)],
        )];
        let kept = Kept::new(0);
        kept.delivered(&key("A", "seen", 5));
        let mut mirror = Mirror::default();
        mirror
            .chunk(key("A", "held", 5), 0, 5, b"12345", 99)
            .unwrap();
        mirror.chunk(key("A", "half", 8), 0, 8, b"123", 99).unwrap();
        let mut p = Planner::new(&policy(100, 100), &order, &lists, &kept, &mirror);
        let plan = p.next(&mirror);
        let wanted: Vec<(String, u64)> = plan[0]
            .1
            .iter()
            .map(|w| (w.msg.uidl.clone(), w.from))
            .collect();
        assert_eq!(wanted, [("half".to_owned(), 3), ("new".to_owned(), 0)]);
    }

    /// What comes before a wanted body: the rest of those wanted before it
    /// and of any arriving now, whatever their place in the plan.
    #[test]
    fn bytes_ahead_of_a_body_are_those_wanted_before_it_and_those_arriving() {
        let order = ["A".to_owned(), "B".to_owned()];
        let lists = [
            listing("A", &[("a1", 100), ("a2", 10)]),
            listing("B", &[("b1", 1000)]),
        ];
        let mut mirror = Mirror::default();
        let mut p = Planner::new(
            &policy(10_000, 10_000),
            &order,
            &lists,
            &Kept::new(0),
            &mirror,
        );
        p.next(&mirror);
        let (a1, a2, b1) = (
            key("A", "a1", 100),
            key("A", "a2", 10),
            key("B", "b1", 1000),
        );
        assert_eq!(p.bytes_ahead(&a1, &mirror), 0, "first in the plan");
        assert_eq!(p.bytes_ahead(&a2, &mirror), 100, "a1 comes first");
        mirror
            .chunk(a1.clone(), 0, 100, &[b'x'; 40], 10_000)
            .unwrap();
        assert_eq!(p.bytes_ahead(&a2, &mirror), 60, "the rest of a1");
        // b1 is wanted after a2, but the stream brings it now.
        mirror
            .chunk(b1.clone(), 0, 1000, &[b'y'; 100], 10_000)
            .unwrap();
        assert_eq!(p.bytes_ahead(&a2, &mirror), 60 + 900);
        assert_eq!(p.bytes_ahead(&b1, &mirror), 60 + 10);
        p.done(&a1);
        assert_eq!(p.bytes_ahead(&a2, &mirror), 60 + 900, "a1 still arrives");
    }

    #[test]
    fn prefetch_off_wants_nothing() {
        let order = ["A".to_owned()];
        let lists = [listing("A", &[("a", 5)])];
        let off = Prefetch {
            enabled: false,
            ..Prefetch::default()
        };
        let mirror = Mirror::default();
        let mut p = Planner::new(&off, &order, &lists, &Kept::new(0), &mirror);
        assert!(p.next(&mirror).is_empty());
    }
}
