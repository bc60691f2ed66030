//! `Search`: one text criterion of the mail client's `SEARCH`, searched by
//! the IMAP server (`crate::worker`'s `search` says why there).
//!
//! It runs off the loop, as a fetch does, and the answer names only
//! messages of the session's listing, which is all the client proxy can
//! show: a message the server holds that the listing does not (it came
//! after the login) is left out, as it is of every other answer in the
//! session.

use causeway_net::Env;
use causeway_pop3::search::TextKey;
use causeway_proto::OpError;
use causeway_proto::session::{MessageId, Place, Reply};
use causeway_wire::link::LinkEnd;

use super::{Channel, Done, Serving};
use crate::worker::Job;

/// A worker's answer to a `Search`.
pub(super) struct Found {
    id: u64,
    server: String,
    result: Result<Vec<MessageId>, OpError>,
}

impl<E: Env> Serving<'_, E> {
    /// Starts request `id`'s `Search` at `server`'s worker: `None` while it
    /// runs (the request is current; [`Serving::found`] answers it), or
    /// why it cannot be done.
    pub(super) fn search(
        &mut self,
        id: u64,
        server: &str,
        key: TextKey,
    ) -> Option<Result<Reply, OpError>> {
        let name = server.to_owned();
        let job = |reply| Job::Search { key, reply };
        let done = move |result| {
            Done::Found(Found {
                id,
                server: name,
                result,
            })
        };
        if let Err(e) = self.errand_answered(server, job, done) {
            return Some(Err(e));
        }
        self.current = Some(id);
        None
    }

    /// The worker answered a `Search`: the messages found that the
    /// session's listing has, sent if the request is still current.
    pub(super) async fn found(
        &mut self,
        channel: &mut Channel<E>,
        f: Found,
    ) -> Result<(), LinkEnd> {
        let result = f.result.map(|found| {
            let mut listed: Vec<(Place, MessageId)> = (found.into_iter())
                .filter_map(|m| Some((self.replica.place(&f.server, &m)?, m)))
                .collect();
            listed.sort_unstable();
            listed.dedup();
            let msgs = listed.into_iter().map(|(_, m)| m).collect();
            Reply::Found { msgs }
        });
        self.respond_current(channel, f.id, result).await
    }
}
