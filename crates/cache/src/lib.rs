//! A byte-bounded, least-recently-used store: what the edge's replica
//! keeps of fetched bodies, and what the client proxy keeps between
//! sessions. Both must never hold more than their cap of mail, whatever the
//! mail client does, and both evict the body least recently used first.
//!
//! Pure data, no I/O, no clock (use is counted in ticks), so it runs the
//! same in simulation.
//!
//! Owns: the eviction rule and the byte accounting. Depends on nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

/// What a stored value weighs, in bytes.
pub trait Weighed {
    fn bytes(&self) -> usize;
}

impl Weighed for Arc<Vec<u8>> {
    fn bytes(&self) -> usize {
        self.len()
    }
}

/// Values by key, at most `cap` bytes in all.
pub struct ByteLru<K, V> {
    cap: usize,
    used: usize,
    tick: u64,
    /// key -> (tick of last use, value)
    values: BTreeMap<K, (u64, V)>,
    /// tick of last use -> key; the first is evicted first.
    by_use: BTreeMap<u64, K>,
}

impl<K: Ord + Clone, V: Weighed> ByteLru<K, V> {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            tick: 0,
            values: BTreeMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// Bytes held.
    pub fn used(&self) -> usize {
        self.used
    }

    /// `key`'s value, counted as a use.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let tick = self.next_tick();
        let (last, value) = self.values.get_mut(key)?;
        self.by_use.remove(last);
        self.by_use.insert(tick, key.clone());
        *last = tick;
        Some(value)
    }

    /// `key`'s value, not counted as a use.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.values.get(key).map(|(_, v)| v)
    }

    /// Stores `value` (replacing `key`'s), evicting the least recently used
    /// until it fits. A value larger than the whole cap, or empty, is not
    /// stored.
    pub fn put(&mut self, key: K, value: V) {
        self.take(&key);
        let size = value.bytes();
        if size == 0 || size > self.cap {
            return;
        }
        while self.used + size > self.cap {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.take(&oldest);
        }
        let tick = self.next_tick();
        self.used += size;
        self.by_use.insert(tick, key.clone());
        self.values.insert(key, (tick, value));
    }

    /// Removes `key`'s value and returns it.
    pub fn take(&mut self, key: &K) -> Option<V> {
        let (tick, value) = self.values.remove(key)?;
        self.by_use.remove(&tick);
        self.used -= value.bytes();
        Some(value)
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: usize) -> Arc<Vec<u8>> {
        Arc::new(vec![1; n])
    }

    #[test]
    fn the_least_recently_used_goes_first_and_bytes_stay_under_the_cap() {
        let mut c = ByteLru::new(250);
        c.put("a", v(100));
        c.put("b", v(100));
        assert!(c.get(&"a").is_some());
        c.put("c", v(100));
        assert!(c.peek(&"b").is_none(), "b was least recently used");
        assert!(c.peek(&"a").is_some() && c.peek(&"c").is_some());
        assert_eq!(c.used(), 200);
        // Replacing a value re-counts its bytes.
        c.put("a", v(50));
        assert_eq!(c.used(), 150);
        // peek does not count as a use: "c" is still older than "a".
        assert!(c.peek(&"c").is_some());
        c.put("d", v(150));
        assert!(c.peek(&"c").is_none());
        assert_eq!(c.used(), 200);
    }

    #[test]
    fn too_large_or_empty_values_are_not_stored_and_take_removes() {
        let mut c = ByteLru::new(100);
        c.put("a", v(40));
        c.put("big", v(101));
        c.put("empty", v(0));
        assert!(c.peek(&"big").is_none() && c.peek(&"empty").is_none());
        assert_eq!(c.take(&"a").map(|b| b.len()), Some(40));
        assert!(c.take(&"a").is_none());
        assert_eq!(c.used(), 0);
    }
}
