//! What comes from the edge: the next message, and the waits for an
//! answer or a body, with the body stream, `Held` and keepalive `Pong`s
//! taken in on the way. Every wait is on silence (no byte moved, or no
//! body byte when a body is awaited), never on size.

use std::time::Duration;

use causeway_net::Env;
use causeway_pop3::multiline::head_of_prefix;
use causeway_proto::line_ends;
use causeway_proto::session::{ClientToEdge, EdgeToClient};
use causeway_wire::Received;
use causeway_wire::link::LinkEnd;

use super::{CREDIT_EVERY, EdgeLink, JUMP_AFTER, LineCut, STREAM_QUIET, out_of_turn, send};
use crate::mirror::Key;

impl<E: Env> EdgeLink<E> {
    /// The next message from the edge, whatever it is: EOF or a close frame
    /// is a cut. No timeout of its own (silence is what pings are for), and
    /// cancel-safe, so it can race the mail client's next command; hand
    /// what it returns to [`EdgeLink::unsolicited`].
    pub async fn next_message(&mut self) -> Result<EdgeToClient, LineCut> {
        match self.channel.recv::<EdgeToClient>().await {
            Ok(Received::Msg(m)) => Ok(m),
            Ok(Received::Closed { reason }) => Err(LineCut::closed(&reason)),
            Err(e) => Err(e.into()),
        }
    }

    /// A message that came while the mail client was idle: a body chunk or
    /// a due `Pong` is taken in; anything else ends the session.
    pub async fn unsolicited(&mut self, m: EdgeToClient) -> Result<(), LineCut> {
        match self.absorb(m).await? {
            None => Ok(()),
            Some(m) => Err(out_of_turn("the mail client's next command", &m)),
        }
    }

    /// Takes in what needs no answer: a body chunk (acknowledged with
    /// `Window` every [`CREDIT_EVERY`] bytes) or the
    /// `Pong` to a keepalive. Returns anything else.
    pub(super) async fn absorb(
        &mut self,
        m: EdgeToClient,
    ) -> Result<Option<EdgeToClient>, LineCut> {
        match m {
            EdgeToClient::Chunk {
                server,
                at,
                offset,
                total,
                lf,
                data,
            } => {
                let data = line_ends::decode(lf, data);
                let max = self.bodies.max_body;
                let Some(msg) = self.places.id(&server, at).cloned() else {
                    return Err(LineCut::broken(format!(
                        "the edge broke the body stream: a chunk for place {at} of {server}, which the listing does not have"
                    )));
                };
                let key = (server, msg);
                let tee = self.tee.as_ref().filter(|t| t.key() == &key).cloned();
                self.bodies
                    .mirror
                    .chunk(key, offset, total, &data, max)
                    .map_err(|e| LineCut::broken(format!("the edge broke the body stream: {e}")))?;
                if let Some(tee) = tee {
                    tee.offer(offset, &data);
                }
                let received = self.bodies.mirror.received;
                if !self.quitting && received - self.credited >= CREDIT_EVERY {
                    let credit = ClientToEdge::Window { received };
                    send(&self.env, &mut self.channel, &credit, self.request_timeout).await?;
                    self.credited = received;
                }
                Ok(None)
            }
            EdgeToClient::Pong { nonce } if self.pong_was_due(nonce) => Ok(None),
            // The servers are still committing: the line is alive.
            EdgeToClient::Finishing if self.quitting => Ok(None),
            EdgeToClient::Held { seqs } => {
                if let Some(d) = &mut self.deletes {
                    d.held(&seqs).await;
                }
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    /// The next message from the edge that is not the `Pong` to a
    /// keepalive; fails once nothing at all arrived for `within`. With `keepalive`, it pings the edge every `ping_interval`
    /// while it waits: while a body crosses a slow line the edge hears
    /// nothing else from us, and would otherwise take the line for dead.
    pub(super) async fn next_answer(
        &mut self,
        what: &'static str,
        within: Duration,
        keepalive: bool,
    ) -> Result<EdgeToClient, LineCut> {
        match self.wait(what, within, keepalive, None).await? {
            Some(m) => Ok(m),
            None => unreachable!("no body to wait for"),
        }
    }

    /// Waits until `key`'s body is in the mirror whole, or with `top`,
    /// until it holds the answer to `TOP n top` (see
    /// [`causeway_pop3::multiline::head_of_prefix`]), taking in the stream
    /// (and pinging) meanwhile; any other message is out of turn.
    pub(super) async fn wait_for_body(
        &mut self,
        key: &Key,
        top: Option<u32>,
    ) -> Result<(), LineCut> {
        let within = self.request_timeout;
        match self
            .wait("the rest of a body", within, true, Some((key, top)))
            .await?
        {
            None => Ok(()),
            Some(m) => Err(out_of_turn("the rest of a body", &m)),
        }
    }

    /// Takes in the stream until `key`'s body starts (or is whole), until
    /// no chunk came for [`STREAM_QUIET`], or until more than [`JUMP_AFTER`]
    /// bytes are ahead of it (another body started).
    pub(super) async fn wait_for_start(&mut self, key: &Key) -> Result<(), LineCut> {
        loop {
            let got = self
                .env
                .timeout(
                    STREAM_QUIET,
                    "the body stream",
                    self.channel.recv::<EdgeToClient>(),
                )
                .await;
            match got {
                Ok(Ok(Received::Msg(m))) => {
                    if let Some(m) = self.absorb(m).await? {
                        return Err(out_of_turn("the body stream", &m));
                    }
                    let m = &self.bodies.mirror;
                    if m.arriving(key) || m.complete(key).is_some() {
                        return Ok(());
                    }
                    if self.planner.bytes_ahead(key, &self.bodies.mirror) > JUMP_AFTER {
                        return Ok(());
                    }
                }
                Ok(Ok(Received::Closed { reason })) => {
                    return Err(LineCut::closed(&reason));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Ok(()),
            }
        }
    }

    /// The loop of [`Self::next_answer`] and [`Self::wait_for_body`]:
    /// returns the next message not absorbed, or `None` once `body` (if
    /// any) is whole.
    pub(super) async fn wait(
        &mut self,
        what: &'static str,
        within: Duration,
        keepalive: bool,
        body: Option<(&Key, Option<u32>)>,
    ) -> Result<Option<EdgeToClient>, LineCut> {
        let counters = self.channel.counters();
        let step = if keepalive {
            self.ping_interval.min(within)
        } else {
            within
        };
        // Waiting for a body, progress is body bytes (of any body: another
        // may go first); a `Pong` alone does not make a stalled stream live.
        let progress = |link: &Self| match body {
            Some(_) => link.bodies.mirror.received,
            None => counters.moved_in(),
        };
        let mut seen = progress(self);
        let mut silent = Duration::ZERO;
        loop {
            let got = self
                .env
                .timeout(step, what, self.channel.recv::<EdgeToClient>())
                .await;
            match got {
                Ok(Ok(Received::Msg(m))) => {
                    if let Some(m) = self.absorb(m).await? {
                        return Ok(Some(m));
                    }
                    if body.is_some_and(|(k, top)| {
                        let m = &self.bodies.mirror;
                        !m.arriving(k)
                            || top.is_some_and(|n| head_of_prefix(m.so_far(k), n).is_some())
                    }) {
                        return Ok(None);
                    }
                }
                Ok(Ok(Received::Closed { reason })) => {
                    return Err(LineCut::closed(&reason));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    let now = progress(self);
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

    pub(super) fn pong_was_due(&mut self, nonce: u64) -> bool {
        let due = self.pongs_due.contains(&nonce);
        self.pongs_due.retain(|&n| n != nonce);
        due
    }
}
