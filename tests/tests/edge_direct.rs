//! The edge talking to mail servers directly: listing, read marks only after
//! `Delivered`, deletes that survive a cut line, UIDL re-resolution, refusals.

use std::time::Duration;

use causeway_mailserver::{EndKind, ServerConfig};
use causeway_net::{Env, SimEnv};
use causeway_pop3::Timeouts;
use causeway_pop3::client::Pop3Client;
use causeway_proto::ErrCode;
use causeway_proto::session::{ClientToEdge, EdgeToClient, ListingState, Op, Reply, WantedAt};
use causeway_proto::user::Route;
use causeway_tests::edge_world::*;
use causeway_wire::Keypair;

#[test]
fn listing_matches_the_server() {
    let mut w = world(ServerConfig::default());
    let (k, mail, edge) = (w.keys.client.clone(), w.mail.clone(), w.edge.clone());
    let ek = w.keys.edge.clone();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let l = c.welcome(vec![alice_direct()]).await;
        assert_eq!(l.len(), 1);
        let ListingState::Ready { messages } = &l[0].state else {
            panic!("{l:?}")
        };
        let want: Vec<_> = mail
            .messages("alice")
            .into_iter()
            .map(|m| (m.uidl.as_str().to_owned(), m.size as u64))
            .collect();
        let got: Vec<_> = messages.iter().map(|m| (m.uidl.clone(), m.size)).collect();
        assert_eq!(got, want);
        assert_eq!(edge.live_replicas(), 1);
        let bye = c.quit().await;
        assert_eq!(bye[0].result, Ok(()));
        wait_until(&c.env, Duration::from_secs(10), "session end", || {
            edge.live_sessions() == 0
        })
        .await;
        assert_eq!(edge.live_replicas(), 0);
        all_quit_no_locks(&mail, c.env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn a_body_sent_once_is_not_streamed_again_when_its_want_comes_up() {
    let mut w = world(ServerConfig::default());
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        // The mail client asks for u0 before the prefetch reaches it.
        c.retr("HOST1", &u[0]).await;
        // The listing's places: u[i] is at place i.
        let wanted = |i: usize| WantedAt {
            at: i as u32,
            from: 0,
        };
        let want = ClientToEdge::Want {
            server: "HOST1".into(),
            bodies: vec![wanted(0), wanted(1)],
        };
        c.send(&want).await;
        // u1 is streamed ahead; u0, sent already, is not sent again.
        c.retr("HOST1", &u[1]).await;
        c.ping(1).await;
        assert_eq!(c.streams_of("HOST1", &u[0]), 1);
        assert_eq!(c.streams_of("HOST1", &u[1]), 1);
        assert_eq!(c.quit().await.len(), 1);
        Ok(())
    });
    w.sim.run().unwrap();
}

/// The client proxy's mirror holds a body once its `Window` acknowledged
/// the body's last byte: the edge keeps no second copy of it (#18: a whole
/// prefetched mailbox per idle session), and fetches it again if asked.
#[test]
fn a_body_the_client_acknowledged_whole_is_not_kept_at_the_edge() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        let (_, body) = c.retr("HOST1", &u[0]).await;
        c.ping(1).await;
        assert_eq!(edge.cached_body_bytes(), 0, "acknowledged whole: let go");
        let fetches = |mail: &causeway_mailserver::MailStore| {
            mail.sessions()
                .iter()
                .flat_map(|s| s.commands.clone())
                .filter(|c| c.starts_with("TOP 1 ") || c == "RETR 1")
                .count()
        };
        assert_eq!(fetches(&mail), 1);
        assert_eq!(c.retr("HOST1", &u[0]).await.1, body, "fetched again, whole");
        assert_eq!(fetches(&mail), 2, "from the server");
        assert!(!mail.is_seen("alice", &u[0]), "fetching never marks");
        assert_eq!(c.quit().await.len(), 1);
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn retr_then_delivered_marks_seen_only_that_message() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        let (id, body) = c.retr("HOST1", &u[0]).await;
        assert_eq!(body, mail.body("alice", &u[0]).unwrap());
        // A second RETR (the edge let go of the body once the client's
        // `Window` said it arrived whole) is fetched again, identical.
        assert_eq!(c.retr("HOST1", &u[0]).await.1, body);
        // TOP: headers, blank line, one body line.
        let (_, top) = c
            .request(
                "HOST1",
                Op::Top {
                    msg: c.msg("HOST1", &u[0]),
                    lines: 1,
                },
            )
            .await;
        let Ok(Reply::Body(top)) = top else {
            panic!("{top:?}")
        };
        assert!(body.starts_with(&top) && top.len() < body.len());
        // TOP of an uncached message goes to the server, and never marks.
        let (_, top2) = c
            .request(
                "HOST1",
                Op::Top {
                    msg: c.msg("HOST1", &u[1]),
                    lines: 0,
                },
            )
            .await;
        assert!(matches!(top2, Ok(Reply::Body(_))), "{top2:?}");
        c.delivered(id).await;
        let bye = c.quit().await;
        assert_eq!(bye[0].result, Ok(()));
        assert!(mail.is_seen("alice", &u[0]), "{}", mail.report());
        assert!(!mail.is_seen("alice", &u[1]));
        assert!(!mail.is_seen("alice", &u[2]));
        wait_until(&c.env, Duration::from_secs(10), "session end", || {
            edge.live_sessions() == 0
        })
        .await;
        all_quit_no_locks(&mail, c.env.unix_millis());
        assert_eq!(edge.pending_work(), 0);
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn a_fetch_the_client_waits_on_goes_before_read_marks() {
    // The read mark of message 1 (a RETR of the whole message) and the
    // request for message 2 reach the edge together, as when a mail client
    // reads one message after another: the body the client waits on is
    // fetched first, the mark follows, and both happen. The server is 40 ms
    // away (a relay across a WAN would be): a mark first costs the waiting
    // client a server round trip, and the whole previous message again.
    let mut w = world(ServerConfig::default());
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        let (first, _) = c.retr("HOST1", &u[0]).await;
        c.delivered(first).await;
        let t = c.env.now();
        let (second, body) = c.retr("HOST1", &u[1]).await;
        // One server round trip (80 ms) and the line's (10 ms), in the
        // simulation's clock: not two server round trips.
        let took = c.env.now().saturating_duration_since(t);
        assert!(took < Duration::from_millis(160), "{took:?}");
        assert_eq!(body, mail.body("alice", &u[1]).unwrap());
        c.delivered(second).await;
        let bye = c.quit().await;
        assert_eq!(bye[0].result, Ok(()));
        let sessions = mail.sessions();
        let commands = &sessions[0].commands;
        let at = |what: &str| {
            commands
                .iter()
                .position(|c| c.starts_with(what))
                .unwrap_or_else(|| panic!("the server never saw {what}: {commands:?}"))
        };
        assert!(
            at("TOP 2 ") < at("RETR 1"),
            "the fetch of message 2 waited behind message 1's read mark: {commands:?}"
        );
        assert!(mail.is_seen("alice", &u[0]) && mail.is_seen("alice", &u[1]));
        all_quit_no_locks(&mail, c.env.unix_millis());
        Ok(())
    });
    w.sim
        .set_link_latency("edge", "mail", Duration::from_millis(40));
    w.sim
        .set_link_latency("edge", "client", Duration::from_millis(5));
    w.sim.run().unwrap();
}

#[test]
fn retr_without_delivered_then_cut_leaves_it_unread() {
    let mut w = world(exclusive());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        let _ = c.retr("HOST1", &u[0]).await;
        // The line goes silent: no Delivered, no Quit.
        turmoil::partition("client", "edge");
        wait_until(
            &c.env,
            Duration::from_secs(60),
            "the edge to see the cut",
            || edge.live_sessions() == 0,
        )
        .await;
        assert!(mail.is_present("alice", &u[0]));
        assert!(!mail.is_seen("alice", &u[0]), "{}", mail.report());
        assert_eq!(edge.live_replicas(), 0);
        all_quit_no_locks(&mail, c.env.unix_millis());
        let rec = &edge.sessions()[0];
        assert!(
            matches!(&rec.end, Some(causeway_edge::SessionEnd::LineCut(r)) if r.contains("ms")),
            "{rec:?}"
        );
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn acknowledged_delete_survives_the_client_vanishing() {
    delete_survives_the_client_vanishing(alice_direct);
}

#[test]
fn acknowledged_delete_via_relay_survives_the_client_vanishing() {
    delete_survives_the_client_vanishing(alice_via_relay);
}

#[test]
fn dele_and_rset_answer_like_dovecot() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        c.dele("HOST1", &u[0]).await;
        let (_, again) = c
            .request(
                "HOST1",
                Op::Dele {
                    msg: c.msg("HOST1", &u[0]),
                },
            )
            .await;
        assert_eq!(again.unwrap_err().text, "Message is deleted.");
        let (_, retr) = c
            .request(
                "HOST1",
                Op::Retr {
                    msg: c.msg("HOST1", &u[0]),
                },
            )
            .await;
        assert_eq!(retr.unwrap_err().text, "Message is deleted.");
        let (_, rset) = c.request("HOST1", Op::Rset).await;
        assert_eq!(rset, Ok(Reply::Done));
        c.dele("HOST1", &u[2]).await;
        assert_eq!(c.quit().await[0].result, Ok(()));
        assert!(
            mail.is_present("alice", &u[0]),
            "RSET undid it\n{}",
            mail.report()
        );
        assert!(!mail.is_present("alice", &u[2]));
        Ok(())
    });
    w.sim.run().unwrap();
}

/// Logs in as alice from the test host, deletes message 1, QUITs: numbers in
/// every later server session shift down by one.
async fn delete_first_message_elsewhere(env: &SimEnv) {
    let s = env.connect("mail:110").await.unwrap();
    let (mut p, _) = Pop3Client::start(env.clone(), s, Timeouts::default(), 1 << 20)
        .await
        .unwrap();
    p.login(b"alice", ALICE_PW.as_bytes()).await.unwrap();
    p.dele(1).await.unwrap();
    assert!(p.quit().await.unwrap().is_ok());
}

#[test]
fn new_mail_and_shifted_numbers_never_move_a_delete() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        // New mail arrives during the session, and the edge's server session
        // is lost, so the delete must be redone in a new one where someone
        // else has deleted message 1 meanwhile.
        let fresh = mail
            .deliver("alice", "Subject: new\r\n\r\nnew mail\r\n")
            .unwrap();
        turmoil::partition("edge", "mail");
        c.dele("HOST1", &u[2]).await; // number 3 now; number 2 after the shift
        delete_first_message_elsewhere(&c.env).await;
        c.env.sleep(Duration::from_secs(8)).await; // the edge's DELE times out
        turmoil::repair("edge", "mail");
        let bye = c.quit().await;
        assert_eq!(bye[0].result, Ok(()), "{}", mail.report());
        assert!(!mail.is_present("alice", &u[2]), "{}", mail.report());
        assert!(mail.is_present("alice", &u[1]), "{}", mail.report());
        assert!(
            mail.is_present("alice", fresh.as_str()),
            "{}",
            mail.report()
        );
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn server_not_on_the_allow_list_is_refused_by_name() {
    let mut w = world(ServerConfig::default());
    let (k, ek, edge) = (w.keys.client.clone(), w.keys.edge.clone(), w.edge.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let evil = spec("EVIL", "evil", "alice", ALICE_PW, Route::Direct);
        match c.hello(vec![alice_direct(), evil]).await {
            Ok(EdgeToClient::Refused { error }) => {
                assert!(
                    error.text.contains("EVIL") && error.text.contains("evil:110"),
                    "{error}"
                );
                assert_eq!(
                    error.code,
                    Some(ErrCode::SysPerm),
                    "the configuration must change"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut c = Client::connect(&k, &ek).await?;
        let unknown = spec(
            "X",
            "mail",
            "alice",
            ALICE_PW,
            Route::Relay("nowhere".into()),
        );
        match c.hello(vec![unknown]).await {
            Ok(EdgeToClient::Refused { error }) => {
                assert!(error.text.contains("nowhere"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        wait_until(&c.env, Duration::from_secs(10), "sessions to end", || {
            edge.live_sessions() == 0
        })
        .await;
        assert_eq!(edge.live_replicas(), 0);
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn unknown_client_key_is_refused() {
    let mut w = world(ServerConfig::default());
    let (ek, edge) = (w.keys.edge.clone(), w.edge.clone());
    w.sim.client("client", async move {
        let stranger = Keypair::generate(&causeway_net::EnvRng::from_seed([42; 32]));
        let mut c = Client::connect(&stranger, &ek).await?;
        let r = c.hello(vec![alice_direct()]).await;
        // The edge closes with its reason; the reset of the dropped socket
        // may overtake it. Either way no session exists.
        let e = r.unwrap_err();
        assert!(e.contains("allow list") || e.contains("reset"), "{e}");
        assert!(edge.sessions().is_empty());
        assert_eq!(edge.live_sessions(), 0);
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn an_address_that_keeps_failing_to_authenticate_is_closed_before_its_handshake() {
    // Three failures allowed in a row, then one more try per 10 s.
    let mut w = world_with(ServerConfig::default(), |c| {
        c.admission = causeway_edge::AdmissionLimits {
            max_handshakes: 256,
            failures_burst: 3,
            failures_per_minute: 6,
        };
    });
    let (k, ek, edge) = (w.keys.client.clone(), w.keys.edge.clone(), w.edge.clone());
    w.sim.client("client", async move {
        let stranger = Keypair::generate(&causeway_net::EnvRng::from_seed([42; 32]));
        for _ in 0..3 {
            let mut c = Client::connect(&stranger, &ek).await?;
            assert!(c.hello(vec![alice_direct()]).await.is_err());
        }
        assert_eq!(edge.refused_connections(), 0);
        // Now even an allowed key from this address is closed unheard: the
        // edge cannot tell who is behind an address before the handshake.
        let refused = Client::connect(&k, &ek).await;
        let e = refused.err().expect("closed before the handshake");
        assert!(e.is_line_failure(), "{e}");
        assert_eq!(edge.refused_connections(), 1);
        // A credit is back after 10 s.
        tokio::time::sleep(Duration::from_secs(11)).await;
        let mut c = Client::connect(&k, &ek).await?;
        let listings = c.welcome(vec![alice_direct()]).await;
        assert_eq!(listings.len(), 1);
        c.quit().await;
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn handshakes_in_progress_are_capped() {
    let mut w = world_with(ServerConfig::default(), |c| {
        c.admission.max_handshakes = 1;
    });
    let (k, ek, edge) = (w.keys.client.clone(), w.keys.edge.clone(), w.edge.clone());
    w.sim.client("client", async move {
        // A connection that never speaks holds the one place.
        let env = SimEnv::new(1, "silent", 0);
        let silent = env.connect("edge:5000").await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let e = Client::connect(&k, &ek).await.err().expect("no place left");
        assert!(e.is_line_failure(), "{e}");
        assert_eq!(edge.refused_connections(), 1);
        // Its place is free once it goes.
        drop(silent);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = Client::connect(&k, &ek).await?;
        assert_eq!(c.welcome(vec![alice_direct()]).await.len(), 1);
        c.quit().await;
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn wrong_passwords_through_the_edge_are_limited_per_account() {
    // The defaults: 5 in a row, then one back every 30 s.
    limited_per_account(causeway_edge::LoginLimits::default(), 5, 31);
}

#[test]
fn the_wrong_password_limits_are_the_configured_ones() {
    let limits = causeway_edge::LoginLimits {
        account_burst: 2,
        account_per_minute: 12,
        ..causeway_edge::LoginLimits::default()
    };
    limited_per_account(limits, 2, 6);
}

/// `tries` wrong passwords reach the server; the next is refused by the
/// edge itself, and a try is back `back_after_s` later.
fn limited_per_account(limits: causeway_edge::LoginLimits, tries: usize, back_after_s: u64) {
    let mut w = world_with(ServerConfig::default(), |c| c.logins = limits);
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let wrong = spec("HOST1", "mail", "alice", "guess", Route::Direct);
        let code = |l: &[causeway_proto::session::ServerListing]| match &l[0].state {
            ListingState::Unavailable { error } => error.code,
            other => panic!("{other:?}"),
        };
        for _ in 0..tries {
            let mut c = Client::connect(&k, &ek).await?;
            assert_eq!(
                code(&c.welcome(vec![wrong.clone()]).await),
                Some(ErrCode::Auth)
            );
            c.quit().await;
        }
        let asked = mail.sessions().len();
        // The next is refused by the edge: the server hears nothing, and
        // the mail client gets a temporary error, not a wrong password.
        let mut c = Client::connect(&k, &ek).await?;
        let l = c
            .welcome(vec![
                wrong.clone(),
                spec("HOST2", "mail2", "bob", BOB_PW, Route::Direct),
            ])
            .await;
        assert_eq!(code(&l), Some(ErrCode::LoginDelay));
        assert!(
            matches!(l[1].state, ListingState::Ready { .. }),
            "another account is not held back"
        );
        c.quit().await;
        assert_eq!(mail.sessions().len(), asked);
        // A try is back, and the right password works.
        tokio::time::sleep(Duration::from_secs(back_after_s)).await;
        let mut c = Client::connect(&k, &ek).await?;
        let l = c.welcome(vec![alice_direct()]).await;
        assert!(matches!(l[0].state, ListingState::Ready { .. }), "{l:?}");
        c.quit().await;
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn a_locked_server_is_unavailable_while_another_works() {
    let mut w = world(exclusive());
    let (k, ek, mail, mail2) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.mail2.clone(),
    );
    w.sim.client("client", async move {
        let env = SimEnv::new(SEED, "holder", 0);
        let s = env.connect("mail:110").await?;
        let (mut holder, _) =
            Pop3Client::start(env.clone(), s, Timeouts::default(), 1 << 20).await?;
        holder.login(b"alice", ALICE_PW.as_bytes()).await?;

        let mut c = Client::connect(&k, &ek).await?;
        // (TLS is never used in the simulation: rustls draws OS randomness.
        // TLS failures are tested over loopback in tests/tls.rs.)
        let wrong = spec("WRONG", "mail2", "alice", "not-the-password", Route::Direct);
        let bob = spec("HOST2", "mail2", "bob", BOB_PW, Route::Direct);
        let l = c.welcome(vec![alice_direct(), bob, wrong]).await;
        match &l[0].state {
            ListingState::Unavailable { error } => {
                assert_eq!(error.code, Some(ErrCode::InUse), "{error}")
            }
            s => panic!("{s:?}"),
        }
        match &l[2].state {
            ListingState::Unavailable { error } => {
                assert_eq!(error.code, Some(ErrCode::Auth), "{error}")
            }
            s => panic!("{s:?}"),
        }
        let u = uidls(&l[1]);
        let (id, body) = c.retr("HOST2", &u[0]).await;
        assert_eq!(body, mail2.body("bob", &u[0]).unwrap());
        c.delivered(id).await;
        let (_, locked) = c
            .request(
                "HOST1",
                Op::Retr {
                    msg: c.msg("HOST1", "x"),
                },
            )
            .await;
        assert_eq!(locked.unwrap_err().code, Some(ErrCode::InUse));
        let bye = c.quit().await;
        assert_eq!(bye[1].result, Ok(()));
        assert!(mail2.is_seen("bob", &u[0]));
        assert!(holder.quit().await?.is_ok());
        // The edge's refused logins still ended with QUIT, in AUTHORIZATION
        // state: no server session of ours ends abruptly, refused or not.
        let refused: Vec<_> = mail
            .sessions()
            .into_iter()
            .filter(|r| r.user.is_none() && r.commands.iter().any(|c| c.starts_with("PASS")))
            .collect();
        assert!(!refused.is_empty(), "{mail}");
        for r in refused {
            assert_eq!(r.end.as_ref().map(|e| e.kind), Some(EndKind::Quit), "{r:?}");
        }
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn shutdown_finishes_acknowledged_work() {
    let mut w = world(exclusive());
    let (k, ek, mail, edge) = w.handles();
    let stop = w.shutdown_edge.clone();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        c.dele("HOST1", &u[0]).await;
        stop.send_replace(true);
        wait_until(&c.env, Duration::from_secs(60), "shutdown", || {
            edge.live_sessions() == 0
        })
        .await;
        assert!(!mail.is_present("alice", &u[0]));
        assert_eq!(
            edge.sessions()[0].end,
            Some(causeway_edge::SessionEnd::Shutdown)
        );
        all_quit_no_locks(&mail, c.env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn noop_keeps_an_idle_server_session_alive() {
    // The server hangs up after 15 s of silence; the edge NOOPs every 10 s.
    let cfg = ServerConfig {
        idle_timeout: Duration::from_secs(15),
        ..ServerConfig::default()
    };
    let mut w = world(cfg);
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        for n in 0..12 {
            c.ping(n).await;
            c.env.sleep(Duration::from_secs(5)).await;
        }
        let (id, _) = c.retr("HOST1", &u[0]).await;
        c.delivered(id).await;
        assert_eq!(c.quit().await[0].result, Ok(()));
        assert_eq!(mail.sessions().len(), 1, "{}", mail.report());
        assert!(
            mail.sessions()[0]
                .commands
                .iter()
                .filter(|c| *c == "NOOP")
                .count()
                >= 5
        );
        assert!(mail.is_seen("alice", &u[0]));
        Ok(())
    });
    w.sim.run().unwrap();
}

/// An acknowledged delete is never given up: past the completion deadline
/// the edge says so loudly and goes on trying, and commits it once the
/// server can be reached again.
#[test]
fn unreachable_server_is_retried_past_the_deadline_until_it_commits() {
    let mut w = world_with(ServerConfig::default(), |c| {
        c.timeouts.completion_deadline = Duration::from_secs(60);
    });
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        turmoil::partition("edge", "mail");
        c.dele("HOST1", &u[0]).await;
        assert_eq!(edge.pending_work(), 1);
        let env = c.env.clone();
        drop(c);
        // Three times the deadline: still owed, never dropped.
        env.sleep(Duration::from_secs(180)).await;
        assert_eq!(edge.pending_work(), 1, "still owed past the deadline");
        assert!(mail.is_present("alice", &u[0]));
        turmoil::repair("edge", "mail");
        wait_until(
            &env,
            Duration::from_secs(120),
            "the delete to commit",
            || !mail.is_present("alice", &u[0]),
        )
        .await;
        wait_until(&env, Duration::from_secs(30), "the session to end", || {
            edge.live_sessions() == 0
        })
        .await;
        let rec = &edge.sessions()[0];
        assert!(rec.abandoned.is_empty(), "{rec:?}");
        assert_eq!((edge.pending_work(), edge.live_replicas()), (0, 0));
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn a_place_outside_the_listing_ends_the_session_and_its_server_sessions() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        let past = u.len() as u32;
        c.send(&ClientToEdge::Want {
            server: "HOST1".into(),
            bodies: vec![WantedAt { at: past, from: 0 }],
        })
        .await;
        let answer = c.recv().await;
        assert!(answer.is_err(), "a broken client proxy: {answer:?}");
        wait_until(&c.env, Duration::from_secs(30), "session end", || {
            edge.live_sessions() == 0
        })
        .await;
        assert_eq!(edge.live_replicas(), 0);
        all_quit_no_locks(&mail, c.env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}
