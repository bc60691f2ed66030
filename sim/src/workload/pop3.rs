//! The mail user's POP3 sessions, in its mode's habits (the module doc of
//! `super` lists them): connect, log in, STAT, UIDL and LIST, then fetch,
//! delete, browse, pipeline, RSET or hang up as the mode and the dice say,
//! each answer checked and recorded as it comes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use causeway_net::{Env, SimEnv};
use causeway_pop3::{Command, Pop3Client, Response, Timeouts};

use super::record::{Activity, Deletes, Ended, MsgKey, Reads};
use super::{COMMAND_SILENCE, Mua, sim_ms};
use crate::swarm::Mode;

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
    /// One session: how it ended, the commands refused, the commands sent,
    /// and when it logged in and sent QUIT.
    pub(super) async fn pop3_session(
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
