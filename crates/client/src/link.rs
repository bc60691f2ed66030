//! The line to the edge: one secure channel per mail-client session.
//!
//! This is the only place that waits on the edge, and every wait has a
//! timeout. Anything unexpected on the line (a timeout, EOF, a close frame,
//! a message out of turn) is a [`LineCut`]: the session is over, and the
//! driver tells the mail client so. A channel that ends without `Bye` is
//! never taken for success.
//!
//! Requests go one at a time: the mail client's commands are answered in
//! order anyway, and one request in flight keeps "which answer is this" and
//! "what did the edge acknowledge before the cut" trivial.

use std::fmt;
use std::time::Duration;

use causeway_net::Env;
use causeway_proto::session::{ClientToEdge, EdgeToClient, Reply, ServerListing, ServerOutcome};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_wire::link::{self, LinkEnd};
use causeway_wire::{Received, SecureChannel, WireError, connect_xk};

use crate::config::ClientConfig;
use crate::front::Request;
use crate::lost::{Guard, LostSessions};

/// The line to the edge is gone (or cannot be trusted any more), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCut(pub String);

impl fmt::Display for LineCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<WireError> for LineCut {
    fn from(e: WireError) -> Self {
        LineCut(e.to_string())
    }
}

impl From<std::io::Error> for LineCut {
    fn from(e: std::io::Error) -> Self {
        LineCut(e.to_string())
    }
}

/// An open session with the edge.
pub struct EdgeLink<E: Env> {
    env: E,
    channel: SecureChannel<E::Stream>,
    /// Next request id / ping nonce.
    next: u64,
    request_timeout: Duration,
    /// How often to ping the edge while waiting on a long answer.
    ping_interval: Duration,
    /// Nonces of keepalive pings whose `Pong` has not come back yet: they
    /// arrive after the answer they were sent during, and are skipped.
    pongs_due: Vec<u64>,
    /// Requests and pings sent, for the session's log line.
    pub round_trips: u64,
    /// Names this session as lost unless it ends with `Bye`.
    lost: Guard,
}

/// How a [`LineCut`] from a close frame begins.
const CLOSED_BY_EDGE: &str = "the edge ended the session: ";

impl From<LinkEnd> for LineCut {
    fn from(e: LinkEnd) -> Self {
        match e {
            LinkEnd::Closed(reason) => LineCut(format!("{CLOSED_BY_EDGE}{reason}")),
            other => LineCut(other.to_string()),
        }
    }
}

/// Sends `msg` under a timeout (credentials uncompressed: see `wire::link`).
async fn send<E: Env>(
    env: &E,
    channel: &mut SecureChannel<E::Stream>,
    msg: &ClientToEdge,
    within: Duration,
) -> Result<(), LineCut> {
    Ok(link::send(env, channel, msg, within).await?)
}

/// Receives the next message under a timeout; a close frame is a cut.
async fn recv<E: Env>(
    env: &E,
    channel: &mut SecureChannel<E::Stream>,
    within: Duration,
    what: &'static str,
) -> Result<EdgeToClient, LineCut> {
    Ok(link::recv(env, channel, within, what).await?)
}

fn out_of_turn(what: &str, got: &EdgeToClient) -> LineCut {
    let kind = match got {
        EdgeToClient::Welcome { .. } => "Welcome",
        EdgeToClient::Refused { .. } => "Refused",
        EdgeToClient::Response { .. } => "Response",
        EdgeToClient::Pong { .. } => "Pong",
        EdgeToClient::Bye { .. } => "Bye",
    };
    LineCut(format!("the edge sent {kind} while we waited for {what}"))
}

/// A channel to the edge, handshake done, no session yet.
pub type Reached<E> = SecureChannel<<E as Env>::Stream>;

/// Why no session could be opened.
#[derive(Debug)]
pub enum NotOpened {
    /// The edge could not be reached, or the line failed: temporary, and
    /// the mail client is not told anything it could take for a failed login.
    Unreachable(String),
    /// The edge answered, and refused (or every server failed): the error.
    Refused(OpError),
}

impl<E: Env> EdgeLink<E> {
    /// Connects and runs the handshake; nothing is said yet. The client
    /// proxy does this before it greets the mail client, so that an edge out
    /// of reach shows as a connection failure, never as a refused password.
    pub async fn reach(env: &E, config: &ClientConfig) -> Result<Reached<E>, String> {
        let t = &config.timeouts;
        let stream = env
            .timeout(
                t.edge_connect,
                "the connection to the edge",
                env.connect(&config.edge),
            )
            .await
            .and_then(|r| r)
            .map_err(|e| format!("could not reach the edge at {}: {e}", config.edge))?;
        connect_xk(
            env,
            stream,
            &config.keypair,
            &config.edge_key,
            config.psk.as_ref(),
            &config.channel,
        )
        .await
        .map_err(|e| format!("the secure handshake with the edge failed: {e}"))
    }

    /// Hands over the user information on a reached channel and waits for
    /// the listings. The sessions in `lost` are named in the `Hello`, for the
    /// edge to end.
    pub async fn open(
        env: &E,
        config: &ClientConfig,
        lost: &LostSessions,
        mut channel: Reached<E>,
    ) -> Result<(Self, Vec<ServerListing>), NotOpened> {
        let t = &config.timeouts;
        let supersedes = lost.take();
        let hello = ClientToEdge::Hello {
            version: PROTOCOL_VERSION,
            user: config.user_info(),
            supersedes: supersedes.clone(),
        };
        let welcome = match send(env, &mut channel, &hello, t.request).await {
            Ok(()) => recv(env, &mut channel, t.welcome, "the edge's Welcome").await,
            Err(e) => Err(e),
        };
        let (session, listings) = match welcome {
            Ok(EdgeToClient::Welcome { session, servers }) => {
                tracing::Span::current().record("session", session.as_str());
                tracing::info!(
                    servers = servers.len(),
                    superseded = supersedes.len(),
                    "edge session opened"
                );
                (session, servers)
            }
            refused_or_cut => {
                // The edge may not have acted on them: name them again next time.
                lost.restore(supersedes);
                return Err(match refused_or_cut {
                    Ok(EdgeToClient::Refused { error }) => NotOpened::Refused(OpError::new(
                        error.code,
                        format!("The edge refused the session: {}", error.text),
                    )),
                    // A close before any answer: the edge refused our key
                    // once the handshake proved it (only that closes a
                    // channel unread); the configuration must change.
                    Err(LineCut(reason)) if reason.starts_with(CLOSED_BY_EDGE) => {
                        NotOpened::Refused(OpError::new(
                            Some(ErrCode::SysPerm),
                            format!("The edge refused this client proxy: {reason}"),
                        ))
                    }
                    Ok(other) => NotOpened::Unreachable(out_of_turn("Welcome", &other).0),
                    Err(e) => {
                        NotOpened::Unreachable(format!("the edge did not open the session: {e}"))
                    }
                });
            }
        };
        let link = EdgeLink {
            env: env.clone(),
            channel,
            next: 1,
            request_timeout: t.request,
            ping_interval: t.ping_interval,
            pongs_due: Vec::new(),
            round_trips: 1,
            lost: lost.guard(session),
        };
        Ok((link, listings))
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        self.round_trips += 1;
        id
    }

    /// Sends one request and waits for its answer, however long it takes
    /// to arrive while it keeps arriving. Returns the request id with the
    /// answer.
    pub async fn ask(&mut self, r: &Request) -> Result<(u64, Result<Reply, OpError>), LineCut> {
        let id = self.next_id();
        let msg = ClientToEdge::Request {
            id,
            server: r.server.clone(),
            op: r.op.clone(),
        };
        send(&self.env, &mut self.channel, &msg, self.request_timeout).await?;
        match self
            .next_answer("the edge's answer", self.request_timeout, true)
            .await?
        {
            EdgeToClient::Response { id: got, result } if got == id => Ok((id, result)),
            other => Err(out_of_turn("an answer", &other)),
        }
    }

    /// Tells the edge the answer to `id` reached the mail client whole.
    pub async fn delivered(&mut self, id: u64) -> Result<(), LineCut> {
        send(
            &self.env,
            &mut self.channel,
            &ClientToEdge::Delivered { id },
            self.request_timeout,
        )
        .await
    }

    /// One `Ping`/`Pong`: proves the line still carries traffic both ways.
    pub async fn ping(&mut self) -> Result<(), LineCut> {
        let nonce = self.next_id();
        send(
            &self.env,
            &mut self.channel,
            &ClientToEdge::Ping { nonce },
            self.request_timeout,
        )
        .await?;
        match self
            .next_answer("the edge's Pong", self.request_timeout, false)
            .await?
        {
            EdgeToClient::Pong { nonce: got } if got == nonce => Ok(()),
            other => Err(out_of_turn("Pong", &other)),
        }
    }

    /// Waits for anything from the edge while nothing is expected (the mail
    /// client is idle): EOF, a close frame or a stray message all end the
    /// session. No timeout of its own: silence is what pings are for.
    /// Cancel-safe, so it can race the mail client's next command.
    pub async fn unsolicited(&mut self) -> LineCut {
        loop {
            match self.channel.recv::<EdgeToClient>().await {
                Ok(Received::Msg(EdgeToClient::Pong { nonce })) if self.pong_was_due(nonce) => {}
                Ok(Received::Msg(m)) => return out_of_turn("the mail client's next command", &m),
                Ok(Received::Closed { reason }) => {
                    return LineCut(format!("{CLOSED_BY_EDGE}{reason}"));
                }
                Err(e) => return e.into(),
            }
        }
    }

    /// The next message from the edge that is not the `Pong` to a
    /// keepalive; fails once nothing at all arrived for `within`. With `keepalive`, it pings the edge every `ping_interval`
    /// while it waits: while a body crosses a slow line the edge hears
    /// nothing else from us, and would otherwise take the line for dead.
    async fn next_answer(
        &mut self,
        what: &'static str,
        within: Duration,
        keepalive: bool,
    ) -> Result<EdgeToClient, LineCut> {
        let counters = self.channel.counters();
        let step = if keepalive {
            self.ping_interval.min(within)
        } else {
            within
        };
        let mut seen = counters.moved_in();
        let mut silent = Duration::ZERO;
        loop {
            let got = self
                .env
                .timeout(step, what, self.channel.recv::<EdgeToClient>())
                .await;
            match got {
                Ok(Ok(Received::Msg(EdgeToClient::Pong { nonce }))) if self.pong_was_due(nonce) => {
                }
                Ok(Ok(Received::Msg(m))) => return Ok(m),
                Ok(Ok(Received::Closed { reason })) => {
                    return Err(LineCut(format!("{CLOSED_BY_EDGE}{reason}")));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    let now = counters.moved_in();
                    if now == seen {
                        silent += step;
                        if silent >= within {
                            return Err(LinkEnd::Silent {
                                what,
                                after: within,
                            }
                            .into());
                        }
                    } else {
                        (seen, silent) = (now, Duration::ZERO);
                    }
                    if keepalive {
                        let nonce = self.next;
                        self.next += 1;
                        let ping = ClientToEdge::Ping { nonce };
                        send(&self.env, &mut self.channel, &ping, within).await?;
                        self.pongs_due.push(nonce);
                    }
                }
            }
        }
    }

    fn pong_was_due(&mut self, nonce: u64) -> bool {
        let due = self.pongs_due.contains(&nonce);
        self.pongs_due.retain(|&n| n != nonce);
        due
    }

    /// `Quit`, then `Bye` with each server's outcome; then closes the channel.
    pub async fn quit(mut self, within: Duration) -> Result<Vec<ServerOutcome>, LineCut> {
        self.round_trips += 1;
        send(
            &self.env,
            &mut self.channel,
            &ClientToEdge::Quit,
            self.request_timeout,
        )
        .await?;
        // No keepalive after Quit: the edge reads nothing more, and unread
        // bytes would turn its close into a reset that could lose the Bye.
        let outcomes = match self.next_answer("the edge's Bye", within, false).await? {
            EdgeToClient::Bye { servers } => servers,
            other => return Err(out_of_turn("Bye", &other)),
        };
        self.lost.ended_with_bye();
        tracing::info!(
            round_trips = self.round_trips,
            "edge session ended with Bye"
        );
        self.close("session finished").await;
        Ok(outcomes)
    }

    /// Ends the session without `Quit`, telling the edge why. The edge still
    /// completes what it acknowledged (deletes); nothing else is committed.
    pub async fn abandon(self, reason: &str) {
        tracing::info!(
            round_trips = self.round_trips,
            reason,
            "leaving the edge session without QUIT"
        );
        self.close(reason).await;
    }

    async fn close(self, reason: &str) {
        let within = self.request_timeout;
        match self
            .env
            .timeout(within, "closing the channel", self.channel.close(reason))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "closing the edge channel failed"),
            Err(e) => tracing::debug!(error = %e, "closing the edge channel timed out"),
        }
    }
}
