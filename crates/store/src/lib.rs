//! Durable, sealed key/value storage for acknowledged work.
//!
//! Two nodes promise work they have not done yet: the edge owes a mail
//! server the deletes and read marks it acknowledged (its crash journal),
//! and the client proxy owes the edge the deletes it acknowledged to the
//! mail client on its own (its delete journal). Both keep that promise on a
//! disk that must survive their crash, and both hold secrets there (the
//! edge credentials, both UIDLs), so both use this crate:
//!
//! - [`JournalStore`], the seam: a key/value store with atomic, durable
//!   batches. [`RedbStore`] in production (a redb file, `fsync` per commit),
//!   [`SimDisk`] in simulation and tests (it outlives a crashed process and
//!   drops what was not synced);
//! - [`Sealer`]: every value sealed with ChaCha20-Poly1305 under the node's
//!   journal key, with a fresh nonce and the entry's key as associated data,
//!   so nothing in the store is readable without the key and a value cannot
//!   be moved to another key.
//!
//! What each node writes, and when, is in its own journal module.

mod redb_store;
mod sim_disk;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use causeway_net::EnvRng;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

pub use redb_store::RedbStore;
pub use sim_disk::{CommitFault, SimDisk};

/// What a store hands back: boxed, so that stores can sit behind `dyn`.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'static>>;

/// One change in a [`JournalStore::commit`] batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Deleting a key that is not there is not an error.
    Delete {
        key: Vec<u8>,
    },
}

/// Where a journal lives: a small key/value store with atomic, durable
/// batches.
pub trait JournalStore: Send + Sync + 'static {
    /// Applies every write of `batch`, all or nothing. When the future
    /// answers `Ok` the batch is durable: it survives a crash of the process
    /// (and, for a real disk, of the machine). An `Err` means none of it may
    /// be relied on.
    fn commit(&self, batch: Vec<Write>) -> StoreFuture<()>;

    /// Every durable entry, in key order.
    fn scan(&self) -> StoreFuture<Vec<(Vec<u8>, Vec<u8>)>>;

    /// For logs: what and where the store is ("redb at /var/lib/...").
    fn describe(&self) -> String;
}

/// The 32-byte key that seals journal entries at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalKey([u8; 32]);

impl JournalKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key derived from a node's static private key (SHA-256 with a
    /// domain label naming the node's role), so an operator has no second
    /// secret to keep: whoever can read the journal's key can impersonate
    /// the node anyway.
    pub fn derive_from(label: &str, private: &causeway_wire::PrivateKey) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(label.as_bytes());
        h.update(b"\0");
        h.update(private.as_bytes());
        Self(h.finalize().into())
    }
}

impl fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JournalKey(<redacted>)")
    }
}

/// Where a node's journal is and how it is sealed.
#[derive(Clone)]
pub struct JournalConfig {
    pub store: Arc<dyn JournalStore>,
    pub key: JournalKey,
}

impl JournalConfig {
    pub fn new(store: impl JournalStore, key: JournalKey) -> Self {
        Self {
            store: Arc::new(store),
            key,
        }
    }

    /// The production journal: a redb file at `path` (created if missing).
    pub fn redb(path: impl AsRef<std::path::Path>, key: JournalKey) -> io::Result<Self> {
        Ok(Self::new(RedbStore::open(path)?, key))
    }

    /// The sealer for this journal's key.
    pub fn sealer(&self, rng: EnvRng) -> Sealer {
        Sealer::new(&self.key, rng)
    }
}

impl fmt::Debug for JournalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalConfig")
            .field("store", &self.store.describe())
            .field("key", &self.key)
            .finish()
    }
}

const NONCE_LEN: usize = 12;

/// Seals and opens values under a [`JournalKey`], bound to their entry key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Arc<ChaCha20Poly1305>,
    rng: EnvRng,
}

impl Sealer {
    pub fn new(key: &JournalKey, rng: EnvRng) -> Self {
        Self {
            cipher: Arc::new(ChaCha20Poly1305::new(Key::from_slice(&key.0))),
            rng,
        }
    }

    /// `plain` sealed for the entry `key`: nonce, then ciphertext and tag.
    pub fn seal(&self, key: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: key,
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any journal-sized message");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plain value of the entry `key`, if it opens with this key.
    pub fn open(&self, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE_LEN {
            return Err("the entry is too short".into());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: key })
            .map_err(|_| {
                "the entry does not open with the configured journal key (a different key, \
                 or a damaged entry)"
                    .to_owned()
            })
    }

    /// A random number from the node's environment (seeded in simulation).
    pub fn next_u64(&self) -> u64 {
        self.rng.next_u64()
    }
}

/// What decoding one journal record may allocate. A record is
/// authenticated before it is decoded, so only the node's own writes get
/// here; the cap keeps a damaged disk from asking for gigabytes all the same.
pub const RECORD_DECODE_LIMIT: usize = 1 << 16;

/// A record as bincode writes it.
pub fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .expect("journal records always encode")
}

/// A record read back, within [`RECORD_DECODE_LIMIT`].
pub fn decode<T: for<'de> serde::Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let config = bincode::config::standard().with_limit::<RECORD_DECODE_LIMIT>();
    match bincode::serde::decode_from_slice(bytes, config) {
        Ok((v, n)) if n == bytes.len() => Ok(v),
        // Bytes left over: another layout (or a damaged record) that merely
        // begins like this one.
        Ok((_, n)) => Err(format!("{} bytes after the record", bytes.len() - n)),
        Err(e) => Err(e.to_string()),
    }
}
