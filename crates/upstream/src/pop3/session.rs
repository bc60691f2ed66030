//! One logged-in POP3 session with a mail server: connect, greeting, USER/PASS,
//! then commands, then QUIT.
//!
//! Both the relay (for each edge link) and the edge (for servers it reaches
//! directly) need exactly this. What it adds to [`Pop3Client`] is the policy
//! both share: a bounded connect, TLS as the server's [`TlsMode`] says
//! (implicit, or a strict STLS; see [`crate::tls`] and `docs/protocol.md`,
//! "TLS to mail servers"), and turning every failure into an [`OpError`]
//! that carries the server's RFC 2449 code, so the mail client can tell
//! "locked, try later" from "wrong password".
//!
//! [`Pop3Session::execute`] returns `Ok` for any reply the server gave,
//! `-ERR` included; `Err` means the connection itself failed and the session
//! is over (callers reconnect).

use std::time::Duration;

use causeway_net::{Env, Stream};
use causeway_pop3::client::CLIENT_MAX_RESPONSE_LINE;
use causeway_pop3::{ClientError, Command, Pop3Client, RespCode, Response, StatusLine, Timeouts};
use causeway_proto::user::{ServerSpec, TlsMode};
use causeway_proto::{ErrCode, OpError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connect::{ServerTimeouts, connect};
use crate::tls::{ServerStream, ServerTls};

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

pub struct Pop3Session<E: Env> {
    client: Pop3Client<E, ServerStream<E::Stream>>,
    spec_name: String,
    address: String,
}

impl<E: Env> Pop3Session<E> {
    /// Connects to `spec`'s server (TLS as `spec.tls` says, certificates
    /// checked with `tls`) and logs in. Returns the session and the server's
    /// greeting.
    ///
    /// USER and PASS are only ever sent over TLS unless `spec.tls` is
    /// [`TlsMode::None`]: with `Starttls`, a server that will not start TLS
    /// is refused, never talked to in the clear.
    pub async fn open(
        env: &E,
        spec: &ServerSpec,
        tls: &ServerTls,
        timeouts: ServerTimeouts,
        max_message: usize,
    ) -> Result<(Self, StatusLine), OpError> {
        let address = spec.address();
        let stream = connect(env, spec, tls, timeouts, |stream| {
            starttls_preamble(env, spec, &address, stream, timeouts.command)
        })
        .await?;
        let pop3 = Timeouts {
            greeting: timeouts.command,
            command: timeouts.command,
        };
        debug_assert_eq!(stream.is_tls(), spec.tls != TlsMode::None);
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

/// The clear-text part of STLS (RFC 2595): the greeting, `STLS`, its `+OK`.
/// Returns the stream, ready for the TLS handshake, and the greeting line
/// (with its CRLF) to replay to the POP3 client once TLS is up.
///
/// Strict: a byte received beyond the greeting line, or beyond the `+OK`
/// to STLS, is refused. Bytes a man in the middle slips in before TLS
/// would otherwise be read as replies to commands sent under TLS (the
/// STARTTLS injection class of CVE-2011-0411).
async fn starttls_preamble<E: Env>(
    env: &E,
    spec: &ServerSpec,
    address: &str,
    mut stream: E::Stream,
    within: Duration,
) -> Result<(E::Stream, Vec<u8>), OpError> {
    let server = &spec.name;
    let (greeting_line, extra) = read_status_line(
        env,
        &mut stream,
        within,
        "the POP3 greeting",
        server,
        address,
    )
    .await?;
    let greeting = parse_status(&greeting_line, server, address)?;
    if !greeting.is_ok() {
        return Err(refusal(&greeting));
    }
    if extra > 0 {
        return Err(injected(
            server,
            address,
            extra,
            "its greeting, before STLS was sent",
        ));
    }
    env.timeout(within, "sending STLS", async {
        stream.write_all(b"STLS\r\n").await?;
        stream.flush().await
    })
    .await
    .and_then(|r| r)
    .map_err(|e| {
        OpError::new(
            Some(ErrCode::SysTemp),
            format!("lost the connection to mail server {server} ({address}) sending STLS: {e}"),
        )
    })?;
    let (reply_line, extra) = read_status_line(
        env,
        &mut stream,
        within,
        "the reply to STLS",
        server,
        address,
    )
    .await?;
    let reply = parse_status(&reply_line, server, address)?;
    if !reply.is_ok() {
        let code = match err_code(reply.code.as_ref()) {
            Some(ErrCode::SysTemp) => ErrCode::SysTemp,
            _ => ErrCode::SysPerm,
        };
        return Err(OpError::new(
            Some(code),
            format!(
                "mail server {server} ({address}) refused STLS ({}); with tls = \"starttls\" \
                 Causeway never falls back to plain text, so the password was not sent. \
                 If the server offers POP3S, use tls = \"implicit\" (usually port 995)",
                reply.text_lossy()
            ),
        ));
    }
    if extra > 0 {
        return Err(injected(
            server,
            address,
            extra,
            "its +OK to STLS, before TLS began",
        ));
    }
    Ok((stream, greeting_line))
}

/// The refusal for bytes that arrived where the protocol has none.
fn injected(server: &str, address: &str, n: usize, after: &str) -> OpError {
    OpError::new(
        Some(ErrCode::SysPerm),
        format!(
            "mail server {server} ({address}) sent {n} unexpected byte(s) after {after}: \
             refused, as this is how a STARTTLS command injection attack (CVE-2011-0411 class) \
             smuggles clear text into the TLS session; the password was not sent"
        ),
    )
}

fn parse_status(line: &[u8], server: &str, address: &str) -> Result<StatusLine, OpError> {
    let bare = line
        .strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(line);
    StatusLine::parse(bare).map_err(|e| {
        OpError::new(
            Some(ErrCode::SysTemp),
            format!("mail server {server} ({address}) sent a bad POP3 status line: {e}"),
        )
    })
}

/// Reads one line (through its LF) within `within`. Returns the line and
/// how many bytes came after it in the same reads: a server must send
/// nothing more until we speak, so any is suspect.
async fn read_status_line<S: Stream, E: Env>(
    env: &E,
    stream: &mut S,
    within: Duration,
    what: &'static str,
    server: &str,
    address: &str,
) -> Result<(Vec<u8>, usize), OpError> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let extra = buf.len() - (i + 1);
                buf.truncate(i + 1);
                return Ok((buf, extra));
            }
            if buf.len() > CLIENT_MAX_RESPONSE_LINE {
                return Err(format!(
                    "a line longer than {CLIENT_MAX_RESPONSE_LINE} bytes while waiting for {what}"
                ));
            }
            match stream.read(&mut chunk).await {
                Ok(0) => {
                    return Err(format!(
                        "the connection was closed while waiting for {what}"
                    ));
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("{e} while waiting for {what}")),
            }
        }
    };
    match env.timeout(within, what, read).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(text)) => Err(OpError::new(
            Some(ErrCode::SysTemp),
            format!("mail server {server} ({address}): {text}"),
        )),
        Err(e) => Err(OpError::new(
            Some(ErrCode::SysTemp),
            format!("mail server {server} ({address}): {e}"),
        )),
    }
}
