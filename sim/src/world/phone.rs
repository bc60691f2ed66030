//! The user's phone: another device that stars and unstars messages
//! (`\Flagged`) and reads some (`\Seen`) straight on the IMAP servers, as
//! a person does on the train, while Causeway serves the same account.
//!
//! Why: what another device sets on a server must show at the IMAP front
//! from its next listing (invariant 13), and no star the user's own mail
//! client set may be taken for one the phone set, or the reverse (11); a
//! message the phone read is no read mark of ours (invariant 3 leaves it
//! alone).
//! Without it, flags only ever change through Causeway, and a front that
//! ignored the server's flags would pass every seed.
//!
//! Its choices come from a stream of their own, so every other choice of
//! each seed stays what it was before it existed; in about a third of the
//! seeds with an IMAP server it is not used at all.

use causeway_mailserver::SessionId;
use causeway_net::{EnvRng, derive_seed};

use super::World;
use crate::workload::MsgKey;

/// The flag it sets.
const FLAGGED: &str = "\\Flagged";

/// Who read a message the phone read, in the model server's record.
pub const PHONE: SessionId = SessionId(u64::MAX);

/// How often a turn of the phone reads a message rather than star one.
const READ_CHANCE: f64 = 0.5;

/// Its plan for one seed: which servers it works on, and when it next
/// stars or unstars something.
pub struct Phone {
    rng: EnvRng,
    servers: Vec<usize>,
    next_ms: u64,
}

/// One star set or taken away by the phone: (message, set, env unix ms).
pub type PhoneStar = (MsgKey, bool, u64);

/// One message the phone read: (message, env unix ms).
pub type PhoneRead = (MsgKey, u64);

impl Phone {
    /// The phone of seed `seed` for servers whose entry is IMAP
    /// (`imap[i]`): in use in about 70% of the seeds that have one.
    pub fn new(seed: u64, imap: &[bool]) -> Phone {
        let rng = EnvRng::from_seed(derive_seed(seed, &[b"phone"]));
        let servers = match rng.chance(0.7) {
            true => (0..imap.len()).filter(|&i| imap[i]).collect(),
            false => Vec::new(),
        };
        let next_ms = rng.range(5_000, 40_000);
        Phone {
            rng,
            servers,
            next_ms,
        }
    }
}

impl World {
    /// Once its time has come, the phone reads a message of one of its
    /// servers, or stars one, or unstars one it finds starred.
    pub fn phone_tick(&mut self, now: u64) {
        let phone = &mut self.phone;
        if phone.servers.is_empty() || now < phone.next_ms {
            return;
        }
        phone.next_ms = now + phone.rng.range(5_000, 40_000);
        let i = phone.servers[phone.rng.range(0, phone.servers.len() as u64) as usize];
        let s = &self.servers[i];
        let live: Vec<_> = (s.store.messages(&s.user).into_iter())
            .filter(|m| m.deleted_by.is_none())
            .collect();
        if live.is_empty() {
            return;
        }
        let at = self.unix_now();
        let unread: Vec<_> = live.iter().filter(|m| m.seen_by.is_none()).collect();
        if !unread.is_empty() && self.phone.rng.chance(READ_CHANCE) {
            let m = unread[self.phone.rng.range(0, unread.len() as u64) as usize];
            s.store.read_elsewhere(&s.user, m.uid, PHONE, at);
            self.log_event(format!("the phone reads {}:{}", s.host, m.uidl));
            self.phone_reads.push(((s.host.clone(), m.uid), at));
            return;
        }
        let m = &live[self.phone.rng.range(0, live.len() as u64) as usize];
        let add = !m.flags.contains(FLAGGED);
        s.store
            .store_flags(&s.user, m.uid, add, &[FLAGGED.to_owned()], at);
        let verb = if add { "stars" } else { "unstars" };
        self.log_event(format!("the phone {verb} {}:{}", s.host, m.uidl));
        self.phone_stars.push(((s.host.clone(), m.uid), add, at));
    }

    /// Whether the phone ever starred or unstarred message `key`.
    pub fn phone_touched(&self, key: &MsgKey) -> bool {
        self.phone_stars.iter().any(|(k, _, _)| k == key)
    }
}
