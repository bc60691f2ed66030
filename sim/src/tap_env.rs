//! An [`Env`] wrapper that taps every stream it hands out.
//!
//! Invariant 7 ("no plaintext mail or password on the edge <-> relay link")
//! is checked on the bytes that actually crossed the link, not on what the
//! nodes believe they sent. The nodes take their sockets from `Env`, so
//! wrapping the env of a host taps its links without touching production
//! code: every connection made or accepted gets its own [`TapLog`], labelled
//! with the peer, for the harness to search at the end.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_net::tap::{TapLog, Tapped};
use causeway_net::{Env, EnvRng, Instant, Listener};

use crate::line::Paced;
use crate::swarm::LineRate;

/// One tapped connection: how it was made, and its bytes.
#[derive(Clone)]
pub struct TapEntry {
    /// `"connect <addr>"` or `"accept <peer>"`.
    pub label: String,
    pub accepted: bool,
    pub log: TapLog,
}

/// Every connection a tapped env made or accepted, across incarnations.
#[derive(Clone, Default)]
pub struct Taps {
    inner: Arc<Mutex<Vec<TapEntry>>>,
}

impl Taps {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, label: String, accepted: bool) -> TapLog {
        let log = TapLog::new();
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(TapEntry {
                label,
                accepted,
                log: log.clone(),
            });
        log
    }

    pub fn entries(&self) -> Vec<TapEntry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Bytes read so far on the streams this side connected (not those
    /// it accepted), without copying the list: asked every tick.
    pub fn read_by_connections(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| !e.accepted)
            .map(|e| e.log.read_total())
            .sum()
    }
}

/// `E`, its streams tapped; those it connects go through a line of `line`'s
/// rate (the client proxy's connections to the edge: the bad line).
#[derive(Clone)]
pub struct TappedEnv<E> {
    inner: E,
    taps: Taps,
    line: Option<LineRate>,
}

impl<E: Env> TappedEnv<E> {
    pub fn new(inner: E, taps: Taps, line: Option<LineRate>) -> Self {
        Self { inner, taps, line }
    }
}

pub struct TappedListener<L> {
    inner: L,
    taps: Taps,
}

impl<L: Listener> Listener for TappedListener<L> {
    type Stream = Tapped<Paced<L::Stream>>;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, peer) = self.inner.accept().await?;
        let log = self.taps.add(format!("accept {peer}"), true);
        Ok((Tapped::new(Paced::new(s, None), log), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl<E: Env> Env for TappedEnv<E> {
    type Stream = Tapped<Paced<E::Stream>>;
    type Listener = TappedListener<E::Listener>;

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        let s = self.inner.connect(addr).await?;
        let log = self.taps.add(format!("connect {addr}"), false);
        Ok(Tapped::new(Paced::new(s, self.line), log))
    }

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(TappedListener {
            inner: self.inner.bind(addr).await?,
            taps: self.taps.clone(),
        })
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn unix_millis(&self) -> u64 {
        self.inner.unix_millis()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        self.inner.sleep(d)
    }

    fn rng(&self) -> &EnvRng {
        self.inner.rng()
    }
}
