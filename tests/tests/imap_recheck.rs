//! An IMAP client that stays connected (python `imaplib`) while the
//! client proxy lists its folder again in a new session behind
//! (`imap_front::recheck`): new mail shows, a server out of reach is not
//! taken for deletions, and read marks stay true to the servers: one the
//! old session behind took down unproved is sent again, and a `\Seen`
//! shown for a part is never taken for a mark made. Judged on the model
//! servers' own records.

use std::time::Duration;

use causeway_net::Env;
use causeway_tests::rig::{Rig, RigSpec, USER};
use causeway_tests::{Py, python};

fn login() -> String {
    python::imap_login_select("INBOX")
}

/// `spec` with the folder listed again when asked a second or more after
/// the last listing.
fn rechecking(spec: RigSpec) -> RigSpec {
    let client_timeouts = causeway_client::Timeouts {
        imap_recheck: Duration::from_secs(1),
        ..spec.client_timeouts.clone()
    };
    RigSpec {
        client_timeouts,
        ..spec
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_client_sees_new_mail_and_keeps_a_server_out_of_reach() {
    if !python::available().await {
        return;
    }
    // Listed again when the client asks (NOOP) once `imap_recheck` passed:
    // new mail shows; the messages of a server out of reach now are not
    // reported expunged (they are not deleted), but cannot be read, and
    // the next SELECT no longer shows them.
    let rig = Rig::start(rechecking(RigSpec::two_servers())).await;
    let (h1, h2) = (&rig.hosts[0], &rig.hosts[1]);
    let u1 = h1.deliver(rig.env.rng(), 2, 2000);
    let u2 = h2.deliver(rig.env.rng(), 1, 2000);
    let script = format!(
        r#"{}pause("listed")
attempt("noop", p.noop)
out("expunged", ",".join(text(x) for x in p.response("EXPUNGE")[1] if x))
out("exists", text(p.response("EXISTS")[1][-1]))
attempt("unreachable", p.fetch, "3", "(BODY.PEEK[])")
out("new.digest", digest(attempt("new", p.fetch, "4", "(BODY.PEEK[])")))
attempt("again", p.select, "INBOX")
attempt("logout", p.logout)
"#,
        login()
    );
    let mut py = Py::start_imap(&rig.imap, &script);
    assert_eq!(py.expect("select").await, "OK 3");
    py.expect("pause").await;
    h2.store.add_user(USER, "changed-meanwhile");
    let new = h1.deliver(rig.env.rng(), 1, 1500);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    py.resume().await;
    let out = py.finish().await;
    assert_eq!(out.get("noop"), "OK completed", "{out:?}");
    assert_eq!(out.get("expunged"), "", "{out:?}");
    assert_eq!(out.get("exists"), "4", "{out:?}");
    assert!(out.get("unreachable.err").starts_with("NO"), "{out:?}");
    let body = h1.store.body(USER, &new[0]).expect("delivered");
    let digest = out.get("new.digest");
    assert_eq!(
        digest.split(' ').next(),
        Some(causeway_tests::interop::sha256(&body).as_str()),
        "{out:?}"
    );
    assert_eq!(out.get("again"), "OK 3", "{out:?}");
    rig.settle().await;
    for u in u1.iter().chain(&new) {
        assert!(h1.store.is_present(USER, u) && !h1.store.is_seen(USER, u));
    }
    assert!(h2.store.is_present(USER, &u2[0]));
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_mark_lost_with_the_session_behind_is_sent_again_after_a_recheck() {
    if !python::available().await {
        return;
    }
    // A non-peek FETCH taken whole earns a read mark, sent unproved with
    // the next command; a cut then takes the session behind down with it.
    // The IMAP client stays connected: its NOOP lists the folder in a new
    // session behind, where the message still shows `\Seen`. Its mark must
    // go again there, so that a STORE of `\Seen` (answered OK) and the
    // LOGOUT leave it read on its server.
    let rig = Rig::start(rechecking(RigSpec::no_resume())).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 3, 2000);
    let script = format!(
        "{}attempt(\"read\", p.fetch, \"2\", \"(BODY[])\")\n\
         attempt(\"flags\", p.fetch, \"1\", \"(FLAGS)\")\n\
         pause(\"earned\")\n\
         attempt(\"noop\", p.noop)\n\
         attempt(\"shown\", p.fetch, \"2\", \"(FLAGS)\")\n\
         attempt(\"seen\", p.store, \"2\", \"+FLAGS\", \"(\\\\Seen)\")\n\
         attempt(\"logout\", p.logout)\n",
        login()
    );
    let mut py = Py::start_imap(&rig.imap, &script);
    assert_eq!(py.expect("flags").await, "OK 1 (FLAGS ())");
    py.expect("pause").await;
    rig.line.cut_now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    py.resume().await;
    let out = py.finish().await;
    assert_eq!(out.get("noop"), "OK completed", "{out:?}");
    assert_eq!(out.get("shown"), "OK 2 (FLAGS (\\Seen))", "{out:?}");
    assert_eq!(out.get("seen"), "OK 2 (FLAGS (\\Seen))", "{out:?}");
    // The lost mark went again and was made: the BYE says so.
    assert_eq!(
        out.get("logout"),
        format!("BYE {}", causeway_client::LOGGED_OUT),
        "{out:?}"
    );
    rig.settle().await;
    assert!(
        host.store.is_seen(USER, &u[1]),
        "answered OK, shown \\Seen, and still unread on the server\n{}",
        rig.report()
    );
    for x in [&u[0], &u[2]] {
        assert!(!host.store.is_seen(USER, x), "{}", rig.report());
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_shown_seen_is_never_marked_and_a_store_after_a_recheck_is() {
    if !python::available().await {
        return;
    }
    // A non-peek FETCH of a part shows `\Seen`, as a server would, but is
    // never a read mark (not the whole message). A NOOP that lists the
    // folder in a new session behind must not take that `\Seen` for a mark
    // made (a STORE of `\Seen` then would change nothing), nor send one.
    let rig = Rig::start(rechecking(RigSpec::default())).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 3, 2000);
    let script = format!(
        "{}attempt(\"part2\", p.fetch, \"2\", \"(BODY[1])\")\n\
         attempt(\"part3\", p.fetch, \"3\", \"(BODY[1])\")\n\
         attempt(\"flags\", p.fetch, \"1\", \"(FLAGS)\")\n\
         pause(\"parts\")\n\
         attempt(\"noop\", p.noop)\n\
         attempt(\"seen\", p.store, \"3\", \"+FLAGS\", \"(\\\\Seen)\")\n\
         attempt(\"logout\", p.logout)\n",
        login()
    );
    let mut py = Py::start_imap(&rig.imap, &script);
    assert_eq!(py.expect("flags").await, "OK 1 (FLAGS ())");
    py.expect("pause").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    py.resume().await;
    let out = py.finish().await;
    assert_eq!(out.get("noop"), "OK completed", "{out:?}");
    assert_eq!(out.get("seen"), "OK 3 (FLAGS (\\Seen))", "{out:?}");
    rig.settle().await;
    assert!(
        !host.store.is_seen(USER, &u[1]),
        "a part marked the message read\n{}",
        rig.report()
    );
    assert!(
        host.store.is_seen(USER, &u[2]),
        "a STORE of \\Seen answered OK after a recheck, still unread\n{}",
        rig.report()
    );
    assert!(!host.store.is_seen(USER, &u[0]), "{}", rig.report());
    rig.assert_no_leaks();
}
