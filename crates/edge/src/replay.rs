//! Replay on start: the work a previous life of the edge acknowledged and did
//! not see committed, read from the crash journal and finished.
//!
//! Each group (one server of one earlier client session) gets a worker with
//! no client and a ledger filled from the journal; it runs the same commit
//! logic as at the end of a session (log in directly or through the relay
//! named in the stored server spec, re-resolve every UIDL, redo, QUIT, retry
//! with growing pauses, or hand the work to a session that holds the same
//! maildrop). A message already gone needs nothing, so the redo is
//! idempotent. Once QUIT answered `+OK` the group's entries, credentials
//! included, are erased. New clients are served meanwhile. A route the
//! edge's configuration no longer allows parks the work (it stays in the
//! journal, listed by `causeway owed`).

use causeway_net::Env;
use causeway_proto::user::Route;
use causeway_proto::{ErrCode, OpError};
use tokio::task::JoinSet;
use tracing::{error, info};

use crate::config::EdgeConfig;
use crate::journal::Restored;
use crate::worker::{Shared, Worker};

/// Starts one task per restored group; each holds a replay ticket from
/// before this returns, so `EdgeState::replay_finished` is exact.
pub(crate) fn start<E: Env>(shared: &Shared<E>, groups: Vec<Restored>, tasks: &mut JoinSet<()>) {
    let (config, state) = (&shared.config, &shared.state);
    if groups.is_empty() {
        return;
    }
    let items: usize = groups.iter().map(|g| g.ops.len()).sum();
    info!(
        groups = groups.len(),
        items, "journal: finishing work acknowledged before the last stop"
    );
    for r in groups {
        let ticket = state.replay_ticket();
        let session = format!("{}/replay-{:016x}", r.session, r.group.id());
        let worker = Worker::restored(
            shared.clone(),
            session.clone(),
            r.spec.clone(),
            r.group,
            &r.ops,
        );
        let refusal = still_allowed(config, &r.spec);
        let server = r.spec.name.clone();
        tasks.spawn(async move {
            let _ticket = ticket;
            let end = match refusal {
                Some(e) => worker.park(e),
                None => worker.finish().await,
            };
            match end.result {
                // Erasing the entries is logged on its own if it fails (they are
                // then redone, harmlessly, at the next start).
                Ok(()) => {
                    info!(%session, %server, "journal: replayed work committed on the server")
                }
                // Its entries went with it.
                Err(_) if end.handed_over => {}
                Err(e) => {
                    error!(%session, %server, error = %e,
                        "journal: replayed work not committed; it stays in the journal");
                }
            }
        });
    }
}

/// The route may have been taken off the edge's configuration since the
/// work was acknowledged: the edge is still not an open proxy.
fn still_allowed(config: &EdgeConfig, spec: &causeway_proto::user::ServerSpec) -> Option<OpError> {
    match &spec.route {
        Route::Direct if !config.allowed_servers.contains(&spec.address()) => Some(OpError::new(
            Some(ErrCode::SysPerm),
            format!(
                "{} is no longer on this edge's allowed_servers",
                spec.address()
            ),
        )),
        Route::Relay(r) if config.relay(r).is_none() => Some(OpError::new(
            Some(ErrCode::SysPerm),
            format!("this edge no longer knows relay {r:?}"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use causeway_net::EnvRng;
    use causeway_proto::Secret;
    use causeway_proto::user::{Protocol, ServerSpec, TlsMode};
    use causeway_upstream::RelayRef;
    use causeway_wire::Keypair;

    use super::*;

    fn spec(route: Route) -> ServerSpec {
        ServerSpec {
            name: "HOST1".into(),
            protocol: Protocol::Pop3,
            host: "mail.example".into(),
            port: 995,
            tls: TlsMode::Implicit,
            user: "user".into(),
            password: Secret::new("pw"),
            route,
            folder: causeway_proto::user::INBOX.into(),
        }
    }

    #[test]
    fn a_route_taken_off_the_configuration_parks_the_replayed_work() {
        let rng = EnvRng::from_seed([7; 32]);
        let mut config = EdgeConfig::new(Keypair::generate(&rng));
        let direct = spec(Route::Direct);
        let relayed = spec(Route::Relay("R1".into()));
        let refused = |c: &EdgeConfig, s: &ServerSpec| still_allowed(c, s).map(|e| e.code);
        assert_eq!(refused(&config, &direct), Some(Some(ErrCode::SysPerm)));
        assert_eq!(refused(&config, &relayed), Some(Some(ErrCode::SysPerm)));
        config.allowed_servers.push(direct.address());
        config.relays.push(RelayRef {
            name: "R1".into(),
            address: "relay.example:7001".into(),
            public_key: Keypair::generate(&rng).public,
        });
        assert_eq!(refused(&config, &direct), None);
        assert_eq!(refused(&config, &relayed), None);
    }
}
