//! Bodies and heads fetched from the servers for the serving loop: each
//! fetch is a worker's errand, run off the loop (a slow server never holds
//! up the line), its answer coming back through `done_rx` tagged with what
//! asked for it: the stream (a prefetch, or a `Retr` waiting on it) or a
//! `Top`.

use std::sync::Arc;

use causeway_net::Env;
use causeway_proto::OpError;
use causeway_proto::session::Reply;
use causeway_wire::link::LinkEnd;
use tokio::sync::oneshot;
use tracing::debug;

use super::{Channel, Done, Serving, WHOLE_MESSAGE, internal};
use crate::ledger::Target;
use crate::outbox::Key;
use crate::worker::Job;

/// Why a body or head was fetched.
pub(super) enum Purpose {
    /// A whole body, for the stream (prefetch or a `Retr` waiting on it).
    Body,
    /// A `Top` request's head.
    Top { id: u64 },
}

/// A worker's answer to a fetch, tagged with what asked for it.
pub(super) struct Fetched {
    key: Key,
    purpose: Purpose,
    result: Result<Vec<u8>, OpError>,
}

impl<E: Env> Serving<'_, E> {
    pub(super) fn fetch_body(&mut self, key: Key, waiters: Vec<u64>) {
        self.busy.insert(key.0.clone());
        self.fetching.insert(key.clone(), waiters);
        self.spawn_fetch(key, WHOLE_MESSAGE, Purpose::Body);
    }

    /// Asks the worker for `lines` of `key` (the whole body with
    /// [`WHOLE_MESSAGE`]); the answer comes back through `done_rx`.
    pub(super) fn spawn_fetch(&self, key: Key, lines: u32, purpose: Purpose) {
        let (reply, answer) = oneshot::channel();
        let target = Target::new(&key.1.uidl, key.1.size);
        let job = Job::Fetch {
            target,
            lines,
            reply,
        };
        let sent = self.errand(&key.0, job);
        let back = self.done_tx.clone();
        tokio::spawn(async move {
            let result = match sent {
                Ok(()) => answer.await.unwrap_or_else(|_| Err(internal())),
                Err(e) => Err(e),
            };
            let _ = back.send(Done::Fetched(Fetched {
                key,
                purpose,
                result,
            }));
        });
    }

    /// A worker answered a fetch.
    pub(super) async fn fetched(
        &mut self,
        channel: &mut Channel<E>,
        f: Fetched,
    ) -> Result<(), LinkEnd> {
        let Fetched {
            key,
            purpose,
            result,
        } = f;
        match purpose {
            // A resume forgot the request (it is asked again): dropped.
            Purpose::Top { id } if self.current != Some(id) => Ok(()),
            Purpose::Top { id } => {
                self.current = None;
                self.respond(channel, id, result.map(Reply::Body)).await
            }
            Purpose::Body => {
                self.busy.remove(&key.0);
                let waiters = self.fetching.remove(&key).unwrap_or_default();
                match result {
                    Ok(body) => {
                        let body = Arc::new(body);
                        self.replica.store_body(&key.0, &key.1, body.clone());
                        let urgent = !waiters.is_empty();
                        let Some(at) = self.replica.place(&key.0, &key.1) else {
                            // Fetched only for listed messages: never here.
                            for id in waiters {
                                self.current = None;
                                self.respond(channel, id, Err(internal())).await?;
                            }
                            return Ok(());
                        };
                        self.outbox.push(key, at, body, 0, urgent, waiters);
                        Ok(())
                    }
                    Err(e) => {
                        if waiters.is_empty() {
                            debug!(server = %key.0, uidl = %key.1.uidl, error = %e,
                                "a body wanted ahead of demand could not be fetched; it waits for a request");
                        }
                        for id in waiters {
                            self.current = None;
                            self.respond(channel, id, Err(e.clone())).await?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }
}
