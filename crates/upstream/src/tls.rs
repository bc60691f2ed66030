//! TLS to mail servers: the trust store, the stream that is plain or TLS,
//! and errors worded for the person who has to fix them.
//!
//! What is trusted: the system's CA certificates (as `rustls-native-certs`
//! finds them: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the platform store) plus,
//! optionally, the CA certificates of one PEM file ([`TlsSettings::ca_file`]),
//! for servers with a private CA. Every server certificate is verified
//! (chain to a trusted root, validity dates, and the name: `ServerSpec.host`,
//! a DNS name or an IP address). There is no option to skip any of this.
//!
//! TLS runs on rustls with the *ring* provider. It draws OS randomness and
//! reads the OS clock (certificate dates), so it is never used in the turmoil
//! simulation; the TLS paths are tested over real loopback sockets
//! (`crates/relay/tests/tls.rs`, `crates/edge/tests/tls.rs`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use causeway_proto::{ErrCode, OpError};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;

/// What to trust besides the system's CA certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM file of CA certificates trusted *in addition to* the system's
    /// (TOML: `ca_file`). For mail servers whose certificate comes from a
    /// private CA. It adds trust; it never turns verification off.
    pub ca_file: Option<PathBuf>,
}

/// Why the TLS client could not be set up (a startup error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSetupError(String);

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsSetupError {}

impl From<TlsSetupError> for io::Error {
    fn from(e: TlsSetupError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e.0)
    }
}

/// The TLS client for mail servers: [`TlsSettings`] turned into a rustls
/// `ClientConfig`, built once and shared (cheap to clone).
///
/// - [`ServerTls::load`] builds it now: call it at startup, so that an
///   unreadable `ca_file` or an empty trust store stops the node with a
///   clear error.
/// - [`ServerTls::default`] (what `EdgeConfig::new` and `RelayConfig::new`
///   start with) trusts the system store and builds it on the first TLS
///   connection; a failure then refuses that server with `[SYS/PERM]`. So
///   nodes that never meet a TLS server (the simulation, most tests) never
///   read the system store.
#[derive(Clone, Default)]
pub struct ServerTls(Arc<Inner>);

#[derive(Default)]
struct Inner {
    settings: TlsSettings,
    built: OnceLock<Result<Built, TlsSetupError>>,
}

#[derive(Clone)]
struct Built {
    config: Arc<ClientConfig>,
    roots: usize,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.0.built.get() {
            None => "not loaded yet".to_owned(),
            Some(Ok(b)) => format!("{} trusted CA certificates", b.roots),
            Some(Err(e)) => format!("unusable: {e}"),
        };
        f.debug_struct("ServerTls")
            .field("ca_file", &self.0.settings.ca_file)
            .field("state", &state)
            .finish()
    }
}

impl ServerTls {
    /// Builds the TLS client now: system CA certificates plus `ca_file`.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsSetupError> {
        let tls = Self(Arc::new(Inner {
            settings: settings.clone(),
            built: OnceLock::new(),
        }));
        tls.built()?;
        Ok(tls)
    }

    /// The settings this client was made from.
    pub fn settings(&self) -> &TlsSettings {
        &self.0.settings
    }

    /// How many CA certificates are trusted (building the client if needed).
    pub fn trusted_roots(&self) -> Result<usize, TlsSetupError> {
        self.built().map(|b| b.roots)
    }

    fn built(&self) -> Result<&Built, TlsSetupError> {
        self.0
            .built
            .get_or_init(|| build(&self.0.settings))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The rustls configuration, or why there is none, as an error for the
    /// mail client.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, OpError> {
        self.built().map(|b| b.config.clone()).map_err(|e| {
            OpError::new(
                Some(ErrCode::SysPerm),
                format!("TLS to mail servers is not usable on this node: {e}"),
            )
        })
    }
}

fn build(settings: &TlsSettings) -> Result<Built, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (system_added, _ignored) = roots.add_parsable_certificates(native.certs);
    for e in &native.errors {
        tracing::warn!(error = %e, "some system CA certificates could not be read");
    }
    let mut extra = 0;
    if let Some(path) = &settings.ca_file {
        let certs = read_ca_file(path)?;
        extra = certs.len();
        for (i, c) in certs.into_iter().enumerate() {
            roots.add(c).map_err(|e| {
                TlsSetupError(format!(
                    "ca_file {}: certificate {} is not a usable CA certificate: {e}",
                    path.display(),
                    i + 1
                ))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TlsSetupError(
            "no trusted CA certificates: the system trust store is empty or missing \
             (install the ca-certificates package, or set SSL_CERT_FILE) and no ca_file is set"
                .into(),
        ));
    }
    tracing::info!(
        system = system_added,
        ca_file = extra,
        "TLS to mail servers: trusted CA certificates loaded"
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    Ok(Built {
        config: Arc::new(config),
        roots: roots.len(),
    })
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let unreadable = |e: &dyn fmt::Display| {
        TlsSetupError(format!("cannot read ca_file {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&pem_error(e)))?;
    if certs.is_empty() {
        return Err(TlsSetupError(format!(
            "ca_file {} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
            path.display()
        )));
    }
    Ok(certs)
}

fn pem_error(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// The name a server's certificate must be valid for: `host` as a DNS name
/// or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, OpError> {
    ServerName::try_from(host.to_owned()).map_err(|_| {
        OpError::new(
            Some(ErrCode::SysPerm),
            format!(
                "cannot verify a TLS certificate for {host:?}: it is neither a DNS name \
                 nor an IP address"
            ),
        )
    })
}

/// A failed TLS handshake, for people. Certificate problems and TLS
/// incompatibilities are `[SYS/PERM]` (no retry fixes them: someone must
/// act); a cut or a timeout is `[SYS/TEMP]`.
pub(crate) fn handshake_error(
    server: &str,
    host: &str,
    address: &str,
    after_starttls: bool,
    e: io::Error,
) -> OpError {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let Some(tls) = tls else {
        return OpError::new(
            Some(ErrCode::SysTemp),
            format!("TLS handshake with mail server {server} ({address}) failed: {e}"),
        );
    };
    let text = match tls {
        rustls::Error::InvalidCertificate(c) => format!(
            "mail server {server} ({address}): certificate for {host} is not valid: {}",
            certificate_reason(c, host)
        ),
        rustls::Error::InvalidMessage(_) if after_starttls => format!(
            "mail server {server} ({address}) sent something other than TLS after agreeing \
             to start TLS (STLS or STARTTLS) ({tls}): refused, as this may be a STARTTLS injection attack \
             (CVE-2011-0411 class); the password was not sent"
        ),
        rustls::Error::InvalidMessage(_) => format!(
            "mail server {server} ({address}) did not answer in TLS ({tls}); \
             is this a plain-text port? tls = \"implicit\" is for POP3S (port 995) and \
             IMAPS (port 993), a plain port needs tls = \"starttls\""
        ),
        other => format!("TLS with mail server {server} ({address}) failed: {other}"),
    };
    OpError::new(Some(ErrCode::SysPerm), text)
}

/// Why a certificate was refused, and what would fix it.
fn certificate_reason(c: &CertificateError, host: &str) -> String {
    match c {
        CertificateError::UnknownIssuer => "it is not signed by a trusted CA (unknown issuer); \
             if the server uses a private CA, set ca_file to that CA's certificate"
            .into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("it has expired ({c}); the server's certificate must be renewed")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("it is not valid yet ({c}); check this node's clock")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "it is not valid for the name {host} ({c}); set the server's host to a name \
                 its certificate is issued for"
            )
        }
        CertificateError::BadSignature => "its signature does not verify".into(),
        CertificateError::Revoked => "it has been revoked".into(),
        other => other.to_string(),
    }
}

/// A connection to a mail server: plain TCP, or TLS over it.
///
/// After STLS the session goes on over TLS without a second greeting, but
/// [`causeway_pop3::Pop3Client::start`] reads one: the plain greeting
/// (already read and checked) is replayed to it from `replay`, never taken
/// from the network again.
pub(crate) struct ServerStream<S> {
    inner: Conn<S>,
    replay: Vec<u8>,
    replayed: usize,
}

enum Conn<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
}

impl<S> ServerStream<S> {
    pub(crate) fn plain(s: S) -> Self {
        Self {
            inner: Conn::Plain(s),
            replay: Vec::new(),
            replayed: 0,
        }
    }

    /// A TLS stream whose reader first yields `replay`.
    pub(crate) fn tls(s: TlsStream<S>, replay: Vec<u8>) -> Self {
        Self {
            inner: Conn::Tls(Box::new(s)),
            replay,
            replayed: 0,
        }
    }

    /// Whether this connection is TLS.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.inner, Conn::Tls(_))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ServerStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < this.replay.len() {
            let rest = &this.replay[this.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.replayed += n;
            return Poll::Ready(Ok(()));
        }
        match &mut this.inner {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ServerStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_ca_file_is_a_clear_error() {
        let e = ServerTls::load(&TlsSettings {
            ca_file: Some("/nonexistent/causeway-ca.pem".into()),
        })
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("cannot read ca_file /nonexistent/causeway-ca.pem"),
            "{s}"
        );
    }

    #[test]
    fn host_names_and_addresses_are_verifiable_names() {
        assert!(server_name("mail.example.org").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
        let e = server_name("bad name!").unwrap_err();
        assert_eq!(e.code, Some(ErrCode::SysPerm));
    }

    #[test]
    fn default_is_lazy() {
        let t = ServerTls::default();
        assert!(format!("{t:?}").contains("not loaded yet"));
        assert_eq!(t.settings().ca_file, None);
    }
}
