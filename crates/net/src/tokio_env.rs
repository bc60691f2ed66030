//! Production environment: real sockets, the OS clock, OS-seeded randomness.

use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Env, EnvRng, Listener};

#[derive(Clone, Debug)]
pub struct TokioEnv {
    rng: EnvRng,
}

impl TokioEnv {
    pub fn new() -> Self {
        Self {
            rng: EnvRng::from_os(),
        }
    }
}

impl Default for TokioEnv {
    fn default() -> Self {
        Self::new()
    }
}

pub struct TokioListener(tokio::net::TcpListener);

impl Listener for TokioListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, peer) = self.0.accept().await?;
        // Mail protocols are chatty request/response: Nagle only adds latency.
        s.set_nodelay(true)?;
        Ok((s, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Env for TokioEnv {
    type Stream = tokio::net::TcpStream;
    type Listener = TokioListener;

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(TokioListener(tokio::net::TcpListener::bind(addr).await?))
    }

    fn unix_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn rng(&self) -> &EnvRng {
        &self.rng
    }
}
