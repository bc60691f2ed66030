//! The front, driven by hand: every reply the mail client would see.

use super::*;
use crate::mailbox::tests::ready;
use causeway_proto::session::{ListingState, MessageId, ServerFlags};
use causeway_proto::{ErrCode, Secret};

fn front() -> Front {
    let login = LocalLogin {
        user: "me".into(),
        password: Secret::new(b"local pw".to_vec()),
    };
    Front::new(login, vec!["HOST1".into(), "HOST2".into()])
}

fn id(uidl: &str, size: u64) -> MessageId {
    MessageId {
        uidl: uidl.into(),
        size,
    }
}

fn cmd(f: &mut Front, line: &str) -> Action {
    f.command(Command::parse(line.as_bytes()))
}

fn text(a: &Action) -> String {
    match a {
        Action::Reply(b) | Action::Close(b) | Action::Deliver(b) | Action::Sync(b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => panic!("expected bytes, got {other:?}"),
    }
}

/// A front in TRANSACTION with HOST1 = [a (10), b (20)], HOST2 = [c (5)].
fn logged_in() -> Front {
    let mut f = front();
    cmd(&mut f, "USER me");
    assert_eq!(cmd(&mut f, "PASS local pw"), Action::Open);
    let listings = vec![
        ready("HOST1", &[("a", 10), ("b", 20)]),
        ready("HOST2", &[("c", 5)]),
    ];
    assert_eq!(text(&f.opened(Ok(listings))), "+OK Logged in.\r\n");
    assert!(f.in_transaction());
    f
}

fn ask(a: Action) -> (Vec<Request>, Pending) {
    match a {
        Action::Ask { requests, then } => (requests, then),
        other => panic!("expected a request to the edge, got {other:?}"),
    }
}

#[test]
fn wrong_local_login_is_refused_and_the_third_closes() {
    let mut f = front();
    assert_eq!(Front::greeting(), b"+OK Causeway ready.\r\n");
    assert_eq!(text(&cmd(&mut f, "PASS x")), "-ERR No username given.\r\n");
    assert_eq!(text(&cmd(&mut f, "STAT")), "-ERR Unknown command.\r\n");
    // Each refusal comes after the failure delay.
    let delayed = |a: Action| match a {
        Action::Later(after, then) if after == LOGIN_FAILURE_DELAY => *then,
        other => panic!("a wrong password must be answered late, got {other:?}"),
    };
    for _ in 0..2 {
        assert_eq!(text(&cmd(&mut f, "USER me")), "+OK\r\n");
        let a = delayed(cmd(&mut f, "PASS wrong"));
        assert!(matches!(a, Action::Reply(_)));
        assert_eq!(text(&a), "-ERR [AUTH] Authentication failed.\r\n");
    }
    cmd(&mut f, "USER someone");
    assert!(matches!(
        delayed(cmd(&mut f, "PASS local pw")),
        Action::Close(_)
    ));
}

#[test]
fn capa_and_quit_before_login() {
    let mut f = front();
    let capa = text(&cmd(&mut f, "CAPA"));
    for c in ["TOP", "UIDL", "RESP-CODES", "USER", "PIPELINING"] {
        assert!(capa.contains(&format!("\r\n{c}\r\n")), "{capa}");
    }
    assert!(capa.ends_with("\r\n.\r\n"));
    // What this proxy does not offer is refused with what to do instead
    // (the mutation pass found the two texts unchecked).
    assert_eq!(
        text(&cmd(&mut f, "APOP me 0123456789abcdef0123456789abcdef")),
        "-ERR APOP is not supported; use USER and PASS.\r\n"
    );
    assert!(
        text(&cmd(&mut f, "STLS")).starts_with("-ERR STLS is not supported"),
        "a plain Unknown command says nothing of why"
    );
    assert_eq!(
        cmd(&mut f, "QUIT"),
        Action::Close(b"+OK Logging out.\r\n".to_vec())
    );
}

#[test]
fn stat_list_uidl_are_answered_locally() {
    let mut f = logged_in();
    assert_eq!(text(&cmd(&mut f, "STAT")), "+OK 3 35\r\n");
    assert_eq!(
        text(&cmd(&mut f, "LIST")),
        "+OK 3 messages:\r\n1 10\r\n2 20\r\n3 5\r\n.\r\n"
    );
    assert_eq!(text(&cmd(&mut f, "LIST 3")), "+OK 3 5\r\n");
    assert_eq!(
        text(&cmd(&mut f, "UIDL")),
        "+OK\r\n1 HOST1:a\r\n2 HOST1:b\r\n3 HOST2:c\r\n.\r\n"
    );
    assert_eq!(text(&cmd(&mut f, "UIDL 2")), "+OK 2 HOST1:b\r\n");
    assert_eq!(
        text(&cmd(&mut f, "LIST 4")),
        "-ERR There's no message 4.\r\n"
    );
    assert_eq!(
        text(&cmd(&mut f, "RETR 0")),
        "-ERR There's no message 0.\r\n"
    );
    assert_eq!(text(&cmd(&mut f, "NOOP")), "+OK\r\n");
    assert_eq!(
        text(&cmd(&mut f, "USER me")),
        "-ERR Unknown command: USER\r\n"
    );
    assert_eq!(
        text(&cmd(&mut f, "RETR x")),
        "-ERR Invalid message number: x\r\n"
    );
}

#[test]
fn retr_asks_by_uidl_and_delivers_a_stuffed_body() {
    let mut f = logged_in();
    let (requests, then) = ask(cmd(&mut f, "RETR 3"));
    assert_eq!(
        requests,
        [Request {
            server: "HOST2".into(),
            op: Op::Retr { msg: id("c", 5) },
            expect: 5
        }]
    );
    let a = f.answered(
        then,
        vec![Ok(Reply::Body(b"S: x\r\n\r\n.dot\r\n".to_vec()))],
    );
    assert_eq!(
        a,
        Action::Deliver(b"+OK 5 octets\r\nS: x\r\n\r\n..dot\r\n.\r\n".to_vec())
    );
}

#[test]
fn top_is_replied_never_delivered() {
    let mut f = logged_in();
    let (requests, then) = ask(cmd(&mut f, "TOP 2 0"));
    assert_eq!(
        requests[0].op,
        Op::Top {
            msg: id("b", 20),
            lines: 0
        }
    );
    let a = f.answered(then, vec![Ok(Reply::Body(b"S: x\r\n\r\n".to_vec()))]);
    assert_eq!(a, Action::Reply(b"+OK\r\nS: x\r\n\r\n.\r\n".to_vec()));
}

#[test]
fn a_top_of_the_whole_message_streams_its_body_and_is_still_never_delivered() {
    let mut f = logged_in();
    let (requests, then) = ask(cmd(&mut f, "TOP 2 99999999"));
    assert_eq!(requests[0].op, Op::Retr { msg: id("b", 20) });
    let passing = f.passing(&then).expect("written on as it arrives");
    assert_eq!(
        (passing.head.as_slice(), passing.delivers),
        (&b"+OK\r\n"[..], false)
    );
    let a = f.answered(
        then,
        vec![Ok(Reply::Body(b"S: x\r\n\r\nbody\r\n".to_vec()))],
    );
    assert_eq!(
        a,
        Action::Reply(b"+OK\r\nS: x\r\n\r\nbody\r\n.\r\n".to_vec())
    );
    let (_, then) = ask(cmd(&mut f, "TOP 2 19"));
    assert_eq!(
        f.passing(&then),
        None,
        "fewer lines than octets: a plain TOP"
    );
    let (_, then) = ask(cmd(&mut f, "RETR 2"));
    let passing = f.passing(&then).expect("a RETR passes");
    assert_eq!(
        (passing.head.as_slice(), passing.delivers),
        (&b"+OK 20 octets\r\n"[..], true)
    );
}

#[test]
fn edge_errors_name_the_server_and_keep_the_code() {
    let mut f = logged_in();
    let (_, then) = ask(cmd(&mut f, "RETR 1"));
    let a = f.answered(
        then,
        vec![Err(OpError::new(
            Some(ErrCode::SysTemp),
            "server went away",
        ))],
    );
    assert_eq!(text(&a), "-ERR [SYS/TEMP] HOST1: server went away\r\n");
    let (_, then) = ask(cmd(&mut f, "RETR 1"));
    let a = f.answered(then, vec![Ok(Reply::Done)]);
    assert!(
        text(&a).starts_with("-ERR [SYS/TEMP] HOST1: Causeway internal error"),
        "{}",
        text(&a)
    );
}

#[test]
fn dele_is_acknowledged_only_after_the_edge_and_then_hidden() {
    let mut f = logged_in();
    let (requests, then) = ask(cmd(&mut f, "DELE 2"));
    assert_eq!(requests[0].op, Op::Dele { msg: id("b", 20) });
    // Refused by the edge: not deleted.
    let a = f.answered(then, vec![Err(OpError::new(None, "no"))]);
    assert_eq!(text(&a), "-ERR HOST1: no\r\n");
    assert_eq!(text(&cmd(&mut f, "STAT")), "+OK 3 35\r\n");
    let (_, then) = ask(cmd(&mut f, "DELE 2"));
    assert_eq!(
        text(&f.answered(then, vec![Ok(Reply::Done)])),
        "+OK Marked to be deleted.\r\n"
    );
    assert_eq!(text(&cmd(&mut f, "STAT")), "+OK 2 15\r\n");
    assert_eq!(
        text(&cmd(&mut f, "LIST")),
        "+OK 2 messages:\r\n1 10\r\n3 5\r\n.\r\n"
    );
    assert_eq!(text(&cmd(&mut f, "RETR 2")), "-ERR Message is deleted.\r\n");
    assert_eq!(text(&cmd(&mut f, "DELE 2")), "-ERR Message is deleted.\r\n");
}

#[test]
fn rset_asks_each_server_with_deletes_and_undeletes() {
    let mut f = logged_in();
    assert_eq!(
        text(&cmd(&mut f, "RSET")),
        "+OK\r\n",
        "nothing deleted: no round trip"
    );
    for n in ["1", "3"] {
        let (_, then) = ask(cmd(&mut f, &format!("DELE {n}")));
        f.answered(then, vec![Ok(Reply::Done)]);
    }
    let (requests, then) = ask(cmd(&mut f, "RSET"));
    let servers: Vec<_> = requests
        .iter()
        .map(|r| (r.server.as_str(), &r.op))
        .collect();
    assert_eq!(servers, [("HOST1", &Op::Rset), ("HOST2", &Op::Rset)]);
    let a = f.answered(
        then,
        vec![
            Ok(Reply::Done),
            Err(OpError::new(Some(ErrCode::SysTemp), "down")),
        ],
    );
    assert!(
        matches!(a, Action::Close(_)),
        "a failed RSET ends the session"
    );
    assert_eq!(
        text(&a),
        "-ERR [SYS/TEMP] RSET failed for HOST2: down; undone on HOST1; ending the session, \
         reconnect to see the mailbox as it is\r\n"
    );
}

#[test]
fn rset_undeletes_only_when_every_server_undid() {
    let mut f = logged_in();
    for n in ["1", "3"] {
        let (_, then) = ask(cmd(&mut f, &format!("DELE {n}")));
        f.answered(then, vec![Ok(Reply::Done)]);
    }
    let (_, then) = ask(cmd(&mut f, "RSET"));
    let a = f.answered(then, vec![Ok(Reply::Done), Ok(Reply::Done)]);
    assert_eq!(text(&a), "+OK\r\n");
    assert_eq!(
        text(&cmd(&mut f, "STAT")),
        "+OK 3 35\r\n",
        "both deletes undone"
    );
}

#[test]
fn quit_reports_what_was_committed() {
    let mut f = logged_in();
    assert_eq!(cmd(&mut f, "QUIT"), Action::Quit);
    let ok = |name: &str| ServerOutcome {
        name: name.into(),
        result: Ok(()),
    };
    assert_eq!(
        text(&f.bye(&[ok("HOST1"), ok("HOST2")])),
        "+OK Logging out.\r\n"
    );
    let (_, then) = ask(cmd(&mut f, "DELE 1"));
    f.answered(then, vec![Ok(Reply::Done)]);
    assert_eq!(
        text(&f.bye(&[ok("HOST1")])),
        "+OK Logging out, messages deleted.\r\n"
    );
    let failed = ServerOutcome {
        name: "HOST2".into(),
        result: Err(OpError::new(Some(ErrCode::InUse), "locked")),
    };
    assert_eq!(
        text(&f.bye(&[ok("HOST1"), failed])),
        "-ERR [IN-USE] Some work was not committed: HOST2: locked\r\n"
    );
}

#[test]
fn unavailable_servers_are_skipped_unless_all_are() {
    let down = |name: &str, code, why: &str| ServerListing {
        name: name.into(),
        state: ListingState::Unavailable {
            error: OpError::new(Some(code), why),
        },
    };
    let mut f = front();
    cmd(&mut f, "USER me");
    cmd(&mut f, "PASS local pw");
    let a = f.opened(Ok(vec![
        down("HOST1", ErrCode::InUse, "locked"),
        down("HOST2", ErrCode::Auth, "bad login"),
    ]));
    assert_eq!(
        text(&a),
        "-ERR [IN-USE] HOST1: locked; HOST2: [SYS/PERM] bad login\r\n"
    );
    assert!(matches!(a, Action::Close(_)));

    let mut f = front();
    cmd(&mut f, "USER me");
    cmd(&mut f, "PASS local pw");
    let a = f.opened(Ok(vec![
        ready("HOST1", &[("a", 1)]),
        down("HOST2", ErrCode::InUse, "locked"),
    ]));
    assert_eq!(text(&a), "+OK Logged in.\r\n");
    assert_eq!(text(&cmd(&mut f, "UIDL")), "+OK\r\n1 HOST1:a\r\n.\r\n");
}

#[test]
fn a_temporary_failure_to_open_hangs_up_a_permanent_one_says_why() {
    // Measured (docs/interop.md): a -ERR to PASS counts as a failed login in
    // fetchmail and curl, except [IN-USE]; a hangup is a connection error.
    let mut f = front();
    cmd(&mut f, "USER me");
    cmd(&mut f, "PASS local pw");
    let a = f.opened(Err(OpError::new(
        Some(ErrCode::SysTemp),
        "Could not reach the edge: refused",
    )));
    assert_eq!(
        a,
        Action::Hangup("[SYS/TEMP] Could not reach the edge: refused".into())
    );
    let mut f = front();
    cmd(&mut f, "USER me");
    cmd(&mut f, "PASS local pw");
    let down = ServerListing {
        name: "HOST1".into(),
        state: ListingState::Unavailable {
            error: OpError::new(Some(ErrCode::SysTemp), "server down"),
        },
    };
    assert!(matches!(f.opened(Ok(vec![down])), Action::Hangup(_)));
    let mut f = front();
    cmd(&mut f, "USER me");
    cmd(&mut f, "PASS local pw");
    let a = f.opened(Err(OpError::new(
        Some(ErrCode::SysPerm),
        "The edge refused the session: server X is not allowed",
    )));
    assert_eq!(
        text(&a),
        "-ERR [SYS/PERM] The edge refused the session: server X is not allowed\r\n"
    );
}

#[test]
fn messages_sharing_uidl_and_size_are_refused_without_asking_the_edge() {
    // A body kept from a session whose listing had one message "d" of 7
    // octets may be either of these two now: no RETR, TOP or DELE of them
    // may reach the mirror, the delete journal or the edge.
    let mut f = front();
    cmd(&mut f, "USER me");
    assert_eq!(cmd(&mut f, "PASS local pw"), Action::Open);
    let listings = vec![ready("HOST1", &[("d", 7), ("d", 7), ("d", 9)])];
    f.opened(Ok(listings));
    for line in ["RETR 1", "TOP 2 0", "TOP 1 99999999", "DELE 2"] {
        let a = cmd(&mut f, line);
        assert!(
            text(&a).starts_with(
                "-ERR [SYS/PERM] Server HOST1 lists more than one message as d of 7 octets"
            ),
            "{line}: {}",
            text(&a)
        );
    }
    // Same UIDL, another size: the size tells it apart.
    let (requests, _) = ask(cmd(&mut f, "RETR 3"));
    assert_eq!(requests[0].op, Op::Retr { msg: id("d", 9) });
}

#[test]
fn a_lost_line_is_a_temporary_error_that_says_deletes_stand() {
    // The mail client's software must see a temporary failure (not a
    // closed connection without a word, not an authentication failure),
    // and its user that acknowledged deletes will still be done.
    let reply = String::from_utf8(Front::line_cut("the edge stopped answering")).unwrap();
    assert!(
        reply.starts_with("-ERR [SYS/TEMP] Line to the edge was lost"),
        "{reply}"
    );
    assert!(
        reply.contains("deletes you were told succeeded will still be done"),
        "{reply}"
    );
    assert!(reply.ends_with("the edge stopped answering\r\n"), "{reply}");
}

#[test]
fn xappend_is_the_imap_fronts_alone_and_is_checked_before_the_message() {
    // A POP3 mail client has no APPEND.
    let mut pop3 = logged_in();
    assert_eq!(
        text(&cmd(&mut pop3, "XAPPEND HOST1 10")),
        "-ERR Unknown command: XAPPEND\r\n"
    );
    let mut f = logged_in();
    f.xappend = true;
    assert_eq!(
        cmd(&mut f, "XAPPEND HOST2 10 \\Seen $Sent"),
        Action::Append {
            server: "HOST2".into(),
            octets: 10,
            flags: vec!["\\Seen".into(), "$Sent".into()],
        }
    );
    assert!(text(&cmd(&mut f, "XAPPEND NOPE 10")).starts_with("-ERR [SYS/PERM] No server"));
    let big = format!("XAPPEND HOST1 {}", MAX_APPEND + 1);
    assert!(text(&cmd(&mut f, &big)).starts_with("-ERR [SYS/PERM] A message over"));
    // Before the login it is no command at all.
    let mut early = front().serving_imap();
    assert_eq!(
        text(&cmd(&mut early, "XAPPEND HOST1 10")),
        "-ERR Unknown command.\r\n"
    );
}

#[test]
fn xstore_is_the_imap_fronts_alone_and_asks_the_messages_server() {
    // A POP3 mail client has no flags.
    let mut pop3 = logged_in();
    assert_eq!(
        text(&cmd(&mut pop3, "XSTORE 3 + \\Flagged")),
        "-ERR Unknown command: XSTORE\r\n"
    );
    let mut f = logged_in();
    f.xappend = true;
    let (requests, then) = ask(cmd(&mut f, "XSTORE 3 - \\Flagged $Label1"));
    assert_eq!(
        requests,
        [Request {
            server: "HOST2".into(),
            op: Op::Store {
                msg: id("c", 5),
                add: false,
                flags: vec!["\\Flagged".into(), "$Label1".into()],
            },
            expect: 5
        }]
    );
    assert_eq!(
        text(&f.answered(then, vec![Ok(Reply::Done)])),
        "+OK Flags stored.\r\n"
    );
    // The server's refusal names it, with its code.
    let (_, then) = ask(cmd(&mut f, "XSTORE 1 + \\Answered"));
    let refused = OpError::new(Some(ErrCode::SysTemp), "lost the connection");
    let reply = text(&f.answered(then, vec![Err(refused)]));
    assert!(reply.starts_with("-ERR [SYS/TEMP]"), "{reply}");
    assert!(text(&cmd(&mut f, "XSTORE 9 + \\Flagged")).starts_with("-ERR There's no message 9"));
}

#[test]
fn xflags_lists_what_the_imap_servers_said_and_nothing_of_the_others() {
    let mut f = front();
    f.xappend = true;
    cmd(&mut f, "USER me");
    assert_eq!(cmd(&mut f, "PASS local pw"), Action::Open);
    let mut imap = ready("HOST2", &[("c", 5), ("d", 6)]);
    if let ListingState::Ready { messages } = &mut imap.state {
        messages[0].flags = Some(ServerFlags(ServerFlags::SEEN | ServerFlags::FLAGGED));
        messages[1].flags = Some(ServerFlags(0));
    }
    let listings = vec![ready("HOST1", &[("a", 10)]), imap];
    assert_eq!(text(&f.opened(Ok(listings))), "+OK Logged in.\r\n");
    assert_eq!(text(&cmd(&mut f, "XFLAGS")), "+OK\r\n2 5\r\n3 0\r\n.\r\n");
    // A POP3 mail client has no flags.
    let mut pop3 = logged_in();
    assert!(text(&cmd(&mut pop3, "XFLAGS")).starts_with("-ERR"));
}

#[test]
fn xsearch_asks_the_servers_named_that_have_mail_and_fails_on_any_failure() {
    let mut f = logged_in();
    f.xappend = true;
    // Every server, without IN; the one named, with it.
    let (requests, then) = ask(cmd(&mut f, "XSEARCH BODY =6869"));
    let asked: Vec<&str> = requests.iter().map(|r| r.server.as_str()).collect();
    assert_eq!(asked, ["HOST1", "HOST2"]);
    let found = vec![
        Ok(Reply::Found {
            msgs: vec![id("b", 20), id("gone", 1)],
        }),
        Ok(Reply::Found {
            msgs: vec![id("c", 5)],
        }),
    ];
    assert_eq!(text(&f.answered(then, found)), "+OK\r\n2\r\n3\r\n.\r\n");
    let (requests, then) = ask(cmd(&mut f, "XSEARCH BODY =6869 IN HOST2,HOST9"));
    let asked: Vec<&str> = requests.iter().map(|r| r.server.as_str()).collect();
    assert_eq!(asked, ["HOST2"]);
    // A refusal is a failure like any other (the edge searches a POP3
    // server itself, so none is expected of one).
    let refused = OpError::new(Some(ErrCode::SysPerm), "cannot search");
    let reply = text(&f.answered(then, vec![Err(refused)]));
    assert!(reply.starts_with("-ERR [SYS/PERM]"), "{reply}");
    // A server with nothing to find is not asked; nothing to ask, nothing
    // found.
    let mut f = front();
    f.xappend = true;
    cmd(&mut f, "USER me");
    cmd(&mut f, "PASS local pw");
    let listings = vec![ready("HOST1", &[("a", 10)]), ready("HOST2", &[])];
    f.opened(Ok(listings));
    let (requests, then) = ask(cmd(&mut f, "XSEARCH TEXT =6869 IN HOST2"));
    assert!(requests.is_empty());
    assert_eq!(text(&f.answered(then, vec![])), "+OK\r\n.\r\n");
}
