//! Taking a session up again on a new channel after its line was cut.
//!
//! A cut used to end the session: the mail client got an error, its
//! replica and server sessions were dropped, and a body half across a slow
//! line started again from its first byte in the next session. Now a cut
//! line leaves the session *detached* for the resume window while the
//! client proxy reconnects; the mail client only waits.
//!
//! ```text
//!  attached ──line fails / silent──▶ detached ──window passes──▶ ends as a cut
//!     ▲                                  │                     (owed work done,
//!     └──────── Resume with a valid proof┘                      every server QUIT)
//! ```
//!
//! **Proof.** The session's secret went to the client proxy in `Ticket`
//! (uncompressed, never beside mail). `Resume` carries
//! `causeway_wire::binding::proof` of it over the new channel's handshake
//! hash, from the same client key (the registry checks the key; the session
//! checks the proof). The answer `Resumed` carries a new secret: each
//! secret opens at most one resume, and a proof seen on one channel is
//! worth nothing on another. A `Resume` that comes while the old channel
//! still looks alive wins (the client proxy saw the cut first): the old
//! channel is dropped, closing its stream.
//!
//! **State, not replay.** Nothing the old channel carried is sent again as
//! it was. The client proxy says what it holds: the body bytes it received
//! in the session (the window restarts there) and the bodies it still
//! wants, each from the byte it holds ([`Outbox::resume`]); a body the old
//! channel carried to its end and the cut lost part of goes first, as it
//! did before everything still queued. The edge says
//! how many read marks it received, so the client proxy sends again the
//! ones after them; deletes the journal holds are `Held` again when a batch
//! comes twice; requests in progress are forgotten (the client proxy asks
//! again with the same id, and a `Dele` or `Rset` whose answer was lost is
//! answered from [`Serving::answered`], not done twice).
//!
//! **Compression.** A detached session frees its compression context and
//! its place among the bulk-level ones, keeping only the plaintext its open
//! frame had sent (`causeway_wire::history`). The new channel's stream
//! starts primed with what the client proxy proves it holds of that frame
//! (its `Resume` names it by digest), so the ratio holds across the cut.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use causeway_net::Env;
use causeway_proto::session::{EdgeToClient, SECRET_LEN, ServerOutcome, ServerWants, Wanted};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_wire::SecureChannel;
use causeway_wire::binding;
use causeway_wire::history::Mark;
use causeway_wire::link::{close, send};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Channel, Ending, Serving, superseded};
use crate::compression::Compression;
use crate::outbox::Key;
use crate::registry::Registration;
use causeway_net::shutdown_requested;

/// A channel handed over to resume a session, with what its `Resume` said.
pub(crate) struct Attach<S> {
    pub channel: SecureChannel<S>,
    pub version: u16,
    pub proof: Vec<u8>,
    pub received: u64,
    pub wants: Vec<ServerWants>,
    pub history: Option<Mark>,
}

/// Bodies a resume wants, by server.
type WantedBy = BTreeMap<String, Vec<Wanted>>;

/// What a session that ended with `Quit` answers again, should its `Bye`
/// be lost (kept and served by `crate::farewell`).
pub(crate) struct Farewell {
    /// The latest secret, and the one before it while the proxy may not
    /// have had the latest.
    pub secrets: Vec<[u8; SECRET_LEN]>,
    pub marks: u64,
    /// Delete batches the journal held, by sequence number.
    pub held: BTreeSet<u64>,
    pub servers: Vec<ServerOutcome>,
}

/// The secret among `secrets` that `proof` proves on the channel with
/// `binding`: the resume is this session's client proxy.
pub(crate) fn proven(
    secrets: impl IntoIterator<Item = [u8; SECRET_LEN]>,
    binding: &[u8; 32],
    proof: &[u8],
) -> Option<[u8; SECRET_LEN]> {
    secrets
        .into_iter()
        .find(|s| binding::verify(s, binding, proof))
}

/// A fresh session secret.
pub(crate) fn new_secret<E: Env>(env: &E) -> [u8; SECRET_LEN] {
    let mut s = [0; SECRET_LEN];
    env.rng().fill_bytes(&mut s);
    s
}

impl<E: Env> Serving<'_, E> {
    /// Waits, detached, for a resume: `Ok` once one re-attached the session
    /// to `channel`; else how it ended (the window passed without one, a
    /// newer session ended it, shutdown, or it may not wait at all).
    pub(super) async fn detached(
        &mut self,
        channel: &mut Channel<E>,
        reason: String,
        shutdown: &mut watch::Receiver<bool>,
        registration: &mut Registration<Attach<E::Stream>>,
    ) -> Result<(), Ending> {
        let window = self.config.resume.window;
        if self.secret.is_none() || window.is_zero() || !self.heard {
            return Err(Ending::Cut(reason));
        }
        let Some(_detached) = registration.detach(self.config.resume.limits) else {
            warn!(%reason, "the line was cut and this client has as many sessions waiting \
                for a resume as it may (resume limits): ending the session now");
            return Err(Ending::Cut(reason));
        };
        info!(%reason, window_s = window.as_secs(),
            "the line was cut; the session waits for its client proxy to resume it");
        // A detached session holds no compression context, nor a place
        // among the bulk-level ones; only the recent plaintext it sent.
        self.parked = Some(channel.park().sent);
        self.compression = Compression::new(self.state.clone(), self.env.now());
        let until = self.env.now() + window;
        loop {
            let left = until.saturating_duration_since(self.env.now());
            tokio::select! {
                biased;
                _ = shutdown_requested(shutdown) => return Err(Ending::Shutdown),
                _ = superseded(&mut registration.end) => return Err(Ending::Superseded),
                Some(a) = registration.attach.recv() => {
                    if self.attach(channel, *a).await {
                        return Ok(());
                    }
                }
                _ = self.env.sleep(left) => {
                    return Err(Ending::Cut(format!(
                        "{reason}; no resume within {} s", window.as_secs()
                    )));
                }
            }
        }
    }

    /// Takes up the session on `a`'s channel if its proof holds: answers
    /// `Resumed` (with a new secret) and replaces `channel`. A proof that
    /// fails is refused on its own channel and the session goes on as it
    /// was. Returns whether the session moved.
    pub(super) async fn attach(&mut self, channel: &mut Channel<E>, a: Attach<E::Stream>) -> bool {
        let Attach {
            channel: mut fresh,
            version,
            proof,
            received,
            wants,
            history,
        } = a;
        let (wants, proven) = match self.check(version, &proof, fresh.binding(), wants) {
            Ok(checked) => checked,
            Err(reason) => {
                warn!(%reason, "refused a resume");
                let error = OpError::new(Some(ErrCode::SysPerm), reason);
                let within = self.config.timeouts.hello;
                let env = self.env.clone();
                // Off the session's loop: a slow or hostile peer must not
                // hold up the session it failed to take.
                tokio::spawn(async move {
                    let msg = EdgeToClient::Refused { error };
                    if send(&env, &mut fresh, &msg, within).await.is_ok() {
                        close(&env, fresh, "resume refused", within).await;
                    }
                });
                return false;
            }
        };
        // The old channel, if it still looked alive, is given up here: the
        // client proxy has moved on from it.
        let parked = self.parked.get_or_insert_with(|| channel.park().sent);
        let primer = history.as_ref().and_then(|m| parked.primer(m));
        let primed_bytes = primer.as_ref().map_or(0, Vec::len);
        let primed = primer.is_some_and(|p| fresh.prime_sending(p));
        let secret = new_secret(&self.env);
        let resumed = EdgeToClient::Resumed {
            secret: secret.to_vec(),
            marks: self.marks,
            primed,
            uploaded: self.uploads.held(),
        };
        if let Err(e) = send(&self.env, &mut fresh, &resumed, self.config.timeouts.hello).await {
            warn!(error = %e, "a resume failed before it was answered; the client proxy tries again");
            return false;
        }
        // The proxy may not get `Resumed` (a cut just after it went out):
        // the secret it proved stays good until it speaks on this channel.
        self.previous = Some(proven);
        self.secret = Some(secret);
        self.parked = None;
        *channel = fresh;
        let partial = self.take_up(received, wants);
        self.compression = Compression::new(self.state.clone(), self.env.now());
        self.state.resumed(partial, primed);
        info!(
            received,
            partial_bodies = partial,
            primed_bytes = if primed { primed_bytes } else { 0 },
            "the client proxy resumed the session"
        );
        true
    }

    /// The resume's version and proof, and the bodies it wants by key; a
    /// place outside the listing refuses it.
    fn check(
        &self,
        version: u16,
        proof: &[u8],
        binding: &[u8; 32],
        wants: Vec<ServerWants>,
    ) -> Result<(WantedBy, [u8; SECRET_LEN]), String> {
        if version != PROTOCOL_VERSION {
            return Err(format!(
                "the client proxy resumes with protocol version {version}, this edge speaks {PROTOCOL_VERSION}"
            ));
        }
        let Some(secret) = &self.secret else {
            return Err("this session is not resumable".into());
        };
        // The latest secret, or the one before it while the proxy may
        // not have the latest (see `Serving::previous`).
        let Some(proven) = proven(
            [Some(*secret), self.previous].into_iter().flatten(),
            binding,
            proof,
        ) else {
            return Err("the resume's proof does not hold (an old secret, or not this session's client proxy)".into());
        };
        let mut by_server: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
        let mut n = 0;
        for w in wants {
            n += w.bodies.len();
            if n > causeway_proto::session::MAX_WANTED {
                return Err("the resume wants more bodies than a session may".into());
            }
            let list = by_server.entry(w.server.clone()).or_default();
            for b in w.bodies {
                let msg = self.replica.at(&w.server, b.at).map_err(|e| e.text)?;
                list.push(Wanted { msg, from: b.from });
            }
        }
        Ok((by_server, proven))
    }

    /// What the new channel starts from: the client proxy's bodies and
    /// counts (see the module doc). Returns how many bodies continue
    /// part-way.
    fn take_up(&mut self, received: u64, wants: BTreeMap<String, Vec<Wanted>>) -> usize {
        let holds: BTreeMap<Key, u64> = wants
            .iter()
            .flat_map(|(server, list)| {
                list.iter()
                    .map(move |w| ((server.clone(), w.msg.clone()), w.from))
            })
            .collect();
        let mut partial = self.outbox.resume(received, |k| holds.get(k).copied());
        // Bodies sent whole before the cut and lost with it, which the
        // client proxy holds part of: they came before everything still
        // queued, so they go first again, from the byte it holds. Left to
        // the prefetch they would wait behind megabytes queued ahead (its
        // bound), while the mail client reading one hears nothing (seed
        // 273611434: 300 s).
        let lost: Vec<(Key, u64)> = holds
            .iter()
            .filter(|(k, from)| **from > 0 && !self.outbox.contains(k))
            .map(|(k, from)| (k.clone(), *from))
            .collect();
        for (key, from) in lost.into_iter().rev() {
            let (Ok(at), Some(body)) = (
                self.replica.check(&key.0, &key.1),
                self.replica.body(&key.0, &key.1),
            ) else {
                continue;
            };
            self.outbox.push(key, at, body, from, true, Vec::new());
            partial += 1;
        }
        self.sent.retain(|k| !holds.contains_key(k));
        self.ahead.retain(|k| !holds.contains_key(k));
        for waiters in self.fetching.values_mut() {
            waiters.clear();
        }
        self.queued.clear();
        self.current = None;
        self.wanted = wants
            .into_iter()
            .map(|(server, list)| (server, VecDeque::from(list)))
            .collect();
        partial
    }
}
