//! The IMAP mail user's stars: in some sessions it stars or unstars
//! (`UID STORE ±FLAGS (\\Flagged)`) one or two of the messages it has
//! whole, as a person does, and records each STORE and its answer for
//! invariant 11 (the server's flag as the last answered STORE left it).
//! Its choices come from a stream of their own (`Mua::flag_rng`), so that
//! every other choice of each seed stays what it was before.
//!
//! It also records the star and read mark each listing shows on the
//! messages it knows, for invariant 13 (what the server had, its phone's
//! included).

use std::num::NonZeroU32;

use super::imap::Client;
use super::record::{Ended, FlagShown, FlagStore, MsgKey};
use super::{Mua, sim_ms};
use causeway_client::TRASH;
use causeway_net::Env;

/// A UID as a listing showed it: (UID, `\\Flagged`, `\\Seen`).
pub(super) type Shown = (NonZeroU32, bool, bool);

/// How often a session stars or unstars (`\\Flagged`) some messages.
pub(super) const FLAG_CHANCE: f64 = 0.3;

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
