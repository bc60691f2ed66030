//! `Store`: flags the mail client stored on a message (`\Flagged`,
//! `\Answered`, keywords), set on its IMAP server by the server's worker.
//!
//! Why it is not owed work, as a read mark or a delete is: a flag promises
//! nothing about delivery and removes nothing, and storing it twice changes
//! nothing. So it is done at once, and the mail client hears `OK` only once
//! the server said so; a cut before that answer leaves the client proxy to
//! ask again after the resume (or its mail client to store again), which is
//! harmless. It runs off the loop, as a fetch does: a worker busy with a
//! large body never holds up the line.
//!
//! `\Seen` may only be taken away (the mail client marked a message
//! unread; the worker drops the read mark it owes first): a read mark is
//! made by delivery. `\Deleted` is never stored: a delete is owed work.

use causeway_net::Env;
use causeway_proto::session::{MAX_APPEND_FLAGS, MessageId, Reply};
use causeway_proto::{ErrCode, OpError};
use causeway_wire::link::LinkEnd;

use super::{Channel, Done, Serving};
use crate::ledger::Target;
use crate::worker::Job;

/// A worker's answer to a `Store`.
pub(super) struct Stored {
    id: u64,
    result: Result<(), OpError>,
}

impl<E: Env> Serving<'_, E> {
    /// Starts request `id`'s `Store` at `server`'s worker: `None` while it
    /// runs (the request is current; [`Serving::flags_stored`] answers
    /// it), or why it cannot be done.
    pub(super) fn store_flags(
        &mut self,
        id: u64,
        server: &str,
        msg: MessageId,
        add: bool,
        flags: Vec<String>,
    ) -> Option<Result<Reply, OpError>> {
        if flags.is_empty() || flags.len() > MAX_APPEND_FLAGS {
            return Some(Err(OpError::new(
                Some(ErrCode::SysPerm),
                format!("{} flags: 1 to {MAX_APPEND_FLAGS} are stored", flags.len()),
            )));
        }
        if let Some(why) = not_stored(add, &flags) {
            return Some(Err(OpError::new(Some(ErrCode::SysPerm), why)));
        }
        if let Err(e) = self.replica.check(server, &msg) {
            return Some(Err(e));
        }
        let job = |reply| Job::Store {
            target: Target::new(&msg.uidl, msg.size),
            add,
            flags,
            reply,
        };
        let done = move |result| Done::FlagsStored(Stored { id, result });
        if let Err(e) = self.errand_answered(server, job, done) {
            return Some(Err(e));
        }
        self.current = Some(id);
        None
    }

    /// The worker answered a `Store`: sent if the request is still current.
    pub(super) async fn flags_stored(
        &mut self,
        channel: &mut Channel<E>,
        s: Stored,
    ) -> Result<(), LinkEnd> {
        let result = s.result.map(|()| Reply::Done);
        self.respond_current(channel, s.id, result).await
    }
}

/// Why a `Store` of `flags` is refused, if it is: a read mark comes from a
/// delivery, a delete is owed work (`Dele`).
fn not_stored(add: bool, flags: &[String]) -> Option<&'static str> {
    let is = |name: &str| flags.iter().any(|f| f.eq_ignore_ascii_case(name));
    if is("\\Deleted") {
        return Some("\\Deleted is not stored: a delete is made with DELE");
    }
    if add && is("\\Seen") {
        return Some("\\Seen is not stored: a message is marked read once delivered");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::not_stored;

    #[test]
    fn seen_is_only_taken_away_and_deleted_never_stored() {
        let f = |fs: &[&str]| fs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(not_stored(false, &f(&["\\Seen", "\\Flagged"])), None);
        assert_eq!(not_stored(true, &f(&["\\Flagged", "$Label1"])), None);
        assert!(not_stored(true, &f(&["\\seen"])).is_some());
        assert!(not_stored(false, &f(&["\\Deleted"])).is_some());
    }
}
