//! Flags the mail client stored, and read marks taken back.
//!
//! Flags go to the server as the mail client stores them (`XSTORE`); the
//! one that needs care is `\Seen` taken away ("mark as unread"): the read
//! marks owed on the message, by this worker or any other of the maildrop
//! (`crate::read_marks`), must never be committed after it, so the unread
//! takes them all back first, and every commit drops what was taken back
//! before its `QUIT`.

use causeway_net::Env;
use causeway_pop3::Command;
use causeway_proto::user::Protocol;
use causeway_proto::{ErrCode, OpError};
use tracing::{debug, info, warn};

use super::Worker;
use crate::broken::Broken;
use crate::journal::{self, Entry};
use crate::ledger::Target;
use crate::read_marks::Turn;

impl<E: Env> Worker<E> {
    /// Flags the mail client stored, set on the server now (`XSTORE`), in
    /// a session opened again once if the one held was lost: storing a
    /// flag twice changes nothing. A `\Seen` taken away (the mail client
    /// marked the message unread) first drops the read mark owed on it,
    /// durably: once the server's `\Seen` is gone, a mark committed later
    /// would undo what the mail client was told is done.
    pub(super) async fn store_flags(
        &mut self,
        target: &Target,
        add: bool,
        flags: Vec<String>,
    ) -> Result<(), OpError> {
        if self.spec.protocol == Protocol::Pop3 {
            return Err(OpError::new(
                Some(ErrCode::SysPerm),
                format!(
                    "server {} speaks POP3, which keeps no flags; they are kept by the client \
                     proxy only",
                    self.spec.name
                ),
            ));
        }
        let unread = !add && flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
        // Held until the server answered: no commit of the maildrop comes
        // between the marks taken back and the `-\Seen`.
        let _turn = match unread && !self.config().broken(Broken::UnreadKeepsOwedRead) {
            true => Some(self.take_back_read_marks(target).await?),
            false => None,
        };
        let flags: Vec<Vec<u8>> = flags.into_iter().map(String::into_bytes).collect();
        self.asked_twice(|w| {
            Ok(Command::Xstore {
                msg: w.number(target)?,
                add,
                flags: flags.clone(),
            })
        })
        .await
        .map(drop)
    }

    /// The mail client marked `target` unread: every read mark owed on
    /// it, by any worker of the maildrop, is erased from the journal and
    /// taken back, and this worker's is dropped. Returns the maildrop's
    /// turn, to hold until the server answered. `Err` (nothing changed)
    /// when the journal cannot erase them: a crash would bring one back.
    async fn take_back_read_marks(&mut self, target: &Target) -> Result<Turn, OpError> {
        let reads = self.shared.maildrops.reads.of(&self.key);
        let turn = reads.turn().await;
        let entries = reads.entries_of(target);
        if !entries.is_empty() {
            if let Err(e) = journal::erase(entries).await {
                warn!(session = %self.session, server = %self.spec.name, uidl = %target.uidl,
                    error = %e, "journal: could not erase a read mark the mail client took back \
                    (check the journal's disk); the message is not marked unread");
                return Err(OpError::new(
                    Some(ErrCode::SysTemp),
                    "the edge could not record durably that the message is unread; nothing \
                     was changed",
                ));
            }
        }
        if !self.config().broken(Broken::UnreadSparesOtherSessions) {
            reads.take_back(target);
        }
        if self.ledger.unread(target) {
            debug!(session = %self.session, server = %self.spec.name, uidl = %target.uidl,
                "a read mark owed was dropped: the mail client marked the message unread");
        }
        Ok(turn)
    }

    /// Before a `QUIT`, in the maildrop's turn: drops the read marks an
    /// unread took back since they were owed, in any session of the
    /// maildrop. A mark whose `RETR` this server session already had is
    /// taken back there too (`XSTORE n -\Seen`), or the `QUIT` would mark
    /// the message read. Returns the turn, to hold until the `QUIT` is
    /// answered, and the marks' journal entries, to erase.
    pub(super) async fn drop_taken_back(&mut self) -> Result<(Turn, Vec<Entry>), OpError> {
        let turn = self.shared.maildrops.reads.of(&self.key).turn().await;
        let mut entries = Vec::new();
        for back in self.ledger.taken_back() {
            info!(session = %self.session, server = %self.spec.name, uidl = %back.target.uidl,
                "a read mark owed was dropped: the mail client marked the message unread in \
                 another session");
            entries.extend(back.entries);
            let Some(msg) = back.sent else { continue };
            let cmd = Command::Xstore {
                msg,
                add: false,
                flags: vec![b"\\Seen".to_vec()],
            };
            // A refusal still takes back the session's `RETR` (it is
            // forgotten before the server is asked), and the message was
            // not marked read by it: nothing more to do.
            let r = match self.exec(&cmd).await {
                Ok(r) => r,
                Err(e) => {
                    drop(turn);
                    self.erase(entries).await;
                    return Err(e);
                }
            };
            if !r.status.is_ok() {
                debug!(session = %self.session, server = %self.spec.name, uidl = %back.target.uidl,
                    answer = %String::from_utf8_lossy(&r.status.text),
                    "the server refused to take away \\Seen from a message it had not marked");
            }
        }
        Ok((turn, entries))
    }
}
