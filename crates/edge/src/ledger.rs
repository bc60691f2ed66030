//! What a worker owes its server, and how to name messages in the current
//! server session.
//!
//! Once the edge has acknowledged a delete (or a delivery, which calls for a
//! read mark) it owes that work to the server until a `QUIT` answers `+OK`.
//! Server sessions can die before that, so the work is kept by UIDL (and
//! size: see [`causeway_upstream::pop3::Numbering`] for duplicate UIDLs),
//! never by message number: numbers belong to one server session, and mail
//! delivered or deleted by someone else between two sessions shifts them. On
//! every new server session the worker rebuilds the numbering and re-issues
//! everything owed; a message that is gone by then needs nothing more
//! (deleted is deleted; a read mark on a vanished message is moot), which
//! makes the redo idempotent.
//!
//! A unique UIDL and size can still name a newcomer: an exact copy
//! delivered after the original was deleted, by a `QUIT` whose answer was
//! lost, say. So each owed item remembers a witness, a message listed after
//! its own in the last session that listed both. Servers list mail in the
//! order it arrived, so when a later session lists the item's UIDL and size
//! *after* its witness, that message came later than the witness: it is not
//! the message the work was for, which is gone ([`Action::Gone`]). The
//! crash journal keeps with each entry the witness the client's session
//! saw when it acknowledged the work (`crate::replica::Replica::witness`),
//! so work replayed after a crash keeps one too. Without a witness (a
//! message listed last, work the client proxy carried) the listing is
//! trusted as before, with one more piece of evidence: the work of a
//! session whose `QUIT` went unanswered is one batch, which a POP3 server
//! commits whole or not at all, so one of its deletes gone from the next
//! listing says every item of the batch was done
//! ([`Ledger::quit_unanswered`]; across a crash of the edge, by the
//! journal's record of what each `QUIT` was sent for:
//! [`Ledger::quit_sent_before_crash`]). That covers the common case a witness
//! cannot: a mail client that deletes everything it fetched leaves no
//! message after the last deletes to be their witness. A delete one of our
//! own sessions committed after the batch's listing is no such sign
//! (`crate::commits`): the user's other mail client deleted it too.
//!
//! Work can change hands: a worker that cannot reach the server while
//! another worker of the same maildrop holds it hands its items over
//! (`crate::maildrop`), and the adopter keeps them apart from its own
//! session's: the mail client's RSET undoes only its own session's work.
//!
//! Pure data; the worker drives it. Each owed item holds a
//! [`crate::state::Ticket`], so the edge's "pending work" count is exact on
//! every path, including a worker that is dropped.

use std::collections::btree_map::Entry as Slot;
use std::collections::{BTreeMap, BTreeSet};

use causeway_pop3::Command;
use causeway_upstream::{Numbering, Resolved};

use crate::commits::OurCommits;
use crate::journal::Entry;
pub use crate::owed::{Owed, Target, what};
use crate::read_marks::{Claim, MaildropReads};
use crate::state::Ticket;

/// The batch an item in doubt belongs to.
#[derive(Clone, Copy)]
struct Doubt {
    /// Shared by the batch's items.
    mark: u64,
    /// The commit clock (`crate::commits`) when the batch's session began
    /// listing: a delete of ours after it is no evidence about the batch.
    since: u64,
}

/// One owed piece of work, as it moves between ledgers.
pub struct Item {
    /// Its crash-journal entries (more than one if it was owed twice).
    entries: Vec<Entry>,
    /// Taken over from another worker: this session's RSET leaves it be.
    adopted: bool,
    /// The first server session (by [`Ledger`]'s count) whose listing proves
    /// the message gone when it is not in it. Work adopted mid-session may
    /// name a message that arrived after this session's listing was taken
    /// (a server session is a snapshot), so only a later session can tell.
    sure_from: u64,
    /// A message listed after this one (UIDL, size) in the last server
    /// session that listed both: where this one must still come before.
    witness: Option<Target>,
    /// Sent in a server session whose `QUIT` went unanswered (the
    /// server may have committed it): that session's mark, shared by the
    /// work it sent ([`Ledger::quit_unanswered`]).
    in_doubt: Option<Doubt>,
    /// A read mark's place among every worker's (`crate::read_marks`),
    /// where an unread takes it back.
    claim: Option<Claim>,
    _ticket: Ticket,
}

impl Item {
    /// Its journal entries (the item is gone).
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }
}

/// Whether `numbers` lists `target` after `item`'s witness: the message
/// listed is a later copy, not the one the work was for (module doc).
fn after_its_witness(numbers: &Numbering, target: &Target, item: &Item) -> bool {
    let number = |t: &Target| match numbers.resolve(&t.uidl, t.size) {
        Resolved::Number(n) => Some(n),
        _ => None,
    };
    let witness = item.witness.as_ref().and_then(number);
    matches!((number(target), witness), (Some(n), Some(w)) if w < n)
}

/// Work handed from one worker to another of the same maildrop.
pub struct Handover {
    pub target: Target,
    pub owed: Owed,
    pub item: Item,
}

/// A read mark an unread took back ([`Ledger::taken_back`]).
pub struct TakenBack {
    pub target: Target,
    /// Its journal entries, to erase (the unread erased them already,
    /// unless the mark was owed again since).
    pub entries: Vec<Entry>,
    /// Its number in this server session if its `RETR` was sent in it:
    /// the session's `QUIT` would mark the message read.
    pub sent: Option<u32>,
}

/// One step of bringing a fresh server session up to date.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    pub target: Target,
    pub owed: Owed,
    pub action: Action,
}

/// What a step needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Send(Command),
    /// The message is no longer on the server: nothing to send.
    Gone,
    /// Several messages share its UIDL and size: it cannot be named safely,
    /// so the work can never be done.
    Ambiguous,
}

#[derive(Default)]
pub struct Ledger {
    /// The current server session's numbering (empty between sessions).
    numbers: Numbering,
    /// Server sessions begun so far.
    sessions: u64,
    owed: BTreeMap<Key, Item>,
    /// The owed items not yet sent (and answered) in the current server
    /// session: what [`Ledger::next_step`] looks through, so bringing a
    /// session up to date costs the unsent items, not everything a long
    /// session owes (a read mark per message read).
    unsent: BTreeSet<Key>,
    /// Owed items the current session lists after their witness: a later
    /// copy, not the message the work was for (see the module doc).
    newcomers: BTreeSet<Key>,
    /// Marks given to sessions whose `QUIT` went unanswered.
    doubts: u64,
    /// The marks of those that a later listing showed committed: their
    /// work is done in every session from then on, until a `QUIT` erases it.
    committed_doubts: BTreeSet<u64>,
    /// What the last listing settled, for the journal ([`Ledger::take_settled`]).
    settled: Settled,
    /// The deletes our sessions committed on this maildrop (none known in
    /// a ledger made with `default`).
    ours: Option<OurCommits>,
    /// Where its read marks are registered for unreads (none in a ledger
    /// made with `default`, nor for a POP3 server: only an IMAP client can
    /// mark a message unread, and a mark need not take the edge-wide lock).
    reads: Option<MaildropReads>,
    /// Their clock when the current server session began listing.
    listed_at: u64,
    /// The server's UIDLs name one message for ever (IMAP: UIDVALIDITY
    /// and UID), so no later copy can be listed by one, and work whose
    /// `QUIT` went unanswered is judged item by item, not as a batch.
    uidls_unique: bool,
}

type Key = (Target, Owed);

/// Batches in doubt a listing settled ([`Ledger::take_settled`]).
#[derive(Default)]
pub struct Settled {
    /// The journal entries of work a committed batch did: to erase now,
    /// for a crash must not replay them against the later copy.
    pub done: Vec<Entry>,
    /// The journal entries of work a batch did not commit: owed as any
    /// other from now on, so the journal's record of its `QUIT` goes.
    pub not_done: Vec<Entry>,
}

impl Ledger {
    /// A ledger for a maildrop on which `ours` records what our sessions
    /// commit: its deletes go there, and a batch in doubt is not judged by
    /// them. `uidls_unique`: the server never lists a UIDL for a second
    /// message (IMAP); then its read marks are registered in `reads`.
    pub fn watching(ours: OurCommits, reads: MaildropReads, uidls_unique: bool) -> Self {
        Self {
            ours: Some(ours),
            reads: uidls_unique.then_some(reads),
            uidls_unique,
            ..Self::default()
        }
    }

    /// A server session is about to list the maildrop: a delete our
    /// sessions commit from now on may have come after its listing.
    pub fn listing(&mut self) {
        self.listed_at = self.ours.as_ref().map_or(0, OurCommits::now);
    }

    /// A new server session began, numbered by `numbers`. Numbers from
    /// earlier sessions are forgotten and every owed item must be sent again.
    pub fn new_session(&mut self, numbers: Numbering) {
        self.session_lost();
        self.numbers = numbers;
        self.sessions += 1;
        let numbers = &self.numbers;
        self.newcomers = self
            .owed
            .iter()
            .filter(|(key, item)| after_its_witness(numbers, &key.0, item))
            .map(|(key, _)| key.clone())
            .collect();
        self.settle_doubts();
    }

    /// The server session's `QUIT` got no answer: the server may have
    /// committed what was sent in it, or not. The work stays owed, marked
    /// as one batch; the next session's listing decides
    /// ([`Ledger::settle_doubts`]). Where UIDLs are unique the listing
    /// judges each item alone, as after any lost session: the batch rule
    /// is for POP3's exact copies, and on IMAP other sessions (the user's
    /// other devices, or ours) expunge concurrently, which would read as
    /// the batch's commit.
    pub fn quit_unanswered(&mut self) {
        if self.uidls_unique {
            return self.session_lost();
        }
        // Only what this session sent: work it found gone at its listing
        // (done by an earlier session, or by the user's other mail
        // client) is not part of its batch, and the message being absent
        // next time says nothing about whether this QUIT was committed.
        let sent: Vec<Key> = (self.owed.keys())
            .filter(|key| self.sent_number(key).is_some())
            .cloned()
            .collect();
        self.one_batch_in_doubt(&sent, self.listed_at);
        self.session_lost();
    }

    /// Marks `keys` as one batch in doubt, judged by our deletes since
    /// `since` (`crate::commits`' clock) as no evidence.
    fn one_batch_in_doubt(&mut self, keys: &[Key], since: u64) {
        self.doubts += 1;
        let doubt = Doubt {
            mark: self.doubts,
            since,
        };
        for key in keys {
            if let Some(item) = self.owed.get_mut(key) {
                item.in_doubt = Some(doubt);
            }
        }
    }

    /// The journal entries of the work sent in this server session, which
    /// its `QUIT` will commit or not, as one batch: the journal records
    /// them before the `QUIT` is sent (`crate::journal::quit_sent`), so a
    /// crash before its answer loses no doubt. None where UIDLs are unique.
    pub fn sent_entries(&self) -> Vec<Entry> {
        if self.uidls_unique {
            return Vec::new();
        }
        (self.owed.iter())
            .filter(|(key, _)| self.sent_number(key).is_some())
            .flat_map(|(_, item)| item.entries.iter().cloned())
            .collect()
    }

    /// Work replayed from the journal whose `QUIT` had been sent when the
    /// edge stopped: one batch in doubt, as if that `QUIT` had gone
    /// unanswered here. No delete of ours in this life is evidence.
    pub fn quit_sent_before_crash(&mut self, keys: &[(Target, Owed)]) {
        if self.uidls_unique || keys.is_empty() {
            return;
        }
        self.one_batch_in_doubt(keys, 0);
    }

    /// What the listings since the last call settled, for the journal.
    pub fn take_settled(&mut self) -> Settled {
        std::mem::take(&mut self.settled)
    }

    /// Work whose `QUIT` went unanswered, against a fresh listing. A POP3
    /// server commits a session's deletes together, so one of them gone
    /// says the batch was committed: all of its work is done, and a message
    /// listed now by the UIDL and size of one of its deletes is an exact
    /// copy that came later (a broken migration), which no witness may
    /// catch when every message after it was deleted too. None gone: nothing
    /// was committed, and the batch is owed as before. A delete one of our
    /// own sessions committed since the batch was listed is no evidence
    /// either way. (A message another program deleted meanwhile reads as a
    /// commit: the rest of the batch is then left undone, with a log line,
    /// rather than a copy deleted.)
    fn settle_doubts(&mut self) {
        let sessions = self.sessions;
        let numbers = &self.numbers;
        let ours = self.ours.as_ref();
        let gone = |t: &Target| numbers.resolve(&t.uidl, t.size) == Resolved::Gone;
        self.committed_doubts.extend(
            self.owed
                .iter()
                .filter(|((target, owed), item)| {
                    *owed == Owed::Delete && sessions >= item.sure_from && gone(target)
                })
                .filter_map(|((target, _), item)| {
                    let doubt = item.in_doubt?;
                    let by_us = ours.is_some_and(|o| o.deleted_since(target, doubt.since));
                    (!by_us).then_some(doubt.mark)
                }),
        );
        for (key, item) in self.owed.iter_mut() {
            let Some(Doubt { mark, .. }) = item.in_doubt else {
                continue;
            };
            if sessions < item.sure_from {
                continue;
            }
            if !self.committed_doubts.contains(&mark) {
                item.in_doubt = None;
                (self.settled.not_done).extend(item.entries.iter().cloned());
                continue;
            }
            self.settled.done.append(&mut item.entries);
            if key.1 == Owed::Delete && !gone(&key.0) {
                tracing::info!(uidl = %key.0.uidl,
                    "the server committed a session whose QUIT went unanswered (another of its \
                     deletes is gone), so the message listed now by this UIDL and size is a \
                     later copy, or someone else deleted the other: no DELE for it");
            }
            self.newcomers.insert(key.clone());
        }
    }

    /// The server session is gone: numbers mean nothing any more, and nothing
    /// sent in it was committed.
    pub fn session_lost(&mut self) {
        self.remember_order();
        self.numbers = Numbering::default();
        self.unsent = self.owed.keys().cloned().collect();
    }

    /// Before the current numbering is forgotten: each owed item that it
    /// lists (and that is not a newcomer) takes as its witness the first
    /// message listed after it that is named safely and not owed a delete.
    fn remember_order(&mut self) {
        let order = self.numbers.in_order();
        if order.is_empty() {
            return;
        }
        let deleted: BTreeSet<(&str, Option<u64>)> =
            self.deletes().map(|t| (t.uidl.as_str(), t.size)).collect();
        // From the end of the listing back: the place of the first message
        // at or after each place that can be a witness (`order.len()` for
        // none). One pass, so a session owing work for thousands of messages
        // pays listing + items × log(listing), not items × listing.
        let mut next_witness = vec![order.len(); order.len() + 1];
        for (i, &(_, uidl, size)) in order.iter().enumerate().rev() {
            let fits = !deleted.contains(&(uidl, size))
                && matches!(self.numbers.resolve(uidl, size), Resolved::Number(_));
            next_witness[i] = if fits { i } else { next_witness[i + 1] };
        }
        let mut witnesses = BTreeMap::new();
        for (key, _) in self.owed.iter() {
            if self.newcomers.contains(key) {
                continue;
            }
            let Resolved::Number(n) = self.resolve(&key.0) else {
                continue;
            };
            let after = order.partition_point(|(m, _, _)| *m <= n);
            let witness = order
                .get(next_witness[after])
                .map(|(_, uidl, size)| Target {
                    uidl: (*uidl).to_owned(),
                    size: *size,
                });
            witnesses.insert(key.clone(), witness);
        }
        for (key, witness) in witnesses {
            if let Some(item) = self.owed.get_mut(&key) {
                item.witness = witness;
            }
        }
        self.newcomers.clear();
    }

    /// How the current server session numbers the messages.
    pub fn numbers(&self) -> &Numbering {
        &self.numbers
    }

    /// Where `target` is in the current server session.
    pub fn resolve(&self, target: &Target) -> Resolved {
        self.numbers.resolve(&target.uidl, target.size)
    }

    /// Records work acknowledged to the client, with its crash-journal entry
    /// if there is a journal. Owing the same thing twice is owing it once.
    pub fn owe(
        &mut self,
        target: Target,
        owed: Owed,
        entry: Option<Entry>,
        ticket: impl FnOnce() -> Ticket,
    ) {
        let sure_from = self.sessions;
        let key = (target, owed);
        if !self.owed.contains_key(&key) {
            self.unsent.insert(key.clone());
        }
        let reads = (owed == Owed::Read)
            .then_some(self.reads.as_ref())
            .flatten();
        let item = self.owed.entry(key).or_insert_with_key(|(target, _)| Item {
            entries: Vec::new(),
            adopted: false,
            sure_from,
            witness: None,
            in_doubt: None,
            claim: reads.map(|r| r.claim(target, &[])),
            _ticket: ticket(),
        });
        if let (Some(claim), Some(e)) = (&item.claim, &entry) {
            claim.add(std::slice::from_ref(e));
        }
        item.entries.extend(entry);
    }

    /// The witness the crash journal kept with an item (the message listed
    /// after it when the work was acknowledged), for work replayed after a
    /// crash: a later session's order replaces it.
    pub fn witnessed(&mut self, target: &Target, owed: Owed, witness: Target) {
        if let Some(item) = self.owed.get_mut(&(target.clone(), owed)) {
            item.witness.get_or_insert(witness);
        }
    }

    /// Records work acknowledged in an earlier session (a delete the client
    /// proxy carried over): owed like the session's own, but this session's
    /// RSET leaves it be.
    pub fn owe_earlier(
        &mut self,
        target: Target,
        owed: Owed,
        entry: Option<Entry>,
        ticket: impl FnOnce() -> Ticket,
    ) {
        let key = (target, owed);
        self.owe(key.0.clone(), owed, entry, ticket);
        if let Some(item) = self.owed.get_mut(&key) {
            item.adopted = true;
        }
    }

    /// Takes over work another worker could not do. It is sent again in
    /// this server session (nothing another session sent counts here); a
    /// message this session's listing lacks may be newer than the listing,
    /// so it is looked for again in the next session before it counts as
    /// gone. Work this session already sent for itself stays sent: its
    /// commit does the adopted work too, and counts as our own delete
    /// (seed 2840 `--focus line`: sent again, it was left out of the
    /// deletes this session committed, so the message gone from the next
    /// listing read as the adopted batch's commit).
    pub fn adopt(&mut self, items: Vec<Handover>) {
        let sure_from = self.sessions + 1;
        // Another worker's doubt marks, renumbered into this ledger's.
        let mut marks = BTreeMap::new();
        for Handover {
            target,
            owed,
            mut item,
        } in items
        {
            if let Some(theirs) = &mut item.in_doubt {
                theirs.mark = *marks.entry(theirs.mark).or_insert_with(|| {
                    self.doubts += 1;
                    self.doubts
                });
            }
            item.adopted = true;
            item.sure_from = item.sure_from.max(sure_from);
            let key = (target, owed);
            if !self.owed.contains_key(&key) || self.unsent.contains(&key) {
                self.unsent.insert(key.clone());
            }
            // Listed by this session after its witness: a later copy, as
            // in a new session. Else, at this session's end, the message
            // after the copy would become its witness (seed 1032 `--focus
            // twins`: the copy was deleted by the session after).
            if after_its_witness(&self.numbers, &key.0, &item) {
                self.newcomers.insert(key.clone());
            }
            match self.owed.entry(key) {
                Slot::Occupied(mut mine) => {
                    let mine = mine.get_mut();
                    if let Some(claim) = &mine.claim {
                        claim.add(&item.entries);
                    }
                    mine.adopted = true;
                    mine.sure_from = mine.sure_from.max(sure_from);
                    mine.entries.append(&mut item.entries);
                    mine.in_doubt = mine.in_doubt.or(item.in_doubt);
                }
                Slot::Vacant(v) => {
                    v.insert(item);
                }
            }
        }
    }

    /// Work that was to be handed over and found no taker: back, to be sent
    /// again (it is handed over when no server session could be had).
    pub fn adopt_back(&mut self, items: Vec<Handover>) {
        for h in items {
            let key = (h.target, h.owed);
            self.unsent.insert(key.clone());
            self.owed.insert(key, h.item);
        }
    }

    /// Everything owed, to hand to another worker of the same maildrop.
    pub fn hand_over(&mut self) -> Vec<Handover> {
        self.unsent.clear();
        std::mem::take(&mut self.owed)
            .into_iter()
            .map(|((target, owed), item)| Handover { target, owed, item })
            .collect()
    }

    /// The targets owed a delete (the adopter hides them from its listing).
    pub fn deletes(&self) -> impl Iterator<Item = &Target> {
        self.owed
            .keys()
            .filter(|(_, o)| *o == Owed::Delete)
            .map(|(t, _)| t)
    }

    /// The next owed item not yet sent in this server session. An item
    /// this session cannot prove gone (see `Item::sure_from`) waits for
    /// the next session: [`Ledger::committed`] keeps it.
    pub fn next_step(&self) -> Option<Step> {
        self.unsent
            .iter()
            .filter_map(|key| Some((key, self.owed.get(key)?)))
            .find_map(|(key, item)| {
                let (target, owed) = key;
                if self.newcomers.contains(key) {
                    return Some(Step {
                        target: target.clone(),
                        owed: *owed,
                        action: Action::Gone,
                    });
                }
                // Adopted mid-session from a session whose QUIT went
                // unanswered: only a fresh listing can tell whether it
                // was committed (`settle_doubts`).
                if item.in_doubt.is_some() {
                    return None;
                }
                let action = match self.resolve(target) {
                    Resolved::Number(n) => Action::Send(match owed {
                        Owed::Read => Command::Retr(n),
                        Owed::Delete => Command::Dele(n),
                    }),
                    Resolved::Gone if self.sessions < item.sure_from => return None,
                    Resolved::Gone => Action::Gone,
                    Resolved::Ambiguous => Action::Ambiguous,
                };
                Some(Step {
                    target: target.clone(),
                    owed: *owed,
                    action,
                })
            })
    }

    /// The server answered the step's command (either way: `-ERR` to `DELE`
    /// means it is deleted already), or there was nothing to send.
    pub fn done(&mut self, target: &Target, owed: Owed) {
        self.unsent.remove(&(target.clone(), owed));
    }

    /// Work that can never be done (an ambiguous message): dropped; its
    /// journal entries, to erase.
    pub fn impossible(&mut self, target: &Target, owed: Owed) -> Vec<Entry> {
        let key = (target.clone(), owed);
        self.unsent.remove(&key);
        self.owed
            .remove(&key)
            .map(|i| i.entries)
            .unwrap_or_default()
    }

    /// The mail client marked `target` unread: the read mark owed on it,
    /// adopted or this session's, sent in this server session or not, is
    /// dropped (the server's `\Seen` is taken away after this, and a
    /// mark committed later would undo that). True if one was owed.
    pub fn unread(&mut self, target: &Target) -> bool {
        let key = (target.clone(), Owed::Read);
        self.unsent.remove(&key);
        self.newcomers.remove(&key);
        self.owed.remove(&key).is_some()
    }

    /// The read marks an unread took back, in any session
    /// (`crate::read_marks`): dropped, sent in this server session or not.
    pub fn taken_back(&mut self) -> Vec<TakenBack> {
        let back: Vec<Key> = (self.owed.iter())
            .filter(|(_, item)| item.claim.as_ref().is_some_and(Claim::taken_back))
            .map(|(key, _)| key.clone())
            .collect();
        let mut taken = Vec::with_capacity(back.len());
        for key in back {
            let sent = self.sent_number(&key);
            self.unsent.remove(&key);
            self.newcomers.remove(&key);
            if let Some(item) = self.owed.remove(&key) {
                taken.push(TakenBack {
                    target: key.0,
                    entries: item.entries,
                    sent,
                });
            }
        }
        taken
    }

    /// The item's number in this server session if its command was sent
    /// in it (to the message listed by it, not a later copy).
    fn sent_number(&self, key: &Key) -> Option<u32> {
        if self.unsent.contains(key) || self.newcomers.contains(key) {
            return None;
        }
        match self.resolve(&key.0) {
            Resolved::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The mail client undid this session's work on this server: its
    /// deletes, and its read marks too (a server's RSET undoes both, so the
    /// server ends as it would had the mail client spoken to it directly).
    /// Adopted work, acknowledged in another session, stays owed, and must
    /// be sent again: the server's RSET undid it as well. (The session erased
    /// its own journal entries before answering the client.)
    pub fn rset(&mut self) {
        self.owed.retain(|_, item| item.adopted);
        self.unsent = self.owed.keys().cloned().collect();
    }

    /// `QUIT` answered `+OK`: everything sent in this session is committed.
    /// Returns the journal entries of what was committed, to erase.
    pub fn committed(&mut self) -> Vec<Entry> {
        if let Some(ours) = &self.ours {
            // The deletes whose DELE this session sent: listed, not a copy.
            let deleted = self
                .owed
                .keys()
                .filter(|key| key.1 == Owed::Delete && self.sent_number(key).is_some())
                .map(|(target, _)| target.clone())
                .collect();
            ours.record(deleted);
        }
        let mut done = Vec::new();
        let unsent = &self.unsent;
        self.owed.retain(|key, i| {
            let issued = !unsent.contains(key);
            if issued {
                done.append(&mut i.entries);
            }
            !issued
        });
        self.remember_order();
        self.numbers = Numbering::default();
        done
    }

    pub fn is_empty(&self) -> bool {
        self.owed.is_empty()
    }

    /// Everything still owed, for the operator ("delete of 0000001a6b0b34ac").
    pub fn outstanding(&self) -> Vec<String> {
        self.owed
            .keys()
            .map(|(t, owed)| format!("{} of {}", what(*owed), t.uidl))
            .collect()
    }
}

#[cfg(test)]
mod tests;
