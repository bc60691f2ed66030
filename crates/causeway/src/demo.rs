//! `causeway demo`: the whole chain in one process on loopback.
//!
//! ```text
//! mail client ── client proxy (127.0.0.1:1110) ──[cut line]── edge ──── HOST2 (direct)
//!                                                                └─ relay ── HOST1
//! ```
//!
//! Two model mail servers with generated mail, a relay, an edge and a client
//! proxy, all with fresh keys, all over [`TokioEnv`]. With `--cut-line` a
//! forwarder between client proxy and edge cuts the line at random byte
//! counts. On Ctrl-C everything shuts down as a service does (the edge
//! commits what it acknowledged and QUITs), and the demo checks the model
//! servers' records against what the mail client saw.

mod line;
mod record;

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_edge::EdgeState;
use causeway_mailserver::{EndKind, MailStore, ServerConfig, generate, serve};
use causeway_net::{Env, EnvRng, Listener, TokioEnv};
use causeway_proto::user::{Protocol, TlsMode};

use crate::chain::{ChainSpec, Hops, InProcess, MailServer, TokioSpawn};

use crate::run::{EXIT_ABANDONED, EXIT_FAILED, EXIT_OK, Signals};

/// What the mail client logs in to the client proxy with.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "causeway";
/// The mailbox on the model servers (behind the proxy; the mail client
/// never sees these credentials).
const SERVER_USER: &str = "alice";
/// How long Ctrl-C waits for sessions to end cleanly.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);

pub struct DemoOptions {
    pub pop3_port: u16,
    /// 0: no IMAP.
    pub imap_port: u16,
    pub cut_line: bool,
    pub messages: usize,
}

struct Host {
    name: &'static str,
    store: MailStore,
    addr: String,
    via_relay: bool,
    password: String,
}

pub fn run(o: DemoOptions) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("causeway demo: cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    let code = rt.block_on(demo(o)).unwrap_or_else(|e| {
        eprintln!("causeway demo: {e}");
        EXIT_FAILED
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// A readable password for a model server account.
fn password(rng: &EnvRng) -> String {
    (0..16)
        .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.range(0, 32) as usize]))
        .collect()
}

async fn demo(o: DemoOptions) -> io::Result<i32> {
    let env = TokioEnv::new();
    let started = env.now();
    let mut signals = Signals::new()?;

    // Two model mail servers: HOST1 beside the relay, HOST2 reached directly.
    let sizes = [
        1_500usize, 2_500, 4_000, 6_000, 12_000, 30_000, 80_000, 250_000,
    ];
    let mut hosts = Vec::new();
    let mut servers = Vec::new();
    for (name, via_relay) in [("HOST1", true), ("HOST2", false)] {
        let store = MailStore::with_rng(env.rng());
        let pw = password(env.rng());
        store.add_user(SERVER_USER, &pw);
        for i in 0..o.messages {
            let size = sizes[env.rng().range(0, sizes.len() as u64) as usize];
            let body = generate::message(env.rng(), i as u64, size);
            store
                .deliver(SERVER_USER, body)
                .map_err(|e| io::Error::other(format!("delivering demo mail: {e:?}")))?;
        }
        let l = env.bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?.to_string();
        let config = ServerConfig {
            hostname: format!("{}.causeway.demo", name.to_ascii_lowercase()),
            ..ServerConfig::default()
        };
        servers.push(tokio::spawn(serve(env.clone(), l, store.clone(), config)));
        hosts.push(Host {
            name,
            store,
            addr,
            via_relay,
            password: pw,
        });
    }

    // The client proxy runs on an env that records what the mail client
    // sees; with --cut-line its line to the edge goes through the cutter.
    let front = record::FrontEnv {
        inner: env.clone(),
        book: Arc::new(Mutex::new(Vec::new())),
    };
    let spec = ChainSpec {
        servers: hosts
            .iter()
            .map(|h| MailServer {
                name: h.name.into(),
                address: h.addr.clone(),
                user: SERVER_USER.into(),
                password: h.password.clone(),
                protocol: Protocol::Pop3,
                tls: TlsMode::None,
                via_relay: h.via_relay,
                folder: causeway_proto::user::INBOX.into(),
            })
            .collect(),
        local_user: DEMO_USER.into(),
        local_password: DEMO_PASSWORD.into(),
        client_listen: format!("127.0.0.1:{}", o.pop3_port),
        client_imap_listen: (o.imap_port != 0).then(|| format!("127.0.0.1:{}", o.imap_port)),
        journal: false,
        ..ChainSpec::default()
    };
    let mut nodes = InProcess::with(env.clone(), front.clone(), TokioSpawn);
    let mut line = Line {
        env: env.clone(),
        cut: o.cut_line,
        cutter: None,
    };
    let chain = match spec.start(env.rng(), &mut nodes, &mut line).await {
        Ok(c) => c,
        Err(e) if e.to_string().contains("cannot listen on 127.0.0.1") => {
            eprintln!(
                "causeway demo: {e}\n\
                 (another demo running? choose another port with --pop3-port, or 0 for any)"
            );
            return Ok(EXIT_FAILED);
        }
        Err(e) => return Err(e),
    };
    let cutter = line.cutter;
    let (relay_addr, edge_addr) = (chain.relay.clone().unwrap_or_default(), chain.edge.clone());
    let proxy_addr: std::net::SocketAddr = chain
        .proxy
        .parse()
        .map_err(|e| io::Error::other(format!("the client proxy's address: {e}")))?;

    let ready_ms = env.now().duration_since(started).as_millis();
    let port = proxy_addr.port();
    println!("Causeway demo, all on loopback (ready in {ready_ms} ms):");
    for h in &hosts {
        println!(
            "  mail server {}  {}  {} messages, reached {}",
            h.name,
            h.addr,
            o.messages,
            if h.via_relay {
                "through the relay"
            } else {
                "directly by the edge"
            }
        );
    }
    println!("  relay        {relay_addr}");
    println!("  edge         {edge_addr}");
    if let Some(c) = &cutter {
        println!(
            "  cut line     {}  (cuts the client proxy's line at random moments)",
            c.addr
        );
    }
    println!("  client proxy {proxy_addr}");
    println!();
    println!("Point a mail client at the client proxy (POP3, no TLS):");
    println!("  host 127.0.0.1  port {port}  user {DEMO_USER}  password {DEMO_PASSWORD}");
    println!("It shows one mailbox of both servers. Or list it with curl:");
    println!("curl pop3://{DEMO_USER}:{DEMO_PASSWORD}@127.0.0.1:{port}/");
    if o.imap_port != 0 {
        println!("The same mailbox as an IMAP folder, INBOX (IMAP, no TLS):");
        println!(
            "curl imap://{DEMO_USER}:{DEMO_PASSWORD}@127.0.0.1:{}/",
            o.imap_port
        );
    }
    println!("Press Ctrl-C to stop.");

    let ended_early = tokio::select! {
        sig = signals.recv() => { println!("\n{sig}: shutting down (every mail server session ends with QUIT)..."); false }
        _ = stopped(&env, &nodes) => true,
    };
    nodes.shutdown();
    let drained = env
        .timeout(
            SHUTDOWN_DEADLINE,
            "the demo's nodes to shut down",
            nodes.finished(),
        )
        .await;
    // Let the servers record the QUITs that were just answered.
    env.sleep(Duration::from_millis(100)).await;
    for s in &servers {
        s.abort();
    }
    let edge_state = nodes.edge.clone();

    let cuts = cutter.as_ref().map(|c| c.cuts()).unwrap_or_default();
    let ok = summary(&hosts, &front.book, cuts, &edge_state, &env);
    if ended_early {
        eprintln!("causeway demo: a node stopped on its own; see the log above");
        return Ok(EXIT_FAILED);
    }
    if drained.is_err() {
        eprintln!(
            "causeway demo: shutdown deadline passed; edge sessions still running {}, work pending {}",
            edge_state.live_sessions(),
            edge_state.pending_work()
        );
        return Ok(EXIT_ABANDONED);
    }
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
}

/// Resolves once some node stopped on its own.
async fn stopped<E: Env, C: Env>(env: &TokioEnv, nodes: &InProcess<E, C>) {
    // Polled, not awaited: the tasks are awaited at shutdown.
    while !nodes.any_stopped() {
        env.sleep(Duration::from_millis(200)).await;
    }
}

/// The line between client proxy and edge: straight, or through the cutter.
struct Line {
    env: TokioEnv,
    cut: bool,
    cutter: Option<line::Cutter>,
}

impl Hops for Line {
    async fn line(&mut self, edge: String) -> String {
        if !self.cut {
            return edge;
        }
        match line::Cutter::start(self.env.clone(), edge.clone()).await {
            Ok(c) => {
                let addr = c.addr.clone();
                self.cutter = Some(c);
                addr
            }
            Err(e) => {
                eprintln!("causeway demo: cannot start the line cutter ({e}); the line is not cut");
                edge
            }
        }
    }
}

/// Prints what happened and checks it against the model servers' records;
/// true if every check holds.
fn summary(
    hosts: &[Host],
    book: &record::Book,
    cuts: Vec<String>,
    edge: &EdgeState,
    env: &TokioEnv,
) -> bool {
    let conversations: Vec<record::Outcome> = book
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|log| record::outcome(&record::Conversation::from_tap(log)))
        .collect();
    let received: BTreeSet<&str> = conversations
        .iter()
        .flat_map(|c| c.received.iter().map(String::as_str))
        .collect();
    let acked: Vec<&Option<String>> = conversations.iter().flat_map(|c| &c.deleted).collect();
    let acked_named: BTreeSet<&str> = acked.iter().filter_map(|d| d.as_deref()).collect();
    let acked_unnamed = acked.iter().filter(|d| d.is_none()).count();

    println!();
    println!("== summary ==");
    println!(
        "mail client sessions: {} ({} ended with QUIT)",
        conversations.len(),
        conversations.iter().filter(|c| c.quit).count()
    );
    if !cuts.is_empty() {
        println!("line cuts: {}", cuts.len());
        for c in &cuts {
            println!("  {c}");
        }
    }
    let mut problems = Vec::new();
    let (mut delivered, mut present, mut deleted, mut seen) = (0, 0, 0, 0);
    let mut deleted_names = BTreeSet::new();
    let now = env.unix_millis();
    for h in hosts {
        for m in h.store.messages(SERVER_USER) {
            delivered += 1;
            let name = format!("{}:{}", h.name, m.uidl.as_str());
            if m.deleted_by.is_some() {
                deleted += 1;
                deleted_names.insert(name.clone());
            } else {
                present += 1;
            }
            if m.seen_by.is_some() {
                seen += 1;
                if !received.contains(m.sha256.as_str()) {
                    problems.push(format!(
                        "{name} is marked read but the mail client never received it whole"
                    ));
                }
            }
        }
        for s in h.store.sessions() {
            if s.user.is_some() && s.end_kind() != Some(EndKind::Quit) {
                problems.push(format!(
                    "{}: server session {} ended {}",
                    h.name,
                    s.id,
                    s.end_kind()
                        .map_or("not at all".to_owned(), |k| k.to_string())
                ));
            }
        }
        for l in h.store.locks_held(now) {
            problems.push(format!(
                "{}: maildrop lock still held by {}",
                h.name, l.session
            ));
        }
    }
    for name in &deleted_names {
        if !acked_named.contains(name.as_str()) && acked_unnamed == 0 {
            problems.push(format!(
                "{name} was deleted but the mail client never deleted it"
            ));
        }
    }
    for name in &acked_named {
        if !deleted_names.contains(*name) {
            problems.push(format!(
                "{name}: the mail client was told it was deleted, but it is still on the server"
            ));
        }
    }
    if deleted > acked.len() {
        problems.push(format!(
            "{deleted} messages deleted but the mail client deleted only {}",
            acked.len()
        ));
    }
    for s in edge.sessions() {
        if !s.abandoned.is_empty() {
            problems.push(format!(
                "edge session {} gave up on {:?}",
                s.id, s.abandoned
            ));
        }
    }
    let sessions: usize = hosts.iter().map(|h| h.store.sessions().len()).sum();
    println!("messages delivered: {delivered}");
    println!("  present:  {present}");
    println!(
        "  deleted:  {deleted} (mail client was told +OK for {} deletes)",
        acked.len()
    );
    println!(
        "  seen:     {seen} (mail client fully received {} distinct messages)",
        received.len()
    );
    println!(
        "mail server sessions: {sessions}, all ended with QUIT: {}",
        problems.iter().all(|p| !p.contains("server session"))
    );
    if problems.is_empty() {
        println!(
            "no mail lost: every delete was the mail client's, every read mark a whole message it received, every server session QUIT."
        );
        true
    } else {
        println!("PROBLEMS:");
        for p in &problems {
            println!("  {p}");
        }
        false
    }
}
