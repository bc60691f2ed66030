//! The secure framed channel between Causeway's own nodes: client proxy <->
//! edge, and edge <-> relay.
//!
//! The lines these nodes talk over are slow and drop out, and they carry
//! people's passwords and mail. So the channel has to be cheap in bytes,
//! authenticate both ends against keys pinned in configuration, tell a cut
//! line from a finished conversation, and survive a hostile peer without
//! allocating what it asks for. Layers, bottom up (each its own module):
//!
//! - [`record`]: `u16` length-prefixed records, at most one Noise message.
//! - `handshake`: Noise XK / XKpsk3 (client -> edge) and KK (edge <-> relay),
//!   as a sans-IO state machine with errors that name the refused key.
//! - `frame` + `codec`: the wire layer's frames (`More`, `Last`, `Close`),
//!   bincode with an explicit limit on every decode.
//! - `compress`: one zstd streaming context per direction; frames marked
//!   [`Compress::Never`] (credentials) never enter it. [`history`]: the
//!   recent plaintext that primes a resumed channel's contexts.
//!   `contexts`: the contexts a node's channels hand on from a frame that
//!   ended to the next one opened ([`ContextPool`]).
//! - `seal`: one direction's cipher, chunking, size caps and compression, as
//!   pure functions over bytes.
//! - `channel` + `establish`: the thin async driver and the public entry
//!   points [`connect_xk`], [`accept_xk`], [`connect_kk`], [`accept_kk`],
//!   [`accept_kk_any`].
//! - [`link`]: deadline-bounded `send`/`recv`/`close` over a channel, and the
//!   [`Message`] trait through which a message says it carries a credential
//!   (and so is never compressed).
//!
//! The channel is generic over the application's message type: any
//! `Serialize`/`DeserializeOwned` type; the catalogue lives with the node
//! protocol. Randomness (static and ephemeral keys) comes from
//! `causeway_net::Env::rng`, so simulated runs replay byte for byte.
//! `docs/protocol.md` describes the bytes on the line.
//!
//! Owns: records, handshakes, sealing, compression, frames and their limits.
//! Depends only on `causeway-net`; knows nothing about mail (the catalogue
//! is `causeway-proto`'s), so it can be fuzzed and reasoned about alone.

pub mod binding;
mod channel;
pub mod codec;
mod compress;
mod config;
mod contexts;
mod counters;
pub mod dictionary;
mod entropy;
mod error;
mod establish;
mod frame;
pub mod fuzzing;
mod handshake;
pub mod history;
mod keys;
pub mod link;
pub mod record;
mod seal;

pub use channel::{Parked, Received, SecureChannel};
pub use config::{
    ChannelConfig, DEFAULT_MAX_FRAME, FIRST_WHOLE, MAX_FRAME_CEILING, MAX_ZSTD_LEVEL,
    RESUME_HISTORY,
};
pub use contexts::ContextPool;
pub use counters::{Counters, DirectionCounts, Meter};
pub use error::WireError;
pub use establish::{accept_kk, accept_kk_any, accept_xk, connect_kk, connect_xk};
pub use frame::{MAX_CHUNK, MAX_CLOSE_REASON};
pub use keys::{KEY_LEN, KeyParseError, Keypair, PrivateKey, Psk, PublicKey};
pub use link::{LinkEnd, Message};
pub use seal::Compress;
