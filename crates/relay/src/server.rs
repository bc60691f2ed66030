//! One logged-in POP3 session with a mail server: connect, greeting, USER/PASS,
//! then commands, then QUIT.
//!
//! Both the relay (for each edge link) and the edge (for servers it reaches
//! directly) need exactly this, so it lives here once and the edge uses it.
//! What it adds to [`Pop3Client`] is the policy both share: a bounded connect,
//! refusing TLS modes we cannot do yet, and turning every failure into an
//! [`OpError`] that carries the server's RFC 2449 code, so the mail client can
//! tell "locked, try later" from "wrong password".
//!
//! [`ServerSession::execute`] returns `Ok` for any reply the server gave,
//! `-ERR` included; `Err` means the connection itself failed and the session
//! is over (callers reconnect).

use std::time::Duration;

use causeway_net::Env;
use causeway_pop3::{ClientError, Command, Pop3Client, RespCode, Response, StatusLine, Timeouts};
use causeway_proto::user::{ServerSpec, TlsMode};
use causeway_proto::{ErrCode, OpError};

/// How long each step of talking to a mail server may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Greeting, and each command's reply (plus `per_mib` of body received).
    pub command: Duration,
    pub per_mib: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(20),
            command: Duration::from_secs(60),
            per_mib: Duration::from_secs(30),
        }
    }
}

/// The error every TLS mode but `None` meets until TLS comes with the binaries.
pub fn tls_unavailable() -> OpError {
    OpError::new(
        Some(ErrCode::SysPerm),
        "TLS to mail servers is not built yet",
    )
}

/// The RFC 2449 code of a POP3 status line, as the catalogue knows it.
pub fn err_code(code: Option<&RespCode>) -> Option<ErrCode> {
    match code? {
        RespCode::InUse => Some(ErrCode::InUse),
        RespCode::LoginDelay => Some(ErrCode::LoginDelay),
        RespCode::Auth => Some(ErrCode::Auth),
        RespCode::SysTemp => Some(ErrCode::SysTemp),
        RespCode::SysPerm => Some(ErrCode::SysPerm),
        RespCode::Other(_) => None,
    }
}

/// A `-ERR` reply as an error for the mail client.
pub fn refusal(status: &StatusLine) -> OpError {
    OpError::new(err_code(status.code.as_ref()), status.text_lossy())
}

/// A POP3 client failure, worded with the server's name and address.
fn failure(spec: &ServerSpec, e: ClientError) -> OpError {
    match e {
        ClientError::Refused(s) => refusal(&s),
        other => OpError::new(
            Some(ErrCode::SysTemp),
            format!("mail server {} ({}): {other}", spec.name, spec.address()),
        ),
    }
}

pub struct ServerSession<E: Env> {
    client: Pop3Client<E, E::Stream>,
    spec_name: String,
    address: String,
}

impl<E: Env> ServerSession<E> {
    /// Connects to `spec`'s server and logs in. Returns the session and the
    /// server's greeting.
    pub async fn open(
        env: &E,
        spec: &ServerSpec,
        timeouts: ServerTimeouts,
        max_message: usize,
    ) -> Result<(Self, StatusLine), OpError> {
        if spec.tls != TlsMode::None {
            return Err(tls_unavailable());
        }
        let address = spec.address();
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
        let pop3 = Timeouts {
            greeting: timeouts.command,
            command: timeouts.command,
            per_mib: timeouts.per_mib,
        };
        let (mut client, greeting) = Pop3Client::start(env.clone(), stream, pop3, max_message)
            .await
            .map_err(|e| failure(spec, e))?;
        if let Err(e) = client
            .login(spec.user.as_bytes(), spec.password.expose())
            .await
        {
            if matches!(e, ClientError::Refused(_)) {
                // The server refused the login ([IN-USE], [AUTH]...) but is
                // still talking to us: end in AUTHORIZATION state with QUIT,
                // so servers that count or log sessions see a clean end.
                let _ = client.quit().await;
            }
            return Err(failure(spec, e));
        }
        let session = Self {
            client,
            spec_name: spec.name.clone(),
            address,
        };
        Ok((session, greeting))
    }

    /// Runs one command. `Ok` for any answer (`-ERR` too); `Err` when the
    /// connection failed and this session is over.
    pub async fn execute(&mut self, cmd: &Command) -> Result<Response, OpError> {
        self.client.execute(cmd).await.map_err(|e| self.lost(e))
    }

    /// `QUIT`: the server's answer (`-ERR` means it did not commit).
    pub async fn quit(self) -> Result<StatusLine, OpError> {
        let Self {
            client,
            spec_name,
            address,
        } = self;
        client
            .quit()
            .await
            .map_err(|e| self_lost(&spec_name, &address, e))
    }

    fn lost(&self, e: ClientError) -> OpError {
        self_lost(&self.spec_name, &self.address, e)
    }
}

fn self_lost(name: &str, address: &str, e: ClientError) -> OpError {
    OpError::new(
        Some(ErrCode::SysTemp),
        format!("lost the connection to mail server {name} ({address}): {e}"),
    )
}
