//! What a new session's mail client is not shown: the deletes this
//! journal holds, and those it handed to the edge while the session was
//! being opened.
//!
//! A delete acknowledged to a mail client is owed until its server
//! commits it; meanwhile another session of the same maildrop (the user's
//! second mail client, Thunderbird's second connection) must not be shown
//! the message again, as new mail under a new UID. Two places hold such a
//! delete in turn: this journal until the edge says `Held`, then the
//! edge's worker until its QUIT commits (the edge leaves those out of a
//! listing itself, `maildrop::Published`). Handing over from one to the
//! other races with a new session's opening: the edge may have listed the
//! maildrop before it took the delete, and the journal erase it before the
//! session's `Welcome` arrives, so that neither leaves it out (seed 5555:
//! a session cut after its EXPUNGE resumed, its batch reached the edge
//! 0.5 s after the other session's listing there, and its entry was
//! erased 0.5 s before that session's `Welcome`). So a session marks the
//! journal before its `Hello` ([`ListingMark`]), and the deletes done
//! since (held by the edge or committed) are left out as well: the edge
//! took any of them after it began this session, hence after the mark.
//! The log keeps only what a mark still needs.

use std::collections::{BTreeMap, VecDeque};

use causeway_proto::session::{DeleteOp, ListingState, MessageId, ServerListing, leave_out};

use super::{ByServer, DeleteJournal};

/// Deletes done (held by the edge, or committed) while some session was
/// being opened, numbered in the order they were done.
#[derive(Default)]
pub(super) struct DoneLog {
    /// How many deletes were logged, ever.
    count: u64,
    /// `(number, server, message)`, oldest first.
    log: VecDeque<(u64, String, MessageId)>,
    /// The marks of the sessions being opened: `count` then, with how many
    /// sessions hold it.
    marks: BTreeMap<u64, usize>,
}

impl DoneLog {
    /// `op` is done; logged if a session being opened may need it.
    pub(super) fn push(&mut self, op: &DeleteOp) {
        if self.marks.is_empty() {
            return;
        }
        self.count += 1;
        self.log
            .push_back((self.count, op.server.clone(), op.msg.clone()));
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.log.is_empty() && self.marks.is_empty()
    }

    fn unmark(&mut self, at: u64) {
        if let Some(n) = self.marks.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                self.marks.remove(&at);
            }
        }
        let oldest = self.marks.keys().next().copied().unwrap_or(self.count);
        while self.log.front().is_some_and(|(n, _, _)| *n <= oldest) {
            self.log.pop_front();
        }
    }
}

/// A session being opened: taken before its `Hello`, given to
/// [`DeleteJournal::hide_pending`] with the edge's listings.
pub(crate) struct ListingMark {
    journal: DeleteJournal,
    at: u64,
}

impl Drop for ListingMark {
    fn drop(&mut self) {
        self.journal.book().done.unmark(self.at);
    }
}

impl DeleteJournal {
    /// Marks the journal for a session about to send its `Hello`.
    pub(crate) fn mark(&self) -> ListingMark {
        let mut book = self.book();
        let at = book.done.count;
        *book.done.marks.entry(at).or_default() += 1;
        ListingMark {
            journal: self.clone(),
            at,
        }
    }

    /// Leaves out of a new session's `listings` the messages whose deletes
    /// this journal holds, or handed to the edge since `mark` (see the
    /// module doc). Only a message whose UIDL its server lists once, as
    /// the edge does: leaving out one of two would rename the other. For
    /// what the mail client is shown only: the session's places keep the
    /// edge's listing.
    pub(crate) fn hide_pending(&self, listings: &mut [ServerListing], mark: &ListingMark) {
        let pending = {
            let book = self.book();
            let mut pending = ByServer::default();
            for op in book.entries.values() {
                if !book.settled.contains(&op.seq) {
                    pending.insert(&op.server, &op.msg);
                }
            }
            for (_, server, msg) in book.done.log.iter().filter(|(n, _, _)| *n > mark.at) {
                pending.insert(server, msg);
            }
            pending
        };
        for l in listings {
            if let ListingState::Ready { messages } = &mut l.state {
                leave_out(messages, |m| pending.contains(&l.name, &m.id()));
            }
        }
    }
}
