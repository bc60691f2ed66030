//! The mail user's own record: what it was told, by whom and when. The
//! oracle judges the system from this and from the model servers' records,
//! never from the nodes' counters.
//!
//! Deletes are counted as the mail user saw them. Within one session: a DELE
//! answered `+OK` is *acknowledged*; an RSET answered `+OK` undoes the
//! session's deletes so far; an RSET whose answer never came may or may not
//! have happened. When the session ends (however it ends):
//!
//! - `must_delete`: acknowledged and not undone: the server must end without
//!   the message;
//! - `may_delete`: sent and not undone by an acknowledged RSET: the server
//!   may end without it (a DELE whose `+OK` was lost, or one followed by an
//!   unanswered RSET);
//! - anything else deleted on a server is a violation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// A message: (server host, the store's UID), whatever its UIDL.
pub type MsgKey = (String, u32);

/// What the mail user is doing now, for reactive faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Activity {
    Idle,
    InSession,
    /// A RETR was sent and its body has not arrived whole.
    Retr(MsgKey),
    /// A DELE was just answered `+OK` (or an IMAP expunge reported it).
    DeleAcked(MsgKey),
    /// An IMAP STORE of `\Seen` on it was just answered `OK`.
    SeenStored(MsgKey),
    /// An IMAP NOOP is on its way in a session that read with `BODY[]`:
    /// the client proxy may list the folder again in a new session
    /// behind, and end the old one, with read marks unproved, by QUIT.
    ImapRecheck,
    /// An RSET is on its way (not answered yet), undoing acknowledged
    /// deletes on these servers.
    RsetSent(Vec<String>),
    /// An RSET was just answered `+OK`.
    RsetAcked,
    /// An IMAP APPEND is on its way (its message going up, or its answer
    /// coming back).
    Appending,
}

/// How a session ended, as the mail user saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// QUIT answered `+OK`.
    Quit,
    /// The mail user hung up on purpose.
    GaveUp,
    /// Something failed: what.
    Broken(String),
}

/// One session of one mail client.
#[derive(Clone, Debug)]
pub struct SessionLog {
    pub client: u8,
    pub number: u32,
    /// Simulated ms.
    pub start_ms: u64,
    pub end_ms: u64,
    pub ended: Ended,
    /// Commands answered `-ERR` (and why), other than those the mail user
    /// expected to fail.
    pub refused: Vec<String>,
    pub commands: u32,
    /// When the login was answered `+OK` (the edge session was open), and
    /// when QUIT was sent; simulated ms.
    pub opened_ms: Option<u64>,
    pub quit_ms: Option<u64>,
}

#[derive(Default)]
pub struct MuaInner {
    pub activity: Option<Activity>,
    /// Bumped on every activity change, so the harness reacts once per change.
    pub activity_seq: u64,
    /// POP3 QUITs sent so far (apart from `activity`, so that a QUIT right
    /// after a DELE's `+OK` does not hide that `+OK` from the harness).
    pub quits_sent: u64,
    /// Mail clients in a session now.
    pub in_session: u32,
    /// Mail clients that are done.
    pub finished: u32,
    pub clients: u32,
    /// When each message was first received whole (env unix ms).
    pub received: BTreeMap<MsgKey, u64>,
    /// Every read of each message by the user's mail clients: (client, env
    /// unix ms it was received whole, or its IMAP STORE of `\\Seen` sent).
    pub reads_by: BTreeMap<MsgKey, Vec<(u8, u64)>>,
    pub must_delete: BTreeSet<MsgKey>,
    pub may_delete: BTreeSet<MsgKey>,
    /// How many settled deletes (acknowledged, or maybe done) named each
    /// message: twins (`World::deliver_twin`) are judged by count.
    pub deletes_asked: BTreeMap<MsgKey, u32>,
    /// Messages received whole whose delivery the edge must have heard of
    /// (see [`Reads`]) and whose read mark no RSET undid.
    pub must_read: BTreeSet<MsgKey>,
    pub sessions: Vec<SessionLog>,
    pub gave_up: u32,
    pub gave_up_mid_retr: u32,
    pub rsets_acked: u32,
    pub deletes_undone: u32,
    pub pipelined: u32,
    pub long_sessions: u32,
    pub tops: u32,
    /// IMAP sessions at the client proxy, bodies they received whole, and
    /// messages their `UID EXPUNGE` reported expunged.
    pub imap_sessions: u32,
    pub imap_bodies: u32,
    pub imap_expunged: u32,
    /// ... of them, in a folder other than INBOX (an entry's own folder).
    pub imap_other_folder_expunged: u32,
    /// IMAP sessions that selected another folder after working in one.
    pub imap_switched_folder: u32,
    /// Messages whose `\Seen` an IMAP STORE stored (answered `OK`).
    pub imap_seen_stored: u32,
    /// Messages received whole by a reading FETCH (`BODY[]`, not a peek)
    /// at the IMAP front: they may end read without a STORE.
    pub imap_read: BTreeSet<MsgKey>,
    /// Per IMAP session (mail client, its session): its reading FETCHes'
    /// messages, owed a read mark once its LOGOUT says every mark was made
    /// ([`causeway_client::LOGGED_OUT`]).
    pub imap_reads_of: BTreeMap<(u8, u32), Vec<MsgKey>>,
    /// Messages so owed.
    pub imap_reads_owed: u32,
    /// Messages a second SELECT listed that the first had not (new mail
    /// the client proxy's IMAP front listed again).
    pub imap_new_listed: u32,
    /// What each UID named when its body was received whole: (client,
    /// UIDVALIDITY, UID) -> (the message, the session). A UID must name one
    /// message under one UIDVALIDITY, in every session (mbsync and
    /// offlineimap keep copies by it).
    pub imap_uids: BTreeMap<(u8, String, u32, u32), (MsgKey, u32)>,
    /// Bodies whose UID named the same message in an earlier session.
    pub imap_uids_kept: u32,
    /// IMAP sessions that did their work and hung up without LOGOUT.
    pub imap_hung_up: u32,
    /// IMAP sessions that sent two or more `UID FETCH`es in one write.
    pub imap_pipelined: u32,
    /// ... and that hung up with those fetches in flight.
    pub imap_pipelined_left: u32,
    /// `BODYSTRUCTURE` and `BODY[1]` read (not the whole message).
    pub imap_parts_read: u32,
    /// Messages a `UID MOVE` to the client proxy's Trash was sent for (and
    /// not yet moved back or expunged there): the only ones Trash may show.
    pub imap_trashed: BTreeSet<MsgKey>,
    /// Messages moved to Trash (answered `OK`), and moved back from it.
    pub imap_moved_to_trash: u32,
    pub imap_put_back: u32,
    /// Messages whose expunge in Trash was answered.
    pub imap_trash_expunged: BTreeSet<MsgKey>,
    /// Messages APPENDed at the IMAP front, in order (invariant 10).
    pub imap_appends: Vec<Appended>,
    /// Where an `APPENDUID` said each appended message is: (client, the
    /// message) -> (folder, UIDVALIDITY, UID). Shown in that folder under
    /// that UIDVALIDITY, it must be at that UID (invariant 2: a client that
    /// pushes mail, mbsync, keeps its copy by it), until the user moves it.
    pub imap_append_uids: BTreeMap<(u8, MsgKey), (String, u32, u32)>,
    /// APPENDs answered with `APPENDUID`, and bodies later received at
    /// the UID it gave.
    pub imap_append_uid_given: u32,
    pub imap_append_uid_kept: u32,
    /// Text searches answered and judged (invariant 15), those by the day
    /// sent, and messages of a POP3 entry found by one (the edge read them
    /// whole).
    pub imap_searched: u32,
    pub imap_searched_by_day: u32,
    pub imap_searched_pop3: u32,
    /// Per IMAP session (mail client, its session): when each NOOP or
    /// SELECT that may have listed the folder again (in a new edge
    /// session behind) was answered (invariant 9).
    pub imap_relisted: BTreeMap<(u8, u32), Vec<u64>>,
    /// `\Flagged` STOREs the IMAP mail user sent, per message, in the
    /// order sent (invariant 11).
    pub imap_flag_stores: BTreeMap<MsgKey, Vec<FlagStore>>,
    /// `UID STORE -FLAGS (\\Seen)`s the IMAP mail user sent, per
    /// message, in the order sent (invariant 14).
    pub imap_unreads: BTreeMap<MsgKey, Vec<Unread>>,
    /// When each IMAP session (mail client, its session) sent its LOGIN
    /// (env unix ms, as the model servers' records).
    pub imap_logged_in: BTreeMap<(u8, u32), u64>,
    /// When an IMAP expunge of each message was first answered (env unix
    /// ms), and the bodies an IMAP session that sent its LOGIN after it
    /// received all the same: (message, answered, LOGIN sent, client)
    /// (invariant 12).
    pub imap_expunge_acked: BTreeMap<MsgKey, u64>,
    pub imap_shown_again: Vec<(MsgKey, u64, u64, u8)>,
    /// Each message's `\\Flagged` as a listing at the IMAP front showed
    /// it, for messages the user knew by then (invariant 13).
    pub imap_flags_shown: Vec<FlagShown>,
    /// Problems seen as they happened: (invariant, message, text).
    pub violations: Vec<(u8, Option<MsgKey>, String)>,
    pub events: Vec<String>,
}

/// A `UID STORE ±FLAGS (\Flagged)` the IMAP mail user sent for a message.
#[derive(Clone, Debug)]
pub struct FlagStore {
    /// `+FLAGS` (else `-FLAGS`).
    pub add: bool,
    /// Simulated ms when it was sent, and when it was answered `OK` (never,
    /// if its answer never came or said otherwise).
    pub sent_ms: u64,
    pub answered_ms: Option<u64>,
}

/// A `UID STORE -FLAGS (\\Seen)` ("mark as unread") the IMAP mail user
/// sent for a message.
#[derive(Clone, Debug)]
pub struct Unread {
    pub client: u8,
    /// The client's IMAP session that sent it, and when that session ended
    /// (env unix ms; never, if it is still open).
    pub session: u32,
    pub session_ended_ms: Option<u64>,
    /// Env unix ms (as the model servers' records) when it was sent, and
    /// when it was answered `OK` (never, if its answer never came or said
    /// otherwise).
    pub sent_ms: u64,
    pub answered_ms: Option<u64>,
    /// The same session had read the message before: its read mark was
    /// still owed (a session's marks are committed as it ends).
    pub read_here: bool,
}

/// A message's `\\Flagged` and `\\Seen` as a SELECT's listing at the IMAP
/// front showed them.
#[derive(Clone, Debug)]
pub struct FlagShown {
    pub key: MsgKey,
    pub flagged: bool,
    pub seen: bool,
    /// The session's mail client, when it sent its LOGIN and when the
    /// listing was answered (env unix ms, as the model servers' records).
    pub client: u8,
    pub login_ms: u64,
    pub at_ms: u64,
}

/// A message the mail user APPENDed to an entry's folder.
#[derive(Clone, Debug)]
pub struct Appended {
    /// The entry's server (its folder at the client proxy).
    pub host: String,
    /// SHA-256 of the message, as the model server records it.
    pub sha256: String,
    /// The APPEND was answered `OK` (else its answer never came, or said
    /// the outcome is unknown).
    pub stored: bool,
}

impl MuaInner {
    pub fn all_done(&self) -> bool {
        self.clients > 0 && self.finished == self.clients
    }

    /// Mail client `client` read `key` at `at` (env unix ms): received
    /// whole, or its `\\Seen` stored.
    pub fn read_whole(&mut self, key: &MsgKey, client: u8, at: u64) {
        self.received.entry(key.clone()).or_insert(at);
        self.reads_by
            .entry(key.clone())
            .or_default()
            .push((client, at));
    }
}

/// Shared between the mail clients and the harness.
#[derive(Clone, Default)]
pub struct MuaLog(Arc<Mutex<MuaInner>>);

impl MuaLog {
    pub fn with<T>(&self, f: impl FnOnce(&mut MuaInner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set(&self, a: Activity) {
        self.with(|m| {
            m.activity = Some(a);
            m.activity_seq += 1;
        });
    }

    /// A mail client sent a delete of `key`, or moved it to Trash: until
    /// the delete is done, any client's next listing may show the message
    /// again, and moved back it is a new message of its folder, under a new
    /// UID either way, so no APPENDUID holds it any more.
    pub fn delete_sent(&self, key: &MsgKey) {
        self.with(|m| m.imap_append_uids.retain(|(_, k), _| k != key));
    }

    /// A POP3 mail client sent QUIT.
    pub fn quit_sent(&self) {
        self.with(|m| m.quits_sent += 1);
    }

    pub fn event(&self, at_ms: u64, text: String) {
        tracing::info!(target: "sim::mua", "{text}");
        self.with(|m| m.events.push(format!("{:>9} mua: {text}", fmt_ms(at_ms))));
    }

    pub fn violation(&self, invariant: u8, key: Option<MsgKey>, text: String) {
        self.with(|m| m.violations.push((invariant, key, text)));
    }
}

pub fn fmt_ms(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// One session's deletes, until it ends.
#[derive(Default)]
pub struct Deletes {
    /// (message, answered +OK), in order.
    pending: Vec<(MsgKey, bool)>,
    /// Deletes an RSET on its way may undo: if its answer never comes, the
    /// server may end with them done or undone.
    undoing: Vec<(MsgKey, bool)>,
}

impl Deletes {
    pub fn sent(&mut self, key: &MsgKey) {
        self.pending.push((key.clone(), false));
    }

    pub fn acked(&mut self, key: &MsgKey) {
        if let Some(p) = self.pending.iter_mut().rev().find(|(k, _)| k == key) {
            p.1 = true;
        }
    }

    /// The servers holding this session's acknowledged deletes.
    pub fn acked_on(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, acked)| *acked)
            .map(|(k, _)| k.0.clone())
            .collect();
        hosts.dedup();
        hosts
    }

    /// An RSET was sent: until it is answered, what it undoes is uncertain.
    pub fn rset_sent(&mut self) {
        self.undoing.append(&mut self.pending);
    }

    /// The RSET was refused: the deletes stand.
    pub fn rset_refused(&mut self) {
        let mut undoing = std::mem::take(&mut self.undoing);
        undoing.append(&mut self.pending);
        self.pending = undoing;
    }

    /// The RSET was answered `+OK`: everything before it is undone. How many.
    pub fn reset(&mut self) -> usize {
        std::mem::take(&mut self.undoing).len()
    }

    /// The session ended (any way): what the servers must and may do.
    pub fn settle(self, log: &MuaLog) {
        log.with(|m| {
            for (k, acked) in self.pending {
                if acked {
                    m.must_delete.insert(k.clone());
                }
                *m.deletes_asked.entry(k.clone()).or_default() += 1;
                m.may_delete.insert(k);
            }
            // An RSET whose answer never came: either outcome is right.
            for (k, _) in self.undoing {
                *m.deletes_asked.entry(k.clone()).or_default() += 1;
                m.may_delete.insert(k);
            }
        });
    }
}

/// One session's reads, until it ends. A message received whole is owed a
/// read mark once a later command of the session got a `+OK` only the edge
/// can give (DELE, QUIT): the client proxy batches read marks, and sends
/// the waiting batch ahead of any command it carries to the edge. A batch
/// lost in a cut before that leaves its messages unread, which is allowed.
#[derive(Default)]
pub struct Reads {
    /// Received whole, delivery not yet known to the edge.
    received: Vec<MsgKey>,
    /// Received whole, and a later command answered by the edge.
    confirmed: Vec<MsgKey>,
    /// Reads an RSET on its way may undo: (received, confirmed).
    undoing: Option<(Vec<MsgKey>, Vec<MsgKey>)>,
}

impl Reads {
    pub fn received(&mut self, key: MsgKey) {
        self.received.push(key);
    }

    /// A command the client proxy must carry to the edge is about to be
    /// sent: the token to hand [`Reads::proved`] when it is answered `+OK`.
    pub fn sending(&self) -> usize {
        self.received.len()
    }

    /// The command sent at `token` was answered `+OK` (by the edge).
    pub fn proved(&mut self, token: usize) {
        let n = token.min(self.received.len());
        self.confirmed.extend(self.received.drain(..n));
    }

    /// An RSET was sent: until it is answered, its effect on the
    /// session's read marks is uncertain (they are owed no more).
    pub fn rset_sent(&mut self) {
        let received = std::mem::take(&mut self.received);
        let confirmed = std::mem::take(&mut self.confirmed);
        self.undoing = Some((received, confirmed));
    }

    /// The RSET was refused: the read marks stand.
    pub fn rset_refused(&mut self) {
        if let Some((mut received, mut confirmed)) = self.undoing.take() {
            received.append(&mut self.received);
            confirmed.append(&mut self.confirmed);
            self.received = received;
            self.confirmed = confirmed;
        }
    }

    /// The RSET was answered `+OK`: the session's read marks are undone.
    pub fn reset(&mut self) {
        self.undoing = None;
    }

    /// The session ended (any way): the read marks the servers must make.
    pub fn settle(self, log: &MuaLog) {
        log.with(|m| m.must_read.extend(self.confirmed));
    }
}
