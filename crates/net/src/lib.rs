//! The network and environment seam.
//!
//! Every Causeway node (client proxy, edge, relay, model mail server) needs four
//! things from the world: TCP connections, the time, timers and randomness. If
//! any of them were taken directly from the OS, a simulation could not replay a
//! failure: the OS clock moves on its own, OS randomness differs per run, and
//! real sockets cannot be partitioned on command. So nodes are generic over
//! [`Env`], and get all four from it:
//!
//! - [`TokioEnv`]: production. Real tokio sockets, the OS clock, a CSPRNG seeded
//!   from the OS.
//! - [`SimEnv`]: simulation. turmoil sockets (which turmoil can partition, hold,
//!   and kill with their host), turmoil's simulated time, and a CSPRNG seeded
//!   from the simulation seed and the host's name, so that the same seed gives
//!   the same run byte for byte.
//!
//! Beside the seam, the plumbing every node runs on it: [`count`] (live
//! counts that give themselves back) and [`serve`] (the accept loop and the
//! shutdown signal).
//!
//! A lint test (`tests/seam_lint.rs`) fails the build if code outside this crate
//! reaches for `tokio::net`, `Instant::now`, `SystemTime::now`, OS randomness,
//! OS threads or `HashMap` in code that runs in simulation.
//!
//! Owns: the `Env` seam and what every node runs on it (counts, the accept
//! loop). Must not depend on any other Causeway crate: everything else sits
//! on top of it.

mod broken;
pub mod count;
pub mod memory;
pub mod metrics;
mod rng;
pub mod script;
pub mod serve;
mod sim;
pub mod tap;
mod tokio_env;
pub mod wait;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

pub use count::{AgedCount, Count, Ticket};
pub use rng::{EnvRng, derive_seed};
pub use serve::{accept_until_shutdown, shutdown_requested};
pub use sim::SimEnv;
pub use tokio::time::Instant;
pub use tokio_env::TokioEnv;

/// A byte stream to a peer: what every protocol in Causeway runs over.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A bound listening socket.
pub trait Listener: Send + 'static {
    type Stream: Stream;

    /// Waits for the next connection. Deliberately has no timeout: a listener
    /// waiting for clients is idle, not stuck.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address actually bound (useful after binding port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// What a node needs from the world. Cheap to clone; one per host.
pub trait Env: Clone + Send + Sync + 'static {
    type Stream: Stream;
    type Listener: Listener<Stream = Self::Stream>;

    /// Opens a TCP connection to `addr` (`"host:port"`; in simulation `host` is
    /// a turmoil host name). Callers wrap this in [`Env::timeout`]: a SYN into
    /// a partition may never be answered.
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Binds a listener on `addr` (`"127.0.0.1:0"`, `"0.0.0.0:110"`).
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Monotonic time (simulated under turmoil).
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Milliseconds since the Unix epoch, for timestamps people read (logs,
    /// `Received:` headers). Never use it to measure durations: use [`Env::now`].
    fn unix_millis(&self) -> u64;

    /// Sleeps for `d` (simulated under turmoil).
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }

    /// Runs `fut` for at most `d`. On expiry returns an `io::ErrorKind::TimedOut`
    /// error naming `what`, so the person reading it knows which wait gave up.
    fn timeout<F>(
        &self,
        d: Duration,
        what: &'static str,
        fut: F,
    ) -> impl Future<Output = io::Result<F::Output>> + Send
    where
        F: Future + Send,
    {
        async move {
            tokio::time::timeout(d, fut).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out after {} ms waiting for {what}", d.as_millis()),
                )
            })
        }
    }

    /// This host's random source (seeded in simulation).
    fn rng(&self) -> &EnvRng;
}
