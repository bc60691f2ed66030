//! One task per mail server in a session: it owns the server connection and
//! the [`Ledger`] of work owed to that server, and is fed by the session
//! through a channel.
//!
//! The worker outlives the client's line on purpose. When the session ends
//! (Quit, a cut line, shutdown) the session closes the job channel and the
//! worker finishes (`finish`): it makes sure a server session has seen every
//! owed command and QUITs it, opening new server sessions as needed, by
//! UIDL each time, until a QUIT commits the work. Acknowledged work is never
//! dropped because a lock was busy or time passed: it goes to a worker that
//! holds the maildrop (`crate::maildrop`), or is retried, or waits in the
//! journal.
//!
//! Owed work goes to the server once no job waits: a fetch the mail client
//! waits on is not queued behind read marks (each a RETR of a whole
//! message) or deletes, which only the QUIT commits anyway.
//!
//! While the session runs the worker keeps an idle server session alive
//! with NOOP, adopts work other workers hand over for the same maildrop, and
//! retries a lost server session at the same pace when work is owed.

mod finish;
mod flags;
mod search;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use causeway_net::{Env, Instant};
use causeway_pop3::client::{parse_scan_listing, parse_uidl_listing};
use causeway_pop3::command::stored_uidl;
use causeway_pop3::search::TextKey;
use causeway_pop3::{Command, Response};
use causeway_proto::session::{ListEntry, MessageId, ServerFlags, leave_out};
use causeway_proto::user::{Protocol, ServerSpec};
use causeway_proto::{ErrCode, OpError};
use causeway_upstream::pop3::refusal;
use causeway_upstream::{Numbering, RelayPool, Resolved, Upstream};
use causeway_wire::PublicKey;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::account::MaildropKey;
use crate::broken::Broken;
use crate::config::EdgeConfig;
use crate::journal::{Entry, Group, Recorded};
use crate::ledger::{Action, Handover, Ledger, Owed, Target, what};
use crate::logins::Logins;
use crate::maildrop::{Adopter, Maildrops, Published};
use crate::replica::Opened;
use crate::state::EdgeState;

/// `TOP n` with this many lines returns the whole message without marking
/// it read (100,000,000 lines exceeds any message under the size cap).
pub(crate) const WHOLE_MESSAGE: u32 = 100_000_000;

/// What the session asks of a worker.
pub(crate) enum Job {
    /// `TOP n lines` (the whole message with a huge `lines`): never marks read.
    Fetch {
        target: Target,
        lines: u32,
        reply: oneshot::Sender<Result<Vec<u8>, OpError>>,
    },
    /// Work acknowledged to the client; owed until a QUIT commits it.
    /// `entry`: its crash-journal entry, already durable (with a journal).
    Owe {
        target: Target,
        owed: Owed,
        entry: Option<Entry>,
    },
    /// The client undid its work on this server (its journal entries are
    /// already erased).
    Rset,
    /// Store a message in the entry's folder (IMAP `APPEND`).
    Append {
        flags: Vec<String>,
        message: Vec<u8>,
        /// The UIDL the stored message will be listed by, if known.
        reply: oneshot::Sender<Result<Option<String>, OpError>>,
    },
    /// Add or take away flags the mail client stored (IMAP servers only).
    Store {
        target: Target,
        add: bool,
        flags: Vec<String>,
        reply: oneshot::Sender<Result<(), OpError>>,
    },
    /// The messages one text criterion matches (`Op::Search`).
    Search {
        key: TextKey,
        reply: oneshot::Sender<Result<Vec<MessageId>, OpError>>,
    },
}

/// A delete the client proxy carried from an earlier session: its target,
/// its journal entry here if the journal took it, and the witness the
/// proxy's journal kept with it.
pub(crate) struct Carried {
    pub target: Target,
    pub entry: Option<Entry>,
    pub witness: Option<Target>,
}

/// How a worker ended: whether its work was committed (or handed to
/// another worker), and what could never be done ("delete of <uidl>").
pub(crate) struct WorkerEnd {
    /// `Ok`: everything owed was committed (or nothing was owed).
    pub result: Result<(), OpError>,
    /// The work went to another worker of the maildrop, which commits it.
    pub handed_over: bool,
    pub abandoned: Vec<String>,
}

pub(crate) struct WorkerHandle {
    pub jobs: mpsc::UnboundedSender<Job>,
    pub task: JoinHandle<WorkerEnd>,
    /// The worker's deletes as other sessions see them: the session adds
    /// one as it queues it, so that a worker busy with a long fetch does
    /// not leave it out of the other sessions' view meanwhile.
    pub published: Arc<Published>,
    /// Where the session records what it acknowledges (with a journal).
    pub group: Option<Group>,
}

/// What every worker of one edge shares.
#[derive(Clone)]
pub(crate) struct Shared<E: Env> {
    pub env: E,
    pub config: Arc<EdgeConfig>,
    pub state: EdgeState,
    pub maildrops: Maildrops,
    pub shutdown: watch::Receiver<bool>,
    pub logins: Arc<Logins>,
    /// Links to relays kept between server sessions.
    pub relay_links: RelayPool<E>,
}

pub(crate) struct Worker<E: Env> {
    shared: Shared<E>,
    session: String,
    spec: ServerSpec,
    key: MaildropKey,
    upstream: Option<Upstream<E>>,
    ledger: Ledger,
    last_used: Instant,
    /// The crash journal's group for this session's work, if any.
    group: Option<Group>,
    /// Held while this worker takes work for its maildrop.
    adopter: Option<Adopter>,
    /// What it owes, as the maildrop's other sessions see it.
    published: Arc<Published>,
    /// What could never be done ("delete of <uidl>"), for the session record.
    abandoned: Vec<String>,
    /// The first server session's numbering (a broken variant's only).
    first_listing: Option<Numbering>,
    /// The client proxy whose session this is (none for replayed work):
    /// its failed logins are limited (`logins.rs`).
    client: Option<PublicKey>,
}

impl<E: Env> Worker<E> {
    pub(crate) fn new(
        shared: Shared<E>,
        session: String,
        spec: ServerSpec,
        group: Option<Group>,
    ) -> Self {
        let last_used = shared.env.now();
        let key = MaildropKey::of(&spec);
        // An IMAP server's UIDL is its folder's UIDVALIDITY and the UID.
        let uidls_unique = spec.protocol == Protocol::Imap;
        let (commits, reads) = (&shared.maildrops.commits, &shared.maildrops.reads);
        let ledger = Ledger::watching(commits.of(&key), reads.of(&key), uidls_unique);
        let published = Arc::new(shared.maildrops.publisher(&key));
        Self {
            shared,
            session,
            spec,
            key,
            upstream: None,
            ledger,
            last_used,
            group,
            adopter: None,
            published,
            abandoned: Vec::new(),
            first_listing: None,
            client: None,
        }
    }

    /// The session is `client`'s: its logins count against it.
    pub(crate) fn for_client(mut self, client: PublicKey) -> Self {
        self.client = Some(client);
        self
    }

    /// A worker for work found in the crash journal at start: no client,
    /// a ledger filled from the journal; run it with [`Worker::finish`].
    pub(crate) fn restored(
        shared: Shared<E>,
        session: String,
        spec: ServerSpec,
        group: Group,
        ops: &[(u64, Recorded)],
    ) -> Self {
        let mut w = Self::new(shared, session, spec, Some(group.clone()));
        for (seq, r) in ops {
            let (state, now) = (&w.shared.state, w.shared.env.now());
            let entry = Some(Entry::new(&group, *seq));
            w.ledger
                .owe(r.target.clone(), r.owed, entry, || state.work_ticket(now));
            if let Some(witness) = &r.witness {
                w.ledger.witnessed(&r.target, r.owed, witness.clone());
            }
        }
        let in_doubt: Vec<_> = (ops.iter())
            .filter(|(_, r)| r.quit_sent)
            .map(|(_, r)| (r.target.clone(), r.owed))
            .collect();
        w.ledger.quit_sent_before_crash(&in_doubt);
        w.publish();
        w
    }

    /// Deletes acknowledged to the mail client in an earlier session, which
    /// the client proxy carried into this one: owed from the start (and
    /// left out of the listing), never undone by this session's RSET.
    pub(crate) fn carry(&mut self, deletes: Vec<Carried>) {
        let own = self.config().broken(Broken::CarriedUndoneByRset);
        for Carried {
            target,
            entry,
            witness,
        } in deletes
        {
            let (state, now) = (&self.shared.state, self.shared.env.now());
            let ticket = || state.work_ticket(now);
            if own {
                self.ledger.owe(target.clone(), Owed::Delete, entry, ticket);
            } else {
                self.ledger
                    .owe_earlier(target.clone(), Owed::Delete, entry, ticket);
            }
            if let Some(w) = witness {
                self.ledger.witnessed(&target, Owed::Delete, w);
            }
        }
        self.publish();
    }

    fn config(&self) -> &EdgeConfig {
        &self.shared.config
    }

    /// Starts the worker: it opens the server and answers on the returned
    /// receiver with the list (or why the server is unavailable), then serves
    /// jobs until the job channel closes, then finishes.
    pub(crate) fn spawn(self) -> (oneshot::Receiver<Opened>, WorkerHandle) {
        let (opened_tx, opened_rx) = oneshot::channel();
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let group = self.group.clone();
        let published = self.published.clone();
        let task = tokio::spawn(self.run(opened_tx, jobs_rx));
        let handle = WorkerHandle {
            jobs,
            task,
            group,
            published,
        };
        (opened_rx, handle)
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
                if self.ledger.is_empty() {
                    self.close_upstream().await;
                    // Nothing was owed there: the mail client was told at
                    // login that this server was left out, and its QUIT has
                    // nothing to report for it (an -ERR would say deletes
                    // were not done, and there were none).
                    return WorkerEnd {
                        result: Ok(()),
                        handed_over: false,
                        abandoned: Vec::new(),
                    };
                }
                // Carried deletes are owed all the same: done as soon as
                // the server lets us (or handed to whoever holds it).
                let end = self.finish().await;
                return WorkerEnd {
                    result: Err(e),
                    ..end
                };
            }
        }
        // Work adopted at open goes out at once.
        let _ = self.catch_up().await;
        self.serve(jobs).await;
        self.finish().await
    }

    /// Opens the first server session, takes the maildrop's backlog, and
    /// lists it (UIDL + LIST), leaving out what the backlog deletes
    /// ([`leave_out`]).
    async fn open_listing(&mut self) -> Result<Vec<ListEntry>, OpError> {
        self.published.begin_listing();
        let (mut uidls, mut sizes) = self.connect().await?;
        let (adopter, backlog) = self.shared.maildrops.adopter(&self.key);
        self.adopter = Some(adopter);
        self.adopt(backlog);
        self.publish();
        let mut flags = self.server_flags().await;
        // The server session was lost while its flags were listed (not
        // refused): a new one lists both again, once, or the mail client
        // is shown its own flags for messages read or starred elsewhere
        // (seed 240681918: a relay link cut during `XFLAGS` showed unread
        // a message the phone had read). If no new one opens, the first
        // listing stands, without flags, as before.
        if flags.is_none() && self.upstream.is_none() && self.spec.protocol == Protocol::Imap {
            if let Ok(again) = self.connect().await {
                (uidls, sizes) = again;
                flags = self.server_flags().await;
            }
        }
        // Left out: what this session owes. What other sessions of the
        // maildrop owe, or owed since this listing began, the session
        // leaves out as it builds its `Welcome` (`Published::left_out`).
        let owed: BTreeSet<&Target> = self.ledger.deletes().collect();
        let mut entries = uidls
            .iter()
            .map(|(n, uidl)| ListEntry {
                size: sizes.get(n).copied().unwrap_or(0),
                uidl: uidl.clone(),
                flags: flags
                    .as_ref()
                    .map(|f| f.get(n).copied().unwrap_or_default()),
            })
            .collect();
        if !owed.is_empty() {
            leave_out(&mut entries, |e| {
                owed.contains(&Target::new(&e.uidl, e.size))
            });
        }
        Ok(entries)
    }

    /// `XFLAGS`, from an IMAP server: the system flags each message has
    /// there, by number. `None` from a POP3 server, or when they could
    /// not be had (a relay of an older version refuses `XFLAGS`): the
    /// listing then says nothing of flags, rather than that none are set.
    async fn server_flags(&mut self) -> Option<BTreeMap<u32, ServerFlags>> {
        if self.spec.protocol != Protocol::Imap {
            return None;
        }
        let flags = match self.exec(&Command::Xflags).await {
            Ok(Response {
                status,
                body: Some(body),
            }) if status.is_ok() => parse_scan_listing(&body).ok(),
            _ => None,
        };
        if flags.is_none() {
            info!(session = %self.session, server = %self.spec.name,
                "the server's flags could not be listed; the client proxy shows its own");
        }
        let masks = flags?.into_iter().map(|(n, m)| (n, ServerFlags(m as u8)));
        Some(masks.collect())
    }

    /// `LIST`: every message's size, by number.
    async fn sizes(&mut self) -> Result<BTreeMap<u32, u64>, OpError> {
        match self.exec(&Command::List(None)).await? {
            Response {
                status,
                body: Some(body),
            } if status.is_ok() => Ok(parse_scan_listing(&body)
                .map_err(|e| self.protocol(e))?
                .into_iter()
                .collect()),
            r => Err(refusal(&r.status)),
        }
    }

    /// Opens a server session and learns how to name its messages: UIDL and
    /// LIST, since work is matched by UIDL *and* size (a UIDL may be listed
    /// twice, or reused for another message after the first was deleted).
    async fn connect(&mut self) -> Result<(Vec<(u32, String)>, BTreeMap<u32, u64>), OpError> {
        let routes = self.config().routes();
        let logins = &self.shared.logins;
        let now = || self.shared.env.now();
        if let Some(client) = &self.client {
            logins.check(
                &self.session,
                &self.spec.name,
                client,
                &self.key.account,
                now(),
            )?;
        }
        let pool = &self.shared.relay_links;
        let opened = Upstream::open(&self.shared.env, &routes, &self.spec, pool).await;
        if let (Err(e), Some(client)) = (&opened, self.client) {
            logins.answered(client, &self.key.account, e, now());
        }
        self.upstream = Some(opened?);
        self.ledger.listing();
        let listing = match self.exec(&Command::Uidl(None)).await? {
            Response {
                status,
                body: Some(body),
            } if status.is_ok() => parse_uidl_listing(&body).map_err(|e| self.protocol(e)),
            r => Err(refusal(&r.status)),
        };
        let listing = match listing {
            Ok(l) => l,
            Err(e) => {
                self.close_upstream().await;
                return Err(e);
            }
        };
        let sizes = self.sizes().await?;
        let mut numbering = Numbering::new(listing.clone(), &sizes);
        if self.config().broken(Broken::StaleMessageNumbers) {
            numbering = self.first_listing.get_or_insert(numbering).clone();
        }
        self.ledger.new_session(numbering);
        self.doubts_settled().await;
        Ok((listing, sizes))
    }

    async fn serve(&mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        loop {
            let due = self.last_used + self.shared.config.timeouts.noop_interval;
            let idle = due.saturating_duration_since(self.shared.env.now());
            let sleep = self.shared.env.sleep(idle);
            let adopter = &mut self.adopter;
            let handed = async move {
                match adopter {
                    Some(a) => a.handed.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            enum Next {
                Job(Job),
                Ended,
                Idle,
                Handed,
            }
            let next = tokio::select! {
                job = jobs.recv() => job.map_or(Next::Ended, Next::Job),
                _ = sleep => Next::Idle,
                true = handed => Next::Handed,
            };
            match next {
                Next::Job(job) => {
                    self.handle(job).await;
                    // Owed work once no job waits (see the module doc).
                    if jobs.is_empty() && self.upstream.is_some() {
                        let _ = self.catch_up().await;
                    }
                }
                Next::Ended => return,
                Next::Idle => self.keep_alive().await,
                Next::Handed => {
                    let items = self.adopter.as_ref().map(Adopter::take).unwrap_or_default();
                    self.adopt(items);
                    self.publish();
                    if self.upstream.is_some() {
                        let _ = self.catch_up().await;
                    }
                }
            }
        }
    }

    /// Takes over work another worker of this maildrop could not do.
    fn adopt(&mut self, items: Vec<Handover>) {
        if items.is_empty() {
            return;
        }
        info!(session = %self.session, server = %self.spec.name, items = items.len(),
            "took over owed work for this maildrop from another session");
        self.shared.state.adopted(items.len());
        self.ledger.adopt(items);
    }

    async fn handle(&mut self, job: Job) {
        match job {
            Job::Fetch {
                target,
                lines,
                reply,
            } => {
                let r = self.fetch(&target, lines).await;
                let _ = reply.send(r);
            }
            Job::Owe {
                target,
                owed,
                entry,
            } => {
                if self.upstream.is_none()
                    && self.config().broken(Broken::DropOwedWhileDisconnected)
                {
                    return;
                }
                // Published already by the session as it queued the job;
                // again, in case a full publish since left it out.
                if owed == Owed::Delete {
                    self.published.one(target.clone());
                }
                let (state, now) = (&self.shared.state, self.shared.env.now());
                self.ledger
                    .owe(target, owed, entry, || state.work_ticket(now));
            }
            Job::Rset => {
                self.ledger.rset();
                self.publish();
                if self.upstream.is_some() {
                    let _ = self.exec(&Command::Rset).await;
                }
            }
            Job::Append {
                flags,
                message,
                reply,
            } => {
                let r = self.append(&flags, &message).await;
                let _ = reply.send(r);
            }
            Job::Store {
                target,
                add,
                flags,
                reply,
            } => {
                let r = self.store_flags(&target, add, flags).await;
                let _ = reply.send(r);
            }
            Job::Search { key, reply } => {
                let _ = reply.send(self.search(key).await);
            }
        }
    }

    /// One APPEND, in the server session the worker holds (opened if
    /// none). Never sent twice: a session lost once the command went out
    /// may have stored the message, and a second APPEND would store it
    /// again; the client proxy's mail client is told the outcome is
    /// unknown, as it would be on a lost connection of its own.
    async fn append(
        &mut self,
        flags: &[String],
        message: &[u8],
    ) -> Result<Option<String>, OpError> {
        if self.upstream.is_none() {
            self.connect().await?;
        }
        let Some(up) = self.upstream.as_mut() else {
            return Err(OpError::new(
                Some(ErrCode::SysTemp),
                format!("no session with server {}", self.spec.name),
            ));
        };
        self.last_used = self.shared.env.now();
        match up.append(flags, message).await {
            Ok(r) if r.status.is_ok() => {
                let uidl = stored_uidl(&r.status);
                info!(session = %self.session, server = %self.spec.name, octets = message.len(),
                    uidl = uidl.as_deref().unwrap_or("-"),
                    "stored a message for the mail client (APPEND)");
                Ok(uidl)
            }
            Ok(r) => Err(refusal(&r.status)),
            Err(e) => {
                self.lost_upstream(&e);
                warn!(session = %self.session, server = %self.spec.name, error = %e,
                    "the server session was lost during an APPEND: the message may or may not \
                     be stored (it is not sent again; the mail client is told so)");
                Err(OpError::new(
                    Some(ErrCode::SysTemp),
                    format!(
                        "the connection to server {} was lost while it stored the message; it \
                         may or may not be there (look before you send it again)",
                        self.spec.name
                    ),
                ))
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
        self.last_used = self.shared.env.now();
    }

    async fn fetch(&mut self, target: &Target, lines: u32) -> Result<Vec<u8>, OpError> {
        if self.upstream.is_none() {
            self.connect().await?;
        }
        let n = self.number(target)?;
        match self.exec(&Command::Top { msg: n, lines }).await? {
            Response {
                status,
                body: Some(body),
            } if status.is_ok() => Ok(body),
            r => Err(refusal(&r.status)),
        }
    }

    /// Tells the maildrop's other sessions every delete this one owes.
    fn publish(&self) {
        self.published.all(self.ledger.deletes().cloned().collect());
    }

    /// `target`'s number in the server session held.
    fn number(&self, target: &Target) -> Result<u32, OpError> {
        match self.ledger.resolve(target) {
            Resolved::Number(n) => Ok(n),
            Resolved::Gone => Err(OpError::new(
                None,
                format!(
                    "Message {} is no longer on server {}.",
                    target.uidl, self.spec.name
                ),
            )),
            Resolved::Ambiguous => Err(self.ambiguous(target)),
        }
    }

    /// The refusal for a message whose UIDL (and size) another message shares.
    fn ambiguous(&self, target: &Target) -> OpError {
        warn!(session = %self.session, server = %self.spec.name, uidl = %target.uidl,
            "the server lists several messages with this UIDL and size; Causeway will not \
             touch them (ask the server's operator to fix its UIDLs)");
        OpError::new(
            Some(ErrCode::SysPerm),
            format!(
                "Server {} lists more than one message as {}; Causeway will not fetch, delete \
                 or mark it until the server's UIDLs are fixed.",
                self.spec.name, target.uidl
            ),
        )
    }

    /// Sends every owed command the current server session has not seen.
    async fn catch_up(&mut self) -> Result<(), OpError> {
        while let Some(step) = self.ledger.next_step() {
            match &step.action {
                Action::Send(cmd) => {
                    let r = self.exec(cmd).await?;
                    if !r.status.is_ok() {
                        info!(session = %self.session, server = %self.spec.name, uidl = %step.target.uidl,
                            reply = %r.status, command = cmd.keyword(),
                            "server refused owed work; counting it done (the message is gone or already marked)");
                    }
                }
                Action::Gone => {}
                Action::Ambiguous => {
                    let _ = self.ambiguous(&step.target);
                    error!(session = %self.session, server = %self.spec.name, uidl = %step.target.uidl,
                        work = what(step.owed),
                        "acknowledged work CANNOT BE DONE: the message can no longer be told apart \
                         from another with the same UIDL and size; dropped");
                    self.abandoned
                        .push(format!("{} of {}", what(step.owed), step.target.uidl));
                    let entries = self.ledger.impossible(&step.target, step.owed);
                    self.publish();
                    self.erase(entries).await;
                    continue;
                }
            }
            self.ledger.done(&step.target, step.owed);
        }
        Ok(())
    }

    /// Runs `cmd`; a failed connection ends the server session (its numbers
    /// and uncommitted commands with it).
    /// Runs the command `make` builds (numbered for the session held) and
    /// returns its `+OK` answer, in a session opened again once if the one
    /// held was lost: for commands that change nothing when run twice
    /// (flags stored, searches). A `-ERR` is the server's refusal.
    async fn asked_twice(
        &mut self,
        make: impl Fn(&Self) -> Result<Command, OpError>,
    ) -> Result<Response, OpError> {
        let mut tries = 2;
        loop {
            tries -= 1;
            if self.upstream.is_none() {
                self.connect().await?;
            }
            let cmd = make(self)?;
            match self.exec(&cmd).await {
                Ok(r) if r.status.is_ok() => return Ok(r),
                Ok(r) => return Err(refusal(&r.status)),
                Err(e) if tries == 0 => return Err(e),
                Err(_) => {}
            }
        }
    }

    async fn exec(&mut self, cmd: &Command) -> Result<Response, OpError> {
        let Some(up) = self.upstream.as_mut() else {
            return Err(OpError::new(
                Some(ErrCode::SysTemp),
                format!("no session with server {}", self.spec.name),
            ));
        };
        self.last_used = self.shared.env.now();
        let r = up.execute(cmd).await;
        if let Err(e) = &r {
            self.lost_upstream(e);
        }
        r
    }

    /// The server session failed: it is gone, and the work it had seen is
    /// owed again in the next.
    fn lost_upstream(&mut self, e: &OpError) {
        self.upstream = None;
        if !self.config().broken(Broken::ForgetOwedOnSessionLoss) {
            self.ledger.session_lost();
        } else {
            self.ledger = Ledger::default();
        }
        warn!(session = %self.session, server = %self.spec.name, error = %e,
            "lost the server session; owed work will be redone in a new one");
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
