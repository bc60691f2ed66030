//! The model server's IMAP side, byte by byte over loopback: what it
//! records is what the edge's IMAP side is judged by, so each rule it
//! models is checked here: a non-peek `BODY[]` marks read at once, a peek
//! does not; `UID EXPUNGE` removes only the flagged messages it names, a
//! bare EXPUNGE every flagged one, including those another client flagged;
//! LOGOUT is a clean end, a vanished client an abrupt one.

mod common;

use causeway_mailserver::{EndKind, MailStore, ServerConfig, serve_imap};
use causeway_net::{Env, Listener, TokioEnv};
use common::{Conn, settled};

async fn start() -> (TokioEnv, MailStore, String) {
    start_with(ServerConfig::default()).await
}

async fn start_with(config: ServerConfig) -> (TokioEnv, MailStore, String) {
    let env = TokioEnv::new();
    let store = common::store(4);
    let rng = causeway_net::EnvRng::from_seed([9; 32]);
    for i in 0..4 {
        let body = causeway_mailserver::generate::message(&rng, i, 1500);
        store.deliver("alice", body).unwrap();
    }
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(serve_imap(env.clone(), l, store.clone(), config));
    (env, store, addr)
}

/// Sends `tag command` and returns every line up to and including the
/// tagged one.
async fn run<S: causeway_net::Stream>(c: &mut Conn<S>, tag: &str, command: &str) -> Vec<String> {
    c.send(format!("{tag} {command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let l = c.line().await.unwrap();
        let done = l.starts_with(&format!("{tag} "));
        lines.push(l);
        if done {
            return lines;
        }
    }
}

#[tokio::test]
async fn peeks_marks_and_expunges_as_imap_does() {
    let (env, store, addr) = start().await;
    let uidls: Vec<String> = store
        .messages("alice")
        .iter()
        .map(|m| m.uidl.as_str().to_owned())
        .collect();
    let uids: Vec<u32> = store.messages("alice").iter().map(|m| m.uid).collect();
    let (mut c, greeting) = Conn::open(&env, &addr).await.unwrap();
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4REV1 UIDPLUS"),
        "{greeting}"
    );
    let no = run(&mut c, "a", "LOGIN alice wrong").await;
    assert_eq!(
        no.last().unwrap(),
        "a NO [AUTHENTICATIONFAILED] Authentication failed."
    );
    assert!(
        run(&mut c, "b", "LOGIN alice secret")
            .await
            .last()
            .unwrap()
            .starts_with("b OK")
    );
    let select = run(&mut c, "c", "SELECT INBOX").await;
    assert!(select.contains(&"* 4 EXISTS".to_owned()), "{select:?}");
    assert!(
        select.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")),
        "{select:?}"
    );

    // PEEK leaves the message unread; BODY[] marks it at once.
    let (u0, u1, u2, u3) = (uids[0], uids[1], uids[2], uids[3]);
    run(&mut c, "d", &format!("UID FETCH {u0} (UID BODY.PEEK[])")).await;
    assert!(!store.is_seen("alice", &uidls[0]));
    let fetched = run(&mut c, "e", &format!("UID FETCH {u1} (UID BODY[])")).await;
    assert!(fetched.last().unwrap().starts_with("e OK"), "{fetched:?}");
    assert!(store.is_seen("alice", &uidls[1]), "{}", store.report());
    run(
        &mut c,
        "f",
        &format!("UID STORE {u2} +FLAGS.SILENT (\\Seen)"),
    )
    .await;
    assert!(store.is_seen("alice", &uidls[2]));
    // Taken away again, it is unread, and the record says when.
    run(
        &mut c,
        "f2",
        &format!("UID STORE {u1} -FLAGS.SILENT (\\Seen)"),
    )
    .await;
    assert!(!store.is_seen("alice", &uidls[1]));
    let r = store.message("alice", &uidls[1]).unwrap();
    assert_eq!(r.flag_between("\\Seen", 0, u64::MAX), (true, true));

    // Flag three; UID EXPUNGE of one removes that one only.
    run(
        &mut c,
        "g",
        &format!("UID STORE {u0},{u2}:{u3} +FLAGS.SILENT (\\Deleted)"),
    )
    .await;
    let one = run(&mut c, "h", &format!("UID EXPUNGE {u2}")).await;
    assert_eq!(one, ["* 3 EXPUNGE", "h OK Expunge completed."]);
    assert!(!store.is_present("alice", &uidls[2]));
    assert!(store.is_present("alice", &uidls[0]) && store.is_present("alice", &uidls[3]));
    // A bare EXPUNGE takes the rest of this session's flagged ones,
    // highest number first.
    let rest = run(&mut c, "i", "EXPUNGE").await;
    assert_eq!(
        rest,
        ["* 3 EXPUNGE", "* 1 EXPUNGE", "i OK Expunge completed."]
    );
    assert_eq!(store.present_uidls("alice").len(), 1);
    let bye = run(&mut c, "j", "LOGOUT").await;
    assert_eq!(bye, ["* BYE Logging out", "j OK Logout completed."]);
    settled(&env, &store).await;

    // A client that vanishes ends abruptly; nothing more is committed.
    let (mut c, _) = Conn::open(&env, &addr).await.unwrap();
    run(&mut c, "a", "LOGIN alice secret").await;
    run(&mut c, "b", "SELECT INBOX").await;
    let last = store.present_uidls("alice")[0].clone();
    let uid = store.message("alice", last.as_str()).unwrap().uid;
    run(
        &mut c,
        "c",
        &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
    )
    .await;
    c.vanish();
    settled(&env, &store).await;
    assert!(store.is_present("alice", last.as_str()));
    let ends: Vec<_> = store.sessions().iter().map(|s| s.end_kind()).collect();
    assert_eq!(ends, [Some(EndKind::Quit), Some(EndKind::Abrupt)]);
}

/// Without UIDPLUS: `UID EXPUNGE` is unknown, `UID SEARCH DELETED` finds a
/// message another client flagged (even after SELECT), and the bare
/// EXPUNGE removes it along with this session's.
#[tokio::test]
async fn without_uidplus_a_bare_expunge_takes_what_another_client_flagged() {
    let (env, store, addr) = start_with(ServerConfig {
        imap_uidplus: false,
        ..ServerConfig::default()
    })
    .await;
    let uids: Vec<u32> = store.messages("alice").iter().map(|m| m.uid).collect();
    store.flag_deleted_elsewhere("alice", Some(uids[1]), true);
    let (mut c, greeting) = Conn::open(&env, &addr).await.unwrap();
    assert!(!greeting.contains("UIDPLUS"), "{greeting}");
    run(&mut c, "a", "LOGIN alice secret").await;
    run(&mut c, "b", "SELECT INBOX").await;
    store.flag_deleted_elsewhere("alice", Some(uids[2]), true);
    let found = run(&mut c, "c", "UID SEARCH DELETED").await;
    assert_eq!(found[0], format!("* SEARCH {} {}", uids[1], uids[2]));
    run(
        &mut c,
        "d",
        &format!("UID STORE {} +FLAGS.SILENT (\\Deleted)", uids[0]),
    )
    .await;
    let bad = run(&mut c, "e", &format!("UID EXPUNGE {}", uids[0])).await;
    assert!(bad.last().unwrap().starts_with("e BAD"), "{bad:?}");
    let gone = run(&mut c, "f", "EXPUNGE").await;
    assert_eq!(gone.len(), 4, "three EXPUNGE lines and the OK: {gone:?}");
    run(&mut c, "g", "LOGOUT").await;
    settled(&env, &store).await;
    let left: Vec<u32> = store
        .messages("alice")
        .iter()
        .filter(|m| m.deleted_by.is_none())
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, [uids[3]]);
}
