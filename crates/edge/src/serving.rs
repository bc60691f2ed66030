//! The serving phase of a client session: one loop that reads the client
//! proxy's messages, streams bodies, and hears back from the workers, all
//! at once.
//!
//! ```text
//!            ┌──────── recv: Request / Want / Window / Upload / Deletes / Delivered / Ping / Quit
//!  select ───┼──────── a worker fetched a body (or a head), stored an APPEND or flags
//!            └──────── the outbox may send a burst (window open)
//! ```
//!
//! Nothing in the loop waits for the line except the burst it is sending,
//! so an answer, a `Pong` or the next chunk is never held behind a body
//! crossing a slow line: bodies go as [`crate::outbox`] chunks, a burst is
//! what the window lets out (at most [`BURST`] bytes, one compressed unit),
//! and an answer is sent between two bursts. On a slow line a burst waits
//! briefly for enough bytes to fill a unit ([`BURST_MIN`]); the compression
//! level and the context's lifetime are `crate::compression`'s.
//!
//! **Prefetch.** The client proxy names in `Want` the bodies it wants ahead
//! of demand. Per server one prefetch is in flight at a time, and a new one
//! starts only while the outbox holds less than [`FETCH_AHEAD`] unsent bytes:
//! the edge reads from the server as fast as the line drains, no faster, and
//! a slow server does not hold back another's bodies. A prefetched body is
//! fetched with `TOP n <huge>` like every other: nothing marks it read but the
//! client proxy's `Delivered`, which it sends only once the mail client took
//! the whole message.
//!
//! **Requests** are served in order, one at a time, as a POP3 client sends
//! them. A `Retr` makes its body jump the stream's queue (or continue first
//! where it was) and is answered `Streamed` once the last chunk went out. A
//! `Dele` is recorded durably in the crash journal (when there is one) and
//! queued to its worker *before* `Done` goes out, so from the moment the
//! client can know of it the delete is owed, even across a crash of the
//! edge. A delete the journal could not record is refused, not acknowledged.
//! An `Append` (`append`) and a `Store` of flags (`flags`) go to their
//! worker off the loop and are answered when the server was.
//!
//! **Batched deletes** (`Deletes`) were acknowledged by the client proxy
//! from its own journal; each is owed here the same way, and `Held` names
//! those the journal recorded, which the client proxy may then forget. One
//! the journal could not record is still done (from memory), and the client
//! proxy keeps it until the session's `Bye` says its server committed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use causeway_net::{Env, shutdown_requested};
use causeway_pop3::multiline::head;
use causeway_proto::OpError;
use causeway_proto::session::{
    ClientToEdge, DeleteOp, EdgeToClient, MAX_DELETES, MAX_WANTED, MessageId, Op, Place,
    PlacedDelete, Reply, SECRET_LEN, Wanted, WantedAt,
};
use causeway_wire::history::History;
use causeway_wire::link::{LinkEnd, flush, queue, recv, rest, send};
use causeway_wire::{Meter, SecureChannel};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use crate::broken::Broken;
use crate::compression::Compression;
use crate::config::EdgeConfig;
use crate::ledger::Owed;
use crate::outbox::{Key, Outbox};
use crate::registry::Registration;
use crate::replica::Replica;
use crate::state::EdgeState;
use crate::worker::{Job, WorkerHandle};

mod append;
mod fetch;
mod flags;
mod resume;
mod search;
mod work;

use fetch::Purpose;
pub(crate) use resume::{Attach, Farewell, new_secret, proven};
pub(crate) use work::internal;
use work::worker;

use crate::worker::WHOLE_MESSAGE;

/// Prefetch starts another server fetch only while the outbox holds fewer
/// unsent body bytes than this: enough to keep a fast line busy while the
/// next body is read from its server, and a bound on what a session holds.
const FETCH_AHEAD: usize = 4 << 20;

/// Most body bytes sent as one compressed unit: the chunks the window lets
/// out at once, up to this, share one flush of the compressor. An answer
/// the mail client waits for goes out after the burst being sent: on a
/// slow line the window (64 KiB there) bounds a burst long before this
/// does, and on 3G 128 KiB of mail is about 0.2 s of line. W1 on 3G: 3.7 KB
/// fewer than with 64 KiB.
const BURST: usize = 128 << 10;

/// On a slow line a burst waits until it has this many body bytes to send
/// (while more are being fetched, for at most [`HOLD`]): one unit per
/// message would cost a flush (about 47 bytes at level 9) and a record each,
/// 4% of W1. The line is busy with what was sent before meanwhile.
const BURST_MIN: u64 = 32 << 10;

/// The longest a burst is held for [`BURST_MIN`].
const HOLD: std::time::Duration = std::time::Duration::from_millis(100);

/// The open servers, in the order the user information names them.
pub(crate) type Workers = Vec<(String, WorkerHandle)>;

/// How the serving phase ended.
pub(crate) enum Ending {
    /// With what a resume would need to get the `Bye` again, when the
    /// session is resumable (see `farewell`).
    Quit(Option<Box<Farewell>>),
    Cut(String),
    Shutdown,
    /// A newer session of the same client ended this one (its line was cut).
    Superseded,
}

/// A worker's answer, back in the serving loop.
enum Done {
    Fetched(fetch::Fetched),
    Appended(append::Appended),
    FlagsStored(flags::Stored),
    Found(search::Found),
}

pub(crate) struct Serving<'a, E: Env> {
    pub env: E,
    pub config: &'a EdgeConfig,
    pub replica: Replica,
    pub workers: &'a Workers,
    state: EdgeState,
    outbox: Outbox,
    /// The octets of the session's listing (see [`Serving::send_burst`]).
    mailbox_bytes: u64,
    compression: Compression,
    /// Since when a burst is held for more bytes (see [`BURST_MIN`]).
    held_since: Option<causeway_net::Instant>,
    /// Bodies the client proxy wants ahead of demand, per server, in order.
    wanted: BTreeMap<String, VecDeque<Wanted>>,
    /// Whole bodies being fetched, with the `Retr` requests waiting on them.
    fetching: BTreeMap<Key, Vec<u64>>,
    /// Servers whose latest whole-body fetch has not answered yet: no
    /// prefetch starts there meanwhile. (Not the servers of `fetching`: a
    /// `Retr` may add a fetch beside a prefetch, and the prefetch's answer
    /// lets the next one start while the `Retr`'s is still due.)
    busy: BTreeSet<String>,
    /// Requests not yet started (the client sends one at a time; more wait).
    queued: VecDeque<(u64, String, Op)>,
    /// The request being served, if it waits on a fetch or the stream.
    current: Option<u64>,
    /// Bodies streamed whole in this session: never streamed again unasked
    /// (the client proxy holds them, or chose to drop them).
    sent: BTreeSet<Key>,
    /// Bodies streamed whole without a request, not (yet) reported
    /// delivered: counted at the end (they stay unread).
    ahead: BTreeSet<Key>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// The `Append` request (by id) whose message its worker is storing:
    /// asked again after a resume, it is waited for, never sent twice.
    appending: Option<u64>,
    /// The message of an `Append` on its way up (see `append`).
    uploads: append::Uploads,
    /// The session's resume secret (`None`: not resumable), rotated on each
    /// resume; and what a resume re-establishes ([`resume`]).
    secret: Option<[u8; SECRET_LEN]>,
    /// The secret `secret` replaced, until the client proxy shows it got
    /// the new one (a message on the channel `Resumed` went out on): a cut
    /// that lost `Resumed` leaves the proxy with this one.
    previous: Option<[u8; SECRET_LEN]>,
    /// What the cut channel had sent of its open compression frame, kept
    /// while the session waits for a resume (the channel and its contexts
    /// are freed): the new channel's stream starts primed with it.
    parked: Option<History>,
    /// Read marks (places in `Delivered`) received in this session.
    marks: u64,
    /// A message came after `Welcome`: the client proxy has the `Ticket`
    /// (sent before it), so it can resume. Until then a cut ends the
    /// session: a client proxy that never got `Welcome` does not know the
    /// session's id, and a detached session would hold the servers' locks
    /// against its next `Hello` for the whole window.
    heard: bool,
    /// Batched deletes the journal holds, by sequence number: a batch sent
    /// again after a cut is `Held` at once. (A newer session the client
    /// proxy carries them to finds them in the journal's records of taken
    /// deletes: `Journal::took`.)
    held: BTreeSet<u64>,
    /// Batched deletes taken in this session, durable or from memory only
    /// (a journal that failed): one sent again after a cut is not taken a
    /// second time, for an RSET may have undone it meanwhile.
    taken: BTreeSet<u64>,
    /// The latest `Dele`, `Rset` or `Append` answered, by request id: asked
    /// again after a resume (its answer was lost), it is answered, not done
    /// twice.
    answered: Option<(u64, Result<Reply, OpError>)>,
    /// Carries this channel's byte counts into the edge's client-hop total.
    meter: Meter,
}

/// The channel a session serves on.
pub(crate) type Channel<E> = SecureChannel<<E as Env>::Stream>;

/// How serving over one channel ended.
enum Served<E: Env> {
    /// The session is over (Quit, shutdown, superseded, a broken peer).
    End(Ending),
    /// The line failed: the session may wait detached for a resume.
    Cut(String),
    /// A resume came while this channel still looked alive.
    Attach(Box<Attach<E::Stream>>),
}

impl<'a, E: Env> Serving<'a, E> {
    pub fn new(
        env: E,
        config: &'a EdgeConfig,
        state: &EdgeState,
        replica: Replica,
        workers: &'a Workers,
        secret: Option<[u8; SECRET_LEN]>,
        held: BTreeSet<u64>,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let now = env.now();
        Self {
            env,
            config,
            mailbox_bytes: replica.mailbox_bytes(),
            replica,
            workers,
            outbox: Outbox::default(),
            compression: Compression::new(state.clone(), now),
            state: state.clone(),
            held_since: None,
            wanted: BTreeMap::new(),
            fetching: BTreeMap::new(),
            busy: BTreeSet::new(),
            queued: VecDeque::new(),
            current: None,
            sent: BTreeSet::new(),
            ahead: BTreeSet::new(),
            done_tx,
            done_rx,
            appending: None,
            uploads: append::Uploads::new(state.upload_pool()),
            secret,
            previous: None,
            parked: None,
            marks: 0,
            heard: false,
            held,
            taken: BTreeSet::new(),
            answered: None,
            meter: Meter::default(),
        }
    }

    /// Serves until Quit, a cut line, shutdown or a newer session. Consumes
    /// `self` so that the replica is dropped as soon as serving ends.
    pub async fn run(
        mut self,
        channel: &mut Channel<E>,
        shutdown: &mut watch::Receiver<bool>,
        registration: &mut Registration<Attach<E::Stream>>,
    ) -> Ending {
        let ending = self.serve(channel, shutdown, registration).await;
        // From here a resume is refused (no session serves it any more).
        registration.attach.close();
        self.state.streamed_ahead(self.ahead.len());
        ending
    }

    /// Serves over `channel`, and over each channel a resume brings after
    /// it: a cut line leaves the session detached, waiting for its client
    /// proxy, for the resume window (when the session is resumable and the
    /// caps allow), and only then ends it.
    async fn serve(
        &mut self,
        channel: &mut Channel<E>,
        shutdown: &mut watch::Receiver<bool>,
        registration: &mut Registration<Attach<E::Stream>>,
    ) -> Ending {
        loop {
            let served = self.serve_attached(channel, shutdown, registration).await;
            // Whatever comes next serves on another channel, if any.
            self.meter
                .flush(&channel.counters(), self.state.client_hop());
            self.meter = Meter::default();
            let reason = match served {
                Served::End(ending) => return ending,
                Served::Attach(a) => {
                    self.attach(channel, *a).await;
                    continue;
                }
                Served::Cut(reason) => reason,
            };
            if let Err(ending) = self.detached(channel, reason, shutdown, registration).await {
                return ending;
            }
        }
    }

    async fn serve_attached(
        &mut self,
        channel: &mut Channel<E>,
        shutdown: &mut watch::Receiver<bool>,
        registration: &mut Registration<Attach<E::Stream>>,
    ) -> Served<E> {
        let t = self.config.timeouts;
        loop {
            self.meter
                .flush(&channel.counters(), self.state.client_hop());
            self.start_fetches();
            if let Err(e) = self.start_requests(channel).await {
                return Served::Cut(e.to_string());
            }
            // Notes what was sent meanwhile (and rests after a quiet spell).
            let end = &mut registration.end;
            if let Some(served) = or_ended(shutdown, end, self.rest_if_quiet(channel)).await {
                return served;
            }
            let hold = self.hold();
            let sendable = self.outbox.ready() && hold.is_none();
            let queued = !self.outbox.is_empty();
            let rest_in = self.compression.rest_due(channel, self.env.now(), queued);
            let next = tokio::select! {
                biased;
                _ = shutdown_requested(shutdown) => return Served::End(Ending::Shutdown),
                _ = superseded(&mut registration.end) => return Served::End(Ending::Superseded),
                Some(a) = registration.attach.recv() => return Served::Attach(a),
                r = recv(&self.env, channel, t.client_idle, "the client's next message") => r,
                Some(done) = self.done_rx.recv() => {
                    let end = &mut registration.end;
                    let served = match done {
                        Done::Fetched(f) => or_ended(shutdown, end, self.fetched(channel, f)).await,
                        Done::Appended(a) => or_ended(shutdown, end, self.appended(channel, a)).await,
                        Done::FlagsStored(s) => or_ended(shutdown, end, self.flags_stored(channel, s)).await,
                        Done::Found(f) => or_ended(shutdown, end, self.found(channel, f)).await,
                    };
                    if let Some(served) = served {
                        return served;
                    }
                    continue;
                }
                _ = self.env.sleep(hold.unwrap_or_default()), if hold.is_some() => continue,
                _ = self.env.sleep(rest_in.unwrap_or_default()), if rest_in.is_some() => continue,
                _ = std::future::ready(()), if sendable => {
                    let end = &mut registration.end;
                    if let Some(served) = or_ended(shutdown, end, self.send_burst(channel)).await {
                        return served;
                    }
                    continue;
                }
            };
            // A message after a quiet spell (typically the client proxy's
            // keepalive): the frame ends before anything is answered.
            let end = &mut registration.end;
            if let Some(served) = or_ended(shutdown, end, self.rest_if_quiet(channel)).await {
                return served;
            }
            self.heard |= next.is_ok();
            if next.is_ok() {
                // The proxy speaks on this channel: it has `Resumed`'s secret.
                self.previous = None;
            }
            let broken = |e: String| Served::End(Ending::Cut(e));
            let reply = match next {
                Ok(ClientToEdge::Request { id, server, op }) => {
                    self.queued.push_back((id, server, op));
                    continue;
                }
                Ok(ClientToEdge::Want { server, bodies }) => {
                    if let Err(e) = self.want(server, bodies) {
                        return broken(e);
                    }
                    continue;
                }
                Ok(ClientToEdge::Upload { id, offset, data }) => {
                    if let Err(e) = self.uploads.piece(id, offset, &data) {
                        return broken(e);
                    }
                    continue;
                }
                Ok(ClientToEdge::Window { received }) => {
                    match self.outbox.window(received, self.env.now()) {
                        Ok(held) => {
                            for (server, msg) in held {
                                self.replica.forget_body(&server, &msg);
                            }
                        }
                        Err(e) => return broken(e),
                    }
                    continue;
                }
                Ok(ClientToEdge::Deletes { ops }) => {
                    if ops.len() > MAX_DELETES {
                        return broken(format!(
                            "the client sent {} deletes in one batch; at most {MAX_DELETES} are accepted",
                            ops.len()
                        ));
                    }
                    let ops = match self.unplace_deletes(ops) {
                        Ok(ops) => ops,
                        Err(e) => return broken(e),
                    };
                    let seqs = self.deletes(ops).await;
                    if seqs.is_empty() {
                        continue;
                    }
                    EdgeToClient::Held { seqs }
                }
                Ok(ClientToEdge::Delivered { server, at }) => {
                    self.marks += at.len() as u64;
                    let msgs = match self.unplace(&server, at) {
                        Ok(msgs) => msgs,
                        Err(e) => return broken(e),
                    };
                    self.delivered(&server, &msgs).await;
                    continue;
                }
                Ok(ClientToEdge::Ping { nonce }) => EdgeToClient::Pong { nonce },
                Ok(ClientToEdge::Quit) => return Served::End(Ending::Quit(self.farewell())),
                Ok(ClientToEdge::Hello { .. } | ClientToEdge::Resume { .. }) => {
                    return broken("the client sent Hello or Resume in a session".into());
                }
                // Closed on purpose: nothing to wait for.
                Err(LinkEnd::Closed(reason)) => {
                    return Served::End(Ending::Cut(format!(
                        "the client closed the channel without Quit: {reason}"
                    )));
                }
                Err(e) => return Served::Cut(e.to_string()),
            };
            let end = &mut registration.end;
            let sent = send(&self.env, channel, &reply, t.hello);
            if let Some(served) = or_ended(shutdown, end, sent).await {
                return served;
            }
        }
    }

    /// What answers a resume after `Quit` (its `Bye` filled in by the
    /// session once the servers finished); None when not resumable.
    fn farewell(&self) -> Option<Box<Farewell>> {
        let secret = self.secret?;
        Some(Box::new(Farewell {
            secrets: std::iter::once(secret).chain(self.previous).collect(),
            marks: self.marks,
            held: self.held.clone(),
            servers: Vec::new(),
        }))
    }

    /// Ends the compression frame once nothing was sent for a while and no
    /// body is queued (see `compression.rs`).
    async fn rest_if_quiet(&mut self, channel: &mut Channel<E>) -> Result<(), LinkEnd> {
        // Drained: a stream of wanted bodies (not one answer after another,
        // where a new frame per body would lose the history) has ended.
        let queued = !self.outbox.is_empty();
        let drained = !queued
            && self.fetching.is_empty()
            && !self.wanted.is_empty()
            && self.wanted.values().all(VecDeque::is_empty);
        let now = self.env.now();
        if self
            .compression
            .should_rest(&self.config.channel, channel, now, queued, drained)
        {
            rest(&self.env, channel, self.config.timeouts.hello).await?;
        }
        Ok(())
    }

    /// How much longer the next burst waits for [`BURST_MIN`] bytes, if it
    /// waits: only on a slow line (bulk level), while a fetch will add more,
    /// and never for a body the mail client waits on.
    fn hold(&mut self) -> Option<std::time::Duration> {
        let now = self.env.now();
        let waits = self.compression.bulk()
            && self.outbox.ready()
            && self.outbox.sendable() < BURST_MIN
            && !self.busy.is_empty()
            && !self.outbox.awaited();
        if !waits {
            self.held_since = None;
            return None;
        }
        let since = *self.held_since.get_or_insert(now);
        let left = HOLD.saturating_sub(now.saturating_duration_since(since));
        (!left.is_zero()).then_some(left)
    }

    /// Bodies wanted ahead of demand; a place outside the listing is a
    /// broken client proxy (the session ends).
    fn want(&mut self, server: String, bodies: Vec<WantedAt>) -> Result<(), String> {
        if self.worker(&server).is_err() {
            warn!(%server, "the client wants bodies of a server it did not open; ignored");
            return Ok(());
        }
        let room = MAX_WANTED.saturating_sub(self.wanted.get(&server).map_or(0, VecDeque::len));
        let mut more = Vec::new();
        for w in bodies.into_iter().take(room) {
            let msg = self.replica.at(&server, w.at).map_err(|e| e.text)?;
            more.push(Wanted { msg, from: w.from });
        }
        self.wanted.entry(server).or_default().extend(more);
        Ok(())
    }

    /// The messages at these places of `server`'s listing; a place outside
    /// it is a broken client proxy (the session ends).
    fn unplace(&self, server: &str, at: Vec<Place>) -> Result<Vec<MessageId>, String> {
        if at.len() > MAX_DELETES {
            return Err(format!(
                "the client named {} messages in one batch; at most {MAX_DELETES} are accepted",
                at.len()
            ));
        }
        at.into_iter()
            .map(|a| self.replica.at(server, a).map_err(|e| e.text))
            .collect()
    }

    fn unplace_deletes(&self, ops: Vec<PlacedDelete>) -> Result<Vec<DeleteOp>, String> {
        ops.into_iter()
            .map(|op| {
                let msg = self.replica.at(&op.server, op.at).map_err(|e| e.text)?;
                // The edge's own replica gives the witness (`work::owe`).
                Ok(DeleteOp {
                    seq: op.seq,
                    server: op.server,
                    msg,
                    witness: None,
                })
            })
            .collect()
    }

    /// Starts a prefetch fetch on every server that has none in flight,
    /// while the outbox is under its fetch-ahead bound. Bodies the replica
    /// already holds are queued without a fetch.
    fn start_fetches(&mut self) {
        let servers: Vec<String> = self.wanted.keys().cloned().collect();
        for server in servers {
            while !self.busy.contains(&server) && self.outbox.unsent() < FETCH_AHEAD {
                let Some(w) = self.wanted.get_mut(&server).and_then(|l| l.pop_front()) else {
                    break;
                };
                let key = (server.clone(), w.msg.clone());
                let Ok(at) = self.replica.check(&server, &w.msg) else {
                    continue;
                };
                if self.sent.contains(&key)
                    || self.outbox.contains(&key)
                    || self.fetching.contains_key(&key)
                {
                    continue;
                }
                if let Some(body) = self.replica.body(&server, &w.msg) {
                    self.outbox.push(key, at, body, w.from, false, Vec::new());
                    continue;
                }
                self.fetch_body(key, Vec::new());
            }
        }
    }

    /// Sends the chunks the window lets out, up to [`BURST`] bytes, as one
    /// compressed unit at the level the line calls for; a body's last chunk
    /// answers its `Retr`s (in the same unit).
    async fn send_burst(&mut self, channel: &mut Channel<E>) -> Result<(), LinkEnd> {
        let rate = self.outbox.rate();
        self.compression
            .before_burst(&self.config.channel, rate, channel);
        // A frame this burst opens is sized for what the session may still
        // stream: the mailbox's bytes not streamed yet (a session streams
        // each body once unless asked again), or what is queued if more.
        // A session opening on a 40 KB mailbox then sets up a context for
        // 64 KiB, not the level's 3.7 MB (level 3) or 15 MB (level 9).
        let rest = self.mailbox_bytes.saturating_sub(self.outbox.streamed());
        channel.expect(rest.max(self.outbox.unsent() as u64));
        let mut bytes = 0;
        while bytes < BURST {
            let Some(next) = self.outbox.next_chunk(self.env.now()) else {
                break;
            };
            if let EdgeToClient::Chunk { data, .. } = &next.chunk {
                bytes += data.len();
            }
            queue(channel, &next.chunk)?;
            let Some((key, total, waiters)) = next.finished else {
                continue;
            };
            self.sent.insert(key.clone());
            if waiters.is_empty() {
                if self.config.broken(Broken::MarkPrefetchedRead) {
                    let _ = self.owe(&key.0, &key.1, Owed::Read, false, None).await;
                }
                self.ahead.insert(key);
            }
            for id in waiters {
                self.current = None;
                let result = Ok(Reply::Streamed { total });
                queue(channel, &EdgeToClient::Response { id, result })?;
            }
        }
        flush(&self.env, channel, self.config.timeouts.hello).await
    }

    /// Answers request `id` if it is still current (a worker's answer to
    /// a request asked again after a resume comes twice: the first serves
    /// it, the other is dropped here).
    async fn respond_current(
        &mut self,
        channel: &mut Channel<E>,
        id: u64,
        result: Result<Reply, OpError>,
    ) -> Result<(), LinkEnd> {
        if self.current != Some(id) {
            return Ok(());
        }
        self.current = None;
        self.respond(channel, id, result).await
    }

    async fn respond(
        &self,
        channel: &mut Channel<E>,
        id: u64,
        result: Result<Reply, OpError>,
    ) -> Result<(), LinkEnd> {
        let msg = EdgeToClient::Response { id, result };
        send(&self.env, channel, &msg, self.config.timeouts.hello).await
    }

    /// Starts queued requests while none is in progress. Those answered at
    /// once are answered here; a `Retr` or `Top` that waits becomes current.
    async fn start_requests(&mut self, channel: &mut Channel<E>) -> Result<(), LinkEnd> {
        while self.current.is_none() {
            let Some((id, server, op)) = self.queued.pop_front() else {
                return Ok(());
            };
            let again =
                matches!(op, Op::Append { .. }) && self.config.broken(Broken::AppendAgainOnResume);
            // Asked again after a resume: its answer was lost, not its effect.
            if let Some((_, result)) = self.answered.as_ref().filter(|(a, _)| *a == id && !again) {
                let result = result.clone();
                self.respond(channel, id, result).await?;
                continue;
            }
            // Asked again while its worker still stores it: its answer
            // comes when the server's does.
            if self.appending == Some(id) && !again {
                self.current = Some(id);
                continue;
            }
            let remember = matches!(op, Op::Dele { .. } | Op::Rset);
            if let Some(result) = self.request(id, &server, op).await {
                if remember {
                    self.answered = Some((id, result.clone()));
                }
                self.respond(channel, id, result).await?;
            }
        }
        Ok(())
    }

    /// One request: answered now (`Some`), or later by the stream or a
    /// fetch (`None`, and it is current).
    async fn request(&mut self, id: u64, server: &str, op: Op) -> Option<Result<Reply, OpError>> {
        match op {
            Op::Retr { msg } => {
                let at = match self.replica.check(server, &msg) {
                    Ok(at) => at,
                    Err(e) => return Some(Err(e)),
                };
                if self.config.broken(Broken::MarkReadBeforeDelivered) {
                    let _ = self.owe(server, &msg, Owed::Read, false, None).await;
                }
                self.current = Some(id);
                let key = (server.to_owned(), msg);
                if self.outbox.promote(&key, true, vec![id]) {
                    return None;
                }
                if let Some(waiters) = self.fetching.get_mut(&key) {
                    waiters.push(id);
                    return None;
                }
                if let Some(body) = self.replica.body(server, &key.1) {
                    self.outbox.push(key, at, body, 0, true, vec![id]);
                    return None;
                }
                self.fetch_body(key, vec![id]);
                None
            }
            Op::Top { msg, lines } => {
                if let Err(e) = self.replica.check(server, &msg) {
                    return Some(Err(e));
                }
                if let Some(body) = self.replica.body(server, &msg) {
                    return Some(Ok(Reply::Body(head(&body, lines))));
                }
                self.current = Some(id);
                self.spawn_fetch((server.to_owned(), msg), lines, Purpose::Top { id });
                None
            }
            Op::Dele { msg } => Some(self.dele(server, &msg).await),
            Op::Rset => Some(self.rset(server).await),
            Op::Append { flags, size } => self.append(id, server, flags, size),
            Op::Store { msg, add, flags } => self.store_flags(id, server, msg, add, flags),
            Op::Search { key } => self.search(id, server, key),
        }
    }

    fn worker(&self, server: &str) -> Result<&'a WorkerHandle, OpError> {
        worker(self.workers, server)
    }

    /// Hands `job` to `server`'s worker.
    fn errand(&self, server: &str, job: Job) -> Result<(), OpError> {
        self.worker(server)?.jobs.send(job).map_err(|_| internal())
    }

    /// Hands the job `make` builds to `server`'s worker, off the loop: its
    /// answer comes back through `done_rx`, as `done` makes it (a worker
    /// that ended without answering, as an internal error).
    fn errand_answered<T: Send + 'static>(
        &self,
        server: &str,
        make: impl FnOnce(oneshot::Sender<Result<T, OpError>>) -> Job,
        done: impl FnOnce(Result<T, OpError>) -> Done + Send + 'static,
    ) -> Result<(), OpError> {
        let (reply, answer) = oneshot::channel();
        self.errand(server, make(reply))?;
        let back = self.done_tx.clone();
        tokio::spawn(async move {
            let result = answer.await.unwrap_or_else(|_| Err(internal()));
            let _ = back.send(done(result));
        });
        Ok(())
    }
}

/// A write to the channel, abandoned with the channel once the session is
/// asked to end. A client proxy that moved on to a newer session no longer
/// reads this one, and the write's progress deadline (`timeouts.hello`)
/// would keep the servers' locks from the newer session meanwhile, which
/// then meets `[IN-USE]`. Only writes are raced: a journal commit or a
/// worker's errand is never cut in half.
async fn or_ended<E: Env>(
    shutdown: &mut watch::Receiver<bool>,
    end: &mut watch::Receiver<bool>,
    write: impl Future<Output = Result<(), LinkEnd>>,
) -> Option<Served<E>> {
    tokio::select! {
        biased;
        _ = shutdown_requested(shutdown) => Some(Served::End(Ending::Shutdown)),
        _ = superseded(end) => Some(Served::End(Ending::Superseded)),
        written = write => written.err().map(|e| Served::Cut(e.to_string())),
    }
}

/// Resolves once a newer session of the same client asked this one to end.
async fn superseded(end: &mut watch::Receiver<bool>) {
    if end.wait_for(|end| *end).await.is_err() {
        std::future::pending::<()>().await;
    }
}
