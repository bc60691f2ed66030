//! Simulation environment: turmoil sockets, turmoil's simulated clock, and a
//! random source derived from the simulation seed.
//!
//! turmoil gives application code no seeded RNG, so each host gets its own
//! ChaCha20 stream from `(seed, host name, incarnation)`. The incarnation counts
//! restarts of a crashed host: a restarted edge must not replay the ephemeral
//! keys of its previous life (that would be a real bug in production, where the
//! OS never repeats), yet the whole run must still follow from the seed.

use std::io;
use std::net::SocketAddr;

use crate::rng::derive_seed;
use crate::{Env, EnvRng, Listener};

/// The wall clock a simulation starts at: 2026-01-01T00:00:00Z. Fixed, so
/// timestamps in traces are the same on every replay.
const SIM_EPOCH_UNIX_MILLIS: u64 = 1_767_225_600_000;

#[derive(Clone, Debug)]
pub struct SimEnv {
    rng: EnvRng,
}

impl SimEnv {
    /// Call inside a turmoil host (or client) closure, once per incarnation.
    pub fn new(seed: u64, host: &str, incarnation: u32) -> Self {
        Self {
            rng: EnvRng::from_seed(derive_seed(
                seed,
                &[host.as_bytes(), &incarnation.to_le_bytes()],
            )),
        }
    }
}

pub struct SimListener(turmoil::net::TcpListener);

impl Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Env for SimEnv {
    type Stream = turmoil::net::TcpStream;
    type Listener = SimListener;

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(SimListener(turmoil::net::TcpListener::bind(addr).await?))
    }

    /// Measured from the start of the whole simulation, not of this host's
    /// incarnation: a host restarted late in a run must see the same wall
    /// clock as everyone else (lock timestamps compare across restarts).
    fn unix_millis(&self) -> u64 {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default();
        SIM_EPOCH_UNIX_MILLIS + elapsed.as_millis() as u64
    }

    fn rng(&self) -> &EnvRng {
        &self.rng
    }
}
