//! The hop to real mail servers: how a Causeway node logs in to Dovecot (or
//! any POP3 server) and talks to it.
//!
//! Owns: connecting with a deadline, TLS (rustls; implicit POP3S or a strict
//! STLS, certificates always verified), login, the POP3 server session with
//! its timeouts, numbering messages by UIDL afresh in every session, telling
//! a busy lock (`[IN-USE]`) or a permanent refusal from a passing failure,
//! and the pace of retries. Both the edge (servers it reaches directly) and
//! the relay (servers beside it) use it, so the rules are the same on either
//! path; the edge also reaches servers *through* a relay here
//! ([`Upstream::Relay`]), behind the same interface.
//!
//! Must not depend on: any node crate (client, edge, relay). It knows nothing
//! of client sessions, replicas or owed work; those belong to the edge.
//!
//! - [`pop3`]: the POP3 session and its numbering.
//! - [`imap`]: the IMAP session (TLS and login as for POP3; bodies peeked,
//!   read marks and deletes by UID).
//! - [`as_pop3`]: an IMAP server's INBOX served as a POP3 maildrop, so the
//!   edge and the relay reach IMAP servers with POP3's rules unchanged.
//! - `session`: [`ServerSession`], either protocol behind one interface.
//! - `connect`: TCP and TLS, shared by both protocols.
//! - [`tls`]: trust store, plain-or-TLS stream, TLS errors worded for people.
//! - [`retry`]: which failures are worth a retry, and growing pauses.
//! - `relayed`: the edge's end of a relay link, and the links it keeps
//!   between server sessions (`relayed::pool`).

pub mod as_pop3;
mod connect;
pub mod imap;
pub mod pop3;
mod relayed;
pub mod retry;
mod session;
pub mod tls;

use causeway_net::Env;
use causeway_pop3::{Command, Response, StatusLine};
use causeway_proto::user::{Route, ServerSpec};
use causeway_proto::{ErrCode, OpError};

pub use connect::ServerTimeouts;
pub use pop3::{Numbering, Resolved};
pub use relayed::{RelayAccess, RelayLink, RelayPool, RelayRef};
pub use retry::Backoff;
pub use session::ServerSession;
pub use tls::{ServerTls, TlsSettings};

/// Everything a node needs to reach a mail server along any route.
#[derive(Clone, Copy, Debug)]
pub struct Routes<'a> {
    pub tls: &'a ServerTls,
    pub timeouts: ServerTimeouts,
    /// Largest message fetched from a server.
    pub max_message: usize,
    /// The relays servers may be routed through, by name.
    pub relays: &'a [RelayRef],
    pub relay_access: RelayAccess<'a>,
}

/// A logged-in server session, reached directly or through a relay; either
/// way `execute` answers `Ok` for any server reply (`-ERR` included) and
/// `Err` when the path to the server failed, after which the session is over
/// and the caller opens a new one.
pub enum Upstream<E: Env> {
    Direct(ServerSession<E>),
    Relay(Box<RelayLink<E>>),
}

impl<E: Env> Upstream<E> {
    /// Opens a logged-in server session along `spec`'s route; through a
    /// relay, on a link `pool` kept if it has one.
    pub async fn open(
        env: &E,
        routes: &Routes<'_>,
        spec: &ServerSpec,
        pool: &RelayPool<E>,
    ) -> Result<Self, OpError> {
        match &spec.route {
            Route::Direct => {
                let (s, _greeting) =
                    ServerSession::open(env, spec, routes.tls, routes.timeouts, routes.max_message)
                        .await?;
                Ok(Upstream::Direct(s))
            }
            Route::Relay(name) => {
                let relay = routes
                    .relays
                    .iter()
                    .find(|r| &r.name == name)
                    .ok_or_else(|| {
                        OpError::new(
                            Some(ErrCode::SysPerm),
                            format!("this node knows no relay named {name:?}"),
                        )
                    })?;
                RelayLink::open(env, &routes.relay_access, relay, spec, pool)
                    .await
                    .map(|r| Upstream::Relay(Box::new(r)))
            }
        }
    }

    pub async fn execute(&mut self, cmd: &Command) -> Result<Response, OpError> {
        match self {
            Upstream::Direct(s) => s.execute(cmd).await,
            Upstream::Relay(r) => r.execute(cmd).await,
        }
    }

    /// `QUIT`; the server's answer (`-ERR`: it did not commit).
    /// Stores `message` in the entry's folder (IMAP `APPEND`), directly or
    /// through the relay: `Ok` for the server's answer (`-ERR` for its
    /// `NO`, and for a POP3 server, which has no APPEND), `Err` when the
    /// session was lost, after which the message may or may not be stored.
    pub async fn append(&mut self, flags: &[String], message: &[u8]) -> Result<Response, OpError> {
        match self {
            Upstream::Direct(s) => s.append(flags, message).await,
            Upstream::Relay(r) => r.append(flags, message).await,
        }
    }

    pub async fn quit(self) -> Result<StatusLine, OpError> {
        match self {
            Upstream::Direct(s) => s.quit().await,
            Upstream::Relay(r) => r.quit().await,
        }
    }
}
