//! One edge link: handshake, then per `Open` one server session, commands,
//! QUIT; a link whose session the edge ended with `Quit` may carry another.
//!
//! The relay holds no mailbox state, so its only duty beyond forwarding is
//! ending the server session with QUIT however the link ends (leaving it to
//! die abruptly would leave a stale lock on servers that keep one). What that
//! QUIT commits is the edge's call alone: only the edge's own `Quit` commits
//! (QUIT right away); a link that ends any other way (lost, shut down,
//! broken) gets RSET first, so the server commits nothing, exactly as when a
//! direct server connection drops. The edge still owns its acknowledged work
//! and redoes it in a new session; and a delete the mail client undid with
//! RSET, whose RSET the lost link never carried, is not committed behind its
//! back.
//!
//! Only transaction-state commands pass (STAT LIST UIDL RETR TOP DELE NOOP
//! RSET, and XSTORE and XFLAGS for an IMAP server's flags), parsed and re-encoded,
//! never forwarded as raw bytes: an edge cannot smuggle USER/PASS/STLS/QUIT
//! through us.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use causeway_net::serve::stop_unless_allowed;
use causeway_net::{Env, Stream, shutdown_requested};
use causeway_pop3::{Command, Response, StatusLine};
use causeway_proto::relay::{EdgeToRelay, RelayToEdge};
use causeway_proto::user::ServerSpec;
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_upstream::ServerSession;
use causeway_wire::link::{LinkEnd, close, recv, send};
use causeway_wire::{Meter, SecureChannel, accept_kk_any};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::RelayState;
use crate::config::RelayConfig;

pub(crate) struct Link<E: Env> {
    pub env: E,
    /// The configuration as this link found it.
    pub config: Arc<RelayConfig>,
    /// The configuration as it changes (SIGHUP): an edge whose key leaves
    /// `allowed_edges` has its link ended.
    pub configs: watch::Receiver<Arc<RelayConfig>>,
    pub state: RelayState,
    /// The relay's shutdown; after the handshake, also the edge's key
    /// being taken off the allow list.
    pub shutdown: watch::Receiver<bool>,
    /// Carries this link's byte counts into the relay's edge-hop total.
    pub meter: Meter,
}

/// What ended the command loop.
enum Next {
    Msg(EdgeToRelay),
    Lost(LinkEnd),
    Shutdown,
}

impl<E: Env> Link<E> {
    pub(crate) async fn serve(mut self, stream: E::Stream, peer: SocketAddr) {
        let cfg = self.config.clone();
        let accepted = accept_kk_any(
            &self.env,
            stream,
            &cfg.keypair,
            &cfg.allowed_edges,
            &cfg.channel,
        )
        .await;
        let channel = match accepted {
            Ok(c) => c,
            Err(e) => {
                self.state
                    .handshake_failed(causeway_wire::link::handshake_failure_cause(&e));
                causeway_wire::link::log_refused_handshake("edge", peer, &e);
                return;
            }
        };
        self.state
            .handshakes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let edge = *channel.peer();
        let (stop, _watching) = stop_unless_allowed(
            &self.configs,
            &self.shutdown,
            move |c: &RelayConfig| c.allowed_edges.contains(&edge),
            move || {
                warn!(%peer, %edge, "the edge's key was removed from allowed_edges: ending its link \
                    (its server session gets RSET and QUIT; the edge keeps what it owes)");
            },
        );
        self.shutdown = stop;
        let counters = channel.counters();
        self.link(channel, peer).await;
        self.meter.flush(&counters, &self.state.edge_hop);
    }

    /// One link: a server session for each `Open`, one at a time, until
    /// the link ends. After a session the edge ended with `Quit` the link is
    /// clean, and the edge may keep it for its next session through us
    /// (`causeway_upstream::relayed::pool`): it waits [`KEPT_LINK_WAIT`] for
    /// another `Open`.
    async fn link(&mut self, mut channel: SecureChannel<E::Stream>, peer: SocketAddr) {
        let link = format!("{:08x}", self.env.rng().next_u32());
        let mut wait = self.config.timeouts.open;
        loop {
            let Some(open) = self.next_open(&mut channel, wait, &link, peer).await else {
                return;
            };
            match self.session(channel, open, &link, peer).await {
                Some(kept) => channel = kept,
                None => return,
            }
            wait = KEPT_LINK_WAIT;
        }
    }

    /// The edge's next `Open`, answering its `Ping`s meanwhile; `None` when
    /// the link ends first (the edge closing a kept link is its normal end).
    async fn next_open(
        &mut self,
        channel: &mut SecureChannel<E::Stream>,
        wait: Duration,
        link: &str,
        peer: SocketAddr,
    ) -> Option<(u16, ServerSpec)> {
        let t = self.config.timeouts;
        loop {
            let next = tokio::select! {
                r = recv(&self.env, channel, wait, "the edge's Open") => r,
                _ = shutdown_requested(&mut self.shutdown) => return None,
            };
            match next {
                Ok(EdgeToRelay::Open { version, server }) => return Some((version, server)),
                Ok(EdgeToRelay::Ping { nonce }) => {
                    let pong = RelayToEdge::Pong { nonce };
                    send(&self.env, channel, &pong, t.open).await.ok()?;
                }
                Ok(_) => {
                    warn!(%link, %peer, "the edge sent a command with no server session open; closing the link");
                    let why = "a server session starts with Open";
                    let closing = channel.close_in_place(why);
                    let _ = self.env.timeout(t.open, "closing the link", closing).await;
                    return None;
                }
                Err(e) => {
                    info!(%link, %peer, error = %e, "edge link ended with no server session open");
                    return None;
                }
            }
        }
    }

    /// One server session on the link; the link back when the edge ended
    /// it with `Quit` and `QuitDone` went out (the link may carry another).
    async fn session(
        &mut self,
        mut channel: SecureChannel<E::Stream>,
        (version, server): (u16, ServerSpec),
        link: &str,
        peer: SocketAddr,
    ) -> Option<SecureChannel<E::Stream>> {
        let cfg = self.config.clone();
        let t = cfg.timeouts;
        let Some(_link_ticket) = self.state.links.ticket_within(cfg.max_links) else {
            let error = OpError::new(
                Some(ErrCode::SysTemp),
                format!(
                    "the relay already serves its maximum of {} links; try again later",
                    cfg.max_links
                ),
            );
            warn!(%link, %peer, "refused a link: max_links reached; raise it if this happens often");
            self.refuse(channel, error).await;
            return None;
        };
        if let Err(error) = check_open(&cfg, version, &server) {
            warn!(%link, %peer, server = %server.name, error = %error, "refused an Open");
            self.refuse(channel, error).await;
            return None;
        }
        let (session, greeting) = match ServerSession::open(
            &self.env,
            &server,
            &cfg.tls,
            t.server,
            cfg.max_message,
        )
        .await
        {
            Ok(s) => s,
            Err(error) => {
                info!(%link, server = %server.name, error = %error, "mail server refused the session");
                self.refuse(channel, error).await;
                return None;
            }
        };
        let _server_ticket = self.state.server_sessions.ticket();
        let opened = RelayToEdge::Opened {
            greeting: status_bytes(&greeting),
        };
        if let Err(e) = send(&self.env, &mut channel, &opened, t.open).await {
            info!(%link, server = %server.name, error = %e, "edge link lost right after Open; ending the server session (RSET, QUIT)");
            end_uncommitted(&self.config, session, link, &server.name).await;
            return None;
        }
        info!(%link, %peer, server = %server.name, "server session open for the edge");
        self.commands(channel, session, link, &server.name).await
    }

    /// The mail server was lost during command `id`: the edge is told
    /// (it reconnects) and the link ends.
    async fn server_lost<S: Stream>(
        &self,
        mut channel: SecureChannel<S>,
        id: u64,
        error: OpError,
        link: &str,
        server: &str,
    ) -> Option<SecureChannel<S>> {
        let t = self.config.timeouts;
        warn!(%link, %server, error = %error, "lost the mail server; telling the edge, which will reconnect");
        let failed = RelayToEdge::Failed { id, error };
        if send(&self.env, &mut channel, &failed, t.open).await.is_ok() {
            close(&self.env, channel, "server connection lost", t.open).await;
        }
        None
    }

    async fn refuse<S: Stream>(&self, mut channel: SecureChannel<S>, error: OpError) {
        let t = self.config.timeouts.open;
        if send(&self.env, &mut channel, &RelayToEdge::Refused { error }, t)
            .await
            .is_ok()
        {
            close(&self.env, channel, "refused", t).await;
        }
    }

    /// The edge's commands until its `Quit` (the link back, clean, once
    /// `QuitDone` went out) or the link's end (`None`; the server session
    /// ended uncommitted).
    async fn commands<S: Stream>(
        &mut self,
        mut channel: SecureChannel<S>,
        mut session: ServerSession<E>,
        link: &str,
        server: &str,
    ) -> Option<SecureChannel<S>> {
        let t = self.config.timeouts;
        loop {
            self.meter.flush(&channel.counters(), &self.state.edge_hop);
            let next = tokio::select! {
                r = recv(&self.env, &mut channel, t.link_idle, "the edge's next command") => match r {
                    Ok(m) => Next::Msg(m),
                    Err(e) => Next::Lost(e),
                },
                _ = shutdown_requested(&mut self.shutdown) => Next::Shutdown,
            };
            let reply = match next {
                Next::Msg(EdgeToRelay::Command { id, line }) => {
                    let done = match transaction_command(&line) {
                        Err(status) => Ok(Response { status, body: None }),
                        Ok(cmd) => session.execute(&cmd).await,
                    };
                    match done {
                        Ok(r) => reply(id, r),
                        Err(error) => {
                            return self.server_lost(channel, id, error, link, server).await;
                        }
                    }
                }
                Next::Msg(EdgeToRelay::Append { id, flags, message }) => {
                    match session.append(&flags, &message).await {
                        Ok(r) => reply(id, r),
                        Err(error) => {
                            return self.server_lost(channel, id, error, link, server).await;
                        }
                    }
                }
                Next::Msg(EdgeToRelay::Ping { nonce }) => RelayToEdge::Pong { nonce },
                Next::Msg(EdgeToRelay::Quit) => {
                    let result = session.quit().await.map(|s| status_bytes(&s));
                    let done = RelayToEdge::QuitDone { result };
                    info!(%link, %server, "edge ended the server session");
                    return match send(&self.env, &mut channel, &done, t.open).await {
                        Ok(()) => Some(channel),
                        Err(_) => None,
                    };
                }
                Next::Msg(EdgeToRelay::Open { .. }) => {
                    warn!(%link, %server, "the edge sent Open while a server session was open; ending the link");
                    close(&self.env, channel, "one server session at a time", t.open).await;
                    end_uncommitted(&self.config, session, link, server).await;
                    return None;
                }
                Next::Lost(e) => {
                    info!(%link, %server, error = %e,
                        "edge link lost; ending the server session uncommitted (RSET, QUIT): the \
                         edge redoes what it owes");
                    end_uncommitted(&self.config, session, link, server).await;
                    return None;
                }
                Next::Shutdown => {
                    let why = "the relay is shutting down, or no longer allows this edge";
                    close(&self.env, channel, why, t.open).await;
                    end_uncommitted(&self.config, session, link, server).await;
                    return None;
                }
            };
            if let Err(e) = send(&self.env, &mut channel, &reply, t.open).await {
                info!(%link, %server, error = %e,
                    "edge link lost while answering; ending the server session uncommitted (RSET, QUIT)");
                end_uncommitted(&self.config, session, link, server).await;
                return None;
            }
        }
    }
}

/// How long a link whose server session ended with the edge's `Quit` waits
/// for the next `Open`: longer than the edge keeps it
/// (`causeway_upstream::relayed::pool::KEEP_FOR`), so that the edge rarely
/// picks a link the relay is just closing.
pub const KEPT_LINK_WAIT: Duration = Duration::from_secs(60);

/// What must hold before the relay opens a server session for an edge.
fn check_open(cfg: &RelayConfig, version: u16, server: &ServerSpec) -> Result<(), OpError> {
    let perm = |text: String| OpError::new(Some(ErrCode::SysPerm), text);
    if version != PROTOCOL_VERSION {
        return Err(perm(format!(
            "the edge speaks protocol version {version}, this relay {PROTOCOL_VERSION}; upgrade the older one"
        )));
    }
    server.validate().map_err(perm)?;
    let address = server.address();
    if !cfg.allowed_servers.contains(&address) {
        return Err(perm(format!(
            "mail server {} ({address}) is not on this relay's allow list",
            server.name
        )));
    }
    Ok(())
}

/// The command on `line`, if it is one the relay runs; else the `-ERR` status
/// to answer with.
fn transaction_command(line: &[u8]) -> Result<Command, StatusLine> {
    let refused = |text: String| StatusLine::err(None, text);
    match Command::parse(line) {
        Ok(
            c @ (Command::Stat
            | Command::List(_)
            | Command::Uidl(_)
            | Command::Retr(_)
            | Command::Top { .. }
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Xstore { .. }
            | Command::Xflags
            | Command::Xsearch { .. }),
        ) => Ok(c),
        Ok(c) => Err(refused(format!(
            "{} is not allowed through the relay",
            c.keyword()
        ))),
        Err(e) => Err(refused(e.to_string())),
    }
}

/// The server's answer to command `id`, for the edge.
fn reply(id: u64, r: Response) -> RelayToEdge {
    RelayToEdge::Reply {
        id,
        status: status_bytes(&r.status),
        body: r.body,
    }
}

/// A status line as sent in the catalogue: without its CRLF.
pub fn status_bytes(s: &StatusLine) -> Vec<u8> {
    let mut out = Vec::new();
    s.encode(&mut out);
    out.truncate(out.len().saturating_sub(2));
    out
}

/// Ends a server session the edge did not ask to commit: RSET undoes this
/// session's deletes and read marks, then QUIT releases the lock.
async fn end_uncommitted<E: Env>(
    config: &RelayConfig,
    mut session: ServerSession<E>,
    link: &str,
    server: &str,
) {
    if config.broken(crate::broken::Broken::CommitOnLinkLoss) {
        return quit_server(session, link, server).await;
    }
    match session.execute(&Command::Rset).await {
        Ok(r) if r.status.is_ok() => {}
        Ok(r) => {
            // Without a confirmed RSET, a QUIT could commit what the edge
            // never confirmed: end abruptly instead (the server commits
            // nothing; a lock it keeps goes stale).
            warn!(%link, %server, reply = %r.status,
                "the server refused RSET; dropping its session without QUIT so nothing is committed");
            return;
        }
        Err(e) => {
            warn!(%link, %server, error = %e, "could not RSET the server session (connection lost)");
            return;
        }
    }
    quit_server(session, link, server).await
}

async fn quit_server<E: Env>(session: ServerSession<E>, link: &str, server: &str) {
    match session.quit().await {
        Ok(s) if s.is_ok() => info!(%link, %server, "server session ended with QUIT"),
        Ok(s) => {
            warn!(%link, %server, reply = %s, "the server refused QUIT; its changes may not be committed")
        }
        Err(e) => {
            warn!(%link, %server, error = %e, "could not QUIT the server session (connection lost)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transaction_commands_pass() {
        for ok in [
            "STAT", "LIST", "UIDL 3", "RETR 1", "TOP 1 0", "DELE 2", "NOOP", "RSET",
        ] {
            assert!(transaction_command(ok.as_bytes()).is_ok(), "{ok}");
        }
        // XAPPEND's message comes apart from its line: only `Append` carries one.
        for bad in [
            "USER x",
            "PASS y",
            "APOP a b",
            "STLS",
            "QUIT",
            "CAPA",
            "XAPPEND s 3",
        ] {
            let status = transaction_command(bad.as_bytes()).unwrap_err();
            let s = String::from_utf8(status_bytes(&status)).unwrap();
            assert!(s.starts_with("-ERR ") && s.contains("not allowed"), "{s}");
        }
        let s = transaction_command(b"RETR x").unwrap_err();
        assert_eq!(status_bytes(&s), b"-ERR Invalid message number: x");
    }
}
