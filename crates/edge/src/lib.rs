//! The edge: serves client proxies over the bad line, and owns every piece of
//! work it acknowledged until a mail server has committed it.
//!
//! A client session gets a replica of its mailboxes (lists up front, bodies
//! on demand) so the mail client's STAT/LIST/UIDL need no round trip, and one
//! worker per mail server, reached directly or through a relay. Bodies are
//! fetched with `TOP n 100000000`, which never marks a message read; `RETR`
//! (the read mark) goes to the server only after the client proxy says the
//! body was delivered; `DELE` is acknowledged at once and then owed. However
//! the session ends, every worker commits what is owed and QUITs (see
//! `docs/architecture.md`).
//!
//! - [`config`](EdgeConfig), [`state`](EdgeState): what the caller gives and reads.
//! - `session`: one client session's life.
//! - `replica`: lists, deletes and the body cache (sans-IO).
//! - `owed`: what can be owed (a read mark, a delete) and to which message.
//! - `ledger`: work owed to one server, by UIDL (sans-IO).
//! - `worker`: the task that owns one server connection (opened, direct or
//!   through a relay, by `causeway_upstream`), and its `finish`.
//! - `account`: which maildrop work is for (account and folder).
//! - `maildrop`: owed work follows the maildrop: a worker locked out hands it
//!   to the one that holds the lock.
//! - `commits`: the deletes our own sessions committed, which are no
//!   evidence that another session's unanswered `QUIT` was committed.
//! - `read_marks`: the read marks every worker of a maildrop owes, which
//!   marking a message unread takes back.
//! - [`journal`]: the crash journal and its storage seam ([`JournalStore`]:
//!   [`RedbStore`] in production, [`SimDisk`] in simulation).
//! - `replay`: finishing journaled work on start.
//! - `registry`: the running sessions by id, which a client proxy that saw
//!   its line die ends (supersede) or takes up again (resume; the session's
//!   side is `serving::resume`).
//!
//! Owns: client sessions, replicas, owed work and its journal, replay.
//! Depends on net, wire, proto, pop3 and `causeway-upstream` (which reaches
//! the mail servers, directly or through a relay); never on the relay or the
//! client proxy crates.

mod account;
mod admission;
pub mod broken;
mod commits;
mod compression;
mod config;
mod failures;
mod farewell;
pub mod journal;
mod ledger;
mod logins;
mod maildrop;
mod metrics;
mod outbox;
mod owed;
mod read_marks;
mod records;
mod registry;
mod reload;
mod replay;
mod replica;
mod serving;
mod session;
mod state;
mod worker;

use std::io;
use std::sync::Arc;

use causeway_net::{Env, accept_until_shutdown};
use tokio::sync::watch;

pub use admission::{AdmissionLimits, Refusal};
pub use causeway_upstream::RelayRef;
pub use config::{
    DEFAULT_UPLOAD_TOTAL_BYTES, DetachLimits, EdgeConfig, EdgeTimeouts, ResumeConfig,
};
pub use journal::{CommitFault, JournalConfig, JournalKey, JournalStore, RedbStore, SimDisk};
pub use logins::LoginLimits;
pub use metrics::metrics_text;
pub use state::{EdgeState, MAX_RECORDS, SessionEnd, SessionRecord};

/// Serves client proxies on `listener` until `shutdown` turns true; then
/// stops accepting, ends every session as on a line cut (owed work is
/// committed, servers are QUIT) and returns once all have ended.
///
/// With a journal (`config.journal`) it first reads it and starts finishing
/// the work a previous life of the edge left (in the background: clients are
/// served meanwhile; [`EdgeState::replay_finished`] tells when it is done).
/// A journal that cannot be read at all is an error: the edge does not start.
pub async fn run_edge<E: Env>(
    env: E,
    listener: E::Listener,
    config: Arc<EdgeConfig>,
    state: EdgeState,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    // The sender goes at once: this configuration never changes.
    let (_, configs) = watch::channel(config);
    run_edge_reloadable(env, listener, configs, state, shutdown).await
}

/// Applies each configuration's edge-wide limits as it comes (the rates of
/// failed handshakes and logins, the cap on all replicas' bodies); sessions
/// read the rest of it when they open. Never returns.
async fn follow_reloads(
    mut configs: watch::Receiver<Arc<EdgeConfig>>,
    admission: &admission::Admission,
    logins: &logins::Logins,
    state: &EdgeState,
) -> std::convert::Infallible {
    loop {
        {
            let config = configs.borrow_and_update();
            admission.set_rate(&config.admission);
            logins.set_rate(&config.logins);
            state.set_body_cap(config.replica_cache_total_bytes);
            state.upload_pool().set_cap(config.upload_total_bytes);
        }
        if configs.changed().await.is_err() {
            // No reload can come any more.
            return std::future::pending().await;
        }
    }
}

/// [`run_edge`] with a configuration that may change while it runs (the
/// binary's SIGHUP): each new connection takes the latest; a client whose
/// key leaves `allowed_clients` has its sessions ended (see `reload`).
/// The keypair, the journal and the listener stay those of the start.
pub async fn run_edge_reloadable<E: Env>(
    env: E,
    listener: E::Listener,
    configs: watch::Receiver<Arc<EdgeConfig>>,
    state: EdgeState,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let config = configs.borrow().clone();
    let journal = config.journal.as_ref().map(|j| {
        let e = env.clone();
        let clock: journal::Clock = Arc::new(move || e.now());
        journal::Journal::new(j, env.rng().clone(), state.clone(), clock)
            .erasing_headers_early(config.broken(broken::Broken::JournalHeaderErasedEarly))
    });
    let maildrops = maildrop::Maildrops::default();
    let logins = Arc::new(logins::Logins::new(config.logins));
    let shared = worker::Shared {
        env: env.clone(),
        config: config.clone(),
        state: state.clone(),
        maildrops: maildrops.clone(),
        shutdown: shutdown.clone(),
        logins: logins.clone(),
        relay_links: causeway_upstream::RelayPool::default(),
    };
    let mut replays = tokio::task::JoinSet::new();
    if let Some(j) = &journal {
        let groups = j.load().await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read the journal ({}): {e}", j.describe()),
            )
        })?;
        replay::start(&shared, groups, &mut replays);
    } else {
        tracing::warn!(
            "the edge runs without a journal: acknowledged deletes are lost if it crashes"
        );
    }
    state.replay_loaded();
    let sessions_shutdown = shutdown.clone();
    let admission = Arc::new(admission::Admission::new(config.admission));
    let registry = registry::Registry::default();
    let farewells = farewell::Farewells::default();
    let accepting = accept_until_shutdown(&env, listener, shutdown, |stream, peer| {
        let config = configs.borrow().clone();
        let session = session::Session {
            env: env.clone(),
            config,
            state: state.clone(),
            shutdown: sessions_shutdown.clone(),
            configs: configs.clone(),
            farewells: farewells.clone(),
            journal: journal.clone(),
            registry: registry.clone(),
            maildrops: maildrops.clone(),
            admission: admission.clone(),
            logins: logins.clone(),
            relay_links: shared.relay_links.clone(),
        };
        session.serve(stream, peer)
    });
    // Biased, and reloads first: a connection accepted in the same poll as
    // a reload meets its limits (and the order is the same in every run).
    let served = tokio::select! {
        biased;
        never = follow_reloads(configs.clone(), &admission, &logins, &state) => match never {},
        served = accepting => served,
    };
    while replays.join_next().await.is_some() {}
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_cache::ByteLru;

    /// Whether a store in the edge's body pool keeps a body of `n` bytes.
    fn kept(state: &EdgeState, n: usize) -> bool {
        let mut bodies = ByteLru::in_pool(usize::MAX, state.body_pool());
        bodies.put(0u8, Arc::new(vec![0u8; n]));
        bodies.peek(&0).is_some()
    }

    #[tokio::test]
    async fn each_configuration_sets_the_edge_wide_limits_as_it_comes() {
        let rng = causeway_net::EnvRng::from_seed([1; 32]);
        let mut config = EdgeConfig::new(causeway_wire::Keypair::generate(&rng));
        config.replica_cache_total_bytes = 100;
        let (configs, rx) = watch::channel(Arc::new(config.clone()));
        let state = EdgeState::new();
        let admission = admission::Admission::new(config.admission);
        let logins = logins::Logins::new(config.logins);
        let follow = follow_reloads(rx, &admission, &logins, &state);
        tokio::pin!(follow);
        let turn = std::time::Duration::from_millis(10);
        assert!(tokio::time::timeout(turn, follow.as_mut()).await.is_err());
        assert!(!kept(&state, 1000), "the first configuration's cap");
        config.replica_cache_total_bytes = 10_000;
        configs.send(Arc::new(config)).unwrap();
        assert!(tokio::time::timeout(turn, follow.as_mut()).await.is_err());
        assert!(
            kept(&state, 1000),
            "a reload's cap, before any session opens"
        );
    }
}
