//! A body passed on to the mail client while it still crosses the line.
//!
//! Mail clients give a server a few minutes of silence, not more
//! (fetchmail 300 s, getmail 180 s, Thunderbird 100 s). A body of a few MB
//! on a GPRS line takes longer than that to arrive whole, so a proxy that
//! answered RETR only with the complete body would have the mail client
//! give up on every large message, forever. While the mail client waits for
//! a body, the link copies each piece of it that arrives into a [`BodyTee`]
//! and the session writes it on at once: the mail client sees its reply
//! make progress at the line's pace.
//!
//! Nothing about read marks changes: the body is delivered only when the
//! last byte and the terminator were written (and the mail client's next
//! command shows it took them). A reply that breaks off after its `+OK`
//! cannot be taken back, so the session then closes the connection: the
//! mail client sees a truncated reply, keeps the message unread, and asks
//! again next time.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::mirror::Key;

/// The pieces of one body not yet written to the mail client.
#[derive(Clone)]
pub(crate) struct BodyTee {
    key: Key,
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    more: Notify,
}

#[derive(Default)]
struct State {
    /// Bytes that arrived and are not taken yet.
    pending: Vec<u8>,
    /// Bytes of the body handed over so far (taken or pending).
    offered: u64,
}

impl BodyTee {
    /// A tee for `key`, starting with the part of it already held.
    pub fn new(key: Key, held: &[u8]) -> Self {
        let tee = BodyTee {
            key,
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                more: Notify::new(),
            }),
        };
        tee.offer(0, held);
        tee
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes `offset..` of the body arrived. Only what lies past what was
    /// offered before is new: a body the edge starts again from offset 0
    /// repeats what the mail client already has.
    pub fn offer(&self, offset: u64, data: &[u8]) {
        let mut s = self.state();
        let end = offset + data.len() as u64;
        if offset > s.offered || end <= s.offered {
            return;
        }
        let skip = (s.offered - offset) as usize;
        s.pending.extend_from_slice(&data[skip..]);
        s.offered = end;
        drop(s);
        self.inner.more.notify_one();
    }

    /// What arrived since the last call (empty if nothing did).
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.state().pending)
    }

    /// Resolves once something was offered since the last `take` (at once
    /// if it already was).
    pub async fn more(&self) {
        if !self.state().pending.is_empty() {
            return;
        }
        self.inner.more.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use causeway_proto::session::MessageId;

    use super::*;

    fn key() -> Key {
        (
            "mail1".into(),
            MessageId {
                uidl: "u".into(),
                size: 6,
            },
        )
    }

    #[test]
    fn passes_each_byte_once_across_restarts() {
        let t = BodyTee::new(key(), b"ab");
        assert_eq!(t.take(), b"ab");
        t.offer(2, b"cd");
        // The edge starts the body again: only what is new passes.
        t.offer(0, b"abc");
        t.offer(0, b"abcde");
        assert_eq!(t.take(), b"cde");
        assert_eq!(t.take(), b"");
        // A gap is never filled with the wrong bytes.
        t.offer(6, b"x");
        assert_eq!(t.take(), b"");
    }
}
