//! Running a node as a service: bind, serve, and shut down gracefully on
//! SIGTERM or SIGINT.
//!
//! On the first signal the node's `watch` shutdown channel is flipped: it
//! stops accepting, finishes acknowledged work and QUITs its mail server
//! sessions. The process exits 0 once the node returned, or non-zero after
//! `shutdown_deadline` (or on a second signal), logging what it abandoned.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use causeway_client::{ClientConfig, ClientState, bind_imap, run_client_counted};
use causeway_edge::{EdgeConfig, EdgeState, JournalConfig, run_edge_reloadable};
use causeway_net::{Env, Listener, TokioEnv};
use causeway_relay::{RelayConfig, RelayState, run_relay_reloadable};
use causeway_wire::{Keypair, PublicKey};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{ClientSettings, EdgeSettings, RelaySettings, Role, Settings};
use crate::metrics;

/// Exit codes.
pub const EXIT_OK: i32 = 0;
/// The node stopped on its own with an error (e.g. cannot bind).
pub const EXIT_FAILED: i32 = 1;
/// The shutdown deadline passed (or a second signal came) with work unfinished.
pub const EXIT_ABANDONED: i32 = 3;

/// SIGTERM and SIGINT, as one stream.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Builds the runtime and runs the configured node until it is stopped;
/// the process exit code.
pub fn run(settings: Settings, file: PathBuf) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return EXIT_FAILED;
        }
    };
    let code = rt.block_on(async move {
        let env = TokioEnv::new();
        let r = match settings {
            Settings::Edge(s) => edge(env, s, file).await,
            Settings::Relay(s) => relay(env, s, file).await,
            Settings::Client(s) => client(env, s).await,
        };
        r.unwrap_or_else(|e| {
            error!(error = %e, "cannot start");
            EXIT_FAILED
        })
    });
    // Tasks still running past the deadline are dropped here, not awaited.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn bind(env: &TokioEnv, addr: &str) -> io::Result<<TokioEnv as Env>::Listener> {
    env.bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// The edge's configuration, with its crash journal open.
pub fn edge_config(s: EdgeSettings) -> io::Result<EdgeConfig> {
    let mut config = s.config;
    let key = causeway_edge::journal::edge_key(&config.keypair.private);
    config.journal = open_journal(s.journal.as_deref(), key, "crash journal")?;
    Ok(config)
}

/// The journal file at `path`, if there is one, sealed with `key`.
fn open_journal(
    path: Option<&std::path::Path>,
    key: causeway_store::JournalKey,
    what: &str,
) -> io::Result<Option<JournalConfig>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let journal = JournalConfig::redb(path, key).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open the {what} {}: {e}", path.display()),
        )
    })?;
    info!(journal = %path.display(), "{what} open");
    Ok(Some(journal))
}

async fn edge(env: TokioEnv, s: EdgeSettings, file: PathBuf) -> io::Result<i32> {
    let signals = Signals::new()?;
    let listener = bind(&env, &s.listen).await?;
    info!(role = "edge", address = %listener.local_addr()?, public_key = %s.config.keypair.public,
        allowed_clients = s.config.allowed_clients.len(), relays = s.config.relays.len(),
        "listening");
    let shutdown_deadline = s.shutdown_deadline;
    let metrics_listen = s.metrics_listen.clone();
    let config = edge_config(s)?;
    let state = EdgeState::new();
    let (stop, rx) = watch::channel(false);
    if let Some(address) = metrics_listen {
        let (st, e) = (state.clone(), env.clone());
        let text = Arc::new(move || causeway_edge::metrics_text(&st, e.now()));
        metrics::start(&env, &address, text, rx.clone()).await?;
    }
    let (configs, configs_rx) = watch::channel(Arc::new(config));
    tokio::spawn(reload_on_hangup(
        file.clone(),
        configs,
        signal(SignalKind::hangup())?,
        move |settings, old: &EdgeConfig| reload_edge(&file, settings, old),
    ));
    let task = tokio::spawn(run_edge_reloadable(
        env.clone(),
        listener,
        configs_rx,
        state.clone(),
        rx,
    ));
    let pending = move || {
        let abandoned: Vec<String> = state
            .sessions()
            .into_iter()
            .filter(|r| r.end.is_none())
            .map(|r| r.id)
            .collect();
        format!(
            "{} client session(s) still running ({}), {} acknowledged delete(s)/read mark(s) not committed by a mail server \
             (deletes stay on the server; messages stay unread)",
            state.live_sessions(),
            abandoned.join(", "),
            state.pending_work(),
        )
    };
    Ok(supervise(&env, signals, task, stop, shutdown_deadline, pending).await)
}

/// On each SIGHUP, reads `file` again and hands the node the configuration
/// `take` makes of it and of the running one (keeping what cannot change in
/// a running process, and logging what did change). A file with problems,
/// or one that now configures another role (`take` names it), changes
/// nothing.
async fn reload_on_hangup<C>(
    file: PathBuf,
    configs: watch::Sender<Arc<C>>,
    mut hangups: Signal,
    take: impl Fn(Settings, &C) -> Result<C, Role>,
) {
    while hangups.recv().await.is_some() {
        let old = configs.borrow().clone();
        match crate::config::load(&file) {
            Ok(settings) => match take(settings, &old) {
                Ok(new) => {
                    let _ = configs.send(Arc::new(new));
                }
                Err(other) => error!(file = %file.display(), role = %other,
                    "SIGHUP: the file now configures another role; nothing changed"),
            },
            Err(problems) => error!(file = %file.display(),
                "SIGHUP: the file has problems; nothing changed:\n{problems}"),
        }
    }
}

/// The edge's part of a reload: allow lists, limits and timeouts for new
/// connections; a client whose key left `allowed_clients` has its sessions
/// ended. The listener, the keypair and the journal stay.
fn reload_edge(
    file: &std::path::Path,
    settings: Settings,
    old: &EdgeConfig,
) -> Result<EdgeConfig, Role> {
    let Settings::Edge(s) = settings else {
        return Err(settings.role());
    };
    let mut new = s.config;
    new.keypair = kept_keypair(file, new.keypair, &old.keypair);
    // The journal open at start stays the journal (its file is locked by
    // this process).
    new.journal = old.journal.clone();
    let removed = removed_keys(&old.allowed_clients, &new.allowed_clients);
    info!(file = %file.display(), allowed_clients = new.allowed_clients.len(),
        removed_clients = removed, allowed_servers = new.allowed_servers.len(),
        "SIGHUP: configuration reloaded (new connections use it; sessions of removed \
         clients end; listen, keys and journal need a restart)");
    Ok(new)
}

/// The relay's part of a reload: allow lists, limits and timeouts for new
/// links; an edge whose key left `allowed_edges` has its links ended (each
/// server session RSET, then QUIT). The listener and the keypair stay.
fn reload_relay(
    file: &std::path::Path,
    settings: Settings,
    old: &RelayConfig,
) -> Result<RelayConfig, Role> {
    let Settings::Relay(s) = settings else {
        return Err(settings.role());
    };
    let mut new = s.config;
    new.keypair = kept_keypair(file, new.keypair, &old.keypair);
    let removed = removed_keys(&old.allowed_edges, &new.allowed_edges);
    info!(file = %file.display(), allowed_edges = new.allowed_edges.len(),
        removed_edges = removed, allowed_servers = new.allowed_servers.len(),
        "SIGHUP: configuration reloaded (new links use it; links of removed edges end; \
         listen and keys need a restart)");
    Ok(new)
}

/// A running node keeps its keypair: a new one in the file takes a
/// restart, which the log says.
fn kept_keypair(file: &std::path::Path, new: Keypair, old: &Keypair) -> Keypair {
    if new.public != old.public {
        warn!(file = %file.display(), "SIGHUP: the private key changed; it takes a restart (kept the running one)");
    }
    old.clone()
}

/// Keys of `old` no longer in `new`.
fn removed_keys(old: &[PublicKey], new: &[PublicKey]) -> usize {
    old.iter().filter(|k| !new.contains(k)).count()
}

/// The client proxy reads its file at start only: a SIGHUP (a habit, or
/// `systemctl reload`) is logged, not fatal.
fn ignore_hangups(role: &'static str) -> io::Result<()> {
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            warn!(
                role,
                "SIGHUP ignored: this role reads its configuration at start only; restart it to apply changes"
            );
        }
    });
    Ok(())
}

async fn relay(env: TokioEnv, s: RelaySettings, file: PathBuf) -> io::Result<i32> {
    let signals = Signals::new()?;
    let listener = bind(&env, &s.listen).await?;
    info!(role = "relay", address = %listener.local_addr()?, public_key = %s.config.keypair.public,
        allowed_edges = s.config.allowed_edges.len(), "listening");
    let state = RelayState::new();
    let (stop, rx) = watch::channel(false);
    if let Some(address) = &s.metrics_listen {
        let st = state.clone();
        let text = Arc::new(move || causeway_relay::metrics_text(&st));
        metrics::start(&env, address, text, rx.clone()).await?;
    }
    let (configs, configs_rx) = watch::channel(Arc::new(s.config));
    tokio::spawn(reload_on_hangup(
        file.clone(),
        configs,
        signal(SignalKind::hangup())?,
        move |settings, old: &RelayConfig| reload_relay(&file, settings, old),
    ));
    let task = tokio::spawn(run_relay_reloadable(
        env.clone(),
        listener,
        configs_rx,
        state.clone(),
        rx,
    ));
    let pending = move || {
        format!(
            "{} edge link(s) and {} mail server session(s) still open (ended without QUIT)",
            state.live_links(),
            state.live_server_sessions()
        )
    };
    Ok(supervise(&env, signals, task, stop, s.shutdown_deadline, pending).await)
}

/// The client proxy's configuration, with its delete journal open.
pub fn client_config(s: ClientSettings) -> io::Result<ClientConfig> {
    let mut config = s.config;
    let key = causeway_client::journal_key(&config.keypair.private);
    config.journal = open_journal(s.journal.as_deref(), key, "delete journal")?;
    Ok(config)
}

async fn client(env: TokioEnv, s: ClientSettings) -> io::Result<i32> {
    let signals = Signals::new()?;
    ignore_hangups("client")?;
    let shutdown_deadline = s.shutdown_deadline;
    let config = client_config(s)?;
    let listener = bind(&env, &config.listen).await?;
    let imap = bind_imap(&env, &config).await?;
    info!(role = "client", address = %listener.local_addr()?, public_key = %config.keypair.public,
        edge = %config.edge, imap = config.imap_listen.as_deref().unwrap_or("off"), "listening");
    let (stop, rx) = watch::channel(false);
    let run = run_client_counted(
        env.clone(),
        listener,
        imap,
        Arc::new(config),
        ClientState::new(),
        rx,
    );
    let task = tokio::spawn(run);
    let pending = || {
        "mail client session(s) still running; their edge sessions end as on a cut line".to_owned()
    };
    Ok(supervise(&env, signals, task, stop, shutdown_deadline, pending).await)
}

/// Waits for the node to end or for a signal; on a signal, asks the node to
/// stop and waits at most `deadline`. The exit code.
pub async fn supervise<E: Env>(
    env: &E,
    mut signals: Signals,
    mut task: JoinHandle<io::Result<()>>,
    stop: watch::Sender<bool>,
    deadline: Duration,
    pending: impl Fn() -> String,
) -> i32 {
    tokio::select! {
        r = &mut task => return ended(r, false),
        sig = signals.recv() => {
            info!(signal = sig, deadline_ms = deadline.as_millis() as u64,
                "shutting down: accepting no more connections, finishing sessions in progress \
                 (a second signal exits at once)");
        }
    }
    let _ = stop.send(true);
    let expired = env.sleep(deadline);
    tokio::select! {
        r = &mut task => ended(r, true),
        _ = expired => {
            error!(abandoned = %pending(), deadline_ms = deadline.as_millis() as u64,
                "shutdown deadline passed; exiting with work unfinished");
            task.abort();
            EXIT_ABANDONED
        }
        sig = signals.recv() => {
            error!(signal = sig, abandoned = %pending(), "second signal; exiting at once with work unfinished");
            task.abort();
            EXIT_ABANDONED
        }
    }
}

fn ended(r: Result<io::Result<()>, tokio::task::JoinError>, asked: bool) -> i32 {
    match r {
        Ok(Ok(())) if asked => {
            info!("shut down cleanly");
            EXIT_OK
        }
        Ok(Ok(())) => {
            warn!("the node stopped on its own");
            EXIT_FAILED
        }
        Ok(Err(e)) => {
            error!(error = %e, "the node failed");
            EXIT_FAILED
        }
        Err(e) => {
            error!(error = %e, "the node's task panicked");
            EXIT_FAILED
        }
    }
}
