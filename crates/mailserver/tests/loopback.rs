//! A few behaviours over real sockets (TokioEnv on loopback), where FIN,
//! RST and kernel buffering are the real thing rather than turmoil's.

mod common;

use std::time::Duration;

use causeway_mailserver::{EndKind, LockPolicy, MailStore, ServerConfig, serve};
use causeway_net::{Env, Listener, TokioEnv};
use common::{Conn, settled};

async fn start(config: ServerConfig) -> (TokioEnv, MailStore, String) {
    let env = TokioEnv::new();
    let store = common::store(1);
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(serve(env.clone(), l, store.clone(), config));
    (env, store, addr)
}

#[tokio::test]
async fn exclusive_lock_over_real_sockets() {
    let config = ServerConfig {
        lock: LockPolicy::Exclusive {
            stale_after_abrupt: Duration::from_secs(900),
        },
        ..ServerConfig::default()
    };
    let (env, store, addr) = start(config).await;
    let (mut a, _) = Conn::open(&env, &addr).await.unwrap();
    assert_eq!(a.login("alice", "secret").await.unwrap(), "+OK Logged in.");
    let (mut b, _) = Conn::open(&env, &addr).await.unwrap();
    assert!(
        b.login("alice", "secret")
            .await
            .unwrap()
            .starts_with("-ERR [IN-USE] ")
    );
    a.cmd("QUIT").await.unwrap();
    assert_eq!(b.login("alice", "secret").await.unwrap(), "+OK Logged in.");
    // A real RST/FIN without QUIT: the lock goes stale for 15 minutes.
    b.vanish();
    settled(&env, &store).await;
    let locks = store.locks_held(env.unix_millis());
    assert_eq!(locks.len(), 1, "{}", store.report());
    let until = locks[0].stale_until_ms.expect("stale");
    assert!(until >= env.unix_millis() + 890_000, "{}", store.report());
    let (mut c, _) = Conn::open(&env, &addr).await.unwrap();
    assert!(
        c.login("alice", "secret")
            .await
            .unwrap()
            .starts_with("-ERR [IN-USE] ")
    );
}

#[tokio::test]
async fn over_long_line_is_refused_and_the_connection_closed() {
    let (env, store, addr) = start(ServerConfig::default()).await;
    let (mut c, _) = Conn::open(&env, &addr).await.unwrap();
    let mut line = vec![b'X'; 3000];
    line.extend_from_slice(b"\r\n");
    c.send(&line).await.unwrap();
    assert_eq!(c.line().await.unwrap(), "-ERR Input line too long.");
    assert!(c.line().await.is_err(), "connection should be closed");
    settled(&env, &store).await;
    assert_eq!(store.sessions()[0].end_kind(), Some(EndKind::Abrupt));
}

#[tokio::test]
async fn pipelined_commands_get_replies_in_order() {
    let (env, store, addr) = start(ServerConfig::default()).await;
    let u = store
        .deliver("alice", "Subject: p\r\n\r\n.\r\n..\r\n")
        .unwrap();
    let (mut c, _) = Conn::open(&env, &addr).await.unwrap();
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\nUIDL 1\r\nRETR 1\r\nQUIT\r\n")
        .await
        .unwrap();
    let mut lines = Vec::new();
    while let Ok(l) = c.line().await {
        lines.push(l);
    }
    assert_eq!(
        lines,
        [
            "+OK",
            "+OK Logged in.",
            "+OK 1 21",
            &format!("+OK 1 {u}"),
            "+OK 21 octets",
            "Subject: p",
            "",
            "..",
            "...",
            ".",
            "+OK Logging out.",
        ]
    );
    settled(&env, &store).await;
    assert!(store.is_seen("alice", u.as_str()));
}

#[tokio::test]
async fn dovecot_maildir_mode_commits_seen_on_a_real_drop() {
    let config = ServerConfig {
        seen_on_abrupt_close: true,
        ..ServerConfig::default()
    };
    let (env, store, addr) = start(config).await;
    let u1 = store.deliver("alice", "a\r\n").unwrap();
    let u2 = store.deliver("alice", "b\r\n").unwrap();
    let (mut c, _) = Conn::open(&env, &addr).await.unwrap();
    c.login("alice", "secret").await.unwrap();
    c.multi("RETR 1").await.unwrap();
    c.cmd("DELE 2").await.unwrap();
    c.vanish();
    settled(&env, &store).await;
    assert!(store.is_seen("alice", u1.as_str()), "{}", store.report());
    assert!(store.is_present("alice", u2.as_str()), "{}", store.report());
}
