//! Carries the deletes left in the journal to the edge when no mail client
//! does it.
//!
//! A delete acknowledged to the mail client whose batch a cut (or a crash
//! of the proxy) kept from the edge is normally carried by the mail
//! client's next session, in its `Hello`. A mail client may not come back
//! soon (fetchmail polls every few minutes, a person may close the laptop
//! lid), and the promise is that the delete is carried out whatever the mail
//! client does next; so when entries are left and no mail client is being
//! served, the proxy opens a session of its own after [`CARRY_PAUSE`]:
//! `Hello` with the deletes, for just the servers they concern, no bodies,
//! then `Quit`; the `Bye` says each server committed them. A failed attempt
//! is retried with doubling pauses up to [`CARRY_PAUSE_MAX`], for as long as
//! the proxy runs; the journal keeps the entries across its restarts.

use std::sync::Arc;
use std::time::Duration;

use causeway_net::{Env, shutdown_requested};
use tokio::sync::watch;

use crate::config::ClientConfig;
use crate::link::{EdgeLink, NotOpened};
use crate::shared::Shared;

/// How long entries wait for a mail client to carry them, and the first
/// pause after a failed attempt.
pub const CARRY_PAUSE: Duration = Duration::from_secs(5);

/// The longest pause between two attempts.
pub const CARRY_PAUSE_MAX: Duration = Duration::from_secs(300);

/// Runs until shutdown: carries whatever the journal has left.
pub(crate) async fn carry<E: Env>(
    env: E,
    config: Arc<ClientConfig>,
    shared: Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(journal) = shared.deletes.clone() else {
        return;
    };
    let mut pause = CARRY_PAUSE;
    loop {
        if journal.carriable_servers().is_empty() && !journal.has_settled() {
            tokio::select! {
                _ = journal.entries_left() => {}
                _ = shutdown_requested(&mut shutdown) => return,
            }
            pause = CARRY_PAUSE;
            continue;
        }
        tokio::select! {
            _ = env.sleep(pause) => {}
            _ = shutdown_requested(&mut shutdown) => return,
        }
        // Done entries the disk would not erase: tried again (a local
        // write, cheap: no longer pause), never sent.
        if journal.has_settled() && !journal.erase_settled().await {
            continue;
        }
        let servers = journal.carriable_servers();
        if servers.is_empty() || shared.mail_clients() > 0 {
            continue;
        }
        match carry_once(&env, &config, &shared, &servers).await {
            Ok(()) => {
                tracing::info!(
                    ?servers,
                    "carried the deletes left in the journal to the edge"
                );
                pause = CARRY_PAUSE;
            }
            Err(why) => {
                tracing::warn!(reason = %why, retry_in = ?pause * 2,
                    "could not carry the deletes left in the journal to the edge; they stay in \
                     the journal and go with the next session or the next attempt");
                pause = (pause * 2).min(CARRY_PAUSE_MAX);
            }
        }
    }
}

/// One session that opens `servers` with the carried deletes, and quits.
async fn carry_once<E: Env>(
    env: &E,
    config: &ClientConfig,
    shared: &Shared,
    servers: &[String],
) -> Result<(), String> {
    // A mail client that connects meanwhile waits for this session to end
    // (its QUIT frees the maildrop locks) before its own Hello.
    let _committing = shared.committing.lock().await;
    let reached = EdgeLink::reach(env, config).await?;
    let (link, _) = EdgeLink::open(env, config, shared, Some(servers), reached)
        .await
        .map_err(|e| match e {
            NotOpened::Unreachable(why) => why,
            NotOpened::Refused(e) => e.to_string(),
        })?;

    let outcomes = link.quit(config.timeouts.quit).await.map_err(|c| c.why)?;
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}
