//! Everything that can go wrong on a channel, worded for the person who has to
//! act on it.
//!
//! Each variant says what was refused and why. The split matters to callers,
//! and [`WireError::is_line_failure`] draws it: the line dropping (`Io`,
//! `Truncated`, `HandshakeCut`, `HandshakeTimeout`) is temporary and worth
//! a reconnect, and is never blamed on keys, because a cut line and a peer
//! that silently refused us look the same from here; configuration problems
//! a completed (or half) handshake proves (`PeerNotAllowed`, `PeerUnproven`,
//! `NotForUs`, `PskMismatch`...) deserve a loud log line and no retry;
//! `Decrypt`, `Decode` and the size limits mean the peer (or someone on the
//! path) sent bytes we will not trust, and the connection is over.

use std::io;

use crate::keys::PublicKey;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("channel i/o failed: {0}")]
    Io(#[from] io::Error),

    #[error("the channel configuration is invalid: {0}")]
    Config(String),

    #[error("the Noise handshake did not finish within {after_ms} ms")]
    HandshakeTimeout { after_ms: u128 },

    #[error("client key {key} is not on this edge's allow list")]
    PeerNotAllowed { key: PublicKey },

    #[error("the peer did not prove possession of the pinned key {pinned}")]
    PeerUnproven { pinned: PublicKey },

    #[error(
        "the connection ended during the secure handshake (at {waiting_for}): the \
         line was cut, or the peer did not accept us{}",
        pinned_note(pinned)
    )]
    HandshakeCut {
        waiting_for: &'static str,
        /// The key we pinned for the peer, when we are the initiator.
        pinned: Option<PublicKey>,
    },

    #[error(
        "a peer's first handshake message did not decrypt with our key {ours}: \
         it pinned a different key for this node, or only one side has a \
         pre-shared key configured (or the message was damaged)"
    )]
    NotForUs { ours: PublicKey },

    #[error(
        "the peer's first handshake message did not decrypt: either it is not \
         {expected} (the key pinned for it), or it does not know us as {ours}"
    )]
    KkMismatch {
        expected: PublicKey,
        ours: PublicKey,
    },

    #[error(
        "the peer's first handshake message matched none of the {tried} pinned \
         peer keys (or it does not know us as {ours})"
    )]
    NoPinnedPeerMatched { tried: usize, ours: PublicKey },

    #[error(
        "the client's last handshake message did not decrypt: its pre-shared key \
         differs from ours, or only one side has one configured"
    )]
    PskMismatch,

    #[error("the handshake failed at {stage}: {detail}")]
    Handshake { stage: &'static str, detail: String },

    #[error(
        "a record failed authentication: it was tampered with, replayed, reordered \
         or belongs to another session"
    )]
    Decrypt,

    #[error("{}", truncated_message(*frames_received))]
    Truncated { frames_received: u64 },

    #[error("a frame of at least {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },

    #[error("a compressed frame expands beyond the limit of {limit} bytes; refused")]
    DecompressedTooLarge { limit: usize },

    #[error("zstd could not decompress a frame (do both peers use the same dictionary?): {0}")]
    Decompress(String),

    #[error("zstd failed to compress a frame: {0}")]
    Compress(String),

    #[error("could not decode what the peer sent: {0}")]
    Decode(String),

    #[error("could not encode the message: {0}")]
    Encode(String),

    #[error("the peer broke the framing rules: {0}")]
    Protocol(&'static str),

    #[error("the cipher refused to seal a record: {0}")]
    Crypto(String),

    #[error(
        "this side of the channel already failed (or a send was cancelled \
         half-way); open a new connection"
    )]
    Broken,
}

fn truncated_message(frames_received: u64) -> String {
    let base = "the peer's stream ended without a close frame (the connection was cut)";
    if frames_received == 0 {
        format!(
            "{base} before any frame arrived (if it keeps happening right after the \
             handshake, the peer may be refusing our pre-shared key)"
        )
    } else {
        format!("{base} after {frames_received} frames")
    }
}

fn pinned_note(pinned: &Option<PublicKey>) -> String {
    match pinned {
        Some(k) => format!(
            " (if it keeps happening, check that the peer holds the key pinned for it, {k}, \
             and accepts ours)"
        ),
        None => String::new(),
    }
}

impl WireError {
    /// True if the line failed (cut, silent, reset), which a retry may fix:
    /// never a proof that a key or a setting is wrong.
    pub fn is_line_failure(&self) -> bool {
        matches!(
            self,
            WireError::Io(_)
                | WireError::Truncated { .. }
                | WireError::HandshakeCut { .. }
                | WireError::HandshakeTimeout { .. }
        )
    }

    /// Maps an i/o error while reading: an early EOF is a cut connection.
    pub(crate) fn from_read(e: io::Error, frames_received: u64) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WireError::Truncated { frames_received }
        } else {
            WireError::Io(e)
        }
    }
}
