//! A mail server reached through a relay: a Noise KK link on which the relay
//! runs the POP3 server session ([`crate::pop3::ServerSession`]) for us.
//!
//! The relay parses every command line again and runs only transaction
//! commands, so this side only ever sends what the caller asked; replies come
//! back as the server's status line and un-stuffed body. A link that fails
//! (cut, silent past its deadline, or a message out of turn) ends the server
//! session: the caller opens a new one. A link whose session ended with
//! QUIT is kept for the next one (`pool`).

use std::time::Duration;

use causeway_net::Env;
use causeway_pop3::{Command, Response, StatusLine};
use causeway_proto::relay::{EdgeToRelay, RelayToEdge};
use causeway_proto::user::ServerSpec;
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_wire::link::{LinkEnd, recv, send};
use causeway_wire::{ChannelConfig, Keypair, PublicKey, SecureChannel, WireError, connect_kk};

mod pool;

pub use pool::RelayPool;

/// A relay this node may route servers through, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayRef {
    pub name: String,
    /// `host:port`.
    pub address: String,
    pub public_key: PublicKey,
}

/// What opening a link to a relay takes from the node that opens it.
#[derive(Clone, Copy, Debug)]
pub struct RelayAccess<'a> {
    /// Our own static key (the relay pins it).
    pub keypair: &'a Keypair,
    pub channel: &'a ChannelConfig,
    /// TCP connect.
    pub connect: Duration,
    /// Each send, and the relay's `Opened`.
    pub open: Duration,
    /// One reply through the relay (the relay's own server wait included).
    pub reply: Duration,
}

/// A link to a relay, with one server session open behind it.
pub struct RelayLink<E: Env> {
    env: E,
    channel: SecureChannel<E::Stream>,
    relay: RelayRef,
    open: Duration,
    reply: Duration,
    next_id: u64,
    /// Where the link goes back once its session ended with QUIT.
    pool: RelayPool<E>,
}

/// Why a server session could not start on a link.
enum NotStarted {
    /// The relay answered: a real refusal, whatever link it came on.
    Refused(OpError),
    /// The link failed first: on a kept link, one that died while kept.
    Lost(OpError),
}

impl<E: Env> RelayLink<E> {
    /// Opens a server session for `spec` through `relay`, on a link kept in
    /// `pool` if one is, else on a new one; the link goes back to `pool`
    /// when the session ends with QUIT.
    pub(crate) async fn open(
        env: &E,
        access: &RelayAccess<'_>,
        relay: &RelayRef,
        spec: &ServerSpec,
        pool: &RelayPool<E>,
    ) -> Result<Self, OpError> {
        if let Some(channel) = pool.take(relay, env.now()) {
            let link = Self::on(env, access, relay, channel, pool);
            // A kept link must show it is alive as soon as a new one could
            // connect: a Ping ahead of the Open, answered at once.
            match link.start(spec, Some(access.connect)).await {
                Ok(link) => return Ok(link),
                Err(NotStarted::Refused(e)) => return Err(e),
                Err(NotStarted::Lost(e)) => tracing::debug!(relay = %relay.name, error = %e,
                    "a kept link to the relay was gone; opening a new one"),
            }
        }
        let channel = Self::dial(env, access, relay).await?;
        let link = Self::on(env, access, relay, channel, pool);
        match link.start(spec, None).await {
            Ok(link) => Ok(link),
            Err(NotStarted::Refused(e) | NotStarted::Lost(e)) => Err(e),
        }
    }

    fn on(
        env: &E,
        access: &RelayAccess<'_>,
        relay: &RelayRef,
        channel: SecureChannel<E::Stream>,
        pool: &RelayPool<E>,
    ) -> Self {
        Self {
            env: env.clone(),
            channel,
            relay: relay.clone(),
            open: access.open,
            reply: access.reply,
            next_id: 1,
            pool: pool.clone(),
        }
    }

    /// Sends `Open` and waits for the relay's answer; with `probe`, a
    /// `Ping` goes first and its `Pong` must come within `probe`.
    async fn start(
        mut self,
        spec: &ServerSpec,
        probe: Option<Duration>,
    ) -> Result<Self, NotStarted> {
        if probe.is_some() {
            let ping = EdgeToRelay::Ping { nonce: 0 };
            send(&self.env, &mut self.channel, &ping, self.open)
                .await
                .map_err(|e| NotStarted::Lost(self.lost(e)))?;
        }
        let open = EdgeToRelay::Open {
            version: PROTOCOL_VERSION,
            server: spec.clone(),
        };
        send(&self.env, &mut self.channel, &open, self.open)
            .await
            .map_err(|e| NotStarted::Lost(self.lost(e)))?;
        if let Some(within) = probe {
            let pong = recv(&self.env, &mut self.channel, within, "the relay's Pong");
            match pong.await {
                Ok(RelayToEdge::Pong { .. }) => {}
                Ok(other) => return Err(NotStarted::Lost(self.confused(&other))),
                Err(e) => return Err(NotStarted::Lost(self.lost(e))),
            }
        }
        match self.recv().await {
            Ok(RelayToEdge::Opened { .. }) => Ok(self),
            Ok(RelayToEdge::Refused { error }) => Err(NotStarted::Refused(error)),
            Ok(other) => Err(NotStarted::Lost(self.confused(&other))),
            Err(e) => Err(NotStarted::Lost(e)),
        }
    }

    /// A new link: TCP, then the KK handshake.
    async fn dial(
        env: &E,
        access: &RelayAccess<'_>,
        relay: &RelayRef,
    ) -> Result<SecureChannel<E::Stream>, OpError> {
        let name = &relay.name;
        let temp = |text: String| OpError::new(Some(ErrCode::SysTemp), text);
        let stream = env
            .timeout(
                access.connect,
                "the TCP connection to the relay",
                env.connect(&relay.address),
            )
            .await
            .and_then(|r| r)
            .map_err(|e| {
                temp(format!(
                    "cannot connect to relay {name} ({}): {e}",
                    relay.address
                ))
            })?;
        connect_kk(
            env,
            stream,
            access.keypair,
            &relay.public_key,
            access.channel,
        )
        .await
        .map_err(|e| handshake_error(name, e))
    }

    async fn recv(&mut self) -> Result<RelayToEdge, OpError> {
        recv(
            &self.env,
            &mut self.channel,
            self.reply,
            "the relay's reply",
        )
        .await
        .map_err(|e| self.lost(e))
    }

    pub(crate) async fn execute(&mut self, cmd: &Command) -> Result<Response, OpError> {
        let mut line = Vec::new();
        cmd.encode(&mut line);
        line.truncate(line.len().saturating_sub(2));
        self.ask(|id| EdgeToRelay::Command { id, line }).await
    }

    /// An IMAP server's APPEND, run by the relay (`ServerSession::append`).
    pub(crate) async fn append(
        &mut self,
        flags: &[String],
        message: &[u8],
    ) -> Result<Response, OpError> {
        self.ask(|id| EdgeToRelay::Append {
            id,
            flags: flags.to_vec(),
            message: message.to_vec(),
        })
        .await
    }

    /// Sends the message `make` builds with the next id, and reads the
    /// relay's answer to it (its server's reply, or why it has none).
    async fn ask(&mut self, make: impl FnOnce(u64) -> EdgeToRelay) -> Result<Response, OpError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = make(id);
        send(&self.env, &mut self.channel, &msg, self.open)
            .await
            .map_err(|e| self.lost(e))?;
        loop {
            match self.recv().await? {
                RelayToEdge::Reply {
                    id: got,
                    status,
                    body,
                } if got == id => {
                    let status = StatusLine::parse(&status).map_err(|e| {
                        OpError::new(
                            Some(ErrCode::SysTemp),
                            format!("relay {} sent a bad status line: {e}", self.relay.name),
                        )
                    })?;
                    return Ok(Response { status, body });
                }
                RelayToEdge::Failed { id: got, error } if got == id => {
                    return Err(OpError::new(
                        error.code,
                        format!("via relay {}: {}", self.relay.name, error.text),
                    ));
                }
                RelayToEdge::Pong { .. } => {}
                other => return Err(self.confused(&other)),
            }
        }
    }

    pub(crate) async fn quit(mut self) -> Result<StatusLine, OpError> {
        send(&self.env, &mut self.channel, &EdgeToRelay::Quit, self.open)
            .await
            .map_err(|e| self.lost(e))?;
        let result = match self.recv().await? {
            RelayToEdge::QuitDone { result } => result,
            other => return Err(self.confused(&other)),
        };
        // Clean: the relay waits on it for another Open.
        self.pool.put(&self.relay, self.channel, self.env.now());
        let status = result?;
        StatusLine::parse(&status).map_err(|e| {
            OpError::new(
                Some(ErrCode::SysTemp),
                format!("relay {} sent a bad QUIT status: {e}", self.relay.name),
            )
        })
    }

    fn lost(&self, e: LinkEnd) -> OpError {
        OpError::new(
            Some(ErrCode::SysTemp),
            format!("lost the link to relay {}: {e}", self.relay.name),
        )
    }

    fn confused(&self, got: &RelayToEdge) -> OpError {
        let what = match got {
            RelayToEdge::Opened { .. } => "Opened",
            RelayToEdge::Refused { .. } => "Refused",
            RelayToEdge::Reply { .. } => "a reply to another command",
            RelayToEdge::Failed { .. } => "a failure of another command",
            RelayToEdge::Pong { .. } => "Pong",
            RelayToEdge::QuitDone { .. } => "QuitDone",
        };
        OpError::new(
            Some(ErrCode::SysTemp),
            format!(
                "relay {} sent {what} out of turn; the link is dropped",
                self.relay.name
            ),
        )
    }
}

/// A failed KK handshake: a cut or slow line is worth retrying; a key that
/// does not match is a configuration problem no retry will fix.
fn handshake_error(relay: &str, e: WireError) -> OpError {
    let code = if e.is_line_failure() {
        ErrCode::SysTemp
    } else {
        ErrCode::SysPerm
    };
    OpError::new(
        Some(code),
        format!("handshake with relay {relay} failed: {e}"),
    )
}
