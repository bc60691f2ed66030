//! What the store remembers about messages, sessions and locks, as plain
//! values the test harness can hold on to.
//!
//! The harness checks invariants such as "a message the client saw deleted
//! was deleted by the session that said DELE, and only at its QUIT". To check
//! that it needs to know *who* did what: every record names the session that
//! caused a change. Records are snapshots (cloned out of the store), so a test
//! can compare before and after without holding the store's lock.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::Uidl;

/// Names one POP3 session, unique for the life of a [`crate::MailStore`]
/// (across server restarts too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A message's `sha256` as its record holds it: lowercase hex SHA-256 of
/// its bytes. Whoever knows a message by its bytes (a mail user over IMAP)
/// names it this way, so the two always agree.
pub fn content_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Everything known about one delivered message. Messages are never removed
/// from the record: a deleted message keeps its record with `deleted_by` set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub user: String,
    pub uidl: Uidl,
    /// The per-mailbox UID the UIDL was made from.
    pub uid: u32,
    /// SHA-256 of the exact bytes a RETR returns, lowercase hex.
    pub sha256: String,
    /// Octets as sent: the size `LIST` and `STAT` report.
    pub size: usize,
    /// Store-wide delivery order, starting at 1.
    pub delivery_seq: u64,
    /// Wall-clock delivery time (env `unix_millis`), if the deliverer gave one.
    pub delivered_at_ms: Option<u64>,
    /// The session whose UPDATE (or abrupt close, if so configured, or an
    /// IMAP FETCH or STORE, or another device) set the seen flag, and when
    /// (env `unix_millis`); `None` while the message is unread. An IMAP
    /// client may take `\Seen` away again ([`MessageRecord::unset_seen`]):
    /// the flag then goes, and a later read sets it anew.
    pub seen_by: Option<SessionId>,
    pub seen_at_ms: Option<u64>,
    /// The session whose UPDATE removed the message, and when.
    pub deleted_by: Option<SessionId>,
    pub deleted_at_ms: Option<u64>,
    /// IMAP's `\Deleted`, set by another mail client that has not expunged
    /// it (yet): an EXPUNGE that is not limited to UIDs removes it too. The
    /// POP3 model ignores it.
    pub flagged_elsewhere: bool,
    /// The IMAP session whose APPEND stored the message (none for mail
    /// delivered from outside).
    pub appended_by: Option<SessionId>,
    /// IMAP flags other than `\Seen` and `\Deleted` (`\Flagged`,
    /// `\Answered`, `\Draft`, keywords), as `STORE`s left them, each set or
    /// taken away at once (not at a commit).
    pub flags: BTreeSet<String>,
    /// Every `STORE` of those flags, and every change of `\Seen`, in the
    /// order the store took them: what a message showed at a past moment
    /// (the simulation's oracle asks).
    pub flag_stores: Vec<FlagStored>,
}

/// One `STORE` of some of a message's [`MessageRecord::flags`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagStored {
    /// Env `unix_millis`.
    pub at_ms: u64,
    pub add: bool,
    pub flags: Vec<String>,
}

/// `\Seen` as [`FlagStored`] names it.
const SEEN: &str = "\\Seen";

impl MessageRecord {
    /// `by` reads the message at `now_ms` (nothing if it is read already:
    /// the first cause stays). True if that changed it.
    pub(crate) fn set_seen(&mut self, by: SessionId, now_ms: u64) -> bool {
        if self.seen_by.is_some() {
            return false;
        }
        self.seen_by = Some(by);
        self.seen_at_ms = Some(now_ms);
        self.seen_changed(true, now_ms);
        true
    }

    /// An IMAP `STORE -FLAGS (\Seen)` at `now_ms`: the message is unread
    /// again. True if that changed it.
    pub(crate) fn unset_seen(&mut self, now_ms: u64) -> bool {
        if self.seen_by.take().is_none() {
            return false;
        }
        self.seen_at_ms = None;
        self.seen_changed(false, now_ms);
        true
    }

    fn seen_changed(&mut self, add: bool, at_ms: u64) {
        self.flag_stores.push(FlagStored {
            at_ms,
            add,
            flags: vec![SEEN.to_owned()],
        });
    }

    /// Whether the message had `flag` just after the store took everything
    /// stored up to `at_ms`, inclusive.
    pub fn had_flag_at(&self, flag: &str, at_ms: u64) -> bool {
        let mut had = false;
        for s in self.flag_stores.iter().take_while(|s| s.at_ms <= at_ms) {
            if s.flags.iter().any(|f| f == flag) {
                had = s.add;
            }
        }
        had
    }

    /// Whether the message had `flag` at some moment from `from_ms` to
    /// `to_ms` (both included) and whether it lacked it at some moment.
    pub fn flag_between(&self, flag: &str, from_ms: u64, to_ms: u64) -> (bool, bool) {
        let at_start = self.had_flag_at(flag, from_ms);
        let (mut with, mut without) = (at_start, !at_start);
        let later = self
            .flag_stores
            .iter()
            .filter(|s| s.at_ms > from_ms && s.at_ms <= to_ms);
        for s in later.filter(|s| s.flags.iter().any(|f| f == flag)) {
            with |= s.add;
            without |= !s.add;
        }
        (with, without)
    }
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndKind {
    /// The client said QUIT and got its answer.
    Quit,
    /// The connection ended without QUIT: EOF, a socket error, or a fault the
    /// server injected.
    Abrupt,
    /// The client was silent for the idle timeout; the server hung up.
    IdleTimeout,
    /// The server went away under the session (task dropped, host crashed).
    ServerShutdown,
}

impl fmt::Display for EndKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndKind::Quit => "quit",
            EndKind::Abrupt => "abrupt",
            EndKind::IdleTimeout => "idle-timeout",
            EndKind::ServerShutdown => "server-shutdown",
        })
    }
}

/// A fault the server injected into a session (see [`crate::Faults`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// The server sat on a reply for this long.
    Stall(Duration),
    /// The server hung up after sending `sent` of the `of` octets of a reply.
    DropMidResponse { sent: usize, of: usize },
    /// The server answered QUIT with `-ERR` and committed nothing.
    QuitRefused,
}

/// How and when a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionEnd {
    pub kind: EndKind,
    pub at_ms: u64,
}

/// One POP3 connection, from greeting to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub peer: SocketAddr,
    /// The user it logged in as (`None` if it never did).
    pub user: Option<String>,
    pub started_ms: u64,
    /// `None` while the session is live.
    pub end: Option<SessionEnd>,
    /// The commands it ran, in order, with passwords redacted. Bounded: see
    /// `commands_dropped`.
    pub commands: Vec<String>,
    /// Commands not kept because the log was full.
    pub commands_dropped: u64,
    pub faults: Vec<InjectedFault>,
    /// Messages it deleted at its UPDATE.
    pub deleted: Vec<Uidl>,
    /// Messages whose seen flag it committed.
    pub marked_seen: Vec<Uidl>,
}

impl SessionRecord {
    pub fn end_kind(&self) -> Option<EndKind> {
        self.end.map(|e| e.kind)
    }

    pub fn is_live(&self) -> bool {
        self.end.is_none()
    }
}

/// A maildrop lock, as `MailStore::locks_held` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub user: String,
    pub session: SessionId,
    pub acquired_ms: u64,
    /// Set once the holder ended abruptly: the lock is stale and is broken
    /// at this time.
    pub stale_until_ms: Option<u64>,
}

impl LockInfo {
    pub fn is_stale(&self) -> bool {
        self.stale_until_ms.is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::{MailStore, SessionId};

    #[test]
    fn a_flag_is_had_from_its_store_until_one_takes_it_away() {
        let s = MailStore::new();
        s.add_user("alice", "pw");
        let u = s.deliver("alice", "1").unwrap();
        let uid = s.message("alice", u.as_str()).unwrap().uid;
        let flags = |fs: &[&str]| fs.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
        s.store_flags("alice", uid, true, &flags(&["\\Flagged", "\\Answered"]), 10);
        s.store_flags("alice", uid, false, &flags(&["\\Answered"]), 20);
        s.store_flags("alice", uid, false, &flags(&["\\Flagged"]), 30);
        let r = s.message("alice", u.as_str()).unwrap();
        assert_eq!(r.flag_stores.len(), 3);
        assert!(!r.had_flag_at("\\Flagged", 9));
        assert!(r.had_flag_at("\\Flagged", 10));
        assert!(r.had_flag_at("\\Flagged", 29));
        assert!(!r.had_flag_at("\\Flagged", 30));
        assert!(!r.had_flag_at("\\Answered", 25));
        // Between: what it had at the start, and what any store within set.
        assert_eq!(r.flag_between("\\Flagged", 0, 9), (false, true));
        assert_eq!(r.flag_between("\\Flagged", 0, 10), (true, true));
        assert_eq!(r.flag_between("\\Flagged", 11, 29), (true, false));
        assert_eq!(r.flag_between("\\Flagged", 25, 40), (true, true));
        assert_eq!(r.flag_between("\\Flagged", 30, 40), (false, true));
        assert_eq!(r.flag_between("\\Draft", 0, 40), (false, true));
    }

    #[test]
    fn seen_is_had_from_a_read_until_it_is_taken_away_and_a_new_read_is_its_own() {
        let s = MailStore::new();
        s.add_user("alice", "pw");
        let u = s.deliver("alice", "1").unwrap();
        let uid = s.message("alice", u.as_str()).unwrap().uid;
        s.read_elsewhere("alice", uid, SessionId(7), 10);
        s.read_elsewhere("alice", uid, SessionId(8), 15);
        let mut r = s.message("alice", u.as_str()).unwrap();
        assert_eq!((r.seen_by, r.seen_at_ms), (Some(SessionId(7)), Some(10)));
        assert!(r.unset_seen(20) && !r.unset_seen(25));
        assert_eq!((r.seen_by, r.seen_at_ms), (None, None));
        assert!(r.set_seen(SessionId(9), 30));
        assert_eq!((r.seen_by, r.seen_at_ms), (Some(SessionId(9)), Some(30)));
        assert_eq!(r.flag_between("\\Seen", 0, 9), (false, true));
        assert_eq!(r.flag_between("\\Seen", 11, 19), (true, false));
        assert_eq!(r.flag_between("\\Seen", 21, 29), (false, true));
        assert_eq!(r.flag_between("\\Seen", 15, 30), (true, true));
    }
}
