//! Ending a cut session's leftovers when its client proxy comes back.
//!
//! When the line is cut the edge cannot tell a dead line from a quiet mail
//! client, so the old session lives on until `client_idle` passes, and with
//! it its server sessions. Servers with an exclusive maildrop lock (most
//! POP3 servers) then answer the user's reconnect with `[IN-USE]` for that
//! whole time: after every cut the user waits 90 s for mail.
//!
//! The client proxy does know: it saw the line die. So its next `Hello`
//! names the sessions it lost (`supersedes`), and the edge ends each of them
//! as on a cut (acknowledged work is committed, every server gets its QUIT)
//! and waits for them to finish before it opens the servers again. Only the
//! same client key may end a session, so a guessed session id is worth
//! nothing. A session that does not finish in time is left to finish on its
//! own: the new session then opens as it would have without this.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_net::Env;
use causeway_wire::PublicKey;
use tokio::sync::watch;
use tracing::{info, warn};

/// The sessions now running, by id. Shared by all sessions of one edge.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    running: Arc<Mutex<BTreeMap<String, Entry>>>,
}

struct Entry {
    client: PublicKey,
    /// Set to ask the session to end.
    end: watch::Sender<bool>,
    /// Never written: it reports "changed" (with an error) once the
    /// session's [`Registration`] is dropped, i.e. once it has finished.
    finished: watch::Receiver<()>,
}

/// A running session's place in the registry; dropping it (after the
/// session's servers were finished) removes it and wakes whoever waits.
pub(crate) struct Registration {
    registry: Registry,
    id: String,
    /// Becomes true when a newer session of the same client ends this one.
    pub end: watch::Receiver<bool>,
    _finished: watch::Sender<()>,
}

impl Registry {
    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // Entries are inserted or removed in one step: consistent after a
        // panic elsewhere.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register(&self, id: &str, client: PublicKey) -> Registration {
        let (end_tx, end_rx) = watch::channel(false);
        let (finished_tx, finished_rx) = watch::channel(());
        self.running().insert(
            id.to_owned(),
            Entry {
                client,
                end: end_tx,
                finished: finished_rx,
            },
        );
        Registration {
            registry: self.clone(),
            id: id.to_owned(),
            end: end_rx,
            _finished: finished_tx,
        }
    }

    /// Asks each of `old` that belongs to `client` to end, then waits (at most
    /// `within` in all) until they have finished. Returns how many were ended.
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
            for id in old {
                match running.get(id) {
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

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.running().remove(&self.id);
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
    async fn ends_the_same_clients_session_and_waits_for_it() {
        let env = TokioEnv::new();
        let reg = Registry::default();
        let mut old = reg.register("a", key(1));
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
        assert!(reg.running().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn another_clients_session_and_unknown_ids_are_left_alone() {
        let env = TokioEnv::new();
        let reg = Registry::default();
        let other = reg.register("a", key(2));
        let me = reg.register("b", key(1));
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

    #[tokio::test(start_paused = true)]
    async fn a_session_that_does_not_finish_is_waited_for_only_so_long() {
        let env = TokioEnv::new();
        let reg = Registry::default();
        let old = reg.register("a", key(1));
        let t0 = env.now();
        let n = reg
            .supersede(&env, "b", &key(1), &["a".into()], Duration::from_secs(30))
            .await;
        assert_eq!(n, 1);
        assert_eq!(env.now() - t0, Duration::from_secs(30));
        assert!(*old.end.borrow(), "it was asked to end");
    }
}
