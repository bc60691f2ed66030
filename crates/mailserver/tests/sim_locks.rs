//! Maildrop locks, in simulated time: a ten-minute stale lock costs nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use causeway_mailserver::{EndKind, LockPolicy, ServerConfig};
use causeway_net::Env;
use common::{Conn, MAIL, client_env, sim_with_server, store};

const IN_USE: &str = "-ERR [IN-USE] Mailbox is locked by another POP3 session.";

fn exclusive(stale: Duration) -> ServerConfig {
    ServerConfig {
        lock: LockPolicy::Exclusive {
            stale_after_abrupt: stale,
        },
        ..ServerConfig::default()
    }
}

#[test]
fn second_session_is_refused_in_use_and_quit_releases_at_once() {
    let st = store(1);
    let mut sim = sim_with_server(1, &st, exclusive(Duration::from_secs(600)));
    let s = st.clone();
    sim.client("c", async move {
        let env = client_env(1, "c");
        let (mut a, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(a.login("alice", "secret").await?, "+OK Logged in.");
        let (mut b, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(b.login("alice", "secret").await?, IN_USE);
        // Another user's maildrop is not locked.
        let (mut c, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(c.login("bob", "hunter2").await?, "+OK Logged in.");
        let locks = s.locks_held(env.unix_millis());
        assert_eq!(locks.len(), 2, "{}", s.report());
        assert!(locks.iter().all(|l| !l.is_stale()));
        assert_eq!(a.cmd("QUIT").await?, "+OK Logging out.");
        env.sleep(Duration::from_millis(50)).await;
        // The refused session is still in AUTHORIZATION and may try again.
        assert_eq!(b.login("alice", "secret").await?, "+OK Logged in.");
        b.cmd("QUIT").await?;
        c.cmd("QUIT").await?;
        Ok(())
    });
    sim.run().unwrap();
    assert!(st.locks_held(u64::MAX - 1).is_empty(), "{}", st.report());
}

#[test]
fn stale_lock_after_abrupt_drop_lasts_the_configured_time() {
    let st = store(2);
    let mut sim = sim_with_server(2, &st, exclusive(Duration::from_secs(600)));
    let s = st.clone();
    sim.client("c", async move {
        let env = client_env(2, "c");
        let (mut a, _) = Conn::open(&env, MAIL).await?;
        a.login("alice", "secret").await?;
        let dropped_at = env.now();
        a.vanish();
        env.sleep(Duration::from_secs(1)).await;
        let locks = s.locks_held(env.unix_millis());
        assert_eq!(locks.len(), 1, "{}", s.report());
        assert!(locks[0].is_stale(), "{}", s.report());
        let (mut b, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(b.login("alice", "secret").await?, IN_USE);
        // Still refused just before the ten minutes are up...
        env.sleep(Duration::from_secs(597)).await;
        assert_eq!(b.login("alice", "secret").await?, IN_USE);
        // ...and served just after.
        env.sleep(Duration::from_secs(3)).await;
        assert!(env.now() - dropped_at > Duration::from_secs(600));
        assert_eq!(b.login("alice", "secret").await?, "+OK Logged in.");
        assert!(!s.locks_held(env.unix_millis())[0].is_stale());
        b.cmd("QUIT").await?;
        Ok(())
    });
    sim.run().unwrap();
    let kinds: Vec<_> = st.sessions().iter().map(|s| s.end_kind()).collect();
    assert_eq!(
        kinds,
        [Some(EndKind::Abrupt), Some(EndKind::Quit)],
        "{}",
        st.report()
    );
}

#[test]
fn zero_stale_time_releases_at_once_after_a_drop() {
    let st = store(3);
    let mut sim = sim_with_server(3, &st, exclusive(Duration::ZERO));
    let s = st.clone();
    sim.client("c", async move {
        let env = client_env(3, "c");
        let (mut a, _) = Conn::open(&env, MAIL).await?;
        a.login("alice", "secret").await?;
        a.vanish();
        env.sleep(Duration::from_millis(100)).await;
        assert!(s.locks_held(env.unix_millis()).is_empty(), "{}", s.report());
        let (mut b, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(b.login("alice", "secret").await?, "+OK Logged in.");
        b.cmd("QUIT").await?;
        Ok(())
    });
    sim.run().unwrap();
}

#[test]
fn shared_policy_allows_two_sessions_and_one_deletion_wins() {
    let st = store(4);
    let uidl = st.deliver("alice", "Subject: x\r\n\r\nhi\r\n").unwrap();
    let mut sim = sim_with_server(4, &st, ServerConfig::default());
    sim.client("c", async move {
        let env = client_env(4, "c");
        let (mut a, _) = Conn::open(&env, MAIL).await?;
        let (mut b, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(a.login("alice", "secret").await?, "+OK Logged in.");
        assert_eq!(b.login("alice", "secret").await?, "+OK Logged in.");
        a.cmd("DELE 1").await?;
        b.cmd("DELE 1").await?;
        // Dovecot answers both the same way.
        assert_eq!(a.cmd("QUIT").await?, "+OK Logging out, messages deleted.");
        assert_eq!(b.cmd("QUIT").await?, "+OK Logging out, messages deleted.");
        Ok(())
    });
    sim.run().unwrap();
    let m = st.message("alice", uidl.as_str()).unwrap();
    let first = st.sessions()[0].id;
    assert_eq!(m.deleted_by, Some(first), "{}", st.report());
    assert!(st.locks_held(0).is_empty());
}

/// The crash comes early on purpose: `SimEnv::unix_millis` restarts at the
/// simulation epoch in a restarted host (it counts from the incarnation's
/// start), so after a late crash the new server's clock would lag the stale
/// lock's timestamps by the time already elapsed.
#[test]
fn stale_lock_survives_a_server_crash_and_restart() {
    let st = store(5);
    let mut sim = sim_with_server(5, &st, exclusive(Duration::from_secs(300)));
    let s = st.clone();
    let logged_in = Arc::new(AtomicBool::new(false));
    let flag = logged_in.clone();
    sim.client("a", async move {
        let env = client_env(5, "a");
        let (mut a, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(a.login("alice", "secret").await?, "+OK Logged in.");
        flag.store(true, Ordering::SeqCst);
        // The server crashes under us; we just wait.
        env.sleep(Duration::from_secs(400)).await;
        drop(a);
        Ok(())
    });
    while !logged_in.load(Ordering::SeqCst) {
        sim.step().unwrap();
    }
    assert_eq!(st.live_sessions().len(), 1, "{}", st.report());
    sim.crash("mail");
    let rec = &st.sessions()[0];
    assert_eq!(
        rec.end_kind(),
        Some(EndKind::ServerShutdown),
        "{}",
        s.report()
    );
    sim.bounce("mail");
    sim.client("b", async move {
        let env = client_env(5, "b");
        env.sleep(Duration::from_secs(1)).await;
        let (mut b, _) = Conn::open(&env, MAIL).await?;
        assert_eq!(b.login("alice", "secret").await?, IN_USE);
        env.sleep(Duration::from_secs(301)).await;
        assert_eq!(b.login("alice", "secret").await?, "+OK Logged in.");
        b.cmd("QUIT").await?;
        Ok(())
    });
    sim.run().unwrap();
}
