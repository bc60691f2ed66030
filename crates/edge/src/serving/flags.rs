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
    /// One a resume made the client proxy ask again has a second job; the
    /// first answer serves it, the other is dropped here.
    pub(super) async fn flags_stored(
        &mut self,
        channel: &mut Channel<E>,
        s: Stored,
    ) -> Result<(), LinkEnd> {
        if self.current != Some(s.id) {
            return Ok(());
        }
        self.current = None;
        self.respond(channel, s.id, s.result.map(|()| Reply::Done))
            .await
    }
}
