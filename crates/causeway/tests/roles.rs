//! The real binary in each role, as separate processes on loopback, with
//! model mail servers in the test process and python's `poplib` as the mail
//! client.

mod common;

use std::path::Path;
use std::time::Duration;

use causeway_mailserver::{EndKind, MailStore, generate};
use causeway_net::{Env, TokioEnv};
use common::{Proc, TempDir, have, keygen, mail_server};

const LOCAL_USER: &str = "me";
const LOCAL_PASSWORD: &str = "Local-Pa55word-q7Zr";
const SERVER_USER: &str = "alice";
const DIRECT_PASSWORD: &str = "Direct-Serv3r-Pw-k2Lx";
const RELAYED_PASSWORD: &str = "Relayed-Serv3r-Pw-9mWt";
/// A phrase in one message body: must never appear in a log.
const BODY_MARKER: &str = "Zebra-Quartz-Harbour-Body-Marker-1187";

struct Chain {
    _dir: TempDir,
    relay: Proc,
    edge: Proc,
    client: Proc,
    proxy: String,
    direct: MailStore,
    relayed: MailStore,
    private_keys: Vec<String>,
}

fn write_edge(
    dir: &Path,
    key: &Path,
    client_pub: &str,
    direct: &str,
    relay: Option<(&str, &str)>,
) -> String {
    let mut t = format!(
        r#"role = "edge"
listen = "127.0.0.1:0"
private_key_file = "{}"
journal = "{}"
allowed_clients = ["{client_pub}"]
allowed_servers = ["{direct}"]
shutdown_deadline = "20s"

[timeouts]
retry_min = "100ms"
retry_max = "1s"
"#,
        key.display(),
        dir.join("edge.journal").display()
    );
    if let Some((addr, pk)) = relay {
        t.push_str(&format!(
            "\n[[relay]]\nname = \"R1\"\naddress = \"{addr}\"\npublic_key = \"{pk}\"\n"
        ));
    }
    let p = dir.join("edge.toml");
    std::fs::write(&p, t).unwrap();
    p.display().to_string()
}

/// Starts relay, edge and client proxy processes (RUST_LOG=trace) over two
/// model servers: one direct, one through the relay. With `relayed` false,
/// only the direct server and no relay process... (always started).
async fn chain(env: &TokioEnv, messages: usize) -> Chain {
    let dir = TempDir::new(env, "roles");
    let (direct, direct_addr) = mail_server(env, SERVER_USER, DIRECT_PASSWORD).await;
    let (relayed, relayed_addr) = mail_server(env, SERVER_USER, RELAYED_PASSWORD).await;
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

    let (edge_key, edge_pub) = keygen(&dir.0, "edge");
    let (relay_key, relay_pub) = keygen(&dir.0, "relay");
    let (client_key, client_pub) = keygen(&dir.0, "client");
    let private_keys = [&edge_key, &relay_key, &client_key]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().trim().to_owned())
        .collect();
    let trace = [("RUST_LOG", "trace")];

    let relay_cfg = dir.write(
        "relay.toml",
        &format!(
            r#"role = "relay"
listen = "127.0.0.1:0"
private_key_file = "relay.key"
allowed_edges = ["{edge_pub}"]
allowed_servers = ["{relayed_addr}"]
shutdown_deadline = "20s"
"#
        ),
    );
    let mut relay = Proc::causeway(
        "relay",
        &["relay", "--config", relay_cfg.to_str().unwrap()],
        &trace,
    );
    let relay_addr = relay.listening(env).await;

    let edge_cfg = write_edge(
        &dir.0,
        &edge_key,
        &client_pub,
        &direct_addr,
        Some((&relay_addr, &relay_pub)),
    );
    let mut edge = Proc::causeway("edge", &["edge", "--config", &edge_cfg], &trace);
    let edge_addr = edge.listening(env).await;

    let (dh, dp) = direct_addr.rsplit_once(':').unwrap();
    let (rh, rp) = relayed_addr.rsplit_once(':').unwrap();
    dir.write("direct.password", &format!("{DIRECT_PASSWORD}\n"));
    let client_cfg = dir.write(
        "client.toml",
        &format!(
            r#"role = "client"
listen = "127.0.0.1:0"
user = "{LOCAL_USER}"
password_env = "TEST_LOCAL_PASSWORD"
edge = "{edge_addr}"
edge_public_key = "{edge_pub}"
private_key_file = "{}"
shutdown_deadline = "20s"

[[server]]
name = "HOST1"
host = "{dh}"
port = {dp}
user = "{SERVER_USER}"
password_file = "direct.password"

[[server]]
name = "HOST2"
host = "{rh}"
port = {rp}
user = "{SERVER_USER}"
password = "{RELAYED_PASSWORD}"
relay = "R1"
"#,
            client_key.display()
        ),
    );
    let mut client = Proc::causeway(
        "client",
        &["client", "--config", client_cfg.to_str().unwrap()],
        &[
            ("RUST_LOG", "trace"),
            ("TEST_LOCAL_PASSWORD", LOCAL_PASSWORD),
        ],
    );
    let proxy = client.listening(env).await;
    Chain {
        _dir: dir,
        relay,
        edge,
        client,
        proxy,
        direct,
        relayed,
        private_keys,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_carry_mail_and_log_no_secret() {
    if !have("python3", "python3").await {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 3).await;

    let (host, port) = c.proxy.rsplit_once(':').unwrap();
    let mut py = Proc::spawn(
        "python",
        "python3",
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

    // Stop the nodes the way an operator does.
    for p in [&c.client, &c.edge, &c.relay] {
        p.signal("TERM");
    }
    for p in [&mut c.client, &mut c.edge, &mut c.relay] {
        let code = p.exit_code(&env).await;
        assert_eq!(code, 0, "{} exited {code}:\n{}", p.name, p.output());
    }

    // The store: the deleted message is gone, every other one read, every
    // server session ended with QUIT.
    let (dhost, duidl) = store_uidl(&deleted);
    for u in &uidls {
        let (h, id) = store_uidl(u);
        let store = if h == "HOST1" { &c.direct } else { &c.relayed };
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
    for p in [&c.relay, &c.edge, &c.client] {
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
    assert!(c.edge.output().contains("TRACE"), "{}", c.edge.output());
    // The session ids the edge gave out are on the client's and edge's lines.
    let edge_out = c.edge.output();
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
        c.client.output().contains(&id),
        "client log lacks session {id}"
    );
    // Not only where the session opens: every later line about it too.
    let client_out = c.client.output();
    let bye = client_out
        .lines()
        .find(|l| l.contains("edge session ended with Bye"))
        .unwrap_or_else(|| panic!("no Bye line:\n{client_out}"));
    assert!(bye.contains(&id), "the Bye line lacks session {id}: {bye}");
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
        "python3",
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
    if !have("python3", "python3").await {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 2).await;
    let (mut py, uidl) = delete_and_wait(&env, &c).await;
    let (h, id) = store_uidl(&uidl);
    let store = if h == "HOST1" { &c.direct } else { &c.relayed };
    assert!(
        store.is_present(SERVER_USER, id),
        "not committed before QUIT"
    );

    // The mail client has +OK for DELE and has not said QUIT: stop the edge.
    c.edge.signal("TERM");
    let code = c.edge.exit_code(&env).await;
    assert_eq!(code, 0, "edge exit code; output:\n{}", c.edge.output());
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
        c.edge.output().contains("shut down cleanly"),
        "{}",
        c.edge.output()
    );
    py.write_line("").await;
    let _ = py.exit_code(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_writes_0600_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let env = TokioEnv::new();
    let dir = TempDir::new(&env, "keygen");
    let (path, public) = keygen(&dir.0, "k");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&path).unwrap();
    let again = std::process::Command::new(common::BIN)
        .args(["keygen", "--private-key"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let shown = std::process::Command::new(common::BIN)
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
    if !have("python3", "python3").await {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 2).await;
    let (mut py, uidl) = delete_and_wait(&env, &c).await;
    let (h, id) = store_uidl(&uidl);
    let store = if h == "HOST1" { &c.direct } else { &c.relayed };

    c.edge.signal("KILL");
    let code = c.edge.exit_code(&env).await;
    assert_eq!(code, -1, "killed by a signal, no exit code");
    // The edge's server session died with it: POP3 commits nothing then.
    env.sleep(Duration::from_millis(300)).await;
    assert!(
        store.is_present(SERVER_USER, id),
        "a server session cut without QUIT committed nothing:\n{}",
        store.report()
    );
    let journal = c._dir.0.join("edge.journal");
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
    let edge_cfg = c._dir.0.join("edge.toml");
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
    for p in [&c.client, &c.relay] {
        p.signal("TERM");
    }
}
