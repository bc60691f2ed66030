//! SIGHUP at the edge and at the relay: a new allow list applies without a
//! restart, and a key taken off it ends what that key holds.

use super::*;

/// Replaces `role`'s allow list (the line starting with `list`) by another
/// key (an empty list is refused as a mistake) and sends SIGHUP; the
/// node's file and its text before.
fn disallow(c: &mut Chain, role: Role, list: &str) -> (std::path::PathBuf, String) {
    let file = c.built.dir.join(&format!("{role}.toml"));
    let before = std::fs::read_to_string(&file).unwrap();
    let line = before
        .lines()
        .find(|l| l.starts_with(list))
        .unwrap_or_else(|| panic!("no {list} in {}", file.display()))
        .to_owned();
    let dir = temp_dir("sighup");
    let (_, other) = keygen(dir.path(), "other");
    let without = before.replace(&line, &format!("{list} = [\"{other}\"]"));
    std::fs::write(&file, &without).unwrap();
    c.nodes.get(role).signal("HUP");
    (file, before)
}

/// Writes `text` back to `file`, sends SIGHUP and waits for the node to
/// say it reloaded a second time; then checks it was never restarted.
async fn allow_again(
    env: &TokioEnv,
    c: &mut Chain,
    role: Role,
    file: &std::path::Path,
    text: &str,
) {
    std::fs::write(file, text).unwrap();
    let node = c.nodes.get(role);
    node.signal("HUP");
    let deadline = env.now() + Duration::from_secs(30);
    while node.output().matches("configuration reloaded").count() < 2 {
        assert!(env.now() < deadline, "{}", node.output());
        env.sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        node.output().matches("listening").count(),
        1,
        "the {role} was not restarted"
    );
}

/// SIGHUP with the client proxy's key gone from `allowed_clients`: the
/// running session ends as at shutdown (its acknowledged delete committed,
/// every server session QUIT) and the next one is refused as a key
/// problem; with the key back and another SIGHUP, sessions work again, all
/// without restarting the edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_allow_list_and_ends_a_removed_clients_session() {
    if !require("python3", &["--version"], "python3") {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 2, false).await;
    let (mut py, uidl) = delete_and_wait(&env, &c).await;
    let (store, id) = c.store_of(&uidl);
    let (file, allowed) = disallow(&mut c, Role::Edge, "allowed_clients");
    c.edge()
        .wait_for(&env, "removed from allowed_clients: ending its session")
        .await;
    let deadline = env.now() + Duration::from_secs(30);
    while store.is_present(SERVER_USER, id) && env.now() < deadline {
        env.sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !store.is_present(SERVER_USER, id),
        "the acknowledged delete was committed:\n{}",
        store.report()
    );
    for s in store.sessions().into_iter().filter(|s| s.user.is_some()) {
        assert_eq!(s.end_kind(), Some(EndKind::Quit), "{}", store.report());
    }
    py.write_line("").await;
    let _ = py.exit_code(&env).await;
    let out = c.edge().output();
    assert!(out.contains("removed_clients=1"), "{out}");

    // Refused now, as a key problem; then allowed again after a reload.
    let refused = login(&env, &c).await;
    assert!(refused.contains("login failed"), "{refused}");
    let edge = scrape(&env, c.edge(), "/metrics").await;
    let not_allowed = "causeway_edge_handshake_failures_total{cause=\"not_allowed\"}";
    assert!(value(&edge, not_allowed) >= 1.0, "{edge}");
    allow_again(&env, &mut c, Role::Edge, &file, &allowed).await;
    let again = login(&env, &c).await;
    assert!(again.contains("login ok"), "{again}");
}

/// SIGHUP with the edge's key gone from the relay's `allowed_edges`: the
/// relayed server's session ends at once, uncommitted (RSET, QUIT: nothing
/// the edge did not ask to commit), while the direct server goes on; new
/// sessions see the relayed server out of reach, the relay counting the
/// edge's handshakes as `other_key`; with the key back and another
/// SIGHUP the relayed mail is there again, all without restarting the
/// relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_at_the_relay_ends_a_removed_edges_link_until_it_is_allowed_again() {
    if !require("python3", &["--version"], "python3") {
        return;
    }
    let env = TokioEnv::new();
    let mut c = chain(&env, 2, false).await;
    let relayed_before = c.relayed.present_uidls(SERVER_USER).len();
    let (mut py, _) = delete_and_wait(&env, &c).await;
    let (file, allowed) = disallow(&mut c, Role::Relay, "allowed_edges");
    c.relay()
        .wait_for(&env, "removed from allowed_edges: ending its link")
        .await;
    let deadline = env.now() + Duration::from_secs(30);
    while !c.relayed.live_sessions().is_empty() {
        assert!(env.now() < deadline, "{}", c.relayed.report());
        env.sleep(Duration::from_millis(50)).await;
    }
    for s in c
        .relayed
        .sessions()
        .into_iter()
        .filter(|s| s.user.is_some())
    {
        assert_eq!(s.end_kind(), Some(EndKind::Quit), "{}", c.relayed.report());
    }
    assert_eq!(c.relayed.present_uidls(SERVER_USER).len(), relayed_before);
    assert!(c.relay().output().contains("removed_edges=1"));
    py.write_line("").await;
    let _ = py.exit_code(&env).await;

    // HOST1 alone now (2 messages, 1 deleted), then both again.
    let alone = login(&env, &c).await;
    assert!(alone.contains("login ok 1"), "{alone}");
    // Noise KK: the relay knows a key only by trying it, so an edge whose
    // key it no longer holds looks like one that pinned another relay key.
    let relay = scrape(&env, c.relay(), "/metrics").await;
    let unknown = "causeway_relay_handshake_failures_total{cause=\"other_key\"}";
    assert!(value(&relay, unknown) >= 1.0, "{relay}");
    allow_again(&env, &mut c, Role::Relay, &file, &allowed).await;
    let both = login(&env, &c).await;
    assert!(
        both.contains(&format!("login ok {}", 1 + relayed_before)),
        "{both}"
    );
}

/// One python login at the client proxy: `login ok N` (N messages listed)
/// or `login failed ...`.
async fn login(env: &TokioEnv, c: &Chain) -> String {
    let script = r#"
import poplib, sys
try:
    p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=60)
    p.user(sys.argv[3])
    p.pass_(sys.argv[4])
    n = p.stat()[0]
    p.quit()
    print("login ok", n, flush=True)
except Exception as e:
    print("login failed", e, flush=True)
"#;
    let (host, port) = c.proxy.rsplit_once(':').unwrap();
    let mut py = Proc::spawn(
        "python",
        std::path::Path::new("python3"),
        &["-c", script, host, port, LOCAL_USER, LOCAL_PASSWORD],
        &[],
    );
    let out = py.wait_for(env, "login").await;
    let _ = py.exit_code(env).await;
    out
}
