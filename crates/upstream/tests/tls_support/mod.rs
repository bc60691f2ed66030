//! Test fixtures for TLS to mail servers, over real loopback sockets
//! (`TokioEnv`; TLS is never used in the turmoil simulation):
//!
//! - [`Pki`]: a throwaway CA made at test time (rcgen; no key is ever
//!   written to the repository), its certificate in a temporary `ca_file`,
//!   and server certificates for any names and validity period.
//! - [`mail_server`]: the model mail server on a loopback port.
//! - [`implicit_front`]: a TLS terminator (POP3S) in front of it.
//! - [`starttls_front`] ([`stls_front`] for POP3): a front that does the
//!   clear-text part of STARTTLS itself (POP3: greeting, CAPA, STLS; IMAP:
//!   a greeting listing STARTTLS, then `tag STARTTLS`), upgrades, then
//!   splices to the plain server (swallowing its greeting: after STARTTLS
//!   there is no second one). It can refuse STARTTLS or inject bytes after
//!   its `OK`, and logs every clear-text line it receives.
//!
//! Shared by `crates/upstream/tests/tls.rs`, `tests/tests/edge_tls.rs` and
//! `tests/tests/imap_upstream.rs`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use causeway_mailserver::{MailStore, ServerConfig, serve};
use causeway_net::{Env, Listener, TokioEnv};
use causeway_upstream::{ServerTls, TlsSettings};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use tokio_rustls::TlsAcceptor;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "tls-test-secret-5521";

/// A test CA and its certificate in a temporary PEM file.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_file: PathBuf,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

impl Pki {
    pub fn new(label: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Causeway test CA {label}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "causeway-tls-{}-{}-{label}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki { dir, ca, ca_file }
    }

    /// A TLS client trusting the system store and this CA.
    pub fn client(&self) -> ServerTls {
        ServerTls::load(&TlsSettings {
            ca_file: Some(self.ca_file.clone()),
        })
        .unwrap()
    }

    /// A server configuration with a certificate for `names`, valid from
    /// 1975 to 4096.
    pub fn server(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        self.server_valid(names, None)
    }

    /// A server certificate valid only in `(from_year, to_year)` if given.
    pub fn server_valid(
        &self,
        names: &[&str],
        years: Option<(i32, i32)>,
    ) -> Arc<rustls::ServerConfig> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "mail server");
        if let Some((from, to)) = years {
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(to, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let chain = vec![cert.der().clone(), self.ca.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        )
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// alice with two messages.
pub fn store() -> MailStore {
    let s = MailStore::new();
    s.add_user(USER, PASSWORD);
    s.deliver(USER, "Subject: one\r\n\r\nfirst over TLS\r\n")
        .unwrap();
    s.deliver(USER, "Subject: two\r\n\r\nsecond over TLS\r\n")
        .unwrap();
    s
}

/// The model mail server on a loopback port (plain POP3); returns the port.
pub async fn mail_server(store: MailStore) -> u16 {
    let env = TokioEnv::new();
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(serve(env, l, store, ServerConfig::default()));
    port
}

/// POP3S: TLS from the first byte, spliced to the plain server on
/// `backend`. Returns the port.
pub async fn implicit_front(tls: Arc<rustls::ServerConfig>, backend: u16) -> u16 {
    let env = TokioEnv::new();
    let mut l = env.bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            let env = env.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut plain = env.connect(&format!("127.0.0.1:{backend}")).await.unwrap();
                let _ = copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// What the STLS front answers to `STLS`.
#[derive(Clone, Copy, Debug)]
pub enum Stls {
    /// `+OK`, then TLS.
    Upgrade,
    /// `+OK` followed, in the same write, by these bytes (a man in the
    /// middle's injection), then TLS if the client goes on.
    Inject(&'static [u8]),
    /// `-ERR`: no TLS here.
    Refuse,
}

pub struct StlsFront {
    pub port: u16,
    /// Every line received in clear text, all connections.
    pub clear_text: Arc<Mutex<Vec<String>>>,
    /// Connections that completed the TLS handshake.
    pub upgraded: Arc<AtomicU32>,
}

impl StlsFront {
    pub fn clear_text(&self) -> Vec<String> {
        self.clear_text.lock().unwrap().clone()
    }
}

pub async fn stls_front(tls: Arc<rustls::ServerConfig>, backend: u16, mode: Stls) -> StlsFront {
    starttls_front(tls, backend, mode, Dialect::Pop3).await
}

/// Which protocol's clear-text part a STARTTLS front speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `+OK` greeting, `CAPA`, `STLS`.
    Pop3,
    /// `* OK [CAPABILITY ... STARTTLS]` greeting, `tag STARTTLS`.
    Imap,
}

impl Dialect {
    fn greeting(self) -> &'static [u8] {
        match self {
            Dialect::Pop3 => b"+OK STLS front ready\r\n",
            Dialect::Imap => {
                b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] STARTTLS front ready\r\n"
            }
        }
    }

    /// The answer to `line`, and whether TLS starts after it (None: the
    /// client said goodbye).
    fn answer(self, line: &str, mode: Stls) -> Option<(Vec<u8>, bool)> {
        let (tag, command) = match self {
            Dialect::Pop3 => ("", line),
            Dialect::Imap => line.split_once(' ').unwrap_or((line, "")),
        };
        let command = command.to_ascii_uppercase();
        let starttls = matches!(
            (self, command.as_str()),
            (Dialect::Pop3, "STLS") | (Dialect::Imap, "STARTTLS")
        );
        let status = |ok: bool, text: &str| match self {
            Dialect::Pop3 => format!("{} {text}\r\n", if ok { "+OK" } else { "-ERR" }),
            Dialect::Imap => format!("{tag} {} {text}\r\n", if ok { "OK" } else { "NO" }),
        };
        if starttls {
            let mut r = match mode {
                Stls::Refuse => status(false, "TLS not available here"),
                Stls::Upgrade | Stls::Inject(_) => status(true, "Begin TLS negotiation"),
            }
            .into_bytes();
            if let Stls::Inject(extra) = mode {
                r.extend_from_slice(extra);
            }
            return Some((r, !matches!(mode, Stls::Refuse)));
        }
        match (self, command.as_str()) {
            (Dialect::Pop3, "QUIT") | (Dialect::Imap, "LOGOUT") => None,
            (Dialect::Pop3, "CAPA") => Some((b"+OK\r\nSTLS\r\nUSER\r\n.\r\n".to_vec(), false)),
            _ => Some((status(false, "start TLS first").into_bytes(), false)),
        }
    }
}

/// A front that does the clear-text part of STARTTLS in `dialect` itself,
/// upgrades, then splices to the plain server on `backend` (swallowing its
/// greeting: after STARTTLS there is no second one).
pub async fn starttls_front(
    tls: Arc<rustls::ServerConfig>,
    backend: u16,
    mode: Stls,
    dialect: Dialect,
) -> StlsFront {
    let env = TokioEnv::new();
    let mut l = env.bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(tls);
    let clear_text = Arc::new(Mutex::new(Vec::new()));
    let upgraded = Arc::new(AtomicU32::new(0));
    let (log, up) = (clear_text.clone(), upgraded.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (acceptor, env, log, up) = (acceptor.clone(), env.clone(), log.clone(), up.clone());
            tokio::spawn(async move {
                if s.write_all(dialect.greeting()).await.is_err() {
                    return;
                }
                loop {
                    let Some(line) = read_line(&mut s).await else {
                        return;
                    };
                    log.lock().unwrap().push(line.clone());
                    let Some((reply, upgrade)) = dialect.answer(&line, mode) else {
                        let _ = s.write_all(b"+OK bye\r\n").await;
                        return;
                    };
                    if s.write_all(&reply).await.is_err() {
                        return;
                    }
                    if upgrade {
                        break;
                    }
                }
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                up.fetch_add(1, Ordering::SeqCst);
                let mut plain = env.connect(&format!("127.0.0.1:{backend}")).await.unwrap();
                // The server's greeting: the client already had ours.
                if read_line(&mut plain).await.is_none() {
                    return;
                }
                let _ = copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    StlsFront {
        port,
        clear_text,
        upgraded,
    }
}

/// One CRLF line, read a byte at a time (so nothing past it is consumed).
async fn read_line<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<String> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        match s.read(&mut b).await {
            Ok(1) => {}
            _ => return None,
        }
        if b[0] == b'\n' {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(b[0]);
        if line.len() > 4096 {
            return None;
        }
    }
}
