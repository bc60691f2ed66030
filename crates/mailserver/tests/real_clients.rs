//! Mail clients we did not write, against the model server on loopback:
//! Python's `poplib` and `curl pop3://`. If they accept our bytes and we
//! accept theirs, the model is a POP3 server, not just our idea of one.

use std::time::Duration;

use causeway_mailserver::{MailStore, ServerConfig, generate, serve};
use causeway_net::{Env, EnvRng, Listener, TokioEnv};
use sha2::{Digest, Sha256};
use tokio::process::Command;

/// Whether `tool` can run. Missing tools fail under CI and skip elsewhere.
async fn have(tool: &str, package: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required in CI; install the {package} package");
        }
        eprintln!("SKIPPED: {tool} not found; install the {package} package to run this test");
    }
    ok
}

/// Starts the server with alice's maildrop holding generated mail; returns
/// the store, the port and the UIDLs in order.
async fn start(env: &TokioEnv, n: u64) -> (MailStore, u16, Vec<String>) {
    let store = MailStore::new();
    store.add_user("alice", "secret");
    let rng = EnvRng::from_seed([7; 32]);
    let uidls = (0..n)
        .map(|i| {
            let body = generate::message(&rng, i, 1500 + 700 * i as usize);
            store.deliver("alice", body).unwrap().to_string()
        })
        .collect();
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(serve(
        env.clone(),
        l,
        store.clone(),
        ServerConfig::default(),
    ));
    (store, port, uidls)
}

/// Runs a client program to completion (bounded), returns its stdout.
async fn run(env: &TokioEnv, cmd: &mut Command) -> Vec<u8> {
    cmd.kill_on_drop(true);
    let out = env
        .timeout(Duration::from_secs(30), "the client program", cmd.output())
        .await
        .expect("client program hung")
        .expect("client program did not start");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const POPLIB_SCRIPT: &str = r#"
import hashlib, poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=20)
p.user("alice"); p.pass_("secret")
_, listing, _ = p.list()
_, uidls, _ = p.uidl()
print("LIST", " ".join(l.decode() for l in listing))
print("UIDL", " ".join(l.decode() for l in uidls))
_, lines, octets = p.retr(1)
body = b"\r\n".join(lines) + b"\r\n"
print("RETR1", hashlib.sha256(body).hexdigest(), len(body))
_, lines, _ = p.top(2, 0)
print("TOP2", len(lines))
p.dele(3)
print("QUIT", p.quit().decode())
"#;

#[tokio::test]
async fn python_poplib_lists_retrieves_and_deletes() {
    if !have("python3", "python3").await {
        return;
    }
    let env = TokioEnv::new();
    let (store, port, uidls) = start(&env, 4).await;
    let out = run(
        &env,
        Command::new("python3")
            .arg("-c")
            .arg(POPLIB_SCRIPT)
            .arg(port.to_string()),
    )
    .await;
    let out = String::from_utf8(out).unwrap();
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .to_owned()
    };
    let msgs = store.messages("alice");
    let want_list: Vec<_> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}", i + 1, m.size))
        .collect();
    assert_eq!(field("LIST"), want_list.join(" "));
    let want_uidl: Vec<_> = uidls
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{} {u}", i + 1))
        .collect();
    assert_eq!(field("UIDL"), want_uidl.join(" "));
    assert_eq!(
        field("RETR1"),
        format!("{} {}", msgs[0].sha256, msgs[0].size),
        "poplib got other bytes than were delivered"
    );
    let body2 = store.body("alice", &uidls[1]).unwrap();
    let header_lines = body2
        .split(|&b| b == b'\n')
        .take_while(|l| *l != b"\r")
        .count();
    assert_eq!(field("TOP2"), (header_lines + 1).to_string());
    assert_eq!(field("QUIT"), "+OK Logging out, messages deleted.");

    // The server's own account of it.
    env.sleep(Duration::from_millis(100)).await;
    let r = store.report();
    assert!(store.is_seen("alice", &uidls[0]), "{r}");
    assert!(!store.is_seen("alice", &uidls[1]), "TOP marked seen: {r}");
    assert!(!store.is_present("alice", &uidls[2]), "{r}");
    assert_eq!(store.present_uidls("alice").len(), 3, "{r}");
    assert_eq!(store.sessions().len(), 1, "{r}");
    assert!(store.live_sessions().is_empty(), "{r}");
}

#[tokio::test]
async fn curl_retrieves_byte_exact_lists_uidls_tops_and_deletes() {
    if !have("curl", "curl").await {
        return;
    }
    let env = TokioEnv::new();
    let (store, port, uidls) = start(&env, 3).await;
    let url = |path: &str| format!("pop3://127.0.0.1:{port}/{path}");
    let curl = |path: &str, extra: &[&str]| {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "20", "-u", "alice:secret"])
            .arg(url(path))
            .args(extra);
        c
    };

    for (i, uidl) in uidls.iter().enumerate() {
        let got = run(&env, &mut curl(&(i + 1).to_string(), &[])).await;
        let want = store.body("alice", uidl).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&got)),
            hex::encode(Sha256::digest(&want)),
            "RETR {} via curl differs ({} vs {} octets)",
            i + 1,
            got.len(),
            want.len()
        );
    }

    let listing = run(&env, &mut curl("", &["-X", "UIDL"])).await;
    let want: String = uidls
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{} {u}\r\n", i + 1))
        .collect();
    assert_eq!(String::from_utf8_lossy(&listing), want);

    let top = run(&env, &mut curl("", &["-X", "TOP 1 0"])).await;
    let body = store.body("alice", &uidls[0]).unwrap();
    let header_end = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(top, &body[..header_end]);

    run(&env, &mut curl("2", &["-X", "DELE", "-I"])).await;
    env.sleep(Duration::from_millis(100)).await;
    let r = store.report();
    assert!(!store.is_present("alice", &uidls[1]), "{r}");
    assert_eq!(store.present_uidls("alice").len(), 2, "{r}");
    // Each curl RETR session marked its message seen; the DELE session
    // (which ran no RETR) marked nothing.
    let sessions = store.sessions();
    for (i, u) in uidls.iter().enumerate() {
        let m = store.message("alice", u).unwrap();
        assert_eq!(m.seen_by, Some(sessions[i].id), "{r}");
    }
    let dele = sessions.last().unwrap();
    assert!(dele.marked_seen.is_empty(), "{r}");
    assert_eq!(dele.deleted, [uidls[1].as_str()], "{r}");
    assert!(store.live_sessions().is_empty(), "{r}");
}
