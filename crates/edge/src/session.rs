//! One client session, from handshake to the last server's QUIT.
//!
//! ```text
//!  handshake ──refused──▶ (end: key not allowed / edge full)
//!     │
//!  Resume ──▶ handed to the session it names (registry), which checks it
//!     │        and goes on over this channel; none: Refused
//!  Hello ──bad version / invalid / server not allowed──▶ Refused{reason}
//!     │
//!  end the sessions Hello says this client lost; wait for them (bounded)
//!     │
//!  record the deletes Hello carries (owed from the start)
//!     │
//!  open every server at once (workers) ──▶ Welcome{lists; failed ones Unavailable}
//!                                          Held{carried deletes now durable}
//!     │
//!  serve: Request / Delivered / Ping  (replica first; workers behind)
//!     │
//!     ├─ Quit ─────────────▶ finish workers ─▶ Bye{outcome per server} ─▶ close
//!     ├─ cut / silent ─▶ detached, waiting for Resume (`serving::resume`)
//!     └─ no resume in time / shutdown / superseded ─▶ finish workers (no Bye)
//!                                    (replica dropped before finishing)
//! ```
//!
//! The serving phase, with its rules for requests, prefetch and durable
//! deletes, is [`crate::serving`].

use std::net::SocketAddr;
use std::sync::Arc;

use causeway_cache::ByteLru;
use causeway_net::Env;
use causeway_proto::session::{
    ClientToEdge, DeleteOp, EdgeToClient, MAX_DELETES, MAX_NONCE, ServerOutcome, leave_out,
};
use causeway_proto::user::{Route, ServerSpec, UserInfo};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_upstream::RelayPool;
use causeway_wire::link::{LinkEnd, close, recv, send};
use causeway_wire::{PublicKey, accept_xk};
use tokio::sync::watch;
use tracing::{Instrument, info, warn};

use crate::admission::Admission;
use crate::broken::Broken;
use crate::config::EdgeConfig;
use crate::farewell::{self, Farewells};
use crate::journal::Journal;
use crate::ledger::{Owed, Target};
use crate::logins::Logins;
use crate::maildrop::Maildrops;
use crate::registry::Registry;
use crate::reload::{self, Configs};
use crate::replica::{Opened, Replica};
use crate::serving::{Attach, Channel, Ending, Serving, Workers, internal, new_secret};
use crate::state::{EdgeState, SessionEnd};
use crate::worker::{Carried, Job, Shared, Worker, WorkerEnd};

/// How long a session that shuts down tries to tell its client proxy.
const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a session tells its client proxy, while it waits on its
/// servers, that the answer is coming: logging in before `Welcome`
/// (`EdgeToClient::Opening`), committing before `Bye`
/// (`EdgeToClient::Finishing`).
const TELL_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Sessions one `Hello` may name as lost; a client proxy names its latest
/// few, so more is a broken or hostile peer.
pub(crate) const MAX_SUPERSEDES: usize = 16;

pub(crate) struct Session<E: Env> {
    pub env: E,
    pub config: Arc<EdgeConfig>,
    pub state: EdgeState,
    pub shutdown: watch::Receiver<bool>,
    pub configs: Configs,
    pub farewells: Farewells,
    pub journal: Option<Journal>,
    pub registry: Registry<Attach<E::Stream>>,
    pub maildrops: Maildrops,
    pub admission: Arc<Admission>,
    pub logins: Arc<Logins>,
    pub relay_links: RelayPool<E>,
}

impl<E: Env> Session<E> {
    pub(crate) async fn serve(mut self, stream: E::Stream, peer: SocketAddr) {
        let cfg = self.config.clone();
        let limits = cfg.admission;
        let Some(handshake) = self.state.handshake_ticket(limits.max_handshakes) else {
            self.state.refused_connection();
            if let Some(closed) = self.admission.closed_busy(self.env.now()) {
                warn!(%peer, max = limits.max_handshakes, closed,
                    "closed connections before their handshake: max_handshakes handshakes are \
                     in progress (a flood of connections that do not finish, or more clients at \
                     once than the limit allows: raise max_handshakes if they are yours); \
                     `closed` counts them since the last such line (at most one every 10 s)");
            }
            return;
        };
        if let Err(r) = self.admission.check(peer.ip(), self.env.now()) {
            self.state.refused_connection();
            if r.first {
                warn!(source = %r.source, wait_ms = r.wait.as_millis() as u64,
                    burst = limits.failures_burst, per_minute = limits.failures_per_minute,
                    "closing connections from this address before their handshake: it failed \
                     to authenticate too often (a key not on the allow list, a wrong psk, or \
                     someone guessing); logged once until it may try again");
            }
            return;
        }
        let allowed = |k: &causeway_wire::PublicKey| cfg.allowed_clients.contains(k);
        let accepted = accept_xk(
            &self.env,
            stream,
            &cfg.keypair,
            allowed,
            cfg.psk.as_ref(),
            &cfg.client_channel(),
        )
        .await;
        drop(handshake);
        let channel = match accepted {
            Ok(c) => c,
            Err(e) => {
                // A cut line proves nothing against the address.
                if !e.is_line_failure() {
                    self.admission.failed(peer.ip(), self.env.now());
                }
                self.state
                    .handshake_failed(causeway_wire::link::handshake_failure_cause(&e));
                causeway_wire::link::log_refused_handshake("client proxy", peer, &e);
                return;
            }
        };
        let id = format!("{:016x}", self.env.rng().next_u64());
        self.state.session_started(&id);
        let Some(_live) = self.state.session_ticket(cfg.max_sessions) else {
            let reason = "The edge is serving as many sessions as it may; try again in a minute.";
            warn!(session = %id, max = cfg.max_sessions, "refused a session: max_sessions reached");
            self.refuse(channel, OpError::new(Some(ErrCode::SysTemp), reason))
                .await;
            self.state
                .session_ended(&id, SessionEnd::Refused(reason.into()), Vec::new());
            return;
        };
        info!(session = %id, %peer, client = %channel.peer(), "client session started");
        let (mut stop, _watching) =
            reload::stop_for(&self.configs, &self.shutdown, *channel.peer(), &id);
        let (end, abandoned) = self.run(channel, &id, &mut stop).await;
        info!(session = %id, end = ?end, "client session ended");
        self.state.session_ended(&id, end, abandoned);
    }

    /// `stop` turns true when the session must end as at shutdown (the
    /// edge's shutdown, or a reload that took the client's key away).
    async fn run(
        &mut self,
        mut channel: Channel<E>,
        id: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> (SessionEnd, Vec<String>) {
        let t = self.config.timeouts;
        let client = *channel.peer();
        let hello = recv(&self.env, &mut channel, t.hello, "the client's Hello").await;
        if let Ok(ClientToEdge::Resume {
            version,
            session,
            proof,
            received,
            wants,
            history,
        }) = hello
        {
            let attach = Attach {
                channel,
                version,
                proof,
                received,
                wants,
                history,
            };
            return self.hand_over(id, &session, attach).await;
        }
        let channel = &mut channel;
        let (nonce, user, mut lost, carried, oldest, restarted, resumes) = match hello {
            Ok(ClientToEdge::Hello {
                version,
                nonce,
                user,
                supersedes,
                carried,
                oldest,
                restarted,
                resumes,
            }) => match self.check_hello(version, &nonce, &user, &supersedes, &carried) {
                Ok(()) => (nonce, user, supersedes, carried, oldest, restarted, resumes),
                Err(reason) => {
                    info!(session = %id, %reason, "refused the session");
                    let error = OpError::new(Some(ErrCode::SysPerm), reason.clone());
                    let _ = self.refuse_in_place(channel, error).await;
                    return (SessionEnd::Refused(reason), Vec::new());
                }
            },
            Ok(_) => {
                let reason = "A session starts with Hello.".to_owned();
                let error = OpError::new(Some(ErrCode::SysPerm), reason.clone());
                let _ = self.refuse_in_place(channel, error).await;
                return (SessionEnd::Refused(reason), Vec::new());
            }
            Err(e) => return (SessionEnd::LineCut(e.to_string()), Vec::new()),
        };
        if restarted {
            // The client proxy restarted: its earlier sessions wait for
            // nothing (a resume would need the secret it forgot).
            lost.extend(self.registry.sessions_of(&client));
        }
        let mut registration = self.registry.register(id, &nonce, client);
        if !lost.is_empty() {
            let ended = self
                .registry
                .supersede(&self.env, id, &client, &lost, t.hello)
                .await;
            self.state.superseded(ended);
        }

        let mut workers: Workers = Vec::new();
        let mut opening = Vec::new();
        let mut held = Vec::new();
        for spec in user.servers {
            let name = spec.name.clone();
            let group = self
                .journal
                .as_ref()
                .map(|j| j.group_of(id, &spec, &client));
            let shared = Shared {
                env: self.env.clone(),
                config: self.config.clone(),
                state: self.state.clone(),
                maildrops: self.maildrops.clone(),
                shutdown: self.shutdown.clone(),
                logins: self.logins.clone(),
                relay_links: self.relay_links.clone(),
            };
            let mine: Vec<&DeleteOp> = carried.iter().filter(|d| d.server == name).collect();
            let deletes = self.carry(id, &spec, &client, &mine, &mut held).await;
            let mut w = Worker::new(shared, id.to_owned(), spec, group).for_client(client);
            w.carry(deletes);
            let (opened, handle) = w.spawn();
            opening.push((name.clone(), opened));
            workers.push((name, handle));
        }
        if let Some(j) = &self.journal {
            j.forget_taken_below(&client, oldest).await;
        }
        let opened_all = async {
            let mut lists = Vec::new();
            for (name, opened) in opening {
                let opened = opened
                    .await
                    .unwrap_or_else(|_| Opened::Unavailable(internal()));
                lists.push((name, opened));
            }
            lists
        };
        let mut lists = self
            .telling(channel, opened_all, EdgeToClient::Opening)
            .await;
        leave_out_late(&mut lists, &workers);
        let bodies = ByteLru::in_pool(self.config.replica_cache_bytes, self.state.body_pool());
        let replica = Replica::new(lists, bodies, self.state.replica_ticket());
        let welcome = EdgeToClient::Welcome {
            session: id.to_owned(),
            servers: replica.listing(),
        };
        let secret =
            (resumes && !self.config.resume.window.is_zero()).then(|| new_secret(&self.env));
        let mut greeted = match secret {
            Some(s) => {
                let ticket = EdgeToClient::Ticket { secret: s.to_vec() };
                send(&self.env, channel, &ticket, t.hello).await
            }
            None => Ok(()),
        };
        if greeted.is_ok() {
            greeted = send(&self.env, channel, &welcome, t.hello).await;
        }
        let held_now = held.iter().copied().collect();
        if greeted.is_ok() && !held.is_empty() {
            let msg = EdgeToClient::Held { seqs: held };
            greeted = send(&self.env, channel, &msg, t.hello).await;
        }
        let mut ending = match greeted {
            Ok(()) => {
                let serving = Serving::new(
                    self.env.clone(),
                    &self.config,
                    &self.state,
                    replica,
                    &workers,
                    secret,
                    held_now,
                );
                // The serving phase's lines (resume, refused proofs) name
                // the session through this span.
                let span = tracing::info_span!("client session", session = %id);
                serving
                    .run(channel, stop, &mut registration)
                    .instrument(span)
                    .await
            }
            Err(e) => Ending::Cut(e.to_string()),
        };

        if matches!(ending, Ending::Shutdown) {
            // Said at once, so the client proxy does not try to resume a
            // session that is ending (best effort: it may be cut already).
            let close = channel.close_in_place("the edge is shutting down");
            let _ = self
                .env
                .timeout(CLOSE_WITHIN, "closing the channel", close)
                .await;
        }
        let workers = self.break_on_cut(&ending, workers).await;
        let (outcomes, abandoned) = match ending {
            Ending::Quit(_) => {
                self.telling(channel, finish(workers), EdgeToClient::Finishing)
                    .await
            }
            _ => finish(workers).await,
        };
        if let Ending::Quit(farewell) = &mut ending
            && let Some(mut f) = farewell.take()
        {
            f.servers = outcomes.clone();
            let now = self.env.now();
            let until = now + self.config.resume.window;
            self.farewells.keep(id, *channel.peer(), *f, now, until);
        }
        // Only now, with every server finished, may a newer session open
        // them; and a resume that finds this session gone finds its
        // farewell (`hand_over`).
        drop(registration);
        let end = match ending {
            Ending::Quit(_) => {
                let bye = EdgeToClient::Bye { servers: outcomes };
                if send(&self.env, channel, &bye, t.hello).await.is_ok() {
                    SessionEnd::Quit
                } else {
                    SessionEnd::LineCut("the line was cut before Bye".into())
                }
            }
            Ending::Cut(reason) => SessionEnd::LineCut(reason),
            Ending::Shutdown => SessionEnd::Shutdown,
            Ending::Superseded => SessionEnd::Superseded,
        };
        (end, abandoned)
    }

    /// Waits for `working` (the servers logging in before `Welcome`, or
    /// committing after `Quit`), telling the client proxy every
    /// [`TELL_EVERY`] with `word` (`Opening`, `Finishing`) that its answer
    /// is still coming: it waits on silence, as for any answer, so a
    /// `Hello` or `Quit` the line lost is found in its request timeout,
    /// however long the servers take. A line that takes no more stops the
    /// telling; the servers still finish.
    async fn telling<T>(
        &self,
        channel: &mut Channel<E>,
        working: impl Future<Output = T>,
        word: EdgeToClient,
    ) -> T {
        tokio::pin!(working);
        loop {
            tokio::select! {
                biased;
                done = &mut working => return done,
                () = self.env.sleep(TELL_EVERY) => {}
            }
            let told = send(&self.env, channel, &word, self.config.timeouts.hello);
            if told.await.is_err() {
                return working.await;
            }
        }
    }

    /// Hands a resuming channel to the session it names, which checks its
    /// proof and goes on over it; this connection's own part ends here.
    /// No such session of this client (it ended, or the edge restarted):
    /// `Refused`, and the client proxy opens a new session instead.
    async fn hand_over(
        &self,
        id: &str,
        session: &str,
        attach: Attach<E::Stream>,
    ) -> (SessionEnd, Vec<String>) {
        let client = *attach.channel.peer();
        match self.registry.attach(session, &client, attach) {
            Ok(()) => {
                info!(session = %id, resumes = %session, "handed a resuming channel to its session");
                (SessionEnd::Resumed(session.to_owned()), Vec::new())
            }
            Err(a) => {
                // A session that took its `Quit` takes no resume, but while
                // it commits on its servers its `Bye` is still to come: the
                // farewell answers once it has finished (seed 2568 `--focus
                // line`: a line held past the proxy's patience for `Bye`,
                // released while the servers committed; the proxy's resume
                // was refused and the mail client told its QUIT failed).
                if let Some(mut finished) = self.registry.running_of(session, &client) {
                    let wait = finished.changed();
                    let within = self.config.timeouts.hello;
                    let _ = self
                        .env
                        .timeout(within, "a resumed session to finish", wait)
                        .await;
                }
                if let Some(f) = self.farewells.take(session, &client, self.env.now()) {
                    let end =
                        farewell::answer_again(&self.env, &self.config, id, session, a, f).await;
                    return (end, Vec::new());
                }
                let reason = format!(
                    "There is no session {session} of this client proxy to resume (it ended, \
                     or the edge restarted); open a new one."
                );
                info!(session = %id, resumes = %session, "refused a resume: no such session waits");
                let error = OpError::new(Some(ErrCode::SysPerm), reason.clone());
                self.refuse(a.channel, error).await;
                (SessionEnd::Refused(reason), Vec::new())
            }
        }
    }

    /// Records the deletes the client proxy carried for `spec`'s server in
    /// a journal group of their own (this session's RSET erases only its
    /// own group), adding to `held` the ones now durable here. One this
    /// edge took before (its `Held` was lost after the work was done, or
    /// while it is owed) is held again, not taken twice.
    async fn carry(
        &self,
        id: &str,
        spec: &ServerSpec,
        client: &PublicKey,
        carried: &[&DeleteOp],
        held: &mut Vec<u64>,
    ) -> Vec<Carried> {
        let (again, carried): (Vec<&DeleteOp>, Vec<&DeleteOp>) = carried.iter().partition(|d| {
            let target = Target::new(&d.msg.uidl, d.msg.size);
            self.journal.as_ref().is_some_and(|j| {
                !self.config.broken(Broken::CarriedTakenTwice)
                    && j.took(client, d.seq, &spec.name, &target)
            })
        });
        self.state.carried_again(again.len());
        if !again.is_empty() {
            info!(session = %id, server = %spec.name, deletes = again.len(),
                "carried deletes this edge took before (their Held was lost); held again, not taken twice");
            held.extend(again.iter().map(|d| d.seq));
        }
        if carried.is_empty() {
            return Vec::new();
        }
        info!(session = %id, server = %spec.name, deletes = carried.len(),
            "the client proxy carried deletes acknowledged in an earlier session; they are owed from now on");
        let group = self
            .journal
            .as_ref()
            .filter(|_| !self.config.broken(Broken::NoJournalEntry))
            .map(|j| j.group_of(id, spec, client));
        let mut deletes = Vec::new();
        for d in carried {
            let target = Target::new(&d.msg.uidl, d.msg.size);
            let witness = d.witness.as_ref().map(|w| Target::new(&w.uidl, w.size));
            let entry = match &group {
                Some(g) => match g
                    .record_numbered(&target, Owed::Delete, witness.as_ref(), Some(d.seq))
                    .await
                {
                    Ok(entry) => Some(entry),
                    Err(e) => {
                        warn!(session = %id, server = %spec.name, error = %e,
                            "journal: could not record a carried delete; the client proxy keeps it (check the journal's disk)");
                        None
                    }
                },
                None => None,
            };
            if entry.is_some() || self.config.broken(Broken::NoJournalEntry) {
                held.push(d.seq);
            }
            deletes.push(Carried {
                target,
                entry,
                witness,
            });
        }
        deletes
    }

    /// The broken variants that act when the line is cut (none in a
    /// shipped build).
    async fn break_on_cut(&self, ending: &Ending, workers: Workers) -> Workers {
        if !matches!(ending, Ending::Cut(_)) {
            return workers;
        }
        if self.config.broken(Broken::NoQuitAfterCut) {
            for (_, w) in &workers {
                w.task.abort();
            }
        }
        if self.config.broken(Broken::DropAckedDeleteOnCut) {
            // Forgotten everywhere, journal included, as a real forgetful
            // edge would (else a restart's replay would hide the bug).
            for (_, w) in &workers {
                if let Some(g) = &w.group {
                    let _ = g.erase_all().await;
                }
                let _ = w.jobs.send(Job::Rset);
            }
        }
        workers
    }

    fn check_hello(
        &self,
        version: u16,
        nonce: &str,
        user: &UserInfo,
        supersedes: &[String],
        carried: &[DeleteOp],
    ) -> Result<(), String> {
        if version != PROTOCOL_VERSION {
            return Err(format!(
                "The client proxy speaks protocol version {version}, this edge {PROTOCOL_VERSION}; \
                 upgrade the older one."
            ));
        }
        if nonce.len() > MAX_NONCE {
            return Err(format!(
                "Hello's nonce is {} bytes long; at most {MAX_NONCE} are accepted.",
                nonce.len()
            ));
        }
        if supersedes.len() > MAX_SUPERSEDES {
            return Err(format!(
                "Hello names {} lost sessions; at most {MAX_SUPERSEDES} are accepted.",
                supersedes.len()
            ));
        }
        if carried.len() > MAX_DELETES {
            return Err(format!(
                "Hello carries {} deletes; at most {MAX_DELETES} are accepted.",
                carried.len()
            ));
        }
        user.validate()?;
        for d in carried {
            if !user.servers.iter().any(|s| s.name == d.server) {
                return Err(format!(
                    "Hello carries a delete for server {:?}, which it does not name.",
                    d.server
                ));
            }
        }
        for s in &user.servers {
            match &s.route {
                Route::Direct if !self.config.allowed_servers.contains(&s.address()) => {
                    return Err(format!(
                        "Server {}: {} is not a server this edge may reach; ask the edge's \
                         operator to allow it, or route it through a relay.",
                        s.name,
                        s.address()
                    ));
                }
                Route::Relay(r) if self.config.relay(r).is_none() => {
                    return Err(format!(
                        "Server {}: this edge knows no relay named {r:?}.",
                        s.name
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn refuse(&self, mut channel: Channel<E>, error: OpError) {
        if self.refuse_in_place(&mut channel, error).await.is_ok() {
            close(&self.env, channel, "refused", self.config.timeouts.hello).await;
        }
    }

    async fn refuse_in_place(
        &self,
        channel: &mut Channel<E>,
        error: OpError,
    ) -> Result<(), LinkEnd> {
        let msg = EdgeToClient::Refused { error };
        send(&self.env, channel, &msg, self.config.timeouts.hello).await
    }
}

/// Ends every worker (they finish concurrently) and collects the outcomes.
async fn finish(workers: Workers) -> (Vec<ServerOutcome>, Vec<String>) {
    let mut tasks = Vec::new();
    for (name, handle) in workers {
        drop(handle.jobs);
        tasks.push((name, handle.task));
    }
    let mut outcomes = Vec::new();
    let mut abandoned = Vec::new();
    for (name, task) in tasks {
        let end = task.await.unwrap_or_else(|_| WorkerEnd {
            result: Err(internal()),
            handed_over: false,
            abandoned: vec![format!("{name}: unknown (the worker failed)")],
        });
        abandoned.extend(end.abandoned);
        outcomes.push(ServerOutcome {
            name,
            result: end.result,
        });
    }
    (outcomes, abandoned)
}

/// As the `Welcome` is built: leaves out of each server's listing what
/// another session of its maildrop owed when the listing began or
/// published since (one may have reached the edge after the worker
/// listed, and left the client proxy's journal since), and ends the
/// listings (`maildrop::Published`).
fn leave_out_late(lists: &mut [(String, Opened)], workers: &Workers) {
    for ((name, opened), (worker, handle)) in lists.iter_mut().zip(workers) {
        debug_assert_eq!(name, worker);
        let hidden = handle.published.left_out();
        if let (Opened::Ready(entries), false) = (opened, hidden.is_empty()) {
            leave_out(entries, |e| hidden.contains(&Target::new(&e.uidl, e.size)));
        }
        handle.published.end_listing();
    }
}
