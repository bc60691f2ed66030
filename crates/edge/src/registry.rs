//! The sessions now running, by id: how a client proxy that saw its line
//! die reaches the session it left, to end it (supersede) or to take it up
//! again (resume).
//!
//! **Supersede.** When the line is cut the edge cannot tell a dead line from
//! a quiet mail client, so the old session lives on until `client_idle`
//! passes, and with it its server sessions. Servers with an exclusive
//! maildrop lock (most POP3 servers) then answer the user's reconnect with
//! `[IN-USE]` for that whole time: after every cut the user waits 90 s for
//! mail. The client proxy does know: it saw the line die. So its next
//! `Hello` names the sessions it lost (`supersedes`), and the edge ends each
//! of them as on a cut (acknowledged work is committed, every server gets
//! its QUIT) and waits for them to finish before it opens the servers again.
//! A session that does not finish in time is left to finish on its own: the
//! new session then opens as it would have without this.
//!
//! **Resume.** A client proxy that still has the mail client waiting sends
//! `Resume` instead, on a fresh channel; the registry hands that channel to
//! the session ([`Registry::attach`]), which checks the proof itself (it
//! holds the secret) and carries on over it. While its line is down a
//! session is *detached*; how many may be is capped per client key and in
//! all ([`Registry::detach`]), so held server sessions cannot pile up.
//!
//! Only the same client key may end or attach to a session, so a guessed
//! session id is worth nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_net::Env;
use causeway_wire::PublicKey;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

/// The sessions now running, by id. Shared by all sessions of one edge;
/// `A` is what a resume hands over (a channel and its `Resume`).
pub(crate) struct Registry<A> {
    running: Arc<Mutex<Running<A>>>,
}

impl<A> Clone for Registry<A> {
    fn clone(&self) -> Self {
        Self {
            running: self.running.clone(),
        }
    }
}

impl<A> Default for Registry<A> {
    fn default() -> Self {
        Self {
            running: Arc::new(Mutex::new(Running {
                sessions: BTreeMap::new(),
                by_nonce: BTreeMap::new(),
                detached: BTreeMap::new(),
            })),
        }
    }
}

struct Running<A> {
    sessions: BTreeMap<String, Entry<A>>,
    /// Each running session's id by the nonce of the `Hello` that opened
    /// it: a client proxy whose `Welcome` a cut lost knows no other name.
    by_nonce: BTreeMap<String, String>,
    /// Detached sessions per client key (absent: none).
    detached: BTreeMap<PublicKey, usize>,
}

/// How many sessions may wait detached for a resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetachLimits {
    pub per_client: usize,
    pub total: usize,
}

/// A session's leave to wait detached; gives its place back when dropped.
pub(crate) struct Detached<A> {
    registry: Registry<A>,
    client: PublicKey,
}

impl<A> Drop for Detached<A> {
    fn drop(&mut self) {
        let mut running = self.registry.running();
        if let Some(n) = running.detached.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                running.detached.remove(&self.client);
            }
        }
    }
}

/// Hand-overs waiting for a session at most: a client proxy resumes one at
/// a time, so more are a broken or hostile peer (refused).
const ATTACH_QUEUE: usize = 2;

struct Entry<A> {
    client: PublicKey,
    /// Channels that would resume the session. Boxed: the channel's first
    /// block holds 32 slots from the start, which for a whole connection
    /// was 28 KB of every idle session (#18).
    attach: mpsc::Sender<Box<A>>,
    /// Set to ask the session to end.
    end: watch::Sender<bool>,
    /// Never written: it reports "changed" (with an error) once the
    /// session's [`Registration`] is dropped, i.e. once it has finished.
    finished: watch::Receiver<()>,
}

/// A running session's place in the registry; dropping it (after the
/// session's servers were finished) removes it and wakes whoever waits.
pub(crate) struct Registration<A> {
    registry: Registry<A>,
    id: String,
    nonce: String,
    client: PublicKey,
    /// Becomes true when a newer session of the same client ends this one.
    pub end: watch::Receiver<bool>,
    /// Channels handed over to resume this session.
    pub attach: mpsc::Receiver<Box<A>>,
    _finished: watch::Sender<()>,
}

impl<A> Registration<A> {
    /// Leave to wait detached for a resume, within `limits`; `None` when
    /// this client, or the edge, already has as many detached as it may.
    pub(crate) fn detach(&self, limits: DetachLimits) -> Option<Detached<A>> {
        let mut running = self.registry.running();
        let total: usize = running.detached.values().sum();
        let mine = running.detached.get(&self.client).copied().unwrap_or(0);
        if mine >= limits.per_client || total >= limits.total {
            return None;
        }
        *running.detached.entry(self.client).or_default() += 1;
        Some(Detached {
            registry: self.registry.clone(),
            client: self.client,
        })
    }
}

impl<A> Registry<A> {
    fn running(&self) -> std::sync::MutexGuard<'_, Running<A>> {
        // Entries are inserted or removed in one step: consistent after a
        // panic elsewhere.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Session `id`, opened by a `Hello` with `nonce`, of `client`.
    pub(crate) fn register(&self, id: &str, nonce: &str, client: PublicKey) -> Registration<A> {
        let (end_tx, end_rx) = watch::channel(false);
        let (finished_tx, finished_rx) = watch::channel(());
        let (attach_tx, attach_rx) = mpsc::channel(ATTACH_QUEUE);
        let mut running = self.running();
        // A nonce is fresh for every Hello; one seen before (a broken or
        // hostile peer) names the first session only.
        let nonce = if nonce.is_empty() || running.by_nonce.contains_key(nonce) {
            String::new()
        } else {
            running.by_nonce.insert(nonce.to_owned(), id.to_owned());
            nonce.to_owned()
        };
        running.sessions.insert(
            id.to_owned(),
            Entry {
                client,
                attach: attach_tx,
                end: end_tx,
                finished: finished_rx,
            },
        );
        drop(running);
        Registration {
            registry: self.clone(),
            id: id.to_owned(),
            nonce,
            client,
            end: end_rx,
            attach: attach_rx,
            _finished: finished_tx,
        }
    }

    /// Hands `a` to session `id` if it is running and belongs to `client`;
    /// else gives it back (no such session of this client, or it has
    /// hand-overs enough waiting).
    pub(crate) fn attach(&self, id: &str, client: &PublicKey, a: A) -> Result<(), A> {
        let running = self.running();
        match running.sessions.get(id) {
            Some(e) if e.client == *client => e.attach.try_send(Box::new(a)).map_err(|e| match e {
                mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => *a,
            }),
            _ => Err(a),
        }
    }

    /// While session `id` of `client` still runs (it may be finishing its
    /// servers after `Quit`, taking no resume any more): a watch that
    /// reports a change once it has finished.
    pub(crate) fn running_of(&self, id: &str, client: &PublicKey) -> Option<watch::Receiver<()>> {
        let running = self.running();
        running
            .sessions
            .get(id)
            .filter(|e| e.client == *client)
            .map(|e| e.finished.clone())
    }

    /// The ids of `client`'s running sessions.
    pub(crate) fn sessions_of(&self, client: &PublicKey) -> Vec<String> {
        let running = self.running();
        running
            .sessions
            .iter()
            .filter(|(_, e)| e.client == *client)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Asks each of `old` (by id, or by the nonce of its `Hello`) that
    /// belongs to `client` to end, then waits (at most
    /// `within` in all) until they have finished. Returns how many were
    /// ended.
    /// Ids that are unknown (already finished) or belong to another client
    /// are passed over.
    pub(crate) async fn supersede<E: Env>(
        &self,
        env: &E,
        session: &str,
        client: &PublicKey,
        old: &[String],
        within: Duration,
    ) -> usize {
        let mut waits = Vec::new();
        {
            let running = self.running();
            for name in old {
                let id = running.by_nonce.get(name).unwrap_or(name);
                match running.sessions.get(id) {
                    Some(e) if e.client == *client && id != session => {
                        e.end.send_replace(true);
                        waits.push((id.clone(), e.finished.clone()));
                    }
                    Some(_) => warn!(
                        session, old = %id,
                        "a client named a session that is not its own to end; ignored"
                    ),
                    None => {}
                }
            }
        }
        let ended = waits.len();
        for (id, mut finished) in waits {
            info!(session, old = %id, "ending a session its client lost (line cut)");
            let done = env.timeout(within, "a superseded session to finish", finished.changed());
            if done.await.is_err() {
                warn!(
                    session, old = %id,
                    "the superseded session is still finishing its servers; \
                     opening anyway (a server may report its mailbox in use)"
                );
            }
        }
        ended
    }
}

impl<A> Drop for Registration<A> {
    fn drop(&mut self) {
        let mut running = self.registry.running();
        running.sessions.remove(&self.id);
        if !self.nonce.is_empty() {
            running.by_nonce.remove(&self.nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_net::TokioEnv;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; causeway_wire::KEY_LEN])
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_session_is_watched_only_by_its_own_client() {
        let reg = Registry::<()>::default();
        let session = reg.register("a", "", key(1));
        assert!(reg.running_of("a", &key(2)).is_none(), "another client's");
        assert!(reg.running_of("b", &key(1)).is_none(), "no such session");
        let mut finished = reg.running_of("a", &key(1)).expect("running");
        drop(session);
        assert!(finished.changed().await.is_err(), "finished");
        assert!(reg.running_of("a", &key(1)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn ends_the_same_clients_session_and_waits_for_it() {
        let env = TokioEnv::new();
        let reg = Registry::<()>::default();
        let mut old = reg.register("a", "", key(1));
        let finisher = tokio::spawn(async move {
            old.end.wait_for(|e| *e).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(old);
        });
        let t0 = env.now();
        let n = reg
            .supersede(&env, "b", &key(1), &["a".into()], Duration::from_secs(30))
            .await;
        assert_eq!(n, 1);
        let waited = env.now() - t0;
        assert_eq!(waited, Duration::from_secs(2), "waited for it to finish");
        finisher.await.unwrap();
        assert!(reg.running().sessions.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn another_clients_session_and_unknown_ids_are_left_alone() {
        let env = TokioEnv::new();
        let reg = Registry::<()>::default();
        let other = reg.register("a", "", key(2));
        let me = reg.register("b", "", key(1));
        let n = reg
            .supersede(
                &env,
                "b",
                &key(1),
                &["a".into(), "b".into(), "gone".into()],
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(n, 0);
        assert!(
            !*other.end.borrow(),
            "another client's session is not ended"
        );
        assert!(!*me.end.borrow(), "a session does not end itself");
    }

    /// A cut took the `Welcome`: the client proxy knows the session only
    /// by its `Hello`'s nonce, and that name ends it too, once.
    #[tokio::test(start_paused = true)]
    async fn a_session_named_by_its_hellos_nonce_is_ended() {
        let env = TokioEnv::new();
        let reg = Registry::<()>::default();
        let old = reg.register("a", "n1", key(1));
        let twin = reg.register("c", "n1", key(1));
        let other = reg.register("d", "n2", key(2));
        let finisher = tokio::spawn(async move {
            let mut old = old;
            old.end.wait_for(|e| *e).await.unwrap();
        });
        let names = ["n1".into(), "n2".into()];
        let n = reg
            .supersede(&env, "b", &key(1), &names, Duration::from_secs(30))
            .await;
        assert_eq!(n, 1, "another client's nonce names nothing of ours");
        finisher.await.unwrap();
        assert!(!*twin.end.borrow(), "a nonce seen before names the first");
        assert!(!*other.end.borrow());
        assert_eq!(reg.running().by_nonce.len(), 1, "gone with its session");
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_that_does_not_finish_is_waited_for_only_so_long() {
        let env = TokioEnv::new();
        let reg = Registry::<()>::default();
        let old = reg.register("a", "", key(1));
        let t0 = env.now();
        let n = reg
            .supersede(&env, "b", &key(1), &["a".into()], Duration::from_secs(30))
            .await;
        assert_eq!(n, 1);
        assert_eq!(env.now() - t0, Duration::from_secs(30));
        assert!(*old.end.borrow(), "it was asked to end");
    }

    #[test]
    fn a_resume_reaches_only_a_running_session_of_the_same_client() {
        let reg = Registry::<u32>::default();
        let mut me = reg.register("a", "", key(1));
        assert_eq!(reg.attach("a", &key(2), 7), Err(7), "another client's key");
        assert_eq!(reg.attach("b", &key(1), 8), Err(8), "no such session");
        assert_eq!(reg.attach("a", &key(1), 9), Ok(()));
        assert_eq!(me.attach.try_recv().ok().map(|a| *a), Some(9));
        me.attach.close();
        assert_eq!(reg.attach("a", &key(1), 10), Err(10), "no longer served");
        assert_eq!(reg.sessions_of(&key(1)), ["a"]);
        drop(me);
        assert!(reg.sessions_of(&key(1)).is_empty());
    }

    #[test]
    fn detached_sessions_are_capped_per_client_and_in_all() {
        let reg = Registry::<()>::default();
        let limits = DetachLimits {
            per_client: 2,
            total: 3,
        };
        let a: Vec<_> = (0..3)
            .map(|i| reg.register(&format!("a{i}"), "", key(1)))
            .collect();
        let b: Vec<_> = (0..2)
            .map(|i| reg.register(&format!("b{i}"), "", key(2)))
            .collect();
        let a0 = a[0].detach(limits).expect("first of a");
        let _a1 = a[1].detach(limits).expect("second of a");
        assert!(a[2].detach(limits).is_none(), "a third for one client");
        let _b0 = b[0].detach(limits).expect("b's first");
        assert!(b[1].detach(limits).is_none(), "four in all");
        drop(a0);
        assert!(b[1].detach(limits).is_some(), "a place came back");
    }
}
