//! Acknowledged work and the user's undo, where the line, the relay link
//! and the server's lock make it hard: a delete undone by RSET stays undone
//! when the relay link dies before the RSET reaches the server; a delete
//! whose session lost its server is carried out by the session that holds
//! the maildrop's lock meanwhile, never erased for a busy lock; a commit
//! that takes long is told to the client proxy while it lasts; a session
//! whose QUIT went unanswered does not take our other session's delete for
//! its own commit.

use std::time::Duration;

use causeway_edge::SimDisk;
use causeway_mailserver::{Faults, LockPolicy, ServerConfig};
use causeway_net::Env;
use causeway_pop3::Command;
use causeway_proto::session::{ClientToEdge, EdgeToClient, ListingState, Op, Reply};
use causeway_proto::user::{Route, ServerSpec};
use causeway_tests::edge_world::*;
use causeway_upstream::{ServerSession, ServerTimeouts, ServerTls};

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
    let (k, ek, mail, edge) = w.handles();
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
        quit_and_see_deleted(&mut b, &mail, &edge, &u[1]).await;
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

#[test]
fn work_handed_to_the_session_holding_the_maildrop_is_not_reported_committed() {
    // Two sessions of one maildrop at once (a server that does not lock);
    // the server refuses to commit at QUIT until told otherwise.
    let config = ServerConfig {
        faults: Faults {
            quit_refusal_probability: 1.0,
            ..Faults::default()
        },
        ..ServerConfig::default()
    };
    let mut w = world(config);
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let u = uidls(&a.welcome(vec![alice_direct()]).await[0]);
        let mut b = Client::connect(&k, &ek).await?;
        b.welcome(vec![alice_direct()]).await;
        a.dele("HOST1", &u[1]).await;
        // A's QUIT is refused; B holds the maildrop, so A's worker hands
        // its delete over. Its Bye must not say committed: the client
        // proxy would erase a delete its journal keeps until then.
        let outcome = a.quit().await.remove(0);
        let refused = outcome.result.expect_err("reported committed");
        assert!(
            refused.text.contains("not committed yet"),
            "{}",
            refused.text
        );
        assert!(edge.adopted_items() > 0, "the work was not handed over");
        mail.set_faults_enabled(false);
        quit_and_see_deleted(&mut b, &mail, &edge, &u[1]).await;
        Ok(())
    });
    w.sim.run().unwrap();
}

/// The session holding the maildrop QUITs, committing the work it
/// adopted; everything ends, and `uidl` is deleted on the server.
async fn quit_and_see_deleted(
    b: &mut Client,
    mail: &causeway_mailserver::MailStore,
    edge: &causeway_edge::EdgeState,
    uidl: &str,
) {
    assert_eq!(b.quit().await[0].result, Ok(()));
    let (m, e) = (mail.clone(), edge.clone());
    wait_until(&b.env, Duration::from_secs(60), "everything to end", || {
        m.live_sessions().is_empty() && e.live_sessions() == 0 && e.pending_work() == 0
    })
    .await;
    assert!(
        !mail.is_present("alice", uidl),
        "the acknowledged delete was never carried out\n{}",
        mail.report()
    );
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

/// Seed 9689 (over IMAP, where it failed) and its POP3 twin on a server
/// that lets sessions share a maildrop, as Dovecot does by default: a
/// delete our own other session committed while the first session's QUIT
/// went unanswered is no sign that the first session's batch was committed.
#[test]
fn our_own_other_sessions_delete_is_no_sign_that_a_batch_in_doubt_was_committed() {
    let relayed = || alice_imap(Route::Relay("R1".into()));
    another_delete_is_no_sign_of_a_commit(alice_direct, Some(alice_via_relay));
    another_delete_is_no_sign_of_a_commit(|| alice_imap(Route::Direct), Some(relayed));
}

/// An IMAP server's UIDL names one message for ever (no copy can be listed
/// by it), so a batch whose QUIT went unanswered is judged item by item
/// there: a message another program expunged meanwhile is no sign either.
#[test]
fn over_imap_another_programs_expunge_is_no_sign_that_a_batch_in_doubt_was_committed() {
    another_delete_is_no_sign_of_a_commit(|| alice_imap(Route::Direct), None);
}

/// Alice's session deletes all three messages of her server (reached by
/// `first`); its QUIT goes out and the answer is lost. Meanwhile the
/// second message is deleted and committed by another session: ours,
/// reached by `ours` (the user's other mail client), or else another
/// program's (one that speaks to the server directly). The first
/// session's other deletes, still listed, are still owed, and done.
fn another_delete_is_no_sign_of_a_commit(
    first: fn() -> ServerSpec,
    ours: Option<fn() -> ServerSpec>,
) {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut other = match ours {
            Some(spec) => {
                let mut b = Client::connect(&k, &ek).await?;
                b.welcome(vec![spec()]).await;
                Some(b)
            }
            None => None,
        };
        let mut a = Client::connect(&k, &ek).await?;
        let u = uidls(&a.welcome(vec![first()]).await[0]);
        // The other session deletes the second message after the first
        // listed it (before, the first's listing would leave it out).
        if let Some(b) = &mut other {
            b.dele("HOST1", &u[1]).await;
        }
        for m in &u {
            a.dele("HOST1", m).await;
        }
        // Every DELE reaches the server session (over POP3; over IMAP
        // they wait for QUIT), then its commit goes out and the answer
        // never comes.
        let env = a.env.clone();
        env.sleep(Duration::from_secs(1)).await;
        turmoil::partition("edge", "mail");
        a.send(&ClientToEdge::Quit).await;
        match &mut other {
            Some(b) => assert_eq!(b.quit().await[0].result, Ok(())),
            None => delete_elsewhere(&env, first(), 2).await,
        }
        assert!(!mail.is_present("alice", &u[1]), "{}", mail.report());
        env.sleep(Duration::from_secs(20)).await;
        assert!(
            mail.is_present("alice", &u[0]),
            "nothing of the first session committed yet"
        );
        turmoil::repair("edge", "mail");
        wait_until(&env, Duration::from_secs(120), "the owed deletes", || {
            edge.pending_work() == 0 && edge.live_sessions() == 0
        })
        .await;
        for m in &u {
            assert!(
                !mail.is_present("alice", m),
                "{m} left undone\n{}",
                mail.report()
            );
        }
        Ok(())
    });
    w.sim.run().unwrap();
}

/// Another program deletes message `n` of `spec`'s maildrop and commits.
async fn delete_elsewhere(env: &causeway_net::SimEnv, spec: ServerSpec, n: u32) {
    let (mut s, _) = ServerSession::open(
        env,
        &spec,
        &ServerTls::default(),
        ServerTimeouts::default(),
        1 << 20,
    )
    .await
    .unwrap();
    assert!(s.execute(&Command::Dele(n)).await.unwrap().status.is_ok());
    assert!(s.quit().await.unwrap().is_ok());
}
