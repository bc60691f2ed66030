//! The end of a worker: commit what is owed, whatever it takes.
//!
//! A worker finishes when its session ended (or, for work replayed from the
//! journal, at once). Its work was acknowledged to a mail client, so it is
//! never dropped because a lock was busy or time passed:
//!
//! - it opens a server session, sends everything owed (by UIDL, in this
//!   session's numbering), and QUITs; `+OK` commits it all, and the journal
//!   entries are erased (retried until the journal takes the erase);
//! - if that fails while another worker holds the maildrop, the work is
//!   handed to it (`crate::maildrop`), which does it in its own session;
//! - if the failure is one no retry can fix (the server refuses our
//!   credentials or our TLS), the work is parked for the maildrop's next
//!   session and stays in the journal, with a log line that says so;
//! - otherwise it retries with growing pauses, logging an error once the
//!   completion deadline passes, for as long as the edge runs; at shutdown
//!   it leaves the work in the journal, which the next start replays.

use causeway_net::Env;
use causeway_proto::{ErrCode, OpError};
use causeway_upstream::retry::{Backoff, is_permanent};
use tracing::{error, info, warn};

use super::{Worker, WorkerEnd};
use crate::broken::Broken;
use crate::journal::{self, Entry};

impl<E: Env> Worker<E> {
    /// The session is over (or this is journaled work from before a
    /// restart): commit what is owed, or hand it on, or keep it; then QUIT.
    pub(crate) async fn finish(mut self) -> WorkerEnd {
        // No more work is taken; whatever was handed over and not yet taken
        // is this worker's if it is the last to hold the maildrop.
        if let Some(adopter) = self.adopter.take() {
            let left = adopter.retire();
            self.adopt(left);
        }
        // (A worker whose server never opened has not published its carried
        // deletes yet.)
        self.publish();
        if self.ledger.is_empty() {
            self.close_upstream().await;
            return self.ended(Ok(()));
        }
        let t = self.config().timeouts;
        let started = self.shared.env.now();
        let mut backoff = Backoff::new(t.retry_min, t.retry_max);
        let mut overdue = false;
        loop {
            let e = match self.commit().await {
                Ok(()) if self.ledger.is_empty() => {
                    info!(session = %self.session, server = %self.spec.name, "owed work committed");
                    return self.ended(Ok(()));
                }
                // Adopted work the session could not prove gone: a fresh
                // server session (a fresh listing) looks again.
                Ok(()) => continue,
                Err(e) => e,
            };
            if causeway_upstream::retry::is_lock_busy(&e) {
                self.shared.state.owed_lock_busy();
                if self.config().broken(Broken::EraseOwedWhenLocked) {
                    return self.give_up(e).await;
                }
            }
            let items = self.ledger.hand_over();
            match self.shared.maildrops.hand_over(&self.key, items) {
                Ok(()) => {
                    info!(session = %self.session, server = %self.spec.name, error = %e,
                        "owed work handed to the session that holds this maildrop");
                    if self.config().broken(Broken::HandoverReportedCommitted) {
                        return self.ended(Ok(()));
                    }
                    return self.handed_over(e);
                }
                Err(items) => self.ledger.adopt_back(items),
            }
            if is_permanent(&e) {
                return self.park(e);
            }
            if *self.shared.shutdown.borrow() {
                warn!(session = %self.session, server = %self.spec.name, error = %e,
                    owed = ?self.ledger.outstanding(),
                    "shutting down with owed work not committed: it stays in the journal and \
                     the next start of the edge finishes it");
                return self.ended(Err(e));
            }
            if !overdue && self.shared.env.now().duration_since(started) >= t.completion_deadline {
                overdue = true;
                error!(session = %self.session, server = %self.spec.name, error = %e,
                    owed = ?self.ledger.outstanding(),
                    "acknowledged work is still not committed after the completion deadline; \
                     still retrying (check the server's reachability and the user's lock); \
                     it is kept in the journal until it is done");
            }
            let pause = backoff.pause(self.shared.env.rng());
            info!(session = %self.session, server = %self.spec.name, error = %e,
                retry_in_ms = pause.as_millis() as u64, "owed work not committed yet; retrying");
            self.shared.env.sleep(pause).await;
        }
    }

    /// One attempt: a server session that has seen all owed work, then QUIT.
    async fn commit(&mut self) -> Result<(), OpError> {
        if self.upstream.is_none() {
            self.connect().await?;
        }
        self.catch_up().await?;
        // Held until the QUIT is answered (`crate::read_marks`).
        let (turn, taken_back) = self.drop_taken_back().await?;
        self.record_quit_sent().await;
        let quit = match self.upstream.take() {
            Some(up) => Some(up.quit().await),
            None => None,
        };
        drop(turn);
        self.erase(taken_back).await;
        let Some(quit) = quit else {
            return Err(OpError::new(
                Some(causeway_proto::ErrCode::SysTemp),
                "server session lost",
            ));
        };
        match quit {
            Ok(s) if s.is_ok() => {
                let done = self.ledger.committed();
                self.erase(done).await;
                Ok(())
            }
            Ok(s) => {
                self.ledger.session_lost();
                Err(causeway_upstream::pop3::refusal(&s))
            }
            Err(e) => {
                // The server may have committed before the answer was lost.
                self.ledger.quit_unanswered();
                Err(e)
            }
        }
    }

    /// Before `QUIT`: the journal records which work it is sent for, so a
    /// crash before its answer leaves that work one batch in doubt
    /// (`crate::journal::quit_sent`). If the journal refuses, the `QUIT`
    /// goes anyway: the server session must end, and while the edge runs
    /// the ledger holds the same knowledge.
    async fn record_quit_sent(&mut self) {
        let sent = self.ledger.sent_entries();
        if sent.is_empty() {
            return;
        }
        if let Err(e) = journal::quit_sent::record(&sent).await {
            warn!(session = %self.session, server = %self.spec.name, error = %e,
                "could not record in the journal which work a QUIT is sent for; should the edge \
                 stop before the answer, its next start judges that work item by item (check \
                 the journal's disk)");
        }
    }

    /// After a listing: work of a batch in doubt that it showed committed
    /// leaves the journal now, and then the record of the batch's `QUIT`
    /// goes. In that order: work left in the journal without its record
    /// would be replayed item by item, against the copy the batch rule
    /// spared. (At shutdown the erase may not be done, and the record
    /// stays with the work: the next start judges the batch again.)
    pub(super) async fn doubts_settled(&mut self) {
        let settled = self.ledger.take_settled();
        let named: Vec<Entry> = (settled.done.iter())
            .chain(&settled.not_done)
            .cloned()
            .collect();
        if named.is_empty() {
            return;
        }
        self.erase(settled.done).await;
        if *self.shared.shutdown.borrow() {
            return;
        }
        if let Err(e) = journal::quit_sent::forget(&named).await {
            warn!(session = %self.session, server = %self.spec.name, error = %e,
                "could not erase the journal's record of a QUIT whose answer was lost; it is \
                 erased with the work's last entry");
        }
    }

    /// Erases committed (or impossible) work from the crash journal, trying
    /// again while the journal refuses (an I/O error), unless shutting down:
    /// then the entries stay, and the next start redoes the work harmlessly.
    pub(super) fn erase(
        &self,
        entries: Vec<Entry>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        // Owns what it needs: `&self` (a live connection inside) is not Sync.
        let (env, shutdown) = (self.shared.env.clone(), self.shared.shutdown.clone());
        let t = self.config().timeouts;
        let (session, server) = (self.session.clone(), self.spec.name.clone());
        async move {
            if entries.is_empty() {
                return;
            }
            let mut backoff = Backoff::new(t.retry_min, t.retry_max);
            loop {
                match journal::erase(entries.clone()).await {
                    Ok(()) => return,
                    Err(e) if *shutdown.borrow() => {
                        error!(%session, %server, error = %e, entries = entries.len(),
                            "could not erase committed work from the journal; the next start of \
                             the edge will redo it (harmlessly) and erase it then");
                        return;
                    }
                    Err(e) => {
                        let pause = backoff.pause(env.rng());
                        warn!(%session, %server, error = %e, retry_in_ms = pause.as_millis() as u64,
                            "could not erase committed work from the journal; retrying");
                        env.sleep(pause).await;
                    }
                }
            }
        }
    }

    /// No retry can fix this (credentials, TLS): the work waits for the
    /// maildrop's next session, and stays in the journal meanwhile.
    pub(crate) fn park(mut self, e: OpError) -> WorkerEnd {
        let outstanding = self.ledger.outstanding();
        error!(session = %self.session, server = %self.spec.name, error = %e,
            owed = ?outstanding,
            "acknowledged work cannot be done now: the server refuses us permanently. It is \
             kept (in the journal too) and done when the user's next session for this maildrop \
             logs in, or at the next start of the edge. Fix the credentials or the server's TLS; \
             `causeway owed` lists it, and can drop it by hand");
        let items = self.ledger.hand_over();
        self.shared.maildrops.park(&self.key, items);
        self.ended(Err(e))
    }

    /// A deliberately broken edge (simulation only): drops owed work and its
    /// journal entries, as the edge did before work followed the maildrop.
    async fn give_up(mut self, e: OpError) -> WorkerEnd {
        let items = self.ledger.hand_over();
        let entries: Vec<Entry> = items
            .into_iter()
            .flat_map(|h| h.item.into_entries())
            .collect();
        let _ = journal::erase(entries).await;
        self.ended(Err(e))
    }

    fn ended(self, result: Result<(), OpError>) -> WorkerEnd {
        WorkerEnd {
            result,
            handed_over: false,
            abandoned: self.abandoned,
        }
    }

    /// The work went to another worker of the maildrop: not committed, so
    /// the session's `Bye` says so, and the client proxy keeps the deletes
    /// the edge's journal does not hold (seed 233925731: told they were
    /// committed, it erased two whose journal entries had failed, and an
    /// edge crash then lost them with the adopter's memory).
    fn handed_over(self, e: OpError) -> WorkerEnd {
        let why = format!(
            "not committed yet: another session of this mailbox holds server {} and commits it \
             ({e})",
            self.spec.name
        );
        WorkerEnd {
            result: Err(OpError::new(Some(ErrCode::SysTemp), why)),
            handed_over: true,
            abandoned: self.abandoned,
        }
    }
}
