//! X25519 static keys and the optional pre-shared key, as they appear in
//! configuration files: standard base64, 44 characters, like WireGuard.
//!
//! Private material never prints by accident: `Debug` is redacted and there is
//! no `Display`; writing a secret out takes an explicit `expose_base64()`.
//! Key generation draws from [`EnvRng`], never from the OS directly, so a
//! simulation seed fixes every key it generates.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use causeway_net::EnvRng;
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};

/// Length of every key this crate handles (X25519 public, private, and PSK).
pub const KEY_LEN: usize = 32;

/// A key in configuration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {why} (expected 44 characters of standard base64 encoding 32 bytes)")]
pub struct KeyParseError {
    what: &'static str,
    why: String,
}

fn parse_key(what: &'static str, s: &str) -> Result<[u8; KEY_LEN], KeyParseError> {
    let s = s.trim();
    // Check the length before decoding, so a huge string is refused cheaply.
    if s.len() != 44 {
        return Err(KeyParseError {
            what,
            why: format!("{} characters", s.len()),
        });
    }
    let bytes = STANDARD.decode(s).map_err(|e| KeyParseError {
        what,
        why: e.to_string(),
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| KeyParseError {
        what,
        why: format!("{} bytes", b.len()),
    })
}

/// An X25519 public key: identifies a node (client proxy, edge, relay).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_key("public key", s).map(Self)
    }
}

/// An X25519 private key. Redacted in `Debug`; no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key in configuration syntax. Named so that writing a secret out
    /// is a visible decision in the calling code.
    pub fn expose_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl FromStr for PrivateKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_key("private key", s).map(Self)
    }
}

/// A node's static key pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keypair {
    pub public: PublicKey,
    pub private: PrivateKey,
}

impl Keypair {
    /// A fresh key pair from the environment's random source.
    pub fn generate(rng: &EnvRng) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        Self::from_private(PrivateKey(bytes))
    }

    /// The key pair a private key belongs to (the public half is derived).
    pub fn from_private(private: PrivateKey) -> Self {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("snow's default resolver is built with Curve25519");
        dh.set(&private.0);
        let mut public = [0u8; KEY_LEN];
        public.copy_from_slice(dh.pubkey());
        Self {
            public: PublicKey(public),
            private,
        }
    }
}

/// A 32-byte pre-shared key, mixed into the client <-> edge handshake
/// (`XKpsk3`) when configured. Redacted in `Debug`; no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk([u8; KEY_LEN]);

impl Psk {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn generate(rng: &EnvRng) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn expose_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

impl FromStr for Psk {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_key("pre-shared key", s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_round_trips_through_base64() {
        let kp = Keypair::generate(&EnvRng::from_seed([3; 32]));
        let text = kp.public.to_string();
        assert_eq!(text.len(), 44);
        assert_eq!(text.parse::<PublicKey>().unwrap(), kp.public);
        let private: PrivateKey = kp.private.expose_base64().parse().unwrap();
        assert_eq!(Keypair::from_private(private), kp);
    }

    #[test]
    fn generation_follows_the_rng() {
        let a = Keypair::generate(&EnvRng::from_seed([9; 32]));
        let b = Keypair::generate(&EnvRng::from_seed([9; 32]));
        let c = Keypair::generate(&EnvRng::from_seed([8; 32]));
        assert_eq!(a, b);
        assert_ne!(a.public, c.public);
    }

    #[test]
    fn secrets_are_redacted() {
        let rng = EnvRng::from_seed([1; 32]);
        let kp = Keypair::generate(&rng);
        let psk = Psk::generate(&rng);
        let shown = format!("{kp:?} {psk:?}");
        assert!(!shown.contains(&kp.private.expose_base64()), "{shown}");
        assert!(!shown.contains(&psk.expose_base64()), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let e = "c2hvcnQ=".parse::<PublicKey>().unwrap_err();
        assert!(e.to_string().contains("8 characters"), "{e}");
        let e = "!".repeat(44).parse::<Psk>().unwrap_err();
        assert!(e.to_string().contains("pre-shared key"), "{e}");
    }
}
