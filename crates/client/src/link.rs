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
//! "what did the edge acknowledge before the cut" trivial. Around them the
//! line carries what needs no answer: the body stream into the [`Mirror`]
//! (with `Window` credits back), `Want`s from the prefetch [`Planner`],
//! batched `Delivered` read marks, and batched `Deletes` with the edge's
//! `Held` back. A RETR or TOP whose body the mirror holds is answered
//! without the line, and so is a DELE when the proxy has a delete journal
//! ([`crate::deletes`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use causeway_net::{Env, Instant};
use causeway_pop3::multiline::{head, head_of_prefix};
use causeway_proto::session::{
    ClientToEdge, EdgeToClient, MessageId, Op, Place, PlacedDelete, Places, Reply, SECRET_LEN,
    ServerListing, ServerOutcome, WantedAt,
};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_wire::link::{self, LinkEnd, rest};
use causeway_wire::{SecureChannel, WireError, connect_xk};

use crate::broken::Broken;
use crate::config::ClientConfig;
use crate::config::Prefetch;
use crate::deletes::SessionDeletes;
use crate::front::Request;
use crate::lost::Guard;
use crate::mirror::{Kept, Key, Mirror, listed};
use crate::prefetch::Planner;
use crate::shared::Shared;
use crate::state::ClientState;
use crate::tee::BodyTee;

mod receive;
mod resume;
mod upload;

pub(crate) use resume::{FIRST_PAUSE, MAX_PAUSE};
pub use upload::AppendStep;

/// The client proxy acknowledges body bytes with `Window` every this many:
/// half the edge's smallest window, so the stream never stalls on a credit
/// (the other half, 1.6 s of GPRS, covers the round trip), and few enough
/// that credits cost about 0.2% of the stream. Each credit lets the edge send
/// this much as one compressed unit, so it is also what a flush of the
/// edge's compressor is amortised over on a slow line.
const CREDIT_EVERY: u64 = 32 << 10;

/// A body the stream will bring is waited for, not asked for, while the
/// stream keeps bringing something: a request would cost a turn on the line
/// for a body that is on its way anyway. After this long with no chunk of
/// any body (the edge may have failed to fetch it, or the window is
/// spent), the body is asked for.
const STREAM_QUIET: Duration = Duration::from_secs(2);

/// ... but only while little comes before it: with more than this many
/// bytes of other bodies ahead of it in the stream (arriving now, or wanted
/// earlier), it is asked for, which puts it first at the edge. Several MB
/// prefetched ahead of the message the mail client opened would otherwise
/// keep it waiting minutes on a slow line, and longer than its patience
/// on one that is also cut (seed 197780698). 64 KiB is 13 s at 40 kbit/s,
/// far more than the turn on the line that asking costs.
const JUMP_AFTER: u64 = 64 << 10;

/// Read marks sent in one `Delivered` batch at most; a full batch goes at
/// once, a partial one with the next message or when the mail client pauses.
pub const MARKS_BATCH: usize = 64;

/// The line to the edge is gone (or cannot be trusted any more), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCut {
    pub kind: CutKind,
    pub why: String,
}

/// What ended the line: what decides whether a resume may take it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutKind {
    /// The line failed (reset, EOF, silence): worth resuming.
    Lost,
    /// The edge ended the session on purpose, with a close frame.
    Closed,
    /// The edge broke the protocol: nothing it kept can be trusted.
    Broken,
}

impl LineCut {
    pub fn lost(why: impl Into<String>) -> Self {
        LineCut {
            kind: CutKind::Lost,
            why: why.into(),
        }
    }

    pub fn closed(reason: &str) -> Self {
        LineCut {
            kind: CutKind::Closed,
            why: format!("the edge ended the session: {reason}"),
        }
    }

    pub fn broken(why: impl Into<String>) -> Self {
        LineCut {
            kind: CutKind::Broken,
            why: why.into(),
        }
    }
}

impl fmt::Display for LineCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

impl From<WireError> for LineCut {
    /// A failed line (cut, reset, silence, a damaged record) is worth
    /// resuming; a stream that authenticated but does not decompress or
    /// decode is our own protocol failing, and a resume primed with the same
    /// history would fail the same way, so it ends the session.
    fn from(e: WireError) -> Self {
        match e {
            WireError::Decompress(_)
            | WireError::DecompressedTooLarge { .. }
            | WireError::Decode(_)
            | WireError::Protocol(_)
            | WireError::FrameTooLarge { .. } => LineCut::broken(e.to_string()),
            _ => LineCut::lost(e.to_string()),
        }
    }
}

impl From<std::io::Error> for LineCut {
    fn from(e: std::io::Error) -> Self {
        LineCut::lost(e.to_string())
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
    state: ClientState,
    /// Names this session as lost unless it ends with `Bye`.
    lost: Guard,
    bodies: Bodies,
    planner: Planner,
    /// Body bytes acknowledged with `Window`.
    credited: u64,
    /// Read marks not yet sent, per server.
    marks: BTreeMap<String, Vec<MessageId>>,
    /// Read marks or deletes were sent that no `Pong` has followed yet:
    /// the edge may not have them (see [`EdgeLink::sync`]).
    unproven: bool,
    /// With a delete journal: the session's deletes (DELE answered here).
    deletes: Option<SessionDeletes>,
    /// The broken variant `DeleNotJournaled` (never set in a shipped build).
    dele_not_journaled: bool,
    /// After `Quit` nothing more is sent (see [`EdgeLink::quit`]).
    quitting: bool,
    /// Bytes sent on the channel as last seen, and since when.
    sent: (u64, Instant),
    /// The body the mail client is waiting for, passed on as it arrives.
    tee: Option<BodyTee>,
    /// Places in the `Welcome`'s listings: how the stream names messages.
    places: Places,
    /// What a resume needs ([`resume`]): the settings to reach the edge
    /// again, the session's id and latest secret (`None`: not resumable),
    /// the read marks sent in order since the last resume (the edge says
    /// how many it got in all; `marks_confirmed` were confirmed before), the
    /// request waiting for its answer (asked again with its id), and what
    /// the cut channel had received of the edge's compression frame.
    config: std::sync::Arc<ClientConfig>,
    session: String,
    secret: Option<[u8; SECRET_LEN]>,
    marks_sent: Vec<(String, Place)>,
    marks_confirmed: u64,
    parked: Option<causeway_wire::history::History>,
    in_flight: Option<(u64, String, Op)>,
    /// A message going up for an APPEND ([`upload`]).
    upload: Option<upload::Upload>,
}

/// The session's mirror, given to the proxy's [`Kept`] bodies when the
/// session ends however it ends.
struct Bodies {
    mirror: Mirror,
    kept: Kept,
    /// The longest body accepted from the edge.
    max_body: u64,
}

impl Drop for Bodies {
    fn drop(&mut self) {
        for (key, body) in self.mirror.drain() {
            self.kept.put(key, body);
        }
    }
}

impl From<LinkEnd> for LineCut {
    fn from(e: LinkEnd) -> Self {
        match e {
            LinkEnd::Closed(reason) => LineCut::closed(&reason),
            other => LineCut::lost(other.to_string()),
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
        EdgeToClient::Chunk { .. } => "Chunk",
        EdgeToClient::Held { .. } => "Held",
        EdgeToClient::Bye { .. } => "Bye",
        EdgeToClient::Ticket { .. } => "Ticket",
        EdgeToClient::Resumed { .. } => "Resumed",
        EdgeToClient::Finishing => "Finishing",
        EdgeToClient::Opening => "Opening",
    };
    LineCut::broken(format!("the edge sent {kind} while we waited for {what}"))
}

/// The first pause before trying a busy edge again, and the longest.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
const BUSY_PAUSE_MAX: Duration = Duration::from_secs(2);

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
    ///
    /// A handshake the line ends (a FIN or a reset) is tried again after a
    /// pause that doubles from [`BUSY_PAUSE`], with jitter, while
    /// `edge_connect` has not passed since the first try: a busy edge closes
    /// connections before their handshake (its `max_handshakes` are in
    /// progress, as when every proxy comes back at once after it
    /// restarted), and a line may drop one connection and carry the next.
    /// A refusal of our key is not a line failure, and is not retried.
    pub async fn reach(env: &E, config: &ClientConfig) -> Result<Reached<E>, String> {
        let t = &config.timeouts;
        let give_up = env.now() + t.edge_connect;
        let mut pause = BUSY_PAUSE;
        loop {
            let stream = env
                .timeout(
                    t.edge_connect,
                    "the connection to the edge",
                    env.connect(&config.edge),
                )
                .await
                .and_then(|r| r)
                .map_err(|e| format!("could not reach the edge at {}: {e}", config.edge))?;
            let reached = connect_xk(
                env,
                stream,
                &config.keypair,
                &config.edge_key,
                config.psk.as_ref(),
                &config.edge_channel(),
            )
            .await;
            let wait = pause + pause.mul_f64(env.rng().range(0, 1000) as f64 / 1000.0);
            match reached {
                Ok(channel) => return Ok(channel),
                Err(e) if e.is_line_failure() && env.now() + wait < give_up => {
                    tracing::debug!(error = %e, pause_ms = wait.as_millis() as u64,
                        "the handshake with the edge did not finish; trying again");
                    env.sleep(wait).await;
                    pause = (pause * 2).min(BUSY_PAUSE_MAX);
                }
                Err(e) => return Err(format!("the secure handshake with the edge failed: {e}")),
            }
        }
    }

    /// Hands over the user information on a reached channel and waits for
    /// the listings. The sessions in `lost` are named in the `Hello`, for the
    /// edge to end, and so are the deletes the journal has left to carry.
    /// With `only`, the session is for carrying deletes: it opens just those
    /// servers and wants no bodies.
    pub async fn open(
        env: &E,
        config: &ClientConfig,
        shared: &Shared,
        only: Option<&[String]>,
        mut channel: Reached<E>,
    ) -> Result<(Self, Vec<ServerListing>), NotOpened> {
        let t = &config.timeouts;
        // A session of the proxy's own that commits with no mail client
        // waiting (the carrier's, or a hung-up IMAP client's QUIT) holds the
        // servers' maildrop locks until its Bye: a mail client's session
        // waits for it rather than meet `[IN-USE]` (each is short: at most
        // a login, a listing and a QUIT).
        if only.is_none() {
            drop(shared.committing.lock().await);
        }
        let taken = shared.lost.take().await;
        let (supersedes, restarted) = (taken.ids.clone(), taken.restarted);
        let mut user = config.user_info();
        if let Some(only) = only {
            user.servers.retain(|s| only.contains(&s.name));
        }
        let names: Vec<String> = user.servers.iter().map(|s| s.name.clone()).collect();
        let carried = match &shared.deletes {
            Some(j) => j.take_carried(&names),
            None => Vec::new(),
        };
        // Owned by this session from here on; released (for a later one to
        // carry) if the session does not open.
        let deletes = shared
            .deletes
            .clone()
            .map(|j| SessionDeletes::new(j, &carried));
        // The session's name until its Welcome comes (see below).
        let nonce = {
            let rng = env.rng();
            format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
        };
        let hello = ClientToEdge::Hello {
            version: PROTOCOL_VERSION,
            nonce: nonce.clone(),
            user,
            supersedes: supersedes.clone(),
            carried,
            // Without a journal nothing is carried; 0 lets the edge forget
            // nothing (a proxy with a journal may share the key).
            oldest: shared.deletes.as_ref().map_or(0, |j| j.oldest()),
            restarted,
            resumes: !config.timeouts.resume.is_zero(),
        };
        let (lost, kept) = (&shared.lost, &shared.kept);
        let mut secret = None;
        // On silence, as any answer (the edge says `Opening` while it logs
        // in to the servers), and `timeouts.welcome` in all.
        let what = "the edge's Welcome";
        let welcome = match send(env, &mut channel, &hello, t.request).await {
            Ok(()) => {
                let silence = t.request.min(t.welcome);
                let answer = async {
                    loop {
                        match recv(env, &mut channel, silence, what).await {
                            Ok(EdgeToClient::Ticket { secret: s }) => secret = s.try_into().ok(),
                            Ok(EdgeToClient::Opening) => {}
                            other => break other,
                        }
                    }
                };
                match env.timeout(t.welcome, what, answer).await {
                    Ok(answer) => answer,
                    Err(_) => Err(LinkEnd::Silent {
                        what,
                        after: t.welcome,
                    }
                    .into()),
                }
            }
            Err(e) => Err(e),
        };
        let (session, listings) = match welcome {
            Ok(EdgeToClient::Welcome { session, servers }) => {
                shared.lost.answered(taken);
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
                lost.restore(taken);
                // Nor do we know whether it opened this one: a cut may have
                // taken its Welcome, and then the session holds the
                // servers' maildrop locks, waiting for a line that will
                // never come back. The next Hello names it by its nonce.
                if !matches!(refused_or_cut, Ok(EdgeToClient::Refused { .. })) {
                    lost.add(nonce);
                }
                return Err(match refused_or_cut {
                    Ok(EdgeToClient::Refused { error }) => NotOpened::Refused(OpError::new(
                        error.code,
                        format!("The edge refused the session: {}", error.text),
                    )),
                    // A close before any answer: the edge refused our key
                    // once the handshake proved it (only that closes a
                    // channel unread); the configuration must change.
                    Err(LineCut {
                        kind: CutKind::Closed,
                        why: reason,
                    }) => NotOpened::Refused(OpError::new(
                        Some(ErrCode::SysPerm),
                        format!("The edge refused this client proxy: {reason}"),
                    )),
                    Ok(other) => NotOpened::Unreachable(out_of_turn("Welcome", &other).why),
                    Err(e) => {
                        NotOpened::Unreachable(format!("the edge did not open the session: {e}"))
                    }
                });
            }
        };
        // The handshake and Hello/Welcome: two waits.
        shared.state.waited(2);
        let moved_by_hello = channel.counters().moved_out();
        let order: Vec<String> = config.servers.iter().map(|s| s.name.clone()).collect();
        let mut mirror = Mirror::default();
        for key in listed(&order, &listings) {
            if let Some(body) = kept.take(&key) {
                mirror.insert(key, body);
            }
        }
        let prefetch = match only {
            Some(_) => Prefetch {
                enabled: false,
                ..config.prefetch.clone()
            },
            None => config.prefetch.clone(),
        };
        let planner = Planner::new(&prefetch, &order, &listings, kept, &mirror);
        let mut link = EdgeLink {
            env: env.clone(),
            channel,
            next: 1,
            request_timeout: t.request,
            ping_interval: t.ping_interval,
            pongs_due: Vec::new(),
            round_trips: 1,
            state: shared.state.clone(),
            lost: lost.guard(session.clone()),
            bodies: Bodies {
                mirror,
                kept: kept.clone(),
                max_body: config.prefetch.max_body,
            },
            planner,
            credited: 0,
            marks: BTreeMap::new(),
            unproven: false,
            deletes,
            dele_not_journaled: config.broken(Broken::DeleNotJournaled),
            tee: None,
            places: Places::new(&listings),
            quitting: false,
            sent: (0, env.now()),
            config: std::sync::Arc::new(config.clone()),
            session,
            secret: secret.filter(|_| !config.timeouts.resume.is_zero()),
            marks_sent: Vec::new(),
            marks_confirmed: 0,
            parked: None,
            in_flight: None,
            upload: None,
        };
        if let Err(cut) = link.want_more().await {
            return Err(NotOpened::Unreachable(cut.why));
        }
        if link.secret.is_some() && link.channel.counters().moved_out() == moved_by_hello {
            // No `Want` went: a first message all the same, which tells the
            // edge this proxy has the session's `Ticket` (it may then keep
            // the session for a resume).
            let first = ClientToEdge::Window { received: 0 };
            if let Err(cut) = send(env, &mut link.channel, &first, t.request).await {
                return Err(NotOpened::Unreachable(cut.why));
            }
        }
        Ok((link, listings))
    }

    /// Since when nothing was sent to the edge (as of `now`).
    pub fn quiet_since(&mut self, now: Instant) -> Instant {
        let out = self.channel.counters().moved_out();
        if out != self.sent.0 {
            self.sent = (out, now);
        }
        self.sent.1
    }

    /// Sends the `Want`s the prefetch plan allows now (no answer awaited).
    async fn want_more(&mut self) -> Result<(), LineCut> {
        for (server, wanted) in self.planner.next(&self.bodies.mirror) {
            // The planner plans only listed messages: each has a place.
            let bodies = wanted
                .iter()
                .filter_map(|w| {
                    let at = self.places.place(&server, &w.msg)?;
                    Some(WantedAt { at, from: w.from })
                })
                .collect();
            let want = ClientToEdge::Want { server, bodies };
            send(&self.env, &mut self.channel, &want, self.request_timeout).await?;
        }
        Ok(())
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        self.round_trips += 1;
        self.state.waited(1);
        id
    }

    /// From now on, passes the body of `key` on as it arrives (see
    /// [`crate::tee`]), starting with the part already here, until
    /// [`EdgeLink::untee`].
    pub fn tee(&mut self, key: Key) -> BodyTee {
        let mirror = &self.bodies.mirror;
        let held = if mirror.complete(&key).is_some() {
            &[][..]
        } else {
            mirror.so_far(&key)
        };
        let tee = BodyTee::new(key, held);
        self.tee = Some(tee.clone());
        tee
    }

    pub fn untee(&mut self) {
        self.tee = None;
    }

    /// The answer to one request: from the mirror when it holds the body
    /// (no turn on the line), else from the edge, however long it takes to
    /// arrive while it keeps arriving. A cut meanwhile is resumed
    /// ([`resume`]) and the request asked again, with its id.
    pub async fn ask(&mut self, r: &Request) -> Result<Result<Reply, OpError>, LineCut> {
        if let Some(local) = self.held_answer(r) {
            return Ok(Ok(local));
        }
        let answer = match (&r.op, self.deletes.is_some()) {
            (Op::Dele { msg }, true) => self.delete_here(&r.server, msg).await,
            _ => loop {
                match self.ask_edge(r).await {
                    Err(cut) => self.resume(cut).await?,
                    done => {
                        self.in_flight = None;
                        break done;
                    }
                }
            },
        };
        if let (Op::Dele { msg }, Ok(Ok(_))) = (&r.op, &answer) {
            self.forget_body(&r.server, msg);
        }
        answer
    }

    /// A deleted message's body is neither kept nor answered from again
    /// ([`Kept::forget`]).
    fn forget_body(&mut self, server: &str, msg: &MessageId) {
        let key = (server.to_owned(), msg.clone());
        self.bodies.mirror.take(&key);
        self.bodies.kept.forget(&key);
    }

    /// [`EdgeLink::ask`] over the channel as it is: a cut is returned.
    async fn ask_edge(&mut self, r: &Request) -> Result<Result<Reply, OpError>, LineCut> {
        if let Some(local) = self.held_answer(r) {
            return Ok(Ok(local));
        }
        // A body already on its way is waited for, not asked for: the
        // edge streams it to its end anyway, and a request would cost a
        // turn on the line; a TOP only until its first lines are in. So
        // is a RETR's body the stream will bring, while the stream flows
        // (a TOP does not wait for a body to start).
        if let Op::Retr { msg } | Op::Top { msg, .. } = &r.op {
            let key = (r.server.clone(), msg.clone());
            let retr = matches!(r.op, Op::Retr { .. });
            if retr
                && !self.bodies.mirror.arriving(&key)
                && self.planner.is_wanted(&key)
                && self.planner.bytes_ahead(&key, &self.bodies.mirror) <= JUMP_AFTER
            {
                self.wait_for_start(&key).await?;
                if let Some(local) = self.held_answer(r) {
                    return Ok(Ok(local));
                }
            }
            if self.bodies.mirror.arriving(&key) {
                let top = match r.op {
                    Op::Top { lines, .. } => Some(lines),
                    _ => None,
                };
                self.wait_for_body(&key, top).await?;
                if let Some(local) = self.held_answer(r) {
                    return Ok(Ok(local));
                }
            }
        }
        self.queue_batched()?;
        let id = match &self.in_flight {
            Some((id, server, op)) if *server == r.server && *op == r.op => *id,
            _ => self.next_id(),
        };
        self.in_flight = Some((id, r.server.clone(), r.op.clone()));
        let msg = ClientToEdge::Request {
            id,
            server: r.server.clone(),
            op: r.op.clone(),
        };
        send(&self.env, &mut self.channel, &msg, self.request_timeout).await?;
        let result = match self
            .next_answer("the edge's answer", self.request_timeout, true)
            .await?
        {
            EdgeToClient::Response { id: got, result } if got == id => result,
            other => return Err(out_of_turn("an answer", &other)),
        };
        match (result, &r.op) {
            (Ok(Reply::Streamed { total }), Op::Retr { msg }) => {
                let key = (r.server.clone(), msg.clone());
                match self.bodies.mirror.complete(&key) {
                    Some(b) if b.len() as u64 == total => Ok(Ok(Reply::Body(b.to_vec()))),
                    _ => Err(LineCut::broken(format!(
                        "the edge said the body of {} was sent, and it did not arrive whole",
                        msg.uidl
                    ))),
                }
            }
            (Ok(Reply::Done), Op::Rset) => {
                let undone = match &mut self.deletes {
                    Some(d) => d.undone(&r.server).await,
                    None => Ok(()),
                };
                Ok(undone.map(|()| Reply::Done).map_err(|()| {
                    OpError::new(
                        Some(ErrCode::SysTemp),
                        "the client proxy could not record the RSET durably; the deletes stand",
                    )
                }))
            }
            (result, _) => Ok(result),
        }
    }

    /// DELE answered here: `+OK` once the delete journal holds it durably
    /// (it reaches the edge in the next batch); `-ERR` if it cannot.
    async fn delete_here(
        &mut self,
        server: &str,
        msg: &MessageId,
    ) -> Result<Result<Reply, OpError>, LineCut> {
        let Some(deletes) = &mut self.deletes else {
            unreachable!("only with a delete journal")
        };
        if self.dele_not_journaled {
            deletes.record_in_memory(server, msg);
        } else if let Err(e) = deletes.record(server, msg, &self.places).await {
            tracing::warn!(%server, error = %e,
                "delete journal: could not record a delete; refusing it (check the proxy's disk)");
            return Ok(Err(OpError::new(
                Some(ErrCode::SysTemp),
                "the client proxy could not record the delete durably; nothing was deleted",
            )));
        }
        if deletes.unsent() >= MARKS_BATCH {
            self.send_batched().await?;
        }
        Ok(Ok(Reply::Done))
    }

    /// A RETR or TOP answered from a body held whole (in the mirror, or
    /// kept since it was delivered), or a TOP from the first bytes of one
    /// still arriving, once they hold its answer.
    fn held_answer(&self, r: &Request) -> Option<Reply> {
        let (msg, lines) = match &r.op {
            Op::Retr { msg } => (msg, None),
            Op::Top { msg, lines } => (msg, Some(*lines)),
            Op::Dele { .. }
            | Op::Rset
            | Op::Append { .. }
            | Op::Store { .. }
            | Op::Search { .. } => return None,
        };
        let key = (r.server.clone(), msg.clone());
        let kept;
        let body = match self.bodies.mirror.complete(&key) {
            Some(b) => b,
            None => match (self.bodies.kept.complete(&key), lines) {
                (Some(b), _) => {
                    kept = b;
                    &kept
                }
                (None, Some(n)) => {
                    return head_of_prefix(self.bodies.mirror.so_far(&key), n)
                        .map(|h| Reply::Body(h.to_vec()));
                }
                (None, None) => return None,
            },
        };
        Some(Reply::Body(match lines {
            None => body.to_vec(),
            Some(n) => head(body, n),
        }))
    }

    /// The body of `key` reached the mail client whole: its read mark
    /// joins the batch, the body leaves the mirror for the kept ones, and
    /// the prefetch plan may go on.
    pub async fn delivered(&mut self, key: Key) -> Result<(), LineCut> {
        self.bodies.kept.delivered(&key);
        self.planner.done(&key);
        if let Some(body) = self.bodies.mirror.take(&key) {
            self.bodies.kept.put(key.clone(), body);
        }
        let (server, msg) = key;
        self.marks.entry(server).or_default().push(msg);
        if self.marks.values().map(Vec::len).sum::<usize>() >= MARKS_BATCH {
            self.send_batched().await?;
        }
        // A `Want` a cut lost is in the resume's state: not sent again.
        if let Err(cut) = self.want_more().await {
            self.resume(cut).await?;
        }
        Ok(())
    }

    /// True while read marks or deletes wait to be sent.
    pub fn batched_pending(&self) -> bool {
        !self.marks.is_empty() || self.deletes.as_ref().is_some_and(|d| d.unsent() > 0)
    }

    /// Sends the waiting read marks, then the waiting deletes (no answer
    /// awaited: a mark lost in a cut that is not resumed leaves its message
    /// unread; a delete stays in the journal until the edge's `Held` comes
    /// back). A cut meanwhile is resumed, and what it lost is sent again.
    pub async fn send_batched(&mut self) -> Result<(), LineCut> {
        loop {
            match self.send_batched_here().await {
                Err(cut) => self.resume(cut).await?,
                Ok(()) => return Ok(()),
            }
        }
    }

    /// [`EdgeLink::send_batched`] over the channel as it is.
    async fn send_batched_here(&mut self) -> Result<(), LineCut> {
        self.queue_batched()?;
        Ok(link::flush(&self.env, &mut self.channel, self.request_timeout).await?)
    }

    /// Queues the waiting read marks and deletes for the channel's next
    /// flush, so that they cross the line in one write with the message
    /// that follows them (a mail client reading one message after another
    /// sends the last one's read mark with its next `RETR`: one write, one
    /// wake-up of the edge, not two).
    fn queue_batched(&mut self) -> Result<(), LineCut> {
        for (server, msgs) in std::mem::take(&mut self.marks) {
            // Only bodies of listed messages are delivered: each has a place.
            let at: Vec<Place> = msgs
                .iter()
                .filter_map(|m| self.places.place(&server, m))
                .collect();
            self.marks_sent
                .extend(at.iter().map(|&a| (server.clone(), a)));
            let batch = ClientToEdge::Delivered { server, at };
            self.unproven = true;
            link::queue(&mut self.channel, &batch)?;
        }
        let ops = match &mut self.deletes {
            Some(d) if d.unsent() > 0 => d.take_unsent(),
            _ => return Ok(()),
        };
        // A delete the listing cannot place (none: the mail client names
        // messages of this listing) stays in the journal, never `Held`, and
        // the next `Hello` carries it by `MessageId`.
        let ops = ops
            .into_iter()
            .filter_map(|op| {
                let at = self.places.place(&op.server, &op.msg)?;
                Some(PlacedDelete {
                    seq: op.seq,
                    server: op.server,
                    at,
                })
            })
            .collect();
        let batch = ClientToEdge::Deletes { ops };
        self.unproven = true;
        Ok(link::queue(&mut self.channel, &batch)?)
    }

    /// Returns once the edge has every read mark and delete this session
    /// gave the link (sent if they were waiting, then a `Ping` answered:
    /// the edge takes each in before it reads the next message, and a
    /// delivery it has is owed to its server, journaled where the edge
    /// keeps a journal). Costs a turn on the line only if something was
    /// sent that no `Pong` has followed yet.
    pub async fn sync(&mut self) -> Result<(), LineCut> {
        if self.unproven || self.batched_pending() {
            self.ping().await?;
        }
        Ok(())
    }

    /// One `Ping`/`Pong`: proves the line still carries traffic both ways.
    /// Sent after a quiet spell, so the compression frame ends first: the
    /// contexts on both ends are freed while nothing flows.
    pub async fn ping(&mut self) -> Result<(), LineCut> {
        loop {
            match self.ping_here().await {
                Err(cut) => self.resume(cut).await?,
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn ping_here(&mut self) -> Result<(), LineCut> {
        self.queue_batched()?;
        rest(&self.env, &mut self.channel, self.request_timeout).await?;
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
            EdgeToClient::Pong { nonce: got } if got == nonce => {
                self.unproven = false;
                Ok(())
            }
            other => Err(out_of_turn("Pong", &other)),
        }
    }

    /// `Quit`, then `Bye` with each server's outcome; then closes the channel.
    pub async fn quit(mut self, within: Duration) -> Result<Vec<ServerOutcome>, LineCut> {
        let outcomes = loop {
            match self.quit_here(within).await {
                Err(cut) => {
                    self.quitting = false;
                    self.resume(cut).await?;
                }
                Ok(outcomes) => break outcomes,
            }
        };
        self.lost.ended_with_bye();
        if let Some(d) = &mut self.deletes {
            for o in outcomes.iter().filter(|o| o.result.is_ok()) {
                d.committed(&o.name).await;
            }
        }
        tracing::info!(
            round_trips = self.round_trips,
            "edge session ended with Bye"
        );
        self.close("session finished").await;
        Ok(outcomes)
    }

    async fn quit_here(&mut self, within: Duration) -> Result<Vec<ServerOutcome>, LineCut> {
        self.queue_batched()?;
        self.round_trips += 1;
        self.state.waited(1);
        send(
            &self.env,
            &mut self.channel,
            &ClientToEdge::Quit,
            self.request_timeout,
        )
        .await?;
        // Nothing after Quit (no keepalive, no Window): the edge reads
        // nothing more, and unread bytes would turn its close into a reset
        // that could lose the Bye.
        self.quitting = true;
        // On silence, as any answer (the edge says `Finishing` while its
        // servers commit), and `within` in all.
        let env = self.env.clone();
        let what = "the edge's Bye";
        let bye = self.next_answer(what, self.request_timeout, false);
        match env.timeout(within, what, bye).await {
            Ok(Ok(EdgeToClient::Bye { servers })) => Ok(servers),
            Ok(Ok(other)) => Err(out_of_turn("Bye", &other)),
            Ok(Err(cut)) => Err(cut),
            Err(_) => Err(LinkEnd::Silent {
                what,
                after: within,
            }
            .into()),
        }
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
