//! The maildrops, and the record of everything that happened to them.
//!
//! One [`MailStore`] is shared (it is a cheap handle) between the server's
//! session tasks, the code that delivers new mail, and the test harness that
//! checks what happened. Create it outside a turmoil host's closure: then it
//! plays the part of the disk, and survives the server host crashing and
//! restarting, locks and all.
//!
//! The store itself has no clock. Callers pass wall-clock milliseconds from
//! their env (`Env::unix_millis`), the time a lock file's mtime would be
//! compared against.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use causeway_net::EnvRng;

use crate::lock::LockTable;
use crate::record::{
    EndKind, FlagStored, InjectedFault, LockInfo, MessageRecord, SessionEnd, SessionId,
    SessionRecord, content_sha256,
};
use crate::{Uidl, UidlFormat};

/// Commands kept per session before the log stops growing.
pub const COMMAND_LOG_LIMIT: usize = 256;

/// Why the store refused something.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("no such user {0:?} in the mail store (add it with MailStore::add_user)")]
    UnknownUser(String),
}

/// The maildrop that holds `user`'s IMAP folder `folder`: the user's own
/// (the one POP3 serves) for INBOX, `user/folder` for any other. Only IMAP
/// reaches another folder; the record names its sessions' maildrops so.
pub fn folder_maildrop(user: &str, folder: &str) -> String {
    if folder.eq_ignore_ascii_case("INBOX") {
        user.to_owned()
    } else {
        format!("{user}/{folder}")
    }
}

/// A cheap, cloneable handle on the shared maildrops and their history.
#[derive(Clone)]
pub struct MailStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    rng: EnvRng,
    uidl_format: UidlFormat,
    mailboxes: BTreeMap<String, Mailbox>,
    sessions: BTreeMap<SessionId, SessionRecord>,
    locks: LockTable,
    next_session: u64,
    /// Configured faults are injected only while this is true: a test
    /// harness turns them off for its quiet phase.
    faults_enabled: bool,
    next_delivery: u64,
    /// The latest time any caller has told us about: our best guess at "now"
    /// when a session is torn down with nobody around to read a clock.
    last_seen_ms: u64,
}

struct Mailbox {
    password: String,
    uidvalidity: u32,
    next_uid: u32,
    messages: BTreeMap<u32, Stored>,
}

struct Stored {
    record: MessageRecord,
    body: Arc<[u8]>,
}

/// One message as a session sees it: fixed at login.
#[derive(Clone, Debug)]
pub(crate) struct SnapMsg {
    pub(crate) uid: u32,
    pub(crate) uidl: Uidl,
    pub(crate) size: usize,
    /// Marked seen by some session's commit (IMAP's `\Seen`).
    pub(crate) seen: bool,
    /// Flagged `\Deleted` by another mail client (IMAP only).
    pub(crate) flagged_elsewhere: bool,
    /// IMAP's other flags, as `STORE`s left them (see `MessageRecord`).
    pub(crate) flags: BTreeSet<String>,
}

/// What a session's UPDATE (or abrupt end) writes to the store.
#[derive(Debug, Default)]
pub(crate) struct Commit {
    pub(crate) delete: Vec<u32>,
    pub(crate) seen: Vec<u32>,
}

/// Why a correct password still did not log in.
#[derive(Debug)]
pub(crate) enum LoginRefused {
    Locked(LockInfo),
}

impl Default for MailStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MailStore {
    /// An empty store. UIDVALIDITYs come from a fixed-seed generator, so runs
    /// replay; use [`MailStore::with_rng`] to draw them from an env instead.
    pub fn new() -> Self {
        Self::from_rng(EnvRng::from_seed([0x5a; 32]))
    }

    /// Draws UIDVALIDITYs from a generator forked off `rng` (e.g.
    /// `env.rng()`, or a seeded `EnvRng` in a simulation harness).
    pub fn with_rng(rng: &EnvRng) -> Self {
        Self::from_rng(rng.fork())
    }

    fn from_rng(rng: EnvRng) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                rng,
                uidl_format: UidlFormat::default(),
                mailboxes: BTreeMap::new(),
                sessions: BTreeMap::new(),
                locks: LockTable::default(),
                next_session: 1,
                faults_enabled: true,
                next_delivery: 1,
                last_seen_ms: 0,
            })),
        }
    }

    /// Turns the server's configured faults (delays, stalls, drops) on or
    /// off for every session from now on, e.g. off for a simulation's quiet
    /// phase, so that "quiet" means the servers too. On by default.
    pub fn set_faults_enabled(&self, on: bool) {
        self.lock().faults_enabled = on;
    }

    pub fn faults_enabled(&self) -> bool {
        self.lock().faults_enabled
    }

    /// Spells UIDLs of every mailbox this way (set it before delivering).
    pub fn with_uidl_format(self, format: UidlFormat) -> Self {
        self.lock().uidl_format = format;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the maps consistent
        // (every mutation is a single insert or field write), so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates `user`'s empty maildrop, drawing its UIDVALIDITY. For an
    /// existing user only the password changes.
    pub fn add_user(&self, user: &str, password: &str) {
        let mut g = self.lock();
        if let Some(mb) = g.mailboxes.get_mut(user) {
            mb.password = password.to_owned();
            return;
        }
        // Never zero: RFC 3501 forbids a zero UIDVALIDITY.
        let uidvalidity = g.rng.range(1, u64::from(u32::MAX)) as u32;
        g.mailboxes.insert(
            user.to_owned(),
            Mailbox {
                password: password.to_owned(),
                uidvalidity,
                next_uid: 1,
                messages: BTreeMap::new(),
            },
        );
    }

    /// Adds `user`'s IMAP folder `folder` (empty, with its own UIDVALIDITY)
    /// and returns the name of its maildrop ([`folder_maildrop`]), to
    /// deliver to and look into. `user` must exist.
    pub fn add_folder(&self, user: &str, folder: &str) -> String {
        let name = folder_maildrop(user, folder);
        let password = self
            .lock()
            .mailboxes
            .get(user)
            .map(|mb| mb.password.clone());
        self.add_user(&name, &password.expect("the folder's user exists"));
        name
    }

    /// The names of `user`'s folders other than INBOX, sorted.
    pub(crate) fn folders_of(&self, user: &str) -> Vec<String> {
        // `user/`: every folder's maildrop name starts so.
        let prefix = folder_maildrop(user, "");
        self.lock()
            .mailboxes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    /// Whether a maildrop of this name exists (a user's, or a folder's).
    pub(crate) fn has_maildrop(&self, name: &str) -> bool {
        self.lock().mailboxes.contains_key(name)
    }

    /// Delivers a message into `user`'s maildrop, at once, even while sessions
    /// are open (they will see it next time). Bare LF line ends become CRLF
    /// and a missing final CRLF is added: the stored bytes are exactly what a
    /// RETR returns, and their length is the size LIST reports.
    pub fn deliver(&self, user: &str, body: impl AsRef<[u8]>) -> Result<Uidl, StoreError> {
        self.deliver_inner(user, body.as_ref(), None, None)
    }

    /// [`MailStore::deliver`] with a UIDL the caller chooses: a long one, or
    /// one another message already has (servers after a broken migration do
    /// list duplicates). Returns the message's UID, which stays unique.
    pub fn deliver_with_uidl(
        &self,
        user: &str,
        body: impl AsRef<[u8]>,
        uidl: &str,
        at_ms: Option<u64>,
    ) -> Result<u32, StoreError> {
        self.deliver_inner(user, body.as_ref(), at_ms, Some(Uidl::from(uidl)))?;
        let g = self.lock();
        Ok(g.mailboxes[user].next_uid - 1)
    }

    /// [`MailStore::deliver`], recording the delivery's wall-clock time.
    pub fn deliver_at(
        &self,
        user: &str,
        body: impl AsRef<[u8]>,
        at_ms: u64,
    ) -> Result<Uidl, StoreError> {
        self.deliver_inner(user, body.as_ref(), Some(at_ms), None)
    }

    fn deliver_inner(
        &self,
        user: &str,
        body: &[u8],
        at_ms: Option<u64>,
        uidl: Option<Uidl>,
    ) -> Result<Uidl, StoreError> {
        // The same normalisation the POP3 codec applies when it sends a body,
        // so the stored bytes are exactly what a client's RETR gets back.
        let body = causeway_pop3::multiline::normalise(body);
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(t) = at_ms {
            g.last_seen_ms = g.last_seen_ms.max(t);
        }
        let mb = g
            .mailboxes
            .get_mut(user)
            .ok_or_else(|| StoreError::UnknownUser(user.to_owned()))?;
        let uid = mb.next_uid;
        mb.next_uid += 1;
        let uidl = uidl.unwrap_or_else(|| g.uidl_format.format(uid, mb.uidvalidity));
        let seq = g.next_delivery;
        g.next_delivery += 1;
        let record = MessageRecord {
            user: user.to_owned(),
            uidl: uidl.clone(),
            uid,
            sha256: content_sha256(&body),
            size: body.len(),
            delivery_seq: seq,
            delivered_at_ms: at_ms,
            seen_by: None,
            seen_at_ms: None,
            deleted_by: None,
            deleted_at_ms: None,
            flagged_elsewhere: false,
            appended_by: None,
            flags: BTreeSet::new(),
            flag_stores: Vec::new(),
        };
        mb.messages.insert(
            uid,
            Stored {
                record,
                body: body.into(),
            },
        );
        Ok(uidl)
    }

    /// An IMAP APPEND by session `by` into `maildrop` (a user's, or a
    /// folder's: [`folder_maildrop`]), with `\Seen` and `\Deleted` as the
    /// command set them. Returns the folder's UIDVALIDITY and the new UID.
    pub(crate) fn append(
        &self,
        by: SessionId,
        maildrop: &str,
        body: &[u8],
        (seen, deleted): (bool, bool),
        now_ms: u64,
    ) -> Result<(u32, u32), StoreError> {
        self.deliver_inner(maildrop, body, Some(now_ms), None)?;
        let mut g = self.lock();
        let mb = g.mailboxes.get_mut(maildrop).expect("delivered just now");
        let uid = mb.next_uid - 1;
        let uidvalidity = mb.uidvalidity;
        let r = &mut mb
            .messages
            .get_mut(&uid)
            .expect("delivered just now")
            .record;
        r.appended_by = Some(by);
        r.flagged_elsewhere = deleted;
        if seen {
            r.set_seen(by, now_ms);
        }
        Ok((uidvalidity, uid))
    }

    fn find<'a>(g: &'a Inner, user: &str, uidl: &str) -> Option<&'a Stored> {
        g.mailboxes
            .get(user)?
            .messages
            .values()
            .find(|s| s.record.uidl == uidl)
    }

    /// The record of `user`'s message with this UID, deleted or not.
    pub fn message_by_uid(&self, user: &str, uid: u32) -> Option<MessageRecord> {
        let g = self.lock();
        g.mailboxes
            .get(user)?
            .messages
            .get(&uid)
            .map(|s| s.record.clone())
    }

    /// The bytes RETR returns for `user`'s message with this UID.
    pub fn body_by_uid_copy(&self, user: &str, uid: u32) -> Option<Vec<u8>> {
        self.body_by_uid(user, uid).map(|b| b.to_vec())
    }

    /// The record of the first message ever delivered to `user` with this
    /// UIDL, deleted or not (with duplicate UIDLs, see
    /// [`MailStore::message_by_uid`]).
    pub fn message(&self, user: &str, uidl: &str) -> Option<MessageRecord> {
        Self::find(&self.lock(), user, uidl).map(|s| s.record.clone())
    }

    /// The exact bytes RETR returns for this message (kept after deletion).
    pub fn body(&self, user: &str, uidl: &str) -> Option<Vec<u8>> {
        Self::find(&self.lock(), user, uidl).map(|s| s.body.to_vec())
    }

    /// Delivered and not deleted.
    pub fn is_present(&self, user: &str, uidl: &str) -> bool {
        self.message(user, uidl)
            .is_some_and(|m| m.deleted_by.is_none())
    }

    /// The seen flag, as committed to the store.
    pub fn is_seen(&self, user: &str, uidl: &str) -> bool {
        self.message(user, uidl)
            .is_some_and(|m| m.seen_by.is_some())
    }

    /// Every message ever delivered to `user`, in UID order.
    pub fn messages(&self, user: &str) -> Vec<MessageRecord> {
        self.lock()
            .mailboxes
            .get(user)
            .map(|mb| mb.messages.values().map(|s| s.record.clone()).collect())
            .unwrap_or_default()
    }

    /// An IMAP `STORE` adds (`add`) or takes away `flags`
    /// (other than `\Seen` and `\Deleted`) of `maildrop`'s message `uid`,
    /// at `now_ms`; a message no longer there is left alone. Tests call it
    /// for another device of the user too.
    pub fn store_flags(&self, maildrop: &str, uid: u32, add: bool, flags: &[String], now_ms: u64) {
        let mut g = self.lock();
        let Some(s) = g
            .mailboxes
            .get_mut(maildrop)
            .and_then(|mb| mb.messages.get_mut(&uid))
            .filter(|s| s.record.deleted_by.is_none())
        else {
            return;
        };
        for f in flags {
            if add {
                s.record.flags.insert(f.clone());
            } else {
                s.record.flags.remove(f);
            }
        }
        s.record.flag_stores.push(FlagStored {
            at_ms: now_ms,
            add,
            flags: flags.to_vec(),
        });
    }

    /// Another device of the user (not a session of this server's record)
    /// reads message `uid`: `\Seen`, by `by`, at `now_ms`.
    pub fn read_elsewhere(&self, maildrop: &str, uid: u32, by: SessionId, now_ms: u64) {
        let mut g = self.lock();
        let m = g
            .mailboxes
            .get_mut(maildrop)
            .and_then(|mb| mb.messages.get_mut(&uid));
        if let Some(s) = m {
            s.record.set_seen(by, now_ms);
        }
    }

    /// Another mail client flags `user`'s message `uid` `\Deleted` (IMAP),
    /// or (`on` false) takes its flags back from every message.
    pub fn flag_deleted_elsewhere(&self, user: &str, uid: Option<u32>, on: bool) {
        let mut g = self.lock();
        let Some(mb) = g.mailboxes.get_mut(user) else {
            return;
        };
        for (u, s) in mb.messages.iter_mut() {
            if uid.is_none_or(|x| x == *u) {
                s.record.flagged_elsewhere = on;
            }
        }
    }

    /// UIDs of `user`'s present messages another client flagged `\Deleted`.
    pub(crate) fn flagged_elsewhere(&self, user: &str) -> Vec<u32> {
        self.messages(user)
            .into_iter()
            .filter(|m| m.flagged_elsewhere && m.deleted_by.is_none())
            .map(|m| m.uid)
            .collect()
    }

    /// UIDLs of `user`'s messages not deleted, in UID (= delivery) order.
    pub fn present_uidls(&self, user: &str) -> Vec<Uidl> {
        self.messages(user)
            .into_iter()
            .filter(|m| m.deleted_by.is_none())
            .map(|m| m.uidl)
            .collect()
    }

    /// Every session ever started, in start order.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.lock().sessions.values().cloned().collect()
    }

    pub fn session(&self, id: SessionId) -> Option<SessionRecord> {
        self.lock().sessions.get(&id).cloned()
    }

    /// Sessions that have not ended.
    pub fn live_sessions(&self) -> Vec<SessionRecord> {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.is_live())
            .cloned()
            .collect()
    }

    /// Maildrop locks in force at `now_ms` (env `unix_millis`), stale ones
    /// included until they expire.
    pub fn locks_held(&self, now_ms: u64) -> Vec<LockInfo> {
        self.lock().locks.held(now_ms)
    }

    /// A readable summary of everything, for assertion messages.
    pub fn report(&self) -> String {
        self.to_string()
    }

    // ---- used by sessions ----

    pub(crate) fn last_seen_ms(&self) -> u64 {
        self.lock().last_seen_ms
    }

    pub(crate) fn begin_session(&self, peer: SocketAddr, now_ms: u64) -> SessionId {
        let mut g = self.lock();
        g.last_seen_ms = g.last_seen_ms.max(now_ms);
        let id = SessionId(g.next_session);
        g.next_session += 1;
        g.sessions.insert(
            id,
            SessionRecord {
                id,
                peer,
                user: None,
                started_ms: now_ms,
                end: None,
                commands: Vec::new(),
                commands_dropped: 0,
                faults: Vec::new(),
                deleted: Vec::new(),
                marked_seen: Vec::new(),
            },
        );
        id
    }

    pub(crate) fn log_command(&self, id: SessionId, line: String) {
        if let Some(s) = self.lock().sessions.get_mut(&id) {
            if s.commands.len() < COMMAND_LOG_LIMIT {
                s.commands.push(line);
            } else {
                s.commands_dropped += 1;
            }
        }
    }

    pub(crate) fn record_fault(&self, id: SessionId, fault: InjectedFault) {
        if let Some(s) = self.lock().sessions.get_mut(&id) {
            s.faults.push(fault);
        }
    }

    /// Constant-shape check: unknown user and wrong password look the same
    /// to the caller.
    pub(crate) fn password_ok(&self, user: &str, password: &[u8]) -> bool {
        self.lock()
            .mailboxes
            .get(user)
            .is_some_and(|mb| mb.password.as_bytes() == password)
    }

    /// Logs `id` in as `user`: takes the lock if `exclusive`, and returns the
    /// maildrop as it is now (the session's snapshot).
    pub(crate) fn login(
        &self,
        id: SessionId,
        user: &str,
        exclusive: bool,
        now_ms: u64,
    ) -> Result<Vec<SnapMsg>, LoginRefused> {
        let mut g = self.lock();
        let g = &mut *g;
        g.last_seen_ms = g.last_seen_ms.max(now_ms);
        if exclusive {
            g.locks
                .try_acquire(user, id, now_ms)
                .map_err(LoginRefused::Locked)?;
        }
        if let Some(s) = g.sessions.get_mut(&id) {
            s.user = Some(user.to_owned());
        }
        let snap = g
            .mailboxes
            .get(user)
            .map(|mb| {
                mb.messages
                    .values()
                    .filter(|s| s.record.deleted_by.is_none())
                    .map(|s| SnapMsg {
                        uid: s.record.uid,
                        uidl: s.record.uidl.clone(),
                        size: s.record.size,
                        seen: s.record.seen_by.is_some(),
                        flagged_elsewhere: s.record.flagged_elsewhere,
                        flags: s.record.flags.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(snap)
    }

    /// The bytes of `user`'s message `uid`. Served even if another session
    /// deleted it meanwhile: the snapshot promised it.
    pub(crate) fn body_by_uid(&self, user: &str, uid: u32) -> Option<Arc<[u8]>> {
        let g = self.lock();
        g.mailboxes
            .get(user)?
            .messages
            .get(&uid)
            .map(|s| s.body.clone())
    }

    /// Ends session `id`: applies `commit` (first writer wins: a message
    /// already deleted or seen keeps its first cause), releases its lock
    /// (`stale_for` zero: at once; else left stale that long; `None`: it held
    /// none) and records the end. Returns how many messages it deleted.
    pub(crate) fn end_session(
        &self,
        id: SessionId,
        kind: EndKind,
        now_ms: u64,
        commit: Commit,
        stale_for: Option<Duration>,
    ) -> usize {
        let mut g = self.lock();
        let g = &mut *g;
        g.last_seen_ms = g.last_seen_ms.max(now_ms);
        let Some(sess) = g.sessions.get_mut(&id) else {
            return 0;
        };
        if sess.end.is_some() {
            return 0;
        }
        sess.end = Some(SessionEnd {
            kind,
            at_ms: now_ms,
        });
        let Some(user) = sess.user.clone() else {
            return 0;
        };
        if let Some(mb) = g.mailboxes.get_mut(&user) {
            apply(mb, sess, &commit, now_ms);
        }
        if let Some(d) = stale_for {
            g.locks.release(&user, id, d, now_ms);
        }
        sess.deleted.len()
    }
}

impl MailStore {
    /// Applies `commit` for live session `id` at once (IMAP: a STORE or an
    /// EXPUNGE takes effect when it is answered, not at the session's end).
    /// Returns the UIDs it deleted (first writer wins, as at a POP3 UPDATE).
    pub(crate) fn commit_now(&self, id: SessionId, now_ms: u64, commit: &Commit) -> Vec<u32> {
        let mut g = self.lock();
        let g = &mut *g;
        g.last_seen_ms = g.last_seen_ms.max(now_ms);
        let Some(sess) = g.sessions.get_mut(&id) else {
            return Vec::new();
        };
        let Some(mb) = sess.user.as_ref().and_then(|u| g.mailboxes.get_mut(u)) else {
            return Vec::new();
        };
        apply(mb, sess, commit, now_ms)
    }

    /// An IMAP `STORE -FLAGS (\\Seen)` by session `id` on its maildrop's
    /// messages `uids`, at `now_ms`: unread again (an expunged one is left
    /// alone).
    pub(crate) fn unseen_now(&self, id: SessionId, now_ms: u64, uids: &[u32]) {
        let mut g = self.lock();
        let g = &mut *g;
        g.last_seen_ms = g.last_seen_ms.max(now_ms);
        let Some(user) = g.sessions.get(&id).and_then(|s| s.user.as_ref()) else {
            return;
        };
        let Some(mb) = g.mailboxes.get_mut(user) else {
            return;
        };
        for uid in uids {
            if let Some(m) = mb
                .messages
                .get_mut(uid)
                .filter(|m| m.record.deleted_by.is_none())
            {
                m.record.unset_seen(now_ms);
            }
        }
    }

    /// `user`'s UIDVALIDITY.
    pub(crate) fn uidvalidity(&self, user: &str) -> Option<u32> {
        self.lock().mailboxes.get(user).map(|mb| mb.uidvalidity)
    }
}

/// Writes `commit` to `mb`, credited to `sess`: a message already seen or
/// deleted keeps its first cause. Returns the UIDs it deleted.
fn apply(mb: &mut Mailbox, sess: &mut SessionRecord, commit: &Commit, now_ms: u64) -> Vec<u32> {
    for uid in &commit.seen {
        if let Some(m) = mb.messages.get_mut(uid) {
            if m.record.set_seen(sess.id, now_ms) {
                sess.marked_seen.push(m.record.uidl.clone());
            }
        }
    }
    let mut deleted = Vec::new();
    for uid in &commit.delete {
        if let Some(m) = mb.messages.get_mut(uid) {
            if m.record.deleted_by.is_none() {
                m.record.deleted_by = Some(sess.id);
                m.record.deleted_at_ms = Some(now_ms);
                sess.deleted.push(m.record.uidl.clone());
                deleted.push(*uid);
            }
        }
    }
    deleted
}

impl fmt::Debug for MailStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailStore(..)")
    }
}

impl fmt::Display for MailStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock();
        writeln!(f, "mail store:")?;
        for (user, mb) in &g.mailboxes {
            let live = mb
                .messages
                .values()
                .filter(|s| s.record.deleted_by.is_none())
                .count();
            writeln!(
                f,
                "  user {user}: {} delivered, {live} present, uidvalidity {:08x}",
                mb.messages.len(),
                mb.uidvalidity
            )?;
            for s in mb.messages.values() {
                let r = &s.record;
                let who = |x: Option<SessionId>| x.map_or("-".to_owned(), |s| s.to_string());
                writeln!(
                    f,
                    "    {} {:>8} octets sha256 {} seen {} deleted {}",
                    r.uidl,
                    r.size,
                    &r.sha256[..12],
                    who(r.seen_by),
                    who(r.deleted_by)
                )?;
            }
        }
        writeln!(f, "  sessions:")?;
        for s in g.sessions.values() {
            let end = s
                .end
                .map_or("live".to_owned(), |e| format!("{} at {}", e.kind, e.at_ms));
            writeln!(
                f,
                "    {} {} user {} from {} start {} -> {end}; deleted {} seen {} faults {:?}",
                s.id,
                if s.is_live() { "*" } else { " " },
                s.user.as_deref().unwrap_or("-"),
                s.peer,
                s.started_ms,
                s.deleted.len(),
                s.marked_seen.len(),
                s.faults
            )?;
            let dropped = if s.commands_dropped > 0 {
                format!(" (+{} more)", s.commands_dropped)
            } else {
                String::new()
            };
            writeln!(f, "      commands: {}{dropped}", s.commands.join("; "))?;
        }
        let locks = g.locks.held(g.last_seen_ms);
        writeln!(f, "  locks (at {}):", g.last_seen_ms)?;
        for l in locks {
            let stale = l
                .stale_until_ms
                .map_or(String::new(), |t| format!(", stale until {t}"));
            writeln!(
                f,
                "    {} held by {} since {}{stale}",
                l.user, l.session, l.acquired_ms
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn stored_bytes_are_crlf_and_size_counts_them() {
        let s = MailStore::new();
        s.add_user("alice", "pw");
        let u = s.deliver("alice", "Subject: x\n\nhi").unwrap();
        let m = s.message("alice", u.as_str()).unwrap();
        assert_eq!(m.size, b"Subject: x\r\n\r\nhi\r\n".len());
        assert_eq!(s.body("alice", u.as_str()).unwrap().len(), m.size);
    }

    #[test]
    fn uidls_grow_and_are_never_reused() {
        let s = MailStore::new();
        s.add_user("alice", "pw");
        let a = s.deliver("alice", "1").unwrap();
        let b = s.deliver("alice", "2").unwrap();
        assert!(a < b, "{a} {b}");
        assert_eq!(&a.as_str()[8..], &b.as_str()[8..], "same uidvalidity");
        let id = s.begin_session(peer(), 0);
        let snap = s.login(id, "alice", false, 0).unwrap();
        let commit = Commit {
            delete: vec![snap[1].uid],
            seen: vec![],
        };
        assert_eq!(s.end_session(id, EndKind::Quit, 1, commit, None), 1);
        let c = s.deliver("alice", "3").unwrap();
        assert!(c > b && c != b);
        assert_eq!(s.present_uidls("alice"), vec![a, c]);
        assert_eq!(s.message("alice", b.as_str()).unwrap().deleted_by, Some(id));
    }

    #[test]
    fn unknown_user_is_an_error_people_can_read() {
        let s = MailStore::new();
        let e = s.deliver("nobody", "x").unwrap_err();
        assert!(e.to_string().contains("nobody"), "{e}");
    }

    #[test]
    fn first_committer_keeps_the_credit() {
        let s = MailStore::new();
        s.add_user("alice", "pw");
        s.deliver("alice", "1").unwrap();
        let a = s.begin_session(peer(), 0);
        let b = s.begin_session(peer(), 0);
        let snap = s.login(a, "alice", false, 0).unwrap();
        s.login(b, "alice", false, 0).unwrap();
        let both = || Commit {
            delete: vec![snap[0].uid],
            seen: vec![snap[0].uid],
        };
        assert_eq!(s.end_session(b, EndKind::Quit, 1, both(), None), 1);
        assert_eq!(s.end_session(a, EndKind::Quit, 2, both(), None), 0);
        let m = &s.messages("alice")[0];
        assert_eq!((m.deleted_by, m.seen_by), (Some(b), Some(b)));
        assert!(s.report().contains("deleted s2"), "{}", s.report());
    }
}
