//! Owed work follows the maildrop, not the session.
//!
//! Most POP3 servers lock a maildrop while a session has it open. So when
//! two workers want the same maildrop (a session whose line was cut and the
//! client's next one; work replayed from the journal and the user's new
//! session), one of them is locked out (`[IN-USE]`) for as long as the other
//! holds it, which for a mail client left open can be hours. Waiting out a
//! deadline and then dropping acknowledged work would break the promise, so
//! instead the work goes to whoever holds the maildrop:
//!
//! - a worker with a live server session for a maildrop is its *adopter*
//!   (see [`Maildrops::adopter`]); it takes the maildrop's backlog when it
//!   opens (and leaves those deletes out of the listing it shows) and again
//!   whenever more is handed over, sends it in its own server session by
//!   UIDL, and erases it from the journal when its QUIT commits;
//! - a worker that cannot commit its work while an adopter exists hands it
//!   over ([`Maildrops::hand_over`]) and ends;
//! - the last adopter to retire takes what is left, so handed-over work
//!   always has an owner;
//! - work nobody can do yet (the server refuses our credentials, say) is
//!   parked in the backlog: the next session for the maildrop adopts it, and
//!   it stays in the journal across restarts until then.
//!
//! A maildrop is the account (server address and user name) and, for
//! IMAP, the folder: work owed to one folder is done in a session that
//! selected it. The route and the password may differ between sessions
//! (the password may even have been corrected in between).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::account::MaildropKey;
use crate::commits::Commits;
use crate::ledger::Handover;
use crate::read_marks::ReadMarks;

mod published;
pub(crate) use published::Published;

/// Every maildrop some worker of this edge has owed work for or holds.
#[derive(Clone, Default)]
pub(crate) struct Maildrops {
    slots: Arc<Mutex<BTreeMap<MaildropKey, Slot>>>,
    /// The deletes our sessions committed, by maildrop.
    pub(crate) commits: Commits,
    /// The read marks every worker owes, by maildrop.
    pub(crate) reads: ReadMarks,
    /// The deletes each live worker owes, by maildrop and worker, as it
    /// published them ([`Published`]).
    owing: Arc<Mutex<published::Owing>>,
    next_worker: Arc<AtomicU64>,
}

struct Slot {
    /// Workers holding a server session for this maildrop and taking work.
    adopters: usize,
    /// Work handed over (or parked), not yet taken.
    backlog: Vec<Handover>,
    /// Bumped when work is handed over, to wake the adopters.
    handed: watch::Sender<u64>,
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            adopters: 0,
            backlog: Vec::new(),
            handed: watch::channel(0).0,
        }
    }
}

/// A worker's standing as an adopter of one maildrop; it retires (taking
/// the backlog if it is the last) with [`Adopter::retire`], or on drop
/// (then the backlog stays parked for the next one).
pub(crate) struct Adopter {
    maildrops: Maildrops,
    key: MaildropKey,
    /// Changes when work is handed over.
    pub handed: watch::Receiver<u64>,
    retired: bool,
}

impl Maildrops {
    fn slots(&self) -> MutexGuard<'_, BTreeMap<MaildropKey, Slot>> {
        // Each change is made in one step under the lock: consistent after a
        // panic elsewhere.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a worker that holds a server session for `key`; returns
    /// its standing and the backlog, which it now owns.
    pub(crate) fn adopter(&self, key: &MaildropKey) -> (Adopter, Vec<Handover>) {
        let mut slots = self.slots();
        let slot = slots.entry(key.clone()).or_default();
        slot.adopters += 1;
        let backlog = std::mem::take(&mut slot.backlog);
        let adopter = Adopter {
            maildrops: self.clone(),
            key: key.clone(),
            handed: slot.handed.subscribe(),
            retired: false,
        };
        (adopter, backlog)
    }

    /// Hands `items` to the adopters of `key`, if there is one; else gives
    /// them back.
    pub(crate) fn hand_over(
        &self,
        key: &MaildropKey,
        items: Vec<Handover>,
    ) -> Result<(), Vec<Handover>> {
        let mut slots = self.slots();
        match slots.get_mut(key) {
            Some(slot) if slot.adopters > 0 => {
                slot.backlog.extend(items);
                slot.handed.send_modify(|n| *n += 1);
                Ok(())
            }
            _ => Err(items),
        }
    }

    /// Leaves `items` for the next worker that opens `key` (or the next
    /// start of the edge, from the journal).
    pub(crate) fn park(&self, key: &MaildropKey, items: Vec<Handover>) {
        let mut slots = self.slots();
        let slot = slots.entry(key.clone()).or_default();
        slot.backlog.extend(items);
        slot.handed.send_modify(|n| *n += 1);
    }
}

impl Adopter {
    /// Work handed over since the last call.
    pub(crate) fn take(&self) -> Vec<Handover> {
        let mut slots = self.maildrops.slots();
        slots
            .get_mut(&self.key)
            .map(|s| std::mem::take(&mut s.backlog))
            .unwrap_or_default()
    }

    /// No longer takes work; the last adopter gets whatever is left, so
    /// nothing handed over is stranded.
    pub(crate) fn retire(mut self) -> Vec<Handover> {
        self.retired = true;
        let mut slots = self.maildrops.slots();
        let Some(slot) = slots.get_mut(&self.key) else {
            return Vec::new();
        };
        slot.adopters -= 1;
        let left = if slot.adopters == 0 {
            std::mem::take(&mut slot.backlog)
        } else {
            Vec::new()
        };
        if slot.adopters == 0 && slot.backlog.is_empty() {
            slots.remove(&self.key);
        }
        left
    }
}

impl Drop for Adopter {
    fn drop(&mut self) {
        if !self.retired {
            let mut slots = self.maildrops.slots();
            if let Some(slot) = slots.get_mut(&self.key) {
                slot.adopters -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, Owed, Target};
    use crate::state::EdgeState;

    fn key() -> MaildropKey {
        MaildropKey::for_test("alice")
    }

    fn owing(st: &EdgeState, uidl: &str) -> Vec<Handover> {
        let mut l = Ledger::default();
        l.owe(Target::new(uidl, 1), Owed::Delete, None, || {
            st.work_ticket(crate::state::test_now())
        });
        l.hand_over()
    }

    #[test]
    fn work_goes_to_the_adopter_and_never_strands() {
        let st = EdgeState::new();
        let m = Maildrops::default();
        // No adopter yet: the work comes back.
        assert!(m.hand_over(&key(), owing(&st, "a")).is_err());
        let (first, backlog) = m.adopter(&key());
        assert!(backlog.is_empty());
        let (second, _) = m.adopter(&key());
        assert!(m.hand_over(&key(), owing(&st, "b")).is_ok());
        assert!(first.handed.has_changed().unwrap());
        // The first retires without taking it: the second is still there.
        assert!(first.retire().is_empty());
        assert!(m.hand_over(&key(), owing(&st, "c")).is_ok());
        // The last adopter takes everything left.
        let left = second.retire();
        assert_eq!(left.len(), 2);
        assert_eq!(st.pending_work(), 2, "counted while in flight");
        drop(left);
        assert!(m.slots().is_empty());
    }

    #[test]
    fn parked_work_waits_for_the_next_session() {
        let st = EdgeState::new();
        let m = Maildrops::default();
        m.park(&key(), owing(&st, "a"));
        let (adopter, backlog) = m.adopter(&key());
        assert_eq!(backlog.len(), 1);
        drop(adopter);
        assert_eq!(m.slots()[&key()].adopters, 0);
    }
}
