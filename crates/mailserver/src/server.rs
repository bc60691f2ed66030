//! The accept loop and the per-connection driver: sockets, timeouts, faults.
//!
//! Everything protocol lives in [`SessionCore`]; this file only moves bytes
//! and decides how a connection ended. Every wait is bounded by the env:
//! a read waits at most `idle_timeout` (then the server hangs up, like
//! Dovecot's 10-minute idle disconnect), and so does a write to a client
//! that stopped reading. Faults are drawn from the env's rng, so a
//! simulation seed replays them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use causeway_net::{Env, Listener};
use causeway_pop3::ServerCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::record::{EndKind, InjectedFault};
use crate::session::SessionCore;
use crate::{Faults, MailStore, ServerConfig};

/// How long to back off after a failed `accept` (e.g. out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Bound on the courtesy writes made while hanging up.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves POP3 on `listener` until the task is dropped, one tokio task per
/// connection. A failing session or `accept` never stops the loop.
pub async fn serve<E: Env>(
    env: E,
    listener: E::Listener,
    store: MailStore,
    config: ServerConfig,
) -> io::Result<()> {
    accept_each(env, listener, store, config, run_session).await
}

/// Accepts connections on `listener` until the task is dropped, each
/// served by `session` in a task of its own.
pub(crate) async fn accept_each<E, F, Fut>(
    env: E,
    mut listener: E::Listener,
    store: MailStore,
    config: ServerConfig,
    session: F,
) -> io::Result<()>
where
    E: Env,
    F: Fn(E, E::Stream, SocketAddr, MailStore, Arc<ServerConfig>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let config = Arc::new(config);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(session(
                    env.clone(),
                    stream,
                    peer,
                    store.clone(),
                    config.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying");
                env.sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

pub async fn run_session<E: Env>(
    env: E,
    mut stream: E::Stream,
    peer: SocketAddr,
    store: MailStore,
    config: Arc<ServerConfig>,
) {
    let mut core = SessionCore::new(store, config.clone(), peer, env.unix_millis());
    tracing::debug!(session = %core.id(), %peer, "session started");
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

/// Talks to the client until the session ends; returns how it ended (which
/// the core ignores if QUIT or a refused line already ended it).
async fn drive<E: Env>(
    env: &E,
    stream: &mut E::Stream,
    core: &mut SessionCore,
    config: &ServerConfig,
) -> EndKind {
    if let Err(kind) = send(env, stream, core, config, &core.greeting()).await {
        return kind;
    }
    let mut codec = ServerCodec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(input) = codec.next_command() {
            let refuse = core.is_update(&input)
                && core.faults_enabled()
                && config.faults.quit_refusal_probability > 0.0
                && env.rng().chance(config.faults.quit_refusal_probability);
            let reply = if refuse {
                core.refuse_quit(env.unix_millis())
            } else {
                core.handle(input, env.unix_millis())
            };
            if !reply.delay.is_zero() {
                env.sleep(reply.delay).await;
            }
            if let Err(kind) = send(env, stream, core, config, &reply.bytes).await {
                return kind;
            }
            if reply.close {
                return EndKind::Quit;
            }
        }
        let goodbye = b"-ERR Disconnected for inactivity.\r\n";
        match next_bytes(env, stream, &mut buf, config.idle_timeout, goodbye).await {
            Ok(n) => codec.feed(&buf[..n]),
            Err(kind) => return kind,
        }
    }
}

/// Sends one reply, with whatever faults the config asks for. `Err` says
/// the session is over and how.
/// Reads what the client sends next. Its end is [`EndKind::Abrupt`]; a
/// client silent for `idle` gets `goodbye` and [`EndKind::IdleTimeout`].
pub(crate) async fn next_bytes<E: Env>(
    env: &E,
    stream: &mut E::Stream,
    buf: &mut [u8],
    idle: Duration,
    goodbye: &[u8],
) -> Result<usize, EndKind> {
    match env
        .timeout(idle, "the client's next command", stream.read(buf))
        .await
    {
        Ok(Ok(0)) | Ok(Err(_)) => Err(EndKind::Abrupt),
        Ok(Ok(n)) => Ok(n),
        Err(_) => {
            let _ = env
                .timeout(
                    GOODBYE_TIMEOUT,
                    "the client to take our goodbye",
                    stream.write_all(goodbye),
                )
                .await;
            Err(EndKind::IdleTimeout)
        }
    }
}

async fn send<E: Env>(
    env: &E,
    stream: &mut E::Stream,
    core: &SessionCore,
    config: &ServerConfig,
    bytes: &[u8],
) -> Result<(), EndKind> {
    if bytes.is_empty() {
        return Ok(());
    }
    let faults = &config.faults;
    let inject = core.faults_enabled();
    if let Some(d) = reply_delay(env, faults).filter(|_| inject) {
        env.sleep(d).await;
    }
    if inject && faults.stall_probability > 0.0 && env.rng().chance(faults.stall_probability) {
        core.record_fault(InjectedFault::Stall(faults.stall_for));
        env.sleep(faults.stall_for).await;
    }
    let mut out = bytes;
    let mut drop_after = false;
    if inject
        && faults.drop_mid_response_probability > 0.0
        && bytes.len() > 1
        && env.rng().chance(faults.drop_mid_response_probability)
    {
        let cut = env.rng().range(1, bytes.len() as u64) as usize;
        core.record_fault(InjectedFault::DropMidResponse {
            sent: cut,
            of: bytes.len(),
        });
        out = &bytes[..cut];
        drop_after = true;
    }
    let written = env
        .timeout(config.idle_timeout, "the client to take our reply", async {
            stream.write_all(out).await?;
            stream.flush().await
        })
        .await;
    match written {
        Err(_) => Err(EndKind::IdleTimeout),
        Ok(Err(_)) => Err(EndKind::Abrupt),
        Ok(Ok(())) if drop_after => Err(EndKind::Abrupt),
        Ok(Ok(())) => Ok(()),
    }
}

fn reply_delay<E: Env>(env: &E, f: &Faults) -> Option<Duration> {
    if f.reply_delay_max.is_zero() {
        return None;
    }
    let lo = f.reply_delay_min.min(f.reply_delay_max).as_micros() as u64;
    let hi = f.reply_delay_max.as_micros() as u64;
    Some(Duration::from_micros(env.rng().range(lo, hi + 1)))
}
