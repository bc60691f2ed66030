//! The IMAP mail user's stars: in some sessions it stars or unstars
//! (`UID STORE ±FLAGS (\\Flagged)`) one or two of the messages it has
//! whole, as a person does, and records each STORE and its answer for
//! invariant 11 (the server's flag as the last answered STORE left it).
//! Its choices come from a stream of their own (`Mua::flag_rng`), so that
//! every other choice of each seed stays what it was before.
//!
//! In some sessions it also marks one of them unread (`UID STORE -FLAGS
//! (\\Seen)`), often one it read in that very session, whose read mark
//! the edge still owes: invariant 14 holds the server to "unread" from
//! the answer on, until someone reads it again.
//!
//! It also records the star and read mark each listing shows on the
//! messages it knows, for invariant 13 (what the server had, its phone's
//! included).

use std::num::NonZeroU32;

use super::imap::Client;
use super::record::{Ended, FlagShown, FlagStore, MsgKey, Unread};
use super::{Mua, sim_ms};
use causeway_client::TRASH;
use causeway_net::Env;

/// A UID as a listing showed it: (UID, `\\Flagged`, `\\Seen`).
pub(super) type Shown = (NonZeroU32, bool, bool);

/// How often a session stars or unstars (`\\Flagged`) some messages.
pub(super) const FLAG_CHANCE: f64 = 0.3;

/// How often a session marks a message it has whole unread.
pub(super) const UNREAD_CHANCE: f64 = 0.4;

impl Mua {
    /// Stars or unstars (`\Flagged`) one or two of the messages it has
    /// whole, as a person does: invariant 11 holds the server's flag to
    /// the last STORE answered `OK`.
    pub(super) async fn flag_some(
        &self,
        c: &mut Client,
        whole: &[(NonZeroU32, Option<MsgKey>)],
        commands: &mut u32,
    ) -> Result<(), Ended> {
        let picked: Vec<(NonZeroU32, MsgKey)> = whole
            .iter()
            .filter_map(|(u, k)| Some((*u, k.clone()?)))
            .filter(|_| self.flag_rng.chance(0.3))
            .take(2)
            .collect();
        if picked.is_empty() {
            return Ok(());
        }
        let (add, sent_ms) = (self.flag_rng.chance(0.6), sim_ms());
        self.log.with(|m| {
            for (_, k) in &picked {
                let stores = m.imap_flag_stores.entry(k.clone()).or_default();
                stores.push(FlagStore {
                    add,
                    sent_ms,
                    answered_ms: None,
                });
            }
        });
        *commands += 1;
        let uids: Vec<NonZeroU32> = picked.iter().map(|(u, _)| *u).collect();
        if let Err(e) = c.store_flags(&uids, add, &["\\Flagged".to_owned()]).await {
            return Err(Ended::Broken(format!("UID STORE (\\Flagged): {e}")));
        }
        let now = sim_ms();
        self.log.with(|m| {
            for (_, k) in &picked {
                let ours = m
                    .imap_flag_stores
                    .get_mut(k)
                    .and_then(|v| v.iter_mut().rev().find(|s| s.sent_ms == sent_ms));
                if let Some(s) = ours {
                    s.answered_ms = Some(now);
                }
            }
        });
        Ok(())
    }

    /// Marks one of the messages it has whole unread, as a person does
    /// ("mark as unread") to come back to it: invariant 14 holds its
    /// server to that once the STORE is answered `OK`. Returns its UID.
    pub(super) async fn unread_one(
        &self,
        c: &mut Client,
        whole: &[(NonZeroU32, Option<MsgKey>)],
        session: u32,
        commands: &mut u32,
    ) -> Result<Option<NonZeroU32>, Ended> {
        // One the folder still shows (another client may have moved or
        // expunged it since: a STORE of it changes nothing), of an IMAP
        // server when it can: a POP3 server keeps no flags.
        let shown = |u: NonZeroU32| c.folder().is_some_and(|f| f.seq_of(u).is_some());
        let known: Vec<(NonZeroU32, &MsgKey)> = whole
            .iter()
            .filter(|(u, _)| shown(*u))
            .filter_map(|(u, k)| Some((*u, k.as_ref()?)))
            .collect();
        let on_imap: Vec<(NonZeroU32, &MsgKey)> = (known.iter().copied())
            .filter(|(_, k)| self.stores.iter().any(|s| s.host == k.0 && s.imap))
            .collect();
        let known = if on_imap.is_empty() { known } else { on_imap };
        if known.is_empty() {
            return Ok(None);
        }
        let (uid, key) = known[self.flag_rng.range(0, known.len() as u64) as usize];
        let sent_ms = self.env.unix_millis();
        self.log.with(|m| {
            let login = m.imap_logged_in.get(&(self.client, session)).copied();
            let read_here = (m.reads_by.get(key).into_iter().flatten())
                .any(|&(c, at)| c == self.client && login.is_some_and(|l| at >= l));
            m.imap_unreads.entry(key.clone()).or_default().push(Unread {
                client: self.client,
                session,
                session_ended_ms: None,
                sent_ms,
                answered_ms: None,
                read_here,
            });
        });
        *commands += 1;
        if let Err(e) = c.unmark_seen(&[uid]).await {
            return Err(Ended::Broken(format!("UID STORE (-\\Seen): {e}")));
        }
        let now = self.env.unix_millis();
        self.log.with(|m| {
            let ours = m
                .imap_unreads
                .get_mut(key)
                .and_then(|v| v.iter_mut().rev().find(|u| u.sent_ms == sent_ms));
            if let Some(u) = ours {
                u.answered_ms = Some(now);
            }
        });
        Ok(Some(uid))
    }

    /// A SELECT of `folder` (under UIDVALIDITY `validity`) in session
    /// `session` showed `starred` ([`Shown`]): recorded for the
    /// messages the user knows by those UIDs. Not for its Trash, whose
    /// messages the client proxy keeps itself.
    pub(super) fn saw_stars(
        &self,
        (folder, validity): (&str, Option<NonZeroU32>),
        session: u32,
        starred: &[Shown],
    ) {
        let Some(validity) = validity.filter(|_| folder != TRASH) else {
            return;
        };
        let at_ms = self.env.unix_millis();
        self.log.with(|m| {
            let Some(&login_ms) = m.imap_logged_in.get(&(self.client, session)) else {
                return;
            };
            for &(uid, flagged, seen) in starred {
                let slot = (self.client, folder.to_owned(), validity.get(), uid.get());
                if let Some((key, _)) = m.imap_uids.get(&slot) {
                    m.imap_flags_shown.push(FlagShown {
                        key: key.clone(),
                        flagged,
                        seen,
                        client: self.client,
                        login_ms,
                        at_ms,
                    });
                }
            }
        });
    }
}
