//! Taking messages out of the selected folder: a delete (`UID STORE
//! \Deleted` and `UID EXPUNGE`, or a bare `EXPUNGE` only where it is
//! safe) and a move, each answered with the UIDs the server reported gone;
//! and the searches, one of which decides whether a bare `EXPUNGE` is safe.

use std::num::NonZeroU32;

use imap_types::command::CommandBody;
use imap_types::response::Data;
use imap_types::search::SearchKey;

use super::{ImapClient, ImapError};
use crate::command;
use causeway_net::{Env, Stream};

impl<E: Env, S: Stream> ImapClient<E, S> {
    /// Deletes exactly `uids`: `UID STORE +FLAGS.SILENT (\Deleted)`, then
    /// `UID EXPUNGE` of the same UIDs. Returns the UIDs the server reported
    /// expunged (those of `uids` it still had).
    ///
    /// A server without UIDPLUS has only the bare `EXPUNGE`, which removes
    /// every message flagged `\Deleted`, whoever flagged it. It is used only
    /// when `UID SEARCH DELETED` finds none but `uids`, before the STORE
    /// and again after it; otherwise [`ImapError::NoUidplus`], and the
    /// flags this call added are taken back. (Another client flagging a
    /// message in the one round trip between the second search and the
    /// EXPUNGE is not excluded; RFC 4315 exists for that.)
    pub async fn delete(&mut self, uids: &[NonZeroU32]) -> Result<Vec<NonZeroU32>, ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        let uidplus = self.capabilities().await?.contains("UIDPLUS");
        let flag = command::flag_deleted(uids)?;
        let expunge = if uidplus {
            self.run(flag, "UID STORE (\\Deleted)").await?;
            command::uid_expunge(uids)?
        } else {
            let already = self.flagged_deleted(uids).await?;
            self.run(flag, "UID STORE (\\Deleted)").await?;
            if let Err(e) = self.flagged_deleted(uids).await {
                let ours: Vec<NonZeroU32> = uids
                    .iter()
                    .copied()
                    .filter(|u| !already.contains(u))
                    .collect();
                if !ours.is_empty() {
                    let undo = command::unflag_deleted(&ours)?;
                    self.run(undo, "UID STORE -FLAGS (\\Deleted)").await?;
                }
                return Err(e);
            }
            CommandBody::Expunge
        };
        self.run_removing(expunge, "UID EXPUNGE").await
    }

    /// Moves exactly `uids` to `folder` (`UID MOVE`, RFC 6851; only where
    /// the server offers MOVE, as a mail client does). Returns the UIDs the
    /// server reported gone from the selected folder.
    pub async fn move_to(
        &mut self,
        uids: &[NonZeroU32],
        folder: &str,
    ) -> Result<Vec<NonZeroU32>, ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        let cmd = command::uid_move(uids, folder)?;
        self.run_removing(cmd, "UID MOVE").await
    }

    /// Runs `body`, which takes messages out of the selected folder, and
    /// returns the UIDs its `EXPUNGE` responses named.
    async fn run_removing(
        &mut self,
        body: CommandBody<'static>,
        what: &'static str,
    ) -> Result<Vec<NonZeroU32>, ImapError> {
        // The map is needed as it was before each EXPUNGE; `run` applies
        // them as they come, so replay them on a copy.
        let mut before = self.selected.clone().ok_or(ImapError::NotSelected)?;
        let answer = self.run(body, what).await?;
        let mut gone = Vec::new();
        for data in &answer.data {
            if let Data::Expunge(seq) = data
                && let Some(uid) = before.uid_at(*seq)
            {
                gone.push(uid);
            }
            before.apply(data)?;
        }
        Ok(gone)
    }

    /// The messages a text criterion matches (`UID SEARCH CHARSET UTF-8
    /// key`; the key is built by the caller), by UID. A `NO` (a criterion
    /// the server cannot search) is [`ImapError::Refused`].
    pub async fn search(&mut self, key: SearchKey<'static>) -> Result<Vec<NonZeroU32>, ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        self.searched(command::uid_search(key), "UID SEARCH").await
    }

    /// Runs a `UID SEARCH` and returns the UIDs it found.
    async fn searched(
        &mut self,
        body: CommandBody<'static>,
        what: &'static str,
    ) -> Result<Vec<NonZeroU32>, ImapError> {
        let answer = self.run(body, what).await?;
        let mut found = Vec::new();
        for data in answer.data {
            if let Data::Search(uids, ..) = data {
                found.extend(uids);
            }
        }
        Ok(found)
    }

    /// Those of `uids` flagged `\Deleted` now, or [`ImapError::NoUidplus`]
    /// if any other message is.
    async fn flagged_deleted(&mut self, uids: &[NonZeroU32]) -> Result<Vec<NonZeroU32>, ImapError> {
        let flagged = self
            .searched(command::search_deleted(), "UID SEARCH DELETED")
            .await?;
        let others = flagged.iter().filter(|u| !uids.contains(u)).count();
        if others > 0 {
            return Err(ImapError::NoUidplus { others });
        }
        Ok(flagged)
    }
}
