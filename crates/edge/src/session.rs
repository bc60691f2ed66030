//! One client session, from handshake to the last server's QUIT.
//!
//! ```text
//!  handshake ──refused──▶ (end: key not allowed / edge full)
//!     │
//!  Hello ──bad version / invalid / server not allowed──▶ Refused{reason}
//!     │
//!  end the sessions Hello says this client lost; wait for them (bounded)
//!     │
//!  open every server at once (workers) ──▶ Welcome{lists; failed ones Unavailable}
//!     │
//!  serve: Request / Delivered / Ping  (replica first; workers behind)
//!     │
//!     ├─ Quit ─────────────▶ finish workers ─▶ Bye{outcome per server} ─▶ close
//!     └─ cut / silent / shutdown / superseded ─▶ finish workers (no Bye)
//!                                    (replica dropped before finishing)
//! ```
//!
//! Requests are served one at a time, in order, as a POP3 client sends them.
//! A `Dele` is recorded durably in the crash journal (when there is one) and
//! queued to its worker *before* `Done` goes out, so from the moment the
//! client can know of it the delete is owed, even across a crash of the edge.
//! A delete the journal could not record is refused, not acknowledged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use causeway_net::{Env, Stream, shutdown_requested};
use causeway_proto::session::{ClientToEdge, EdgeToClient, MessageId, Op, Reply, ServerOutcome};
use causeway_proto::user::{Route, UserInfo};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_wire::link::{LinkEnd, close, recv, send};
use causeway_wire::{SecureChannel, accept_xk};
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::broken::Broken;
use crate::config::EdgeConfig;
use crate::journal::Journal;
use crate::ledger::{Owed, Target};
use crate::maildrop::Maildrops;
use crate::replica::{Opened, Replica, head};
use crate::state::{EdgeState, SessionEnd};
use crate::supersede::{Registration, Registry};
use crate::worker::{Job, Shared, Worker, WorkerEnd, WorkerHandle};

/// Sessions one `Hello` may name as lost; a client proxy names its latest
/// few, so more is a broken or hostile peer.
pub(crate) const MAX_SUPERSEDES: usize = 16;

/// `TOP n` with this many lines returns the whole message without marking
/// it read (100,000,000 lines exceeds any message under the size cap).
const WHOLE_MESSAGE: u32 = 100_000_000;

pub(crate) struct Session<E: Env> {
    pub env: E,
    pub config: Arc<EdgeConfig>,
    pub state: EdgeState,
    pub shutdown: watch::Receiver<bool>,
    pub journal: Option<Journal>,
    pub registry: Registry,
    pub maildrops: Maildrops,
}

/// How the serving phase ended.
enum Ending {
    Quit,
    Cut(String),
    Shutdown,
    /// A newer session of the same client ended this one (its line was cut).
    Superseded,
}

/// The open servers, in the order the user information names them.
type Workers = Vec<(String, WorkerHandle)>;

impl<E: Env> Session<E> {
    pub(crate) async fn serve(mut self, stream: E::Stream, peer: SocketAddr) {
        let cfg = self.config.clone();
        let allowed = |k: &causeway_wire::PublicKey| cfg.allowed_clients.contains(k);
        let accepted = accept_xk(
            &self.env,
            stream,
            &cfg.keypair,
            allowed,
            cfg.psk.as_ref(),
            &cfg.channel,
        )
        .await;
        let mut channel = match accepted {
            Ok(c) => c,
            Err(e) => {
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
        let (end, abandoned) = self.run(&mut channel, &id).await;
        info!(session = %id, end = ?end, "client session ended");
        self.state.session_ended(&id, end, abandoned);
    }

    async fn run<S: Stream>(
        &mut self,
        channel: &mut SecureChannel<S>,
        id: &str,
    ) -> (SessionEnd, Vec<String>) {
        let t = self.config.timeouts;
        let client = *channel.peer();
        let hello = recv(&self.env, channel, t.hello, "the client's Hello").await;
        let (user, lost) = match hello {
            Ok(ClientToEdge::Hello {
                version,
                user,
                supersedes,
            }) => match self.check_hello(version, &user, &supersedes) {
                Ok(()) => (user, supersedes),
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
        let mut registration = self.registry.register(id, client);
        if !lost.is_empty() {
            let ended = self
                .registry
                .supersede(&self.env, id, &client, &lost, t.hello)
                .await;
            self.state.superseded(ended);
        }

        let mut workers: Workers = Vec::new();
        let mut opening = Vec::new();
        for spec in user.servers {
            let name = spec.name.clone();
            let group = self.journal.as_ref().map(|j| j.group(id, &spec));
            let shared = Shared {
                env: self.env.clone(),
                config: self.config.clone(),
                state: self.state.clone(),
                maildrops: self.maildrops.clone(),
                shutdown: self.shutdown.clone(),
            };
            let w = Worker::new(shared, id.to_owned(), spec, group);
            let (opened, handle) = w.spawn();
            opening.push((name.clone(), opened));
            workers.push((name, handle));
        }
        let mut lists = Vec::new();
        for (name, opened) in opening {
            let opened = opened
                .await
                .unwrap_or_else(|_| Opened::Unavailable(internal()));
            lists.push((name, opened));
        }
        let replica = Replica::new(
            lists,
            self.config.replica_cache_bytes,
            self.state.replica_ticket(),
        );
        let welcome = EdgeToClient::Welcome {
            session: id.to_owned(),
            servers: replica.listing(),
        };
        let ending = match send(&self.env, channel, &welcome, t.hello).await {
            Ok(()) => {
                self.requests(channel, replica, &workers, &mut registration)
                    .await
            }
            Err(e) => Ending::Cut(e.to_string()),
        };

        let workers = self.break_on_cut(&ending, workers).await;
        let (outcomes, abandoned) = finish(workers).await;
        let end = match ending {
            Ending::Quit => {
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
        // Only now, with every server finished, may a newer session open them.
        drop(registration);
        (end, abandoned)
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
        user: &UserInfo,
        supersedes: &[String],
    ) -> Result<(), String> {
        if version != PROTOCOL_VERSION {
            return Err(format!(
                "The client proxy speaks protocol version {version}, this edge {PROTOCOL_VERSION}; \
                 upgrade the older one."
            ));
        }
        if supersedes.len() > MAX_SUPERSEDES {
            return Err(format!(
                "Hello names {} lost sessions; at most {MAX_SUPERSEDES} are accepted.",
                supersedes.len()
            ));
        }
        user.validate()?;
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

    /// Serves requests until Quit, a cut line, or shutdown. Takes the replica
    /// so that it is dropped as soon as serving ends.
    async fn requests<S: Stream>(
        &mut self,
        channel: &mut SecureChannel<S>,
        mut replica: Replica,
        workers: &Workers,
        registration: &mut Registration,
    ) -> Ending {
        let t = self.config.timeouts;
        // Bodies sent and not yet acknowledged: request id -> (server, message).
        let mut sent: BTreeMap<u64, (String, MessageId)> = BTreeMap::new();
        loop {
            let next = tokio::select! {
                r = recv(&self.env, channel, t.client_idle, "the client's next request") => r,
                _ = shutdown_requested(&mut self.shutdown) => return Ending::Shutdown,
                _ = superseded(registration) => return Ending::Superseded,
            };
            let reply = match next {
                Ok(ClientToEdge::Request { id, server, op }) => {
                    let retr = match &op {
                        Op::Retr { msg } => Some(msg.clone()),
                        _ => None,
                    };
                    let result = request(&self.config, &mut replica, workers, &server, op).await;
                    if let (Some(msg), Ok(_)) = (retr, &result) {
                        if self.config.broken(Broken::MarkReadBeforeDelivered) {
                            let _ = owe(&self.config, workers, &server, &msg, Owed::Read).await;
                        }
                        sent.insert(id, (server, msg));
                    }
                    EdgeToClient::Response { id, result }
                }
                Ok(ClientToEdge::Delivered { id }) => {
                    if let Some((server, msg)) = sent.remove(&id) {
                        // A read mark the journal cannot keep is not made:
                        // the message stays unread, which is benign.
                        if let Err(e) = owe(&self.config, workers, &server, &msg, Owed::Read).await
                        {
                            warn!(%server, uidl = %msg.uidl, error = %e, "read mark not made");
                        }
                    }
                    continue;
                }
                Ok(ClientToEdge::Ping { nonce }) => EdgeToClient::Pong { nonce },
                Ok(ClientToEdge::Quit) => return Ending::Quit,
                Ok(ClientToEdge::Hello { .. }) => {
                    return Ending::Cut("the client sent a second Hello".into());
                }
                Err(LinkEnd::Closed(reason)) => {
                    return Ending::Cut(format!(
                        "the client closed the channel without Quit: {reason}"
                    ));
                }
                Err(e) => return Ending::Cut(e.to_string()),
            };
            if let Err(e) = send(&self.env, channel, &reply, t.hello).await {
                return Ending::Cut(e.to_string());
            }
        }
    }

    async fn refuse<S: Stream>(&self, mut channel: SecureChannel<S>, error: OpError) {
        if self.refuse_in_place(&mut channel, error).await.is_ok() {
            close(&self.env, channel, "refused", self.config.timeouts.hello).await;
        }
    }

    async fn refuse_in_place<S: Stream>(
        &self,
        channel: &mut SecureChannel<S>,
        error: OpError,
    ) -> Result<(), LinkEnd> {
        let msg = EdgeToClient::Refused { error };
        send(&self.env, channel, &msg, self.config.timeouts.hello).await
    }
}

/// Resolves once a newer session of the same client asked this one to end.
async fn superseded(registration: &mut Registration) {
    if registration.end.wait_for(|end| *end).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One request: the replica answers what it can, the worker the rest.
async fn request(
    config: &EdgeConfig,
    replica: &mut Replica,
    workers: &Workers,
    server: &str,
    op: Op,
) -> Result<Reply, OpError> {
    match op {
        Op::Retr { msg } => {
            replica.check(server, &msg)?;
            if let Some(body) = replica.body(server, &msg) {
                return Ok(Reply::Body(body.to_vec()));
            }
            let body = fetch(workers, server, &msg, WHOLE_MESSAGE).await?;
            replica.store_body(server, &msg, body.clone());
            Ok(Reply::Body(body))
        }
        Op::Top { msg, lines } => {
            replica.check(server, &msg)?;
            if let Some(body) = replica.body(server, &msg) {
                return Ok(Reply::Body(head(body, lines)));
            }
            fetch(workers, server, &msg, lines).await.map(Reply::Body)
        }
        Op::Dele { msg } => {
            replica.check(server, &msg)?;
            owe(config, workers, server, &msg, Owed::Delete).await?;
            replica.delete(server, &msg)?;
            Ok(Reply::Done)
        }
        Op::Rset => {
            let w = worker(workers, server)?;
            if config.broken(Broken::KeepDeletesAfterRset) {
                replica.rset(server)?;
                return Ok(Reply::Done);
            }
            if let Some(g) = &w.group {
                // Erased durably first: a crash must not bring back work
                // the client was told is undone.
                g.erase_all().await.map_err(|e| {
                    warn!(%server, error = %e, "journal: could not record an RSET");
                    not_durable("the edge could not record the RSET durably; the deletes stand")
                })?;
            }
            replica.rset(server)?;
            job(workers, server, Job::Rset)?;
            Ok(Reply::Done)
        }
    }
}

/// Makes `owed` on `msg` owed to `server`'s worker: durable in the journal
/// first (when there is one), then queued. On `Err` nothing is owed.
async fn owe(
    config: &EdgeConfig,
    workers: &Workers,
    server: &str,
    msg: &MessageId,
    owed: Owed,
) -> Result<(), OpError> {
    let w = worker(workers, server)?;
    let target = Target::new(&msg.uidl, msg.size);
    let journaled = w
        .group
        .as_ref()
        .filter(|_| !config.broken(Broken::NoJournalEntry));
    let entry = match journaled {
        Some(g) => match g.record(&target, owed).await {
            Ok(entry) => Some(entry),
            // A delete is refused rather than acknowledged without a record
            // (the mail client will ask again).
            Err(e) if owed == Owed::Delete => {
                warn!(%server, uidl = %msg.uidl, error = %e,
                    "journal: could not record an acknowledged delete; refusing it (check the journal's disk)");
                return Err(not_durable(
                    "the edge could not record the delete durably; nothing was deleted",
                ));
            }
            // A read mark has no reply to refuse: make it anyway, from
            // memory; only an edge crash before it is done would lose it
            // (the message then stays unread, which is benign).
            Err(e) => {
                warn!(%server, uidl = %msg.uidl, error = %e,
                    "journal: could not record a read mark; making it from memory only (check the journal's disk)");
                None
            }
        },
        None => None,
    };
    let job = Job::Owe {
        target,
        owed,
        entry: entry.clone(),
    };
    if w.jobs.send(job).is_err() {
        // The worker is gone (it failed): take the record back, best effort.
        if let Some(e) = entry {
            let _ = crate::journal::erase(vec![e]).await;
        }
        return Err(internal());
    }
    Ok(())
}

fn not_durable(text: &str) -> OpError {
    OpError::new(Some(ErrCode::SysTemp), text)
}

async fn fetch(
    workers: &Workers,
    server: &str,
    msg: &MessageId,
    lines: u32,
) -> Result<Vec<u8>, OpError> {
    let (reply, answer) = oneshot::channel();
    let target = Target::new(&msg.uidl, msg.size);
    job(
        workers,
        server,
        Job::Fetch {
            target,
            lines,
            reply,
        },
    )?;
    answer.await.unwrap_or_else(|_| Err(internal()))
}

fn worker<'a>(workers: &'a Workers, server: &str) -> Result<&'a WorkerHandle, OpError> {
    workers
        .iter()
        .find(|(n, _)| n == server)
        .map(|(_, w)| w)
        .ok_or_else(internal)
}

fn job(workers: &Workers, server: &str, job: Job) -> Result<(), OpError> {
    worker(workers, server)?
        .jobs
        .send(job)
        .map_err(|_| internal())
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

fn internal() -> OpError {
    OpError::new(
        Some(ErrCode::SysTemp),
        "internal error in the edge (see its log); try again",
    )
}
