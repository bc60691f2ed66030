//! Bodies at the client proxy: the session's mirror, fed by the edge's
//! stream, and what the proxy keeps between sessions.
//!
//! A body in the mirror is **not** delivered: it crossed the line, not the
//! last metre to the mail client. Nothing here marks anything read; the
//! session sends `Delivered` only for a body the mail client took whole.
//!
//! - [`Mirror`]: one session's bodies, complete or arriving. Chunks must
//!   arrive in order (the edge sends each body from one offset on, and
//!   offset 0 starts a body again); anything else is a broken edge and ends
//!   the session. It holds at most the prefetch budget plus what the mail
//!   client asked for and has not taken yet: a delivered body leaves it.
//! - [`Kept`]: shared by the proxy's sessions. Delivered bodies and the
//!   mirror's leftovers (prefetched and never asked for, or half received
//!   when the line was cut) stay here, least recently used evicted beyond
//!   the configured bytes, so the next session neither fetches them again
//!   nor starts a half-received body from its first byte. And which messages
//!   this mail client already received, so a keep-mode client (which never
//!   asks for them again) does not get them prefetched. Memory of one
//!   process: a restart forgets it, and costs only bytes on the line.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use causeway_cache::{ByteLru, Weighed};
use causeway_proto::session::{ListingState, MessageId, ServerListing};

/// A body's identity: its server's name and the message.
pub(crate) type Key = (String, MessageId);

/// Every message the listings name, as keys, in the unified mailbox's
/// order (`order`: server names in configuration order).
pub(crate) fn listed(order: &[String], listings: &[ServerListing]) -> Vec<Key> {
    let mut keys = Vec::new();
    for name in order {
        for l in listings.iter().filter(|l| &l.name == name) {
            if let ListingState::Ready { messages } = &l.state {
                keys.extend(messages.iter().map(|m| (name.clone(), m.id())));
            }
        }
    }
    keys
}

/// The most delivered messages remembered (about 100 bytes each).
const MAX_DELIVERED: usize = 100_000;

/// A body, complete or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub data: Vec<u8>,
    pub total: u64,
}

impl Body {
    fn is_complete(&self) -> bool {
        self.data.len() as u64 == self.total
    }
}

/// One session's bodies.
#[derive(Default)]
pub(crate) struct Mirror {
    bodies: BTreeMap<Key, Body>,
    /// Bodies a chunk arrived for in this session: the edge streams each
    /// to its end (its outbox never drops a body half sent).
    streamed: BTreeSet<Key>,
    /// Body bytes received in this session (what `Window` reports).
    pub received: u64,
}

impl Mirror {
    /// Adds a chunk. Returns true when it completed its body. A chunk out
    /// of order, a body over `max` bytes, or one whose length changes is an
    /// error that names what was wrong.
    pub fn chunk(
        &mut self,
        key: Key,
        offset: u64,
        total: u64,
        data: &[u8],
        max: u64,
    ) -> Result<bool, String> {
        if total > max {
            return Err(format!(
                "the edge sent a body of {total} bytes; at most {max} are accepted"
            ));
        }
        self.streamed.insert(key.clone());
        let body = self.bodies.entry(key).or_insert(Body {
            data: Vec::new(),
            total,
        });
        if offset == 0 {
            body.data.clear();
            body.total = total;
        }
        let held = body.data.len() as u64;
        if offset != held || total != body.total || held + data.len() as u64 > total {
            return Err(format!(
                "the edge sent bytes {offset}..{} of a {total}-byte body; {held} of {} were held",
                offset + data.len() as u64,
                body.total
            ));
        }
        body.data.extend_from_slice(data);
        self.received += data.len() as u64;
        Ok(body.is_complete())
    }

    /// The body of `key` if it is here whole.
    pub fn complete(&self, key: &Key) -> Option<&[u8]> {
        self.bodies
            .get(key)
            .filter(|b| b.is_complete())
            .map(|b| b.data.as_slice())
    }

    /// True if `key` is on its way: part of it came in this session, and
    /// the rest will follow without being asked for.
    pub fn arriving(&self, key: &Key) -> bool {
        self.streamed.contains(key) && self.complete(key).is_none()
    }

    /// The bodies [`Mirror::arriving`].
    pub fn arriving_keys(&self) -> impl Iterator<Item = &Key> {
        self.streamed.iter().filter(|k| self.complete(k).is_none())
    }

    /// Bytes of `key` held (complete or not).
    pub fn held(&self, key: &Key) -> u64 {
        self.so_far(key).len() as u64
    }

    /// What is held of `key`, from its first byte (complete or not).
    pub fn so_far(&self, key: &Key) -> &[u8] {
        self.bodies.get(key).map_or(&[], |b| b.data.as_slice())
    }

    pub fn take(&mut self, key: &Key) -> Option<Body> {
        self.streamed.remove(key);
        self.bodies.remove(key)
    }

    pub fn insert(&mut self, key: Key, body: Body) {
        self.bodies.insert(key, body);
    }

    /// Everything, for [`Kept`] at the session's end.
    pub fn drain(&mut self) -> impl Iterator<Item = (Key, Body)> + '_ {
        std::mem::take(&mut self.bodies).into_iter()
    }
}

impl Weighed for Body {
    fn bytes(&self) -> usize {
        self.data.len()
    }
}

/// What the proxy keeps between sessions; cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct Kept {
    inner: Arc<Mutex<KeptInner>>,
}

struct KeptInner {
    bodies: ByteLru<Key, Body>,
    delivered: BTreeSet<Key>,
    delivered_order: VecDeque<Key>,
}

impl Kept {
    /// Keeps at most `cap` bytes of bodies.
    pub fn new(cap: u64) -> Self {
        let inner = KeptInner {
            bodies: ByteLru::new(usize::try_from(cap).unwrap_or(usize::MAX)),
            delivered: BTreeSet::new(),
            delivered_order: VecDeque::new(),
        };
        Kept {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, KeptInner> {
        // Each change is one step: consistent after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `body` (least recently used evicted beyond the cap).
    pub fn put(&self, key: Key, body: Body) {
        self.lock().bodies.put(key, body);
    }

    /// Takes `key`'s body out (the session's mirror holds it from now on).
    pub fn take(&self, key: &Key) -> Option<Body> {
        self.lock().bodies.take(key)
    }

    /// A copy of `key`'s body if it is kept whole (it stays kept).
    pub fn complete(&self, key: &Key) -> Option<Vec<u8>> {
        let k = self.lock();
        let body = k.bodies.peek(key)?;
        body.is_complete().then(|| body.data.clone())
    }

    /// Whether the mail client received `key` in an earlier session.
    pub fn was_delivered(&self, key: &Key) -> bool {
        self.lock().delivered.contains(key)
    }

    /// Forgets `key`'s body and that it was delivered: its message was
    /// deleted, and a server may give a later message the same UIDL and
    /// size (RFC 1939 lets it reuse a UIDL once its message is gone), which
    /// must be fetched as what it is, not answered with this body (seed
    /// 319450407: the user was shown the deleted message again under the
    /// new one's UID, deleted it, and so deleted the new one unseen).
    pub fn forget(&self, key: &Key) {
        let mut k = self.lock();
        k.bodies.take(key);
        if k.delivered.remove(key) {
            k.delivered_order.retain(|d| d != key);
        }
    }

    pub fn delivered(&self, key: &Key) {
        let mut k = self.lock();
        if k.delivered.insert(key.clone()) {
            k.delivered_order.push_back(key.clone());
            if k.delivered_order.len() > MAX_DELIVERED {
                let old = k.delivered_order.pop_front().expect("not empty");
                k.delivered.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(u: &str) -> Key {
        (
            "A".into(),
            MessageId {
                uidl: u.into(),
                size: 9,
            },
        )
    }

    #[test]
    fn chunks_in_order_make_a_body_and_offset_zero_starts_again() {
        let mut m = Mirror::default();
        assert!(!m.arriving(&key("a")));
        assert_eq!(m.chunk(key("a"), 0, 6, b"abc", 100), Ok(false));
        assert_eq!(m.complete(&key("a")), None);
        assert!(m.arriving(&key("a")));
        assert_eq!(m.held(&key("a")), 3);
        assert_eq!(m.chunk(key("a"), 3, 6, b"def", 100), Ok(true));
        assert_eq!(m.complete(&key("a")), Some(&b"abcdef"[..]));
        assert!(!m.arriving(&key("a")));
        assert_eq!(m.chunk(key("a"), 0, 2, b"xy", 100), Ok(true));
        assert_eq!(m.complete(&key("a")), Some(&b"xy"[..]));
        assert_eq!(m.received, 8);
        // An empty body is complete with its one (empty) chunk.
        assert_eq!(m.chunk(key("e"), 0, 0, b"", 100), Ok(true));
    }

    #[test]
    fn a_chunk_out_of_order_or_too_long_is_refused() {
        let mut m = Mirror::default();
        m.chunk(key("a"), 0, 6, b"abc", 100).unwrap();
        let gap = m.chunk(key("a"), 4, 6, b"e", 100).unwrap_err();
        assert!(
            gap.contains("bytes 4..5 of a 6-byte body; 3 of 6 were held"),
            "{gap}"
        );
        assert!(
            m.chunk(key("a"), 3, 7, b"d", 100).is_err(),
            "length changed"
        );
        assert!(
            m.chunk(key("a"), 3, 6, b"defg", 100).is_err(),
            "past the end"
        );
        assert!(m.chunk(key("b"), 0, 101, b"", 100).is_err(), "over the cap");
        assert!(m.chunk(key("c"), 5, 10, b"x", 100).is_err(), "no start");
    }

    #[test]
    fn kept_bodies_are_bounded_and_the_oldest_go_first() {
        let k = Kept::new(100);
        let body = |n: usize| Body {
            data: vec![1; n],
            total: n as u64,
        };
        k.put(key("a"), body(40));
        k.put(key("b"), body(40));
        k.put(key("c"), body(40));
        assert!(k.take(&key("a")).is_none(), "evicted");
        assert_eq!(k.complete(&key("b")), Some(vec![1; 40]));
        assert_eq!(k.take(&key("b")), Some(body(40)));
        assert!(k.take(&key("b")).is_none(), "taken");
        k.put(key("d"), body(101));
        assert!(k.take(&key("d")).is_none(), "larger than the whole");
        assert_eq!(k.lock().bodies.used(), 40);
    }

    #[test]
    fn delivered_messages_are_remembered() {
        let k = Kept::new(0);
        assert!(!k.was_delivered(&key("a")));
        k.delivered(&key("a"));
        k.delivered(&key("a"));
        assert!(k.was_delivered(&key("a")));
        assert_eq!(k.lock().delivered_order.len(), 1);
    }

    #[test]
    fn a_deleted_messages_body_is_forgotten_for_a_later_one_of_the_same_name() {
        let kept = Kept::new(1000);
        let mut m = Mirror::default();
        m.chunk(key("a"), 0, 3, b"old", 100).unwrap();
        kept.put(key("a"), m.take(&key("a")).unwrap());
        kept.delivered(&key("a"));
        assert_eq!(kept.complete(&key("a")), Some(b"old".to_vec()));
        kept.forget(&key("a"));
        assert_eq!(kept.complete(&key("a")), None);
        assert!(!kept.was_delivered(&key("a")));
    }
}
