//! An unchanged IMAP mail client (python `imaplib`) at the client proxy's
//! IMAP front, through the whole chain (line forwarder, edge, model POP3
//! servers), judged on the model servers' own records: a peeked body never
//! marks read, a whole non-peek body marks read only after the client
//! spoke again, a header does not, an expunge reaches the server, a cut
//! during a FETCH leaves the message unread, and an expunge acknowledged
//! just before a cut is still carried out. Every server session QUITs.

use std::time::Duration;

use causeway_net::Env;
use causeway_tests::rig::{LOCAL_PASSWORD, LOCAL_USER, Rig, RigSpec, USER};
use causeway_tests::{Dir, Py, python};

fn login() -> String {
    python::imap_login_select("INBOX")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_reads_marks_and_expunges_as_the_rules_say() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 5, 3000);
    let script = format!(
        r#"{}
d = attempt("list", p.fetch, "1:*", "(UID RFC822.SIZE FLAGS)")
out("sizes", " ".join(text(x).split("RFC822.SIZE ")[1].split(" ")[0] for x in d))
out("peek.digest", digest(attempt("peek", p.uid, "FETCH", "1", "(BODY.PEEK[])")))
out("read.digest", digest(attempt("read", p.fetch, "2", "(BODY[])")))
attempt("header", p.fetch, "3", "(BODY[HEADER])")
attempt("text", p.fetch, "3", "(BODY.PEEK[TEXT])")
attempt("noop", p.noop)
attempt("unseen", p.search, None, "UNSEEN")
attempt("delete", p.store, "4", "+FLAGS", "(\\Deleted)")
attempt("expunge", p.expunge)
attempt("left", p.fetch, "1:*", "(UID)")
attempt("logout", p.logout)
"#,
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert!(
        out.get("welcome").starts_with("* OK [CAPABILITY IMAP4REV1"),
        "{out:?}"
    );
    assert!(out.get("login").starts_with("OK"), "{out:?}");
    assert_eq!(out.get("select"), "OK 5");
    let sizes: Vec<String> = u
        .iter()
        .map(|x| host.store.message(USER, x).unwrap().size.to_string())
        .collect();
    assert_eq!(out.get("sizes"), sizes.join(" "), "sizes are the server's");
    assert_eq!(out.get("peek.digest"), host.digest(&u[0]));
    assert_eq!(out.get("read.digest"), host.digest(&u[1]));
    // 2 was read (BODY[]) and 3's header fetched without PEEK: both are
    // \Seen in this session, as a server would say.
    assert_eq!(out.get("unseen"), "OK 1 4 5");
    assert_eq!(out.get("expunge"), "OK 4");
    assert_eq!(out.get("left"), "OK 1 (UID 1)");
    assert!(out.get("logout").starts_with("BYE"), "{out:?}");

    rig.settle().await;
    let s = &host.store;
    assert!(
        !s.is_seen(USER, &u[0]),
        "a peek marked read\n{}",
        rig.report()
    );
    assert!(
        s.is_seen(USER, &u[1]),
        "a whole BODY[] proved delivered was not marked\n{}",
        rig.report()
    );
    assert!(
        !s.is_seen(USER, &u[2]),
        "a header alone marked read\n{}",
        rig.report()
    );
    assert!(
        !s.is_present(USER, &u[3]),
        "the expunge did not reach the server\n{}",
        rig.report()
    );
    for x in [&u[0], &u[1], &u[2], &u[4]] {
        assert!(s.is_present(USER, x), "{x} deleted\n{}", rig.report());
    }
    rig.assert_no_leaks();
}

/// Seed 12948: a server lists two messages by one UIDL and size (a broken
/// migration), which no one can fetch safely. A FETCH of a range serves
/// every other message of it and answers NO saying why, as Dovecot does
/// for a message it cannot read; one bad message must not hide the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_of_a_range_serves_every_message_but_one_listed_twice() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 3, 3000);
    let copy = host.store.body(USER, &u[1]).unwrap();
    host.store
        .deliver_with_uidl(USER, &copy, &u[1], None)
        .unwrap();
    let script = format!(
        r#"{}
attempt("all", p.fetch, "1:*", "(BODY.PEEK[])")
served = [x for x in p.untagged_responses.pop("FETCH", []) if isinstance(x, tuple)]
out("served", " ".join(text(x[0]).split(" ")[0] for x in served))
out("first.digest", digest(served))
attempt("logout", p.logout)
"#,
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    let no = out.get("all.err");
    assert!(
        no.starts_with("NO some messages could not be fetched: ") && no.contains(&u[1]),
        "{out:?}"
    );
    assert_eq!(out.get("served"), "1 3", "{out:?}");
    assert_eq!(out.get("first.digest"), host.digest(&u[0]));
    rig.settle().await;
    for x in &u {
        assert!(host.store.is_present(USER, x) && !host.store.is_seen(USER, x));
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_peek_fetch_the_client_never_acknowledged_is_not_marked() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 2, 3000);
    // The client takes the body, stays two seconds (the proxy sends read
    // marks after a second of quiet) and hangs up without another command:
    // no proof it kept the whole response, so the message stays unread.
    let script = format!(
        "{}\nout(\"read.digest\", digest(attempt(\"read\", p.fetch, \"1\", \"(RFC822)\")))\nimport time\ntime.sleep(2)\np.shutdown()\n",
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert_eq!(out.get("read.digest"), host.digest(&u[0]));
    rig.settle().await;
    assert!(
        !host.store.is_seen(USER, &u[0]),
        "marked without proof\n{}",
        rig.report()
    );
    assert!(host.store.is_present(USER, &u[0]));
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_during_a_fetch_leaves_the_message_unread() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::no_resume()).await;
    let host = &rig.hosts[0];
    let big = host.deliver_incompressible(rig.env.rng(), 400 << 10);
    const CUT_AT: u64 = 64 << 10;
    rig.line.cut_after(Dir::Down, CUT_AT);
    let script = format!(
        "{}\nattempt(\"read\", p.fetch, \"1\", \"(BODY[])\")\nattempt(\"noop\", p.noop)\n",
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    let err = out.get("read.err");
    assert!(
        err.contains("UNAVAILABLE") || err.starts_with("abort"),
        "{err}"
    );
    assert_eq!(
        rig.line.bytes(Dir::Down),
        CUT_AT,
        "the cut fell inside the body"
    );
    rig.settle().await;
    assert!(host.store.is_present(USER, &big), "{}", rig.report());
    assert!(
        !host.store.is_seen(USER, &big),
        "marked read though cut\n{}",
        rig.report()
    );
    rig.assert_no_leaks();
}

/// Runs `ops` (imaplib calls after login), checks that the one named
/// `last` was answered `answer`, then cuts the line for good (no resume)
/// and lets the client log out into the cut: what was answered must still
/// be done.
async fn answered_then_cut(rig: &Rig, ops: &str, last: &str, answer: &str) {
    let script = format!(
        "{}\n{ops}pause(\"answered\")\nattempt(\"logout\", p.logout)\n",
        login()
    );
    let mut py = Py::start_imap(&rig.imap, &script);
    assert_eq!(py.expect(last).await, answer);
    py.expect("pause").await;
    rig.line.cut_now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    py.resume().await;
    let out = py.finish().await;
    assert!(out.get("logout").starts_with("BYE"), "{out:?}");
    rig.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expunge_acknowledged_just_before_a_cut_is_carried_out() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::no_resume()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 3, 2000);
    let ops = "attempt(\"delete\", p.store, \"2\", \"+FLAGS\", \"(\\\\Deleted)\")\nattempt(\"expunge\", p.expunge)\n";
    answered_then_cut(&rig, ops, "expunge", "OK 2").await;
    assert!(
        !host.store.is_present(USER, &u[1]),
        "the acknowledged expunge was lost\n{}",
        rig.report()
    );
    for x in [&u[0], &u[2]] {
        assert!(
            host.store.is_present(USER, x) && !host.store.is_seen(USER, x),
            "{}",
            rig.report()
        );
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seen_stored_just_before_a_cut_is_made() {
    if !python::available().await {
        return;
    }
    // STORE answered OK is a change made: the edge owes the read mark
    // before the answer, so a cut right after it (not resumed: the
    // session behind it is lost) does not undo it.
    let rig = Rig::start(RigSpec::no_resume()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 3, 2000);
    let ops = "attempt(\"seen\", p.store, \"2\", \"+FLAGS\", \"(\\\\Seen)\")\n";
    answered_then_cut(&rig, ops, "seen", "OK 2 (FLAGS (\\Seen))").await;
    assert!(
        host.store.is_seen(USER, &u[1]),
        "the stored \\Seen was lost\n{}",
        rig.report()
    );
    for x in [&u[0], &u[2]] {
        assert!(!host.store.is_seen(USER, x), "{}", rig.report());
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_mark_lost_with_its_session_shows_unread_and_can_be_stored_again() {
    if !python::available().await {
        return;
    }
    // A non-peek FETCH shows `\Seen` at once; its mark goes to the session
    // behind with the next command, unproved, and a cut (not resumed) loses
    // it: the message stays unread on its server, as it may. The next
    // session must then show it unread (the UID book keeps only proved
    // marks), so that a STORE of `\Seen` there marks it read.
    let rig = Rig::start(RigSpec::no_resume()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 3, 2000);
    let ops = "attempt(\"read\", p.fetch, \"2\", \"(BODY[])\")\n\
               attempt(\"flags\", p.fetch, \"1\", \"(FLAGS)\")\n";
    answered_then_cut(&rig, ops, "flags", "OK 1 (FLAGS ())").await;
    assert!(
        !host.store.is_seen(USER, &u[1]),
        "the premise: the unproved mark went down with its session\n{}",
        rig.report()
    );
    let script = format!(
        "{}attempt(\"shown\", p.fetch, \"2\", \"(FLAGS)\")\n\
         attempt(\"seen\", p.store, \"2\", \"+FLAGS\", \"(\\\\Seen)\")\n\
         attempt(\"logout\", p.logout)\n",
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert_eq!(out.get("shown"), "OK 2 (FLAGS ())", "{out:?}");
    assert_eq!(out.get("seen"), "OK 2 (FLAGS (\\Seen))", "{out:?}");
    rig.settle().await;
    assert!(
        host.store.is_seen(USER, &u[1]),
        "the stored \\Seen was not made\n{}",
        rig.report()
    );
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_authentication_failure_and_a_part_leaves_the_message_unread() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 1, 2000);
    // Thunderbird's way with a large message: its structure, then a part,
    // not peeked. The answer shows `\Seen`, as the server's would; the
    // server is not told, for a part is not all of the message.
    let script = format!(
        r#"attempt("bad", p.login, "{LOCAL_USER}", "wrong")
{}
attempt("structure", p.fetch, "1", "(BODYSTRUCTURE)")
attempt("part", p.fetch, "1", "(BODY[1] FLAGS)")
attempt("copy", p.copy, "1", "Archive")
attempt("other", p.select, "Archive")
attempt("logout", p.logout)
"#,
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert!(
        out.get("bad.err").contains("[AUTHENTICATIONFAILED]"),
        "{out:?}"
    );
    assert!(out.get("login").starts_with("OK"), "{out:?}");
    assert!(
        out.get("structure").starts_with("OK 1 (BODYSTRUCTURE ("),
        "{out:?}"
    );
    assert!(out.get("part").starts_with("OK 1 (BODY[1] {"), "{out:?}");
    assert!(out.get("other.err").contains("[NONEXISTENT]"), "{out:?}");
    assert!(out.get("copy.err").contains("[CANNOT]"), "{out:?}");
    rig.settle().await;
    assert!(
        !host.store.is_seen(USER, &u[0]),
        "a part read marked the message read\n{}",
        rig.report()
    );
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_imap_client_is_kept_then_logged_out() {
    if !python::available().await {
        return;
    }
    // The POP3 session behind would give up after 3 s of silence; the IMAP
    // front keeps it alive (a NOOP every 1.5 s) until its own bound, 6 s.
    let rig = Rig::start(RigSpec {
        client_timeouts: causeway_client::Timeouts {
            client_idle: Duration::from_secs(3),
            imap_idle: Duration::from_secs(6),
            ..causeway_client::Timeouts::default()
        },
        ..RigSpec::default()
    })
    .await;
    let u = rig.hosts[0].deliver(rig.env.rng(), 1, 2000);
    let script = format!(
        "{}import time\ntime.sleep(4.5)\nattempt(\"header\", p.fetch, \"1\", \"(BODY.PEEK[HEADER])\")\ntime.sleep(8)\nattempt(\"noop\", p.noop)\n",
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    // The header comes from the POP3 session: it was still there.
    assert!(
        out.get("header").starts_with("OK 1 (BODY[HEADER]"),
        "{out:?}"
    );
    let err = out.get("noop.err");
    assert!(err.contains("[UNAVAILABLE] autologout"), "{err}");
    rig.settle().await;
    assert!(rig.hosts[0].store.is_present(USER, &u[0]));
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uids_and_flags_outlive_the_session() {
    if !python::available().await {
        return;
    }
    // Two servers: UIDs follow arrival across both, and the UIDs of a server
    // out of reach for one session are kept for the next.
    let rig = Rig::start(RigSpec::two_servers()).await;
    let (h1, h2) = (&rig.hosts[0], &rig.hosts[1]);
    let u1 = h1.deliver(rig.env.rng(), 3, 2000);
    let u2 = h2.deliver(rig.env.rng(), 1, 2000);
    // Session 1: flag one, read one whole (LOGOUT proves it arrived).
    let first = format!(
        r#"{}{}attempt("flag", p.store, "1", "+FLAGS", "(\\Flagged \\Answered)")
attempt("read", p.fetch, "2", "(BODY[])")
attempt("logout", p.logout)
"#,
        login(),
        python::imap_folder_script()
    );
    let out = python::run_imap(&rig.imap, &first).await;
    assert_eq!(out.get("flags"), "1:;2:;3:;4:", "{out:?}");
    let validity = out.get("validity").to_string();
    rig.settle().await;
    assert!(h1.store.is_seen(USER, &u1[1]), "{}", rig.report());

    // Session 2, after a new message on HOST1: same UIDVALIDITY, the same
    // UIDs, the new message above them, the flags kept. It reads a third
    // message whole but hangs up without proof.
    let u_new = h1.deliver(rig.env.rng(), 1, 2000);
    let second = format!(
        r#"{}{}attempt("unflag", p.store, "1", "-FLAGS", "(\\Answered)")
attempt("flag2", p.store, "2", "+FLAGS", "(\\Flagged)")
attempt("unproved", p.fetch, "3", "(BODY[])")
p.shutdown()
"#,
        login(),
        python::imap_folder_script()
    );
    let out = python::run_imap(&rig.imap, &second).await;
    assert_eq!(out.get("validity"), validity, "{out:?}");
    assert_eq!(
        out.get("flags"),
        "1:\\Answered \\Flagged;2:\\Seen;3:;4:;5:",
        "{out:?}"
    );
    rig.settle().await;
    assert!(!h1.store.is_seen(USER, &u1[2]), "{}", rig.report());

    // Session 3 with HOST2 refusing the login, then session 4 with it back: its
    // message keeps UID 4.
    h2.store.add_user(USER, "changed-meanwhile");
    let out = python::run_imap(
        &rig.imap,
        &format!("{}{}", login(), python::imap_folder_script()),
    )
    .await;
    // A flag stored on a read message keeps its \Seen.
    assert_eq!(
        out.get("flags"),
        "1:\\Flagged;2:\\Seen \\Flagged;3:;5:",
        "{out:?}"
    );
    h2.store.add_user(USER, causeway_tests::rig::PASSWORD);
    let out = python::run_imap(
        &rig.imap,
        &format!("{}{}", login(), python::imap_folder_script()),
    )
    .await;
    assert_eq!(out.get("validity"), validity, "{out:?}");
    assert_eq!(
        out.get("flags"),
        "1:\\Flagged;2:\\Seen \\Flagged;3:;4:;5:",
        "{out:?}"
    );
    rig.settle().await;
    for x in u1.iter().chain(&u2).chain(&u_new) {
        assert!(h1.store.is_present(USER, x) || h2.store.is_present(USER, x));
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_without_logout_keeps_what_was_answered() {
    if !python::available().await {
        return;
    }
    // In IMAP a STORE or EXPUNGE answered OK is done; neomutt, for one,
    // quits without LOGOUT. A body taken without a later command is not
    // proof, so that one stays unread.
    let rig = Rig::start(RigSpec::default()).await;
    let host = &rig.hosts[0];
    let u = host.deliver(rig.env.rng(), 3, 2000);
    let script = format!(
        r#"{}attempt("seen", p.store, "1", "+FLAGS", "(\\Seen)")
attempt("delete", p.store, "2", "+FLAGS", "(\\Deleted)")
attempt("expunge", p.expunge)
attempt("unproved", p.fetch, "2", "(BODY[])")
p.shutdown()
"#,
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert_eq!(out.get("expunge"), "OK 2", "{out:?}");
    rig.settle().await;
    let s = &host.store;
    assert!(
        s.is_seen(USER, &u[0]),
        "stored \\Seen lost\n{}",
        rig.report()
    );
    assert!(!s.is_present(USER, &u[1]), "{}", rig.report());
    assert!(
        s.is_present(USER, &u[2]) && !s.is_seen(USER, &u[2]),
        "an unproved body marked read\n{}",
        rig.report()
    );
    // The POP3 session behind ended with QUIT, not a drop.
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_reads_a_folder_is_a_folder_of_its_own() {
    if !python::available().await {
        return;
    }
    // HOST1 (POP3) is the INBOX; ARCH reads the folder Archive of an IMAP
    // server, and is shown as the folder ARCH, numbered by a UID book of
    // its own.
    let rig = Rig::start(RigSpec {
        folders: vec![("ARCH", "Archive")],
        ..RigSpec::default()
    })
    .await;
    let (inbox, arch) = (rig.host("HOST1"), rig.host("ARCH"));
    let u = inbox.deliver(rig.env.rng(), 2, 2000);
    let a = arch.deliver(rig.env.rng(), 3, 2000);
    // Mail in the IMAP account's own INBOX, which no entry reads.
    let untouched = arch
        .store
        .deliver(
            USER,
            "Subject: not read here\r\n\r\nno entry reads this INBOX\r\n",
        )
        .unwrap()
        .to_string();
    let script = format!(
        r#"{}out("folders", " ".join(text(x).split(" ")[-1] for x in p.list()[1]))
out("status", text(p.status("ARCH", "(MESSAGES UIDNEXT UNSEEN)")[1][0]))
attempt("arch", p.select, "ARCH")
out("validity", text(p.response("UIDVALIDITY")[1][0]))
attempt("uids", p.fetch, "1:*", "(UID)")
out("read.digest", digest(attempt("read", p.fetch, "1", "(BODY[])")))
attempt("delete", p.store, "2", "+FLAGS", "(\\Deleted)")
attempt("expunge", p.expunge)
attempt("inbox", p.select, "inbox")
out("peek.digest", digest(attempt("peek", p.fetch, "2", "(BODY.PEEK[])")))
attempt("nope", p.select, "Archive")
attempt("logout", p.logout)
"#,
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert_eq!(out.get("select"), "OK 2", "{out:?}");
    assert_eq!(out.get("folders"), "INBOX ARCH Trash", "{out:?}");
    assert_eq!(out.get("status"), "ARCH (MESSAGES 3 UIDNEXT 4 UNSEEN 3)");
    assert_eq!(out.get("arch"), "OK 3", "{out:?}");
    assert_eq!(out.get("uids"), "OK 1 (UID 1)", "{out:?}");
    assert_eq!(out.get("read.digest"), arch.digest(&a[0]));
    assert_eq!(out.get("expunge"), "OK 2", "{out:?}");
    assert_eq!(out.get("inbox"), "OK 2", "{out:?}");
    assert_eq!(out.get("peek.digest"), inbox.digest(&u[1]));
    // A folder is named as its entry, not as the server names it.
    assert!(out.get("nope.err").contains("NONEXISTENT"), "{out:?}");
    rig.settle().await;
    let s = &arch.store;
    assert!(s.is_seen(&arch.maildrop, &a[0]), "{}", rig.report());
    assert!(!s.is_present(&arch.maildrop, &a[1]), "{}", rig.report());
    assert!(!s.is_seen(&arch.maildrop, &a[2]), "{}", rig.report());
    assert!(s.is_present(USER, &untouched) && !s.is_seen(USER, &untouched));
    for x in &u {
        assert!(inbox.store.is_present(USER, x) && !inbox.store.is_seen(USER, x));
    }

    // The next session: the same UIDVALIDITY, the UIDs and the \Seen kept.
    let again = format!(
        r#"{}attempt("arch", p.select, "ARCH")
{}"#,
        login(),
        python::imap_folder_script()
    );
    let second = python::run_imap(&rig.imap, &again).await;
    assert_eq!(second.get("validity"), out.get("validity"), "{second:?}");
    assert_eq!(second.get("flags"), "1:\\Seen;3:", "{second:?}");
    rig.settle().await;
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keywords_are_kept_by_the_proxy_and_never_reach_the_server() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let h = rig.host("HOST1");
    let u = h.deliver(rig.env.rng(), 3, 2000);
    // Thunderbird's junk mark and a tag; a STORE that would define a 33rd
    // keyword is refused whole; one that fills the table takes `\*` away.
    let first = format!(
        r#"{}out("flags0", text(p.response("FLAGS")[1][0]))
out("perm0", text(p.response("PERMANENTFLAGS")[1][0]))
attempt("tag", p.store, "1", "+FLAGS", "($Junk work)")
out("flags1", text(p.response("FLAGS")[1][0]))
attempt("tag2", p.store, "2", "+FLAGS", "(WORK)")
out("junk", text(p.search(None, "KEYWORD", "$junk")[1][0]))
out("notwork", text(p.search(None, "UNKEYWORD", "work")[1][0]))
attempt("untag", p.store, "1", "-FLAGS", "(work)")
attempt("many", p.store, "3", "+FLAGS", "(" + " ".join("k%d" % i for i in range(31)) + ")")
attempt("full", p.store, "3", "+FLAGS", "(" + " ".join("k%d" % i for i in range(30)) + ")")
out("perm1", text(p.response("PERMANENTFLAGS")[1][-1]))
attempt("logout", p.logout)
"#,
        login()
    );
    let out = python::run_imap(&rig.imap, &first).await;
    assert_eq!(
        out.get("flags0"),
        "(\\Seen \\Answered \\Flagged \\Deleted \\Draft)",
        "{out:?}"
    );
    assert_eq!(
        out.get("perm0"),
        "(\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)"
    );
    assert_eq!(
        out.get("tag"),
        "OK 1 (FLAGS ($Junk work))",
        "the answer names the keywords: {out:?}"
    );
    assert_eq!(
        out.get("flags1"),
        "(\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk work)"
    );
    assert_eq!(out.get("tag2"), "OK 2 (FLAGS (work))", "{out:?}");
    assert_eq!(out.get("junk"), "1");
    assert_eq!(out.get("notwork"), "3");
    assert!(out.get("many.err").contains("LIMIT"), "{out:?}");
    assert_eq!(
        out.get("full"),
        "OK 3 (FLAGS (k0 k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11 k12 k13 k14 k15 k16 k17 k18 k19 k20 k21 k22 k23 k24 k25 k26 k27 k28 k29))",
        "{out:?}"
    );
    assert!(!out.get("perm1").contains("\\*"), "{out:?}");
    rig.settle().await;

    // The next session shows them again; the server saw nothing of them.
    let again = format!("{}{}", login(), python::imap_folder_script());
    let second = python::run_imap(&rig.imap, &again).await;
    let ks: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    assert_eq!(
        second.get("flags"),
        format!("1:$Junk;2:work;3:{}", ks.join(" ")),
        "{second:?}"
    );
    rig.settle().await;
    for x in &u {
        assert!(h.store.is_present(USER, x) && !h.store.is_seen(USER, x));
    }
    rig.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_opened_with_examine_takes_no_change() {
    if !python::available().await {
        return;
    }
    // getmail opens the folder with EXAMINE when it keeps the mail: a read
    // there marks nothing, and no STORE or EXPUNGE is taken.
    let rig = Rig::start(RigSpec::default()).await;
    let h = rig.host("HOST1");
    let u = h.deliver(rig.env.rng(), 3, 2000);
    let script = format!(
        r#"attempt("login", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}")
attempt("examine", p.select, "INBOX", True)
out("perm", text(p.response("PERMANENTFLAGS")[1][0]))
out("read.digest", digest(attempt("read", p.fetch, "1", "(BODY[])")))
attempt("flags", p.fetch, "1", "(FLAGS)")
attempt("seen", p.store, "2", "+FLAGS", "(\\Seen)")
attempt("delete", p.store, "3", "+FLAGS", "(\\Deleted)")
attempt("expunge", p.expunge)
attempt("logout", p.logout)
"#
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert_eq!(out.get("examine"), "OK 3", "{out:?}");
    assert_eq!(out.get("perm"), "()", "{out:?}");
    assert_eq!(out.get("read.digest"), h.digest(&u[0]));
    assert_eq!(out.get("flags"), "OK 1 (FLAGS ())", "{out:?}");
    for refused in ["seen", "delete", "expunge"] {
        assert!(
            out.get(&format!("{refused}.err")).contains("EXAMINE"),
            "{refused}: {out:?}"
        );
    }
    rig.settle().await;
    for x in &u {
        assert!(
            h.store.is_present(USER, x) && !h.store.is_seen(USER, x),
            "{}",
            rig.report()
        );
    }
    rig.assert_no_leaks();
}

/// A command the front cannot parse is answered `BAD` under its own tag,
/// which the client waits for (`* BAD` alone left imaplib waiting until
/// its timeout); only a line with no tag first gets `* BAD`. The session
/// goes on after each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_be_parsed_is_answered_under_its_tag() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    rig.hosts[0].deliver(rig.env.rng(), 1, 2000);
    let script = format!(
        r#"{}attempt("search", p.search, None, "FROM", "ZELDA QUIST")
def raw(key, line):
    p.send(line)
    out(key, text(p.readline().strip()))
raw("unknown", b"t1 FROB 1\r\n")
raw("lf", b"t2 NOOP\n")
raw("untagged", b"(x) NOOP\r\n")
raw("nonsync", b"t3 APPEND INBOX {{40000000+}}\r\n" + b"x" * 40000000 + b"\r\n")
attempt("after", p.search, None, "ALL")
attempt("logout", p.logout)
"#,
        login()
    );
    let out = python::run_imap(&rig.imap, &script).await;
    let err = out.get("search.err");
    assert!(
        err.contains("BAD") && err.contains("could not parse"),
        "{out:?}"
    );
    for (step, tag, why) in [
        ("unknown", "t1", "could not parse"),
        ("lf", "t2", "LF, not CRLF"),
        ("untagged", "*", "could not parse"),
        ("nonsync", "t3", "over 32 MiB"),
    ] {
        let answer = out.get(step);
        assert!(
            answer.starts_with(&format!("{tag} BAD ")) && answer.contains(why),
            "{step}: {out:?}"
        );
    }
    assert_eq!(out.get("after"), "OK 1", "{out:?}");
    assert!(out.get("logout").starts_with("BYE"), "{out:?}");
    rig.settle().await;
    rig.assert_no_leaks();
}
