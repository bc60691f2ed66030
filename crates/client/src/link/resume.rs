//! Taking the edge session up again after a cut, while the mail client
//! waits.
//!
//! A cut used to end the mail client's session with an error (and a
//! half-received body started again from its first byte next time). Now
//! the proxy reconnects by itself, with doubling pauses, for up to
//! `timeouts.resume`, and re-attaches to its edge session, which waited
//! detached (see the edge's `serving::resume`). The mail client only sees
//! its answer come later.
//!
//! - **Proof.** A fresh handshake with the proxy's own key, then `Resume`
//!   with `causeway_wire::binding::proof` of the session's latest secret
//!   over this channel's handshake hash. The secret itself never crosses
//!   the line again; `Resumed` brings the next one.
//! - **State.** `Resume` says what the proxy holds: the body bytes it
//!   received in the session and, per server, the bodies it still wants,
//!   each from the byte it holds, so a body half across continues from its
//!   offset. `Resumed` says how many read marks the edge received, and the
//!   proxy sends the rest again; deletes the edge has not said it holds are
//!   sent again (it answers `Held` for those it had). The request waiting
//!   for its answer is asked again with its id.
//! - **Compression.** The cut channel's contexts are freed at once; what it
//!   had received of the edge's open frame is offered in `Resume` (by
//!   digest, `causeway_wire::history`), and when `Resumed` says the edge
//!   primed its stream with it, the new channel's receiving side is primed
//!   with the same bytes before anything else is read.
//! - **What is not resumed**: a session the edge ended on purpose (a close
//!   frame), or one whose peer broke the protocol; and nothing at all when
//!   the edge refuses (it restarted, the window passed): the mail client
//!   then gets the error, as before, and the next session supersedes this
//!   one.

use std::time::Duration;

use causeway_net::Env;
use causeway_proto::PROTOCOL_VERSION;
use causeway_proto::session::{ClientToEdge, EdgeToClient, ServerWants, WantedAt};
use causeway_wire::binding;

use super::{CutKind, EdgeLink, LineCut, recv, send};
use crate::broken::Broken;

/// The first pause between two attempts; it doubles up to [`MAX_PAUSE`].
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(500);
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(20);

/// Why one attempt did not resume.
enum Attempt {
    /// The edge answered, and will not: give up.
    Refused(String),
    /// No answer (the line is still down): try again after a pause.
    Failed(String),
}

impl<E: Env> EdgeLink<E> {
    /// After `cut`, re-attaches to the edge session on a new channel, or
    /// gives `cut` back (with why not) when it cannot.
    pub async fn resume(&mut self, cut: LineCut) -> Result<(), LineCut> {
        let within = self.config.timeouts.resume;
        let Some(_) = self
            .secret
            .filter(|_| !within.is_zero() && cut.kind == CutKind::Lost)
        else {
            return Err(cut);
        };
        tracing::info!(reason = %cut, "line to the edge lost; resuming the session");
        // The cut channel's contexts are freed; what it had received of the
        // edge's frame may prime the next one.
        if self.parked.is_none() {
            self.parked = Some(self.channel.park().received);
        }
        let until = self.env.now() + within;
        let mut pause = FIRST_PAUSE;
        loop {
            let why = match self.attempt().await {
                Ok(()) => {
                    self.state.resumed();
                    tracing::info!("edge session resumed");
                    return Ok(());
                }
                Err(Attempt::Refused(why)) => {
                    tracing::warn!(reason = %why, "the edge would not resume the session");
                    return Err(LineCut {
                        kind: cut.kind,
                        why: format!("{cut}; the edge would not resume: {why}"),
                    });
                }
                Err(Attempt::Failed(why)) => why,
            };
            let left = until.saturating_duration_since(self.env.now());
            if left.is_zero() {
                tracing::warn!(reason = %why, secs = within.as_secs(),
                    "could not resume the edge session in time; the mail client gets the error");
                return Err(LineCut {
                    kind: cut.kind,
                    why: format!("{cut}; not resumed within {} s: {why}", within.as_secs()),
                });
            }
            tracing::debug!(reason = %why, "resume attempt failed; trying again");
            self.env.sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// One attempt: reach the edge, prove the session, take up its state.
    async fn attempt(&mut self) -> Result<(), Attempt> {
        let secret = self.secret.expect("resume checked for a secret");
        let mut channel = Self::reach(&self.env, &self.config)
            .await
            .map_err(Attempt::Failed)?;
        let resume = ClientToEdge::Resume {
            version: PROTOCOL_VERSION,
            session: self.session.clone(),
            proof: binding::proof(&secret, channel.binding()).to_vec(),
            received: self.bodies.mirror.received,
            wants: self.still_wanted(),
            history: self.parked.as_ref().and_then(|h| h.mark()),
        };
        let t = &self.config.timeouts;
        let answer = match send(&self.env, &mut channel, &resume, t.request).await {
            Ok(()) => recv(&self.env, &mut channel, t.welcome, "the edge's Resumed").await,
            Err(e) => Err(e),
        };
        let (secret, marks, primed, uploaded) = match answer {
            Ok(EdgeToClient::Resumed {
                secret,
                marks,
                primed,
                uploaded,
            }) => (secret, marks, primed, uploaded),
            Ok(EdgeToClient::Refused { error }) => return Err(Attempt::Refused(error.text)),
            Err(LineCut {
                kind: CutKind::Closed,
                why,
            }) => return Err(Attempt::Refused(why)),
            Ok(other) => return Err(Attempt::Refused(super::out_of_turn("Resumed", &other).why)),
            Err(cut) => return Err(Attempt::Failed(cut.why)),
        };
        let Ok(secret) = secret.try_into() else {
            return Err(Attempt::Refused("the edge sent a malformed secret".into()));
        };
        if primed && !self.config.broken(Broken::UnprimedResume) {
            // Before anything compressed is read from the new channel.
            let primer = self.parked.as_ref().and_then(|h| h.offered());
            if !primer.is_some_and(|p| channel.prime_receiving(p)) {
                return Err(Attempt::Refused(
                    "the edge primed its stream with history this proxy did not offer".into(),
                ));
            }
        }
        self.take_up(channel, secret, marks);
        self.upload_resumed(uploaded);
        Ok(())
    }

    /// Per server, the bodies still wanted, each from the byte held: those
    /// the prefetch plan wants and the mirror does not hold whole, and
    /// those arriving for a request.
    fn still_wanted(&self) -> Vec<ServerWants> {
        let mirror = &self.bodies.mirror;
        let mut wants: Vec<ServerWants> = Vec::new();
        let keys = self.planner.wanted().chain(mirror.arriving_keys());
        let mut seen = std::collections::BTreeSet::new();
        for key in keys {
            if mirror.complete(key).is_some() || !seen.insert(key) {
                continue;
            }
            let Some(at) = self.places.place(&key.0, &key.1) else {
                continue;
            };
            let w = WantedAt {
                at,
                from: mirror.held(key),
            };
            match wants.iter_mut().find(|s| s.server == key.0) {
                Some(s) => s.bodies.push(w),
                None => wants.push(ServerWants {
                    server: key.0.clone(),
                    bodies: vec![w],
                }),
            }
        }
        wants
    }

    /// The new channel replaces the old; what the cut may have lost is
    /// queued again.
    fn take_up(
        &mut self,
        channel: super::Reached<E>,
        secret: [u8; causeway_proto::session::SECRET_LEN],
        marks: u64,
    ) {
        self.channel = channel;
        self.secret = Some(secret);
        self.parked = None;
        self.pongs_due.clear();
        self.sent = (0, self.env.now());
        self.credited = self.bodies.mirror.received;
        // The edge got the first `marks` of the session's marks: those of
        // `marks_sent` after them are sent again (and recorded anew), the
        // ones before are confirmed and forgotten.
        let from =
            usize::try_from(marks.saturating_sub(self.marks_confirmed)).unwrap_or(usize::MAX);
        let lost: Vec<(String, causeway_proto::session::Place)> = self
            .marks_sent
            .drain(from.min(self.marks_sent.len())..)
            .collect();
        self.marks_sent.clear();
        self.marks_confirmed = marks;
        for (server, at) in lost {
            if let Some(msg) = self.places.id(&server, at).cloned() {
                self.marks.entry(server).or_default().push(msg);
            }
        }
        if let Some(d) = &mut self.deletes {
            d.send_again();
        }
    }
}
