//! The client proxy against a scripted edge, over loopback: the driver's
//! ordering rules (the edge reached before the greeting, Delivered after the
//! mail client's next command, DELE acknowledged after Done), idle pings,
//! and what a cut line, an edge out of reach or a vanished mail client looks
//! like on each side. The real edge is exercised by the end-to-end tests in
//! `tests/`.

mod support;

use support::*;
#[tokio::test]
async fn a_session_reads_deletes_and_quits_in_order() {
    let mut rig = rig(Timeouts::default()).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    assert_eq!(pop.cmd("STAT").await, "+OK 3 35");
    assert_eq!(pop.cmd("UIDL").await, "+OK");
    assert_eq!(pop.body().await, "1 HOST1:a\r\n2 HOST1:b\r\n3 HOST2:c\r\n");

    pop.s.write_all(b"RETR 2\r\n").await.unwrap();
    let ClientToEdge::Request { id, server, op } = recv(&mut edge).await else {
        panic!("expected a request")
    };
    assert_eq!(
        (server.as_str(), op),
        ("HOST1", Op::Retr { msg: msg("b", 20) })
    );
    let body = b"Subject: b\r\n\r\n.hi\r\n";
    stream(&mut edge, "HOST1", msg("b", 20), body, 7).await;
    send(
        &mut edge,
        EdgeToClient::Response {
            id,
            result: Ok(Reply::Streamed { total: 19 }),
        },
    )
    .await;
    assert_eq!(pop.line().await, "+OK 20 octets");
    assert_eq!(pop.body().await, "Subject: b\r\n\r\n..hi\r\n");
    // Delivered only once the mail client's next command shows it took it;
    // a NOOP is answered once the edge has it (its Pong to a Ping after it).
    pop.s.write_all(b"NOOP\r\n").await.unwrap();
    assert_eq!(
        recv(&mut edge).await,
        ClientToEdge::Delivered {
            server: "HOST1".into(),
            at: vec![place(&msg("b", 20))]
        }
    );
    let ClientToEdge::Ping { nonce } = recv(&mut edge).await else {
        panic!("expected a Ping after the read mark")
    };
    send(&mut edge, EdgeToClient::Pong { nonce }).await;
    assert_eq!(pop.line().await, "+OK");
    // With nothing sent since, NOOP costs the line nothing.
    assert_eq!(pop.cmd("NOOP").await, "+OK");

    pop.s.write_all(b"TOP 3 0\r\n").await.unwrap();
    let ClientToEdge::Request { id, op, .. } = recv(&mut edge).await else {
        panic!("expected a request")
    };
    assert_eq!(
        op,
        Op::Top {
            msg: msg("c", 5),
            lines: 0
        }
    );
    send(
        &mut edge,
        EdgeToClient::Response {
            id,
            result: Ok(Reply::Body(b"Subject: c\r\n\r\n".to_vec())),
        },
    )
    .await;
    assert_eq!(pop.line().await, "+OK");
    pop.body().await;

    // TOP is never acknowledged: the next thing the edge hears is the DELE.
    pop.s.write_all(b"DELE 1\r\n").await.unwrap();
    let ClientToEdge::Request { id, op, .. } = recv(&mut edge).await else {
        panic!("expected DELE, not Delivered")
    };
    assert_eq!(op, Op::Dele { msg: msg("a", 10) });
    send(
        &mut edge,
        EdgeToClient::Response {
            id,
            result: Ok(Reply::Done),
        },
    )
    .await;
    assert_eq!(pop.line().await, "+OK Marked to be deleted.");
    assert_eq!(pop.cmd("STAT").await, "+OK 2 25");

    pop.s.write_all(b"QUIT\r\n").await.unwrap();
    assert_eq!(recv(&mut edge).await, ClientToEdge::Quit);
    let ok = |n: &str| ServerOutcome {
        name: n.into(),
        result: Ok(()),
    };
    send(
        &mut edge,
        EdgeToClient::Bye {
            servers: vec![ok("HOST1"), ok("HOST2")],
        },
    )
    .await;
    assert_eq!(pop.line().await, "+OK Logging out, messages deleted.");
    pop.closed().await;
    let closed = tokio::time::timeout(WAIT, edge.recv::<ClientToEdge>())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(closed, Received::Closed { .. }), "{closed:?}");
}

#[tokio::test]
async fn prefetched_bodies_are_answered_locally_and_marked_read_only_once_delivered() {
    let prefetch = Prefetch {
        enabled: true,
        budget: 100,
        max_message: 15,
        ..Prefetch::default()
    };
    let mut rig = rig_with(Timeouts::default(), prefetch).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    // Listing order, per server; "b" (20 octets) is over max_message.
    let want = |server: &str, m: MessageId| ClientToEdge::Want {
        server: server.into(),
        bodies: vec![WantedAt {
            at: place(&m),
            from: 0,
        }],
    };
    assert_eq!(recv(&mut edge).await, want("HOST1", msg("a", 10)));
    assert_eq!(recv(&mut edge).await, want("HOST2", msg("c", 5)));
    stream(&mut edge, "HOST1", msg("a", 10), b"A: 1\r\n\r\nx\r\n", 4).await;
    stream(&mut edge, "HOST2", msg("c", 5), b"C: 3\r\n\r\n", 100).await;

    // RETR 1 and TOP 3 come from the mirror: nothing on the line.
    assert_eq!(pop.cmd("RETR 1").await, "+OK 10 octets");
    assert_eq!(pop.body().await, "A: 1\r\n\r\nx\r\n");
    assert_eq!(pop.cmd("TOP 3 0").await, "+OK");
    assert_eq!(pop.body().await, "C: 3\r\n\r\n");
    // RETR 2 is asked for; its read mark batch of "a" goes first.
    pop.s.write_all(b"RETR 2\r\n").await.unwrap();
    assert_eq!(
        recv(&mut edge).await,
        ClientToEdge::Delivered {
            server: "HOST1".into(),
            at: vec![place(&msg("a", 10))]
        }
    );
    let ClientToEdge::Request { id, op, .. } = recv(&mut edge).await else {
        panic!("expected RETR 2")
    };
    assert_eq!(op, Op::Retr { msg: msg("b", 20) });
    stream(&mut edge, "HOST1", msg("b", 20), b"B: 2\r\n\r\n", 100).await;
    let streamed = EdgeToClient::Response {
        id,
        result: Ok(Reply::Streamed { total: 8 }),
    };
    send(&mut edge, streamed).await;
    assert_eq!(pop.line().await, "+OK 20 octets");
    pop.body().await;
    // QUIT: the mark for "b" goes before Quit; "c" was only prefetched
    // (and its head shown), never delivered: no mark.
    pop.s.write_all(b"QUIT\r\n").await.unwrap();
    assert_eq!(
        recv(&mut edge).await,
        ClientToEdge::Delivered {
            server: "HOST1".into(),
            at: vec![place(&msg("b", 20))]
        }
    );
    assert_eq!(recv(&mut edge).await, ClientToEdge::Quit);
}

#[tokio::test]
async fn a_retr_of_a_body_on_its_way_waits_for_it_without_a_request() {
    let prefetch = Prefetch {
        budget: 10,
        ..Prefetch::default()
    };
    let mut rig = rig_with(Timeouts::default(), prefetch).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    assert!(matches!(recv(&mut edge).await, ClientToEdge::Want { .. }));
    let body = b"A: 1\r\n\r\nx\r\n";
    let part = |offset: usize, data: &[u8]| EdgeToClient::Chunk {
        lf: false,
        server: "HOST1".into(),
        at: place(&msg("a", 10)),
        offset: offset as u64,
        total: body.len() as u64,
        data: data.to_vec(),
    };
    send(&mut edge, part(0, &body[..4])).await;
    pop.s.write_all(b"RETR 1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut edge, part(4, &body[4..])).await;
    assert_eq!(pop.line().await, "+OK 10 octets");
    assert_eq!(pop.body().await, "A: 1\r\n\r\nx\r\n");
    // No request went out: the next thing the edge hears is the mark,
    // sent ahead of Quit.
    pop.s.write_all(b"QUIT\r\n").await.unwrap();
    assert_eq!(
        recv(&mut edge).await,
        ClientToEdge::Delivered {
            server: "HOST1".into(),
            at: vec![place(&msg("a", 10))]
        }
    );
    assert_eq!(recv(&mut edge).await, ClientToEdge::Quit);
}

#[tokio::test]
async fn body_bytes_are_acknowledged_every_32_kib() {
    let mut rig = rig(Timeouts::default()).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    pop.s.write_all(b"RETR 1\r\n").await.unwrap();
    let ClientToEdge::Request { id, .. } = recv(&mut edge).await else {
        panic!("expected RETR 1")
    };
    let body = vec![b'x'; 70_000];
    stream(&mut edge, "HOST1", msg("a", 10), &body, 8192).await;
    assert_eq!(
        recv(&mut edge).await,
        ClientToEdge::Window { received: 32768 }
    );
    assert_eq!(
        recv(&mut edge).await,
        ClientToEdge::Window { received: 65536 }
    );
    let streamed = EdgeToClient::Response {
        id,
        result: Ok(Reply::Streamed { total: 70_000 }),
    };
    send(&mut edge, streamed).await;
    assert_eq!(pop.line().await, "+OK 10 octets");
}

#[tokio::test]
async fn a_body_that_breaks_the_stream_is_a_cut() {
    let mut rig = rig(Timeouts::default()).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    pop.s.write_all(b"RETR 1\r\n").await.unwrap();
    let ClientToEdge::Request { id, .. } = recv(&mut edge).await else {
        panic!("expected RETR 1")
    };
    // Bytes 4.. of a body whose first bytes never came; then "Streamed".
    let gap = EdgeToClient::Chunk {
        lf: false,
        server: "HOST1".into(),
        at: place(&msg("a", 10)),
        offset: 4,
        total: 10,
        data: b"xxxxxx".to_vec(),
    };
    send(&mut edge, gap).await;
    let streamed = EdgeToClient::Response {
        id,
        result: Ok(Reply::Streamed { total: 10 }),
    };
    send(&mut edge, streamed).await;
    let reply = pop.line().await;
    assert!(
        reply.starts_with("-ERR [SYS/TEMP] Line to the edge was lost;"),
        "{reply}"
    );
    assert!(reply.contains("broke the body stream"), "{reply}");
}

#[tokio::test]
async fn an_idle_line_is_pinged_and_a_silent_edge_is_a_cut() {
    let timeouts = Timeouts {
        ping_interval: Duration::from_millis(50),
        request: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let mut rig = rig(timeouts).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    let ClientToEdge::Ping { nonce } = recv(&mut edge).await else {
        panic!("expected a ping")
    };
    send(&mut edge, EdgeToClient::Pong { nonce }).await;
    // The next ping goes unanswered: the line counts as cut, and the mail
    // client hears of it at its next command.
    assert!(matches!(recv(&mut edge).await, ClientToEdge::Ping { .. }));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reply = pop.cmd("STAT").await;
    assert!(
        reply.starts_with("-ERR [SYS/TEMP] Line to the edge was lost;"),
        "{reply}"
    );
    assert!(reply.contains("Pong"), "{reply}");
    pop.closed().await;
}

#[tokio::test]
async fn eof_from_the_edge_during_retr_is_a_cut_never_success() {
    let mut rig = rig(Timeouts::default()).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    pop.s.write_all(b"RETR 1\r\n").await.unwrap();
    assert!(matches!(
        recv(&mut edge).await,
        ClientToEdge::Request { .. }
    ));
    drop(edge);
    let reply = pop.line().await;
    assert!(
        reply.starts_with("-ERR [SYS/TEMP] Line to the edge was lost;"),
        "{reply}"
    );
    assert!(reply.contains("without a close frame"), "{reply}");
    pop.closed().await;
}

#[tokio::test]
async fn a_mail_client_gone_mid_body_never_gets_its_message_marked_read() {
    let mut rig = rig(Timeouts::default()).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    pop.s.write_all(b"RETR 2\r\n").await.unwrap();
    let ClientToEdge::Request { id, .. } = recv(&mut edge).await else {
        panic!("expected a request")
    };
    // The body is not in the mirror: the proxy writes it on as it comes.
    let body = b"Subject: b\r\n\r\n.hi\r\n";
    let part = |offset: usize, data: &[u8]| EdgeToClient::Chunk {
        server: "HOST1".into(),
        at: place(&msg("b", 20)),
        offset: offset as u64,
        total: body.len() as u64,
        lf: false,
        data: data.to_vec(),
    };
    send(&mut edge, part(0, &body[..12])).await;
    assert_eq!(pop.line().await, "+OK 20 octets");
    send(&mut edge, part(12, &body[12..])).await;
    let result = Ok(Reply::Streamed { total: 19 });
    send(&mut edge, EdgeToClient::Response { id, result }).await;
    // The mail client reads no further and says nothing for longer than
    // the read-mark batch waits, then goes: the body was written, but
    // nothing shows it was taken. No `Delivered`, then or after.
    let quiet = tokio::time::sleep(std::time::Duration::from_secs(3));
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            _ = &mut quiet => break,
            m = edge.recv::<ClientToEdge>() => match m {
                Ok(Received::Msg(ClientToEdge::Delivered { .. })) => {
                    panic!("a body the mail client may not have taken was reported delivered")
                }
                Ok(Received::Msg(_)) => {}
                other => panic!("the session ended early: {other:?}"),
            },
        }
    }
    drop(pop);
    loop {
        match tokio::time::timeout(WAIT, edge.recv::<ClientToEdge>())
            .await
            .expect("the channel to end")
        {
            Ok(Received::Msg(ClientToEdge::Delivered { .. })) => {
                panic!("a body the mail client may not have taken was reported delivered")
            }
            Ok(Received::Msg(_)) => {}
            Ok(Received::Closed { .. }) | Err(_) => break,
        }
    }
}

#[tokio::test]
async fn a_mail_client_leaving_without_quit_closes_the_channel_with_a_reason() {
    let mut rig = rig(Timeouts::default()).await;
    let (pop, mut edge) = rig.logged_in().await;
    drop(pop);
    match tokio::time::timeout(WAIT, edge.recv::<ClientToEdge>())
        .await
        .unwrap()
        .unwrap()
    {
        Received::Closed { reason } => assert!(reason.contains("without QUIT"), "{reason}"),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_local_password_never_reaches_the_edge() {
    let mut rig = rig(Timeouts::default()).await;
    let mut pop = rig.mail_client().await;
    for _ in 0..3 {
        assert_eq!(pop.cmd("USER me").await, "+OK");
        // A guesser waits for each refusal.
        let env = causeway_net::TokioEnv::new();
        let asked = env.now();
        assert_eq!(
            pop.cmd("PASS guess").await,
            "-ERR [AUTH] Authentication failed."
        );
        assert!(env.now() - asked >= causeway_client::LOGIN_FAILURE_DELAY);
    }
    pop.closed().await;
    // The channel reached before the greeting never carried the user
    // information: it is closed with a reason, Hello unsent.
    let mut ch = rig.pending.take().unwrap();
    let closed = tokio::time::timeout(WAIT, ch.recv::<ClientToEdge>())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(closed, Received::Closed { .. }), "{closed:?}");
}

#[tokio::test]
async fn an_edge_out_of_reach_is_a_hangup_never_a_refused_password() {
    let mut rig = rig(Timeouts::default()).await;
    // Nobody accepts on the edge's port any more.
    let edge_addr = rig.edge.local_addr().unwrap();
    drop(std::mem::replace(
        &mut rig.edge,
        rig.env.bind("127.0.0.1:0").await.unwrap(),
    ));
    let _ = edge_addr;
    let mut s = rig.env.connect(&rig.proxy).await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("the proxy hangs up")
        .unwrap();
    assert_eq!(
        n,
        0,
        "no greeting, no -ERR: {:?}",
        String::from_utf8_lossy(&buf)
    );
}

#[tokio::test]
async fn a_refused_session_shows_the_edges_reason() {
    let mut rig = rig(Timeouts::default()).await;
    let mut pop = rig.mail_client().await;
    pop.login().await;
    let mut edge = rig.accept().await;
    send(
        &mut edge,
        EdgeToClient::Refused {
            error: causeway_proto::OpError::new(
                Some(causeway_proto::ErrCode::SysPerm),
                "server EVIL is not allowed",
            ),
        },
    )
    .await;
    assert_eq!(
        pop.line().await,
        "-ERR [SYS/PERM] The edge refused the session: server EVIL is not allowed"
    );
    pop.closed().await;
    // A full edge (try again later) is a hangup: no -ERR to PASS, which a
    // mail client would count as a wrong password.
    let mut pop = rig.mail_client().await;
    pop.login().await;
    let mut edge = rig.accept().await;
    send(
        &mut edge,
        EdgeToClient::Refused {
            error: causeway_proto::OpError::new(
                Some(causeway_proto::ErrCode::SysTemp),
                "too many sessions",
            ),
        },
    )
    .await;
    pop.closed().await;
}

#[tokio::test]
async fn a_line_lost_between_commands_fails_even_a_local_command() {
    let mut rig = rig(Timeouts::default()).await;
    let (mut pop, edge) = rig.logged_in().await;
    drop(edge);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // NOOP needs no edge, but the session it belongs to is gone.
    let reply = pop.cmd("NOOP").await;
    assert!(
        reply.starts_with("-ERR [SYS/TEMP] Line to the edge was lost;"),
        "{reply}"
    );
    pop.closed().await;
}

#[tokio::test]
async fn the_next_session_names_the_ones_a_cut_took_and_not_one_that_quit() {
    let mut rig = rig(Timeouts::default()).await;
    // s1: the line is cut during a RETR.
    let mut pop = rig.mail_client().await;
    pop.login().await;
    let mut edge = rig.accept().await;
    assert!(rig.supersedes.is_empty());
    welcome_as(&mut edge, "s1").await;
    assert_eq!(pop.line().await, "+OK Logged in.");
    pop.s.write_all(b"RETR 1\r\n").await.unwrap();
    recv(&mut edge).await;
    drop(edge);
    assert!(pop.line().await.starts_with("-ERR [SYS/TEMP]"));
    pop.closed().await;

    // s2 names s1 but is refused: s1 must be named again.
    let mut pop = rig.mail_client().await;
    pop.login().await;
    let mut edge = rig.accept().await;
    assert_eq!(rig.supersedes, ["s1"]);
    let error = causeway_proto::OpError::new(Some(causeway_proto::ErrCode::SysPerm), "no");
    send(&mut edge, EdgeToClient::Refused { error }).await;
    assert!(pop.line().await.starts_with("-ERR"));
    drop(edge);
    drop(pop);

    // s3 names s1 again and ends with Bye.
    let mut pop = rig.mail_client().await;
    pop.login().await;
    let mut edge = rig.accept().await;
    assert_eq!(rig.supersedes, ["s1"]);
    welcome_as(&mut edge, "s3").await;
    assert_eq!(pop.line().await, "+OK Logged in.");
    pop.s.write_all(b"QUIT\r\n").await.unwrap();
    assert_eq!(recv(&mut edge).await, ClientToEdge::Quit);
    send(&mut edge, EdgeToClient::Bye { servers: vec![] }).await;
    assert!(pop.line().await.starts_with("+OK"));
    pop.closed().await;

    // s4: s1 was handed to the edge in s3's Hello, and s3 ended properly.
    let mut pop = rig.mail_client().await;
    pop.login().await;
    let _edge = rig.accept().await;
    assert!(rig.supersedes.is_empty(), "{:?}", rig.supersedes);
}

/// A cut took the `Welcome`: the edge may have opened the session, and the
/// proxy knows it only by its `Hello`'s nonce, which the next `Hello`
/// names; one the edge refused opened nothing, and is not named.
#[tokio::test]
async fn the_next_session_names_by_its_nonce_one_whose_welcome_did_not_come() {
    let mut rig = rig(Timeouts::default()).await;
    let mut pop = rig.mail_client().await;
    pop.login().await;
    let edge = rig.accept().await;
    let lost = rig.nonce.clone();
    assert_eq!(lost.len(), 32, "{lost:?}");
    drop(edge);
    // The proxy reaches the edge again for the same mail client.
    let mut edge = rig.handshake().await;
    rig.hello(&mut edge).await;
    assert_eq!(rig.supersedes, std::slice::from_ref(&lost));
    assert_ne!(rig.nonce, lost, "a fresh nonce for every Hello");
    let error = causeway_proto::OpError::new(Some(causeway_proto::ErrCode::SysTemp), "full");
    send(&mut edge, EdgeToClient::Refused { error }).await;
    // Temporary: closed, never a -ERR to PASS (a "wrong password").
    pop.closed().await;
    drop(edge);

    let mut pop = rig.mail_client().await;
    pop.login().await;
    let _edge = rig.accept().await;
    assert_eq!(rig.supersedes, [lost], "the refused Hello is not named");
}

#[tokio::test]
async fn a_handshake_the_edge_drops_is_tried_again_before_the_greeting() {
    let mut rig = rig(Timeouts::default()).await;
    let (env, proxy) = (rig.env.clone(), rig.proxy.clone());
    let connect = async move {
        let s = env.connect(&proxy).await.unwrap();
        Pop { s, buf: Vec::new() }
    };
    // A busy edge (max_handshakes in progress) closes the first two
    // connections unheard; the third is handshaken.
    let edge = async {
        for _ in 0..2 {
            let (dropped, _) = rig
                .env
                .timeout(WAIT, "a connection", rig.edge.accept())
                .await
                .unwrap()
                .unwrap();
            drop(dropped);
        }
        rig.handshake().await
    };
    let (mut pop, ch) = tokio::join!(connect, edge);
    assert_eq!(pop.line().await, "+OK Causeway ready.");
    rig.pending = Some(ch);
    pop.login().await;
    let mut edge = rig.accept().await;
    welcome(&mut edge).await;
    assert_eq!(pop.line().await, "+OK Logged in.");
}
