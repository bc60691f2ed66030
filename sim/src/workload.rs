//! The mail client: a fetchmail-like workload against the client proxy.
//!
//! Each session connects, logs in with the proxy's local credentials, runs
//! STAT and UIDL, RETRs some or all messages, DELEs some of those it
//! received whole, and QUITs. Sometimes it gives up: it hangs up between
//! commands, or while a body is still arriving. Between sessions it pauses.
//! Everything it observed goes into [`MuaLog`], which the invariants are
//! checked against: the bodies it received (compared at once with what the
//! server holds), the DELEs it asked for and those answered `+OK`, and the
//! RETRs it abandoned.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_mailserver::MailStore;
use causeway_net::{Env, SimEnv};
use causeway_pop3::{ClientError, Pop3Client, Timeouts};

use crate::swarm::MuaParams;

/// (server host, server UIDL).
pub type MsgKey = (String, String);

/// What the mail client is doing now, for reactive faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Activity {
    Idle,
    InSession,
    /// A RETR was sent and its body has not arrived whole.
    Retr(MsgKey),
    /// A DELE was just answered `+OK`.
    DeleAcked(MsgKey),
}

#[derive(Default)]
pub struct MuaInner {
    pub activity: Option<Activity>,
    /// Bumped on every activity change, so the harness reacts once per change.
    pub activity_seq: u64,
    pub in_session: bool,
    pub finished: bool,
    /// Complete RETRs, per message.
    pub retrieved: BTreeMap<MsgKey, u32>,
    pub dele_asked: BTreeSet<MsgKey>,
    pub dele_acked: BTreeSet<MsgKey>,
    /// RETRs the mail client gave up on while the body was arriving.
    pub retr_abandoned: BTreeSet<MsgKey>,
    pub sessions_started: u32,
    pub sessions_logged_in: u32,
    pub sessions_quit_ok: u32,
    pub gave_up: u32,
    pub gave_up_mid_retr: u32,
    /// Problems seen as they happened: (invariant, server, uidl, message).
    pub violations: Vec<(u8, Option<MsgKey>, String)>,
    pub events: Vec<String>,
}

/// Shared between the mail client task and the harness.
#[derive(Clone, Default)]
pub struct MuaLog(Arc<Mutex<MuaInner>>);

impl MuaLog {
    pub fn with<T>(&self, f: impl FnOnce(&mut MuaInner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn set(&self, a: Activity) {
        self.with(|m| {
            m.activity = Some(a);
            m.activity_seq += 1;
        });
    }

    fn event(&self, at_ms: u64, text: String) {
        tracing::info!(target: "sim::mua", "{text}");
        self.with(|m| m.events.push(format!("{:>9} mua: {text}", fmt_ms(at_ms))));
    }
}

pub fn fmt_ms(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// A server as the mail client's checks need it.
#[derive(Clone)]
pub struct StoreRef {
    pub host: String,
    pub user: String,
    pub store: MailStore,
}

pub struct Mua {
    pub env: SimEnv,
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
}

fn sim_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as u64)
}

enum End {
    Quit,
    GaveUp,
    Broken(String),
}

impl Mua {
    pub async fn run(self) -> turmoil::Result {
        let start = self.env.now();
        // Like fetchmail in daemon mode: poll, pause, poll again, until the
        // fault phase is over (or the session budget is spent).
        for n in 0..self.params.sessions {
            if self.env.now() - start >= self.stop_after {
                break;
            }
            let end = self.session(n).await;
            self.log.with(|m| {
                m.in_session = false;
            });
            self.log.set(Activity::Idle);
            let what = match end {
                End::Quit => "ended with QUIT".to_owned(),
                End::GaveUp => "gave up".to_owned(),
                End::Broken(e) => format!("failed: {e}"),
            };
            self.log.event(sim_ms(), format!("session {n} {what}"));
            let rng = self.env.rng();
            let pause = rng.range(
                self.params.pause_min.as_millis() as u64,
                self.params.pause_max.as_millis() as u64 + 1,
            );
            self.env.sleep(Duration::from_millis(pause)).await;
        }
        self.log.with(|m| m.finished = true);
        self.log.event(sim_ms(), "done".into());
        Ok(())
    }

    fn give_up(&self) -> bool {
        self.params.give_up_chance > 0.0 && self.env.rng().chance(self.params.give_up_chance)
    }

    async fn session(&self, n: u32) -> End {
        self.log.with(|m| {
            m.in_session = true;
            m.sessions_started += 1;
        });
        self.log.set(Activity::InSession);
        self.log.event(sim_ms(), format!("session {n} connecting"));
        let stream = match self
            .env
            .timeout(
                Duration::from_secs(30),
                "connect",
                self.env.connect(&self.proxy),
            )
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return End::Broken(format!("connect: {e}")),
            Err(e) => return End::Broken(format!("connect: {e}")),
        };
        let timeouts = Timeouts {
            greeting: Duration::from_secs(60),
            command: Duration::from_secs(300),
            per_mib: Duration::from_secs(120),
        };
        let mut c = match Pop3Client::start(self.env.clone(), stream, timeouts, 64 << 20).await {
            Ok((c, _)) => c,
            Err(e) => return End::Broken(format!("greeting: {e}")),
        };
        if let Err(e) = c
            .login(self.user.as_bytes(), self.password.as_bytes())
            .await
        {
            return End::Broken(format!("login: {e}"));
        }
        self.log.with(|m| m.sessions_logged_in += 1);
        if self.give_up() {
            return self.gave_up("after login");
        }
        if let Err(e) = c.stat().await {
            return End::Broken(format!("STAT: {e}"));
        }
        let list = match c.uidl().await {
            Ok(l) => l,
            Err(e) => return End::Broken(format!("UIDL: {e}")),
        };
        self.log
            .event(sim_ms(), format!("session {n}: {} messages", list.len()));
        for (num, uidl) in list {
            let key = match self.key(&uidl) {
                Some(k) => k,
                None => {
                    self.log.with(|m| {
                        m.violations.push((
                            2,
                            None,
                            format!("UIDL listing names {uidl:?}, which no server holds"),
                        ))
                    });
                    continue;
                }
            };
            if !self.env.rng().chance(self.params.retr_chance) {
                continue;
            }
            if self.give_up() {
                return self.gave_up("before RETR");
            }
            self.log.set(Activity::Retr(key.clone()));
            let mid = self.params.give_up_mid_retr_chance > 0.0
                && self.env.rng().chance(self.params.give_up_mid_retr_chance);
            let result = if mid {
                let patience = Duration::from_millis(self.env.rng().range(1, 3_000));
                match self.env.timeout(patience, "patience", c.retr(num)).await {
                    Ok(r) => r,
                    Err(_) => {
                        self.log.with(|m| {
                            m.retr_abandoned.insert(key.clone());
                            m.gave_up_mid_retr += 1;
                        });
                        return self.gave_up(&format!("during RETR of {}:{}", key.0, key.1));
                    }
                }
            } else {
                c.retr(num).await
            };
            let body = match result {
                Ok(b) => b,
                Err(ClientError::Refused(s)) => {
                    self.log
                        .event(sim_ms(), format!("RETR {}:{} refused: {s}", key.0, key.1));
                    self.log.set(Activity::InSession);
                    continue;
                }
                Err(e) => return End::Broken(format!("RETR {}:{}: {e}", key.0, key.1)),
            };
            self.check_body(&key, &body);
            self.log.set(Activity::InSession);
            if !self.env.rng().chance(self.params.dele_chance) {
                continue;
            }
            if self.give_up() {
                return self.gave_up("before DELE");
            }
            self.log.with(|m| m.dele_asked.insert(key.clone()));
            match c.dele(num).await {
                Ok(()) => {
                    self.log.with(|m| m.dele_acked.insert(key.clone()));
                    self.log.set(Activity::DeleAcked(key.clone()));
                    self.log
                        .event(sim_ms(), format!("DELE {}:{} +OK", key.0, key.1));
                }
                Err(ClientError::Refused(s)) => {
                    self.log
                        .event(sim_ms(), format!("DELE {}:{} refused: {s}", key.0, key.1));
                }
                Err(e) => return End::Broken(format!("DELE {}:{}: {e}", key.0, key.1)),
            }
        }
        if self.give_up() {
            return self.gave_up("before QUIT");
        }
        match c.quit().await {
            Ok(s) if s.is_ok() => {
                self.log.with(|m| m.sessions_quit_ok += 1);
                End::Quit
            }
            Ok(s) => End::Broken(format!("QUIT answered {s}")),
            Err(e) => End::Broken(format!("QUIT: {e}")),
        }
    }

    fn gave_up(&self, when: &str) -> End {
        self.log.with(|m| m.gave_up += 1);
        self.log.event(sim_ms(), format!("giving up {when}"));
        End::GaveUp
    }

    /// `mail1:uidl` -> (`mail1`, `uidl`), if `mail1` is a configured server.
    fn key(&self, shown: &str) -> Option<MsgKey> {
        if let Some(h) = &self.direct {
            return Some((h.clone(), shown.to_owned()));
        }
        let (host, uidl) = shown.split_once(':')?;
        self.stores
            .iter()
            .any(|s| s.host == host)
            .then(|| (host.to_owned(), uidl.to_owned()))
    }

    /// Invariant 2, at once: the body is byte-identical to the server's.
    fn check_body(&self, key: &MsgKey, body: &[u8]) {
        let s = self
            .stores
            .iter()
            .find(|s| s.host == key.0)
            .expect("known server");
        let held = s.store.body(&s.user, &key.1);
        self.log.with(|m| {
            *m.retrieved.entry(key.clone()).or_default() += 1;
            match held {
                None => m.violations.push((
                    2,
                    Some(key.clone()),
                    "the mail client received a body for a UIDL the server never had".into(),
                )),
                Some(h) if h != body => m.violations.push((
                    2,
                    Some(key.clone()),
                    format!(
                        "body differs from the server's: received {} octets, server holds {}{}",
                        body.len(),
                        h.len(),
                        first_difference(&h, body)
                    ),
                )),
                Some(_) => {}
            }
        });
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(", first difference at octet {i}"),
        None => ", one is a prefix of the other".into(),
    }
}
