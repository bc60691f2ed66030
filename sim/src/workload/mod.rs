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
pub mod record;
mod search;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use causeway_client::{shown_keys, shown_uidl};
use causeway_mailserver::MailStore;
use causeway_net::{Env, EnvRng, SimEnv};
use causeway_pop3::{Command, Pop3Client, Response, Timeouts};
use causeway_proto::session::ListEntry;

use crate::swarm::{Mode, MuaParams};
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

type Client = Pop3Client<SimEnv, <SimEnv as Env>::Stream>;

/// Why a session stopped early.
enum Stop {
    GaveUp(String),
    Broken(String),
}

/// A message as the session's listing showed it.
#[derive(Clone, Debug)]
struct Listed {
    n: u32,
    shown: String,
    size: u64,
    /// What it is on the server (`None`: no server holds such a message).
    key: Option<MsgKey>,
}

/// One session in progress.
struct Session<'a> {
    mua: &'a Mua,
    c: Client,
    number: u32,
    deletes: Deletes,
    reads: Reads,
    /// An RSET was answered -ERR: refused if the session goes on, unknown
    /// if the line was lost with it.
    rset_unknown: bool,
    /// Message numbers deleted in this session (a LIST n or TOP of them is
    /// meant to fail).
    deleted_now: BTreeSet<u32>,
    refused: Vec<String>,
    commands: u32,
    /// When the session began to connect (env `unix_millis`, the clock of
    /// the model server's record): its listing is no older.
    began_ms: u64,
    /// When the login was answered `+OK`, and when QUIT was sent.
    opened_ms: Option<u64>,
    quit_ms: Option<u64>,
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
                self.session(n, &mut seen).await
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

    /// One session: how it ended, the commands refused, the commands sent,
    /// and when it logged in and sent QUIT.
    async fn session(
        &self,
        n: u32,
        seen: &mut BTreeSet<String>,
    ) -> (Ended, Vec<String>, u32, (Option<u64>, Option<u64>)) {
        let began_ms = self.env.unix_millis();
        self.log.event(
            sim_ms(),
            format!("client {} session {n} connecting", self.client),
        );
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
            Ok(Err(e)) => {
                return (
                    Ended::Broken(format!("connect: {e}")),
                    Vec::new(),
                    0,
                    (None, None),
                );
            }
            Err(e) => {
                return (
                    Ended::Broken(format!("connect: {e}")),
                    Vec::new(),
                    0,
                    (None, None),
                );
            }
        };
        let timeouts = Timeouts {
            greeting: Duration::from_secs(60),
            command: COMMAND_SILENCE,
        };
        let c = match Pop3Client::start(self.env.clone(), stream, timeouts, 64 << 20).await {
            Ok((c, _)) => c,
            Err(e) => {
                let ended = Ended::Broken(format!("greeting: {e}"));
                return (ended, Vec::new(), 0, (None, None));
            }
        };
        let mut s = Session {
            mua: self,
            c,
            number: n,
            deletes: Deletes::default(),
            reads: Reads::default(),
            rset_unknown: false,
            deleted_now: BTreeSet::new(),
            refused: Vec::new(),
            commands: 0,
            began_ms,
            opened_ms: None,
            quit_ms: None,
        };
        let ended = match s.work(seen).await {
            Ok(()) => Ended::Quit,
            Err(Stop::GaveUp(when)) => {
                self.log.with(|m| m.gave_up += 1);
                self.log
                    .event(sim_ms(), format!("client {} giving up {when}", self.client));
                Ended::GaveUp
            }
            Err(Stop::Broken(e)) => Ended::Broken(e),
        };
        let Session {
            deletes,
            reads,
            refused,
            commands,
            opened_ms,
            quit_ms,
            ..
        } = s;
        deletes.settle(&self.log);
        reads.settle(&self.log);
        (ended, refused, commands, (opened_ms, quit_ms))
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

impl Session<'_> {
    /// A command was answered after an RSET's -ERR: that RSET was refused
    /// and undid nothing.
    fn session_went_on(&mut self) {
        if std::mem::take(&mut self.rset_unknown) {
            self.deletes.rset_refused();
            self.reads.rset_refused();
        }
    }

    fn give_up(&self, when: &str) -> Result<(), Stop> {
        if self.mua.chance(self.mua.params.give_up_chance) {
            return Err(Stop::GaveUp(when.to_owned()));
        }
        Ok(())
    }

    async fn exec(&mut self, cmd: &Command) -> Result<Response, Stop> {
        self.commands += 1;
        let token = self.reads.sending();
        let r = self
            .c
            .execute(cmd)
            .await
            .map_err(|e| Stop::Broken(format!("{}: {e}", cmd.keyword())))?;
        self.session_went_on();
        if r.status.is_ok() && self.carried_to_edge(cmd) {
            self.reads.proved(token);
        }
        Ok(r)
    }

    /// Commands whose `+OK` only the edge can give: the client proxy sends
    /// its waiting read marks ahead of them. (RETR and TOP are answered from
    /// the proxy's mirror when it holds the body, and DELE from its delete
    /// journal when it has one, so those prove nothing.)
    fn carried_to_edge(&self, cmd: &Command) -> bool {
        match cmd {
            Command::Quit => true,
            Command::Dele(_) => self.mua.dele_by_edge,
            _ => false,
        }
    }

    /// Pipelined commands (all of a kind [`Self::carried_to_edge`]).
    async fn pipeline(&mut self, cmds: &[Command], what: &str) -> Result<Vec<Response>, Stop> {
        self.mua.log.with(|m| m.pipelined += 1);
        self.commands += cmds.len() as u32;
        let token = self.reads.sending();
        let rs = self
            .c
            .pipeline(cmds)
            .await
            .map_err(|e| Stop::Broken(format!("pipelined {what}: {e}")))?;
        self.session_went_on();
        if rs
            .iter()
            .zip(cmds)
            .any(|(r, c)| r.status.is_ok() && self.carried_to_edge(c))
        {
            self.reads.proved(token);
        }
        Ok(rs)
    }

    /// A command whose `-ERR` the session notes as refused.
    async fn ok(&mut self, cmd: &Command, what: &str) -> Result<Option<Response>, Stop> {
        let r = self.exec(cmd).await?;
        if r.status.is_ok() {
            Ok(Some(r))
        } else {
            self.refused.push(format!("{what}: {}", r.status));
            Ok(None)
        }
    }

    async fn work(&mut self, seen: &mut BTreeSet<String>) -> Result<(), Stop> {
        let mua = self.mua;
        self.c
            .login(mua.user.as_bytes(), mua.password.as_bytes())
            .await
            .map_err(|e| Stop::Broken(format!("login: {e}")))?;
        self.opened_ms = Some(sim_ms());
        self.give_up("after login")?;
        self.ok(&Command::Stat, "STAT").await?;
        let uidls = match self.ok(&Command::Uidl(None), "UIDL").await? {
            Some(r) => causeway_pop3::client::parse_uidl_listing(&r.body.unwrap_or_default())
                .map_err(|e| Stop::Broken(format!("UIDL listing: {e}")))?,
            None => return Err(Stop::Broken("UIDL refused".into())),
        };
        let sizes: BTreeMap<u32, u64> = match self.ok(&Command::List(None), "LIST").await? {
            Some(r) => causeway_pop3::client::parse_scan_listing(&r.body.unwrap_or_default())
                .map_err(|e| Stop::Broken(format!("LIST listing: {e}")))?
                .into_iter()
                .collect(),
            None => return Err(Stop::Broken("LIST refused".into())),
        };
        let listed: Vec<Listed> = uidls
            .into_iter()
            .map(|(n, shown)| {
                let size = sizes.get(&n).copied().unwrap_or(0);
                let key = mua.key(&shown, size, self.began_ms);
                if key.is_none() {
                    mua.log.violation(
                        2,
                        None,
                        format!("the listing names {shown:?}, which no server holds"),
                    );
                }
                Listed {
                    n,
                    shown,
                    size,
                    key,
                }
            })
            .collect();
        mua.log.event(
            sim_ms(),
            format!(
                "client {} session {}: {} messages",
                mua.client,
                self.number,
                listed.len()
            ),
        );
        let p = &mua.params;
        if p.mode == Mode::Browse {
            mua.log.with(|m| m.long_sessions += 1);
        }
        let wanted: Vec<Listed> = listed
            .iter()
            .filter(|l| l.key.is_some())
            .filter(|l| p.mode != Mode::FetchmailKeep || !seen.contains(&l.shown))
            .filter(|_| mua.chance(p.retr_chance))
            .cloned()
            .collect();
        let mut got: Vec<Listed> = Vec::new();
        let mut i = 0;
        while i < wanted.len() {
            if p.mode == Mode::Browse {
                self.browse(&listed).await?;
            }
            let batch = if mua.chance(p.pipeline_chance) {
                mua.env.rng().range(2, 5) as usize
            } else {
                1
            };
            let chunk: Vec<Listed> = wanted[i..(i + batch).min(wanted.len())].to_vec();
            i += chunk.len();
            self.give_up("before RETR")?;
            let done = self.retr(&chunk).await?;
            for l in &done {
                seen.insert(l.shown.clone());
            }
            if p.mode == Mode::FetchmailDelete {
                self.dele(&done).await?;
            }
            got.extend(done);
            if mua.chance(p.extra_chance) {
                self.browse(&listed).await?;
            }
        }
        if p.mode == Mode::GetmailDelete || p.mode == Mode::Browse {
            self.dele(&got).await?;
        }
        if mua.chance(p.rset_chance) {
            self.give_up("before RSET")?;
            self.rset().await?;
        }
        self.give_up("before QUIT")?;
        self.quit_ms = Some(sim_ms());
        mua.log.quit_sent();
        let r = self.exec(&Command::Quit).await?;
        if r.status.is_ok() {
            Ok(())
        } else {
            Err(Stop::Broken(format!("QUIT answered {}", r.status)))
        }
    }

    /// RETRs `chunk` (pipelined when there are several); the messages that
    /// arrived whole.
    async fn retr(&mut self, chunk: &[Listed]) -> Result<Vec<Listed>, Stop> {
        let mua = self.mua;
        let first = chunk[0].key.clone().expect("wanted messages have keys");
        mua.log.set(Activity::Retr(first.clone()));
        let responses = if chunk.len() > 1 {
            let cmds: Vec<Command> = chunk.iter().map(|l| Command::Retr(l.n)).collect();
            self.pipeline(&cmds, "RETR").await?
        } else if mua.chance(mua.params.give_up_mid_retr_chance) {
            let patience = Duration::from_millis(mua.env.rng().range(1, 3_000));
            self.commands += 1;
            match mua
                .env
                .timeout(
                    patience,
                    "patience",
                    self.c.execute(&Command::Retr(chunk[0].n)),
                )
                .await
            {
                Ok(r) => {
                    let r = r.map_err(|e| Stop::Broken(format!("RETR: {e}")))?;
                    self.session_went_on();
                    vec![r]
                }
                Err(_) => {
                    mua.log.with(|m| m.gave_up_mid_retr += 1);
                    return Err(Stop::GaveUp(format!("during RETR of {}", chunk[0].shown)));
                }
            }
        } else {
            vec![self.exec(&Command::Retr(chunk[0].n)).await?]
        };
        mua.log.set(Activity::InSession);
        let mut done = Vec::new();
        for (l, r) in chunk.iter().zip(responses) {
            let key = l.key.clone().expect("wanted messages have keys");
            match (r.status.is_ok(), r.body) {
                (true, Some(body)) => {
                    mua.check_body(&key, &l.shown, &body, None);
                    self.reads.received(key);
                    done.push(l.clone());
                }
                _ => {
                    mua.log
                        .event(sim_ms(), format!("RETR {} refused: {}", l.shown, r.status));
                    // As at the IMAP front (`may_be_refused`): one the
                    // user deleted, shown because its UIDL is listed twice.
                    let deleted = mua.log.with(|m| m.must_delete.contains(&key));
                    if !mua.shared(&key) && !deleted {
                        self.refused.push(format!("RETR {}: {}", l.shown, r.status));
                    }
                }
            }
        }
        Ok(done)
    }

    /// DELEs `msgs` (pipelined in pairs now and then), with the chance the
    /// mode gives each.
    async fn dele(&mut self, msgs: &[Listed]) -> Result<(), Stop> {
        let mua = self.mua;
        let chosen: Vec<&Listed> = msgs
            .iter()
            .filter(|_| mua.chance(mua.params.dele_chance))
            .collect();
        let mut i = 0;
        while i < chosen.len() {
            self.give_up("before DELE")?;
            let batch = if mua.chance(mua.params.pipeline_chance) {
                2
            } else {
                1
            };
            let chunk = &chosen[i..(i + batch).min(chosen.len())];
            i += chunk.len();
            for l in chunk {
                let key = l.key.as_ref().expect("listed");
                self.deletes.sent(key);
                mua.log.delete_sent(key);
            }
            let responses = if chunk.len() > 1 {
                let cmds: Vec<Command> = chunk.iter().map(|l| Command::Dele(l.n)).collect();
                self.pipeline(&cmds, "DELE").await?
            } else {
                vec![self.exec(&Command::Dele(chunk[0].n)).await?]
            };
            for (l, r) in chunk.iter().zip(responses) {
                let key = l.key.clone().expect("listed");
                if r.status.is_ok() {
                    self.deletes.acked(&key);
                    self.deleted_now.insert(l.n);
                    mua.log.set(Activity::DeleAcked(key));
                    mua.log.event(sim_ms(), format!("DELE {} +OK", l.shown));
                } else {
                    mua.log
                        .event(sim_ms(), format!("DELE {} refused: {}", l.shown, r.status));
                    if !mua.shared(&key) {
                        self.refused.push(format!("DELE {}: {}", l.shown, r.status));
                    }
                }
            }
            // A user who thinks better of it at once.
            if mua.chance(mua.params.rset_chance / 3.0) {
                self.rset().await?;
            }
        }
        Ok(())
    }

    async fn rset(&mut self) -> Result<(), Stop> {
        let mua = self.mua;
        let pause = mua.params.rset_pause;
        if !pause.is_zero() {
            mua.env.sleep(pause).await;
        }
        // An earlier RSET whose -ERR left its work uncertain is not resolved
        // by this one's answer: this RSET covers that work too (its +OK
        // undoes it all, its -ERR leaves it all uncertain).
        self.rset_unknown = false;
        mua.log.set(Activity::RsetSent(self.deletes.acked_on()));
        self.deletes.rset_sent();
        self.reads.rset_sent();
        if self.ok(&Command::Rset, "RSET").await?.is_none() {
            // Refused, or the line was lost with the RSET on its way (the
            // proxy then answers -ERR and hangs up): only a later answer
            // in this session tells that the RSET did nothing.
            self.rset_unknown = true;
        } else {
            let undone = self.deletes.reset();
            self.reads.reset();
            self.deleted_now.clear();
            mua.log.with(|m| {
                m.rsets_acked += 1;
                m.deletes_undone += undone as u32;
            });
            mua.log.set(Activity::RsetAcked);
            mua.log
                .event(sim_ms(), format!("RSET +OK ({undone} deletes undone)"));
        }
        Ok(())
    }

    /// What an interactive client asks between reads: TOP, LIST n, UIDL n,
    /// NOOP, STAT, each checked against the server or the listing.
    async fn browse(&mut self, listed: &[Listed]) -> Result<(), Stop> {
        let mua = self.mua;
        let steps = if mua.params.mode == Mode::Browse {
            mua.env.rng().range(5, 40)
        } else {
            1
        };
        for _ in 0..steps {
            let pick = listed
                .get(mua.env.rng().range(0, listed.len().max(1) as u64) as usize)
                .filter(|l| !self.deleted_now.contains(&l.n));
            match (mua.env.rng().range(0, 5), pick) {
                (0, Some(l)) if l.key.is_some() => {
                    let lines = mua.env.rng().range(0, 20) as u32;
                    if let Some(r) = self.ok(&Command::Top { msg: l.n, lines }, "TOP").await? {
                        mua.log.with(|m| m.tops += 1);
                        let key = l.key.clone().expect("checked");
                        mua.check_body(&key, &l.shown, &r.body.unwrap_or_default(), Some(lines));
                    }
                }
                (1, Some(l)) => {
                    if let Some(r) = self.ok(&Command::List(Some(l.n)), "LIST n").await? {
                        let want = format!("{} {}", l.n, l.size);
                        if r.status.text_lossy() != want {
                            mua.log.violation(
                                2,
                                l.key.clone(),
                                format!(
                                    "LIST {} answered {:?}, the listing said {want:?}",
                                    l.n,
                                    r.status.text_lossy()
                                ),
                            );
                        }
                    }
                }
                (2, Some(l)) => {
                    if let Some(r) = self.ok(&Command::Uidl(Some(l.n)), "UIDL n").await? {
                        let want = format!("{} {}", l.n, l.shown);
                        if r.status.text_lossy() != want {
                            mua.log.violation(
                                2,
                                l.key.clone(),
                                format!(
                                    "UIDL {} answered {:?}, the listing said {want:?}",
                                    l.n,
                                    r.status.text_lossy()
                                ),
                            );
                        }
                    }
                }
                (3, _) => {
                    self.ok(&Command::Noop, "NOOP").await?;
                }
                _ => {
                    self.ok(&Command::Stat, "STAT").await?;
                }
            }
        }
        Ok(())
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(", first difference at octet {i}"),
        None => ", one is a prefix of the other".into(),
    }
}
