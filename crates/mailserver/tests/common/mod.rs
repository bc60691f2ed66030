//! Shared by the integration tests: a deliberately dumb POP3 client (so the
//! tests control every byte, including hanging up mid-session) and a turmoil
//! rig with the model server on host `mail`.
#![allow(dead_code)] // each test binary uses a different part

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use causeway_mailserver::{MailStore, ServerConfig, serve};
use causeway_net::{Env, SimEnv, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const MAIL: &str = "mail:110";

/// A raw POP3 connection.
pub struct Conn<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Stream> Conn<S> {
    /// Connects and returns the connection and the greeting line.
    pub async fn open<E: Env<Stream = S>>(env: &E, addr: &str) -> io::Result<(Self, String)> {
        let s = env.connect(addr).await?;
        let mut c = Conn { s, buf: Vec::new() };
        let greeting = c.line().await?;
        Ok((c, greeting))
    }

    /// One reply line without CRLF; `UnexpectedEof` if the server hung up.
    pub async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..p + 2).take(p).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "server hung up; partial line {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.s.write_all(bytes).await
    }

    /// Sends `cmd` and returns the status line.
    pub async fn cmd(&mut self, cmd: &str) -> io::Result<String> {
        self.send(format!("{cmd}\r\n").as_bytes()).await?;
        self.line().await
    }

    /// Sends `cmd`; returns the status line and, after `+OK`, the
    /// unstuffed body (CRLF line ends kept).
    pub async fn multi(&mut self, cmd: &str) -> io::Result<(String, Vec<u8>)> {
        let status = self.cmd(cmd).await?;
        let mut body = Vec::new();
        if status.starts_with("+OK") {
            loop {
                let l = self.line().await?;
                if l == "." {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l);
                body.extend_from_slice(l.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
        }
        Ok((status, body))
    }

    /// USER + PASS; returns the PASS reply.
    pub async fn login(&mut self, user: &str, pass: &str) -> io::Result<String> {
        let r = self.cmd(&format!("USER {user}")).await?;
        assert_eq!(r, "+OK", "USER reply");
        self.cmd(&format!("PASS {pass}")).await
    }

    /// `UIDL` as (number, uidl) pairs.
    pub async fn uidls(&mut self) -> io::Result<Vec<(u32, String)>> {
        let (st, body) = self.multi("UIDL").await?;
        assert!(st.starts_with("+OK"), "{st}");
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .map(|l| {
                let (n, u) = l.split_once(' ').unwrap();
                (n.parse().unwrap(), u.to_owned())
            })
            .collect())
    }

    /// Hangs up without QUIT.
    pub fn vanish(self) {}
}

/// Waits (bounded) until the server has recorded the end of every session.
pub async fn settled<E: Env>(env: &E, store: &MailStore) {
    for _ in 0..200 {
        if store.live_sessions().is_empty() {
            return;
        }
        env.sleep(Duration::from_millis(10)).await;
    }
    panic!("sessions never ended:\n{}", store.report());
}

/// A store with users alice/secret and bob/hunter2, drawing UIDVALIDITYs
/// from `seed`.
pub fn store(seed: u64) -> MailStore {
    let rng = causeway_net::EnvRng::from_seed(causeway_net::derive_seed(seed, &[b"store"]));
    let s = MailStore::with_rng(&rng);
    s.add_user("alice", "secret");
    s.add_user("bob", "hunter2");
    s
}

/// A simulation (simulated time, up to two hours) with the model server on
/// `mail:110`. The store lives outside the host, so it survives crashes.
pub fn sim_with_server(
    seed: u64,
    store: &MailStore,
    config: ServerConfig,
) -> turmoil::Sim<'static> {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(7200))
        .tick_duration(Duration::from_millis(10))
        .rng_seed(seed)
        .build();
    let store = store.clone();
    let incarnation = Arc::new(AtomicU32::new(0));
    sim.host("mail", move || {
        let store = store.clone();
        let config = config.clone();
        let inc = incarnation.fetch_add(1, Ordering::SeqCst);
        async move {
            let env = SimEnv::new(seed, "mail", inc);
            let l = env.bind("0.0.0.0:110").await?;
            serve(env, l, store, config).await?;
            Ok(())
        }
    });
    sim
}

pub fn client_env(seed: u64, name: &str) -> SimEnv {
    SimEnv::new(seed, name, 0)
}
