//! A crash-safe edge: the edge is crashed (its tasks dropped, its disk's
//! unsynced writes lost) at every step of the delete path, then restarted on
//! the same simulated disk. In every case, after the restart and a quiet
//! period, an acknowledged delete is committed on the server, the journal is
//! empty (credentials included), and every server session ended with QUIT,
//! or abruptly for the one the crash cut, whose lock the server then lets go.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use causeway_edge::{CommitFault, SimDisk};
use causeway_mailserver::{LockPolicy, MailStore, ServerConfig};
use causeway_net::Env;
use causeway_proto::ErrCode;
use causeway_proto::session::{ClientToEdge, ListingState, Op, Reply};
use causeway_proto::user::Route;
use causeway_tests::edge_world::*;

/// One session per maildrop; a session cut without QUIT keeps its lock 30 s;
/// one that just goes silent (the crash's FIN lost in a partition) is timed
/// out after 120 s. The replay retries through `[IN-USE]` meanwhile.
fn locking() -> ServerConfig {
    ServerConfig {
        lock: LockPolicy::Exclusive {
            stale_after_abrupt: Duration::from_secs(30),
        },
        idle_timeout: Duration::from_secs(120),
        ..ServerConfig::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// The journal commit of the delete has not synced: the client gets no
    /// `Done`, and nothing may be deleted.
    BeforeCommit,
    /// The delete is durable in the journal; `Done` was not sent.
    AfterCommit,
    /// `Done` reached the client; `DELE` has not reached the server.
    AfterDone,
    /// `DELE` reached the server; no `QUIT` yet.
    AfterDele,
    /// `QUIT` answered `+OK`; the journal entry is not erased yet.
    AfterQuit,
}

fn server_saw(store: &MailStore, prefix: &str) -> bool {
    store
        .sessions()
        .iter()
        .any(|s| s.commands.iter().any(|c| c.starts_with(prefix)))
}

fn count_saw(store: &MailStore, prefix: &str) -> usize {
    store
        .sessions()
        .iter()
        .filter(|s| s.commands.iter().any(|c| c.starts_with(prefix)))
        .count()
}

fn crash_at(point: Point, via_relay: bool) {
    crash_with_copy(point, via_relay, false);
}

/// With `copy`: an exact copy of the deleted message (same UIDL, same
/// size, as a broken migration delivers) arrives while the edge is down.
/// The copy is not the message the user deleted, and it stays.
fn crash_with_copy(point: Point, via_relay: bool, copy: bool) {
    let disk = SimDisk::new();
    let mut w = world_journaled(locking(), &disk, |_| {});
    let (k, ek, mail, edges) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edges.clone(),
    );
    let spec = if via_relay {
        alice_via_relay()
    } else {
        alice_direct()
    };
    let next_hop = if via_relay { "relay" } else { "mail" };
    let crash_now = Arc::new(AtomicBool::new(false));
    let victim = mail.present_uidls("alice")[1].as_str().to_owned();
    let read = mail.present_uidls("alice")[0].as_str().to_owned();
    let (d, m, flag, v) = (
        disk.clone(),
        mail.clone(),
        crash_now.clone(),
        victim.clone(),
    );
    let body = mail.body("alice", &victim).expect("the victim is there");
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![spec]).await[0]);
        assert_eq!((&u[0], &u[1]), (&read, &v));
        // A delivered body: its read mark is journaled and owed too.
        let (id, _) = c.retr("HOST1", &read).await;
        c.delivered(id).await;
        c.ping(1).await; // the edge has handled Delivered
        match point {
            Point::BeforeCommit => d.inject(CommitFault::StallBeforeSync),
            Point::AfterCommit => d.inject(CommitFault::StallAfterSync),
            Point::AfterDone => turmoil::partition("edge", next_hop),
            _ => {}
        }
        let r = c
            .try_request(
                "HOST1",
                Op::Dele {
                    msg: c.msg("HOST1", &v),
                },
            )
            .await;
        let acked = matches!(r, Ok(Ok(Reply::Done)));
        match point {
            Point::BeforeCommit | Point::AfterCommit => {
                assert!(!acked, "the crash came before Done: {r:?}")
            }
            _ => assert!(acked, "{r:?}"),
        }
        match point {
            Point::AfterDone => {
                flag.store(true, Ordering::SeqCst);
                c.env.sleep(Duration::from_secs(2)).await;
                turmoil::repair("edge", next_hop);
            }
            Point::AfterQuit => {
                // The record of what the QUIT is for syncs; the erase
                // after QUIT +OK never does.
                d.inject(CommitFault::Pass);
                d.inject(CommitFault::StallBeforeSync);
                c.send(&ClientToEdge::Quit).await;
                let bye = c.recv().await;
                assert!(bye.is_err(), "the edge crashed before Bye: {bye:?}");
                if copy {
                    assert!(!m.is_present("alice", &v), "QUIT committed the delete");
                    m.deliver_with_uidl("alice", &body, &v, None).unwrap();
                }
            }
            _ => {}
        }
        let env = c.env.clone();
        drop(c);
        wait_until(&env, Duration::from_secs(120), "the restart", || {
            edges.started() >= 2
        })
        .await;
        wait_until(&env, Duration::from_secs(300), "the replay", || {
            edges.latest().replay_finished() && d.is_empty()
        })
        .await;
        // The quiet period: stale locks of cut sessions run out.
        env.sleep(Duration::from_secs(40)).await;

        let e = edges.latest();
        if point == Point::BeforeCommit {
            assert!(
                m.is_present("alice", &v),
                "never acknowledged, never journaled: kept"
            );
        } else if copy {
            assert!(
                m.present_uidls("alice").iter().any(|u| u.as_str() == v),
                "the copy that came after the delete stays\n{}",
                m.report()
            );
        } else {
            assert!(!m.is_present("alice", &v), "{point:?}: {}", m.report());
        }
        assert!(
            m.is_seen("alice", &read),
            "read mark replayed\n{}",
            m.report()
        );
        assert!(m.is_present("alice", &read));
        assert_eq!(
            m.present_uidls("alice").len(),
            if point == Point::BeforeCommit || copy {
                3
            } else {
                2
            }
        );
        assert!(d.is_empty(), "journal empty, credentials erased");
        assert!(!d.contains(ALICE_PW.as_bytes()));
        assert_eq!(e.journal_entries(), 0);
        assert_eq!(e.pending_work(), 0);
        if point == Point::AfterQuit {
            // Idempotent: the replay found the message gone and sent no
            // DELE (the read mark it did redo: marking seen twice is moot).
            assert_eq!(count_saw(&m, "DELE"), 1, "{}", m.report());
        }
        quit_or_crash_cut_no_locks(&m, 1, env.unix_millis());
        println!(
            "{point:?} via {next_hop}: {} server sessions, disk counts {:?}",
            m.sessions().len(),
            d.counts()
        );
        Ok(())
    });

    let trigger = {
        let (d, m, flag) = (disk.clone(), mail.clone(), crash_now.clone());
        move || match point {
            Point::BeforeCommit | Point::AfterCommit | Point::AfterQuit => d.stalled() > 0,
            Point::AfterDone => flag.load(Ordering::SeqCst),
            Point::AfterDele => server_saw(&m, "DELE"),
        }
    };
    run_with_crash(&mut w, &disk, trigger, Duration::from_secs(5));
    // What the crash left on the disk was sealed: checked at the crash by
    // `crash_leaves_no_plaintext` below; here the end state.
    assert!(disk.is_empty());
}

#[test]
fn crash_before_the_journal_commit() {
    crash_at(Point::BeforeCommit, false);
}

#[test]
fn crash_after_the_journal_commit_before_done() {
    crash_at(Point::AfterCommit, false);
}

#[test]
fn crash_after_done_before_dele_reached_the_server() {
    crash_at(Point::AfterDone, false);
}

#[test]
fn crash_after_dele_before_quit() {
    crash_at(Point::AfterDele, false);
}

#[test]
fn crash_after_quit_before_the_journal_erase() {
    crash_at(Point::AfterQuit, false);
}

/// The QUIT that committed the delete was answered, the erase was not
/// made, and an exact copy arrived: the replay must not take the copy for
/// the message it owes a delete (the journal keeps the message listed
/// after it, and the copy is listed after that one).
#[test]
fn a_copy_delivered_while_the_edge_is_down_is_not_deleted_by_the_replay() {
    crash_with_copy(Point::AfterQuit, false, true);
}

#[test]
fn via_relay_crash_before_the_journal_commit() {
    crash_at(Point::BeforeCommit, true);
}

#[test]
fn via_relay_crash_after_the_journal_commit_before_done() {
    crash_at(Point::AfterCommit, true);
}

#[test]
fn via_relay_crash_after_done_before_dele_reached_the_server() {
    crash_at(Point::AfterDone, true);
}

#[test]
fn via_relay_crash_after_dele_before_quit() {
    crash_at(Point::AfterDele, true);
}

#[test]
fn via_relay_crash_after_quit_before_the_journal_erase() {
    crash_at(Point::AfterQuit, true);
}

/// At the instant of the crash the journal holds the delete, the read mark
/// and the server's credentials, none of it readable; a new client is served
/// while the replay waits for the crashed session's stale lock.
#[test]
fn crash_leaves_no_plaintext_and_new_clients_are_served_during_replay() {
    let disk = SimDisk::new();
    let mut w = world_journaled(locking(), &disk, |_| {});
    let (k, ek, mail, edges) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edges.clone(),
    );
    let (d, m) = (disk.clone(), mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        c.dele("HOST1", &u[2]).await;
        let env = c.env.clone();
        drop(c);
        wait_until(&env, Duration::from_secs(60), "the restart", || {
            edges.started() >= 2
        })
        .await;
        env.sleep(Duration::from_secs(1)).await;
        // alice's replay is locked out for 30 s by the crashed session; bob
        // (on the same server) is served meanwhile.
        let mut c = Client::connect(&k, &ek).await?;
        let bob = spec("HOST1", "mail", "bob", BOB_PW, Route::Direct);
        let l = c.welcome(vec![bob]).await;
        assert!(matches!(l[0].state, ListingState::Ready { .. }), "{l:?}");
        assert_eq!(edges.latest().replaying(), 1, "the replay still runs");
        assert!(!edges.latest().replay_finished());
        assert_eq!(c.quit().await[0].result, Ok(()));
        wait_until(&env, Duration::from_secs(300), "the replay", || {
            edges.latest().replay_finished()
        })
        .await;
        assert!(!m.is_present("alice", &u[2]), "{}", m.report());
        assert!(d.is_empty());
        Ok(())
    });
    let m2 = mail.clone();
    let (d2, seen) = (disk.clone(), Arc::new(AtomicBool::new(false)));
    let s2 = seen.clone();
    run_with_crash(
        &mut w,
        &disk,
        move || {
            let hit = server_saw(&m2, "DELE");
            if hit && !s2.swap(true, Ordering::SeqCst) {
                assert_eq!(causeway_edge::journal::owed_entries(&d2.durable()), 1);
                assert_eq!(d2.len(), 2, "the server's header and the delete");
                for needle in [
                    ALICE_PW.as_bytes(),
                    b"alice".as_slice(),
                    b"HOST1".as_slice(),
                    b"mail:".as_slice(),
                ] {
                    assert!(
                        !d2.contains(needle),
                        "{:?} in the clear",
                        String::from_utf8_lossy(needle)
                    );
                }
            }
            hit
        },
        Duration::from_secs(5),
    );
    assert!(seen.load(Ordering::SeqCst));
}

/// An acknowledgement the journal cannot make durable is not sent: the
/// client gets `[SYS/TEMP]` and nothing is deleted. An RSET the journal
/// cannot record is refused too, and the deletes stand.
#[test]
fn a_delete_or_rset_the_journal_cannot_record_is_refused() {
    let disk = SimDisk::new();
    let mut w = world_journaled(locking(), &disk, |_| {});
    let (k, ek, mail, edge) = w.handles();
    let d = disk.clone();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        d.fail_next_commits(1);
        let (_, r) = c
            .request(
                "HOST1",
                Op::Dele {
                    msg: c.msg("HOST1", &u[0]),
                },
            )
            .await;
        let e = r.unwrap_err();
        assert_eq!(e.code, Some(ErrCode::SysTemp), "{e}");
        assert_eq!(
            e.text,
            "the edge could not record the delete durably; nothing was deleted"
        );
        assert_eq!((edge.pending_work(), d.len()), (0, 0), "nothing owed");
        // Not deleted in the replica either: it can be read and deleted.
        let _ = c.retr("HOST1", &u[0]).await;
        c.dele("HOST1", &u[1]).await;
        assert_eq!(
            (
                causeway_edge::journal::owed_entries(&d.durable()),
                edge.journal_entries()
            ),
            (1, 1)
        );
        d.fail_next_commits(1);
        let (_, r) = c.request("HOST1", Op::Rset).await;
        let e = r.unwrap_err();
        assert_eq!(e.code, Some(ErrCode::SysTemp), "{e}");
        assert!(e.text.contains("the deletes stand"), "{e}");
        let (_, again) = c
            .request(
                "HOST1",
                Op::Dele {
                    msg: c.msg("HOST1", &u[1]),
                },
            )
            .await;
        assert_eq!(again.unwrap_err().text, "Message is deleted.");
        assert_eq!(c.quit().await[0].result, Ok(()));
        assert!(mail.is_present("alice", &u[0]), "{}", mail.report());
        assert!(!mail.is_present("alice", &u[1]), "{}", mail.report());
        assert!(d.is_empty());
        assert_eq!((edge.journal_failures(), edge.journal_entries()), (2, 0));
        all_quit_no_locks(&mail, c.env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}

/// RSET erases the journaled deletes before `Done`: a crash after it brings
/// back only the deletes made since.
#[test]
fn rset_is_journaled_before_it_is_answered() {
    let disk = SimDisk::new();
    let mut w = world_journaled(locking(), &disk, |_| {});
    let (k, ek, mail, edges) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edges.clone(),
    );
    let (d, m) = (disk.clone(), mail.clone());
    let crash_now = Arc::new(AtomicBool::new(false));
    let flag = crash_now.clone();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        c.dele("HOST1", &u[0]).await;
        c.dele("HOST1", &u[1]).await;
        assert_eq!(causeway_edge::journal::owed_entries(&d.durable()), 2);
        assert_eq!(c.request("HOST1", Op::Rset).await.1, Ok(Reply::Done));
        assert!(d.is_empty(), "deletes and header erased");
        c.dele("HOST1", &u[2]).await;
        flag.store(true, Ordering::SeqCst);
        let env = c.env.clone();
        drop(c);
        wait_until(&env, Duration::from_secs(60), "the restart", || {
            edges.started() >= 2
        })
        .await;
        wait_until(&env, Duration::from_secs(300), "the replay", || {
            edges.latest().replay_finished() && d.is_empty()
        })
        .await;
        env.sleep(Duration::from_secs(40)).await;
        assert!(m.is_present("alice", &u[0]) && m.is_present("alice", &u[1]));
        assert!(!m.is_present("alice", &u[2]), "{}", m.report());
        quit_or_crash_cut_no_locks(&m, 1, env.unix_millis());
        Ok(())
    });
    run_with_crash(
        &mut w,
        &disk,
        move || crash_now.load(Ordering::SeqCst),
        Duration::from_secs(5),
    );
}

/// The edge crashes twice: during the session, and again while replaying.
/// The second replay still finishes the work.
#[test]
fn a_crash_during_replay_is_replayed_again() {
    let disk = SimDisk::new();
    let mut w = world_journaled(locking(), &disk, |_| {});
    let (k, ek, mail, edges) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edges.clone(),
    );
    let (d, m) = (disk.clone(), mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        c.dele("HOST1", &u[0]).await;
        let env = c.env.clone();
        drop(c);
        wait_until(&env, Duration::from_secs(600), "two restarts", || {
            edges.started() >= 3
        })
        .await;
        wait_until(&env, Duration::from_secs(300), "the replay", || {
            edges.latest().replay_finished() && d.is_empty()
        })
        .await;
        env.sleep(Duration::from_secs(40)).await;
        assert!(!m.is_present("alice", &u[0]), "{}", m.report());
        quit_or_crash_cut_no_locks(&m, 2, env.unix_millis());
        Ok(())
    });
    // First crash: the DELE reached the server.
    let m1 = mail.clone();
    let e1 = w.edges.clone();
    let m2 = mail.clone();
    let disk2 = disk.clone();
    // Drive the first crash by hand, then the second with the helper.
    loop {
        if server_saw(&m1, "DELE") {
            break;
        }
        assert!(!w.sim.step().unwrap());
    }
    disk.crash();
    w.sim.crash("edge");
    for _ in 0..100 {
        w.sim.step().unwrap();
    }
    w.sim.bounce("edge");
    // Second crash: the replay's own DELE reached the server (the stale lock
    // of the first crash ran out first).
    run_with_crash(
        &mut w,
        &disk2,
        move || e1.started() >= 2 && count_saw(&m2, "DELE") >= 2,
        Duration::from_secs(5),
    );
}

/// Work journaled for a server the edge may no longer reach is never
/// erased: it is parked, logged, and stays in the journal (where `causeway
/// owed` lists it) until a session for that maildrop, or an operator, deals
/// with it.
#[test]
fn replay_of_a_server_no_longer_allowed_keeps_the_work() {
    let disk = SimDisk::new();
    let mut w = world_journaled(locking(), &disk, |_| {});
    let (k, ek, mail, edges) = (
        w.keys.client.clone(),
        w.keys.edge.clone(),
        w.mail.clone(),
        w.edges.clone(),
    );
    let d = disk.clone();
    let crash_now = Arc::new(AtomicBool::new(false));
    let flag = crash_now.clone();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        turmoil::partition("edge", "mail");
        c.dele("HOST1", &u[0]).await;
        flag.store(true, Ordering::SeqCst);
        let env = c.env.clone();
        drop(c);
        wait_until(&env, Duration::from_secs(60), "the restart", || {
            edges.started() >= 2
        })
        .await;
        turmoil::repair("edge", "mail");
        wait_until(&env, Duration::from_secs(60), "the replay", || {
            edges.latest().replay_finished()
        })
        .await;
        let e = edges.latest();
        assert_eq!(e.pending_work(), 1, "parked, still owed");
        assert_eq!(
            causeway_edge::journal::owed_entries(&d.durable()),
            1,
            "kept in the journal"
        );
        assert!(mail.is_present("alice", &u[0]));
        Ok(())
    });
    let config = w.edge_config.clone();
    run_with_crash_then(
        &mut w,
        &disk,
        move || crash_now.load(Ordering::SeqCst),
        Duration::from_secs(5),
        move || {
            // The operator took mail:110 off the allow list meanwhile.
            let mut c = (**config.lock().unwrap()).clone();
            c.allowed_servers = vec!["mail2:110".into()];
            *config.lock().unwrap() = Arc::new(c);
        },
    );
}
