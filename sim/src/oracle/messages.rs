//! Invariants 1, 3 and 4 (and the IMAP ones, 10 to 14), judged per message from the servers' records
//! against what the mail user asked and received: nothing lost, nothing
//! deleted or read that was not asked, everything acknowledged committed.
//! Twins (an exact copy delivered right after its DELE `+OK`, `--focus
//! twins`) are told apart here: a delete may hit one copy, never both.

use std::collections::BTreeSet;

use causeway_mailserver::{InjectedFault, MessageRecord, SessionId};

use super::{Verdict, Violation, imap_strains_covered};
use crate::coverage::Cov;
use crate::faults::Faults;
use crate::workload::{MsgKey, fmt_ms};
use crate::world::{PHONE, World};

/// True if another message of the same UIDL and size was on the server
/// at some time after `m` was received (env unix ms): from then on no
/// session may mark `m` (issue #15's rule for ambiguous UIDLs), so a mark
/// that had not reached the server is rightly never made.
fn twin_after(all: &[MessageRecord], m: &MessageRecord, received: Option<u64>) -> bool {
    let at = received.unwrap_or(0);
    all.iter().any(|o| {
        o.uid != m.uid
            && o.uidl == m.uidl
            && o.size == m.size
            && o.deleted_at_ms.is_none_or(|d| d > at)
    })
}

/// Whether deleting `extra`, an exact copy of a message `original` the
/// user deleted, is a call no edge could have made otherwise: the session
/// that committed the original's delete may have had its `QUIT` answer
/// lost (the server sat on or dropped a reply, or a fault was in force as
/// it ended), and nothing in the listings tells the two copies apart:
/// every message that session deleted has a copy (none is gone, so none
/// says the batch was committed: `crate::ledger`'s batch rule), and no
/// message listed after the original, before the copy, was still there to
/// be its witness. POP3 shows an exact copy as the same UIDL and size at
/// the same place; an edge that deletes it, taking it for the original
/// whose delete it still owes, did what the listing said (the other
/// choice, never redoing a delete whose answer was lost, would leave
/// acknowledged deletes undone far more often). Seed 14495.
fn copy_indistinguishable(
    s: &crate::world::Server,
    all: &[MessageRecord],
    (original, extra): (&MessageRecord, &MessageRecord),
    faults: &Faults,
    twins_of: &dyn Fn(&MessageRecord) -> Vec<MsgKey>,
) -> bool {
    let (Some(by), Some(extra_by)) = (original.deleted_by, extra.deleted_by) else {
        return false;
    };
    let (Some(committer), Some(deleter)) = (s.store.session(by), s.store.session(extra_by)) else {
        return false;
    };
    let Some(end) = committer.end else {
        return false;
    };
    let ended = end
        .at_ms
        .saturating_sub(crate::world::nodes::SIM_EPOCH_UNIX_MILLIS);
    let answer_lost = committer.faults.iter().any(|f| {
        matches!(
            f,
            InjectedFault::Stall(_) | InjectedFault::DropMidResponse { .. }
        )
    }) || faults
        .windows
        .iter()
        .any(|(a, b)| *a <= ended + 5_000 && *b >= ended);
    let batch_all_copied = all
        .iter()
        .filter(|m| m.deleted_by == Some(by))
        .all(|m| !twins_of(m).is_empty());
    let witness = all.iter().any(|m| {
        m.uid > original.uid
            && m.uid < extra.uid
            && m.deleted_by != Some(by)
            && m.delivered_at_ms.is_none_or(|d| d <= committer.started_ms)
            && m.deleted_at_ms.is_none_or(|d| d > deleter.started_ms)
    });
    answer_lost && batch_all_copied && !witness
}

/// Env unix ms as simulated time.
fn since_epoch(unix_ms: u64) -> u64 {
    unix_ms.saturating_sub(crate::world::nodes::SIM_EPOCH_UNIX_MILLIS)
}

/// True if a message received at `received` (env unix ms) may have had its
/// read mark made from memory only and lost with an edge crash.
fn read_may_be_lost(faults: &Faults, received: Option<u64>) -> bool {
    let Some(at) = received else { return false };
    let at = since_epoch(at);
    faults
        .memory_only_reads
        .iter()
        // Read marks travel batched since protocol 4: one received before
        // the window may reach the edge's journal inside it.
        .any(|(_, until)| at <= *until)
}

/// Invariants 1, 3 and 4, per message.
pub fn check_messages(w: &mut World, faults: &Faults, v: &mut Verdict) {
    imap_strains_covered(w);
    let (must, may, asked, received, mut must_read, read, emptied) = w.mua.with(|m| {
        (
            m.must_delete.clone(),
            m.may_delete.clone(),
            m.deletes_asked.clone(),
            m.received.clone(),
            m.must_read.clone(),
            m.imap_read.clone(),
            m.imap_trash_expunged.clone(),
        )
    });
    // A message the user marked unread is invariant 14's: whether a read
    // still ends it read depends on which came last.
    w.mua
        .with(|m| must_read.retain(|k| !m.imap_unreads.contains_key(k)));
    if !read.is_empty() {
        w.coverage.insert(Cov::ImapFrontRead);
    }
    for s in &w.servers {
        if let Some(inbox) = &s.untouched_inbox {
            for m in s.store.messages(inbox) {
                if m.deleted_by.is_some() || m.seen_by.is_some() {
                    v.violations.push(Violation {
                        invariant: 1,
                        key: None,
                        message: format!(
                            "{}: INBOX message {} (uid {}) was {} by session {:?}, but the entry \
                             reads folder {}: no one asked for INBOX",
                            s.host,
                            m.uidl,
                            m.uid,
                            if m.deleted_by.is_some() {
                                "deleted"
                            } else {
                                "marked read"
                            },
                            m.deleted_by.or(m.seen_by),
                            s.user
                        ),
                    });
                }
            }
        }
        let all = s.store.messages(&s.user);
        // The exact copies of `m` the harness delivered
        // (`World::deliver_twin`): the same mail to the user and to the
        // edge (same UIDL, same bytes), so having one whole is having the
        // other, and deleting one may delete the other.
        let twins_of = |m: &MessageRecord| -> Vec<MsgKey> {
            if w.twinned.is_empty() {
                return Vec::new();
            }
            let body = s.store.body_by_uid_copy(&s.user, m.uid);
            all.iter()
                .filter(|o| {
                    o.uid != m.uid
                        && o.uidl == m.uidl
                        && o.size == m.size
                        && s.store.body_by_uid_copy(&s.user, o.uid) == body
                })
                .map(|o| (s.host.clone(), o.uid))
                .collect()
        };
        for m in all.iter().cloned() {
            let key: MsgKey = (s.host.clone(), m.uid);
            let name = format!("{}:{} (uid {})", s.host, m.uidl, m.uid);
            // Which protocol did it, as the model's own log says.
            let logged = |by, command: &str| {
                s.store
                    .session(by)
                    .is_some_and(|r| r.commands.iter().any(|c| c == command))
            };
            if s.untouched_inbox.is_some() && (m.deleted_by.is_some() || m.seen_by.is_some()) {
                w.coverage.insert(Cov::ImapFolderChanged);
            }
            if let Some(by) = m.deleted_by {
                w.coverage.insert(Cov::DeleteCommitted);
                if emptied.contains(&key) {
                    w.coverage.insert(Cov::ImapTrashEmptied);
                }
                if logged(by, "UID EXPUNGE") {
                    w.coverage.insert(Cov::ImapDeleteCommitted);
                }
                if logged(by, "EXPUNGE") {
                    w.coverage.insert(Cov::ImapBareExpunge);
                }
                // Of exact copies, as many may go as the user deleted.
                let twins = twins_of(&m);
                let copies_deleted = all
                    .iter()
                    .filter(|o| {
                        o.deleted_by.is_some()
                            && (o.uid == m.uid || twins.contains(&(s.host.clone(), o.uid)))
                    })
                    .count() as u32;
                let copies_asked: u32 = twins
                    .iter()
                    .chain([&key])
                    .filter_map(|k| asked.get(k))
                    .sum();
                let indistinguishable = || {
                    twins.iter().any(|(_, uid)| {
                        all.iter().find(|o| o.uid == *uid).is_some_and(|o| {
                            o.uid < m.uid
                                && asked.contains_key(&(s.host.clone(), o.uid))
                                && copy_indistinguishable(s, &all, (o, &m), faults, &twins_of)
                        })
                    })
                };
                if !may.contains(&key)
                    && copies_deleted > copies_asked
                    && !twins.is_empty()
                    && indistinguishable()
                {
                    w.coverage.insert(Cov::CopyIndistinguishable);
                    v.notes.push(format!(
                        "{name}: an exact copy of a message the user deleted, deleted where no \
                         listing could tell the two apart (exempt: the original's commit \
                         unanswered, no witness, no other delete of its batch gone)"
                    ));
                } else if !may.contains(&key) && (twins.is_empty() || copies_deleted > copies_asked)
                {
                    let cmds = s
                        .store
                        .session(by)
                        .map(|r| r.commands.join("; "))
                        .unwrap_or_default();
                    v.violations.push(Violation {
                        invariant: 1,
                        key: Some(key.clone()),
                        message: format!(
                            "{name} deleted by session {by}, but the mail user never deleted it (or \
                             undid the delete with an acknowledged RSET); that session's commands: {cmds}"
                        ),
                    });
                }
            } else if must.contains(&key) && !w.twinned.contains(&key) {
                // (A twin that came after the DELE's +OK makes the delete
                // one the edge must drop: `World::deliver_twin`.)
                v.violations.push(Violation {
                    invariant: 4,
                    key: Some(key.clone()),
                    message: format!(
                        "{name}: DELE was answered +OK to the mail user (and not undone) but the \
                         message is still on the server after the quiet phase"
                    ),
                });
            }
            if m.deleted_by.is_none()
                && m.seen_by.is_none()
                && must_read.contains(&key)
                && !read_may_be_lost(faults, received.get(&key).copied())
                && !twin_after(&all, &m, received.get(&key).copied())
            {
                v.violations.push(Violation {
                    invariant: 4,
                    key: Some(key.clone()),
                    message: format!(
                        "{name}: the mail user received it whole and the edge answered a later \
                         command of that session (no RSET after), or its IMAP STORE of \\Seen \
                         was answered OK, or its IMAP session read it with BODY[] and LOGOUT \
                         said every read mark was made, but it is still unread on the server \
                         after the quiet phase"
                    ),
                });
            }
            // Stored read by its own APPEND (sent mail): no one's read mark.
            // Nor is the user's phone's read (`world::phone`).
            let ours = |by: &SessionId| m.appended_by != Some(*by) && *by != PHONE;
            if let Some(by) = m.seen_by.filter(ours) {
                w.coverage.insert(Cov::SeenCommitted);
                if read.contains(&key) && !must_read.contains(&key) {
                    w.coverage.insert(Cov::ImapFrontReadMarked);
                }
                if logged(by, "UID STORE") {
                    w.coverage.insert(Cov::ImapSeenCommitted);
                }
                let seen_at = m.seen_at_ms.unwrap_or(0);
                let received_whole = std::iter::once(key.clone())
                    .chain(twins_of(&m))
                    .filter_map(|k| received.get(&k).copied())
                    .min();
                match received_whole {
                    None => v.violations.push(Violation {
                        invariant: 3,
                        key: Some(key.clone()),
                        message: format!(
                            "{name} marked read by session {by}, but the mail user never received it whole"
                        ),
                    }),
                    Some(at) if at > seen_at => v.violations.push(Violation {
                        invariant: 3,
                        key: Some(key.clone()),
                        message: format!(
                            "{name} marked read by session {by} at {seen_at}, before the mail user \
                             had all of it (at {at})"
                        ),
                    }),
                    Some(_) => {}
                }
            }
        }
    }
}

/// The server of message `key`, if its entry speaks IMAP to it (a POP3
/// server keeps no flags).
fn imap_server_of<'w>(w: &'w World, key: &MsgKey) -> Option<&'w crate::world::Server> {
    let i = w.servers.iter().position(|s| s.host == key.0)?;
    w.params.servers[i].imap.then(|| &w.servers[i])
}

/// Invariant 10: a message the mail user APPENDed and was answered `OK`
/// for is on its entry's server exactly once; one whose answer it never
/// heard, at most once. Counted over every copy the server ever stored by
/// APPEND (the user may have deleted it since).
pub fn check_appends(w: &mut World, v: &mut Verdict) {
    let appends = w.mua.with(|m| m.imap_appends.clone());
    for a in appends {
        let Some(s) = w.servers.iter().find(|s| s.host == a.host) else {
            continue;
        };
        let copies = s
            .store
            .messages(&s.user)
            .iter()
            .filter(|m| m.appended_by.is_some() && m.sha256 == a.sha256)
            .count();
        let short = &a.sha256[..12];
        match (a.stored, copies) {
            (true, 1) => {
                w.coverage.insert(Cov::ImapAppendStored);
            }
            (false, 0 | 1) => {
                w.coverage.insert(Cov::ImapAppendUnanswered);
            }
            (stored, n) => v.violations.push(Violation {
                invariant: 10,
                key: None,
                message: format!(
                    "{}: a message APPENDed ({short}) {} is on the server {n} times",
                    s.host,
                    if stored {
                        "and answered OK"
                    } else {
                        "with no answer heard"
                    },
                ),
            }),
        }
    }
}

/// Invariant 11: `\Flagged` on an IMAP server's message is there only if
/// the mail user asked for it, and, once every STORE of it was answered
/// `OK` one after the other, ends as the last one left it: the flags a
/// user stores are on the server, where every other device sees them. A
/// POP3 server has no flags (the client proxy's UID book keeps them); a
/// message deleted since, or one whose STOREs overlapped or went
/// unanswered (the server may have them in either order, or not at all),
/// is judged for the first half only.
pub fn check_flags(w: &mut World, v: &mut Verdict) {
    let stores = w.mua.with(|m| m.imap_flag_stores.clone());
    for (key, stores) in stores {
        let Some(s) = imap_server_of(w, &key) else {
            continue;
        };
        // What the phone stored is invariant 13's to judge.
        if w.phone_touched(&key) {
            continue;
        }
        let Some(m) = s.store.message_by_uid(&s.user, key.1) else {
            continue;
        };
        let flagged = m.flags.contains("\\Flagged");
        let name = format!("{}:{}", s.host, m.uidl);
        if flagged && !stores.iter().any(|s| s.add) {
            v.violations.push(Violation {
                invariant: 11,
                key: Some(key.clone()),
                message: format!("{name} is \\Flagged on its server; the mail user never asked"),
            });
            continue;
        }
        let Some((at, last)) = stores.iter().enumerate().max_by_key(|(_, s)| s.sent_ms) else {
            continue;
        };
        let in_turn = (stores.iter().enumerate())
            .all(|(i, s)| s.answered_ms.is_some_and(|a| i == at || a <= last.sent_ms));
        if !in_turn || m.deleted_by.is_some() {
            continue;
        }
        if flagged != last.add {
            let (now, asked) = match flagged {
                true => ("is", "-FLAGS"),
                false => ("is not", "+FLAGS"),
            };
            v.violations.push(Violation {
                invariant: 11,
                key: Some(key.clone()),
                message: format!(
                    "{name} {now} \\Flagged on its server, though the mail user's last STORE \
                     ({asked}, sent at {}, {} STOREs in all) was answered OK",
                    fmt_ms(last.sent_ms),
                    stores.len()
                ),
            });
        } else {
            w.coverage.insert(match last.add {
                true => Cov::ImapFlagStored,
                false => Cov::ImapFlagTakenAway,
            });
        }
    }
}

/// Invariant 13: a listing at the IMAP front shows a message's `\\Flagged`
/// as its IMAP server had it at some moment from the session's LOGIN until
/// the listing was answered: as the user's own STOREs and its phone's left
/// it. (The front takes the server's flags at each listing; between
/// listings it shows what the user stored, which its server has too.) And
/// it shows `\\Seen` a message its server had read from the LOGIN on (by
/// the phone, or by a read mark of ours), unless the server had it unread
/// at some moment since (the user marked it unread: invariant 14).
/// Judged from the model server's record of every STORE, for messages the
/// user knew by the listing's UID and the server still had at the LOGIN.
pub fn check_stars_shown(w: &mut World, v: &mut Verdict) {
    let (shown, stored, read) = w.mua.with(|m| {
        let stored: BTreeSet<MsgKey> = m.imap_flag_stores.keys().cloned().collect();
        (m.imap_flags_shown.clone(), stored, m.imap_read.clone())
    });
    for seen in shown {
        let Some(i) = w.servers.iter().position(|s| s.host == seen.key.0) else {
            continue;
        };
        let s = &w.servers[i];
        let m = s.store.message_by_uid(&s.user, seen.key.1);
        let Some(m) = m.filter(|m| m.deleted_at_ms.is_none_or(|d| d > seen.login_ms)) else {
            continue;
        };
        if !w.params.servers[i].imap {
            continue;
        }
        let (_, unread) = m.flag_between("\\Seen", seen.login_ms, seen.at_ms);
        if !seen.seen && !unread {
            v.violations.push(Violation {
                invariant: 13,
                key: Some(seen.key.clone()),
                message: format!(
                    "{}:{} was shown unread to client {} at {}, but its server had it \\Seen \
                     from that session's LOGIN ({}) until then",
                    s.host,
                    m.uidl,
                    seen.client,
                    fmt_ms(since_epoch(seen.at_ms)),
                    fmt_ms(since_epoch(seen.login_ms)),
                ),
            });
        } else if seen.seen && m.seen_by == Some(PHONE) && !read.contains(&seen.key) {
            w.coverage.insert(Cov::ImapPhoneReadShown);
        }
        let (with, without) = m.flag_between("\\Flagged", seen.login_ms, seen.at_ms);
        if (seen.flagged && with) || (!seen.flagged && without) {
            let phone = w
                .phone_stars
                .iter()
                .any(|(k, _, at)| *k == seen.key && *at < seen.login_ms);
            if phone && !stored.contains(&seen.key) {
                w.coverage.insert(Cov::ImapPhoneStarShown);
            }
            continue;
        }
        let (shown, had) = match seen.flagged {
            true => ("starred", "never had"),
            false => ("unstarred", "had"),
        };
        v.violations.push(Violation {
            invariant: 13,
            key: Some(seen.key.clone()),
            message: format!(
                "{}:{} was shown {shown} to client {} at {}, but its server {had} \\Flagged \
                 from that session's LOGIN ({}) until then",
                s.host,
                m.uidl,
                seen.client,
                fmt_ms(since_epoch(seen.at_ms)),
                fmt_ms(since_epoch(seen.login_ms)),
            ),
        });
    }
}

/// Invariant 12: an expunge answered at the IMAP front is final in every
/// session: a session that sent its LOGIN after it was answered must not
/// be shown the message again (its listing is taken after that), even
/// while the delete is still owed (another session of the user's, or the
/// client proxy's batch, holds it). Judged for messages the delete then
/// removed (one it never removed is invariant 4's to judge) whose UIDL no
/// other message of the server has.
pub fn check_expunges_final(w: &mut World, v: &mut Verdict) {
    let (shown, acked, logins) = w.mua.with(|m| {
        let logins: Vec<u64> = m.imap_logged_in.values().copied().collect();
        (
            m.imap_shown_again.clone(),
            m.imap_expunge_acked.clone(),
            logins,
        )
    });
    // Had it something to judge: a LOGIN sent while an answered expunge
    // was not done yet on its server.
    let judged = acked.iter().any(|(key, &at)| {
        let done = w
            .servers
            .iter()
            .find(|s| s.host == key.0)
            .and_then(|s| s.store.message_by_uid(&s.user, key.1))
            .and_then(|m| m.deleted_at_ms);
        logins.iter().any(|&l| l > at && done.is_none_or(|d| l < d))
    });
    if judged {
        w.coverage.insert(Cov::LoginWhileExpungeOwed);
    }
    for (key, acked, login, client) in shown {
        let Some(s) = w.servers.iter().find(|s| s.host == key.0) else {
            continue;
        };
        let Some(m) = s.store.message_by_uid(&s.user, key.1) else {
            continue;
        };
        // A UIDL the server gives two messages is never left out of a
        // listing: leaving out one would rename the other.
        let shared = s
            .store
            .messages(&s.user)
            .iter()
            .filter(|o| o.uidl == m.uidl)
            .count()
            > 1;
        if m.deleted_by.is_none() || shared {
            continue;
        }
        v.violations.push(Violation {
            invariant: 12,
            key: Some(key.clone()),
            message: format!(
                "{}:{} was shown to mail client {client}'s IMAP session that sent its LOGIN \
                 at {}, though its expunge was answered at {}",
                s.host,
                m.uidl,
                fmt_ms(login),
                fmt_ms(acked)
            ),
        });
    }
}

/// Invariant 14: a message the IMAP user marked unread (`UID STORE -FLAGS
/// (\\Seen)` answered `OK`) is unread on its IMAP server from that answer
/// until someone reads it again (or deletes it): no read mark made before
/// it (the session's own above all, which the edge still owed: a
/// session's marks are committed as it ends) is committed after it.
/// Judged for the last of the message's unreads when every one was
/// answered in turn, up to the next read by that mail client or the
/// phone; not for a message another mail client read (its read mark may
/// rightly be committed later).
pub fn check_unreads(w: &mut World, v: &mut Verdict) {
    let (unreads, reads_by) = w.mua.with(|m| (m.imap_unreads.clone(), m.reads_by.clone()));
    for (key, unreads) in unreads {
        let Some(s) = imap_server_of(w, &key) else {
            continue;
        };
        let Some(m) = s.store.message_by_uid(&s.user, key.1) else {
            continue;
        };
        let Some(last) = unreads.iter().max_by_key(|u| u.sent_ms) else {
            continue;
        };
        let in_turn = unreads.iter().all(|u| {
            u.answered_ms
                .is_some_and(|a| u.sent_ms == last.sent_ms || a <= last.sent_ms)
        });
        let Some(answered) = last.answered_ms.filter(|_| in_turn) else {
            continue;
        };
        let reads = reads_by.get(&key).map_or(&[][..], Vec::as_slice);
        if reads.iter().any(|&(c, _)| c != last.client) {
            continue;
        }
        let read_again = (reads.iter().map(|&(_, at)| at))
            .chain(
                w.phone_reads
                    .iter()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, at)| *at),
            )
            .filter(|&at| at > last.sent_ms);
        let until = read_again.chain(m.deleted_at_ms).min().unwrap_or(u64::MAX);
        if until <= answered {
            continue;
        }
        let (seen, _) = m.flag_between("\\Seen", answered, until - 1);
        if seen {
            let when = m
                .seen_at_ms
                .map_or("-".to_owned(), |t| fmt_ms(since_epoch(t)));
            v.violations.push(Violation {
                invariant: 14,
                key: Some(key.clone()),
                message: format!(
                    "{}:{} was \\Seen on its server (since {when}, by session {:?}), though client \
                     {} marked it unread (-FLAGS, sent at {}, answered OK at {}) and no one read \
                     it after, until {}",
                    s.host,
                    m.uidl,
                    m.seen_by,
                    last.client,
                    fmt_ms(since_epoch(last.sent_ms)),
                    fmt_ms(since_epoch(answered)),
                    match until {
                        u64::MAX => "the end".to_owned(),
                        t => fmt_ms(since_epoch(t)),
                    },
                ),
            });
            continue;
        }
        if m.had_flag_at("\\Seen", last.sent_ms) {
            w.coverage.insert(Cov::ImapUnreadStored);
        }
        // Its session's read mark would have been committed as the
        // session ended, within the span judged.
        if last.read_here && last.session_ended_ms.is_some_and(|e| e < until) {
            w.coverage.insert(Cov::ImapUnreadOwedReadDropped);
        }
    }
}
