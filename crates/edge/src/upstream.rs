//! The two ways to reach a mail server, behind one interface, so the worker's
//! logic (re-resolution, redo, QUIT) is written once:
//!
//! - direct: a POP3 session of our own ([`ServerSession`], shared with the
//!   relay);
//! - through a relay: a Noise KK link on which the relay runs that same
//!   POP3 session for us.
//!
//! Either way `execute` answers `Ok` for any server reply (`-ERR` included)
//! and `Err` when the path to the server failed; the session is then over and
//! the worker opens a new one.

use std::sync::Arc;

use causeway_net::Env;
use causeway_pop3::{Command, Response, StatusLine};
use causeway_proto::relay::{EdgeToRelay, RelayToEdge};
use causeway_proto::user::{Route, ServerSpec};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_relay::common::{LinkEnd, close, recv, send};
use causeway_relay::server::ServerSession;
use causeway_wire::{SecureChannel, WireError, connect_kk};

use crate::config::{EdgeConfig, RelayRef};

pub(crate) enum Upstream<E: Env> {
    Direct(ServerSession<E>),
    Relay(RelayLink<E>),
}

impl<E: Env> Upstream<E> {
    /// Opens a logged-in server session along `spec`'s route.
    pub(crate) async fn open(
        env: &E,
        config: &Arc<EdgeConfig>,
        spec: &ServerSpec,
    ) -> Result<Self, OpError> {
        match &spec.route {
            Route::Direct => {
                let t = config.timeouts.server;
                let (s, _greeting) =
                    ServerSession::open(env, spec, &config.tls, t, config.max_message).await?;
                Ok(Upstream::Direct(s))
            }
            Route::Relay(name) => {
                let relay = config.relay(name).ok_or_else(|| {
                    OpError::new(
                        Some(ErrCode::SysPerm),
                        format!("this edge knows no relay named {name:?}"),
                    )
                })?;
                RelayLink::open(env, config, relay, spec)
                    .await
                    .map(Upstream::Relay)
            }
        }
    }

    pub(crate) async fn execute(&mut self, cmd: &Command) -> Result<Response, OpError> {
        match self {
            Upstream::Direct(s) => s.execute(cmd).await,
            Upstream::Relay(r) => r.execute(cmd).await,
        }
    }

    /// `QUIT`; the server's answer (`-ERR`: it did not commit).
    pub(crate) async fn quit(self) -> Result<StatusLine, OpError> {
        match self {
            Upstream::Direct(s) => s.quit().await,
            Upstream::Relay(r) => r.quit().await,
        }
    }
}

pub(crate) struct RelayLink<E: Env> {
    env: E,
    config: Arc<EdgeConfig>,
    channel: SecureChannel<E::Stream>,
    relay: String,
    next_id: u64,
}

impl<E: Env> RelayLink<E> {
    async fn open(
        env: &E,
        config: &Arc<EdgeConfig>,
        relay: &RelayRef,
        spec: &ServerSpec,
    ) -> Result<Self, OpError> {
        let t = config.timeouts;
        let name = &relay.name;
        let temp = |text: String| OpError::new(Some(ErrCode::SysTemp), text);
        let stream = env
            .timeout(
                t.server.connect,
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
        let channel = connect_kk(
            env,
            stream,
            &config.keypair,
            &relay.public_key,
            &config.channel,
        )
        .await
        .map_err(|e| handshake_error(name, e))?;
        let mut link = Self {
            env: env.clone(),
            config: config.clone(),
            channel,
            relay: name.clone(),
            next_id: 1,
        };
        let open = EdgeToRelay::Open {
            version: PROTOCOL_VERSION,
            server: spec.clone(),
        };
        send(&link.env, &mut link.channel, &open, t.hello)
            .await
            .map_err(|e| link.lost(e))?;
        match link.recv().await? {
            RelayToEdge::Opened { .. } => Ok(link),
            RelayToEdge::Refused { error } => Err(error),
            other => Err(link.confused(&other)),
        }
    }

    async fn recv(&mut self) -> Result<RelayToEdge, OpError> {
        let t = self.config.timeouts.relay_reply;
        recv(&self.env, &mut self.channel, t, "the relay's reply")
            .await
            .map_err(|e| self.lost(e))
    }

    async fn execute(&mut self, cmd: &Command) -> Result<Response, OpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = Vec::new();
        cmd.encode(&mut line);
        line.truncate(line.len().saturating_sub(2));
        let msg = EdgeToRelay::Command { id, line };
        send(
            &self.env,
            &mut self.channel,
            &msg,
            self.config.timeouts.hello,
        )
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
                            format!("relay {} sent a bad status line: {e}", self.relay),
                        )
                    })?;
                    return Ok(Response { status, body });
                }
                RelayToEdge::Failed { id: got, error } if got == id => {
                    return Err(OpError::new(
                        error.code,
                        format!("via relay {}: {}", self.relay, error.text),
                    ));
                }
                RelayToEdge::Pong { .. } => {}
                other => return Err(self.confused(&other)),
            }
        }
    }

    async fn quit(mut self) -> Result<StatusLine, OpError> {
        send(
            &self.env,
            &mut self.channel,
            &EdgeToRelay::Quit,
            self.config.timeouts.hello,
        )
        .await
        .map_err(|e| self.lost(e))?;
        let result = match self.recv().await? {
            RelayToEdge::QuitDone { result } => result,
            other => return Err(self.confused(&other)),
        };
        let t = self.config.timeouts.hello;
        close(&self.env, self.channel, "done", t).await;
        let status = result?;
        StatusLine::parse(&status).map_err(|e| {
            OpError::new(
                Some(ErrCode::SysTemp),
                format!("relay {} sent a bad QUIT status: {e}", self.relay),
            )
        })
    }

    fn lost(&self, e: LinkEnd) -> OpError {
        OpError::new(
            Some(ErrCode::SysTemp),
            format!("lost the link to relay {}: {e}", self.relay),
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
                self.relay
            ),
        )
    }
}

/// A failed KK handshake: a cut or slow line is worth retrying; a key that
/// does not match is a configuration problem no retry will fix.
fn handshake_error(relay: &str, e: WireError) -> OpError {
    let code = match e {
        WireError::Io(_) | WireError::Truncated { .. } | WireError::HandshakeTimeout { .. } => {
            ErrCode::SysTemp
        }
        _ => ErrCode::SysPerm,
    };
    OpError::new(
        Some(code),
        format!("handshake with relay {relay} failed: {e}"),
    )
}
