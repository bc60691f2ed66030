//! The mail user: one or two mail clients (overlapping sessions of the same
//! user, as when a phone and a laptop poll the same mailbox) against the
//! client proxy, in the habits of real clients.
//!
//! Each session connects, logs in with the proxy's local credentials, runs
//! STAT, UIDL and LIST, then works in its mode:
//!
//! - `FetchmailKeep`: RETRs only what it has not seen before (it remembers
//!   UIDLs, as fetchmail's `uidl` option does), deletes nothing;
//! - `FetchmailDelete`: RETR then DELE, message by message;
//! - `GetmailDelete`: RETRs everything new, then DELEs what it got;
//! - `Browse`: a long session of hundreds of commands (TOP, LIST n, UIDL n,
//!   NOOP, STAT) around its RETRs and DELEs, as an interactive client does.
//!
//! In some seeds a share of the sessions speaks IMAP to the client proxy's
//! IMAP front instead ([`imap`]).
//!
//! Any mode may pipeline (RFC 2449: several commands in one write), send
//! RSET after some DELEs, ask TOP, LIST n and UIDL n, hang up between
//! commands, or give up while a body is arriving. Everything it is told goes
//! to its record ([`record`]): bodies are checked at once against the
//! server's bytes (invariant 2), and the oracle checks the rest.

/// How long the mail users wait for a server that sends nothing (reset by
/// every byte that comes): fetchmail's 300 s. A line cut often enough
/// starves one command that long whatever the proxy does, and invariant 9
/// allows for it.
pub const COMMAND_SILENCE: Duration = Duration::from_secs(300);

mod append;
mod flags;
pub mod imap;
mod pop3;
pub mod record;
mod search;
mod trash;

use std::collections::BTreeSet;
use std::time::Duration;

use causeway_client::{shown_keys, shown_uidl};
use causeway_mailserver::MailStore;
use causeway_net::{Env, EnvRng, SimEnv};
use causeway_proto::session::ListEntry;

use crate::swarm::MuaParams;
pub use record::{Activity, Deletes, Ended, MsgKey, MuaLog, Reads, SessionLog, fmt_ms};

/// A server as the mail user's checks need it.
#[derive(Clone)]
pub struct StoreRef {
    pub host: String,
    pub user: String,
    pub store: MailStore,
    /// Its entry speaks IMAP to it (else POP3).
    pub imap: bool,
}

/// One mail client.
pub struct Mua {
    pub env: SimEnv,
    /// What the IMAP mail user stars, and when: a stream of its own, so
    /// that every other choice of every seed stays what it was before the
    /// user stored flags.
    pub flag_rng: EnvRng,
    pub client: u8,
    pub params: MuaParams,
    pub user: String,
    pub password: String,
    pub proxy: String,
    pub stores: Vec<StoreRef>,
    pub log: MuaLog,
    /// Start no session after this much simulated time.
    pub stop_after: Duration,
    /// Talking straight to this server (the plain-POP3 baseline): UIDLs
    /// carry no server prefix.
    pub direct: Option<String>,
    /// The proxy asks the edge for every DELE (it has no delete journal):
    /// a DELE's `+OK` proves the edge heard what the proxy sent before it.
    pub dele_by_edge: bool,
}

fn sim_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as u64)
}

impl Mua {
    pub async fn run(self) -> turmoil::Result {
        let start = self.env.now();
        // Like fetchmail in daemon mode: poll, pause, poll again, until the
        // fault phase is over (or the session budget is spent).
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for n in 0..self.params.sessions {
            if self.env.now() - start >= self.stop_after {
                break;
            }
            let started = sim_ms();
            self.log.with(|m| m.in_session += 1);
            self.log.set(Activity::InSession);
            // Only seeds that have IMAP sessions draw for them, so the
            // others run as before.
            let imap = self.direct.is_none()
                && self.params.imap_share > 0.0
                && self.chance(self.params.imap_share);
            let (ended, refused, commands, (opened_ms, quit_ms)) = if imap {
                self.imap_session(n).await
            } else {
                self.pop3_session(n, &mut seen).await
            };
            self.log.with(|m| m.in_session -= 1);
            self.log.set(Activity::Idle);
            let what = match &ended {
                Ended::Quit => "ended with QUIT".to_owned(),
                Ended::GaveUp => "gave up".to_owned(),
                Ended::Broken(e) => format!("failed: {e}"),
            };
            self.log.event(
                sim_ms(),
                format!("client {} session {n} {what}", self.client),
            );
            self.log.with(|m| {
                m.sessions.push(SessionLog {
                    client: self.client,
                    number: n,
                    start_ms: started,
                    end_ms: sim_ms(),
                    ended,
                    refused,
                    commands,
                    opened_ms,
                    quit_ms,
                })
            });
            let rng = self.env.rng();
            let pause = rng.range(
                self.params.pause_min.as_millis() as u64,
                self.params.pause_max.as_millis() as u64 + 1,
            );
            self.env.sleep(Duration::from_millis(pause)).await;
        }
        self.log.with(|m| m.finished += 1);
        self.log
            .event(sim_ms(), format!("client {} done", self.client));
        Ok(())
    }

    fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.env.rng().chance(p)
    }

    /// True if another message its server holds shares `key`'s UIDL and
    /// size: no command may name it (issue #15's rule), so a refusal is
    /// the right answer, not a failure of a session that met no fault.
    fn shared(&self, key: &MsgKey) -> bool {
        let Some(s) = self.stores.iter().find(|s| s.host == key.0) else {
            return false;
        };
        let all = s.store.messages(&s.user);
        let Some(m) = all.iter().find(|m| m.uid == key.1) else {
            return false;
        };
        all.iter().any(|o| {
            o.uid != m.uid && o.uidl == m.uidl && o.size == m.size && o.deleted_at_ms.is_none()
        })
    }

    /// The message the proxy shows as `shown` (of `size` octets) in a
    /// session that began at `since_ms`, if any server holds it: the
    /// candidates are computed the way the proxy names messages
    /// ([`shown_uidl`]), over the maildrop as it stood while the session
    /// could have taken its listing.
    fn key(&self, shown: &str, size: u64, since_ms: u64) -> Option<MsgKey> {
        if let Some(h) = &self.direct {
            let s = self.stores.iter().find(|s| &s.host == h)?;
            let m = s
                .store
                .messages(&s.user)
                .into_iter()
                .find(|m| m.uidl.as_str() == shown && m.size as u64 == size)?;
            return Some((h.clone(), m.uid));
        }
        let (host, _) = shown.split_once(':')?;
        let s = self.stores.iter().find(|s| s.host == host)?;
        let all = s.store.messages(&s.user);
        // The proxy names by the listing the edge took at some moment
        // between the session's start and now. The maildrop as it stood at
        // each moment it changed in that span gives the names that listing
        // could have had; a name is judged by the first that has it. (Judged
        // by the maildrop of now, a duplicate delivered after the listing
        // would make a name shown without its size ambiguous.)
        let now = self.env.unix_millis();
        let mut moments: Vec<u64> = all
            .iter()
            .flat_map(|m| [m.delivered_at_ms, m.deleted_at_ms])
            .flatten()
            .filter(|t| *t > since_ms && *t <= now)
            .collect();
        moments.push(since_ms);
        moments.sort_unstable();
        moments.dedup();
        for t in moments {
            let present: Vec<_> = all
                .iter()
                .filter(|m| m.delivered_at_ms.is_none_or(|d| d <= t))
                .filter(|m| m.deleted_at_ms.is_none_or(|d| d > t))
                .collect();
            let listing: Vec<ListEntry> = present
                .iter()
                .map(|m| ListEntry {
                    uidl: m.uidl.as_str().to_owned(),
                    size: m.size as u64,
                    flags: None,
                })
                .collect();
            for (key, m) in shown_keys(&listing).iter().zip(&present) {
                // The name alone is not enough: a listing taken while a
                // duplicate was still there (or hidden as owed work) names
                // another message of this UIDL the same way.
                if shown_uidl(host, key) == shown && m.size as u64 == size {
                    return Some((host.to_owned(), m.uid));
                }
            }
        }
        // The maildrop changed since the proxy's listing (a duplicate
        // deleted or delivered since): the one message of this size shown
        // by its UIDL alone, or by UIDL and size.
        let named: Vec<u32> = all
            .iter()
            .filter(|m| m.size as u64 == size)
            .filter(|m| {
                let u = m.uidl.as_str();
                shown_uidl(host, u) == shown || shown_uidl(host, &format!("{u}/{size}")) == shown
            })
            .map(|m| m.uid)
            .collect();
        match named.as_slice() {
            [uid] => Some((host.to_owned(), *uid)),
            _ => None,
        }
    }

    /// Invariant 2, at once: the bytes match the server's: the whole
    /// message, or (`top: Some(lines)`) exactly what the model server
    /// answers `TOP n lines` with (header, blank line, `lines` lines).
    fn check_body(&self, key: &MsgKey, shown: &str, body: &[u8], top: Option<u32>) {
        let whole = top.is_none();
        let s = self
            .stores
            .iter()
            .find(|s| s.host == key.0)
            .expect("known server");
        let held = s.store.body_by_uid_copy(&s.user, key.1);
        let ok = match &held {
            None => false,
            Some(h) => match top {
                None => h == body,
                Some(lines) => causeway_mailserver::top(h, lines) == body,
            },
        };
        if whole {
            let now = self.env.unix_millis();
            self.log.with(|m| m.read_whole(key, self.client, now));
        }
        if !ok {
            let msg = match held {
                None => "the mail client received a body for a message no server has".to_owned(),
                Some(h) => format!(
                    "{} of {shown} (at {}) differs from the server's: received {} octets, server holds {}{}",
                    if whole { "body" } else { "TOP's head" },
                    fmt_ms(sim_ms()),
                    body.len(),
                    h.len(),
                    first_difference(&h, body)
                ),
            };
            self.log.violation(2, Some(key.clone()), msg);
        }
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(", first difference at octet {i}"),
        None => ", one is a prefix of the other".into(),
    }
}
