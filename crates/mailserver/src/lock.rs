//! Exclusive maildrop locks, kept in the store like a lock file on disk.
//!
//! RFC 1939 lets a server lock the maildrop for a whole session, and many do.
//! What matters to a proxy that reconnects after a line drop is what happens
//! to that lock when the old connection dies without QUIT: the server may keep
//! it for minutes (a stale lock), so the reconnect is refused with `[IN-USE]`.
//! The table lives in the [`crate::MailStore`], not in the server, so it
//! outlives a server restart exactly like a lock file would, and stale locks
//! are judged lazily against wall-clock time whenever someone asks.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::record::{LockInfo, SessionId};

#[derive(Debug, Default)]
pub(crate) struct LockTable {
    locks: BTreeMap<String, Lock>,
}

#[derive(Debug, Clone)]
struct Lock {
    session: SessionId,
    acquired_ms: u64,
    stale_until_ms: Option<u64>,
}

impl Lock {
    fn expired(&self, now_ms: u64) -> bool {
        self.stale_until_ms.is_some_and(|t| now_ms >= t)
    }

    fn info(&self, user: &str) -> LockInfo {
        LockInfo {
            user: user.to_owned(),
            session: self.session,
            acquired_ms: self.acquired_ms,
            stale_until_ms: self.stale_until_ms,
        }
    }
}

impl LockTable {
    /// Takes `user`'s lock for `session`, breaking it first if it is stale and
    /// past its time. On refusal returns the holder.
    pub(crate) fn try_acquire(
        &mut self,
        user: &str,
        session: SessionId,
        now_ms: u64,
    ) -> Result<(), LockInfo> {
        if let Some(l) = self.locks.get(user) {
            if !l.expired(now_ms) {
                return Err(l.info(user));
            }
        }
        self.locks.insert(
            user.to_owned(),
            Lock {
                session,
                acquired_ms: now_ms,
                stale_until_ms: None,
            },
        );
        Ok(())
    }

    /// The holder `session` is gone. With `stale_for` zero the lock goes at
    /// once; otherwise it stays, stale, for that long. A lock held by another
    /// session is left alone.
    pub(crate) fn release(
        &mut self,
        user: &str,
        session: SessionId,
        stale_for: Duration,
        now_ms: u64,
    ) {
        let Some(l) = self.locks.get_mut(user) else {
            return;
        };
        if l.session != session {
            return;
        }
        if stale_for.is_zero() {
            self.locks.remove(user);
        } else {
            let ms = u64::try_from(stale_for.as_millis()).unwrap_or(u64::MAX);
            l.stale_until_ms = Some(now_ms.saturating_add(ms));
        }
    }

    /// Locks in force at `now_ms` (stale ones included until they expire).
    pub(crate) fn held(&self, now_ms: u64) -> Vec<LockInfo> {
        self.locks
            .iter()
            .filter(|(_, l)| !l.expired(now_ms))
            .map(|(u, l)| l.info(u))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: SessionId = SessionId(1);
    const S2: SessionId = SessionId(2);

    #[test]
    fn second_holder_is_refused_until_release() {
        let mut t = LockTable::default();
        t.try_acquire("alice", S1, 0).unwrap();
        assert_eq!(t.try_acquire("alice", S2, 1).unwrap_err().session, S1);
        t.try_acquire("bob", S2, 1).unwrap();
        t.release("alice", S1, Duration::ZERO, 2);
        t.try_acquire("alice", S2, 3).unwrap();
    }

    #[test]
    fn stale_lock_lasts_its_time_then_breaks() {
        let mut t = LockTable::default();
        t.try_acquire("alice", S1, 1_000).unwrap();
        t.release("alice", S1, Duration::from_secs(600), 2_000);
        let held = t.held(2_000);
        assert_eq!(held.len(), 1);
        assert!(held[0].is_stale());
        assert!(t.try_acquire("alice", S2, 601_999).is_err());
        assert!(t.held(602_000).is_empty());
        t.try_acquire("alice", S2, 602_000).unwrap();
        assert!(!t.held(602_000)[0].is_stale());
    }

    #[test]
    fn release_by_a_non_holder_changes_nothing() {
        let mut t = LockTable::default();
        t.try_acquire("alice", S1, 0).unwrap();
        t.release("alice", S2, Duration::ZERO, 1);
        assert_eq!(t.held(1).len(), 1);
    }
}
