//! One task per mail server in a session: it owns the server connection and
//! the [`Ledger`] of work owed to that server, and is fed by the session
//! through a channel.
//!
//! The worker outlives the client's line on purpose. When the session ends
//! (Quit, a cut line, shutdown) the session closes the job channel and the
//! worker finishes: it makes sure a server session has seen every owed
//! command and QUITs it. If the server (or the relay link) fails on the way,
//! it opens a new server session, re-resolves every UIDL there and redoes the
//! work, with growing pauses, until QUIT answers `+OK` or the completion
//! deadline passes, which it reports loudly. Nothing owed: it just QUITs.
//!
//! While the session runs it keeps an idle server session alive with NOOP,
//! and retries a lost one at the same pace when work is owed.

use std::collections::BTreeMap;
use std::sync::Arc;

use causeway_net::{Env, Instant};
use causeway_pop3::client::{parse_scan_listing, parse_uidl_listing};
use causeway_pop3::{Command, Response};
use causeway_proto::session::ListEntry;
use causeway_proto::user::ServerSpec;
use causeway_proto::{ErrCode, OpError};
use causeway_upstream::pop3::refusal;
use causeway_upstream::retry::{Backoff, is_permanent};
use causeway_upstream::{Numbering, Upstream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::EdgeConfig;
use crate::journal::Group;
use crate::ledger::{Ledger, Owed};
use crate::replica::Opened;
use crate::state::EdgeState;

/// What the session asks of a worker.
pub(crate) enum Job {
    /// `TOP n lines` (the whole message with a huge `lines`): never marks read.
    Fetch {
        uidl: String,
        lines: u32,
        reply: oneshot::Sender<Result<Vec<u8>, OpError>>,
    },
    /// Work acknowledged to the client; owed until a QUIT commits it.
    /// `entry`: its crash-journal entry, already durable (with a journal).
    Owe {
        uidl: String,
        owed: Owed,
        entry: Option<u64>,
    },
    /// The client undid its deletes on this server.
    Rset,
}

/// How a worker ended: whether its work was committed, and what it gave up
/// on ("delete of <uidl>").
pub(crate) struct WorkerEnd {
    pub result: Result<(), OpError>,
    pub abandoned: Vec<String>,
}

pub(crate) struct WorkerHandle {
    pub jobs: mpsc::UnboundedSender<Job>,
    pub task: JoinHandle<WorkerEnd>,
    /// Where the session records what it acknowledges (with a journal).
    pub group: Option<Group>,
}

pub(crate) struct Worker<E: Env> {
    env: E,
    config: Arc<EdgeConfig>,
    state: EdgeState,
    session: String,
    spec: ServerSpec,
    upstream: Option<Upstream<E>>,
    ledger: Ledger,
    last_used: Instant,
    /// The crash journal's entries for this worker's work, if any.
    group: Option<Group>,
    /// The first server session's numbering (broken variant only).
    #[cfg(feature = "broken-variants")]
    first_listing: Option<Vec<(u32, String)>>,
}

impl<E: Env> Worker<E> {
    pub(crate) fn new(
        env: E,
        config: Arc<EdgeConfig>,
        state: EdgeState,
        session: String,
        spec: ServerSpec,
        group: Option<Group>,
    ) -> Self {
        let last_used = env.now();
        Self {
            env,
            config,
            state,
            session,
            spec,
            upstream: None,
            ledger: Ledger::default(),
            last_used,
            group,
            #[cfg(feature = "broken-variants")]
            first_listing: None,
        }
    }

    /// A worker for work found in the crash journal at start: no client,
    /// a ledger filled from the journal; run it with [`Worker::finish`].
    pub(crate) fn restored(
        env: E,
        config: Arc<EdgeConfig>,
        state: EdgeState,
        session: String,
        spec: ServerSpec,
        group: Group,
        ops: &[(u64, String, Owed)],
    ) -> Self {
        let mut w = Self::new(env, config, state, session, spec, Some(group));
        for (entry, uidl, owed) in ops {
            let state = &w.state;
            w.ledger
                .owe(uidl, *owed, Some(*entry), || state.work_ticket());
        }
        w
    }

    /// Starts the worker: it opens the server and answers on the returned
    /// receiver with the list (or why the server is unavailable), then serves
    /// jobs until the job channel closes, then finishes.
    pub(crate) fn spawn(self) -> (oneshot::Receiver<Opened>, WorkerHandle) {
        let (opened_tx, opened_rx) = oneshot::channel();
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let group = self.group.clone();
        let task = tokio::spawn(self.run(opened_tx, jobs_rx));
        (opened_rx, WorkerHandle { jobs, task, group })
    }

    async fn run(
        mut self,
        opened: oneshot::Sender<Opened>,
        jobs: mpsc::UnboundedReceiver<Job>,
    ) -> WorkerEnd {
        match self.open_listing().await {
            Ok(list) => {
                let _ = opened.send(Opened::Ready(list));
            }
            Err(e) => {
                info!(session = %self.session, server = %self.spec.name, error = %e,
                    "mail server unavailable for this session");
                let _ = opened.send(Opened::Unavailable(e.clone()));
                self.close_upstream().await;
                return WorkerEnd {
                    result: Err(e),
                    abandoned: Vec::new(),
                };
            }
        }
        self.serve(jobs).await;
        self.finish().await
    }

    /// Opens the first server session and lists it (UIDL + LIST).
    async fn open_listing(&mut self) -> Result<Vec<ListEntry>, OpError> {
        let uidls = self.connect().await?;
        let sizes: BTreeMap<u32, u64> = match self.exec(&Command::List(None)).await? {
            Response {
                status,
                body: Some(body),
            } if status.is_ok() => parse_scan_listing(&body)
                .map_err(|e| self.protocol(e))?
                .into_iter()
                .collect(),
            r => return Err(refusal(&r.status)),
        };
        Ok(uidls
            .into_iter()
            .map(|(n, uidl)| ListEntry {
                size: sizes.get(&n).copied().unwrap_or(0),
                uidl,
            })
            .collect())
    }

    /// Opens a server session and learns its UIDL -> number map.
    async fn connect(&mut self) -> Result<Vec<(u32, String)>, OpError> {
        let routes = self.config.routes();
        self.upstream = Some(Upstream::open(&self.env, &routes, &self.spec).await?);
        let listing = match self.exec(&Command::Uidl(None)).await? {
            Response {
                status,
                body: Some(body),
            } if status.is_ok() => parse_uidl_listing(&body).map_err(|e| self.protocol(e)),
            r => Err(refusal(&r.status)),
        };
        match listing {
            Ok(l) => {
                #[cfg(feature = "broken-variants")]
                let l = self.stale_numbers(l);
                self.ledger.new_session(Numbering::new(l.iter().cloned()));
                Ok(l)
            }
            Err(e) => {
                self.close_upstream().await;
                Err(e)
            }
        }
    }

    /// Broken variant: every server session is numbered like the first.
    #[cfg(feature = "broken-variants")]
    fn stale_numbers(&mut self, listing: Vec<(u32, String)>) -> Vec<(u32, String)> {
        if !self
            .config
            .is_broken(crate::broken::Broken::StaleMessageNumbers)
        {
            return listing;
        }
        self.first_listing.get_or_insert(listing).clone()
    }

    async fn serve(&mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        loop {
            let due = self.last_used + self.config.timeouts.noop_interval;
            let idle = due.saturating_duration_since(self.env.now());
            let sleep = self.env.sleep(idle);
            let job = tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => Some(job),
                    None => return,
                },
                _ = sleep => None,
            };
            match job {
                Some(job) => self.handle(job).await,
                None => self.keep_alive().await,
            }
        }
    }

    async fn handle(&mut self, job: Job) {
        match job {
            Job::Fetch { uidl, lines, reply } => {
                let r = self.fetch(&uidl, lines).await;
                let _ = reply.send(r);
            }
            Job::Owe { uidl, owed, entry } => {
                let state = &self.state;
                self.ledger.owe(&uidl, owed, entry, || state.work_ticket());
                if self.upstream.is_some() {
                    let _ = self.catch_up().await;
                }
            }
            Job::Rset => {
                self.ledger.rset();
                if self.upstream.is_some() && self.exec(&Command::Rset).await.is_ok() {
                    let _ = self.catch_up().await;
                }
            }
        }
    }

    async fn keep_alive(&mut self) {
        if self.upstream.is_some() {
            let _ = self.exec(&Command::Noop).await;
        } else if !self.ledger.is_empty() {
            match self.connect().await {
                Ok(_) => {
                    let _ = self.catch_up().await;
                }
                Err(e) => {
                    info!(session = %self.session, server = %self.spec.name, error = %e,
                        "reconnecting for owed work failed; trying again later");
                }
            }
        }
        self.last_used = self.env.now();
    }

    async fn fetch(&mut self, uidl: &str, lines: u32) -> Result<Vec<u8>, OpError> {
        if self.upstream.is_none() {
            self.connect().await?;
        }
        self.catch_up().await?;
        let n = self.ledger.number(uidl).ok_or_else(|| {
            OpError::new(
                None,
                format!("Message {uidl} is no longer on server {}.", self.spec.name),
            )
        })?;
        match self.exec(&Command::Top { msg: n, lines }).await? {
            Response {
                status,
                body: Some(body),
            } if status.is_ok() => Ok(body),
            r => Err(refusal(&r.status)),
        }
    }

    /// Sends every owed command the current server session has not seen.
    async fn catch_up(&mut self) -> Result<(), OpError> {
        while let Some(step) = self.ledger.next_step() {
            if let Some(cmd) = &step.command {
                let r = self.exec(cmd).await?;
                if !r.status.is_ok() {
                    info!(session = %self.session, server = %self.spec.name, uidl = %step.uidl,
                        reply = %r.status, command = cmd.keyword(),
                        "server refused owed work; counting it done (the message is gone or already marked)");
                }
            }
            self.ledger.done(&step.uidl, step.owed);
        }
        Ok(())
    }

    /// Runs `cmd`; a failed connection ends the server session (its numbers
    /// and uncommitted commands with it).
    async fn exec(&mut self, cmd: &Command) -> Result<Response, OpError> {
        let Some(up) = self.upstream.as_mut() else {
            return Err(OpError::new(
                Some(ErrCode::SysTemp),
                format!("no session with server {}", self.spec.name),
            ));
        };
        self.last_used = self.env.now();
        let r = up.execute(cmd).await;
        if let Err(e) = &r {
            self.upstream = None;
            self.ledger.session_lost();
            warn!(session = %self.session, server = %self.spec.name, error = %e,
                "lost the server session; owed work will be redone in a new one");
        }
        r
    }

    /// The session is over (or this is journaled work from before a
    /// restart): commit what is owed, or QUIT.
    pub(crate) async fn finish(mut self) -> WorkerEnd {
        if self.ledger.is_empty() {
            self.close_upstream().await;
            return WorkerEnd {
                result: Ok(()),
                abandoned: Vec::new(),
            };
        }
        let t = self.config.timeouts;
        let deadline = self.env.now() + t.completion_deadline;
        let mut backoff = Backoff::new(t.retry_min, t.retry_max);
        loop {
            let e = match self.commit().await {
                Ok(()) => {
                    info!(session = %self.session, server = %self.spec.name, "owed work committed");
                    return WorkerEnd {
                        result: Ok(()),
                        abandoned: Vec::new(),
                    };
                }
                Err(e) => e,
            };
            if is_permanent(&e) || self.env.now() + backoff.peek() > deadline {
                return self.give_up(e).await;
            }
            let pause = backoff.pause(self.env.rng());
            info!(session = %self.session, server = %self.spec.name, error = %e,
                retry_in_ms = pause.as_millis() as u64, "owed work not committed yet; retrying");
            self.env.sleep(pause).await;
        }
    }

    /// One attempt: a server session that has seen all owed work, then QUIT.
    async fn commit(&mut self) -> Result<(), OpError> {
        if self.upstream.is_none() {
            self.connect().await?;
        }
        self.catch_up().await?;
        let Some(up) = self.upstream.take() else {
            return Err(OpError::new(Some(ErrCode::SysTemp), "server session lost"));
        };
        let quit = up.quit().await;
        match quit {
            Ok(s) if s.is_ok() => {
                let done = self.ledger.committed();
                self.erase(done).await;
                Ok(())
            }
            Ok(s) => {
                self.ledger.session_lost();
                Err(refusal(&s))
            }
            Err(e) => {
                self.ledger.session_lost();
                Err(e)
            }
        }
    }

    /// Erases committed (or abandoned) work from the crash journal. If that
    /// fails the entries stay, and the next start redoes them: harmless, as
    /// the redo is idempotent.
    fn erase(&self, entries: Vec<u64>) -> impl std::future::Future<Output = ()> + Send + 'static {
        // Owns what it needs: `&self` (a live connection inside) is not Sync.
        let group = self.group.clone();
        let (session, server) = (self.session.clone(), self.spec.name.clone());
        async move {
            let Some(g) = group else { return };
            if entries.is_empty() {
                return;
            }
            if let Err(e) = g.erase(&entries).await {
                error!(%session, %server, error = %e,
                entries = entries.len(),
                "could not erase committed work from the journal; the next start of the edge \
                 will redo it (harmlessly) and erase it then");
            }
        }
    }

    pub(crate) async fn give_up(self, e: OpError) -> WorkerEnd {
        // Given up loudly: the journal does not keep it (nor the credentials)
        // for ever; the operator has the log line below.
        self.erase(self.ledger.entries()).await;
        let outstanding = self.ledger.outstanding();
        error!(session = %self.session, server = %self.spec.name, error = %e,
            uncommitted = ?outstanding,
            "GAVE UP on acknowledged work: the mail client was told it succeeded, but the \
             server never committed it. Deleted messages are still on the server and will \
             be fetched again; read marks are missing. Check the server's reachability, the \
             user's credentials and stale locks, then tell the user");
        let abandoned = outstanding
            .into_iter()
            .map(|w| format!("{}: {w}", self.spec.name))
            .collect();
        WorkerEnd {
            result: Err(OpError::new(
                e.code,
                format!("not committed on server {}: {}", self.spec.name, e.text),
            )),
            abandoned,
        }
    }

    /// Ends the server session with QUIT, or notes that it is already gone.
    async fn close_upstream(&mut self) {
        let (session, server) = (&self.session, &self.spec.name);
        match self.upstream.take() {
            Some(up) => match up.quit().await {
                Ok(s) if s.is_ok() => debug!(%session, %server, "server session ended with QUIT"),
                Ok(s) => warn!(%session, %server, reply = %s, "the server refused QUIT"),
                Err(e) => {
                    warn!(%session, %server, error = %e, "QUIT failed; the server session ended abruptly")
                }
            },
            None => {
                debug!(%session, %server, "server session already gone (ended abruptly); nothing owed")
            }
        }
    }

    fn protocol(&self, e: causeway_pop3::ClientError) -> OpError {
        OpError::new(
            Some(ErrCode::SysTemp),
            format!(
                "server {} sent a listing we cannot read: {e}",
                self.spec.name
            ),
        )
    }
}
