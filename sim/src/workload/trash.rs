//! The IMAP mail user deletes as Thunderbird does, by moving mail to the
//! client proxy's own Trash (`UID MOVE`), and later works in Trash: reads
//! some, then empties it or moves the messages back to their folder.
//! Moved to Trash is not deleted (invariant 1: the message stays on its
//! server); moved back, it is a new message of its folder.

use std::num::NonZeroU32;

use super::Mua;
use super::imap::Client;
use super::record::{Ended, MsgKey};

/// The client proxy's own Trash (`causeway_client::TRASH`).
pub(super) const TRASH: &str = causeway_client::TRASH;

/// How often the messages a session would delete go to Trash instead
/// (`UID MOVE`, as Thunderbird deletes).
pub(super) const TRASH_CHANCE: f64 = 0.3;

/// Once the user moved mail to Trash, how often a session works there: it
/// reads some, then deletes them (emptying the Trash) or, half the time,
/// moves them back to their folder.
pub(super) const TRASH_SESSION_CHANCE: f64 = 0.3;

impl Mua {
    /// Deletes as Thunderbird does: `UID MOVE` to Trash. The messages stay
    /// on their servers (invariant 1: no delete was asked), and Trash may
    /// show them from the moment the move is sent.
    pub(super) async fn move_to_trash(
        &self,
        c: &mut Client,
        doomed: &[(NonZeroU32, MsgKey)],
        commands: &mut u32,
    ) -> Ended {
        for (_, k) in doomed {
            // Moved back, it is a new message of its folder.
            self.log.delete_sent(k);
        }
        self.log
            .with(|m| m.imap_trashed.extend(doomed.iter().map(|(_, k)| k.clone())));
        *commands += 1;
        let uids: Vec<NonZeroU32> = doomed.iter().map(|(u, _)| *u).collect();
        match c.move_to(&uids, TRASH).await {
            Ok(gone) => {
                self.log
                    .with(|m| m.imap_moved_to_trash += gone.len() as u32);
                Ended::Quit
            }
            Err(e) => Ended::Broken(format!("UID MOVE to {TRASH}: {e}")),
        }
    }

    /// Moves some of `doomed` (in Trash) back: those whose folder is the
    /// first one's. (They stay in `imap_trashed`: another session of the
    /// user may still show them in Trash until it lists it again.)
    pub(super) async fn put_back(
        &self,
        c: &mut Client,
        doomed: &[(NonZeroU32, MsgKey)],
        commands: &mut u32,
    ) -> Ended {
        let home = self.folder_of(&doomed[0].1.0).to_owned();
        let uids: Vec<NonZeroU32> = doomed
            .iter()
            .filter(|(_, k)| self.folder_of(&k.0) == home)
            .map(|(u, _)| *u)
            .collect();
        *commands += 1;
        match c.move_to(&uids, &home).await {
            Ok(gone) => {
                self.log.with(|m| m.imap_put_back += gone.len() as u32);
                Ended::Quit
            }
            Err(e) => Ended::Broken(format!("UID MOVE back to {home}: {e}")),
        }
    }
}
