//! The IMAP mail user's stars: in some sessions it stars or unstars
//! (`UID STORE ±FLAGS (\\Flagged)`) one or two of the messages it has
//! whole, as a person does, and records each STORE and its answer for
//! invariant 11 (the server's flag as the last answered STORE left it).
//! Its choices come from a stream of their own (`Mua::flag_rng`), so that
//! every other choice of each seed stays what it was before.

use std::num::NonZeroU32;

use super::imap::Client;
use super::record::{Ended, FlagStore, MsgKey};
use super::{Mua, sim_ms};

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
}
