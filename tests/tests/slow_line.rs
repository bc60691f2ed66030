//! A slow line is normal: a body that takes far longer to cross the client's
//! line than any timeout of any node still arrives whole, is marked read
//! once, and the session ends cleanly. Every deadline is on silence, never
//! on size (`causeway_wire::link`, `causeway_pop3::client::driver`).
//!
//! The line here is a paced forwarder at 5,000 bytes/s (40 kbit/s) with
//! 300 ms of delay each way, and the nodes' timeouts are cut to a few
//! seconds, so a 100 KiB body (about 21 s on this line) outlasts each of
//! them several times over, as a 1 MB attachment outlasts the production
//! defaults on a GPRS line.

use std::time::Duration;

use causeway_client::Timeouts;
use causeway_edge::EdgeTimeouts;
use causeway_net::Env;
use causeway_tests::rig::{LOCAL_PASSWORD, LOCAL_USER, Rig, RigSpec, USER};
use causeway_tests::{Pace, python};

/// The paced line, and timeouts of a few seconds at each node.
fn slow_line() -> RigSpec {
    RigSpec {
        line_pace: Some(Pace {
            bytes_per_sec: 5_000,
            delay: Duration::from_millis(300),
        }),
        client_timeouts: Timeouts {
            request: Duration::from_secs(5),
            ping_interval: Duration::from_secs(2),
            ..Timeouts::default()
        },
        edge_timeouts: EdgeTimeouts {
            hello: Duration::from_secs(3),
            client_idle: Duration::from_secs(6),
            ..EdgeTimeouts::default()
        },
        ..RigSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_every_timeout_arrives_whole_and_is_marked_read_once() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(slow_line()).await;
    let host = &rig.hosts[0];
    let big = host.deliver_incompressible(rig.env.rng(), 100 << 10);
    let script = format!(
        "p.user(\"{LOCAL_USER}\")\nout(\"pass\", text(p.pass_(\"{LOCAL_PASSWORD}\")))\n\
         out(\"retr\", digest(p.retr(1)[1]))\nout(\"quit\", text(p.quit()))\n"
    );
    let started = tokio::time::Instant::now();
    let out = python::run(&rig.proxy, &script).await;
    let took = started.elapsed();

    assert_eq!(out.get("retr"), host.digest(&big), "{out:?}");
    assert!(out.get("quit").starts_with("+OK"), "{out:?}");
    assert!(
        took > Duration::from_secs(15),
        "the body crossed the paced line in {took:?}: the line was not slow"
    );
    rig.settle().await;
    let m = host.store.message(USER, &big).expect("still on the server");
    assert!(m.seen_by.is_some(), "not marked read\n{}", rig.report());
    assert_eq!(rig.line.connections(), 1, "the line was never re-opened");
    rig.assert_no_leaks();
}

/// The same body to an IMAP mail client that gives up after 5 s of
/// silence (imaplib with a socket timeout): the IMAP front sends the body
/// once it is whole, and until then tells the client every second that the
/// fetch goes on, so the client waits the 20 s the line needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_client_that_times_out_on_silence_waits_for_a_slow_body() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(slow_line()).await;
    let host = &rig.hosts[0];
    let big = host.deliver_incompressible(rig.env.rng(), 100 << 10);
    let script = format!(
        "p.sock.settimeout(5)\nattempt(\"login\", p.login, \"{LOCAL_USER}\", \"{LOCAL_PASSWORD}\")\n\
         attempt(\"select\", p.select, \"INBOX\")\n\
         out(\"read.digest\", digest(attempt(\"read\", p.fetch, \"1\", \"(BODY[])\")))\n\
         attempt(\"logout\", p.logout)\n"
    );
    let started = tokio::time::Instant::now();
    let out = python::run_imap(&rig.imap, &script).await;
    let took = started.elapsed();
    assert_eq!(out.get("read.digest"), host.digest(&big), "{out:?}");
    assert!(out.get("logout").starts_with("BYE"), "{out:?}");
    assert!(
        took > Duration::from_secs(15),
        "the body crossed the paced line in {took:?}: the line was not slow"
    );
    rig.settle().await;
    let m = host.store.message(USER, &big).expect("still on the server");
    assert!(m.seen_by.is_some(), "not marked read\n{}", rig.report());
    rig.assert_no_leaks();
}
