//! Reaching a mail server: TCP with a deadline, then TLS as the server's
//! [`TlsMode`] says, for either protocol.
//!
//! POP3 and IMAP differ only in the clear-text part of STARTTLS (`STLS`
//! and its `+OK`, or `STARTTLS` and its tagged `OK`), so that part is the
//! caller's `preamble`; the rest (what is refused before the network is
//! touched, the deadlines, how a failed handshake is worded) is the same
//! rule for both, here.

use std::future::Future;
use std::time::Duration;

use causeway_net::Env;
use causeway_proto::user::{ServerSpec, TlsMode};
use causeway_proto::{ErrCode, OpError};
use tokio_rustls::TlsConnector;

use crate::tls::{ServerStream, ServerTls, handshake_error, server_name};

/// How long each step of talking to a mail server may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Greeting, and each command's reply: the longest silence allowed
    /// (a body of any size may take as long as it keeps arriving).
    pub command: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(20),
            command: Duration::from_secs(60),
        }
    }
}

/// Connects to `spec`'s server. With [`TlsMode::Starttls`], `preamble`
/// does the protocol's clear-text part on the fresh stream and returns it,
/// ready for the TLS handshake, with the bytes to replay to the protocol
/// client once TLS is up (POP3's greeting; nothing for IMAP).
pub(crate) async fn connect<E, F, Fut>(
    env: &E,
    spec: &ServerSpec,
    tls: &ServerTls,
    timeouts: ServerTimeouts,
    preamble: F,
) -> Result<ServerStream<E::Stream>, OpError>
where
    E: Env,
    F: FnOnce(E::Stream) -> Fut,
    Fut: Future<Output = Result<(E::Stream, Vec<u8>), OpError>>,
{
    let address = spec.address();
    // Everything that can be refused without the network comes first.
    let tls_setup = match spec.tls {
        TlsMode::None => None,
        TlsMode::Implicit | TlsMode::Starttls => Some((
            TlsConnector::from(tls.client_config()?),
            server_name(&spec.host)?,
        )),
    };
    let stream = env
        .timeout(
            timeouts.connect,
            "the TCP connection to the mail server",
            env.connect(&address),
        )
        .await
        .and_then(|r| r)
        .map_err(|e| {
            OpError::new(
                Some(ErrCode::SysTemp),
                format!(
                    "cannot connect to mail server {} ({address}): {e}",
                    spec.name
                ),
            )
        })?;
    let Some((connector, name)) = tls_setup else {
        return Ok(ServerStream::plain(stream));
    };
    let starttls = spec.tls == TlsMode::Starttls;
    let (stream, replay) = if starttls {
        preamble(stream).await?
    } else {
        (stream, Vec::new())
    };
    let tls = env
        .timeout(
            timeouts.connect,
            "the TLS handshake with the mail server",
            connector.connect(name, stream),
        )
        .await
        .and_then(|r| r)
        .map_err(|e| handshake_error(&spec.name, &spec.host, &address, starttls, e))?;
    tracing::debug!(server = %spec.name, tls = ?spec.tls, "TLS established with the mail server");
    Ok(ServerStream::tls(tls, replay))
}
