//! Whole sessions of an unchanged mail client (python `poplib`) through the
//! client proxy, the edge and (for some servers) the relay, checked against
//! what the model mail servers recorded.

use causeway_net::Env;
use causeway_tests::python;
use causeway_tests::rig::{LOCAL_PASSWORD, LOCAL_USER, Rig, RigSpec};

/// One message of the unified mailbox: (number, server, server's UIDL).
type Numbered = (u32, String, String);

/// Delivers three messages to every server; the unified numbering.
fn fill(rig: &Rig) -> Vec<Numbered> {
    let mut n = 0;
    let mut all = Vec::new();
    for h in &rig.hosts {
        for uidl in h.deliver(rig.env.rng(), 3, 3000) {
            n += 1;
            all.push((n, h.name.clone(), uidl));
        }
    }
    all
}

/// Reads the first message of every server, deletes the second, quits; then
/// checks every message on the servers: deleted ones gone, read ones seen,
/// the rest untouched; and that nothing leaked.
async fn read_delete_quit(spec: RigSpec) {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(spec).await;
    let all = fill(&rig);
    let retr: Vec<u32> = all.iter().filter(|m| m.0 % 3 == 1).map(|m| m.0).collect();
    let dele: Vec<u32> = all.iter().filter(|m| m.0 % 3 == 2).map(|m| m.0).collect();
    let script = format!(
        r#"
p.user("{LOCAL_USER}")
out("pass", text(p.pass_("{LOCAL_PASSWORD}")))
out("stat", "%d %d" % p.stat())
out("list", ",".join(text(l) for l in p.list()[1]))
out("uidl", ",".join(text(l) for l in p.uidl()[1]))
for n in {retr:?}:
    out("retr %d" % n, digest(p.retr(n)[1]))
for n in {dele:?}:
    out("dele %d" % n, text(p.dele(n)))
out("stat after", "%d %d" % p.stat())
out("quit", text(p.quit()))
"#
    );
    let out = python::run(&rig.proxy, &script).await;

    assert_eq!(out.get("welcome"), "+OK Causeway ready.");
    assert_eq!(out.get("pass"), "+OK Logged in.");
    let size = |m: &Numbered| {
        rig.host(&m.1)
            .store
            .message(causeway_tests::rig::USER, &m.2)
            .unwrap()
            .size
    };
    let total: usize = all.iter().map(size).sum();
    assert_eq!(out.get("stat"), format!("{} {total}", all.len()));
    let list: Vec<String> = all.iter().map(|m| format!("{} {}", m.0, size(m))).collect();
    assert_eq!(out.get("list"), list.join(","));
    let uidl: Vec<String> = all
        .iter()
        .map(|m| format!("{} {}:{}", m.0, m.1, m.2))
        .collect();
    assert_eq!(
        out.get("uidl"),
        uidl.join(","),
        "UIDLs are NAME:uidl, unique across servers"
    );
    for m in &all {
        let host = rig.host(&m.1);
        if retr.contains(&m.0) {
            assert_eq!(
                out.get(&format!("retr {}", m.0)),
                host.digest(&m.2),
                "RETR {} is byte-exact",
                m.0
            );
        }
        if dele.contains(&m.0) {
            assert_eq!(
                out.get(&format!("dele {}", m.0)),
                "+OK Marked to be deleted."
            );
        }
    }
    let left: Vec<&Numbered> = all.iter().filter(|m| !dele.contains(&m.0)).collect();
    let left_size: usize = left.iter().map(|m| size(m)).sum();
    assert_eq!(out.get("stat after"), format!("{} {left_size}", left.len()));
    assert_eq!(out.get("quit"), "+OK Logging out, messages deleted.");
    // The client proxy waits for the handshake, Hello/Welcome and
    // Quit/Bye: STAT, LIST and UIDL cost nothing on the line, nor does a
    // RETR of a body streamed ahead of demand (it waits for the stream) or
    // a DELE (answered from the proxy's journal, sent in a batch). A RETR
    // whose body the stream did not bring in time may cost one.
    let waits = rig.line_waits();
    assert!(
        (3..=3 + retr.len() as u64).contains(&waits),
        "{waits} round trips waited for on the line; 3 at least"
    );
    let read: usize = all.iter().filter(|m| retr.contains(&m.0)).map(size).sum();
    eprintln!(
        "figures: {} servers, {} messages, {} RETR, {} DELE: {} round trips on the line; \
         RETR'd {read} octets of mail; the line carried {} octets up, {} down",
        rig.hosts.len(),
        all.len(),
        retr.len(),
        dele.len(),
        rig.line.round_trips(),
        rig.line.bytes(causeway_tests::Dir::Up),
        rig.line.bytes(causeway_tests::Dir::Down),
    );

    rig.settle().await;
    for m in &all {
        let store = &rig.host(&m.1).store;
        let user = causeway_tests::rig::USER;
        let (present, seen) = (store.is_present(user, &m.2), store.is_seen(user, &m.2));
        let want = (!dele.contains(&m.0), retr.contains(&m.0));
        assert_eq!(
            (present, seen),
            want,
            "message {} ({}:{}) (present, seen)\n{}",
            m.0,
            m.1,
            m.2,
            rig.report()
        );
    }
    rig.assert_no_leaks();
    let ended: Vec<_> = rig.edge.sessions().into_iter().map(|s| s.end).collect();
    assert_eq!(
        ended,
        [Some(causeway_edge::SessionEnd::Quit)],
        "one edge session, ended by Quit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_direct() {
    read_delete_quit(RigSpec {
        servers: vec![("HOST1", false)],
        ..RigSpec::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_through_the_relay() {
    read_delete_quit(RigSpec {
        servers: vec![("HOST1", true)],
        ..RigSpec::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_in_one_unified_mailbox() {
    read_delete_quit(RigSpec {
        servers: vec![("HOST1", false), ("HOST2", true)],
        ..RigSpec::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_local_password_never_reaches_a_mail_server() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    fill(&rig);
    let script = format!(
        r#"
p.user("{LOCAL_USER}")
attempt("pass", p.pass_, "not-{LOCAL_PASSWORD}")
"#
    );
    let out = python::run(&rig.proxy, &script).await;
    assert_eq!(out.get("pass.err"), "-ERR [AUTH] Authentication failed.");
    // The proxy reached the edge before its greeting (so that an edge out of
    // reach is a connection failure), but never handed it the user
    // information: no mail server was contacted.
    assert_eq!(rig.line.connections(), 1);
    assert!(
        rig.hosts[0].store.sessions().is_empty(),
        "a mail server was contacted"
    );
}

/// One of two servers refuses the edge's login: the session goes on with
/// the other, and its QUIT is `+OK` (nothing was owed on the one left out;
/// an `-ERR` there would tell the mail client its deletes were not done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_left_out_at_login_does_not_fail_the_quit() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::two_servers()).await;
    let all = fill(&rig);
    rig.hosts[1]
        .store
        .add_user(causeway_tests::rig::USER, "changed-meanwhile");
    let script = format!(
        r#"
p.user("{LOCAL_USER}")
out("pass", text(p.pass_("{LOCAL_PASSWORD}")))
out("stat", "%d" % p.stat()[0])
out("dele", text(p.dele(1)))
out("quit", text(p.quit()))
"#
    );
    let out = python::run(&rig.proxy, &script).await;
    assert_eq!(out.get("stat"), "3", "HOST1's messages only: {out:?}");
    assert_eq!(
        out.get("quit"),
        "+OK Logging out, messages deleted.",
        "{out:?}"
    );
    rig.settle().await;
    let user = causeway_tests::rig::USER;
    assert!(!rig.hosts[0].store.is_present(user, &all[0].2));
    assert!(
        all[3..]
            .iter()
            .all(|m| rig.hosts[1].store.is_present(user, &m.2))
    );
    rig.assert_no_leaks();
}
