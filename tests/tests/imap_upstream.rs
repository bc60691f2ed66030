//! The edge's IMAP client (`causeway-imap`) against a real Dovecot: the
//! listing matches the server, a fetched body is byte-identical and stays
//! unread, the read mark and the delete change exactly the messages named
//! (a message another client flagged `\Deleted` survives our expunge), and
//! the session ends with LOGOUT in Dovecot's own log.

use std::num::NonZeroU32;
use std::time::Duration;

use causeway_imap::{ImapClient, ImapError, Timeouts};
use causeway_net::{Env, TokioEnv};
use causeway_tests::interop::dovecot::{Dovecot, Format, PASSWORD, USER};
use causeway_tests::interop::{assert_clean_ends, have_dovecot, sha256};

const TIMEOUTS: Timeouts = Timeouts {
    greeting: Duration::from_secs(10),
    command: Duration::from_secs(30),
};

async fn connect(dc: &Dovecot) -> ImapClient<TokioEnv, <TokioEnv as Env>::Stream> {
    let env = TokioEnv::new();
    let stream = env
        .connect(&format!("127.0.0.1:{}", dc.imap_port))
        .await
        .expect("connect to Dovecot's IMAP port");
    ImapClient::start(env, stream, TIMEOUTS, 16 << 20)
        .await
        .expect("greeting")
}

/// Another mail client flags `uid` `\Deleted` without expunging (python
/// imaplib, an independent client).
async fn flag_deleted_elsewhere(dc: &Dovecot, uid: u32) {
    let script = format!(
        "import imaplib;m=imaplib.IMAP4('127.0.0.1',{});m.login('{USER}','{PASSWORD}');\
         m.select('INBOX');print(m.uid('STORE','{uid}','+FLAGS.SILENT','(\\\\Deleted)'));m.logout()",
        dc.imap_port
    );
    let out = tokio::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_mark_and_uid_expunge_change_exactly_what_they_name() {
    if !have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 5, 30_000).await;
    let before = dc.mailbox(USER).await;
    assert_eq!(before.messages.len(), 5);
    let uid = |i: usize| NonZeroU32::new(before.messages[i].uid).unwrap();

    // A wrong password is an authentication failure, not a passing one,
    // by LOGIN and by AUTHENTICATE PLAIN (which Dovecot offers with
    // SASL-IR, so that is what the edge sends it).
    let mut c = connect(&dc).await;
    let e = c.login(USER, b"wrong").await.unwrap_err();
    assert!(e.is_authentication() && !e.is_transient(), "{e}");
    c.logout().await.unwrap();
    let mut c = connect(&dc).await;
    assert_eq!(
        causeway_imap::command::Login::choose(c.capabilities().await.unwrap()),
        causeway_imap::command::Login::Plain {
            initial_response: true
        }
    );
    let e = c.log_in(USER, b"wrong").await.unwrap_err();
    assert!(e.is_authentication() && !e.is_transient(), "{e}");
    c.logout().await.unwrap();

    let mut c = connect(&dc).await;
    c.log_in(USER, PASSWORD.as_bytes()).await.unwrap();
    assert!(c.capabilities().await.unwrap().contains("UIDPLUS"));
    let folder = c.select("INBOX").await.unwrap();
    assert_eq!(
        folder.uidvalidity.map(|v| v.get()),
        Some(before.uidvalidity)
    );
    let listed: Vec<(u32, usize)> = folder
        .listed()
        .map(|m| (m.uid.get(), m.size as usize))
        .collect();
    let held: Vec<(u32, usize)> = before.messages.iter().map(|m| (m.uid, m.size)).collect();
    assert_eq!(listed, held);

    // BODY.PEEK[]: byte-identical, and still unread on the server.
    let body = c.fetch_body(uid(1)).await.unwrap().unwrap();
    assert_eq!(sha256(&body), before.messages[1].sha256);
    assert!(!dc.mailbox(USER).await.messages[1].seen());

    // The read mark names one message.
    c.mark_seen(&[uid(1)]).await.unwrap();
    let now = dc.mailbox(USER).await;
    let seen: Vec<bool> = now.messages.iter().map(|m| m.seen()).collect();
    assert_eq!(seen, [false, true, false, false, false]);

    // Someone else flags message 4; we delete 0 and 2. UID EXPUNGE leaves
    // message 4 to whoever flagged it.
    flag_deleted_elsewhere(&dc, uid(4).get()).await;
    c.noop().await.unwrap();
    let gone = c.delete(&[uid(0), uid(2)]).await.unwrap();
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(gone.contains(&uid(0)) && gone.contains(&uid(2)));
    let left: Vec<u32> = c.folder().unwrap().listed().map(|m| m.uid.get()).collect();
    assert_eq!(left, [uid(1).get(), uid(3).get(), uid(4).get()]);
    // Gone on the server: fetched again, it is `None`, not an error.
    assert_eq!(c.fetch_body(uid(0)).await.unwrap(), None);
    let mark = dc.log_mark();
    c.logout().await.unwrap();

    let after = dc.mailbox(USER).await;
    let uids: Vec<u32> = after.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [uid(1).get(), uid(3).get(), uid(4).get()]);
    assert!(after.messages[2].flags.iter().any(|f| f == "\\Deleted"));
    for m in &after.messages {
        let was = before.messages.iter().find(|b| b.uid == m.uid).unwrap();
        assert_eq!(m.sha256, was.sha256, "no message changed");
    }
    // Dovecot logs how the session ended.
    let ended = || {
        dc.log()[mark..]
            .lines()
            .any(|l| l.contains("imap(alice)") && l.contains("Disconnected: Logged out"))
    };
    for _ in 0..50 {
        if ended() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ended(),
        "no 'Logged out' in Dovecot's log:\n{}",
        &dc.log()[mark..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_cap_is_an_error_and_the_next_session_works() {
    if !have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 1, 200_000).await;
    let uid = NonZeroU32::new(dc.mailbox(USER).await.messages[0].uid).unwrap();
    let env = TokioEnv::new();
    let stream = env
        .connect(&format!("127.0.0.1:{}", dc.imap_port))
        .await
        .unwrap();
    let mut c = ImapClient::start(env, stream, TIMEOUTS, 64 * 1024)
        .await
        .unwrap();
    c.login(USER, PASSWORD.as_bytes()).await.unwrap();
    c.select("INBOX").await.unwrap();
    let e = c.fetch_body(uid).await.unwrap_err();
    assert!(matches!(e, ImapError::TooLarge { max: 65536 }), "{e}");
    drop(c);
    let mut c = connect(&dc).await;
    c.login(USER, PASSWORD.as_bytes()).await.unwrap();
    c.select("INBOX").await.unwrap();
    assert_eq!(
        c.fetch_body(uid).await.unwrap().unwrap().len(),
        dc.mailbox(USER).await.messages[0].size
    );
    c.logout().await.unwrap();
}

// ---- The session the edge opens: TLS by default, never a clear-text login.

#[path = "../../crates/upstream/tests/tls_support/mod.rs"]
mod tls_support;

use causeway_proto::ErrCode;
use causeway_proto::Secret;
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode};
use causeway_upstream::imap::ImapSession;
use causeway_upstream::{ServerTimeouts, ServerTls, TlsSettings};
use tls_support::{Dialect, Pki, Stls, implicit_front, starttls_front};

fn spec(port: u16, tls: TlsMode, password: &str) -> ServerSpec {
    ServerSpec {
        name: "HOST1".into(),
        protocol: Protocol::Pop3,
        host: "127.0.0.1".into(),
        port,
        tls,
        user: USER.into(),
        password: Secret::new(password.as_bytes().to_vec()),
        route: Route::Direct,
        folder: causeway_proto::user::INBOX.into(),
    }
}

async fn session(
    spec: &ServerSpec,
    tls: &ServerTls,
) -> Result<ImapSession<TokioEnv>, causeway_proto::OpError> {
    let timeouts = ServerTimeouts {
        connect: Duration::from_secs(10),
        command: Duration::from_secs(30),
    };
    ImapSession::open(&TokioEnv::new(), spec, tls, timeouts, 16 << 20).await
}

/// Fetches every message and checks it against Dovecot; logs out.
async fn round_trip(dc: &Dovecot, mut s: ImapSession<TokioEnv>) {
    let held = dc.mailbox(USER).await;
    let listed: Vec<_> = s.folder().listed().collect();
    assert_eq!(listed.len(), held.messages.len());
    for (m, h) in listed.iter().zip(&held.messages) {
        let body = s.fetch_body(m.uid).await.unwrap().unwrap();
        assert_eq!(sha256(&body), h.sha256);
    }
    s.logout().await.unwrap();
    assert!(
        dc.mailbox(USER).await.messages.iter().all(|m| !m.seen()),
        "a fetch marked a message read"
    );
}

/// An entry's folder that Dovecot lacks (a typo): `[SYS/PERM]` with
/// Dovecot's own words and the folders it has, and the session ends with
/// LOGOUT; the right name opens that folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_the_server_lacks_is_refused_with_the_folders_it_has() {
    if !have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 3, 1_000).await;
    dc.file(USER, "Archive", 1).await;
    let mark = dc.log_mark();
    let in_folder = |folder: &str| ServerSpec {
        folder: folder.into(),
        ..spec(dc.imap_port, TlsMode::None, PASSWORD)
    };
    let tls = Pki::new("imap").client();
    let Err(e) = session(&in_folder("Archiv"), &tls).await else {
        panic!("a folder Dovecot lacks was selected")
    };
    assert_eq!(e.code, Some(ErrCode::SysPerm), "{e:?}");
    for said in [
        "Mailbox doesn't exist: Archiv",
        "the server's folders: ",
        "\"Archive\"",
        "\"INBOX\"",
    ] {
        assert!(e.text.contains(said), "{said} in {}", e.text);
    }
    let s = session(&in_folder("Archive"), &tls).await.unwrap();
    assert_eq!(s.folder().listed().count(), 1);
    s.logout().await.unwrap();
    assert_clean_ends(&dc, mark, "a folder Dovecot lacks, then one it has").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_and_starttls_carry_the_login_and_the_mail_in_tls() {
    if !have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 3, 5_000).await;
    let pki = Pki::new("imap");
    let port = implicit_front(pki.server(&["127.0.0.1"]), dc.imap_port).await;
    let s = session(&spec(port, TlsMode::Implicit, PASSWORD), &pki.client()).await;
    round_trip(&dc, s.unwrap()).await;

    let front = starttls_front(
        pki.server(&["127.0.0.1"]),
        dc.imap_port,
        Stls::Upgrade,
        Dialect::Imap,
    )
    .await;
    let s = session(
        &spec(front.port, TlsMode::Starttls, PASSWORD),
        &pki.client(),
    )
    .await;
    round_trip(&dc, s.unwrap()).await;
    // STARTTLS was the only command in clear text; LOGIN went in TLS.
    assert_eq!(front.clear_text(), ["C1 STARTTLS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_starttls_no_login_and_the_refusals_say_what_to_do() {
    if !have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    let pki = Pki::new("imap-refusals");
    let trust = pki.client();
    let mark = dc.log_mark();

    // The rig offers no STARTTLS: refused before the password is sent.
    let e = session(&spec(dc.imap_port, TlsMode::Starttls, PASSWORD), &trust)
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, Some(ErrCode::SysPerm), "{e}");
    assert!(
        e.text.contains("does not offer STARTTLS") && e.text.contains("password was not sent"),
        "{e}"
    );

    // A server that refuses STARTTLS, and one that injects a response
    // after its OK.
    for (mode, needle) in [
        (
            Stls::Refuse,
            "refused STARTTLS (NO TLS not available here); Causeway never falls back",
        ),
        (
            Stls::Inject(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"),
            "CVE-2011-0411",
        ),
    ] {
        let front = starttls_front(
            pki.server(&["127.0.0.1"]),
            dc.imap_port,
            mode,
            Dialect::Imap,
        )
        .await;
        let e = session(&spec(front.port, TlsMode::Starttls, PASSWORD), &trust)
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, Some(ErrCode::SysPerm), "{e}");
        assert!(e.text.contains(needle), "{needle:?} not in: {e}");
        assert_eq!(front.clear_text(), ["C1 STARTTLS"]);
        assert_eq!(front.upgraded.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
    // Dovecot saw no login attempt at all.
    assert!(
        !dc.log()[mark..].contains("user=<alice>"),
        "{}",
        &dc.log()[mark..]
    );

    // With tls = "none" (a trusted segment): a wrong password is [AUTH].
    let plain = ServerTls::load(&TlsSettings::default()).unwrap();
    let e = session(&spec(dc.imap_port, TlsMode::None, "wrong"), &plain)
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, Some(ErrCode::Auth), "{e}");
}
