//! One direction of an established channel, without any I/O: [`Sealer`]
//! turns messages into records, [`Opener`] turns records back into messages.
//!
//! Each owns its direction's cipher (key and nonce counter, from Noise's
//! split) and its direction's compression context, which is what lets a
//! reader task and a writer task run without sharing any lock. Both take
//! bytes and give bytes, so every rule about hostile input (authentication,
//! ordering, size caps, decompression bombs, malformed frames) is tested here
//! without sockets.
//!
//! Size rules. A message is refused at the sender if its serialized form
//! exceeds `max_frame`. At the receiver, pieces of a body are appended only
//! while the total stays within `max_frame` (or zstd's worst-case expansion
//! of it, `compress_bound(max_frame)`, for the compressed bytes); a
//! compressed body may not decompress past `max_frame`. So a peer can make us
//! hold at most about twice `max_frame` per direction, whatever it declares.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use snow::StatelessTransportState;

use crate::codec;
use crate::compress::{Compressor, Decompressor};
use crate::config::ChannelConfig;
use crate::counters::{Counters, Dir};
use crate::error::WireError;
use crate::frame::{Frame, MAX_CHUNK, MAX_CLOSE_REASON, cap_reason};
use crate::history::History;
use crate::record::{self, HEADER_LEN, MAX_RECORD, TAG_LEN};

/// The keys Noise's split produced. Shared by the two halves of a channel,
/// but each half only ever touches its own direction's key and keeps its own
/// nonce, so there is no lock and no shared mutable state.
pub(crate) type Transport = Arc<StatelessTransportState>;

/// Whether a message goes through the compression context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    /// Compress with this direction's streaming zstd context: mail, listings.
    Yes,
    /// Never compress, never enter the context: anything carrying a secret
    /// (passwords, tokens), so its length cannot leak through compression.
    Never,
}

pub(crate) struct Sealer {
    transport: Transport,
    nonce: u64,
    compressor: Compressor,
    max_frame: usize,
    counters: Counters,
    /// The unit being collected: `Compress::Yes` messages, each as a
    /// LEB128 length and its bytes, compressed together at the next flush.
    unit: Vec<u8>,
    /// The serialized bytes in `unit`, without the length prefixes.
    unit_plain: usize,
    /// Each `Compress::Yes` message is a unit and a frame of its own
    /// (`ChannelConfig::per_message`).
    per_message: bool,
}

impl Sealer {
    pub(crate) fn new(transport: Transport, cfg: &ChannelConfig, counters: Counters) -> Self {
        Self {
            transport,
            nonce: 0,
            compressor: Compressor::new(cfg),
            max_frame: cfg.max_frame,
            counters,
            unit: Vec::new(),
            unit_plain: 0,
            per_message: cfg.per_message,
        }
    }

    /// Appends to `out` the records carrying one message (`plain` is its
    /// serialized form), with any messages queued before it (the tests'
    /// shorthand for queue and flush). `FrameTooLarge`
    /// is returned before any state changes; after any other error this
    /// sealer must not be used again.
    #[cfg(test)]
    pub(crate) fn seal_message(
        &mut self,
        plain: &[u8],
        c: Compress,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        self.queue_message(plain, c, out)?;
        self.flush(out)
    }

    /// Adds one message to the unit being collected (`Compress::Yes`), or
    /// seals it alone after the unit (`Compress::Never`: it stays out of the
    /// compression context). Records go to `out` when a unit fills up.
    pub(crate) fn queue_message(
        &mut self,
        plain: &[u8],
        c: Compress,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        if plain.len() > self.max_frame {
            return Err(WireError::FrameTooLarge {
                size: plain.len(),
                limit: self.max_frame,
            });
        }
        match c {
            Compress::Yes => {
                if self.per_message
                    || self.unit.len() + MAX_PREFIX + plain.len() > unit_cap(self.max_frame)
                {
                    self.flush(out)?;
                }
                put_prefix(&mut self.unit, plain.len());
                self.unit.extend_from_slice(plain);
                self.unit_plain += plain.len();
                if self.per_message {
                    self.flush(out)?;
                }
                Ok(())
            }
            Compress::Never => {
                self.flush(out)?;
                self.counters.add_frame(Dir::Sent, plain.len(), plain.len());
                self.seal_body(plain, false, out)
            }
        }
    }

    /// Compresses and seals the unit collected so far, if any.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.unit.is_empty() {
            return Ok(());
        }
        let unit = std::mem::take(&mut self.unit);
        let plain = std::mem::take(&mut self.unit_plain);
        let prefix = unit.len() - plain;
        let r = if self.compressor.open_level().is_none() && prefix == 1 && plain <= SMALL {
            // One small message while resting: a fresh context would make
            // it larger, and opening one costs memory on both ends (this is
            // what keeps an idle session's pings context-free).
            self.counters.add_frame(Dir::Sent, plain, plain);
            self.seal_body(&unit[1..], false, out)
        } else {
            let mut body = self.compressor.compress(&unit)?;
            if self.per_message {
                // The unit holds one message: its frame ends with it.
                body.extend_from_slice(&self.compressor.finish()?);
            }
            self.counters.add_frame(Dir::Sent, plain, body.len());
            self.seal_body(&body, true, out)
        };
        if unit.capacity() <= KEEP_UNIT {
            self.unit = unit;
            self.unit.clear();
        }
        r
    }

    /// Seals what is queued, then ends the compression frame and frees its
    /// context (the peer frees its own when the frame's end arrives) and
    /// the unit buffer, which a transfer grew.
    pub(crate) fn rest(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.flush(out)?;
        self.unit = Vec::new();
        let end = self.compressor.finish()?;
        if end.is_empty() {
            return Ok(());
        }
        self.counters.add_frame(Dir::Sent, 0, end.len());
        self.seal_body(&end, true, out)
    }

    /// See [`Compressor::prime`].
    pub(crate) fn prime(&mut self, primer: Vec<u8>) -> bool {
        self.compressor.prime(primer)
    }

    /// See [`Compressor::discard`]; what was queued is dropped too.
    pub(crate) fn discard(&mut self) -> History {
        self.unit = Vec::new();
        self.unit_plain = 0;
        self.compressor.discard()
    }

    /// The zstd level of the next compression frame (see `compress.rs`).
    pub(crate) fn set_level(&mut self, level: i32) {
        self.compressor.set_level(level);
    }

    /// See [`Compressor::expect`].
    pub(crate) fn expect(&mut self, bytes: u64) {
        self.compressor.expect(bytes);
    }

    /// The level of the open compression frame, if one is open.
    pub(crate) fn compressing(&self) -> Option<i32> {
        self.compressor.open_level()
    }

    /// Cuts a frame body into records.
    fn seal_body(
        &mut self,
        body: &[u8],
        compressed: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let pieces = body.len().div_ceil(MAX_CHUNK).max(1);
        for i in 0..pieces {
            let piece =
                &body[(i * MAX_CHUNK).min(body.len())..((i + 1) * MAX_CHUNK).min(body.len())];
            let frame = if i + 1 < pieces {
                Frame::More(piece)
            } else {
                Frame::Last {
                    compressed,
                    body: piece,
                }
            };
            self.seal_frame(&frame, out)?;
        }
        Ok(())
    }

    /// Appends what is queued, then the close record; `reason` is cut to
    /// 256 bytes.
    pub(crate) fn seal_close(&mut self, reason: &str, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.flush(out)?;
        self.seal_frame(
            &Frame::Close {
                reason: cap_reason(reason),
            },
            out,
        )
    }

    fn seal_frame(&mut self, frame: &Frame<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.seal_plaintext(&codec::encode(frame)?, out)
    }

    pub(crate) fn seal_plaintext(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let start = out.len();
        let len = plaintext.len() + TAG_LEN;
        if len > MAX_RECORD {
            return Err(WireError::Crypto(format!(
                "a {len}-byte record exceeds the Noise maximum"
            )));
        }
        out.resize(start + HEADER_LEN + len, 0);
        out[start..start + HEADER_LEN].copy_from_slice(&record::header(len));
        self.transport
            .write_message(self.nonce, plaintext, &mut out[start + HEADER_LEN..])
            .map_err(|e| WireError::Crypto(e.to_string()))?;
        self.nonce += 1;
        self.counters.add_wire(Dir::Sent, HEADER_LEN + len);
        Ok(())
    }
}

/// What a record completed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// A whole message, serialized (decode it with [`Opener::decode`]).
    Message(Vec<u8>),
    /// The peer closed its direction.
    Close(String),
}

pub(crate) struct Opener {
    transport: Transport,
    nonce: u64,
    decompressor: Decompressor,
    max_frame: usize,
    /// Cap on a body's carried (possibly compressed) bytes.
    max_carried: usize,
    counters: Counters,
    /// Pieces of the body being reassembled.
    partial: Vec<u8>,
    /// Messages of the last unit not yet returned, in order.
    queued: VecDeque<Vec<u8>>,
    /// The last record's plaintext; sized as `RecordBuf` is (`fit`).
    plaintext: Vec<u8>,
    frames: u64,
    closed: Option<String>,
    failed: bool,
}

impl Opener {
    pub(crate) fn new(transport: Transport, cfg: &ChannelConfig, counters: Counters) -> Self {
        Self {
            transport,
            nonce: 0,
            decompressor: Decompressor::new(cfg),
            max_frame: cfg.max_frame,
            max_carried: zstd::zstd_safe::compress_bound(unit_cap(cfg.max_frame)) + END_SLACK,
            counters,
            partial: Vec::new(),
            queued: VecDeque::new(),
            plaintext: Vec::new(),
            frames: 0,
            closed: None,
            failed: false,
        }
    }

    /// Messages received so far.
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    /// The peer's close reason, once its close frame arrived.
    pub(crate) fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Fails with `Broken` if an earlier error ended this direction.
    pub(crate) fn check_usable(&self) -> Result<(), WireError> {
        if self.failed {
            Err(WireError::Broken)
        } else {
            Ok(())
        }
    }

    /// Records `e` as the end of this direction, and returns it.
    pub(crate) fn fail(&mut self, e: WireError) -> WireError {
        self.failed = true;
        e
    }

    /// Authenticates and decodes one record body. Any error ends this
    /// direction: the nonce sequence or the compression context could
    /// otherwise be out of step with the peer's.
    pub(crate) fn open_record(&mut self, record: &[u8]) -> Result<Option<Opened>, WireError> {
        self.check_usable()?;
        let r = self.open_inner(record);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn open_inner(&mut self, record: &[u8]) -> Result<Option<Opened>, WireError> {
        if self.closed.is_some() {
            return Err(WireError::Protocol(
                "a record arrived after the peer's close frame",
            ));
        }
        self.counters
            .add_wire(Dir::Received, HEADER_LEN + record.len());
        record::fit(&mut self.plaintext, record.len(), 0);
        let n = self
            .transport
            .read_message(self.nonce, record, &mut self.plaintext)
            .map_err(|e| match e {
                snow::Error::Decrypt => WireError::Decrypt,
                other => WireError::Crypto(other.to_string()),
            })?;
        self.nonce += 1;
        match codec::decode_frame(&self.plaintext[..n])? {
            Frame::More(piece) => {
                append_capped(&mut self.partial, piece, self.max_carried)?;
                Ok(None)
            }
            Frame::Last { compressed, body } => {
                let cap = if compressed {
                    self.max_carried
                } else {
                    self.max_frame
                };
                append_capped(&mut self.partial, body, cap)?;
                let carried = std::mem::take(&mut self.partial);
                if !compressed {
                    self.counters
                        .add_frame(Dir::Received, carried.len(), carried.len());
                    self.frames += 1;
                    return Ok(Some(Opened::Message(carried)));
                }
                let unit = self
                    .decompressor
                    .decompress(&carried, unit_cap(self.max_frame))?;
                let messages = split_unit(&unit, self.max_frame)?;
                let plain: usize = messages.iter().map(Vec::len).sum();
                self.counters.add_frame(Dir::Received, plain, carried.len());
                self.queued.extend(messages);
                Ok(self.next_queued().map(Opened::Message))
            }
            Frame::Close { reason } => {
                if !self.partial.is_empty() {
                    return Err(WireError::Protocol(
                        "the peer closed in the middle of a message",
                    ));
                }
                if reason.len() > MAX_CLOSE_REASON {
                    return Err(WireError::Decode(format!(
                        "a close reason of {} bytes exceeds {MAX_CLOSE_REASON}",
                        reason.len()
                    )));
                }
                self.closed = Some(reason.to_string());
                Ok(Some(Opened::Close(reason.to_string())))
            }
        }
    }

    /// The next message of the last unit, if `open_record` left any: read
    /// these before the next record.
    pub(crate) fn next_queued(&mut self) -> Option<Vec<u8>> {
        let m = self.queued.pop_front()?;
        self.frames += 1;
        Some(m)
    }

    /// See [`Decompressor::prime`].
    pub(crate) fn prime(&mut self, primer: Vec<u8>) -> bool {
        self.decompressor.prime(primer)
    }

    /// See [`Decompressor::discard`]. Nothing more may be opened: the
    /// peer's next unit would refer to the discarded window.
    pub(crate) fn discard(&mut self) -> History {
        self.failed = true;
        self.queued.clear();
        self.partial = Vec::new();
        self.decompressor.discard()
    }

    /// True while the peer's compression frame is open (its window held).
    pub(crate) fn decompressing(&self) -> bool {
        self.decompressor.is_open()
    }

    /// Decodes a message `open_record` returned; an error ends this direction.
    pub(crate) fn decode<T: DeserializeOwned>(&mut self, plain: &[u8]) -> Result<T, WireError> {
        codec::decode_message(plain, self.max_frame).map_err(|e| self.fail(e))
    }
}

/// Longest LEB128 length prefix of a message in a unit.
const MAX_PREFIX: usize = 10;

/// Bytes the end of a compression frame may add to a unit (a level change
/// ends the open frame in front of the next unit).
const END_SLACK: usize = 64;

/// A lone message up to this size goes uncompressed while no compression
/// frame is open.
const SMALL: usize = 96;

/// Keep a unit buffer this large between flushes; drop larger ones.
const KEEP_UNIT: usize = 1 << 20;

/// Most bytes a unit's plaintext may hold: one message of `max_frame` with
/// its prefix always fits.
fn unit_cap(max_frame: usize) -> usize {
    max_frame + MAX_PREFIX
}

fn put_prefix(unit: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        unit.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    unit.push(len as u8);
}

/// Splits a unit's plaintext into its messages; a length past `max_frame`
/// or past the unit's end is a protocol error.
fn split_unit(unit: &[u8], max_frame: usize) -> Result<Vec<Vec<u8>>, WireError> {
    let mut messages = Vec::new();
    let mut at = 0;
    while at < unit.len() {
        let mut len: usize = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = unit.get(at) else {
                return Err(WireError::Protocol("a unit ends inside a length prefix"));
            };
            at += 1;
            if shift >= 7 * MAX_PREFIX as u32 {
                return Err(WireError::Protocol("a unit has an overlong length prefix"));
            }
            len |= usize::from(b & 0x7f)
                .checked_shl(shift)
                .unwrap_or(usize::MAX);
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if len > max_frame || len > unit.len() - at {
            return Err(WireError::FrameTooLarge {
                size: len,
                limit: max_frame.min(unit.len() - at),
            });
        }
        messages.push(unit[at..at + len].to_vec());
        at += len;
    }
    Ok(messages)
}

/// Appends `piece` unless that would take `buf` past `cap`; never reserves
/// more than the piece itself.
fn append_capped(buf: &mut Vec<u8>, piece: &[u8], cap: usize) -> Result<(), WireError> {
    let size = buf.len() + piece.len();
    if size > cap {
        return Err(WireError::FrameTooLarge { size, limit: cap });
    }
    buf.extend_from_slice(piece);
    Ok(())
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
