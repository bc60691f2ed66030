//! Session semantics over the wire, in simulated time: what reaches the
//! store and when, snapshots, idle timeouts, and injected faults.

mod common;

use std::time::Duration;

use causeway_mailserver::{EndKind, Faults, InjectedFault, ServerConfig, generate};
use causeway_net::{Env, EnvRng};
use common::{Conn, MAIL, client_env, sim_with_server, store};

#[test]
fn dele_and_retr_then_a_drop_commit_nothing_by_default() {
    for seen_on_abrupt_close in [false, true] {
        let st = store(10);
        let u1 = st.deliver("alice", "Subject: 1\r\n\r\none\r\n").unwrap();
        let u2 = st.deliver("alice", "Subject: 2\r\n\r\ntwo\r\n").unwrap();
        let config = ServerConfig {
            seen_on_abrupt_close,
            ..ServerConfig::default()
        };
        let mut sim = sim_with_server(10, &st, config);
        sim.client("c", async move {
            let env = client_env(10, "c");
            let (mut c, _) = Conn::open(&env, MAIL).await?;
            c.login("alice", "secret").await?;
            let (st, _) = c.multi("RETR 1").await?;
            assert_eq!(st, "+OK 19 octets");
            c.multi("TOP 2 0").await?;
            c.cmd("DELE 1").await?;
            c.cmd("DELE 2").await?;
            c.vanish();
            env.sleep(Duration::from_secs(1)).await;
            Ok(())
        });
        sim.run().unwrap();
        let r = st.report();
        assert!(st.is_present("alice", u1.as_str()), "{r}");
        assert!(st.is_present("alice", u2.as_str()), "{r}");
        assert_eq!(
            st.is_seen("alice", u1.as_str()),
            seen_on_abrupt_close,
            "{r}"
        );
        assert!(
            !st.is_seen("alice", u2.as_str()),
            "TOP never marks seen: {r}"
        );
        let s = &st.sessions()[0];
        assert_eq!(s.end_kind(), Some(EndKind::Abrupt));
        assert!(s.deleted.is_empty());
    }
}

#[test]
fn quit_commits_deletions_and_seen_with_the_session_id() {
    let st = store(11);
    let uidls: Vec<_> = (0..3)
        .map(|i| {
            st.deliver("alice", format!("Subject: {i}\r\n\r\nx\r\n"))
                .unwrap()
        })
        .collect();
    let mut sim = sim_with_server(11, &st, ServerConfig::default());
    sim.client("c", async move {
        let env = client_env(11, "c");
        let (mut c, _) = Conn::open(&env, MAIL).await?;
        c.login("alice", "secret").await?;
        c.multi("RETR 1").await?;
        c.multi("RETR 2").await?;
        c.cmd("DELE 2").await?;
        c.cmd("DELE 3").await?;
        assert_eq!(c.cmd("QUIT").await?, "+OK Logging out, messages deleted.");
        Ok(())
    });
    sim.run().unwrap();
    let id = st.sessions()[0].id;
    let m = |i: usize| st.message("alice", uidls[i].as_str()).unwrap();
    assert_eq!((m(0).seen_by, m(0).deleted_by), (Some(id), None));
    assert_eq!((m(1).seen_by, m(1).deleted_by), (Some(id), Some(id)));
    assert_eq!((m(2).seen_by, m(2).deleted_by), (None, Some(id)));
    assert_eq!(st.present_uidls("alice"), vec![uidls[0].clone()]);
}

#[test]
fn rset_undoes_pending_deletions_and_seen_marks() {
    let st = store(12);
    let u1 = st.deliver("alice", "a\r\n").unwrap();
    let u2 = st.deliver("alice", "b\r\n").unwrap();
    let mut sim = sim_with_server(12, &st, ServerConfig::default());
    sim.client("c", async move {
        let env = client_env(12, "c");
        let (mut c, _) = Conn::open(&env, MAIL).await?;
        c.login("alice", "secret").await?;
        c.multi("RETR 1").await?;
        c.cmd("DELE 2").await?;
        assert_eq!(c.cmd("STAT").await?, "+OK 1 3");
        assert_eq!(c.cmd("RSET").await?, "+OK");
        assert_eq!(c.cmd("STAT").await?, "+OK 2 6");
        c.multi("RETR 2").await?;
        assert_eq!(c.cmd("QUIT").await?, "+OK Logging out.");
        Ok(())
    });
    sim.run().unwrap();
    assert!(!st.is_seen("alice", u1.as_str()));
    assert!(st.is_seen("alice", u2.as_str()));
    assert!(st.is_present("alice", u2.as_str()));
}

#[test]
fn mail_delivered_during_a_session_shows_up_in_the_next_with_stable_uidls() {
    let st = store(13);
    let first = st.deliver("alice", "Subject: first\r\n\r\n1\r\n").unwrap();
    let second = st.deliver("alice", "Subject: second\r\n\r\n2\r\n").unwrap();
    let mut sim = sim_with_server(13, &st, ServerConfig::default());
    let s = st.clone();
    let first_uidl = first.clone();
    sim.client("c", async move {
        let env = client_env(13, "c");
        let (mut c, _) = Conn::open(&env, MAIL).await?;
        c.login("alice", "secret").await?;
        let before = c.uidls().await?;
        let late = s
            .deliver_at("alice", "Subject: late\r\n\r\n3\r\n", env.unix_millis())
            .unwrap();
        assert_eq!(c.uidls().await?, before, "the session is a snapshot");
        assert_eq!(c.cmd("LIST 3").await?, "-ERR There's no message 3.");
        c.cmd("DELE 1").await?;
        c.cmd("QUIT").await?;

        let (mut c, _) = Conn::open(&env, MAIL).await?;
        c.login("alice", "secret").await?;
        let after = c.uidls().await?;
        // Renumbered, but the UIDLs stay with their messages.
        assert_eq!(
            after,
            vec![(1, second.to_string()), (2, late.to_string())],
            "{}",
            s.report()
        );
        c.cmd("QUIT").await?;
        // A new delivery after a deletion gets a brand-new UIDL.
        let newest = s.deliver("alice", "Subject: newest\r\n\r\n4\r\n").unwrap();
        assert!(![&first_uidl, &second, &late].contains(&&newest));
        assert!(newest > late);
        Ok(())
    });
    sim.run().unwrap();
    let all: Vec<_> = st.messages("alice").into_iter().map(|m| m.uidl).collect();
    let mut dedup = all.clone();
    dedup.dedup();
    assert_eq!(all.len(), 4);
    assert_eq!(all, dedup);
    assert!(!st.is_present("alice", first.as_str()));
}

#[test]
fn instrumentation_records_sessions_commands_and_end_kinds() {
    let st = store(14);
    let u = st.deliver("alice", "hello\r\n").unwrap();
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let mut sim = sim_with_server(14, &st, config);
    let s = st.clone();
    sim.client("c", async move {
        let env = client_env(14, "c");
        let (mut q, _) = Conn::open(&env, MAIL).await?;
        q.login("alice", "secret").await?;
        assert_eq!(s.live_sessions().len(), 1);
        q.multi("RETR 1").await?;
        q.cmd("QUIT").await?;
        let (mut a, _) = Conn::open(&env, MAIL).await?;
        a.login("bob", "hunter2").await?;
        a.vanish();
        let (mut i, _) = Conn::open(&env, MAIL).await?;
        assert!(i.login("alice", "wrong").await?.starts_with("-ERR [AUTH]"));
        env.sleep(Duration::from_secs(61)).await;
        let bye = i.line().await?;
        assert_eq!(bye, "-ERR Disconnected for inactivity.");
        assert!(i.line().await.is_err(), "server should hang up");
        Ok(())
    });
    sim.run().unwrap();
    let sessions = st.sessions();
    let r = st.report();
    assert_eq!(sessions.len(), 3, "{r}");
    let kinds: Vec<_> = sessions.iter().map(|s| s.end_kind().unwrap()).collect();
    assert_eq!(
        kinds,
        [EndKind::Quit, EndKind::Abrupt, EndKind::IdleTimeout],
        "{r}"
    );
    assert_eq!(sessions[0].user.as_deref(), Some("alice"));
    assert_eq!(sessions[1].user.as_deref(), Some("bob"));
    assert_eq!(sessions[2].user, None, "never logged in");
    assert_eq!(
        sessions[0].commands,
        ["USER alice", "PASS <redacted>", "RETR 1", "QUIT"]
    );
    assert_eq!(sessions[0].marked_seen, vec![u.clone()]);
    let idle = &sessions[2];
    let idle_for = idle.end.unwrap().at_ms - idle.started_ms;
    assert!((60_000..62_000).contains(&idle_for), "{idle_for} ms: {r}");
    assert!(st.live_sessions().is_empty());
    assert!(!r.contains("secret") && !r.contains("wrong"), "{r}");
    assert!(r.contains("idle-timeout") && r.contains(u.as_str()), "{r}");
}

#[test]
fn idle_timeout_drops_a_logged_in_session_after_ten_minutes() {
    let st = store(15);
    let mut sim = sim_with_server(15, &st, ServerConfig::default());
    sim.client("c", async move {
        let env = client_env(15, "c");
        let (mut c, _) = Conn::open(&env, MAIL).await?;
        c.login("alice", "secret").await?;
        env.sleep(Duration::from_secs(599)).await;
        assert_eq!(c.cmd("NOOP").await?, "+OK", "599 s of silence is allowed");
        let t = env.now();
        let bye = c.line().await?;
        assert_eq!(bye, "-ERR Disconnected for inactivity.");
        let waited = env.now() - t;
        assert!(waited >= Duration::from_secs(599), "{waited:?}");
        Ok(())
    });
    sim.run().unwrap();
    assert_eq!(st.sessions()[0].end_kind(), Some(EndKind::IdleTimeout));
}

#[test]
fn drop_mid_response_happens_and_is_recorded_as_abrupt() {
    let st = store(16);
    let rng = EnvRng::from_seed([16; 32]);
    for i in 0..3 {
        st.deliver("alice", generate::message(&rng, i, 20_000))
            .unwrap();
    }
    let config = ServerConfig {
        faults: Faults {
            drop_mid_response_probability: 0.3,
            ..Faults::default()
        },
        ..ServerConfig::default()
    };
    let mut sim = sim_with_server(16, &st, config);
    let s = st.clone();
    sim.client("c", async move {
        let env = client_env(16, "c");
        let mut completed = 0;
        for _ in 0..30 {
            let Ok((mut c, _)) = Conn::open(&env, MAIL).await else {
                continue;
            };
            let run = async {
                c.login("alice", "secret").await?;
                for n in 1..=3 {
                    let (st, body) = c.multi(&format!("RETR {n}")).await?;
                    assert!(st.ends_with(" octets"), "{st}");
                    let uidl = s.present_uidls("alice")[n - 1].clone();
                    assert_eq!(body, s.body("alice", uidl.as_str()).unwrap());
                }
                c.cmd("DELE 1").await?;
                std::io::Result::Ok(())
            };
            if run.await.is_ok() {
                completed += 1;
            }
            // Never QUIT: nothing may ever be deleted.
        }
        assert!(completed > 0, "no session got through");
        Ok(())
    });
    sim.run().unwrap();
    let r = st.report();
    let sessions = st.sessions();
    let dropped: Vec<_> = sessions
        .iter()
        .filter(|s| {
            s.faults
                .iter()
                .any(|f| matches!(f, InjectedFault::DropMidResponse { .. }))
        })
        .collect();
    assert!(dropped.len() >= 5, "{r}");
    assert!(
        dropped
            .iter()
            .all(|s| s.end_kind() == Some(EndKind::Abrupt)),
        "{r}"
    );
    let mid_retr = dropped
        .iter()
        .any(|s| s.commands.last().is_some_and(|c| c.starts_with("RETR")));
    assert!(mid_retr, "no drop in the middle of a RETR: {r}");
    assert_eq!(st.present_uidls("alice").len(), 3, "{r}");
}

#[test]
fn slow_replies_and_stalls_are_drawn_and_recorded() {
    let st = store(17);
    st.deliver("alice", "x\r\n").unwrap();
    let config = ServerConfig {
        faults: Faults {
            reply_delay_min: Duration::from_millis(500),
            reply_delay_max: Duration::from_millis(1500),
            stall_probability: 1.0,
            stall_for: Duration::from_secs(120),
            ..Faults::default()
        },
        ..ServerConfig::default()
    };
    let mut sim = sim_with_server(17, &st, config);
    sim.client("c", async move {
        let env = client_env(17, "c");
        let t = env.now();
        // Greeting: delayed and stalled; a client with a 30 s timeout gives up.
        let r = env
            .timeout(Duration::from_secs(30), "greeting", Conn::open(&env, MAIL))
            .await;
        assert!(r.is_err(), "the stalled greeting should time out");
        let (mut c, _) = Conn::open(&env, MAIL).await?;
        assert!(env.now() - t >= Duration::from_secs(120));
        let t = env.now();
        c.cmd("NOOP").await?;
        let took = env.now() - t;
        assert!(took >= Duration::from_millis(120_500), "{took:?}");
        Ok(())
    });
    sim.run().unwrap();
    let s = &st.sessions()[1];
    assert!(
        s.faults
            .contains(&InjectedFault::Stall(Duration::from_secs(120))),
        "{}",
        st.report()
    );
}

#[test]
fn faults_switched_off_are_not_injected() {
    let st = store(17);
    let rng = EnvRng::from_seed([17; 32]);
    for i in 0..3 {
        st.deliver("alice", generate::message(&rng, i, 20_000))
            .unwrap();
    }
    let config = ServerConfig {
        faults: Faults {
            drop_mid_response_probability: 1.0,
            stall_probability: 1.0,
            ..Faults::default()
        },
        ..ServerConfig::default()
    };
    assert!(st.faults_enabled(), "on by default");
    st.set_faults_enabled(false);
    let mut sim = sim_with_server(17, &st, config);
    sim.client("c", async move {
        let env = client_env(17, "c");
        let (mut c, _) = Conn::open(&env, MAIL).await?;
        c.login("alice", "secret").await?;
        for n in 1..=3 {
            let (st, _) = c.multi(&format!("RETR {n}")).await?;
            assert!(st.ends_with(" octets"), "{st}");
        }
        assert_eq!(c.cmd("QUIT").await?, "+OK Logging out.");
        Ok(())
    });
    sim.run().unwrap();
    let r = st.report();
    let s = &st.sessions()[0];
    assert!(s.faults.is_empty(), "{r}");
    assert_eq!(s.end_kind(), Some(EndKind::Quit), "{r}");
}
