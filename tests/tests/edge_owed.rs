//! Acknowledged work and the user's undo, where the line, the relay link
//! and the server's lock make it hard: a delete undone by RSET stays undone
//! when the relay link dies before the RSET reaches the server; a delete
//! whose session lost its server is carried out by the session that holds
//! the maildrop's lock meanwhile, never erased for a busy lock; a commit
//! that takes long is told to the client proxy while it lasts.

use std::time::Duration;

use causeway_edge::SimDisk;
use causeway_mailserver::{Faults, LockPolicy, ServerConfig};
use causeway_net::Env;
use causeway_proto::session::{ClientToEdge, EdgeToClient, ListingState, Op, Reply};
use causeway_tests::edge_world::*;

/// The server saw `command` (e.g. "DELE 2") in some session.
fn server_ran(store: &causeway_mailserver::MailStore, command: &str) -> bool {
    store
        .sessions()
        .iter()
        .any(|s| s.commands.iter().any(|c| c == command))
}

#[test]
fn rset_through_the_relay_stays_undone_when_the_link_dies_before_it_arrives() {
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
        let env = c.env.clone();
        let u = uidls(&c.welcome(vec![alice_via_relay()]).await[0]);
        c.dele("HOST1", &u[0]).await;
        // The DELE reached the server's session through the relay.
        let m = mail.clone();
        wait_until(&env, Duration::from_secs(10), "DELE at the server", || {
            server_ran(&m, "DELE 1")
        })
        .await;
        // From now on nothing the edge sends the relay arrives: the RSET
        // is answered to the client and lost with the link.
        turmoil::hold("edge", "relay");
        let (_, rset) = c.request("HOST1", Op::Rset).await;
        assert_eq!(rset, Ok(Reply::Done));
        turmoil::partition("edge", "relay");
        drop(c); // and the line dies too
        env.sleep(Duration::from_secs(40)).await;
        turmoil::repair("edge", "relay");
        let (m, e, r) = (mail.clone(), edge.clone(), relay.clone());
        wait_until(&env, Duration::from_secs(300), "everything to end", || {
            m.live_sessions().is_empty()
                && e.live_sessions() == 0
                && e.pending_work() == 0
                && r.live_server_sessions() == 0
        })
        .await;
        assert!(
            mail.is_present("alice", &u[0]),
            "the delete the user undid was committed\n{}",
            mail.report()
        );
        // The relay ended the session it lost with RSET, then QUIT.
        all_quit_no_locks(&mail, env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn an_owed_delete_is_carried_out_by_the_session_holding_the_lock() {
    // One session per maildrop; a silent session is dropped after 3 s and
    // its lock released at once.
    let config = ServerConfig {
        lock: LockPolicy::Exclusive {
            stale_after_abrupt: Duration::ZERO,
        },
        idle_timeout: Duration::from_secs(3),
        ..ServerConfig::default()
    };
    let disk = SimDisk::new();
    let mut w = world_journaled(config, &disk, |c| {
        c.timeouts.noop_interval = Duration::from_secs(2);
    });
    let (k, ek, mail, edge) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edge.clone(),
    );
    let d = disk.clone();
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let env = a.env.clone();
        let u = uidls(&a.welcome(vec![alice_direct()]).await[0]);
        a.dele("HOST1", &u[1]).await;
        let m = mail.clone();
        wait_until(&env, Duration::from_secs(10), "DELE at the server", || {
            server_ran(&m, "DELE 2")
        })
        .await;
        // The edge loses its server session (the server drops it as idle
        // behind the partition) and the mail client's line goes too.
        turmoil::partition("edge", "mail");
        drop(a);
        env.sleep(Duration::from_secs(30)).await;
        turmoil::repair("edge", "mail");
        // The user's next session gets the maildrop's lock before the
        // first session's worker tries again.
        let mut b = Client::connect(&k, &ek).await?;
        let listed = uidls(&b.welcome(vec![alice_direct()]).await[0]);
        let e = edge.clone();
        wait_until(
            &env,
            Duration::from_secs(120),
            "the work to be adopted",
            || e.adopted_items() > 0,
        )
        .await;
        let m = mail.clone();
        wait_until(&env, Duration::from_secs(30), "the adopted DELE", || {
            m.sessions()
                .iter()
                .filter(|s| s.commands.iter().any(|c| c.starts_with("DELE")))
                .count()
                >= 2
        })
        .await;
        assert_eq!(b.quit().await[0].result, Ok(()));
        let (m, e) = (mail.clone(), edge.clone());
        wait_until(&env, Duration::from_secs(60), "everything to end", || {
            m.live_sessions().is_empty() && e.live_sessions() == 0 && e.pending_work() == 0
        })
        .await;
        assert!(
            !mail.is_present("alice", &u[1]),
            "the acknowledged delete was never carried out\n{}",
            mail.report()
        );
        assert!(mail.is_present("alice", &u[0]) && mail.is_present("alice", &u[2]));
        assert!(listed.contains(&u[0]));
        assert_eq!(
            causeway_edge::journal::owed_entries(&d.durable()),
            0,
            "the journal still holds the work"
        );
        Ok(())
    });
    w.sim.run().unwrap();
}

/// A world whose server takes 22 s (returned) to answer anything, the
/// edge's timeouts set to wait for it.
fn slow_server() -> (World, Duration) {
    let slow = Duration::from_secs(22);
    let config = ServerConfig {
        faults: Faults {
            reply_delay_min: slow,
            reply_delay_max: slow,
            ..Faults::default()
        },
        ..exclusive()
    };
    let w = world_with(config, |c| {
        c.timeouts.server.command = slow * 2;
        c.timeouts.server.connect = slow * 2;
        c.timeouts.client_idle = slow * 4;
    });
    (w, slow)
}

#[test]
fn a_slow_login_is_told_opening_until_its_welcome() {
    // Every reply of the server takes 22 s, so logging in and listing take
    // about two minutes. The client proxy waits for `Welcome` on silence
    // (a minute), so the edge must say it is still opening meanwhile.
    let (mut w, slow) = slow_server();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let started = c.env.now();
        let listings = c.welcome(vec![alice_direct()]).await;
        let took = c.env.now().duration_since(started);
        assert!(took >= slow * 4, "opened in {took:?}");
        assert!(
            matches!(listings[0].state, ListingState::Ready { .. }),
            "{listings:?}"
        );
        let (silence, told) = c.opening;
        assert!(silence <= Duration::from_secs(11), "silent for {silence:?}");
        assert!(told >= 8, "told {told} times over {took:?}");
        c.quit().await;
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn a_slow_commit_after_quit_is_told_finishing_until_its_bye() {
    // Every reply of the server takes 22 s, so the QUIT that commits the
    // delete does too. The client proxy waits for `Bye` on silence (a
    // minute), so the edge must say it is still finishing meanwhile.
    let (mut w, _) = slow_server();
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let env = c.env.clone();
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        c.dele("HOST1", &u[0]).await;
        c.send(&ClientToEdge::Quit).await;
        let mut last = env.now();
        let mut told = 0;
        let servers = loop {
            let got = c.recv().await;
            let silence = env.now().duration_since(last);
            assert!(silence <= Duration::from_secs(11), "silent for {silence:?}");
            last = env.now();
            match got {
                Ok(EdgeToClient::Finishing) => told += 1,
                Ok(EdgeToClient::Bye { servers }) => break servers,
                other => panic!("expected Finishing or Bye, got {other:?}"),
            }
        };
        assert!(told >= 2, "told {told} times over a 22 s commit");
        assert!(servers.iter().all(|s| s.result.is_ok()), "{servers:?}");
        assert!(!mail.is_present("alice", &u[0]), "{}", mail.report());
        all_quit_no_locks(&mail, env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}
