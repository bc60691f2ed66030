//! The async client: a thin loop around [`ClientCodec`].
//!
//! Every read and write goes through [`Env::timeout`], so a server that
//! stops talking (or a line that silently drops packets) turns into a
//! [`ClientError::Timeout`] naming the wait, never a hang. The bound is on
//! silence, never on size: a reply fails once no byte of it arrived for
//! `command`, so a body of any size is given the time it needs while it
//! keeps flowing (the size itself is capped by the codec's `max_message`).
//! End of stream before a complete response is always an error
//! ([`ClientError::Eof`]), never a short success.
//!
//! After any error the connection's state is unknown (half a reply may be in
//! flight), so the client refuses further commands with
//! [`ClientError::Broken`]; callers reconnect.

use std::time::Duration;

use causeway_net::wait::waited;
use causeway_net::{Env, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ClientCodec, ClientError, Response, listing};
use crate::command::Command;
use crate::command::{XPROGRESS, stored_uidl};
use crate::response::{RespCode, StatusLine};

pub use causeway_net::wait::Timeouts;

/// Most bytes one read takes. The buffer exists only while a response is
/// awaited: an idle session holds none (#18).
const READ_CHUNK: usize = 16 * 1024;

/// Thin async POP3 client over any stream.
pub struct Pop3Client<E: Env, S> {
    env: E,
    stream: S,
    codec: ClientCodec,
    timeouts: Timeouts,
    read_buf: Vec<u8>,
    broken: bool,
}

impl<E: Env, S> std::fmt::Debug for Pop3Client<E, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Client")
            .field("timeouts", &self.timeouts)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

fn refused_unless_ok(r: Response) -> Result<Response, ClientError> {
    if r.status.is_ok() {
        Ok(r)
    } else {
        Err(ClientError::Refused(r.status))
    }
}

fn body_of(r: Response) -> Result<Vec<u8>, ClientError> {
    refused_unless_ok(r)?
        .body
        .ok_or_else(|| ClientError::Protocol("multi-line reply without a body".into()))
}

impl<E: Env, S: Stream> Pop3Client<E, S> {
    /// Reads the greeting on a fresh connection. A `-ERR` greeting becomes
    /// [`ClientError::Refused`]. Returns the greeting (its text may hold an
    /// APOP timestamp).
    pub async fn start(
        env: E,
        stream: S,
        timeouts: Timeouts,
        max_message: usize,
    ) -> Result<(Self, StatusLine), ClientError> {
        let mut client = Pop3Client {
            env,
            stream,
            codec: ClientCodec::new(max_message),
            timeouts,
            read_buf: Vec::new(),
            broken: false,
        };
        client.codec.expect_greeting();
        let r = client
            .read_response("the POP3 greeting", timeouts.greeting)
            .await;
        let greeting = refused_unless_ok(client.poison_on_err(r)?)?.status;
        Ok((client, greeting))
    }

    /// Sends `cmd` and reads its complete reply. `-ERR` is `Ok` with
    /// `status.status == Status::Err`; only transport and protocol failures
    /// are errors.
    pub async fn execute(&mut self, cmd: &Command) -> Result<Response, ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        tracing::trace!(?cmd, "POP3 command");
        let r = self.execute_inner(cmd).await;
        self.poison_on_err(r)
    }

    async fn execute_inner(&mut self, cmd: &Command) -> Result<Response, ClientError> {
        let mut out = Vec::new();
        self.codec.send(cmd, &mut out);
        let what = write_what(cmd);
        let stream = &mut self.stream;
        let timed = self
            .env
            .timeout(self.timeouts.command, what, async move {
                stream.write_all(&out).await?;
                stream.flush().await
            })
            .await;
        waited(timed, what, self.timeouts.command)?;
        self.read_response(read_what(cmd), self.timeouts.command)
            .await
    }

    /// Sends all `cmds` in one write, then reads their replies in order
    /// (RFC 2449 PIPELINING; only use it if `CAPA` listed `PIPELINING`).
    /// Each reply gets its own `command` bound on silence. `-ERR` replies
    /// come back as responses, like [`Pop3Client::execute`].
    pub async fn pipeline(&mut self, cmds: &[Command]) -> Result<Vec<Response>, ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        let r = self.pipeline_inner(cmds).await;
        self.poison_on_err(r)
    }

    async fn pipeline_inner(&mut self, cmds: &[Command]) -> Result<Vec<Response>, ClientError> {
        let mut out = Vec::new();
        for cmd in cmds {
            tracing::trace!(?cmd, "POP3 command (pipelined)");
            self.codec.send(cmd, &mut out);
        }
        let what = "sending pipelined POP3 commands";
        let stream = &mut self.stream;
        let timed = self
            .env
            .timeout(self.timeouts.command, what, async move {
                stream.write_all(&out).await?;
                stream.flush().await
            })
            .await;
        waited(timed, what, self.timeouts.command)?;
        let mut responses = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            responses.push(
                self.read_response(read_what(cmd), self.timeouts.command)
                    .await?,
            );
        }
        Ok(responses)
    }

    fn poison_on_err<T>(&mut self, r: Result<T, ClientError>) -> Result<T, ClientError> {
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Reads until the codec has a complete response; fails once nothing
    /// arrived for `base`.
    async fn read_response(
        &mut self,
        what: &'static str,
        base: Duration,
    ) -> Result<Response, ClientError> {
        loop {
            if let Some(r) = self.codec.next_response() {
                self.read_buf = Vec::new();
                return Ok(r);
            }
            let stream = &mut self.stream;
            let buf = &mut self.read_buf;
            buf.clear();
            buf.reserve(READ_CHUNK);
            let n = waited(
                self.env.timeout(base, what, stream.read_buf(buf)).await,
                what,
                base,
            )?;
            if n == 0 {
                return Err(ClientError::Eof { during: what });
            }
            self.codec.feed(&self.read_buf[..n])?;
        }
    }

    async fn ok(&mut self, cmd: &Command) -> Result<Response, ClientError> {
        let r = self.execute(cmd).await?;
        refused_unless_ok(r)
    }

    /// `USER` then `PASS`. A `-ERR` to either is [`ClientError::Refused`]
    /// with its response code (`[AUTH]`, `[IN-USE]`, `[SYS/TEMP]`...).
    pub async fn login(&mut self, user: &[u8], pass: &[u8]) -> Result<(), ClientError> {
        self.ok(&Command::User(user.to_vec())).await?;
        self.ok(&Command::Pass(pass.to_vec())).await?;
        Ok(())
    }

    /// `CAPA`: the capability lines.
    pub async fn capa(&mut self) -> Result<Vec<Vec<u8>>, ClientError> {
        let body = body_of(self.execute(&Command::Capa).await?)?;
        Ok(listing::parse_capabilities(&body))
    }

    /// `STAT`: (message count, mailbox size in octets).
    pub async fn stat(&mut self) -> Result<(u32, u64), ClientError> {
        let r = self.ok(&Command::Stat).await?;
        listing::parse_stat(&r.status.text)
    }

    /// `LIST`: (message number, size) for every message not deleted.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, ClientError> {
        let body = body_of(self.execute(&Command::List(None)).await?)?;
        listing::parse_scan_listing(&body)
    }

    /// `XFLAGS` (Causeway's own, see [`Command::Xflags`]): (n, mask).
    pub async fn xflags(&mut self) -> Result<Vec<(u32, u64)>, ClientError> {
        let body = body_of(self.execute(&Command::Xflags).await?)?;
        listing::parse_scan_listing(&body)
    }

    /// `XSEARCH`: the numbers of the messages one text criterion matches
    /// on `servers` (every server of the maildrop if empty; see
    /// [`crate::search`]).
    pub async fn xsearch(
        &mut self,
        key: crate::search::TextKey,
        servers: Vec<String>,
    ) -> Result<Vec<u32>, ClientError> {
        let servers = crate::search::narrowed(&key, servers);
        let body = body_of(self.execute(&Command::Xsearch { key, servers }).await?)?;
        listing::parse_number_listing(&body)
    }

    /// `LIST n`: (n, size).
    pub async fn list_one(&mut self, n: u32) -> Result<(u32, u64), ClientError> {
        let r = self.ok(&Command::List(Some(n))).await?;
        listing::parse_scan_line(&r.status.text)
    }

    /// `UIDL`: (message number, unique id) for every message not deleted.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, ClientError> {
        let body = body_of(self.execute(&Command::Uidl(None)).await?)?;
        listing::parse_uidl_listing(&body)
    }

    /// `UIDL n`: (n, unique id).
    pub async fn uidl_one(&mut self, n: u32) -> Result<(u32, String), ClientError> {
        let r = self.ok(&Command::Uidl(Some(n))).await?;
        listing::parse_uidl_line(&r.status.text)
    }

    /// `RETR n`: the message, un-stuffed, CRLF line ends.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>, ClientError> {
        body_of(self.execute(&Command::Retr(n)).await?)
    }

    /// `TOP n lines`: the header and the first `lines` lines of the body.
    pub async fn top(&mut self, n: u32, lines: u32) -> Result<Vec<u8>, ClientError> {
        body_of(self.execute(&Command::Top { msg: n, lines }).await?)
    }

    /// `DELE n`.
    pub async fn dele(&mut self, n: u32) -> Result<(), ClientError> {
        self.ok(&Command::Dele(n)).await.map(drop)
    }

    /// `XSTORE n ±flags` (Causeway's own, see [`Command::Xstore`]).
    pub async fn xstore(
        &mut self,
        n: u32,
        add: bool,
        flags: Vec<Vec<u8>>,
    ) -> Result<(), ClientError> {
        self.ok(&Command::Xstore { msg: n, add, flags })
            .await
            .map(drop)
    }

    /// `RSET`.
    pub async fn rset(&mut self) -> Result<(), ClientError> {
        self.ok(&Command::Rset).await.map(drop)
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<(), ClientError> {
        self.ok(&Command::Noop).await.map(drop)
    }

    /// `STLS`: on `+OK`, the stream is ready for the TLS handshake
    /// ([`Pop3Client::into_inner`]). Fails if the server sent anything after
    /// its `+OK` (that would be clear text injected before TLS).
    pub async fn stls(&mut self) -> Result<(), ClientError> {
        self.ok(&Command::Stls).await?;
        if self.codec.buffered() > 0 {
            self.broken = true;
            return Err(ClientError::Protocol(
                "data after the STLS reply, before TLS".into(),
            ));
        }
        Ok(())
    }

    /// `XAPPEND server octets flags` (Causeway's own, see
    /// [`Command::Xappend`]): on the go-ahead, the message, a piece at a
    /// time; then the outcome, each `+OK [XPROGRESS]` line before it
    /// (the message moving on) starting the wait on silence again. A
    /// `-ERR` to either is [`ClientError::Refused`]; `Ok` holds the UIDL
    /// the message will be listed by, when the server said
    /// ([`crate::command::XUIDL`]).
    pub async fn xappend(
        &mut self,
        server: &[u8],
        flags: &[Vec<u8>],
        message: &[u8],
    ) -> Result<Option<String>, ClientError> {
        let octets = u32::try_from(message.len())
            .map_err(|_| ClientError::Protocol("a message over 4 GiB".into()))?;
        self.ok(&Command::Xappend {
            server: server.to_vec(),
            octets,
            flags: flags.to_vec(),
        })
        .await?;
        let r = self.xappend_rest(message).await;
        refused_unless_ok(self.poison_on_err(r)?).map(|r| stored_uidl(&r.status))
    }

    async fn xappend_rest(&mut self, message: &[u8]) -> Result<Response, ClientError> {
        let what = "sending the message of XAPPEND";
        for piece in message.chunks(READ_CHUNK) {
            let stream = &mut self.stream;
            let timed = self
                .env
                .timeout(self.timeouts.command, what, async move {
                    stream.write_all(piece).await?;
                    stream.flush().await
                })
                .await;
            waited(timed, what, self.timeouts.command)?;
        }
        self.codec.expect_outcome();
        loop {
            let r = self
                .read_response("the outcome of XAPPEND", self.timeouts.command)
                .await?;
            let progress = matches!(&r.status.code, Some(RespCode::Other(c)) if c == XPROGRESS);
            if !(progress && r.status.is_ok()) {
                return Ok(r);
            }
        }
    }

    /// `QUIT`: returns the server's parting status (`-ERR` here means the
    /// deletions were *not* committed). Shuts down our sending side.
    pub async fn quit(mut self) -> Result<StatusLine, ClientError> {
        let r = self.execute(&Command::Quit).await?;
        let _ = self
            .env
            .timeout(
                self.timeouts.command,
                "closing the POP3 connection",
                self.stream.shutdown(),
            )
            .await;
        Ok(r.status)
    }

    /// The underlying stream (after `STLS`, for the TLS upgrade).
    pub fn into_inner(self) -> S {
        self.stream
    }
}

fn write_what(cmd: &Command) -> &'static str {
    match cmd {
        Command::User(_) => "sending USER",
        Command::Pass(_) => "sending PASS",
        Command::Apop { .. } => "sending APOP",
        Command::Stat => "sending STAT",
        Command::List(_) => "sending LIST",
        Command::Uidl(_) => "sending UIDL",
        Command::Retr(_) => "sending RETR",
        Command::Top { .. } => "sending TOP",
        Command::Dele(_) => "sending DELE",
        Command::Noop => "sending NOOP",
        Command::Rset => "sending RSET",
        Command::Quit => "sending QUIT",
        Command::Capa => "sending CAPA",
        Command::Stls => "sending STLS",
        Command::Xappend { .. } => "sending XAPPEND",
        Command::Xstore { .. } => "sending XSTORE",
        Command::Xflags => "sending XFLAGS",
        Command::Xsearch { .. } => "sending XSEARCH",
    }
}

fn read_what(cmd: &Command) -> &'static str {
    match cmd {
        Command::User(_) => "the reply to USER",
        Command::Pass(_) => "the reply to PASS",
        Command::Apop { .. } => "the reply to APOP",
        Command::Stat => "the reply to STAT",
        Command::List(_) => "the reply to LIST",
        Command::Uidl(_) => "the reply to UIDL",
        Command::Retr(_) => "the reply to RETR",
        Command::Top { .. } => "the reply to TOP",
        Command::Dele(_) => "the reply to DELE",
        Command::Noop => "the reply to NOOP",
        Command::Rset => "the reply to RSET",
        Command::Quit => "the reply to QUIT",
        Command::Capa => "the reply to CAPA",
        Command::Stls => "the reply to STLS",
        Command::Xappend { .. } => "the go-ahead to XAPPEND",
        Command::Xstore { .. } => "the reply to XSTORE",
        Command::Xflags => "the reply to XFLAGS",
        Command::Xsearch { .. } => "the reply to XSEARCH",
    }
}
