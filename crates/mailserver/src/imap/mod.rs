//! The model server's IMAP side: the driver of [`core::ImapCore`] on
//! imap-next's server state machine (which parses commands, literals
//! included; nothing here reads IMAP by hand).
//!
//! It serves the same [`MailStore`] as the POP3 side, so a test or the
//! simulation judges either protocol from one record. Not modelled yet: the
//! POP3 side's injected faults, other folders, IDLE. AUTHENTICATE takes
//! PLAIN only, as [`crate::ImapLogins`] says.

mod core;
mod search;

pub use search::text_matches;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use causeway_net::Env;
use imap_next::server::{Event, Options, Server};
use imap_next::types::CommandAuthenticate;
use imap_next::{Interrupt, Io, State};
use imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_types::response::{CommandContinuationRequest, Greeting, GreetingKind, Status};
use tokio::io::AsyncWriteExt;

use self::core::{ImapCore, Response};
use crate::record::EndKind;
use crate::server::{accept_each, next_bytes};
use crate::{MailStore, ServerConfig};

/// How long a goodbye may take to leave.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// [`crate::serve`] for IMAP: each connection is a [`run_imap_session`].
pub async fn serve_imap<E: Env>(
    env: E,
    listener: E::Listener,
    store: MailStore,
    config: ServerConfig,
) -> io::Result<()> {
    accept_each(env, listener, store, config, run_imap_session).await
}

/// Serves one IMAP connection until LOGOUT, EOF or the idle timeout.
pub async fn run_imap_session<E: Env>(
    env: E,
    mut stream: E::Stream,
    peer: SocketAddr,
    store: MailStore,
    config: Arc<ServerConfig>,
) {
    let mut core = ImapCore::new(
        store,
        peer,
        env.unix_millis(),
        config.imap_uidplus,
        config.imap_logins,
    );
    tracing::debug!(session = %core.id(), %peer, "IMAP session started");
    let kind = drive(&env, &mut stream, &mut core, &config).await;
    core.end(kind, env.unix_millis());
    let _ = env
        .timeout(
            GOODBYE_TIMEOUT,
            "the client to take our FIN",
            stream.shutdown(),
        )
        .await;
}

async fn drive<E: Env>(
    env: &E,
    stream: &mut E::Stream,
    core: &mut ImapCore,
    config: &ServerConfig,
) -> EndKind {
    let greeting = Greeting::new(
        GreetingKind::Ok,
        Some(core.greeting_code()),
        "Model IMAP server ready.",
    )
    .expect("a valid greeting");
    let mut options = Options::default();
    let max = u32::try_from(config.max_message).unwrap_or(u32::MAX / 2);
    options.max_literal_size = max;
    options.max_command_size = max.saturating_add(64 * 1024);
    let mut server = Server::new(options, greeting);
    let mut buf = vec![0u8; 4096];
    let mut closing = false;
    // The tag of an AUTHENTICATE waiting for its response.
    let mut authenticating = None;
    loop {
        match server.next() {
            Ok(Event::CommandReceived { command }) => {
                let answer = core.handle(command, env.unix_millis());
                for r in answer.responses {
                    match r {
                        Response::Data(d) => server.enqueue_data(d),
                        Response::Status(s) => server.enqueue_status(s),
                    };
                }
                closing |= answer.close;
            }
            Ok(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => {
                let CommandAuthenticate {
                    tag,
                    mechanism,
                    initial_response,
                } = command_authenticate;
                let (plain, sasl_ir) = core.plain();
                let refusal = if !plain || mechanism != AuthMechanism::Plain {
                    Some("Unsupported authentication mechanism.")
                } else if initial_response.is_some() && !sasl_ir {
                    Some("No SASL-IR here.")
                } else {
                    None
                };
                let finish = match (refusal, initial_response) {
                    (Some(why), _) => Status::no(Some(tag), None, why).expect("valid"),
                    (None, Some(r)) => {
                        core.authenticate_plain(tag, r.declassify(), env.unix_millis())
                    }
                    (None, None) => {
                        let go_on = CommandContinuationRequest::basic(None, " ").expect("valid");
                        let _ = server.authenticate_continue(go_on);
                        authenticating = Some(tag);
                        continue;
                    }
                };
                let _ = server.authenticate_finish(finish);
            }
            Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                let Some(tag) = authenticating.take() else {
                    continue;
                };
                let finish = match authenticate_data {
                    AuthenticateData::Continue(r) => {
                        core.authenticate_plain(tag, r.declassify(), env.unix_millis())
                    }
                    AuthenticateData::Cancel => {
                        Status::bad(Some(tag), None, "Authentication cancelled.").expect("valid")
                    }
                };
                let _ = server.authenticate_finish(finish);
            }
            Ok(Event::IdleCommandReceived { tag }) => {
                let bad = Status::bad(Some(tag), None, "No IDLE here.").expect("valid");
                let _ = server.idle_reject(bad);
            }
            Ok(_) => {}
            Err(Interrupt::Io(Io::Output(bytes))) => {
                let sent = env
                    .timeout(
                        config.idle_timeout,
                        "sending a response",
                        stream.write_all(&bytes),
                    )
                    .await;
                if !matches!(sent, Ok(Ok(()))) {
                    return EndKind::Abrupt;
                }
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => {
                if closing {
                    return EndKind::Quit;
                }
                let goodbye = b"* BYE Disconnected for inactivity.\r\n";
                match next_bytes(env, stream, &mut buf, config.idle_timeout, goodbye).await {
                    Ok(n) => server.enqueue_input(&buf[..n]),
                    Err(kind) => return kind,
                }
            }
            // A malformed or oversized command: imap-next has dropped it;
            // say so and go on, as a server does.
            Err(Interrupt::Error(e)) => {
                tracing::debug!(session = %core.id(), error = %e, "bad IMAP input");
                let bad = Status::bad(None, None, "Unreadable command.").expect("valid");
                server.enqueue_status(bad);
            }
        }
    }
}
