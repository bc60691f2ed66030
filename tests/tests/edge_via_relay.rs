//! The edge reaching mail servers through the relay: the same guarantees as
//! direct, nothing readable on the edge <-> relay link, and a partitioned
//! link that loses no acknowledged delete and leaves no lock behind.

use std::time::Duration;

use causeway_mailserver::ServerConfig;
use causeway_net::Env;
use causeway_proto::user::Route;
use causeway_tests::edge_world::*;

#[test]
fn through_the_relay_with_nothing_in_the_clear() {
    let mut w = world(exclusive());
    let (k, ek, mail, edge, relay, tap) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edge.clone(),
        w.relay.clone(),
        w.relay_tap.clone(),
    );
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_via_relay()]).await[0]);
        assert_eq!(
            u,
            mail.present_uidls("alice")
                .iter()
                .map(|x| x.as_str().to_owned())
                .collect::<Vec<_>>()
        );
        assert_eq!(relay.live_server_sessions(), 1);
        let (id, body) = c.retr("HOST1", &u[0]).await;
        assert_eq!(body, mail.body("alice", &u[0]).unwrap());
        c.delivered(id).await;
        c.dele("HOST1", &u[1]).await;
        let bye = c.quit().await;
        assert_eq!(bye[0].result, Ok(()));
        assert!(mail.is_seen("alice", &u[0]));
        assert!(!mail.is_present("alice", &u[1]));
        wait_until(
            &c.env,
            Duration::from_secs(10),
            "the relay to end its link",
            || relay.live_links() == 0 && relay.live_server_sessions() == 0,
        )
        .await;
        assert_eq!((edge.live_sessions(), edge.live_replicas()), (0, 0));
        all_quit_no_locks(&mail, c.env.unix_millis());

        // What crossed the edge <-> relay link: plenty, none of it readable.
        let sent = tap.written_bytes().len();
        let received = tap.read_bytes().len();
        assert!(
            received > body.len() / 2,
            "the body did cross ({received} bytes)"
        );
        assert!(!tap.contains(ALICE_PW.as_bytes()), "password in the clear");
        assert!(!tap.contains(b"alice"), "user name in the clear");
        let line = body.split(|&b| b == b'\n').find(|l| l.len() > 30).unwrap();
        assert!(!tap.contains(line), "mail body in the clear");
        assert!(
            !tap.contains(b"UIDL") && !tap.contains(b"+OK"),
            "POP3 in the clear"
        );
        println!(
            "edge->relay {sent} bytes, relay->edge {received} bytes, body {} bytes",
            body.len()
        );
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn new_mail_during_a_relayed_session_never_moves_a_delete() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_via_relay()]).await[0]);
        let fresh = mail
            .deliver("alice", "Subject: new\r\n\r\nnew mail\r\n")
            .unwrap();
        c.dele("HOST1", &u[0]).await;
        assert_eq!(c.quit().await[0].result, Ok(()));
        assert!(!mail.is_present("alice", &u[0]));
        assert!(mail.is_present("alice", &u[1]) && mail.is_present("alice", fresh.as_str()));
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn two_servers_at_once_one_direct_one_via_relay() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail, mail2) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.mail2.clone(),
    );
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let bob = spec("HOST2", "mail2", "bob", BOB_PW, Route::Relay("R1".into()));
        let l = c.welcome(vec![alice_direct(), bob]).await;
        let (ua, ub) = (uidls(&l[0]), uidls(&l[1]));
        assert_eq!((ua.len(), ub.len()), (3, 2));
        let (ia, ba) = c.retr("HOST1", &ua[2]).await;
        let (ib, bb) = c.retr("HOST2", &ub[1]).await;
        assert_eq!(ba, mail.body("alice", &ua[2]).unwrap());
        assert_eq!(bb, mail2.body("bob", &ub[1]).unwrap());
        c.delivered(ia).await;
        c.delivered(ib).await;
        c.dele("HOST1", &ua[0]).await;
        c.dele("HOST2", &ub[0]).await;
        let bye = c.quit().await;
        assert!(bye.iter().all(|o| o.result.is_ok()), "{bye:?}");
        assert_eq!(
            bye.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["HOST1", "HOST2"]
        );
        assert!(mail.is_seen("alice", &ua[2]) && mail2.is_seen("bob", &ub[1]));
        assert!(!mail.is_present("alice", &ua[0]) && !mail2.is_present("bob", &ub[0]));
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn partitioned_relay_link_keeps_a_pending_delete() {
    let mut w = world(exclusive());
    let (k, ek, mail, edge, relay) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edge.clone(),
        w.relay.clone(),
    );
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_via_relay()]).await[0]);
        turmoil::partition("edge", "relay");
        c.dele("HOST1", &u[2]).await; // answered at once; the DELE is stuck
        // The relay notices the silent link and QUITs its server session;
        // the client keeps its own line alive meanwhile.
        let mut n = 0;
        while relay.live_server_sessions() > 0 {
            assert!(n < 30, "the relay never gave up the link");
            c.ping(n).await;
            c.env.sleep(Duration::from_secs(5)).await;
            n += 1;
        }
        let first = mail.sessions()[0].clone();
        assert_eq!(
            first.end_kind(),
            Some(causeway_mailserver::EndKind::Quit),
            "{}",
            mail.report()
        );
        turmoil::repair("edge", "relay");
        // Keep the client line alive while the edge finds out.
        for n in 100..103 {
            c.ping(n).await;
            c.env.sleep(Duration::from_secs(5)).await;
        }
        let bye = c.quit().await;
        assert_eq!(bye[0].result, Ok(()), "{}", mail.report());
        assert!(!mail.is_present("alice", &u[2]), "{}", mail.report());
        assert!(mail.is_present("alice", &u[0]) && mail.is_present("alice", &u[1]));
        assert!(
            mail.sessions().len() >= 2,
            "the edge reconnected\n{}",
            mail.report()
        );
        wait_until(&c.env, Duration::from_secs(10), "all ended", || {
            edge.live_sessions() == 0 && relay.live_links() == 0
        })
        .await;
        assert_eq!((edge.live_replicas(), edge.pending_work()), (0, 0));
        all_quit_no_locks(&mail, c.env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}

/// One user session through the relay after another: the second and third
/// take the link the first left (the relay waits on a link whose server
/// session ended with `Quit`), so the edge and the relay handshake once;
/// each server session still ends with QUIT, and a new password goes in
/// each `Open`, uncompressed, never beside mail.
#[test]
fn sessions_one_after_another_share_one_relay_link() {
    let mut w = world(exclusive());
    let (k, ek, mail, relay, tap) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.relay.clone(),
        w.relay_tap.clone(),
    );
    w.sim.client("client", async move {
        for round in 0..3 {
            let mut c = Client::connect(&k, &ek).await?;
            let u = uidls(&c.welcome(vec![alice_via_relay()]).await[0]);
            c.dele("HOST1", &u[0]).await;
            let bye = c.quit().await;
            assert_eq!(bye[0].result, Ok(()), "round {round}");
            assert!(!mail.is_present("alice", &u[0]), "round {round}");
            c.env.sleep(Duration::from_secs(5)).await;
        }
        assert_eq!(relay.handshakes(), 1, "one link carried all three");
        assert_eq!(mail.sessions().len(), 3, "{}", mail.report());
        all_quit_no_locks(&mail, u64::MAX / 2);
        assert!(!tap.contains(ALICE_PW.as_bytes()), "password in the clear");
        Ok(())
    });
    w.sim.run().unwrap();
}

/// The relay restarted while the edge kept a link to it: the next session's
/// `Open` on that link fails at once, and the edge opens a new link rather
/// than fail the user's session.
#[test]
fn a_kept_link_the_relay_dropped_is_replaced_at_once() {
    let mut w = world(exclusive());
    let (k, ek, mail, relay) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.relay.clone(),
    );
    let restart = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let asked = restart.clone();
    w.sim.client("client", async move {
        let (k, ek) = (&k, &ek);
        let use_it = |round: usize| async move {
            let mut c = Client::connect(k, ek).await?;
            let u = uidls(&c.welcome(vec![alice_via_relay()]).await[0]);
            assert_eq!(u.len(), 3 - round, "round {round}");
            c.dele("HOST1", &u[0]).await;
            let bye = c.quit().await;
            assert_eq!(bye[0].result, Ok(()), "round {round}");
            Ok::<_, Box<dyn std::error::Error>>(c.env)
        };
        let env = use_it(0).await?;
        asked.store(1, std::sync::atomic::Ordering::SeqCst);
        env.sleep(Duration::from_secs(2)).await;
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
        let t0 = env.now();
        use_it(1).await?;
        let took = env.now() - t0;
        assert!(took < Duration::from_secs(5), "the session took {took:?}");
        assert_eq!(relay.handshakes(), 2, "a new link after the restart");
        all_quit_no_locks(&mail, env.unix_millis());
        Ok(())
    });
    while !w.sim.step().unwrap() {
        if restart.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            w.sim.bounce("relay");
            restart.store(2, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
