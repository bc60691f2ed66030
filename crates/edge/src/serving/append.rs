//! `Append`: a message the mail client stores in a server's folder (IMAP
//! APPEND; its Sent and Drafts), carried up the line in `Upload` pieces
//! and handed to the server's worker.
//!
//! Why it is shaped so: an APPEND is the one request that adds mail, and
//! adding it twice is as wrong as losing it. So:
//!
//! - The message arrives in pieces, in order, into one [`Upload`] per
//!   session ([`Uploads`]); a resume tells the client proxy how much of it
//!   is here, and it sends on from there. Memory: at most
//!   [`MAX_APPEND`] per session, freed once the worker has stored the
//!   message, and all sessions' uploads together within the edge's upload
//!   budget (`upload_total_bytes`): an upload that does not fit is counted,
//!   not kept, and refused for now (a mail client tries again later), so
//!   that many sessions storing big attachments at once cannot exhaust the
//!   edge's memory.
//! - It is done at most once per request id. A resume forgets the request
//!   in progress (the client proxy asks again with the same id), not its
//!   effect: asked again while the worker still stores it, it waits for
//!   that answer ([`Serving::appending`]); asked again after, it gets the
//!   answer kept ([`Serving::answered`]).
//! - It does not block the session: the worker stores it while the loop
//!   goes on answering pings and streaming bodies, as for a fetch.
//! - The worker never sends it twice either (`worker::Worker::append`): a
//!   server session lost after the command went out may have stored it,
//!   so the mail client hears that the outcome is unknown, as it would on a
//!   lost connection of its own.

use causeway_cache::{Held, Pool};
use causeway_net::Env;
use causeway_proto::session::{MAX_APPEND, MAX_APPEND_FLAGS, Reply, UPLOAD_PIECE};
use causeway_proto::{ErrCode, OpError};
use causeway_wire::link::LinkEnd;
use tracing::warn;

use super::{Channel, Done, Serving};
use crate::broken::Broken;
use crate::worker::Job;

/// The message of an `Append` on its way up: one per session, in order,
/// at most [`MAX_APPEND`] bytes, and all sessions' together at most what
/// the edge's upload budget allows (`upload_total_bytes`).
pub(crate) struct Uploads {
    /// The upload budget every session's uploads share.
    budget: Pool,
    upload: Option<Upload>,
}

struct Upload {
    id: u64,
    /// What has arrived; taken (emptied) when the request hands it to the
    /// worker, whose length then stays known for a resume.
    bytes: Vec<u8>,
    taken: Option<u64>,
    /// `bytes` against the budget, held until the worker is done with the
    /// message ([`Uploads::done`]), the upload is replaced, or its session
    /// ends.
    held: Held,
    /// The budget was full: what arrived is counted, not kept, and the
    /// request is refused.
    over: Option<u64>,
}

/// Why request `id`'s message cannot be handed over.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NotHere {
    /// Only this many of its bytes arrived.
    Partial(u64),
    /// The upload budget could not hold it.
    OverBudget,
}

impl Uploads {
    pub fn new(budget: Pool) -> Self {
        Uploads {
            budget,
            upload: None,
        }
    }

    /// Takes piece `offset..` of request `id`'s message. A new id starts
    /// from 0 (the client proxy gave up the one before); a piece that
    /// repeats bytes held (sent again after a cut) adds only what is new.
    /// `Err`: the client proxy broke the protocol.
    pub fn piece(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<(), String> {
        if data.len() > UPLOAD_PIECE {
            return Err(format!(
                "an upload piece of {} bytes; at most {UPLOAD_PIECE}",
                data.len()
            ));
        }
        let u = match &mut self.upload {
            Some(u) if u.id == id => u,
            _ if offset == 0 => {
                // The one before gives its bytes back first.
                self.upload = None;
                self.upload.insert(Upload {
                    id,
                    bytes: Vec::new(),
                    taken: None,
                    held: self.budget.hold(),
                    over: None,
                })
            }
            _ => return Err(format!("an upload of request {id} that starts at {offset}")),
        };
        if u.taken.is_some() {
            return Ok(());
        }
        let arrived = u.over.unwrap_or(u.bytes.len() as u64);
        if offset > arrived {
            return Err(format!(
                "an upload piece at {offset} where {arrived} bytes arrived"
            ));
        }
        let skip = usize::try_from(arrived - offset).map_or(data.len(), |n| n.min(data.len()));
        let new = &data[skip..];
        if arrived as usize + new.len() > MAX_APPEND {
            return Err(format!("an upload over {MAX_APPEND} bytes"));
        }
        if let Some(n) = &mut u.over {
            *n += new.len() as u64;
        } else if u.held.grow(new.len()) {
            u.bytes.extend_from_slice(new);
        } else {
            warn!(
                request = id,
                held = u.bytes.len(),
                budget_used = self.budget.used(),
                "the upload budget (upload_total_bytes) is full: a message the mail \
                 client stores is refused (it may try again later); raise \
                 upload_total_bytes if this recurs"
            );
            u.over = Some(arrived + new.len() as u64);
            u.bytes = Vec::new();
            u.held = self.budget.hold();
        }
        Ok(())
    }

    /// The upload here, for `Resumed`: its request and the bytes that
    /// arrived (kept or, over the budget, counted).
    pub fn held(&self) -> Option<(u64, u64)> {
        self.upload.as_ref().map(|u| {
            let arrived = u.over.unwrap_or(u.bytes.len() as u64);
            (u.id, u.taken.unwrap_or(arrived))
        })
    }

    /// The worker answered request `id`: the message it held is freed, and
    /// the budget it took is given back.
    pub fn done(&mut self, id: u64) {
        if let Some(u) = self.upload.as_mut().filter(|u| u.id == id) {
            u.held = self.budget.hold();
        }
    }

    /// Request `id`'s message, `size` bytes, handed over once (`keep`: a
    /// copy is kept, as only the broken variant `AppendAgainOnResume`
    /// does).
    pub fn take(&mut self, id: u64, size: u64, keep: bool) -> Result<Vec<u8>, NotHere> {
        if size == 0 {
            // Nothing went up for it (the server judges an empty message).
            return Ok(Vec::new());
        }
        match self.upload.as_mut() {
            Some(u) if u.id == id && u.over == Some(size) => Err(NotHere::OverBudget),
            Some(u)
                if u.id == id && u.bytes.len() as u64 == size && (keep || u.taken.is_none()) =>
            {
                u.taken = Some(size);
                Ok(match keep {
                    true => u.bytes.clone(),
                    false => std::mem::take(&mut u.bytes),
                })
            }
            _ => Err(NotHere::Partial(
                self.held().filter(|(u, _)| *u == id).map_or(0, |(_, n)| n),
            )),
        }
    }
}

/// A worker's answer to an `Append`.
pub(super) struct Appended {
    id: u64,
    /// The UIDL the stored message will be listed by, if known.
    result: Result<Option<String>, OpError>,
}

impl<E: Env> Serving<'_, E> {
    /// Starts request `id`'s APPEND at `server`'s worker: `None` while it
    /// runs (the request is current; [`Serving::appended`] answers it), or
    /// the refusal of a message over the limits.
    pub(super) fn append(
        &mut self,
        id: u64,
        server: &str,
        flags: Vec<String>,
        size: u64,
    ) -> Option<Result<Reply, OpError>> {
        if flags.len() > MAX_APPEND_FLAGS {
            return Some(Err(OpError::new(
                Some(ErrCode::SysPerm),
                format!(
                    "{} flags: at most {MAX_APPEND_FLAGS} are stored",
                    flags.len()
                ),
            )));
        }
        let keep = self.config.broken(Broken::AppendAgainOnResume);
        let message = match self.uploads.take(id, size, keep) {
            Ok(message) => message,
            Err(NotHere::Partial(held)) => {
                return Some(Err(OpError::new(
                    Some(ErrCode::SysTemp),
                    format!("the message did not arrive whole ({held} of {size} octets)"),
                )));
            }
            Err(NotHere::OverBudget) => {
                return Some(Err(OpError::new(
                    Some(ErrCode::SysTemp),
                    "the edge holds as many messages on their way to their servers as its \
                     memory for them allows; nothing was stored: try again in a few minutes",
                )));
            }
        };
        let job = |reply| Job::Append {
            flags,
            message,
            reply,
        };
        let done = move |result| Done::Appended(Appended { id, result });
        if let Err(e) = self.errand_answered(server, job, done) {
            return Some(Err(e));
        }
        self.current = Some(id);
        self.appending = Some(id);
        None
    }

    /// The worker answered an APPEND: kept for a request asked again, and
    /// sent now if the request is still current (a resume since forgot it,
    /// and the client proxy asks again).
    pub(super) async fn appended(
        &mut self,
        channel: &mut Channel<E>,
        a: Appended,
    ) -> Result<(), LinkEnd> {
        let Appended { id, result } = a;
        self.appending = None;
        self.uploads.done(id);
        let result = result.map(|uidl| Reply::Stored { uidl });
        self.answered = Some((id, result.clone()));
        if self.current != Some(id) {
            return Ok(());
        }
        self.current = None;
        self.respond(channel, id, result).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unbounded() -> Uploads {
        Uploads::new(Pool::new(usize::MAX))
    }

    proptest! {
        /// A message sent in pieces, each cut going back to any byte
        /// already sent (what a resume may do, resending what was in
        /// flight), arrives exactly: every byte once, in order.
        #[test]
        fn pieces_resent_from_any_earlier_byte_assemble_the_message(
            message in proptest::collection::vec(any::<u8>(), 0..3 * UPLOAD_PIECE),
            backs in proptest::collection::vec((any::<bool>(), any::<u16>()), 0..12),
        ) {
            let mut u = unbounded();
            let (mut at, mut backs) = (0usize, backs.into_iter());
            while at < message.len() {
                let end = message.len().min(at + UPLOAD_PIECE);
                u.piece(9, at as u64, &message[at..end]).unwrap();
                at = end;
                if let Some((true, back)) = backs.next() {
                    at = at.saturating_sub(usize::from(back));
                }
            }
            prop_assert_eq!(u.take(9, message.len() as u64, false).unwrap(), message);
        }
    }

    #[test]
    fn pieces_go_in_order_and_a_repeat_adds_only_what_is_new() {
        let mut u = unbounded();
        u.piece(7, 0, b"hello ").unwrap();
        // Sent again after a cut, with more: only " world" is new.
        u.piece(7, 3, b"lo world").unwrap();
        assert_eq!(u.held(), Some((7, 11)));
        assert!(u.piece(7, 12, b"gap").unwrap_err().contains("at 12"));
        assert_eq!(
            u.take(7, 10, false),
            Err(NotHere::Partial(11)),
            "not the size asked"
        );
        assert_eq!(u.take(7, 11, false).unwrap(), b"hello world");
        // Handed over once; its length stays known for a resume.
        assert_eq!(u.held(), Some((7, 11)));
        assert_eq!(u.take(7, 11, false), Err(NotHere::Partial(11)));
        u.piece(7, 0, b"late").unwrap();
        assert_eq!(u.held(), Some((7, 11)), "a late piece changes nothing");
        assert_eq!(
            u.take(8, 0, false).unwrap(),
            b"",
            "an empty message needs no piece"
        );
    }

    #[test]
    fn a_new_request_starts_from_zero_and_nothing_passes_the_caps() {
        let mut u = unbounded();
        assert!(u.piece(1, 5, b"x").is_err(), "no upload starts mid-way");
        u.piece(1, 0, b"first").unwrap();
        u.piece(2, 0, b"second").unwrap();
        assert_eq!(u.held(), Some((2, 6)));
        assert_eq!(
            u.take(1, 5, false),
            Err(NotHere::Partial(0)),
            "the first was given up"
        );
        let big = vec![b'x'; UPLOAD_PIECE + 1];
        assert!(u.piece(2, 6, &big).unwrap_err().contains("at most"));
        let piece = vec![b'x'; UPLOAD_PIECE];
        let mut at = 6u64;
        let err = loop {
            match u.piece(2, at, &piece) {
                Ok(()) => at += piece.len() as u64,
                Err(e) => break e,
            }
        };
        assert!(err.contains("over"), "{err}");
        assert!(u.held().unwrap().1 as usize <= MAX_APPEND);
    }

    #[test]
    fn an_upload_over_the_budget_is_counted_not_kept_and_refused() {
        let budget = Pool::new(10);
        let (mut a, mut b) = (Uploads::new(budget.clone()), Uploads::new(budget.clone()));
        a.piece(1, 0, b"sixsix").unwrap();
        b.piece(2, 0, b"four").unwrap();
        assert_eq!(budget.used(), 10);
        // b's next piece does not fit: it is counted (a resume goes on
        // from there), not kept, and what b held is given back.
        b.piece(2, 4, b"more").unwrap();
        assert_eq!((b.held(), budget.used()), (Some((2, 8)), 6));
        b.piece(2, 8, b"!!").unwrap();
        assert_eq!(b.take(2, 7, false), Err(NotHere::Partial(10)));
        assert_eq!(b.take(2, 10, false), Err(NotHere::OverBudget));
        // a is whole and stays so until its worker is done with it; a new
        // request of b starts afresh.
        assert_eq!(a.take(1, 6, false).unwrap(), b"sixsix");
        assert_eq!(budget.used(), 6);
        a.done(1);
        assert_eq!((budget.used(), a.held()), (0, Some((1, 6))));
        b.piece(3, 0, b"ok").unwrap();
        assert_eq!(b.take(3, 2, false).unwrap(), b"ok");
        drop((a, b));
        assert_eq!(budget.used(), 0);
    }
}
