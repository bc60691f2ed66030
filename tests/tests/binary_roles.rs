//! The real binary in each role, as separate processes on loopback, with
//! model mail servers in the test process and python's `poplib` as the mail
//! client.

use std::time::Duration;

use causeway::chain::{self, ChainSpec, Direct, MailServer};
use causeway::config::Role;
use causeway_mailserver::{EndKind, MailStore, ServerConfig, generate, serve};
use causeway_net::{Env, Listener, TokioEnv};
use causeway_proto::user::{Protocol, TlsMode};
use causeway_tests::interop::{require, temp_dir};
use causeway_tests::process::{Proc, Processes, causeway_bin, keygen};

#[path = "binary_roles/reload.rs"]
mod reload;

const LOCAL_USER: &str = "me";
const LOCAL_PASSWORD: &str = "Local-Pa55word-q7Zr";
const SERVER_USER: &str = "alice";
const DIRECT_PASSWORD: &str = "Direct-Serv3r-Pw-k2Lx";
const RELAYED_PASSWORD: &str = "Relayed-Serv3r-Pw-9mWt";
/// A phrase in one message body: must never appear in a log.
const BODY_MARKER: &str = "Zebra-Quartz-Harbour-Body-Marker-1187";

/// Two model mail servers in the test process (HOST1 direct, HOST2 through
/// the relay) and the three nodes as `causeway` processes at trace level,
/// assembled by `causeway::chain`.
struct Chain {
    nodes: Processes,
    proxy: String,
    direct: MailStore,
    relayed: MailStore,
    private_keys: Vec<String>,
    built: chain::Chain,
}

impl Chain {
    fn edge(&mut self) -> &mut Proc {
        self.nodes.get(Role::Edge)
    }

    fn relay(&mut self) -> &mut Proc {
        self.nodes.get(Role::Relay)
    }

    fn client(&mut self) -> &mut Proc {
        self.nodes.get(Role::Client)
    }
}

/// A model mail server on loopback in the test process.
async fn mail_server(env: &TokioEnv, password: &str) -> (MailStore, String) {
    let store = MailStore::with_rng(env.rng());
    store.add_user(SERVER_USER, password);
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(serve(
        env.clone(),
        l,
        store.clone(),
        ServerConfig::default(),
    ));
    (store, addr)
}

/// The chain of three processes; `client_journal`: the client proxy keeps
/// a delete journal (else every DELE waits for the edge, whose own journal
/// is what a test of the edge's crash safety wants to see).
async fn chain(env: &TokioEnv, messages: usize, client_journal: bool) -> Chain {
    let (direct, direct_addr) = mail_server(env, DIRECT_PASSWORD).await;
    let (relayed, relayed_addr) = mail_server(env, RELAYED_PASSWORD).await;
    for (store, base) in [(&direct, 0u64), (&relayed, 100)] {
        for i in 0..messages as u64 {
            store
                .deliver(SERVER_USER, generate::message(env.rng(), base + i, 3000))
                .unwrap();
        }
    }
    let marked =
        format!("From: a@b.example\r\nSubject: marker\r\n\r\nThe body says {BODY_MARKER}.\r\n");
    relayed.deliver(SERVER_USER, marked).unwrap();
    let server = |name: &str, address: String, password: &str, via_relay| MailServer {
        name: name.into(),
        address,
        user: SERVER_USER.into(),
        password: password.into(),
        protocol: Protocol::Pop3,
        tls: TlsMode::None,
        via_relay,
        folder: causeway_proto::user::INBOX.into(),
    };
    let mut spec = ChainSpec {
        servers: vec![
            server("HOST1", direct_addr, DIRECT_PASSWORD, false),
            server("HOST2", relayed_addr, RELAYED_PASSWORD, true),
        ],
        local_user: LOCAL_USER.into(),
        local_password: LOCAL_PASSWORD.into(),
        client_journal,
        metrics_listen: Some("127.0.0.1:0".into()),
        ..ChainSpec::default()
    };
    spec.edge_timeouts.retry_min = Duration::from_millis(100);
    spec.edge_timeouts.retry_max = Duration::from_secs(1);
    // An edge restarted here listens on another port (its file says port
    // 0), where the proxy's resume would never find it; in production the
    // restarted edge refuses the resume at once. These tests are about the
    // journal, not resume.
    spec.client_timeouts.resume = Duration::ZERO;
    let mut nodes = Processes::new(&[("RUST_LOG", "trace")]);
    let built = spec
        .start(env.rng(), &mut nodes, &mut Direct)
        .await
        .expect("the chain starts");
    let private_keys = ["edge", "relay", "client"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(built.dir.join(&format!("{n}.key")))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    Chain {
        nodes,
        proxy: built.proxy.clone(),
        direct,
        relayed,
        private_keys,
        built,
    }
}

const READ_ALL: &str = r#"
import poplib, sys
host, port, user, pw, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].encode()
p = poplib.POP3(host, port, timeout=60)
p.user(user)
p.pass_(pw)
_, listing, _ = p.list()
print("list", len(listing), flush=True)
_, uidls, _ = p.uidl()
uidls = [u.decode().split()[1] for u in uidls]
print("uidl", " ".join(uidls), flush=True)
for i in range(1, len(listing) + 1):
    _, lines, _ = p.retr(i)
    body = b"".join(l + b"\r\n" for l in lines)
    if marker in body:
        print("marker", uidls[i - 1], flush=True)
print("dele", p.dele(1).decode(), uidls[0], flush=True)
print("quit", p.quit().decode(), flush=True)
"#;

fn store_uidl(proxy_uidl: &str) -> (&str, &str) {
    proxy_uidl.split_once(':').expect("HOST:uidl")
}

impl Chain {
    /// The store holding the message the proxy names `proxy_uidl`, and
    /// its UIDL there.
    fn store_of<'u>(&self, proxy_uidl: &'u str) -> (MailStore, &'u str) {
        let (h, id) = store_uidl(proxy_uidl);
        let store = if h == "HOST1" {
            self.direct.clone()
        } else {
            self.relayed.clone()
        };
        (store, id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_carry_mail_and_log_no_secret() {
    if !require("python3", &["--version"], "python3") {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 3, true).await;

    let (host, port) = c.proxy.rsplit_once(':').unwrap();
    let mut py = Proc::spawn(
        "python",
        std::path::Path::new("python3"),
        &[
            "-c",
            READ_ALL,
            host,
            port,
            LOCAL_USER,
            LOCAL_PASSWORD,
            BODY_MARKER,
        ],
        &[],
    );
    let out = py.wait_for(&env, "quit").await;
    assert_eq!(
        py.exit_code(&env).await,
        0,
        "python failed:\n{}",
        py.output()
    );
    assert!(out.contains("list 7"), "{out}");
    let uidls: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("uidl "))
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(uidls.len(), 7);
    assert!(
        out.contains("marker HOST2:"),
        "the marked message came through the relay: {out}"
    );
    let deleted = out
        .lines()
        .find_map(|l| l.strip_prefix("dele +OK"))
        .map(|rest| rest.split_whitespace().last().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no dele +OK: {out}"));

    // What an operator's Prometheus reads, from each node's endpoint.
    let edge = scrape(&env, c.edge(), "/metrics").await;
    assert!(
        edge.starts_with("HTTP/1.1 200 OK\r\n") && edge.ends_with("# EOF\n"),
        "{edge}"
    );
    let sample = |name: &str, labels: &str| value(&edge, &format!("causeway_edge_{name}{labels}"));
    let out = |stage: &str| {
        sample(
            "client_bytes_total",
            &format!("{{direction=\"out\",stage=\"{stage}\"}}"),
        )
    };
    assert!(
        out("plain") >= 3.0 * 3000.0,
        "three bodies went out:\n{edge}"
    );
    assert!(
        out("wire") < out("plain"),
        "mail crossed compressed:\n{edge}"
    );
    assert!(
        sample("journal_commit_seconds_count", "") >= 1.0,
        "the DELE was journaled:\n{edge}"
    );
    // Owed work may still wait for the server's QUIT here: only its age is
    // sure to be written.
    assert!(sample("owed_oldest_seconds", "") >= 0.0);
    let relay = scrape(&env, c.nodes.get(Role::Relay), "/metrics").await;
    let relayed_in = "causeway_relay_edge_bytes_total{direction=\"out\",stage=\"plain\"}";
    assert!(value(&relay, relayed_in) >= 3000.0, "{relay}");
    assert!(
        relay.contains("\ncauseway_relay_server_sessions "),
        "{relay}"
    );
    let elsewhere = scrape(&env, c.edge(), "/").await;
    assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");

    // Stop the nodes the way an operator does.
    for role in [Role::Client, Role::Edge, Role::Relay] {
        c.nodes.get(role).signal("TERM");
    }
    for role in [Role::Client, Role::Edge, Role::Relay] {
        let p = c.nodes.get(role);
        let code = p.exit_code(&env).await;
        assert_eq!(code, 0, "{} exited {code}:\n{}", p.name, p.output());
    }

    // The store: the deleted message is gone, every other one read, every
    // server session ended with QUIT.
    let (dhost, duidl) = store_uidl(&deleted);
    for u in &uidls {
        let (h, id) = store_uidl(u);
        let store = if h == "HOST1" {
            c.direct.clone()
        } else {
            c.relayed.clone()
        };
        if (h, id) == (dhost, duidl) {
            assert!(
                !store.is_present(SERVER_USER, id),
                "{u} was deleted:\n{}",
                store.report()
            );
        } else {
            assert!(store.is_present(SERVER_USER, id), "{u} is still there");
            assert!(
                store.is_seen(SERVER_USER, id),
                "{u} was retrieved:\n{}",
                store.report()
            );
        }
    }
    for store in [&c.direct, &c.relayed] {
        for s in store.sessions() {
            if s.user.is_some() {
                assert_eq!(s.end_kind(), Some(EndKind::Quit), "{}", store.report());
            }
        }
    }

    // Nothing secret in any process's output, at trace level.
    let secrets = [
        LOCAL_PASSWORD,
        DIRECT_PASSWORD,
        RELAYED_PASSWORD,
        BODY_MARKER,
    ];
    for role in [Role::Relay, Role::Edge, Role::Client] {
        let p = c.nodes.get(role);
        let out = p.output();
        assert!(out.lines().count() >= 5, "{} logged little:\n{out}", p.name);
        for s in secrets
            .iter()
            .copied()
            .chain(c.private_keys.iter().map(String::as_str))
        {
            assert!(!out.contains(s), "{} logged a secret ({s}):\n{out}", p.name);
        }
    }
    // Trace level really was on (the POP3 driver traces each command).
    assert!(c.edge().output().contains("TRACE"), "{}", c.edge().output());
    // The session ids the edge gave out are on the client's and edge's lines.
    let edge_out = c.edge().output();
    let id = edge_out
        .lines()
        .find(|l| l.contains("client session started"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("session="))
        })
        .expect("the edge logs its session ids")
        .to_owned();
    assert!(
        c.client().output().contains(&id),
        "client log lacks session {id}"
    );
    // Not only where the session opens: every later line about it too.
    let client_out = c.client().output();
    let bye = client_out
        .lines()
        .find(|l| l.contains("edge session ended with Bye"))
        .unwrap_or_else(|| panic!("no Bye line:\n{client_out}"));
    assert!(bye.contains(&id), "the Bye line lacks session {id}: {bye}");
}

/// The whole HTTP response of `GET path` at the node's metrics endpoint
/// (the address it logged as `metrics_address=`).
async fn scrape(env: &TokioEnv, p: &mut Proc, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let out = p.wait_for(env, "metrics endpoint open").await;
    let addr = out
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("metrics_address="))
        })
        .unwrap_or_else(|| panic!("{} logged no metrics_address:\n{out}", p.name))
        .trim_matches('"')
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let get = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(get.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer
}

/// The value of the sample named `metric` (name and labels) in `text`.
fn value(text: &str, metric: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {metric} in:\n{text}"))
}

const DELETE_AND_WAIT: &str = r#"
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=60)
p.user(sys.argv[3])
p.pass_(sys.argv[4])
_, uidls, _ = p.uidl()
print("deleted", p.dele(1).decode(), uidls[0].decode().split()[1], flush=True)
sys.stdin.readline()
try:
    p.quit()
except Exception as e:
    print("quit failed", e, flush=True)
"#;

/// A python mail client that deletes message 1, gets `+OK`, and waits on
/// its stdin before QUIT; with the proxy's UIDL of the deleted message.
async fn delete_and_wait(env: &TokioEnv, c: &Chain) -> (Proc, String) {
    let (host, port) = c.proxy.rsplit_once(':').unwrap();
    let mut py = Proc::spawn(
        "python",
        std::path::Path::new("python3"),
        &[
            "-c",
            DELETE_AND_WAIT,
            host,
            port,
            LOCAL_USER,
            LOCAL_PASSWORD,
        ],
        &[],
    );
    let out = py.wait_for(env, "deleted +OK").await;
    let uidl = out
        .lines()
        .find_map(|l| l.strip_prefix("deleted +OK"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    (py, uidl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_an_acknowledged_delete_and_quits() {
    if !require("python3", &["--version"], "python3") {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 2, false).await;
    let (mut py, uidl) = delete_and_wait(&env, &c).await;
    let (store, id) = c.store_of(&uidl);
    assert!(
        store.is_present(SERVER_USER, id),
        "not committed before QUIT"
    );

    // The mail client has +OK for DELE and has not said QUIT: stop the edge.
    c.edge().signal("TERM");
    let code = c.edge().exit_code(&env).await;
    assert_eq!(code, 0, "edge exit code; output:\n{}", c.edge().output());
    assert!(
        !store.is_present(SERVER_USER, id),
        "the acknowledged delete was committed:\n{}",
        store.report()
    );
    let sessions: Vec<_> = store
        .sessions()
        .into_iter()
        .filter(|s| s.user.is_some())
        .collect();
    assert!(!sessions.is_empty());
    for s in &sessions {
        assert_eq!(s.end_kind(), Some(EndKind::Quit), "{}", store.report());
    }
    assert!(
        c.edge().output().contains("shut down cleanly"),
        "{}",
        c.edge().output()
    );
    py.write_line("").await;
    let _ = py.exit_code(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_writes_0600_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("keygen");
    let (path, public) = keygen(dir.path(), "k");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&path).unwrap();
    let again = std::process::Command::new(causeway_bin())
        .args(["keygen", "--private-key"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let shown = std::process::Command::new(causeway_bin())
        .args(["public-key", "--private-key"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), public);
}

/// kill -9 of the edge right after a delete was acknowledged: nothing of the
/// edge's memory survives, only its journal file. A new edge process on the
/// same configuration replays it and the delete is committed, with QUIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_an_acknowledged_delete_then_restart_commits_it() {
    if !require("python3", &["--version"], "python3") {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 2, false).await;
    let (mut py, uidl) = delete_and_wait(&env, &c).await;
    let (store, id) = c.store_of(&uidl);
    // The client proxy answered the DELE from its own journal; the kill
    // comes once the edge has taken the delete over (journaled, then sent
    // in its server session), not at whatever moment the machine's load
    // lets it get that far.
    let deadline = env.now() + Duration::from_secs(30);
    while !store
        .live_sessions()
        .iter()
        .any(|s| s.commands.iter().any(|c| c.starts_with("DELE")))
    {
        assert!(
            env.now() < deadline,
            "the edge never sent the DELE:\n{}",
            store.report()
        );
        env.sleep(Duration::from_millis(10)).await;
    }

    c.edge().signal("KILL");
    let code = c.edge().exit_code(&env).await;
    assert_eq!(code, -1, "killed by a signal, no exit code");
    // The edge's server session died with it: POP3 commits nothing then.
    env.sleep(Duration::from_millis(300)).await;
    assert!(
        store.is_present(SERVER_USER, id),
        "a server session cut without QUIT committed nothing:\n{}",
        store.report()
    );
    let journal = c.built.dir.join("edge.journal");
    let on_disk = std::fs::read(&journal).expect("the journal file survives");
    for secret in [DIRECT_PASSWORD, RELAYED_PASSWORD] {
        assert!(
            !on_disk
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "the journal holds a password in clear"
        );
    }

    // A new edge process on the same configuration (and journal).
    let edge_cfg = c.built.dir.join("edge.toml");
    let mut again = Proc::causeway(
        "edge (restarted)",
        &["edge", "--config", edge_cfg.to_str().unwrap()],
        &[("RUST_LOG", "debug")],
    );
    again.listening(&env).await;
    let deadline = env.now() + Duration::from_secs(30);
    while store.is_present(SERVER_USER, id) {
        assert!(
            env.now() < deadline,
            "the restarted edge did not commit the delete:\n{}\n{}",
            store.report(),
            again.output()
        );
        env.sleep(Duration::from_millis(50)).await;
    }
    // The killed edge's session ended abruptly (nothing committed); the
    // replaying one, which committed the delete, ended with QUIT.
    let sessions: Vec<_> = store
        .sessions()
        .into_iter()
        .filter(|s| s.commands.iter().any(|c| c.starts_with("DELE")))
        .collect();
    assert_eq!(sessions.len(), 2, "{}", store.report());
    assert_eq!(sessions[0].end_kind(), Some(EndKind::Abrupt));
    assert_eq!(
        sessions[1].end_kind(),
        Some(EndKind::Quit),
        "{}",
        store.report()
    );
    assert!(store.live_sessions().is_empty(), "{}", store.report());

    py.write_line("").await;
    let _ = py.exit_code(&env).await;
    again.signal("TERM");
    assert_eq!(again.exit_code(&env).await, 0, "{}", again.output());
    for role in [Role::Client, Role::Relay] {
        c.nodes.get(role).signal("TERM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_client_proxy_after_an_acknowledged_delete_then_restart_commits_it() {
    if !require("python3", &["--version"], "python3") {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 2, true).await;
    let (mut py, uidl) = delete_and_wait(&env, &c).await;
    let (store, id) = c.store_of(&uidl);
    // The proxy answered DELE from its journal; it dies before QUIT, most
    // likely before its batch left (it waits a second for company).
    c.client().signal("KILL");
    assert_eq!(c.client().exit_code(&env).await, -1);
    let client_cfg = c.built.dir.join("client.toml");
    let mut again = Proc::causeway(
        "client proxy (restarted)",
        &["client", "--config", client_cfg.to_str().unwrap()],
        &[("RUST_LOG", "debug")],
    );
    again.listening(&env).await;
    // No mail client comes back: the proxy carries the delete itself (or
    // the edge, if the batch had left, commits it when the line dies).
    let deadline = env.now() + Duration::from_secs(60);
    while store.is_present(SERVER_USER, id) {
        assert!(
            env.now() < deadline,
            "the acknowledged delete was not committed:\n{}\n{}",
            store.report(),
            again.output()
        );
        env.sleep(Duration::from_millis(50)).await;
    }
    // Only that message; every server session ended with QUIT.
    let left =
        c.direct.present_uidls(SERVER_USER).len() + c.relayed.present_uidls(SERVER_USER).len();
    assert_eq!(
        left,
        2 + 3 - 1,
        "{}\n{}",
        c.direct.report(),
        c.relayed.report()
    );
    let deadline = env.now() + Duration::from_secs(30);
    while !(c.direct.live_sessions().is_empty() && c.relayed.live_sessions().is_empty()) {
        assert!(env.now() < deadline, "a server session is still open");
        env.sleep(Duration::from_millis(50)).await;
    }
    for s in c.direct.sessions().into_iter().chain(c.relayed.sessions()) {
        if s.commands.iter().any(|c| c.starts_with("DELE")) {
            assert_eq!(s.end_kind(), Some(EndKind::Quit), "{s:?}");
        }
    }
    py.write_line("").await;
    let _ = py.exit_code(&env).await;
    again.signal("TERM");
    assert_eq!(again.exit_code(&env).await, 0, "{}", again.output());
    for role in [Role::Edge, Role::Relay] {
        c.nodes.get(role).signal("TERM");
    }
}
