//! Idle links to relays, kept for the next server session.
//!
//! A relay link carries one server session at a time, and a new link costs a
//! TCP connection, a Noise KK handshake (four Diffie-Hellman operations
//! between the two ends) and its round trips before the relay can even
//! start logging in. Every server session through a relay paid that; in
//! the simulation the edge-relay handshakes were about 6% of all the time
//! spent. A link whose server session ended with the edge's `Quit` is
//! clean, and the relay then waits on it for another `Open` (protocol 13):
//! the edge keeps it here, at most [`MAX_IDLE_PER_RELAY`] per relay for at
//! most [`KEEP_FOR`], and the next server session through that relay takes
//! the latest one instead of dialing.
//!
//! A kept link may have died meanwhile (the relay restarted, or gave up
//! waiting; a cut): its `Open` then fails on the line, and the caller dials
//! afresh at once (`RelayLink::open`). Nothing about a server session
//! survives on a kept link: the relay ended it with QUIT and keeps no state,
//! and the next `Open` carries its credentials uncompressed, as on a fresh
//! link.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_net::{Env, Instant};
use causeway_wire::{PublicKey, SecureChannel};

use super::RelayRef;

/// How long a link stays kept. The relay waits longer for the next `Open`
/// (`causeway_relay`'s `KEPT_LINK_WAIT`), so a kept link is rarely one the
/// relay is just closing.
pub const KEEP_FOR: Duration = Duration::from_secs(30);

/// Links kept per relay: a burst of sessions that ended together leaves
/// this many for the next burst; the rest are closed.
pub const MAX_IDLE_PER_RELAY: usize = 8;

/// The idle links of one node, shared by all its server sessions.
pub struct RelayPool<E: Env> {
    shelf: Arc<Mutex<Shelf<SecureChannel<E::Stream>>>>,
}

impl<E: Env> Clone for RelayPool<E> {
    fn clone(&self) -> Self {
        Self {
            shelf: self.shelf.clone(),
        }
    }
}

impl<E: Env> Default for RelayPool<E> {
    fn default() -> Self {
        Self {
            shelf: Arc::new(Mutex::new(Shelf {
                by_relay: BTreeMap::new(),
            })),
        }
    }
}

impl<E: Env> RelayPool<E> {
    fn shelf(&self) -> std::sync::MutexGuard<'_, Shelf<SecureChannel<E::Stream>>> {
        // Each change is one push or pop: consistent after a panic elsewhere.
        self.shelf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently kept link to `relay` that is still fresh (the
    /// stale ones are dropped, which closes them: the relay ends a link
    /// that closes while it waits, quietly).
    pub(crate) fn take(&self, relay: &RelayRef, now: Instant) -> Option<SecureChannel<E::Stream>> {
        self.shelf().take(relay, now)
    }

    /// Keeps `channel`, whose server session ended with QUIT, for the next
    /// session through `relay`.
    pub(crate) fn put(&self, relay: &RelayRef, channel: SecureChannel<E::Stream>, now: Instant) {
        self.shelf().put(relay, channel, now)
    }
}

/// Kept things by relay name, with what they lead to and since when.
struct Shelf<T> {
    by_relay: BTreeMap<String, Vec<Kept<T>>>,
}

struct Kept<T> {
    link: T,
    /// Where and to whom it leads: a reload may move or re-key the relay.
    address: String,
    key: PublicKey,
    since: Instant,
}

impl<T> Shelf<T> {
    fn take(&mut self, relay: &RelayRef, now: Instant) -> Option<T> {
        let kept = self.by_relay.get_mut(&relay.name)?;
        kept.retain(|k| {
            now.duration_since(k.since) < KEEP_FOR
                && k.address == relay.address
                && k.key == relay.public_key
        });
        let taken = kept.pop().map(|k| k.link);
        if kept.is_empty() {
            self.by_relay.remove(&relay.name);
        }
        taken
    }

    fn put(&mut self, relay: &RelayRef, link: T, now: Instant) {
        // Stale links to every relay go, not only to this one: a relay a
        // reload took away is never asked for again.
        for kept in self.by_relay.values_mut() {
            kept.retain(|k| now.duration_since(k.since) < KEEP_FOR);
        }
        self.by_relay.retain(|_, kept| !kept.is_empty());
        let kept = self.by_relay.entry(relay.name.clone()).or_default();
        if kept.len() == MAX_IDLE_PER_RELAY {
            kept.remove(0);
        }
        kept.push(Kept {
            link,
            address: relay.address.clone(),
            key: relay.public_key,
            since: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(name: &str, address: &str, key: u8) -> RelayRef {
        RelayRef {
            name: name.into(),
            address: address.into(),
            public_key: PublicKey::from_bytes([key; causeway_wire::KEY_LEN]),
        }
    }

    fn start() -> Instant {
        use causeway_net::TokioEnv;
        TokioEnv::new().now()
    }

    fn shelf() -> Shelf<u32> {
        Shelf {
            by_relay: BTreeMap::new(),
        }
    }

    #[test]
    fn the_latest_fresh_link_to_the_same_relay_is_taken() {
        let (mut s, t0) = (shelf(), start());
        let r1 = relay("R1", "r1:4000", 1);
        s.put(&r1, 1, t0);
        s.put(&r1, 2, t0 + Duration::from_secs(1));
        s.put(&relay("R2", "r2:4000", 2), 3, t0);
        let now = t0 + Duration::from_secs(2);
        assert_eq!(s.take(&r1, now), Some(2), "the latest first");
        assert_eq!(s.take(&r1, now), Some(1));
        assert_eq!(s.take(&r1, now), None, "never another relay's");
    }

    #[test]
    fn a_stale_link_or_one_to_where_the_relay_no_longer_is_is_dropped() {
        let (mut s, t0) = (shelf(), start());
        let r1 = relay("R1", "r1:4000", 1);
        s.put(&r1, 1, t0);
        assert_eq!(s.take(&r1, t0 + KEEP_FOR), None, "kept too long");
        assert!(s.by_relay.is_empty());
        s.put(&r1, 2, t0);
        assert_eq!(s.take(&relay("R1", "moved:4000", 1), t0), None, "moved");
        s.put(&r1, 3, t0);
        assert_eq!(s.take(&relay("R1", "r1:4000", 9), t0), None, "re-keyed");
        s.put(&relay("gone", "g:4000", 3), 4, t0);
        s.put(&r1, 5, t0 + KEEP_FOR);
        assert!(!s.by_relay.contains_key("gone"), "stale everywhere dropped");
    }

    #[test]
    fn at_most_so_many_are_kept_per_relay_the_oldest_going_first() {
        let (mut s, t0) = (shelf(), start());
        let r1 = relay("R1", "r1:4000", 1);
        for i in 0..=MAX_IDLE_PER_RELAY as u32 {
            s.put(&r1, i, t0);
        }
        let mut taken = Vec::new();
        while let Some(i) = s.take(&r1, t0) {
            taken.push(i);
        }
        assert_eq!(taken.len(), MAX_IDLE_PER_RELAY);
        assert!(!taken.contains(&0), "the oldest went: {taken:?}");
    }
}
