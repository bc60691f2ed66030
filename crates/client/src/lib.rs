//! The client proxy: a POP3 server (and, with `imap_listen`, an IMAP one) on
//! the user's own machine that carries the mail client's session across a
//! bad line to the edge.
//!
//! The mail client (fetchmail, Thunderbird, python `poplib`) stays unchanged:
//! it logs in to this proxy with a local user name and password, sees one
//! unified mailbox of all configured servers, and reads and deletes mail as
//! usual. Behind it, the proxy opens one Noise XK channel to the edge per
//! session, hands over the user information once, answers STAT/LIST/UIDL
//! from the edge's listing, and forwards RETR/TOP/DELE/RSET by server name
//! and UIDL.
//!
//! What it promises the mail client, whatever the line does:
//! - a DELE is `+OK` only once it is durable: in the proxy's delete journal
//!   (`deletes`, carried to the edge in batches, and by `carrier` when no
//!   mail client comes back), or without one, once the edge owns it;
//! - a message is marked read only after its whole body was written to the
//!   mail client (`Delivered` is sent after the write);
//! - a lost line is reported as an error on the current or next command,
//!   never as success, and nothing more is done on the mail client's behalf.
//!
//! Layout: `front` (the POP3 state machine), `imap_front` (IMAP mail
//! clients, served through a POP3 session of this proxy), `mailbox` (the unified
//! mailbox), `mirror` (bodies streamed from the edge, and those kept between
//! sessions) and `prefetch` (which bodies to want ahead of demand) are
//! sans-IO; `session` drives one mail client's connection,
//! `link` the channel to the edge, `lost` remembers the edge sessions a cut
//! took (the next one asks the edge to end them), and [`run_client`] accepts
//! connections.
//! Sockets, time and randomness come from [`causeway_net::Env`] only, so the
//! proxy runs unchanged inside a turmoil simulation.
//!
//! Owns: the mail client's side of everything (local login, the unified
//! mailbox, when a RETR counts as delivered, what the mail client is told).
//! Depends on net, wire, proto, pop3 and imap; never on the edge or the relay.

pub mod broken;
mod carrier;
mod config;
mod deletes;
mod front;
mod imap_front;
mod link;
mod login;
mod lost;
mod mailbox;
mod mirror;
mod prefetch;
mod replies;
mod session;
mod shared;
mod state;
mod tee;
mod uids;

use std::io;
use std::sync::Arc;

use causeway_net::{Env, accept_until_shutdown};
use tokio::sync::watch;
use tracing::Instrument;

pub use carrier::{CARRY_PAUSE, CARRY_PAUSE_MAX};
pub use config::{ClientConfig, Prefetch, TRASH, Timeouts};
pub use deletes::owed_deletes;
pub use front::LOGIN_FAILURE_DELAY;
pub use imap_front::LOGGED_OUT;
pub use state::ClientState;

/// The delete journal's key, derived from the proxy's static private key
/// (see [`causeway_store::JournalKey::derive_from`]).
pub fn journal_key(private: &causeway_wire::PrivateKey) -> causeway_store::JournalKey {
    causeway_store::JournalKey::derive_from("causeway client proxy delete journal key v1", private)
}
pub use mailbox::{MAX_SHOWN_UIDL, shown_keys, shown_uidl};

/// Accepts mail clients on `listener` (POP3) and on `config.imap_listen`
/// (IMAP, bound here) and serves each in its own task, until `shutdown`
/// becomes true; then stops accepting, ends idle sessions (their edge
/// sessions are closed with a reason) and waits for the others to finish
/// their current command.
pub async fn run_client<E: Env>(
    env: E,
    listener: E::Listener,
    config: Arc<ClientConfig>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let imap = bind_imap(&env, &config).await?;
    run_client_counted(env, listener, imap, config, ClientState::new(), shutdown).await
}

/// Binds `config.imap_listen`, if set.
pub async fn bind_imap<E: Env>(env: &E, config: &ClientConfig) -> io::Result<Option<E::Listener>> {
    match &config.imap_listen {
        Some(address) => env.bind(address).await.map(Some).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen for IMAP on {address}: {e}"),
            )
        }),
        None => Ok(None),
    }
}

/// [`run_client`] with the IMAP listener bound by the caller (`None`: no
/// IMAP), counting in `state`.
pub async fn run_client_counted<E: Env>(
    env: E,
    listener: E::Listener,
    imap: Option<E::Listener>,
    config: Arc<ClientConfig>,
    state: ClientState,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    config.validate().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid client configuration: {e}"),
        )
    })?;
    let deletes = match &config.journal {
        Some(j) => {
            let names: Vec<String> = config.servers.iter().map(|s| s.name.clone()).collect();
            let started = env.unix_millis();
            let journal =
                deletes::DeleteJournal::load(j, env.rng().clone(), &names, state.clone(), started)
                    .await
                    .map_err(|e| {
                        io::Error::other(format!(
                            "cannot read the delete journal ({}): {e}",
                            j.store.describe()
                        ))
                    })?;
            Some(journal)
        }
        None => {
            tracing::info!(
                "no delete journal configured: every DELE waits for the edge (one turn on the line)"
            );
            None
        }
    };
    let uids = match (&config.journal, &imap) {
        (Some(j), Some(_)) => uids::UidBooks::load(j, env.rng(), env.unix_millis(), &config)
            .await
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot read the IMAP UID book ({}): {e}",
                    j.store.describe()
                ))
            })?,
        _ => uids::UidBooks::in_memory(config.imap_folders(), env.unix_millis()),
    };
    let shared = shared::Shared::new(
        state,
        mirror::Kept::new(config.prefetch.keep),
        deletes,
        uids,
    );
    tracing::info!(edge = %config.edge, servers = config.servers.len(), "client proxy accepting mail clients");
    tokio::spawn(carrier::carry(
        env.clone(),
        config.clone(),
        shared.clone(),
        shutdown.clone(),
    ));
    let imap = imap.map(|l| {
        tokio::spawn(serve_imap(
            env.clone(),
            l,
            config.clone(),
            shared.clone(),
            shutdown.clone(),
        ))
    });
    let sessions_shutdown = shutdown.clone();
    let pop3 = accept_until_shutdown(&env, listener, shutdown, |stream, peer| {
        // `session` is filled in when the edge names the session, so every
        // later line about this mail client carries the edge's session id.
        let span = tracing::info_span!("mail client", %peer, session = tracing::field::Empty);
        let serve = session::serve(
            env.clone(),
            stream,
            config.clone(),
            shared.clone(),
            sessions_shutdown.clone(),
            session::Serves::Pop3Client,
        );
        serve.instrument(span)
    })
    .await;
    if let Some(imap) = imap {
        imap.await.map_err(io::Error::other)??;
    }
    pop3
}

/// Accepts IMAP mail clients on `listener` until `shutdown`
/// (`crate::imap_front`), beside the POP3 ones.
async fn serve_imap<E: Env>(
    env: E,
    listener: E::Listener,
    config: Arc<ClientConfig>,
    shared: shared::Shared,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    use causeway_net::Listener as _;
    tracing::info!(address = %listener.local_addr()?, "client proxy accepting IMAP mail clients");
    let sessions_shutdown = shutdown.clone();
    accept_until_shutdown(&env, listener, shutdown, |stream, peer| {
        let span = tracing::info_span!("IMAP mail client", %peer, session = tracing::field::Empty);
        imap_front::serve(
            env.clone(),
            stream,
            config.clone(),
            shared.clone(),
            sessions_shutdown.clone(),
        )
        .instrument(span)
    })
    .await
}
