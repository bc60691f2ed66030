//! The line between client proxy and edge dies at the worst moments; the
//! mail servers must end up exactly as the mail client was told, with every
//! server session ended by QUIT and no lock left behind.
//!
//! Servers lock exclusively with a stale period of an hour, so a server
//! session left without QUIT would show as a held lock.
//!
//! Most tests here turn session resume off (`timeouts.resume = 0`): they
//! judge what a cut that reaches the mail client does (resume off, or
//! refused). The last one keeps it on and judges that the mail client does
//! not see the cut at all.

use std::time::Duration;

use causeway_client::Timeouts;
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
    let rig = Rig::start(RigSpec::no_resume()).await;
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
    let rig = Rig::start(RigSpec::no_resume()).await;
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
    a_cut_between_commands_without_resume(RigSpec::no_resume()).await;
}

/// Resume off at the client proxy alone: its `Hello` says so, and the
/// edge (resume window on) ends the session at the cut instead of keeping
/// it, with both maildrops locked, for a resume that never comes (the
/// rig's settle fails if a session is still open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_proxy_that_does_not_resume_leaves_no_session_waiting_at_the_edge() {
    a_cut_between_commands_without_resume(RigSpec {
        client_timeouts: Timeouts {
            resume: Duration::ZERO,
            ..Timeouts::default()
        },
        ..RigSpec::default()
    })
    .await;
}

async fn a_cut_between_commands_without_resume(spec: RigSpec) {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec {
        servers: vec![("HOST1", false), ("HOST2", true)],
        ..spec
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

/// The same cut inside a RETR's body with resume on (the default): the
/// client proxy reconnects, the body continues from the byte it held, and
/// the mail client gets the whole message, its next command answered, and
/// the message marked read once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_during_a_retr_body_is_resumed_and_the_mail_client_sees_nothing() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    host.deliver(rig.env.rng(), 1, 2000);
    let big = host.deliver_incompressible(rig.env.rng(), 400 << 10);
    const CUT_AT: u64 = 64 << 10;
    rig.line.cut_after(Dir::Down, CUT_AT);
    let script = format!(
        "{}\nout(\"retr\", digest(p.retr(2)[1]))\nout(\"noop\", text(p.noop()))\nout(\"quit\", text(p.quit()))\n",
        login()
    );
    let out = python::run(&rig.proxy, &script).await;
    assert_eq!(out.get("retr"), host.digest(&big), "{out:?}");
    assert!(out.get("noop").starts_with("+OK"), "{out:?}");
    assert!(out.get("quit").starts_with("+OK"), "{out:?}");
    assert_eq!(rig.line.connections(), 2, "one cut, one resume");
    let size = host.store.message(USER, &big).unwrap().size as u64;
    assert!(
        rig.line.bytes(Dir::Down) < size + CUT_AT / 2,
        "the body continued from its offset, not from its start: {} B down for a {size} B body",
        rig.line.bytes(Dir::Down)
    );
    rig.settle().await;
    assert!(host.store.is_seen(USER, &big), "{}", rig.report());
    rig.assert_no_leaks();
}

/// A cut in the middle of a stream of ordinary (compressible) mail: the
/// resumed stream starts primed with the plaintext the client proxy proves
/// it holds of the cut one's compression frame, and every body still
/// arrives byte for byte (a primer that differed at the two ends would
/// corrupt them, not just cost bytes).
///
/// Whether the edge's frame is still open at the cut is a matter of
/// timing on real sockets: on a loaded machine the edge may have streamed
/// every body ahead into the kernel's buffers, and ended its frame, before
/// the forwarder passed 20 KiB (then the resume is rightly not primed). So
/// the conversation is run again, up to five times, until a resume is
/// primed; every run must deliver every body whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_is_primed_with_the_cut_ones_history_and_every_body_arrives_whole() {
    if !python::available().await {
        return;
    }
    for attempt in 1..=5 {
        if cut_in_a_stream_of_ordinary_mail().await {
            return;
        }
        eprintln!("run {attempt}: the edge's frame had ended before the cut; again");
    }
    panic!("no resume was primed in five runs");
}

/// One run of the test above: whether the resume was primed.
async fn cut_in_a_stream_of_ordinary_mail() -> bool {
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let uidls = host.deliver(rig.env.rng(), 40, 6000);
    // About a third of the mailbox (which compresses to about a quarter)
    // has crossed when the line is cut.
    rig.line.cut_after(Dir::Down, 20 << 10);
    let mut script = login();
    for i in 1..=uidls.len() {
        script.push_str(&format!("out(\"retr{i}\", digest(p.retr({i})[1]))\n"));
    }
    script.push_str("out(\"quit\", text(p.quit()))\n");
    let out = python::run(&rig.proxy, &script).await;
    for (i, uidl) in uidls.iter().enumerate() {
        assert_eq!(
            out.get(&format!("retr{}", i + 1)),
            host.digest(uidl),
            "{out:?}"
        );
    }
    assert!(out.get("quit").starts_with("+OK"), "{out:?}");
    assert_eq!(rig.line.connections(), 2, "one cut, one resume");
    rig.settle().await;
    rig.assert_no_leaks();
    rig.edge.resumes_primed() == 1
}
