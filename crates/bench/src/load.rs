//! Figure 8: a load run, then SIGTERM (#18).
//!
//! `load_sessions` mail users, each with a client proxy of its own (its own
//! key and one account on the model server), fetch and delete their mail
//! through one edge, over and over, for `load_seconds`, while the bench
//! keeps delivering more. Then the edge gets SIGTERM with the sessions still
//! at it, as an operator's restart would. The edge is the shipped one
//! (`causeway::run::run`, with its crash journal, signals and shutdown
//! deadline) in a child process; the proxies and mail clients share another
//! (`__load-run`); the model server stays here, where its record is read.
//!
//! Judged from the model server's record and the mail clients' own, never
//! from the edge's counters:
//! - no mail client saw an error before the SIGTERM;
//! - the edge exited 0 ("shut down cleanly") within its shutdown deadline;
//! - every server session of the run ended with QUIT;
//! - nothing lost: each message delivered is still on the server unless a
//!   `DELE` of it was acknowledged to the mail client, and none whose `DELE`
//!   was acknowledged is (a delete acknowledged just before the SIGTERM is
//!   owed all the same);
//! - every body a mail client received is the one delivered, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, Lines, StdinLock, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use causeway::chain::{ChainSpec, Keys, MailServer, Secrets, TempDir, files};
use causeway_mailserver::EndKind;
use causeway_net::{Env, EnvRng, TokioEnv};
use causeway_wire::Keypair;
use tokio::task::JoinSet;

use crate::nodes::{
    LOCAL_PASSWORD, LOCAL_USER, PASSWORD, Server, client_timeouts, mail_client, mail_server,
};
use causeway_tests::interop::sha256;

use crate::scale::{ChildNode, next, start_proxy};
use crate::{Figure, Options, progress, sys};

/// Messages each mailbox starts with, and the size of every message.
const START: usize = 5;
const SIZE: usize = 4096;
/// Each user gets a new message this often while the run lasts.
const DELIVER_EVERY: Duration = Duration::from_secs(2);
/// A mail client's pause between two sessions (plus up to as much again).
const PAUSE: Duration = Duration::from_millis(500);

fn user(i: usize) -> String {
    format!("load{i}")
}

/// What the mail clients saw, kept as they saw it.
#[derive(Default)]
struct Seen {
    /// (user, server UIDL, SHA-256 of the body received).
    received: Vec<(usize, String, String)>,
    /// (user, server UIDL) whose DELE was answered `+OK`.
    deleted: Vec<(usize, String)>,
}

/// One session of mail client `i`: every message fetched, then deleted,
/// then QUIT.
async fn session(
    env: &TokioEnv,
    addr: &str,
    i: usize,
    seen: &Mutex<Seen>,
) -> Result<usize, String> {
    let e = |e: causeway_pop3::ClientError| e.to_string();
    let mut c = mail_client(env, addr, true).await?;
    let listing = c.uidl().await.map_err(e)?;
    for (n, shown) in &listing {
        let uidl = shown.split_once(':').map_or(shown.as_str(), |(_, u)| u);
        let body = c.retr(*n).await.map_err(e)?;
        seen.lock()
            .unwrap()
            .received
            .push((i, uidl.to_string(), sha256(&body)));
        c.dele(*n).await.map_err(e)?;
        seen.lock().unwrap().deleted.push((i, uidl.to_string()));
    }
    c.quit().await.map_err(e)?;
    Ok(listing.len())
}

/// Counts of the load process, as it answers them.
#[derive(Default)]
struct Counts {
    sessions: AtomicUsize,
    messages: AtomicUsize,
    errors: AtomicUsize,
    /// Errors by what they said (numbers left out), for the report.
    kinds: Mutex<BTreeMap<String, usize>>,
}

impl Counts {
    fn error(&self, e: &str) {
        self.errors.fetch_add(1, Ordering::SeqCst);
        let kind: String = e
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(120)
            .collect();
        *self.kinds.lock().unwrap().entry(kind).or_default() += 1;
    }

    /// The errors so far by kind, on stderr, and forgotten.
    fn report(&self, when: &str) {
        for (kind, n) in std::mem::take(&mut *self.kinds.lock().unwrap()) {
            progress(&format!("load: {n} errors {when}: {kind}"));
        }
    }
}

/// Entry point of the `__load-run` child process (see [`load_main`]).
pub fn child_main() -> Result<(), String> {
    let stdin = std::io::stdin();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    load_main(&rt, TokioEnv::new(), &mut stdin.lock().lines())
}

/// The load process: a client proxy per user and its mail client. Reads
/// the record file's path, then one client proxy file per line up to an
/// empty line; answers `ready`. Commands: `go`, `mark` (answers `SESSIONS
/// MESSAGES ERRORS` so far), `end` (stops the mail clients, writes the
/// record, answers the same counts for the whole run).
fn load_main(
    rt: &tokio::runtime::Runtime,
    env: TokioEnv,
    lines: &mut Lines<StdinLock<'_>>,
) -> Result<(), String> {
    let record = next(lines)?;
    let mut proxies = Vec::new();
    loop {
        let file = next(lines)?;
        if file.is_empty() {
            break;
        }
        let addr = start_proxy(rt, &env, &file)?;
        proxies.push(addr);
    }
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = JoinSet::new();
    let answer = |c: &Counts| {
        println!(
            "{} {} {}",
            c.sessions.load(Ordering::SeqCst),
            c.messages.load(Ordering::SeqCst),
            c.errors.load(Ordering::SeqCst)
        );
        std::io::stdout().flush().map_err(|e| e.to_string())
    };
    while let Ok(cmd) = next(lines) {
        match cmd.as_str() {
            "go" => {
                let _guard = rt.enter();
                for (i, addr) in proxies.iter().enumerate() {
                    let (env, addr, seen, counts, stop) = (
                        env.clone(),
                        addr.clone(),
                        seen.clone(),
                        counts.clone(),
                        stop.clone(),
                    );
                    clients.spawn(async move {
                        let rng = EnvRng::from_seed([i as u8; 32]);
                        while !stop.load(Ordering::SeqCst) {
                            match session(&env, &addr, i, &seen).await {
                                Ok(n) => {
                                    counts.sessions.fetch_add(1, Ordering::SeqCst);
                                    counts.messages.fetch_add(n, Ordering::SeqCst);
                                }
                                Err(e) => counts.error(&e),
                            }
                            let jitter = rng.range(0, PAUSE.as_millis() as u64);
                            tokio::time::sleep(PAUSE + Duration::from_millis(jitter)).await;
                        }
                    });
                }
                println!("going");
                std::io::stdout().flush().map_err(|e| e.to_string())?;
            }
            "mark" => {
                counts.report("before the SIGTERM");
                answer(&counts)?;
            }
            "end" => {
                stop.store(true, Ordering::SeqCst);
                rt.block_on(async { while clients.join_next().await.is_some() {} });
                let seen = seen.lock().unwrap();
                let mut out = String::new();
                for (i, uidl, sha) in &seen.received {
                    let _ = writeln!(out, "R {i} {uidl} {sha}");
                }
                for (i, uidl) in &seen.deleted {
                    let _ = writeln!(out, "D {i} {uidl}");
                }
                std::fs::write(&record, out).map_err(|e| e.to_string())?;
                counts.report("after it");
                answer(&counts)?;
            }
            other => return Err(format!("unknown command {other:?}")),
        }
    }
    Ok(())
}

fn counts(line: &str) -> Result<(usize, usize, usize), String> {
    let v: Vec<usize> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("the load process answered {line:?}"))?;
    match v[..] {
        [s, m, e] => Ok((s, m, e)),
        _ => Err(format!("the load process answered {line:?}")),
    }
}

/// Delivers one new message to user `i`; remembers its SHA-256 by UIDL.
fn deliver(
    server: &Server,
    rng: &EnvRng,
    seq: &mut u64,
    i: usize,
    delivered: &mut BTreeMap<(usize, String), String>,
) -> Result<(), String> {
    *seq += 1;
    let m = causeway_pop3::multiline::normalise(&causeway_mailserver::generate::message(
        rng, *seq, SIZE,
    ));
    let uidl = server
        .store
        .deliver(&user(i), &m)
        .map_err(|e| e.to_string())?;
    delivered.insert((i, uidl.to_string()), sha256(&m));
    Ok(())
}

pub async fn figures(opts: &Options) -> Result<Vec<Figure>, String> {
    let n = opts.load_sessions.max(1);
    sys::raise_fd_limit(4 * n as u64 + 1024);
    let server = Server::start().await;
    let env = server.env.clone();
    for i in 0..n {
        server.store.add_user(&user(i), PASSWORD);
    }
    let account = |i: usize| MailServer {
        user: user(i),
        ..mail_server(&server.addr, false)
    };
    let keys = Keys::generate(env.rng());
    let clients: Vec<Keypair> = (0..n).map(|_| Keypair::generate(env.rng())).collect();
    let dir = TempDir::new(env.rng(), "bench-load").map_err(|e| e.to_string())?;
    let path = |p: std::path::PathBuf| p.display().to_string();
    let edge_spec = ChainSpec {
        servers: vec![account(0)],
        edge_listen: causeway_tests::unused_address(),
        edge_max_sessions: n + 16,
        more_clients: clients.iter().map(|k| k.public).collect(),
        ..ChainSpec::default()
    };
    let edge_file = files::edge(&edge_spec, &keys, None, Secrets::Files(&dir))
        .and_then(|t| dir.write("edge.toml", &t))
        .map_err(|e| e.to_string())?;
    let mut edge = ChildNode::start(&opts.exe, "__edge-run", &[path(edge_file)])?;
    edge.wait_listening(Duration::from_secs(30))?;

    let mut config = vec![path(dir.join("record"))];
    let mut proxy_dirs = Vec::new();
    for (i, k) in clients.iter().enumerate() {
        let spec = ChainSpec {
            servers: vec![account(i)],
            local_user: LOCAL_USER.into(),
            local_password: LOCAL_PASSWORD.into(),
            client_timeouts: client_timeouts(),
            ..ChainSpec::default()
        };
        let keys = Keys {
            client: k.clone(),
            ..keys.clone()
        };
        let proxy_dir = TempDir::new(env.rng(), "bench-load-proxy").map_err(|e| e.to_string())?;
        let file = files::client(&spec, &keys, &edge.addr, Secrets::Files(&proxy_dir))
            .and_then(|t| dir.write(&format!("client{i}.toml"), &t))
            .map_err(|e| e.to_string())?;
        config.push(path(file));
        proxy_dirs.push(proxy_dir);
    }
    config.push(String::new());

    let rng = EnvRng::from_seed([8; 32]);
    let (mut seq, mut delivered) = (0u64, BTreeMap::new());
    for i in 0..n {
        for _ in 0..START {
            deliver(&server, &rng, &mut seq, i, &mut delivered)?;
        }
    }
    let mut load = ChildNode::start(&opts.exe, "__load-run", &config)?;
    load.send("go")?;
    load.line()?;
    progress(&format!(
        "figure 8: {n} mail users fetching and deleting for {} s",
        opts.load_seconds
    ));
    let start = Instant::now();
    let run_for = Duration::from_secs(opts.load_seconds);
    let mut next_user = 0;
    let mut peak_rss = 0;
    while start.elapsed() < run_for {
        // Every user gets a message each DELIVER_EVERY, spread evenly.
        let due =
            ((start.elapsed().as_secs_f64() / DELIVER_EVERY.as_secs_f64()) * n as f64) as usize;
        while next_user < due {
            deliver(&server, &rng, &mut seq, next_user % n, &mut delivered)?;
            next_user += 1;
        }
        peak_rss = peak_rss.max(edge.rss());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load.send("mark")?;
    let (steady_sessions, steady_messages, steady_errors) = counts(&load.line()?)?;
    let t = Instant::now();
    let exit = edge.terminate()?;
    let shutdown = t.elapsed();
    load.send("end")?;
    let (sessions, messages, errors) = counts(&load.line()?)?;
    progress(&format!(
        "figure 8: before SIGTERM {steady_sessions} sessions, {steady_messages} messages, \
         {steady_errors} errors; edge exit {exit} after {:.2} s; in all {sessions} sessions, \
         {messages} messages, {errors} errors (those after the SIGTERM are the shutdown's)",
        shutdown.as_secs_f64()
    ));

    // The mail clients' record.
    let record = std::fs::read_to_string(dir.join("record")).map_err(|e| e.to_string())?;
    let (mut corrupt, mut received) = (0, 0);
    let mut acked = BTreeSet::new();
    for l in record.lines() {
        let w: Vec<&str> = l.split(' ').collect();
        let i: usize = w
            .get(1)
            .and_then(|s| s.parse().ok())
            .ok_or("a bad record line")?;
        match w[..] {
            ["R", _, uidl, sha] => {
                received += 1;
                if delivered.get(&(i, uidl.to_string())).map(String::as_str) != Some(sha) {
                    corrupt += 1;
                }
            }
            ["D", _, uidl] => {
                acked.insert((i, uidl.to_string()));
            }
            _ => return Err(format!("a bad record line {l:?}")),
        }
    }
    // The server's record.
    let present: BTreeSet<(usize, String)> = (0..n)
        .flat_map(|i| {
            server
                .store
                .present_uidls(&user(i))
                .into_iter()
                .map(move |u| (i, u.to_string()))
        })
        .collect();
    let lost = delivered
        .keys()
        .filter(|k| !present.contains(*k) && !acked.contains(*k))
        .count();
    let undone = acked.iter().filter(|k| present.contains(*k)).count();
    let records = server.store.sessions();
    let unquit = records
        .iter()
        .filter(|s| s.end_kind() != Some(EndKind::Quit))
        .count();
    progress(&format!(
        "figure 8: {} messages delivered, {received} received ({corrupt} not as delivered), \
         {} deletes acknowledged ({undone} not carried out), {lost} gone without one; \
         {} server sessions, {unquit} not ended with QUIT",
        delivered.len(),
        acked.len(),
        records.len()
    ));
    let note = |what: &str| {
        format!(
            "{n} mail users with a client proxy each, fetching and deleting for {} s \
             ({steady_sessions} sessions, {steady_messages} messages of 4 KiB), then SIGTERM to the edge; {what}",
            opts.load_seconds
        )
    };
    let count = |name: &str, v: usize, what: &str| {
        Figure::new(name, "count", v as f64, vec![]).note(note(what))
    };
    Ok(vec![
        Figure::new(
            "load_sessions",
            "count",
            steady_sessions as f64,
            vec![("messages", steady_messages as f64)],
        )
        .note(note("mail-client sessions completed before the SIGTERM")),
        count(
            "load_errors",
            steady_errors,
            "errors a mail client saw before the SIGTERM",
        ),
        count(
            "load_lost",
            lost + corrupt,
            "messages gone without an acknowledged DELE, or received other than delivered",
        ),
        count(
            "load_deletes_not_done",
            undone,
            "acknowledged DELEs still on the server after the edge exited",
        ),
        count(
            "load_server_sessions_without_quit",
            unquit,
            &format!(
                "of {} server sessions (the model server's record)",
                records.len()
            ),
        ),
        Figure::new(
            "load_shutdown",
            "s",
            shutdown.as_secs_f64(),
            vec![("exit_code", f64::from(exit))],
        )
        .note(note("SIGTERM to exit; exit code 0: shut down cleanly")),
        Figure::new("load_edge_peak_rss", "MB", peak_rss as f64 / 1e6, vec![])
            .note(note("the edge's resident memory, highest sample")),
    ])
}
