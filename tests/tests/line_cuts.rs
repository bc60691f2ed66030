//! The line between client proxy and edge dies at the worst moments; the
//! mail servers must end up exactly as the mail client was told, with every
//! server session ended by QUIT and no lock left behind.
//!
//! Servers lock exclusively with a stale period of an hour, so a server
//! session left without QUIT would show as a held lock.

use std::time::Duration;

use causeway_net::Env;
use causeway_tests::rig::{LOCAL_PASSWORD, LOCAL_USER, Rig, RigSpec, USER};
use causeway_tests::{Dir, Py, python};

const LINE_LOST: &str = "-ERR [SYS/TEMP] Line to the edge was lost;";

fn login() -> String {
    format!(
        r#"
p.user("{LOCAL_USER}")
out("pass", text(p.pass_("{LOCAL_PASSWORD}")))
"#
    )
}

/// Long enough for the client proxy and the edge to notice a cut
/// connection (both see EOF at once on loopback).
async fn let_the_cut_be_seen() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_during_a_retr_body_leaves_the_message_unread() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let small = host.deliver(rig.env.rng(), 1, 2000);
    let big = host.deliver_incompressible(rig.env.rng(), 400 << 10);
    // Handshake, Welcome and the listing are a few hundred bytes: the cut
    // falls inside the only large thing the edge sends, the body.
    const CUT_AT: u64 = 64 << 10;
    rig.line.cut_after(Dir::Down, CUT_AT);
    let script = format!(
        "{}\nout(\"stat\", \"%d %d\" % p.stat())\nattempt(\"retr\", p.retr, 2)\nattempt(\"noop\", p.noop)\n",
        login()
    );
    let out = python::run(&rig.proxy, &script).await;

    assert_eq!(out.get("pass"), "+OK Logged in.");
    // The body is written on as it arrives (crates/client/src/tee.rs): a
    // cut inside it leaves the mail client a truncated reply and a closed
    // connection; before its first piece, the line-lost error.
    let err = out.get("retr.err");
    assert!(err.starts_with(LINE_LOST) || err == "-ERR EOF", "{err}");
    assert!(
        out.has("noop.err"),
        "the connection is closed after a cut: {out:?}"
    );
    assert_eq!(rig.line.bytes(Dir::Down), CUT_AT);
    assert!(
        host.store.message(USER, &big).unwrap().size > 4 * CUT_AT as usize,
        "the cut fell inside the body"
    );

    rig.settle().await;
    for uidl in small.iter().chain([&big]) {
        assert!(
            host.store.is_present(USER, uidl),
            "{uidl} deleted\n{}",
            rig.report()
        );
        assert!(
            !host.store.is_seen(USER, uidl),
            "{uidl} marked read though never delivered\n{}",
            rig.report()
        );
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_right_after_a_dele_was_acknowledged_still_deletes() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let uidls = host.deliver(rig.env.rng(), 3, 2000);
    let script = format!(
        "{}\nout(\"dele\", text(p.dele(1)))\npause(\"deleted\")\nattempt(\"quit\", p.quit)\n",
        login()
    );
    let mut py = Py::start(&rig.proxy, &script);
    assert_eq!(py.expect("dele").await, "+OK Marked to be deleted.");
    py.expect("pause").await;
    rig.line.cut_now();
    let_the_cut_be_seen().await;
    py.resume().await;
    let out = py.finish().await;
    let err = out.get("quit.err");
    assert!(
        err.starts_with(LINE_LOST),
        "QUIT after a cut must not look like success: {err}"
    );

    rig.settle().await;
    assert!(
        !host.store.is_present(USER, &uidls[0]),
        "the acknowledged delete was lost\n{}",
        rig.report()
    );
    for uidl in &uidls[1..] {
        assert!(
            host.store.is_present(USER, uidl) && !host.store.is_seen(USER, uidl),
            "{uidl} touched\n{}",
            rig.report()
        );
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_between_commands_fails_the_next_command_and_changes_nothing() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec {
        servers: vec![("HOST1", false), ("HOST2", true)],
        ..RigSpec::default()
    })
    .await;
    let before: Vec<_> = rig
        .hosts
        .iter()
        .map(|h| h.deliver(rig.env.rng(), 2, 2000))
        .collect();
    let script = format!(
        "{}\nout(\"stat\", \"%d %d\" % p.stat())\npause(\"idle\")\nattempt(\"noop\", p.noop)\n",
        login()
    );
    let mut py = Py::start(&rig.proxy, &script);
    py.expect("pause").await;
    rig.line.cut_now();
    let_the_cut_be_seen().await;
    py.resume().await;
    let out = py.finish().await;
    let err = out.get("noop.err");
    assert!(err.starts_with(LINE_LOST), "{err}");
    assert_eq!(
        rig.line.connections(),
        1,
        "the proxy must not reconnect on the mail client's behalf"
    );

    rig.settle().await;
    for (h, uidls) in rig.hosts.iter().zip(&before) {
        for uidl in uidls {
            assert!(
                h.store.is_present(USER, uidl) && !h.store.is_seen(USER, uidl),
                "{}:{uidl} touched",
                h.name
            );
        }
    }
    rig.assert_no_leaks();
}
