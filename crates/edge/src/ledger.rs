//! What a worker owes its server, and how to name messages in the current
//! server session.
//!
//! Once the edge has acknowledged a delete (or a delivery, which calls for a
//! read mark) it owes that work to the server until a `QUIT` answers `+OK`.
//! Server sessions can die before that, so the work is kept by UIDL, never by
//! message number: numbers belong to one server session, and mail delivered or
//! deleted by someone else between two sessions shifts them. On every new
//! server session the worker rebuilds the UIDL -> number map from `UIDL` and
//! re-issues everything owed; a message that is gone by then needs nothing
//! more (deleted is deleted; a read mark on a vanished message is moot), which
//! makes the redo idempotent.
//!
//! Pure data; the worker drives it. Each owed item holds a
//! [`crate::state::Ticket`], so the edge's "pending work" count is exact on
//! every path, including a worker that is dropped.

use std::collections::BTreeMap;

use causeway_pop3::Command;
use causeway_upstream::Numbering;

use crate::state::Ticket;

/// Work acknowledged to the client and owed to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owed {
    /// `RETR n`: the body reached the mail client; mark it read. Ordered
    /// before `Delete` so a message both read and deleted is RETR'd first.
    Read,
    /// `DELE n`.
    Delete,
}

struct Item {
    /// Sent in the current server session (and answered).
    issued: bool,
    /// Its crash-journal entries (more than one if it was owed twice).
    entries: Vec<u64>,
    _ticket: Ticket,
}

/// One step of bringing a fresh server session up to date.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    pub uidl: String,
    pub owed: Owed,
    /// What to send; `None` when the message is no longer on the server and
    /// nothing needs sending.
    pub command: Option<Command>,
}

#[derive(Default)]
pub struct Ledger {
    /// The current server session's numbering (empty between sessions).
    numbers: Numbering,
    owed: BTreeMap<(String, Owed), Item>,
}

impl Ledger {
    /// A new server session began; `listing` is its `UIDL` answer. Numbers
    /// from earlier sessions are forgotten and every owed item must be sent
    /// again.
    pub fn new_session(&mut self, numbers: Numbering) {
        self.session_lost();
        self.numbers = numbers;
    }

    /// The server session is gone: numbers mean nothing any more, and nothing
    /// sent in it was committed.
    pub fn session_lost(&mut self) {
        self.numbers = Numbering::default();
        for item in self.owed.values_mut() {
            item.issued = false;
        }
    }

    /// The message number of `uidl` in the current server session.
    pub fn number(&self, uidl: &str) -> Option<u32> {
        self.numbers.number(uidl)
    }

    /// Records work acknowledged to the client, with its crash-journal entry
    /// if there is a journal. Owing the same thing twice is owing it once.
    pub fn owe(
        &mut self,
        uidl: &str,
        owed: Owed,
        entry: Option<u64>,
        ticket: impl FnOnce() -> Ticket,
    ) {
        let item = self
            .owed
            .entry((uidl.to_owned(), owed))
            .or_insert_with(|| Item {
                issued: false,
                entries: Vec::new(),
                _ticket: ticket(),
            });
        item.entries.extend(entry);
    }

    /// The next owed item not yet sent in this server session.
    pub fn next_step(&self) -> Option<Step> {
        let ((uidl, owed), _) = self.owed.iter().find(|(_, i)| !i.issued)?;
        let command = self.number(uidl).map(|n| match owed {
            Owed::Read => Command::Retr(n),
            Owed::Delete => Command::Dele(n),
        });
        Some(Step {
            uidl: uidl.clone(),
            owed: *owed,
            command,
        })
    }

    /// The server answered the step's command (either way: `-ERR` to `DELE`
    /// means it is deleted already), or there was nothing to send.
    pub fn done(&mut self, uidl: &str, owed: Owed) {
        if let Some(i) = self.owed.get_mut(&(uidl.to_owned(), owed)) {
            i.issued = true;
        }
    }

    /// The client undid its deletes; the server's `RSET` also undid this
    /// session's read marks, which must be sent again. (The session erased
    /// the deletes' journal entries before answering the client.)
    pub fn rset(&mut self) {
        self.owed.retain(|(_, owed), _| *owed == Owed::Read);
        for item in self.owed.values_mut() {
            item.issued = false;
        }
    }

    /// `QUIT` answered `+OK`: everything sent in this session is committed.
    /// Returns the journal entries of what was committed, to erase.
    pub fn committed(&mut self) -> Vec<u64> {
        let mut done = Vec::new();
        self.owed.retain(|_, i| {
            if i.issued {
                done.append(&mut i.entries);
            }
            !i.issued
        });
        self.numbers = Numbering::default();
        done
    }

    /// The journal entries of everything still owed.
    pub fn entries(&self) -> Vec<u64> {
        self.owed
            .values()
            .flat_map(|i| i.entries.iter().copied())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.owed.is_empty()
    }

    /// Everything still owed, for the operator ("DELE 0000001a6b0b34ac").
    pub fn outstanding(&self) -> Vec<String> {
        self.owed
            .keys()
            .map(|(uidl, owed)| {
                let what = match owed {
                    Owed::Read => "read mark",
                    Owed::Delete => "delete",
                };
                format!("{what} of {uidl}")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EdgeState;

    fn listing(uidls: &[&str]) -> Numbering {
        Numbering::new(
            uidls
                .iter()
                .enumerate()
                .map(|(i, u)| (i as u32 + 1, u.to_string())),
        )
    }

    /// Runs every step as a server would, returning the commands sent.
    fn bring_up_to_date(l: &mut Ledger) -> Vec<Option<Command>> {
        let mut sent = Vec::new();
        while let Some(s) = l.next_step() {
            sent.push(s.command.clone());
            l.done(&s.uidl, s.owed);
        }
        sent
    }

    #[test]
    fn a_delete_follows_its_uidl_into_a_shifted_session() {
        let st = EdgeState::new();
        let mut l = Ledger::default();
        l.new_session(listing(&["a", "b", "c"]));
        l.owe("c", Owed::Delete, None, || st.work_ticket());
        assert_eq!(bring_up_to_date(&mut l), vec![Some(Command::Dele(3))]);
        // The server session dies before QUIT; meanwhile someone deleted "a"
        // and new mail arrived: "c" is now number 2, number 3 is new mail.
        l.session_lost();
        assert_eq!(l.number("c"), None, "numbers never cross sessions");
        l.new_session(listing(&["b", "c", "new"]));
        assert_eq!(bring_up_to_date(&mut l), vec![Some(Command::Dele(2))]);
        assert_eq!(st.pending_work(), 1);
        l.committed();
        assert!(l.is_empty());
        assert_eq!(st.pending_work(), 0);
    }

    #[test]
    fn redo_is_idempotent_when_the_message_is_gone() {
        let st = EdgeState::new();
        let mut l = Ledger::default();
        l.new_session(listing(&["a", "b"]));
        l.owe("a", Owed::Delete, None, || st.work_ticket());
        l.owe("a", Owed::Delete, None, || st.work_ticket());
        l.owe("b", Owed::Read, None, || st.work_ticket());
        assert_eq!(st.pending_work(), 2, "owing twice is owing once");
        bring_up_to_date(&mut l);
        // QUIT was committed by the server but its answer was lost: the next
        // session no longer lists "a".
        l.new_session(listing(&["b"]));
        assert_eq!(bring_up_to_date(&mut l), vec![None, Some(Command::Retr(1))]);
        l.committed();
        assert_eq!(st.pending_work(), 0);
    }

    #[test]
    fn read_before_delete_and_rset_keeps_read_marks() {
        let st = EdgeState::new();
        let mut l = Ledger::default();
        l.new_session(listing(&["a", "b"]));
        l.owe("a", Owed::Delete, None, || st.work_ticket());
        l.owe("a", Owed::Read, None, || st.work_ticket());
        l.owe("b", Owed::Read, None, || st.work_ticket());
        assert_eq!(
            bring_up_to_date(&mut l),
            vec![
                Some(Command::Retr(1)),
                Some(Command::Dele(1)),
                Some(Command::Retr(2))
            ]
        );
        l.rset();
        assert_eq!(st.pending_work(), 2);
        assert_eq!(
            bring_up_to_date(&mut l),
            vec![Some(Command::Retr(1)), Some(Command::Retr(2))]
        );
        assert_eq!(l.outstanding(), vec!["read mark of a", "read mark of b"]);
    }

    #[test]
    fn only_what_was_sent_is_committed() {
        let st = EdgeState::new();
        let mut l = Ledger::default();
        l.new_session(listing(&["a", "b"]));
        l.owe("a", Owed::Delete, None, || st.work_ticket());
        bring_up_to_date(&mut l);
        l.owe("b", Owed::Delete, None, || st.work_ticket());
        l.committed();
        assert_eq!(l.outstanding(), vec!["delete of b"]);
        assert_eq!(st.pending_work(), 1);
        drop(l);
        assert_eq!(
            st.pending_work(),
            0,
            "a dropped ledger gives its count back"
        );
    }

    #[test]
    fn journal_entries_follow_what_is_committed() {
        let st = EdgeState::new();
        let mut l = Ledger::default();
        l.new_session(listing(&["a", "b"]));
        l.owe("a", Owed::Delete, Some(1), || st.work_ticket());
        l.owe("a", Owed::Delete, Some(2), || st.work_ticket()); // owed twice
        l.owe("a", Owed::Read, Some(3), || st.work_ticket());
        bring_up_to_date(&mut l);
        l.owe("b", Owed::Delete, Some(4), || st.work_ticket());
        let mut all = l.entries();
        all.sort();
        assert_eq!(all, vec![1, 2, 3, 4]);
        let mut done = l.committed();
        done.sort();
        assert_eq!(done, vec![1, 2, 3], "only what the QUIT committed");
        assert_eq!(l.entries(), vec![4]);
    }
}
