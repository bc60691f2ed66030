//! The requests that change a mailbox (DELE, batched deletes, RSET) and
//! read marks: each is made owed to its server's worker, durably in the
//! crash journal first when there is one (see the `serving` module doc for
//! the rules, and `docs/architecture.md`, "Crash safety").

use causeway_proto::session::{DeleteOp, MessageId, Reply};
use causeway_proto::{ErrCode, OpError};
use tracing::warn;

use super::{Serving, Workers};
use crate::broken::Broken;
use crate::ledger::{Owed, Target, what};
use crate::worker::{Job, WorkerHandle};
use causeway_net::Env;

impl<E: Env> Serving<'_, E> {
    /// Makes `owed` on `msg` owed to `server`'s worker: durable in the
    /// journal first (when there is one, with the witness this session's
    /// replica gives), then queued. With `durable_or_refused`, work the
    /// journal cannot record is refused (`Err`: nothing is owed); without,
    /// it is owed from memory. `Ok(true)`: the journal holds it. `seq`:
    /// the client proxy's number for a batched delete, remembered with it.
    pub(super) async fn owe(
        &self,
        server: &str,
        msg: &MessageId,
        owed: Owed,
        durable_or_refused: bool,
        seq: Option<u64>,
    ) -> Result<bool, OpError> {
        let w = worker(self.workers, server)?;
        let target = Target::new(&msg.uidl, msg.size);
        let witness = self
            .replica
            .witness(server, msg)
            .map(|w| Target::new(&w.uidl, w.size));
        let journaled = w
            .group
            .as_ref()
            .filter(|_| !self.config.broken(Broken::NoJournalEntry));
        let entry = match journaled {
            Some(g) => match g
                .record_numbered(&target, owed, witness.as_ref(), seq)
                .await
            {
                Ok(entry) => Some(entry),
                // A delete asked for is refused rather than acknowledged without
                // a record (the mail client will ask again).
                Err(e) if durable_or_refused => {
                    warn!(%server, uidl = %msg.uidl, error = %e,
                        "journal: could not record an acknowledged delete; refusing it (check the journal's disk)");
                    return Err(not_durable(
                        "the edge could not record the delete durably; nothing was deleted",
                    ));
                }
                // A read mark has no reply to refuse: made anyway, from memory;
                // only an edge crash before it is done would lose it (the
                // message then stays unread, which is benign). A batched delete
                // stays in the client proxy's journal meanwhile.
                Err(e) => {
                    warn!(%server, uidl = %msg.uidl, error = %e, what = what(owed),
                        "journal: could not record owed work; doing it from memory only (check the journal's disk)");
                    None
                }
            },
            None => None,
        };
        let durable = entry.is_some();
        if owed == Owed::Delete {
            w.published.one(target.clone());
        }
        let job = Job::Owe {
            target,
            owed,
            entry: entry.clone(),
        };
        if w.jobs.send(job).is_err() {
            // The worker is gone (it failed): take the record back, best effort.
            if let Some(e) = entry {
                let _ = crate::journal::erase(vec![e]).await;
            }
            return Err(internal());
        }
        Ok(durable)
    }

    pub(super) async fn dele(&mut self, server: &str, msg: &MessageId) -> Result<Reply, OpError> {
        self.replica.check(server, msg)?;
        self.owe(server, msg, Owed::Delete, true, None).await?;
        self.replica.delete(server, msg)?;
        Ok(Reply::Done)
    }

    /// Deletes the client proxy already acknowledged from its own journal:
    /// each is owed (durably when the journal takes it); returns the
    /// sequence numbers now durable here, which the client proxy may erase.
    /// One the edge cannot take stays in the client proxy's journal, which
    /// carries it into a later session.
    pub(super) async fn deletes(&mut self, ops: Vec<DeleteOp>) -> Vec<u64> {
        let mut held = Vec::new();
        for op in ops {
            if self.held.contains(&op.seq) {
                // Sent again after a cut: already durable here.
                held.push(op.seq);
                continue;
            }
            if self.taken.contains(&op.seq) {
                // Sent again after a cut, taken from memory only: owed
                // already, or undone by an RSET since (seed 829810200: a
                // delete done again after the RSET that undid it). The
                // client proxy keeps its entry and carries it if need be.
                continue;
            }
            let (server, msg) = (&op.server, &op.msg);
            if let Err(e) = self.replica.check(server, msg) {
                warn!(%server, uidl = %msg.uidl, error = %e,
                    "a batched delete names a message this session cannot delete; the client proxy keeps it");
                continue;
            }
            match self
                .owe(server, msg, Owed::Delete, false, Some(op.seq))
                .await
            {
                Ok(durable) => {
                    self.taken.insert(op.seq);
                    let _ = self.replica.delete(server, msg);
                    if durable || self.config.broken(Broken::NoJournalEntry) {
                        self.held.insert(op.seq);
                        held.push(op.seq);
                    }
                }
                Err(e) => warn!(%server, uidl = %msg.uidl, error = %e,
                    "a batched delete could not be taken; the client proxy keeps it"),
            }
        }
        held
    }

    pub(super) async fn rset(&mut self, server: &str) -> Result<Reply, OpError> {
        let w = self.worker(server)?;
        if self.config.broken(Broken::KeepDeletesAfterRset) {
            self.replica.rset(server)?;
            return Ok(Reply::Done);
        }
        if let Some(g) = &w.group {
            // Erased durably first: a crash must not bring back work
            // the client was told is undone.
            g.erase_all().await.map_err(|e| {
                warn!(%server, error = %e, "journal: could not record an RSET");
                not_durable("the edge could not record the RSET durably; the deletes stand")
            })?;
        }
        self.replica.rset(server)?;
        w.jobs.send(Job::Rset).map_err(|_| internal())?;
        Ok(Reply::Done)
    }

    /// The mail client took these bodies whole: mark them read.
    pub(super) async fn delivered(&mut self, server: &str, msgs: &[MessageId]) {
        for msg in msgs {
            self.ahead.remove(&(server.to_owned(), msg.clone()));
            if let Err(e) = self.replica.check(server, msg) {
                warn!(%server, uidl = %msg.uidl, error = %e, "a delivery names a message the session cannot mark; ignored");
                continue;
            }
            // A read mark the journal cannot keep is not made: the message
            // stays unread, which is benign.
            if let Err(e) = self.owe(server, msg, Owed::Read, false, None).await {
                warn!(%server, uidl = %msg.uidl, error = %e, "read mark not made");
            }
        }
    }
}

fn not_durable(text: &str) -> OpError {
    OpError::new(Some(ErrCode::SysTemp), text)
}

pub(super) fn worker<'w>(workers: &'w Workers, server: &str) -> Result<&'w WorkerHandle, OpError> {
    workers
        .iter()
        .find(|(n, _)| n == server)
        .map(|(_, w)| w)
        .ok_or_else(internal)
}

pub(crate) fn internal() -> OpError {
    OpError::new(
        Some(ErrCode::SysTemp),
        "internal error in the edge (see its log); try again",
    )
}
