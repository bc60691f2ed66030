//! The other tunnel operators use today: a stunnel-style TLS forward, one
//! TLS connection per mail client connection, no compression.
//!
//! Two ends in this process, each on its own [`Node`] so its CPU is its
//! own: the client end takes the mail client's plain POP3 and opens TLS
//! across the line to the server end, which terminates TLS and connects to
//! the mail server. rustls on the ring provider (the same TLS the edge
//! speaks to mail servers) with a certificate made for the run; TLS 1.3,
//! so its handshake costs one round trip after TCP's. The same counting
//! [`Forwarder`] that measures Causeway's line sits between the ends.

use std::future::Future;
use std::sync::Arc;

use causeway_tests::{Forwarder, Pace};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::nodes::Node;

const NAME: &str = "tls-forward.invalid";

/// A running TLS forward to one target.
pub struct TlsForward {
    /// The TLS line between the two ends (client end -> server end is `Up`).
    pub line: Forwarder,
    /// Where the mail client connects: the client end.
    pub local: String,
    /// The end on the user's machine (where the client proxy would run).
    pub client_end: Node,
    /// The end near the server (where the edge would run).
    pub server_end: Node,
    _line_node: Node,
}

fn configs() -> Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>), String> {
    let e = |e: &dyn std::fmt::Display| format!("the TLS forward's certificate: {e}");
    let made = rcgen::generate_simple_self_signed(vec![NAME.to_string()]).map_err(|x| e(&x))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|x| e(&x))?
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .map_err(|x| e(&x))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).map_err(|x| e(&x))?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|x| e(&x))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(server), Arc::new(client)))
}

async fn bind() -> Result<(TcpListener, String), String> {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?.to_string();
    Ok((l, addr))
}

/// Accepts on `l` until the runtime ends, handing each connection (with
/// Nagle off, as the mail client's own) to `each` in a task of its own.
fn serve<F, Fut>(l: TcpListener, each: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(each(s));
        }
    });
}

async fn connect(addr: &str) -> Option<TcpStream> {
    let s = TcpStream::connect(addr).await.ok()?;
    let _ = s.set_nodelay(true);
    Some(s)
}

impl TlsForward {
    pub async fn start(target: &str, pace: Option<Pace>) -> Result<TlsForward, String> {
        let (server_tls, client_tls) = configs()?;
        let server_end = Node::start("tls server end");
        let target = target.to_string();
        let server_addr = server_end
            .run(async move {
                let (l, addr) = bind().await?;
                let acceptor = TlsAcceptor::from(server_tls);
                serve(l, move |s| {
                    let (acceptor, target) = (acceptor.clone(), target.clone());
                    async move {
                        let Ok(mut tls) = acceptor.accept(s).await else {
                            return;
                        };
                        let Some(mut plain) = connect(&target).await else {
                            return;
                        };
                        let _ = copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
                Ok::<_, String>(addr)
            })
            .await?;
        let line_node = Node::start("tls line");
        let line = line_node
            .run(Forwarder::start_paced(server_addr, pace))
            .await;
        let client_end = Node::start("tls client end");
        let across = line.addr();
        let local = client_end
            .run(async move {
                let (l, addr) = bind().await?;
                let connector = TlsConnector::from(client_tls);
                let name = ServerName::try_from(NAME).map_err(|e| e.to_string())?;
                serve(l, move |mut plain| {
                    let (connector, name, across) =
                        (connector.clone(), name.clone(), across.clone());
                    async move {
                        let Some(s) = connect(&across).await else {
                            return;
                        };
                        let Ok(mut tls) = connector.connect(name, s).await else {
                            return;
                        };
                        let _ = copy_bidirectional(&mut plain, &mut tls).await;
                    }
                });
                Ok::<_, String>(addr)
            })
            .await?;
        Ok(TlsForward {
            line,
            local,
            client_end,
            server_end,
            _line_node: line_node,
        })
    }
}
