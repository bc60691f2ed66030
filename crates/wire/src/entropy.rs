//! Hands snow the environment's random source instead of the OS's.
//!
//! snow's default resolver draws ephemeral keys from `getrandom`. That would
//! make every simulated handshake different on replay, so this resolver
//! answers `resolve_rng` with an adapter over [`EnvRng`] (seeded from the
//! simulation seed under turmoil, from the OS in production) and leaves the
//! primitives themselves (X25519, ChaCha20-Poly1305, BLAKE2s) to snow.

use causeway_net::EnvRng;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

pub(crate) struct EnvResolver {
    rng: EnvRng,
}

impl EnvResolver {
    pub(crate) fn new(rng: &EnvRng) -> Self {
        Self { rng: rng.clone() }
    }
}

struct EnvRandom(EnvRng);

impl Random for EnvRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for EnvResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(EnvRandom(self.rng.clone())))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}
