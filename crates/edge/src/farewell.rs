//! A `Bye` the line lost: the session ended with `Quit` at the edge, but
//! its answer never reached the client proxy.
//!
//! Everything the mail client was told is done by then (the servers
//! committed at QUIT), yet the proxy cannot know it: it waits for `Bye`,
//! sees its line die, resumes, and used to find no session (seed
//! 207891791 of the fault simulation: a one-way dead line after a short
//! cut), so the mail client got an error for a QUIT that did everything.
//! So for the resume window the edge keeps what such a session would need
//! to answer again ([`Farewell`]): its secrets (for the proof), how many
//! read marks it had, which delete batches its journal held, and the
//! `Bye`. A resume of it gets `Resumed`; the batches the proxy sends again
//! get `Held` only if the session really held them (otherwise the proxy
//! must keep those deletes in its journal for its next session, so the
//! channel is closed without `Bye`); the `Quit` sent again gets the `Bye`.
//! Read marks sent again are not made: the session's servers are gone,
//! and a message left unread is the safe side. A resume that comes while
//! the session still commits on its servers (its line held past the
//! proxy's patience for `Bye`, then released) waits for it to finish, up
//! to `timeouts.hello`, and is answered from the farewell then.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use causeway_net::{Env, Instant};
use causeway_proto::session::{ClientToEdge, EdgeToClient};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION};
use causeway_wire::PublicKey;
use causeway_wire::link::{close, recv, send};
use tracing::{info, warn};

use crate::config::EdgeConfig;
use crate::serving::{Attach, Channel, Farewell, new_secret, proven};
use crate::state::SessionEnd;

/// Ended sessions kept at most, edge-wide (the earliest to expire goes).
const MAX_KEPT: usize = 4096;

struct Kept {
    client: PublicKey,
    farewell: Farewell,
    until: Instant,
}

/// The farewells of sessions that ended with `Quit`, by session id.
#[derive(Clone, Default)]
pub(crate) struct Farewells {
    kept: Arc<Mutex<BTreeMap<String, Kept>>>,
}

impl Farewells {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Kept>> {
        // Entries go in and out in one step: consistent after a panic.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `farewell` of session `id` of `client` until `until`.
    pub fn keep(
        &self,
        id: &str,
        client: PublicKey,
        farewell: Farewell,
        now: Instant,
        until: Instant,
    ) {
        let mut kept = self.lock();
        kept.retain(|_, k| k.until > now);
        if kept.len() >= MAX_KEPT {
            if let Some(first) = kept
                .iter()
                .min_by_key(|(_, k)| k.until)
                .map(|(i, _)| i.clone())
            {
                kept.remove(&first);
            }
        }
        kept.insert(
            id.to_owned(),
            Kept {
                client,
                farewell,
                until,
            },
        );
    }

    /// The farewell of session `id`, if `client` ended it within the window.
    pub fn take(&self, id: &str, client: &PublicKey, now: Instant) -> Option<Farewell> {
        let mut kept = self.lock();
        match kept.get(id) {
            Some(k) if k.client == *client && k.until > now => kept.remove(id).map(|k| k.farewell),
            _ => None,
        }
    }
}

/// Serves a resume of session `session` (ended with `Quit`) on the channel
/// `a` brought: proof, `Resumed`, then the `Bye` again for the `Quit` the
/// client proxy sends again. How this connection ended.
pub(crate) async fn answer_again<E: Env>(
    env: &E,
    config: &EdgeConfig,
    id: &str,
    session: &str,
    a: Attach<E::Stream>,
    f: Farewell,
) -> SessionEnd {
    let within = config.timeouts.hello;
    let mut channel: Channel<E> = a.channel;
    let proven = a.version == PROTOCOL_VERSION
        && proven(f.secrets.iter().copied(), channel.binding(), &a.proof).is_some();
    if !proven {
        let reason = "the resume's proof does not hold".to_owned();
        warn!(session = %id, resumes = %session, "refused a resume of a session that ended with Quit: {reason}");
        let error = OpError::new(Some(ErrCode::SysPerm), reason.clone());
        if send(env, &mut channel, &EdgeToClient::Refused { error }, within)
            .await
            .is_ok()
        {
            close(env, channel, "refused", within).await;
        }
        return SessionEnd::Refused(reason);
    }
    info!(session = %id, resumes = %session,
        "a resume of a session that ended with Quit: its Bye was lost; answering it again");
    let resumed = EdgeToClient::Resumed {
        secret: new_secret(env).to_vec(),
        marks: f.marks,
        primed: false,
        uploaded: None,
    };
    if let Err(e) = send(env, &mut channel, &resumed, within).await {
        return SessionEnd::LineCut(e.to_string());
    }
    loop {
        let answer = match recv(env, &mut channel, within, "the Quit sent again").await {
            Ok(ClientToEdge::Quit) => EdgeToClient::Bye {
                servers: f.servers.clone(),
            },
            Ok(ClientToEdge::Deletes { ops }) => {
                let seqs: Vec<u64> = ops.iter().map(|op| op.seq).collect();
                if !seqs.iter().all(|s| f.held.contains(s)) {
                    // Deletes the session never took: the proxy keeps them
                    // and carries them into its next session.
                    warn!(session = %id, resumes = %session,
                        "deletes sent again that the ended session never held; closing without Bye \
                         (the client proxy carries them into its next session)");
                    close(env, channel, "those deletes reached no session", within).await;
                    return SessionEnd::Refused("deletes the ended session never held".into());
                }
                EdgeToClient::Held { seqs }
            }
            // Marks after the end are not made (the message stays unread).
            Ok(ClientToEdge::Delivered { .. } | ClientToEdge::Window { .. }) => continue,
            Ok(ClientToEdge::Ping { nonce }) => EdgeToClient::Pong { nonce },
            Ok(_) => {
                close(env, channel, "only Quit is answered now", within).await;
                return SessionEnd::Refused("a request after the session's end".into());
            }
            Err(e) => return SessionEnd::LineCut(e.to_string()),
        };
        let bye = matches!(answer, EdgeToClient::Bye { .. });
        if let Err(e) = send(env, &mut channel, &answer, within).await {
            return SessionEnd::LineCut(e.to_string());
        }
        if bye {
            return SessionEnd::Quit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_proto::session::SECRET_LEN;
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn farewell() -> Farewell {
        Farewell {
            secrets: vec![[7; SECRET_LEN]],
            marks: 2,
            held: BTreeSet::from([1, 2]),
            servers: Vec::new(),
        }
    }

    #[test]
    fn a_farewell_is_given_once_to_its_own_client_within_the_window() {
        let f = Farewells::default();
        let (me, other) = (
            PublicKey::from_bytes([1; 32]),
            PublicKey::from_bytes([2; 32]),
        );
        let now = crate::state::test_now();
        let until = now + Duration::from_secs(60);
        f.keep("s1", me, farewell(), now, until);
        assert!(f.take("s1", &other, now).is_none(), "another client's");
        assert!(f.take("s1", &me, until).is_none(), "the window passed");
        f.keep("s1", me, farewell(), now, until);
        assert_eq!(f.take("s1", &me, now).map(|f| f.marks), Some(2));
        assert!(f.take("s1", &me, now).is_none(), "given once");
    }

    #[test]
    fn at_most_max_kept_are_kept() {
        let f = Farewells::default();
        let me = PublicKey::from_bytes([1; 32]);
        let now = crate::state::test_now();
        for i in 0..=MAX_KEPT {
            let until = now + Duration::from_secs(60 + i as u64);
            f.keep(&format!("s{i}"), me, farewell(), now, until);
        }
        assert_eq!(f.lock().len(), MAX_KEPT);
        assert!(
            f.take("s0", &me, now).is_none(),
            "the earliest to expire went first"
        );
    }
}
