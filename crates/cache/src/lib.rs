//! A byte-bounded, least-recently-used store: what the edge's replica
//! keeps of fetched bodies, and what the client proxy keeps between
//! sessions. Both must never hold more than their cap of mail, whatever the
//! mail client does, and both evict the body least recently used first.
//!
//! Pure data, no I/O, no clock (use is counted in ticks), so it runs the
//! same in simulation.
//!
//! Several stores may also share a [`Pool`]: a cap on the bytes they hold
//! together (the edge's bodies across all its sessions). A store that
//! would take the pool over its cap evicts its own bodies first, and if
//! that is not enough does not keep the new one: a body is never needed
//! in a cache to be served, only to be served again without the server.
//!
//! Owns: the eviction rule and the byte accounting. Depends on nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A cap on the bytes several stores hold together; cloned handles share
/// it.
#[derive(Clone, Debug, Default)]
pub struct Pool(Arc<PoolInner>);

#[derive(Debug, Default)]
struct PoolInner {
    cap: AtomicUsize,
    used: AtomicUsize,
}

impl Pool {
    pub fn new(cap: usize) -> Self {
        let pool = Pool::default();
        pool.set_cap(cap);
        pool
    }

    /// A new cap (a reloaded configuration): stores above it shrink as
    /// they next store a value.
    pub fn set_cap(&self, cap: usize) {
        self.0.cap.store(cap, Ordering::Relaxed);
    }

    /// Bytes held by all the stores in the pool.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, n: usize) -> bool {
        let cap = self.0.cap.load(Ordering::Relaxed);
        self.0
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&total| total <= cap)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.0.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// A claim on this pool's cap by something that is not a store (the
    /// edge's messages on their way up), holding nothing yet.
    pub fn hold(&self) -> Held {
        Held {
            pool: self.clone(),
            bytes: 0,
        }
    }
}

/// Bytes held against a [`Pool`]'s cap outside a store; given back when
/// dropped.
#[derive(Debug)]
pub struct Held {
    pool: Pool,
    bytes: usize,
}

impl Held {
    /// Holds `n` bytes more if the pool's cap allows it; false (nothing
    /// more held) if not.
    pub fn grow(&mut self, n: usize) -> bool {
        let ok = self.pool.try_reserve(n);
        if ok {
            self.bytes += n;
        }
        ok
    }

    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.pool.release(self.bytes);
    }
}

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
    /// The cap shared with other stores, if any.
    pool: Option<Pool>,
}

impl<K: Ord + Clone, V: Weighed> ByteLru<K, V> {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            tick: 0,
            values: BTreeMap::new(),
            by_use: BTreeMap::new(),
            pool: None,
        }
    }

    /// At most `cap` bytes, and within what `pool` has left.
    pub fn in_pool(cap: usize, pool: Pool) -> Self {
        let mut store = Self::new(cap);
        store.pool = Some(pool);
        store
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
    /// stored; nor is one the pool has no room for once this store's own
    /// values are gone.
    pub fn put(&mut self, key: K, value: V) {
        self.take(&key);
        let size = value.bytes();
        if size == 0 || size > self.cap {
            return;
        }
        while self.used + size > self.cap && self.evict_one() {}
        if let Some(pool) = self.pool.clone() {
            while !pool.try_reserve(size) {
                if !self.evict_one() {
                    return;
                }
            }
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
        if let Some(pool) = &self.pool {
            pool.release(value.bytes());
        }
        Some(value)
    }

    /// Evicts the least recently used value; false when there is none.
    fn evict_one(&mut self) -> bool {
        match self.by_use.pop_first() {
            Some((_, oldest)) => {
                self.take(&oldest);
                true
            }
            None => false,
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

impl<K, V> Drop for ByteLru<K, V> {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.release(self.used);
        }
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

    #[test]
    fn stores_in_a_pool_stay_under_its_cap_together_and_give_back_what_they_drop() {
        let pool = Pool::new(250);
        let mut a = ByteLru::in_pool(200, pool.clone());
        let mut b = ByteLru::in_pool(200, pool.clone());
        a.put("1", v(100));
        a.put("2", v(100));
        assert_eq!(pool.used(), 200);
        // b has nothing of its own to evict: the pool has 50 bytes left.
        b.put("x", v(100));
        assert!(b.peek(&"x").is_none());
        b.put("y", v(50));
        assert_eq!(pool.used(), 250);
        // b evicts its own value to make room, never a's.
        b.put("z", v(50));
        assert!(b.peek(&"y").is_none() && b.peek(&"z").is_some());
        assert_eq!(a.used(), 200);
        // A smaller cap applies at the next store.
        pool.set_cap(120);
        a.put("3", v(60));
        assert_eq!((a.used(), pool.used()), (60, 110));
        drop(a);
        assert_eq!(pool.used(), 50);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn a_hold_counts_against_the_pool_until_it_is_dropped() {
        let pool = Pool::new(100);
        let mut store = ByteLru::in_pool(100, pool.clone());
        let mut up = pool.hold();
        assert!(up.grow(60) && up.grow(20));
        assert!(!up.grow(21), "over the cap: nothing more held");
        assert_eq!((up.bytes(), pool.used()), (80, 80));
        // A store cannot take what a hold has.
        store.put("x", v(30));
        assert!(store.peek(&"x").is_none());
        drop(up);
        assert_eq!(pool.used(), 0);
        store.put("x", v(30));
        assert_eq!(pool.used(), 30);
    }
}
