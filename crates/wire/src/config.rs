//! Per-channel settings, and the limits that bound what a peer can make us do.

use std::sync::Arc;
use std::time::Duration;

use crate::contexts::ContextPool;
use crate::error::WireError;

/// Default cap on one application message (serialized, before compression).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// The largest `max_frame` a configuration may ask for. Every frame is held
/// in memory whole (twice, while it is being decompressed), so this is a
/// memory bound per connection.
pub const MAX_FRAME_CEILING: usize = 256 << 20;

/// The strongest zstd level accepted. Levels 20-22 ("ultra") need windows of
/// 32-128 MiB on both sides; 19 needs 8 MiB, which is also the largest window
/// our decoder accepts (see `compress.rs`).
pub const MAX_ZSTD_LEVEL: i32 = 19;

/// What a sender sends first as whole zstd frames, one per unit, each sized
/// for its unit (`ChannelConfig::first_whole`, docs/protocol.md).
pub const FIRST_WHOLE: usize = 16 << 10;

/// The history a resumable channel keeps per direction (see `history.rs`):
/// the shared notes measured most of a primer's gain at 512 KB.
pub const RESUME_HISTORY: usize = 512 << 10;

#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// Largest application message accepted or sent, in serialized bytes.
    pub max_frame: usize,
    /// zstd level for messages sent with `Compress::Yes` (negative =
    /// faster), while the line keeps up with the sender.
    pub zstd_level: i32,
    /// zstd level for a bulk stream on a line slower than the compressor
    /// (chosen by the sender: the edge's body stream, see
    /// `SecureChannel::set_level`). Level 9 and up use a 4 MiB window.
    pub bulk_level: i32,
    /// zstd dictionary; both peers must use the same one.
    pub dictionary: Option<Arc<Vec<u8>>>,
    /// How long the whole Noise handshake may take.
    pub handshake_timeout: Duration,
    /// Bytes of recent plaintext each direction keeps of its open
    /// compression frame, to prime a resumed channel with (`history.rs`);
    /// 0 keeps none. Only where sessions resume (client proxy <-> edge).
    pub history: usize,
    /// `[channel] compression = "per-message"`: every message sent is a
    /// compression frame of its own (a fresh window, no priming on resume),
    /// so no message's compressed size depends on another's content. For
    /// users who fear the BREACH class of side channel (docs/protocol.md,
    /// "Compression side channel"), at a cost in ratio and CPU.
    pub per_message: bool,
    /// A sender's first units, up to this many bytes in all, each go as a
    /// whole zstd frame sized for it ([`FIRST_WHOLE`]; docs/protocol.md):
    /// opening a session never opens a streaming context. 0: every unit
    /// goes into the streaming frame. Sender-side only.
    pub first_whole: usize,
    /// Compression contexts kept between frames for the next one
    /// (`contexts.rs`); clones of this configuration share them, so a
    /// node's channels do.
    pub contexts: ContextPool,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            zstd_level: 3,
            bulk_level: 9,
            dictionary: None,
            // Generous: the lines this runs over can be slow, lossy satellite
            // or radio links where three small messages may take seconds.
            handshake_timeout: Duration::from_secs(30),
            history: 0,
            per_message: false,
            first_whole: FIRST_WHOLE,
            contexts: ContextPool::default(),
        }
    }
}

impl ChannelConfig {
    /// This configuration for a channel whose sessions resume when
    /// `resumes`: each direction then keeps [`RESUME_HISTORY`] bytes of
    /// recent plaintext to prime the resumed channel with (`history.rs`).
    pub fn for_resume(&self, resumes: bool) -> ChannelConfig {
        ChannelConfig {
            history: if resumes { RESUME_HISTORY } else { 0 },
            ..self.clone()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), WireError> {
        if self.max_frame == 0 || self.max_frame > MAX_FRAME_CEILING {
            return Err(WireError::Config(format!(
                "max_frame is {} bytes; it must be between 1 and {MAX_FRAME_CEILING}",
                self.max_frame
            )));
        }
        let min = zstd::zstd_safe::min_c_level();
        for (name, level) in [
            ("zstd_level", self.zstd_level),
            ("bulk_level", self.bulk_level),
        ] {
            if !(min..=MAX_ZSTD_LEVEL).contains(&level) {
                return Err(WireError::Config(format!(
                    "{name} is {level}; it must be between {min} and {MAX_ZSTD_LEVEL}"
                )));
            }
        }
        Ok(())
    }
}
