//! TLS to mail servers through `ServerSession` (the module both the edge's
//! direct path and the relay use), over real loopback sockets: rustls draws
//! OS randomness and reads the OS clock, so TLS never runs in the turmoil
//! simulation.
//!
//! Implicit TLS and STLS work; a certificate from another CA, for another
//! name, or expired is refused with a clear `[SYS/PERM]` error; STLS with
//! bytes injected after its `+OK` is refused; a server refusing STLS is
//! refused, with no plain-text fallback and the password never sent.

mod tls_support;

use std::time::Duration;

use causeway_mailserver::EndKind;
use causeway_net::TokioEnv;
use causeway_pop3::{Command, StatusLine};
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode};
use causeway_proto::{ErrCode, OpError, Secret};
use causeway_upstream::{ServerSession, ServerTimeouts};
use causeway_upstream::{ServerTls, TlsSettings};
use tls_support::*;

fn spec(host: &str, port: u16, tls: TlsMode) -> ServerSpec {
    ServerSpec {
        name: "HOST1".into(),
        protocol: Protocol::Pop3,
        host: host.into(),
        port,
        tls,
        user: USER.into(),
        password: Secret::new(PASSWORD.as_bytes().to_vec()),
        route: Route::Direct,
        folder: causeway_proto::user::INBOX.into(),
    }
}

fn timeouts() -> ServerTimeouts {
    ServerTimeouts {
        connect: Duration::from_secs(5),
        command: Duration::from_secs(5),
    }
}

async fn open(
    spec: &ServerSpec,
    tls: &ServerTls,
) -> Result<(ServerSession<TokioEnv>, StatusLine), OpError> {
    ServerSession::open(&TokioEnv::new(), spec, tls, timeouts(), 1 << 20).await
}

/// Logs in, lists, fetches every message, QUITs; checks the bodies.
async fn round_trip(spec: &ServerSpec, tls: &ServerTls, store: &causeway_mailserver::MailStore) {
    let (mut s, greeting) = open(spec, tls).await.unwrap();
    assert!(greeting.is_ok(), "{greeting}");
    let uidl = s.execute(&Command::Uidl(None)).await.unwrap();
    assert!(uidl.status.is_ok());
    let listing = String::from_utf8(uidl.body.unwrap()).unwrap();
    let present = store.present_uidls(USER);
    assert_eq!(listing.lines().count(), present.len(), "{listing}");
    for (i, u) in present.iter().enumerate() {
        assert!(listing.contains(u.as_str()), "{listing}");
        let r = s.execute(&Command::Retr(i as u32 + 1)).await.unwrap();
        assert!(r.status.is_ok());
        assert_eq!(r.body.unwrap(), store.body(USER, u.as_str()).unwrap());
    }
    assert!(s.quit().await.unwrap().is_ok());
    let sessions = store.sessions();
    assert_eq!(sessions.len(), 1, "{}", store.report());
    assert_eq!(
        sessions[0].end_kind(),
        Some(EndKind::Quit),
        "{}",
        store.report()
    );
    assert!(store.is_seen(USER, present[0].as_str()));
}

fn assert_perm(e: &OpError, needles: &[&str]) {
    println!("{e}");
    assert_eq!(e.code, Some(ErrCode::SysPerm), "{e}");
    for n in needles {
        assert!(e.text.contains(n), "expected {n:?} in: {e}");
    }
}

#[tokio::test]
async fn implicit_tls_login_uidl_retr() {
    let pki = Pki::new("implicit");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let port = implicit_front(pki.server(&["localhost", "127.0.0.1"]), backend).await;
    // By DNS name, then by IP address: both are verified names.
    round_trip(
        &spec("localhost", port, TlsMode::Implicit),
        &pki.client(),
        &store,
    )
    .await;
    let store2 = tls_support::store();
    let backend2 = mail_server(store2.clone()).await;
    let port2 = implicit_front(pki.server(&["127.0.0.1"]), backend2).await;
    round_trip(
        &spec("127.0.0.1", port2, TlsMode::Implicit),
        &pki.client(),
        &store2,
    )
    .await;
}

#[tokio::test]
async fn starttls_login_uidl_retr_with_nothing_in_the_clear() {
    let pki = Pki::new("stls");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let front = stls_front(pki.server(&["127.0.0.1"]), backend, Stls::Upgrade).await;
    round_trip(
        &spec("127.0.0.1", front.port, TlsMode::Starttls),
        &pki.client(),
        &store,
    )
    .await;
    // The only command sent in clear text was STLS; USER and PASS went
    // over TLS (the model server saw them).
    assert_eq!(front.clear_text(), vec!["STLS".to_owned()]);
    let commands = &store.sessions()[0].commands;
    assert!(
        commands.iter().any(|c| c.starts_with("USER")),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.starts_with("PASS")),
        "{commands:?}"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("trusted");
    let other = Pki::new("other");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let port = implicit_front(other.server(&["127.0.0.1"]), backend).await;
    let e = open(&spec("127.0.0.1", port, TlsMode::Implicit), &pki.client())
        .await
        .err()
        .unwrap();
    assert_perm(
        &e,
        &[
            "certificate for 127.0.0.1 is not valid",
            "not signed by a trusted CA",
            "set ca_file",
        ],
    );
    assert!(store.sessions().is_empty(), "{}", store.report());
    // STLS meets the same check.
    let front = stls_front(other.server(&["127.0.0.1"]), backend, Stls::Upgrade).await;
    let e = open(
        &spec("127.0.0.1", front.port, TlsMode::Starttls),
        &pki.client(),
    )
    .await
    .err()
    .unwrap();
    assert_perm(&e, &["not signed by a trusted CA"]);
    assert!(store.sessions().is_empty(), "{}", store.report());
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new("name");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let port = implicit_front(pki.server(&["mail.example.org"]), backend).await;
    let e = open(&spec("127.0.0.1", port, TlsMode::Implicit), &pki.client())
        .await
        .err()
        .unwrap();
    assert_perm(
        &e,
        &[
            "certificate for 127.0.0.1 is not valid",
            "not valid for the name 127.0.0.1",
            "mail.example.org",
        ],
    );
    let e = open(&spec("localhost", port, TlsMode::Implicit), &pki.client())
        .await
        .err()
        .unwrap();
    assert_perm(&e, &["not valid for the name localhost"]);
    assert!(store.sessions().is_empty(), "{}", store.report());
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let pki = Pki::new("expired");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let port = implicit_front(
        pki.server_valid(&["127.0.0.1"], Some((2000, 2001))),
        backend,
    )
    .await;
    let e = open(&spec("127.0.0.1", port, TlsMode::Implicit), &pki.client())
        .await
        .err()
        .unwrap();
    assert_perm(&e, &["certificate for 127.0.0.1 is not valid", "expired"]);
    assert!(store.sessions().is_empty(), "{}", store.report());
}

#[tokio::test]
async fn starttls_with_bytes_injected_after_the_ok_is_refused() {
    let pki = Pki::new("inject");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let front = stls_front(
        pki.server(&["127.0.0.1"]),
        backend,
        Stls::Inject(b"+OK injected\r\n"),
    )
    .await;
    let e = open(
        &spec("127.0.0.1", front.port, TlsMode::Starttls),
        &pki.client(),
    )
    .await
    .err()
    .unwrap();
    assert_perm(
        &e,
        &[
            "after its +OK to STLS",
            "CVE-2011-0411",
            "password was not sent",
        ],
    );
    assert_eq!(front.clear_text(), vec!["STLS".to_owned()]);
    assert_eq!(front.upgraded.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(store.sessions().is_empty(), "{}", store.report());
}

#[tokio::test]
async fn a_server_refusing_stls_is_refused_without_plain_text_fallback() {
    let pki = Pki::new("refuse");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let front = stls_front(pki.server(&["127.0.0.1"]), backend, Stls::Refuse).await;
    let e = open(
        &spec("127.0.0.1", front.port, TlsMode::Starttls),
        &pki.client(),
    )
    .await
    .err()
    .unwrap();
    assert_perm(
        &e,
        &["refused STLS", "TLS not available here", "never falls back"],
    );
    // Only STLS crossed in clear text: no USER, no PASS, no password.
    let seen = front.clear_text();
    assert_eq!(seen, vec!["STLS".to_owned()]);
    assert!(!seen.iter().any(|l| l.contains(PASSWORD)));
    assert!(store.sessions().is_empty(), "{}", store.report());
}

#[tokio::test]
async fn implicit_tls_to_a_plain_port_is_refused_clearly() {
    let pki = Pki::new("plainport");
    let store = store();
    let backend = mail_server(store.clone()).await;
    let e = open(
        &spec("127.0.0.1", backend, TlsMode::Implicit),
        &pki.client(),
    )
    .await
    .err()
    .unwrap();
    assert_perm(&e, &["did not answer in TLS", "starttls"]);
    assert!(
        store.sessions().iter().all(|s| s.user.is_none()),
        "{}",
        store.report()
    );
}

#[tokio::test]
async fn a_plain_session_still_works_and_never_reads_the_trust_store() {
    let store = store();
    let backend = mail_server(store.clone()).await;
    // A TLS client whose trust store cannot be built: plain servers do
    // not care (it is only built for TLS ones).
    let tls = ServerTls::default();
    round_trip(&spec("127.0.0.1", backend, TlsMode::None), &tls, &store).await;
    assert!(format!("{tls:?}").contains("not loaded yet"));
}

#[test]
fn a_ca_file_without_certificates_is_a_startup_error() {
    let pki = Pki::new("emptyfile");
    let empty = pki.ca_file.with_file_name("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = ServerTls::load(&TlsSettings {
        ca_file: Some(empty.clone()),
    })
    .unwrap_err();
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    let missing = pki.ca_file.with_file_name("missing.pem");
    let e = ServerTls::load(&TlsSettings {
        ca_file: Some(missing),
    })
    .unwrap_err();
    assert!(e.to_string().contains("cannot read ca_file"), "{e}");
    // The good file loads, and adds exactly its CA to the system's.
    let system = ServerTls::load(&TlsSettings::default())
        .map(|t| t.trusted_roots().unwrap())
        .unwrap_or(0);
    let with_ca = pki.client().trusted_roots().unwrap();
    assert_eq!(with_ca, system + 1);
}
