//! The IMAP front: an unchanged IMAP mail client (fetchmail, getmail,
//! curl, python `imaplib`, mbsync, neomutt, Thunderbird) reads and deletes
//! the unified mailbox, `INBOX`, and the folder of each entry that reads a
//! folder other than an INBOX (named as the entry), through the same
//! session and promises as POP3; moves mail to the proxy's own `Trash`
//! and back ([`trash`]); and stores the mail it sends with APPEND on the
//! server of the folder it names ([`append`]).
//!
//! imap-next's server state machine parses and frames every command
//! (literals, AUTHENTICATE continuations); nothing here parses IMAP by
//! hand. `causeway_imap::serve` keeps the folder as the client sees it
//! (sequence numbers, UIDs, flags) and cuts the sections a FETCH asks for.
//! Behind it is the proxy's own POP3 session ([`maildrop`]), which holds
//! the rules: so a FETCH never marks a message read, a non-peek FETCH does
//! so only once the client took the response whole and spoke again (the
//! same proof a RETR needs), and an EXPUNGE is answered only once each
//! delete is durable.
//!
//! What a session shows: in `INBOX` the messages of every entry that reads
//! an INBOX (every POP3 entry among them), in each other folder its
//! entry's (`ClientConfig::imap_folders`), under the UIDs and UIDVALIDITY
//! each folder's UID book (`crate::uids`) keeps from session to session,
//! with the flags `\Seen \Deleted \Flagged \Answered
//! \Draft`, of which a read mark and an expunge reach the server. A client
//! that stays connected sees new mail and mail gone elsewhere when it asks
//! (NOOP, CHECK, SELECT) or idles ([`recheck`]).
//!
//! Every wait is on silence: the client's commands (`imap_idle`, 30
//! minutes as RFC 3501 asks, an IDLE included; the POP3 session behind is
//! kept alive meanwhile), each piece of a response written (`request`).

mod append;
mod changes;
mod commands;
mod fetch;
mod heartbeat;
mod login;
mod maildrop;
mod recheck;
mod replies;
mod search;
mod server_flags;
mod trash;

pub use commands::LOGGED_OUT;

use std::sync::Arc;

use causeway_imap::imap_next::server::{Error as ServerError, Event, Options, Server};
use causeway_imap::imap_next::{Interrupt, Io, State as _};
use causeway_imap::imap_types::response::Greeting;
use causeway_net::{Env, shutdown_requested};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::config::ClientConfig;
use crate::shared::Shared;
use commands::{Flow, Front};
use maildrop::Maildrop;
use recheck::Idle;

/// The longest command line accepted from the mail client, literals
/// other than APPEND's message included.
const MAX_COMMAND: u32 = 64 << 10;

/// The longest literal: an APPEND's message (`APPENDLIMIT`), held whole
/// while it goes up the line.
const MAX_LITERAL: u32 = causeway_proto::session::MAX_APPEND as u32;

/// Serves one IMAP mail client until it logs out, goes away, or the line
/// to the edge is lost.
pub(crate) async fn serve<E: Env>(
    env: E,
    mut mail: E::Stream,
    config: Arc<ClientConfig>,
    shared: Shared,
    shutdown: watch::Receiver<bool>,
) {
    let Some(maildrop) = Maildrop::open(&env, &config, &shared, &shutdown).await else {
        // As for POP3: no greeting, which a mail client reports as a
        // connection failure and retries (the session said why).
        return;
    };
    let mut options = Options::default();
    options.max_literal_size = MAX_LITERAL;
    options.max_command_size = MAX_LITERAL + MAX_COMMAND;
    let greeting = Greeting::ok(Some(replies::capability_code(false)), "Causeway IMAP ready")
        .expect("valid text");
    let mut server = Server::new(options, greeting);
    let mut front = Front::new(
        env.clone(),
        shared.clone(),
        maildrop,
        config.clone(),
        shutdown.clone(),
    );
    let idle = config.timeouts.imap_idle;
    let keepalive = config.timeouts.client_idle / 2;
    let mut buf = vec![0u8; 16 << 10];
    let mut shutdown = shutdown;
    // The tag of an IDLE in progress, and since when the client is silent.
    let mut idling = None;
    let mut quiet_from = env.now();
    let end = loop {
        match server.next() {
            Ok(Event::CommandReceived { command }) => {
                if let Flow::Close(why) = front.command(&mut server, &mut mail, command).await {
                    // Write what was enqueued (BYE and the tagged answer).
                    flush(&env, &mut server, &mut mail, &config).await;
                    break why;
                }
            }
            Ok(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => {
                front.authenticate(&mut server, command_authenticate).await;
            }
            Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                front
                    .authenticate_data(&mut server, authenticate_data)
                    .await;
            }
            Ok(Event::IdleCommandReceived { tag }) => match front.idle(&mut server, tag).await {
                Idle::Idling(tag) => idling = Some(tag),
                Idle::Refused => {}
                Idle::Over => {
                    flush(&env, &mut server, &mut mail, &config).await;
                    break "the POP3 session behind it ended";
                }
            },
            Ok(Event::IdleDoneReceived) => {
                if let Some(tag) = idling.take() {
                    front.idle_done(&mut server, tag);
                }
            }
            Ok(Event::GreetingSent { .. } | Event::ResponseSent { .. }) => {}
            Err(Interrupt::Io(Io::Output(bytes))) => {
                // Commands the client sent before it could have all of
                // this are read now, so that they are handled before the
                // next request for input, the moment after which a
                // command proves a response taken (`Front::all_written`).
                let mut early = Vec::new();
                let within = config.timeouts.request;
                let written =
                    crate::session::write_proved(&env, &mut mail, within, &bytes, &mut early).await;
                server.enqueue_input(&early);
                if written.is_err() {
                    break "the mail client stopped taking our responses";
                }
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => {
                front.all_written();
                // One deadline for the client's silence, however often the
                // POP3 session behind is kept alive or the folder listed
                // again meanwhile.
                let until = quiet_from + idle;
                let read = loop {
                    let left = until.saturating_duration_since(env.now());
                    let recheck = front.recheck_at().saturating_duration_since(env.now());
                    tokio::select! {
                        r = env.timeout(left, "the mail client's next command", mail.read(&mut buf)) => break Ok(r.map(|r| r.map(Some))),
                        () = env.sleep(keepalive) => {
                            if let Err(e) = front.keep_alive().await {
                                let (_, why, _) = replies::refusal(&e);
                                break Err(why);
                            }
                        }
                        // An idling client hears of news as it comes.
                        () = env.sleep(recheck), if idling.is_some() => {
                            if let Err(e) = front.recheck(&mut server, true).await {
                                let (_, why, _) = replies::refusal(&e);
                                break Err(why);
                            }
                            // What changed goes out now.
                            break Ok(Ok(Ok(None)));
                        }
                        () = shutdown_requested(&mut shutdown) => {
                            break Err("the client proxy is shutting down".into());
                        }
                    }
                };
                match read {
                    Ok(Ok(Ok(None))) => {}
                    Ok(Ok(Ok(Some(0)))) => break "the mail client closed the connection",
                    Ok(Ok(Ok(Some(n)))) => {
                        quiet_from = env.now();
                        server.enqueue_input(&buf[..n]);
                    }
                    Ok(Ok(Err(_))) => break "the mail client's connection failed",
                    Ok(Err(_)) => {
                        front.bye(&mut server, "autologout: no command for a long time");
                        flush(&env, &mut server, &mut mail, &config).await;
                        break "the mail client was silent too long";
                    }
                    Err(why) => {
                        front.bye(&mut server, &why);
                        flush(&env, &mut server, &mut mail, &config).await;
                        break "the session ended while the mail client was quiet";
                    }
                }
            }
            Err(Interrupt::Error(e)) => match unparsed(&e) {
                Some((why, discarded)) => {
                    tracing::info!(why, "refused a command from the IMAP client");
                    front.refuse_unparsed(&mut server, discarded, why);
                }
                None => tracing::info!("refused a literal over 32 MiB (APPENDLIMIT)"),
            },
        }
    };
    tracing::info!(why = end, "IMAP session over");
    front.end().await;
}

/// Why a command was refused and the bytes of it imap-next discarded,
/// for an answer; `None` for a synchronizing literal over the limit, which
/// imap-next has answered `tag BAD` itself (a non-synchronizing one is
/// read to its end and comes as malformed).
fn unparsed(e: &ServerError) -> Option<(&'static str, &[u8])> {
    let (why, discarded) = match e {
        ServerError::LiteralTooLong { .. } => return None,
        ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
            ("a line ended in LF, not CRLF", discarded_bytes)
        }
        ServerError::MalformedMessage { discarded_bytes } => {
            ("a command Causeway could not parse", discarded_bytes)
        }
        ServerError::CommandTooLong { discarded_bytes } => {
            ("a command over 32 MiB and 64 KiB", discarded_bytes)
        }
    };
    Some((why, discarded.declassify()))
}

/// Writes everything imap-next holds for the mail client (after the last
/// command of a session; commands pipelined after it are not served).
async fn flush<E: Env>(env: &E, server: &mut Server, mail: &mut E::Stream, config: &ClientConfig) {
    loop {
        match server.next() {
            Err(Interrupt::Io(Io::Output(bytes))) => {
                let within = config.timeouts.request;
                if crate::session::write_to(env, mail, within, &bytes)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
