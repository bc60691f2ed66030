//! Figure 5: how much memory the edge needs per session, and how many
//! sessions it holds at once.
//!
//! The edge runs in a child process (this binary again, `__edge-child`), so
//! its resident memory (`VmRSS`) is its own. The mail clients and their
//! client proxy run in further children (`__load-child`, a few thousand
//! sessions each, so that no process but the edge needs many file
//! descriptors); the mail server stays in this process, where its live
//! sessions are counted. The alternative is a plain TCP forward in a child
//! process (`__forward-child`) carrying direct POP3 sessions to the same
//! server.
//!
//! Steps: one warm-up session; then `sessions` mail clients log in through
//! their proxy and ask STAT (each edge session is then open, with its server
//! session and listing): memory per idle session. Then `active` of them
//! fetch every message (bodies in the edge's cache, both zstd contexts
//! used): memory per active session. Then all QUIT; every failure counts as
//! an error.

use std::io::{BufRead, BufReader, Lines, StdinLock, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::path::Path;

use causeway::chain::{ChainSpec, Keys, Secrets, TempDir, files};
use causeway::config::Settings;
use causeway_client::run_client;
use causeway_edge::{EdgeState, run_edge};
use causeway_net::{Env, Listener, TokioEnv};
use causeway_pop3::Pop3Client;
use causeway_wire::Keypair;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::mail;
use crate::nodes::{
    DIRECT_USER, LOCAL_PASSWORD, LOCAL_USER, Server, USER, client_timeouts, mail_client,
    mail_server,
};
use crate::{Figure, Options, progress, sys};

/// Messages in each mailbox, and their size hint.
const MAILBOX: (usize, usize) = (10, 4096);
/// Logins in flight at once, per load process.
const PARALLEL: usize = 64;
/// Sessions per load process (three sockets each through Causeway).
const PER_LOAD: usize = 4000;

/// A command line that runs the edge's child process, for a profiler:
/// `CAUSEWAY_BENCH_WRAP_EDGE="heaptrack -o /tmp/edge"` itemises the edge's
/// memory per call site (`docs/performance.md`, figure 5).
const WRAP_EDGE: &str = "CAUSEWAY_BENCH_WRAP_EDGE";

/// A node in a child process; it exits when its stdin closes.
pub(crate) struct ChildNode {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The first line it printed: the address it listens on.
    pub addr: String,
}

impl ChildNode {
    pub fn start(
        exe: &std::path::Path,
        mode: &str,
        config: &[String],
    ) -> Result<ChildNode, String> {
        let wrapped = (std::env::var(WRAP_EDGE).ok())
            .filter(|w| mode == "__edge-child" && !w.trim().is_empty());
        let mut command = match &wrapped {
            Some(wrapper) => {
                let mut words = wrapper.split_whitespace();
                let mut c = Command::new(words.next().unwrap_or_default());
                c.args(words).arg(exe);
                c
            }
            _ => Command::new(exe),
        };
        let mut child = command
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {} {mode}: {e}", exe.display()))?;
        let mut stdin = child.stdin.take().unwrap();
        for line in config {
            writeln!(stdin, "{line}").map_err(|e| e.to_string())?;
        }
        stdin.flush().map_err(|e| e.to_string())?;
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut addr = String::new();
        loop {
            addr.clear();
            stdout.read_line(&mut addr).map_err(|e| e.to_string())?;
            // A wrapper's own lines ("heaptrack output will be written to
            // …") come first.
            let is_addr = addr.trim().parse::<std::net::SocketAddr>().is_ok();
            if wrapped.is_none() || is_addr || addr.is_empty() {
                break;
            }
        }
        let addr = addr.trim().to_string();
        if addr.is_empty() {
            return Err(format!("{mode} did not start"));
        }
        Ok(ChildNode {
            child,
            stdin,
            stdout,
            addr,
        })
    }

    pub fn send(&mut self, command: &str) -> Result<(), String> {
        writeln!(self.stdin, "{command}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())
    }

    /// The reply to the last command: `(succeeded, failed)`.
    fn reply(&mut self) -> Result<(usize, usize), String> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let mut f = line.split_whitespace().map(str::parse::<usize>);
        match (f.next(), f.next()) {
            (Some(Ok(ok)), Some(Ok(err))) => Ok((ok, err)),
            _ => Err(format!("a load process answered {line:?}")),
        }
    }

    /// The next line it prints.
    pub fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err("the child process ended".into()),
            Ok(_) => Ok(line.trim().to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits until something accepts connections at its address (a node
    /// that binds after it printed it).
    pub fn wait_listening(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while std::net::TcpStream::connect(&self.addr).is_err() {
            if Instant::now() > deadline {
                return Err(format!("nothing listens on {} after {within:?}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Sends it SIGTERM and waits for it to exit; its exit code.
    pub fn terminate(&mut self) -> Result<i32, String> {
        let pid = self.child.id();
        sys::terminate(pid).map_err(|e| format!("SIGTERM to {pid}: {e}"))?;
        let status = self.child.wait().map_err(|e| e.to_string())?;
        Ok(status.code().unwrap_or(-1))
    }

    pub fn rss(&self) -> u64 {
        sys::rss_bytes(self.child.id()).unwrap_or(0)
    }

    /// Waits (at most `QUIET_WITHIN`) until the node has used at most 1% of
    /// a core for half a second: its sessions' work (the prefetch of every
    /// mailbox into the client proxies' mirrors) is done, so its memory is
    /// what resting sessions hold. On a machine where the load processes
    /// starve the edge, the prefetch was still running 3 s after the last
    /// login, and its bodies doubled the per-session figure (85,189 bytes
    /// against 44,120 with the same sessions from one load process).
    fn quiet(&self) {
        let deadline = Instant::now() + QUIET_WITHIN;
        let mut last = sys::pid_cpu(self.child.id());
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            let now = sys::pid_cpu(self.child.id());
            match (last, now) {
                (Some(a), Some(b)) if b.saturating_sub(a) <= Duration::from_millis(5) => return,
                _ => last = now,
            }
        }
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long sessions sit before their memory is read: longer than the
/// edge's 2 s rest (`REST_AFTER`), after which an idle session holds no
/// compression context. (Until 2026-12-02 it was 0.5 s, inside the rest.)
const IDLE_AFTER: Duration = Duration::from_secs(3);

/// Longest wait for a node to fall quiet before its memory is read.
const QUIET_WITHIN: Duration = Duration::from_secs(60);

/// Load processes for `n` sessions.
fn loads_for(n: usize) -> usize {
    n.div_ceil(PER_LOAD).max(1)
}

/// Entry point of the child processes (`__edge-child`, `__forward-child`,
/// `__load-child`, and figure 8's `__edge-run`, the shipped edge that ends
/// on SIGTERM): reads its configuration from stdin, prints the address it
/// listens on (or `ready`), then serves (and, for a load process, obeys
/// commands on stdin) until stdin closes.
pub fn child_main(mode: &str) -> Result<(), String> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let env = TokioEnv::new();
    let addr = match mode {
        "__edge-child" => {
            // The edge's own log, on stderr, only when asked for.
            if std::env::var_os("RUST_LOG").is_some() {
                causeway::logging::init(causeway::logging::LogFormat::Human, "off");
            }
            let file = next(&mut lines)?;
            let Settings::Edge(settings) =
                causeway::config::load(Path::new(&file)).map_err(|e| e.to_string())?
            else {
                return Err(format!("{file} does not configure an edge"));
            };
            let listen = settings.listen.clone();
            let config = causeway::run::edge_config(settings).map_err(|e| e.to_string())?;
            rt.block_on(async {
                let l = env.bind(&listen).await.map_err(|e| e.to_string())?;
                let addr = l.local_addr().unwrap().to_string();
                let (stop, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    let _keep = stop;
                    let _ = run_edge(env, l, Arc::new(config), EdgeState::new(), rx).await;
                });
                Ok::<_, String>(addr)
            })?
        }
        "__forward-child" => {
            let target = next(&mut lines)?;
            rt.block_on(async {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| e.to_string())?;
                let addr = l.local_addr().unwrap().to_string();
                tokio::spawn(async move {
                    while let Ok((mut down, _)) = l.accept().await {
                        let target = target.clone();
                        tokio::spawn(async move {
                            if let Ok(mut up) = TcpStream::connect(&target).await {
                                let _ = (down.set_nodelay(true), up.set_nodelay(true));
                                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                            }
                        });
                    }
                });
                Ok::<_, String>(addr)
            })?
        }
        "__load-child" => return load_main(&rt, env, &mut lines),
        "__edge-run" => {
            // The shipped edge, signals and all: its address first, as the
            // other children print theirs (it binds it a moment later).
            let file = next(&mut lines)?;
            let settings = causeway::config::load(Path::new(&file)).map_err(|e| e.to_string())?;
            let Settings::Edge(edge) = &settings else {
                return Err(format!("{file} does not configure an edge"));
            };
            println!("{}", edge.listen);
            std::io::stdout().flush().map_err(|e| e.to_string())?;
            drop(rt);
            // Its errors on stderr (RUST_LOG for more).
            causeway::logging::init(causeway::logging::LogFormat::Human, "error");
            std::process::exit(causeway::run::run(settings, file.into()));
        }
        other => return Err(format!("unknown child mode {other}")),
    };
    println!("{addr}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // Serve until the parent goes away (stdin reaches its end).
    while next(&mut lines).is_ok() {}
    drop(rt);
    Ok(())
}

pub(crate) fn next(lines: &mut Lines<StdinLock<'_>>) -> Result<String, String> {
    lines
        .next()
        .ok_or("stdin ended")?
        .map_err(|e| e.to_string())
}

/// Starts the client proxy of configuration file `file` on `rt`; where it
/// listens.
pub(crate) fn start_proxy(
    rt: &tokio::runtime::Runtime,
    env: &TokioEnv,
    file: &str,
) -> Result<String, String> {
    let Settings::Client(settings) =
        causeway::config::load(Path::new(file)).map_err(|e| e.to_string())?
    else {
        return Err(format!("{file} does not configure a client proxy"));
    };
    let e = env.clone();
    rt.block_on(async move {
        let l = e
            .bind(&settings.config.listen)
            .await
            .map_err(|e| e.to_string())?;
        let listen = l.local_addr().unwrap().to_string();
        let (stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _keep = stop;
            let _ = run_client(e, l, Arc::new(settings.config), rx).await;
        });
        Ok::<_, String>(listen)
    })
}

/// A load process: mail clients, and through Causeway their client proxy.
/// Configuration: `causeway CLIENT_FILE` (the chain's client proxy file) or
/// `direct ADDR`, one per line. Commands: `open N`, `fetch N` (the first N
/// sessions RETR every message), `quit`; each answered `OK FAILED`.
fn load_main(
    rt: &tokio::runtime::Runtime,
    env: TokioEnv,
    lines: &mut Lines<StdinLock<'_>>,
) -> Result<(), String> {
    let causeway = next(lines)? == "causeway";
    let addr = if causeway {
        start_proxy(rt, &env, &next(lines)?)?
    } else {
        next(lines)?
    };
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut clients: Vec<Client> = Vec::new();
    while let Ok(cmd) = next(lines) {
        let mut words = cmd.split_whitespace();
        let verb = words.next().unwrap_or("");
        let n: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let (ok, failed) = rt.block_on(async {
            match verb {
                "open" => {
                    let (opened, failed) = open(&env, &addr, causeway, n).await;
                    let ok = opened.len();
                    clients.extend(opened);
                    (ok, failed)
                }
                "fetch" => {
                    let rest = clients.split_off(n.min(clients.len()));
                    let (busy, failed) = each(std::mem::take(&mut clients), fetch_all).await;
                    let ok = busy.len();
                    clients = busy;
                    clients.extend(rest);
                    (ok, failed)
                }
                "quit" => {
                    let all = std::mem::take(&mut clients);
                    let n = all.len();
                    let (_, failed) = each(all, quit).await;
                    (n - failed, failed)
                }
                _ => (0, 1),
            }
        });
        println!("{ok} {failed}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

type Client = Pop3Client<TokioEnv, TcpStream>;

/// Opens `n` sessions (login + STAT), `PARALLEL` at a time. Returns the
/// clients that made it and the number of failures.
async fn open(env: &TokioEnv, addr: &str, causeway: bool, n: usize) -> (Vec<Client>, usize) {
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (env, addr, gate) = (env.clone(), addr.to_string(), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let mut c = mail_client(&env, &addr, causeway).await?;
            c.stat().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(c)
        });
    }
    let (mut ok, mut errors) = (Vec::new(), 0);
    let mut first_error = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(c)) => ok.push(c),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    if let Some(e) = first_error {
        progress(&format!("{errors} sessions failed to open; first: {e}"));
    }
    (ok, errors)
}

/// Runs `work` on every client, `PARALLEL` at a time; hands back the ones
/// that succeeded and the number of failures.
async fn each<F, Fut>(clients: Vec<Client>, work: F) -> (Vec<Client>, usize)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Client>, String>> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut set = JoinSet::new();
    for c in clients {
        let gate = gate.clone();
        let fut = work(c);
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            fut.await
        });
    }
    let (mut ok, mut errors) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(Some(c))) => ok.push(c),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                if errors == 0 {
                    progress(&format!("a session failed: {e}"));
                }
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    (ok, errors)
}

async fn fetch_all(mut c: Client) -> Result<Option<Client>, String> {
    for i in 1..=MAILBOX.0 as u32 {
        c.retr(i).await.map_err(|e| e.to_string())?;
    }
    Ok(Some(c))
}

async fn quit(c: Client) -> Result<Option<Client>, String> {
    c.quit().await.map_err(|e| e.to_string())?;
    Ok(None)
}

/// What one side of figure 5 measured.
struct Held {
    idle_per_session: f64,
    active_per_session: f64,
    /// The same for the load processes (mail clients, and through
    /// Causeway their client proxy).
    load_idle_per_session: f64,
    load_active_per_session: f64,
    held: usize,
    errors: usize,
    open_rate: f64,
    peak_rss: u64,
}

/// Sends `command` to every load process and sums their answers.
fn all(
    loads: &mut [ChildNode],
    command: impl Fn(usize) -> String,
) -> Result<(usize, usize), String> {
    for (i, l) in loads.iter_mut().enumerate() {
        l.send(&command(i))?;
    }
    let (mut ok, mut failed) = (0, 0);
    for l in loads.iter_mut() {
        let (o, f) = l.reply()?;
        ok += o;
        failed += f;
    }
    Ok((ok, failed))
}

/// Shares `n` out over the load processes.
fn share(n: usize, parts: usize, i: usize) -> usize {
    n / parts + usize::from(i < n % parts)
}

/// Runs the steps against `node` (the edge or the plain forward), with the
/// mail clients in load processes configured by `config`.
fn hold(
    server: &Server,
    node: &ChildNode,
    opts: &Options,
    causeway: bool,
    configs: &[Vec<String>],
) -> Result<Held, String> {
    let (n, active) = (opts.sessions, opts.active.min(opts.sessions));
    let user = if causeway { USER } else { DIRECT_USER };
    let live = || {
        server
            .store
            .live_sessions()
            .iter()
            .filter(|s| s.user.as_deref() == Some(user))
            .count()
    };
    let settle = || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline && live() > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let parts = loads_for(n);
    let mut loads = (0..parts)
        .map(|i| ChildNode::start(&opts.exe, "__load-child", &configs[i % configs.len()]))
        .collect::<Result<Vec<_>, _>>()?;

    // Warm-up: one whole session, so one-time allocations are not counted.
    let mut errors = 0;
    for cmd in ["open 1", "fetch 1", "quit"] {
        errors += all(&mut loads[..1], |_| cmd.to_string())?.1;
    }
    settle();
    std::thread::sleep(Duration::from_millis(200));
    let load_rss = |loads: &[ChildNode]| loads.iter().map(ChildNode::rss).sum::<u64>();
    let rss0 = node.rss();
    let load0 = load_rss(&loads);

    let t = Instant::now();
    let (opened, failed) = all(&mut loads, |i| format!("open {}", share(n, parts, i)))?;
    let open_rate = opened as f64 / t.elapsed().as_secs_f64();
    errors += failed;
    std::thread::sleep(IDLE_AFTER);
    node.quiet();
    let rss1 = node.rss();
    let load1 = load_rss(&loads);
    let held = live().min(opened);

    let (fetched, failed) = all(&mut loads, |i| format!("fetch {}", share(active, parts, i)))?;
    errors += failed;
    std::thread::sleep(IDLE_AFTER);
    node.quiet();
    let rss2 = node.rss();
    let load2 = load_rss(&loads);

    errors += all(&mut loads, |_| "quit".to_string())?.1;
    settle();
    progress(&format!(
        "{}: RSS {} -> {} (idle) -> {} (active) MB; {opened} opened, {fetched} fetched, {errors} errors",
        if causeway { "edge" } else { "plain forward" },
        rss0 >> 20,
        rss1 >> 20,
        rss2 >> 20
    ));
    let per = |from: u64, to: u64, n: usize| to.saturating_sub(from) as f64 / n.max(1) as f64;
    let idle = per(rss0, rss1, opened);
    let load_idle = per(load0, load1, opened);
    Ok(Held {
        idle_per_session: idle,
        active_per_session: idle + per(rss1, rss2, fetched),
        load_idle_per_session: load_idle,
        load_active_per_session: load_idle + per(load1, load2, fetched),
        held,
        errors,
        open_rate,
        peak_rss: rss1.max(rss2),
    })
}

pub async fn figures(opts: &Options) -> Result<Vec<Figure>, String> {
    let n = opts.sessions;
    // The edge needs two sockets per session (client, server); the hard
    // limit may be below that, and only root with CAP_SYS_RESOURCE can
    // raise it.
    let limit = sys::raise_fd_limit((n as u64) * 2 + 1024);
    if limit < (n as u64) * 2 + 64 {
        progress(&format!(
            "open-file limit is {limit}: the edge cannot hold {n} sessions (2 sockets each)"
        ));
    }
    let env = TokioEnv::new();
    let server = Server::start().await;
    for m in mail::generated(3, MAILBOX.0, MAILBOX.1) {
        server.store.deliver(USER, &m).map_err(|e| e.to_string())?;
        server
            .store
            .deliver(DIRECT_USER, &m)
            .map_err(|e| e.to_string())?;
    }

    // The edge and the client proxies from the chain's own files: one edge,
    // and a client proxy in each load process.
    let spec = ChainSpec {
        servers: vec![mail_server(&server.addr, false)],
        local_user: LOCAL_USER.into(),
        local_password: LOCAL_PASSWORD.into(),
        client_timeouts: client_timeouts(),
        edge_max_sessions: n + 16,
        journal: false,
        ..ChainSpec::default()
    };
    // Each load process is a client proxy of its own, with its own key: two
    // proxies sharing a key end each other's sessions (the first Hello after
    // a proxy starts ends every earlier session of its key, `lost.rs`).
    let keys = Keys::generate(env.rng());
    let proxies: Vec<Keys> = (0..loads_for(n))
        .map(|_| Keys {
            client: Keypair::generate(env.rng()),
            ..keys.clone()
        })
        .collect();
    let dir = TempDir::new(env.rng(), "bench-scale").map_err(|e| e.to_string())?;
    let path = |p: std::path::PathBuf| p.display().to_string();
    let spec = ChainSpec {
        more_clients: proxies.iter().map(|k| k.client.public).collect(),
        ..spec
    };
    let edge_file = files::edge(&spec, &keys, None, Secrets::Files(&dir))
        .and_then(|t| dir.write("edge.toml", &t))
        .map_err(|e| e.to_string())?;
    let edge = ChildNode::start(&opts.exe, "__edge-child", &[path(edge_file)])?;
    let mut configs = Vec::new();
    for (i, k) in proxies.iter().enumerate() {
        let proxy_dir = TempDir::new(env.rng(), "bench-scale-proxy").map_err(|e| e.to_string())?;
        let file = files::client(&spec, k, &edge.addr, Secrets::Files(&proxy_dir))
            .and_then(|t| dir.write(&format!("client{i}.toml"), &t))
            .map_err(|e| e.to_string())?;
        configs.push((vec!["causeway".to_string(), path(file)], proxy_dir));
    }
    let config: Vec<Vec<String>> = configs.iter().map(|(c, _)| c.clone()).collect();
    let cw = tokio::task::block_in_place(|| hold(&server, &edge, opts, true, &config))?;
    drop(edge);

    let fwd = ChildNode::start(
        &opts.exe,
        "__forward-child",
        std::slice::from_ref(&server.addr),
    )?;
    let config = [vec!["direct".to_string(), fwd.addr.clone()]];
    let fw = tokio::task::block_in_place(|| hold(&server, &fwd, opts, false, &config))?;
    drop(fwd);

    let active = opts.active.min(n);
    Ok(vec![
        Figure::new(
            "mem_idle_session",
            "bytes/session",
            cw.idle_per_session,
            vec![("plain_forward", fw.idle_per_session)],
        )
        .note(format!(
            "edge process RSS growth / sessions, {n} sessions logged in (STAT): server session and listing open"
        )),
        Figure::new(
            "mem_active_session",
            "bytes/session",
            cw.active_per_session,
            vec![("plain_forward", fw.active_per_session)],
        )
        .note(format!(
            "{active} sessions after RETR of {} messages of ~{} B (body cache, both zstd contexts used)",
            MAILBOX.0, MAILBOX.1
        )),
        Figure::new(
            "mem_proxy_idle_session",
            "bytes/session",
            cw.load_idle_per_session - fw.load_idle_per_session,
            vec![("mail_client_alone", fw.load_idle_per_session)],
        )
        .note(
            "client proxy: RSS growth of the load processes per session (logged in, STAT, the \
             mailbox prefetched into its mirror), less the same for direct mail clients"
                .to_string(),
        ),
        Figure::new(
            "mem_proxy_active_session",
            "bytes/session",
            cw.load_active_per_session - fw.load_active_per_session,
            vec![("mail_client_alone", fw.load_active_per_session)],
        )
        .note(format!(
            "client proxy, {active} sessions after RETR of every message (answered from the mirror), less direct mail clients"
        )),
        Figure::new(
            "sessions_held",
            "sessions",
            cw.held as f64,
            vec![
                ("target", n as f64),
                ("errors", cw.errors as f64),
                ("plain_forward_held", fw.held as f64),
                ("plain_forward_errors", fw.errors as f64),
            ],
        )
        .note(format!(
            "held = live server sessions behind logged-in mail clients; edge peak RSS {} MB; open-file limit {limit}",
            cw.peak_rss >> 20
        )),
        Figure::new(
            "session_open_rate",
            "sessions/s",
            cw.open_rate,
            vec![("plain_forward", fw.open_rate)],
        )
        .note(format!(
            "login + STAT, {PARALLEL} at a time per load process (Noise XK, Hello, server login and listing on the edge)"
        )),
    ])
}
