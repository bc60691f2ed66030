//! zstd, one streaming context per direction, alive only while data flows.
//!
//! The sender collects the messages it has ready into one *unit*, feeds the
//! unit to its context and flushes once, so the unit decodes on arrival while
//! later units still refer back to earlier ones (the way `ssh -C` and IMAP
//! COMPRESS work). A flush costs block headers and entropy tables (about 47
//! bytes at level 9 on real mail), so flushing per unit instead of per
//! message is most of what a busy stream saves; mail is repetitive
//! (headers, signatures, quoted replies), and the shared history is where
//! the cheap bytes on the line come from. The receiver mirrors the sender's
//! context: both see exactly the same sequence of compressed units, in order.
//!
//! **Levels and frames.** Single-threaded zstd applies a new level only at
//! the start of a zstd frame, so a level is chosen per frame: the sender
//! ends the open frame when asked for another level ([`Compressor::set_level`])
//! or to rest ([`Compressor::finish`]), and starts the next frame with the
//! level asked for. A rest also lets go of the context (a level-9 context
//! is about 15 MB): back to the node's pool for another channel's next
//! frame (`contexts.rs`); the receiver frees its window when a frame ends.
//! So a session holds large contexts only while a stream flows, and a
//! level change costs the history once.
//!
//! **First units.** A channel's first 16 KiB go as whole frames sized for
//! each unit, so that opening a session (a `Hello`, a `Welcome`) and an
//! idle session never open a streaming context (see [`Compressor::compress`]).
//!
//! **Sizing.** A sender that knows about how much will follow says so
//! ([`Compressor::expect`]; the edge: the mailbox's bytes not streamed
//! yet), and a frame opened next is set up for that size, not for the
//! level's largest input: zstd zeroes its tables before the first byte.
//!
//! Frames sent `Compress::Never` (credentials) bypass the context entirely, on
//! both sides. A shared compression context is what CRIME/BREACH-style attacks
//! exploit: if a secret and attacker-influenced content (mail) are compressed
//! together, the size of the output leaks the secret. Keeping secrets out of
//! the context closes that.
//!
//! **History.** Each side may keep the last plaintext of its open frame
//! (`ChannelConfig::history`), so that a channel resumed after a cut starts
//! its first frame primed with it (see `history.rs`).
//!
//! Decompression writes into a buffer that may not grow past a limit, and
//! the decoder refuses windows over 8 MiB, so neither a bomb (a few bytes that
//! expand to gigabytes) nor a hostile frame header can make us allocate more.

use std::sync::Arc;

use zstd::stream::raw::{CParameter, DParameter, Decoder, InBuffer, Operation, OutBuffer};
use zstd::zstd_safe::{self, CCtx};

use crate::config::ChannelConfig;
use crate::contexts::{ContextPool, Shape};
use crate::error::WireError;
use crate::history::{History, raw_content};

/// Largest window (log2 bytes) the decoder accepts: what level 19 uses.
const WINDOW_LOG_MAX: u32 = 23;

/// The smallest size a frame's context is set up for when the sender says
/// what it expects ([`Compressor::expect`]): the edge's smallest window of
/// body bytes in flight.
const MIN_EXPECT: u64 = 64 << 10;

/// Most output one step of the (de)compressor writes. Steps write straight
/// into the unit being built; no scratch buffer is kept between units, so
/// a resting channel holds none (#18).
const STEP: usize = 32 << 10;

/// What zstd writes into: `buf[..filled]` is output; the rest is room that
/// was zeroed once and is reused by the next step, so a step does not zero
/// its room again (zeroing is the price of writing safely into a `Vec`).
struct Out {
    buf: Vec<u8>,
    filled: usize,
}

impl Out {
    fn with_capacity(n: usize) -> Self {
        Out {
            buf: Vec::with_capacity(n),
            filled: 0,
        }
    }

    /// The output so far.
    fn filled(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Runs one zstd step that writes at most `room` bytes after the output
    /// so far; returns the bytes written and the step's own result.
    fn step<T, E>(
        &mut self,
        room: usize,
        step: impl FnOnce(&mut OutBuffer<'_, [u8]>) -> Result<T, E>,
    ) -> (usize, Result<T, E>) {
        let end = self.filled + room;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let mut o = OutBuffer::around_pos(&mut self.buf[..end], self.filled);
        let r = step(&mut o);
        let n = o.pos() - self.filled;
        self.filled = o.pos();
        (n, r)
    }

    fn into_vec(mut self) -> Vec<u8> {
        self.buf.truncate(self.filled);
        self.buf
    }
}

/// A zstd error code from a context used directly.
fn zstd_err(code: usize) -> WireError {
    WireError::Compress(zstd_safe::get_error_name(code).to_owned())
}

fn decompress_err(e: std::io::Error) -> WireError {
    WireError::Decompress(e.to_string())
}

/// What a frame starts from: the configured trained dictionary, or else a
/// resume's primer (for the next frame only). Both sides keep one.
struct Start {
    dictionary: Option<Arc<Vec<u8>>>,
    primer: Option<Vec<u8>>,
    /// Per-message frames never start primed: a primer carries other
    /// messages' content into the window.
    per_message: bool,
}

impl Start {
    fn new(cfg: &ChannelConfig) -> Self {
        Start {
            dictionary: cfg.dictionary.clone(),
            primer: None,
            per_message: cfg.per_message,
        }
    }

    /// Takes `primer` for the next frame, unless a frame is open already or
    /// a trained dictionary serves instead.
    fn prime(&mut self, primer: Vec<u8>, frame_open: bool) -> bool {
        if self.dictionary.is_some() || frame_open || self.per_message {
            return false;
        }
        self.primer = Some(primer);
        true
    }

    /// The dictionary the next frame loads.
    fn dictionary(&self) -> Option<&[u8]> {
        match (&self.dictionary, &self.primer) {
            (Some(d), _) => Some(d.as_slice()),
            (None, Some(p)) => Some(raw_content(p)),
            (None, None) => None,
        }
    }
}

pub(crate) struct Compressor {
    /// The open zstd frame's context and what it was set up for (its
    /// level); none while resting.
    open: Option<(CCtx<'static>, Shape)>,
    /// Where a frame's context comes from and goes back to.
    pool: ContextPool,
    /// The bytes the sender expects the next frame to carry, if it said
    /// (see [`Compressor::expect`]); only for a frame the next unit opens.
    expect: Option<u64>,
    /// Of `ChannelConfig::first_whole`, what is left; zero once a frame
    /// was opened.
    whole_left: usize,
    /// The level the next frame starts with.
    level: i32,
    start: Start,
    history: History,
}

impl Compressor {
    pub(crate) fn new(cfg: &ChannelConfig) -> Self {
        Self {
            open: None,
            pool: cfg.contexts.clone(),
            expect: None,
            whole_left: cfg.first_whole,
            level: cfg.zstd_level,
            start: Start::new(cfg),
            history: History::new(cfg.history),
        }
    }

    /// Starts the next frame with `primer` loaded (it must be what the
    /// peer's decompressor is primed with). Not with a trained dictionary,
    /// which the frame uses instead: returns whether it will be used.
    pub(crate) fn prime(&mut self, primer: Vec<u8>) -> bool {
        self.start.prime(primer, self.open.is_some())
    }

    /// Lets go of the context without ending its frame (the line is gone,
    /// so the end could not be sent): back to the pool, reset; gives back
    /// the frame's history.
    pub(crate) fn discard(&mut self) -> History {
        self.let_go();
        self.history.take()
    }

    /// Gives the open frame's context, if any, back to the pool unended.
    fn let_go(&mut self) {
        if let Some((cctx, shape)) = self.open.take() {
            self.pool.give_back(shape, cctx);
        }
    }

    /// The level for what is compressed next; an open frame at another level
    /// is ended first (its history is lost).
    pub(crate) fn set_level(&mut self, level: i32) {
        self.level = level;
    }

    /// The sender expects about `bytes` to follow: if the next unit opens a
    /// frame, zstd sizes its window and tables for that (never below
    /// [`MIN_EXPECT`]) instead of for the level's largest input. A level-3
    /// context is about 3.7 MB that zstd zeroes before the first byte, a
    /// level-9 one about 15 MB; for a 40 KB mailbox prefetched when a session
    /// opens, a context sized for 64 KiB does the same work. What it costs:
    /// the frame's window stays that small if more follows than expected.
    pub(crate) fn expect(&mut self, bytes: u64) {
        self.expect = Some(bytes);
    }

    /// The open frame's level, if a frame is open.
    pub(crate) fn open_level(&self) -> Option<i32> {
        self.open.as_ref().map(|(_, shape)| shape.level)
    }

    /// A context for the next streaming frame, from the pool, set up for
    /// it.
    fn start(&mut self) -> Result<(CCtx<'static>, Shape), WireError> {
        let hint = (self.expect.take()).map(|b| b.clamp(MIN_EXPECT, u64::from(u32::MAX)));
        let shape = Shape::streaming(self.level, hint);
        let mut cctx = self.pool.take(shape);
        if let Err(e) = self.set_up(&mut cctx, hint) {
            self.pool.give_back(shape, cctx);
            return Err(e);
        }
        let primer = self.start.primer.take();
        self.history.start(primer.as_deref().map(raw_content));
        Ok((cctx, shape))
    }

    fn set_up(&self, cctx: &mut CCtx<'static>, hint: Option<u64>) -> Result<(), WireError> {
        cctx.set_parameter(CParameter::CompressionLevel(self.level))
            .map_err(zstd_err)?;
        if let Some(d) = self.start.dictionary() {
            cctx.load_dictionary(d).map_err(zstd_err)?;
        }
        // Checksums are pointless under an AEAD; frame sizes are unknown.
        cctx.set_parameter(CParameter::ChecksumFlag(false))
            .map_err(zstd_err)?;
        if let Some(hint) = hint {
            cctx.set_parameter(CParameter::SrcSizeHint(hint as u32))
                .map_err(zstd_err)?;
        }
        Ok(())
    }

    /// `plain` as a whole frame that says its size, on a pooled context.
    fn whole_frame(&self, plain: &[u8]) -> Result<Vec<u8>, WireError> {
        let shape = Shape::whole(self.level);
        let mut cctx = self.pool.take(shape);
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(plain.len()));
        let done = cctx
            .set_parameter(CParameter::CompressionLevel(self.level))
            .and_then(|_| cctx.compress2(&mut out, plain))
            .map_err(zstd_err);
        self.pool.give_back(shape, cctx);
        done.map(|_| out)
    }

    /// Compresses one unit and flushes, so the output decodes on its own
    /// given everything compressed before it.
    ///
    /// A channel's first units (up to `ChannelConfig::first_whole` bytes,
    /// `FIRST_WHOLE` unless set, before any
    /// frame is open) are each a whole frame of their own whose size zstd
    /// is told, so it sizes its tables and window for the unit: a
    /// `Welcome`, a `Hello`, an idle session's first messages. A streaming
    /// frame's context at level 3 is a few megabytes that zstd zeroes
    /// before the first byte, so opening one for a `Welcome` was about 45%
    /// of the edge's CPU while sessions opened (`perf` of bench figure 5);
    /// an idle session now never opens one, and the peer never allocates
    /// its window. What it costs: the first units do not share history
    /// with each other or with what follows.
    pub(crate) fn compress(&mut self, plain: &[u8]) -> Result<Vec<u8>, WireError> {
        if self.open.is_none()
            && plain.len() <= self.whole_left
            && self.start.dictionary().is_none()
        {
            self.whole_left -= plain.len();
            // A hint is for a frame the next unit opens; this one is whole.
            self.expect = None;
            self.history.start(None);
            self.history.feed(plain);
            self.history.end();
            return self.whole_frame(plain);
        }
        self.whole_left = 0;
        let mut out = Out::with_capacity(plain.len() / 2 + 64);
        if self.open_level().is_some_and(|l| l != self.level) {
            self.finish_into(&mut out)?;
        }
        if self.open.is_none() {
            self.open = Some(self.start()?);
        }
        // A hint is for a frame this very unit opens.
        self.expect = None;
        let (cctx, _) = self.open.as_mut().expect("a frame was just opened");
        self.history.feed(plain);
        let room = (plain.len() + 64).min(STEP);
        let mut input = InBuffer::around(plain);
        while input.pos() < plain.len() {
            out.step(room, |o| cctx.compress_stream(o, &mut input))
                .1
                .map_err(zstd_err)?;
        }
        loop {
            let left = out
                .step(room, |o| cctx.flush_stream(o))
                .1
                .map_err(zstd_err)?;
            if left == 0 {
                return Ok(out.into_vec());
            }
        }
    }

    /// Ends the open frame, if any, and gives its context back to the pool;
    /// returns the bytes that end it (empty when no frame was open).
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>, WireError> {
        let mut out = Out::with_capacity(0);
        self.finish_into(&mut out)?;
        Ok(out.into_vec())
    }

    fn finish_into(&mut self, out: &mut Out) -> Result<(), WireError> {
        let Some((mut cctx, shape)) = self.open.take() else {
            return Ok(());
        };
        self.history.end();
        let ended = loop {
            match out.step(1024, |o| cctx.end_stream(o)).1 {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(code) => break Err(zstd_err(code)),
            }
        };
        self.pool.give_back(shape, cctx);
        ended
    }
}

impl Drop for Compressor {
    /// A channel closed with a frame open gives its context back too.
    fn drop(&mut self) {
        self.let_go();
    }
}

pub(crate) struct Decompressor {
    /// The context of the frame being received; none between frames.
    dec: Option<Decoder<'static>>,
    start: Start,
    /// Whether the decoder is inside a frame (a unit may end one frame and
    /// start the next: a level change).
    in_frame: bool,
    history: History,
}

impl Decompressor {
    pub(crate) fn new(cfg: &ChannelConfig) -> Self {
        Self {
            dec: None,
            start: Start::new(cfg),
            in_frame: false,
            history: History::new(cfg.history),
        }
    }

    /// The mirror of [`Compressor::prime`].
    pub(crate) fn prime(&mut self, primer: Vec<u8>) -> bool {
        self.start.prime(primer, self.dec.is_some())
    }

    /// Frees the window (the rest of its frame will never come) and gives
    /// back the frame's history.
    pub(crate) fn discard(&mut self) -> History {
        self.dec = None;
        self.in_frame = false;
        self.history.take()
    }

    fn start(&self) -> Result<Decoder<'static>, WireError> {
        let mut dec = match self.start.dictionary() {
            Some(d) => Decoder::with_dictionary(d).map_err(decompress_err)?,
            None => Decoder::new().map_err(decompress_err)?,
        };
        dec.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
            .map_err(decompress_err)?;
        Ok(dec)
    }

    /// True while a frame is open (its window is held).
    pub(crate) fn is_open(&self) -> bool {
        self.dec.is_some()
    }

    /// Decompresses one flushed unit; fails once the output would exceed
    /// `limit` bytes, before buffering them. A unit that ends its frame
    /// frees the context.
    pub(crate) fn decompress(
        &mut self,
        carried: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, WireError> {
        if self.dec.is_none() {
            let dec = self.start()?;
            self.dec = Some(dec);
        }
        let dec = self.dec.as_mut().expect("a decoder was just made");
        let mut out = Out::with_capacity(0);
        let mut input = InBuffer::around(carried);
        loop {
            if !self.in_frame {
                // The decoder loaded the primer (sticky for its later
                // frames, where it is harmless: a frame made without it
                // never refers to it).
                self.in_frame = true;
                let primer = self.start.primer.take();
                self.history.start(primer.as_deref().map(raw_content));
            }
            // One byte past the limit is room enough to see it crossed.
            let room = (carried.len().saturating_mul(8))
                .clamp(1024, STEP)
                .min(limit.saturating_add(1) - out.filled);
            let start = out.filled;
            let (n, hint) = out.step(room, |o| dec.run(&mut input, o));
            let hint = hint.map_err(decompress_err)?;
            if out.filled > limit {
                return Err(WireError::DecompressedTooLarge { limit });
            }
            self.history.feed(&out.filled()[start..]);
            if hint == 0 {
                self.in_frame = false;
                self.history.end();
            }
            // All input consumed and room left over: zstd has emitted
            // everything this unit's (flushed) input can produce.
            if input.pos() == carried.len() && n < room {
                if hint == 0 {
                    // The frame ended: its window is not needed any more.
                    self.dec = None;
                }
                return Ok(out.into_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FIRST_WHOLE;

    /// A channel past its first units: every unit goes into the streaming
    /// frame (what most tests here are about).
    fn pair(cfg: &ChannelConfig) -> (Compressor, Decompressor) {
        let mut c = Compressor::new(cfg);
        c.whole_left = 0;
        (c, Decompressor::new(cfg))
    }

    /// The window a zstd frame header declares (RFC 8878, 3.1.1.1.2), or
    /// None for a single-segment frame (its window is its content size).
    fn declared_window(frame: &[u8]) -> Option<u64> {
        assert_eq!(frame[..4], [0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
        let descriptor = frame[4];
        if descriptor & 0x20 != 0 {
            return None;
        }
        let w = frame[5];
        let base = 1u64 << (10 + (w >> 3));
        Some(base + base / 8 * u64::from(w & 7))
    }

    /// Compresses `unit`, checks that it decodes, and gives the window
    /// the frame it opened declares.
    fn opened_window(c: &mut Compressor, d: &mut Decompressor, unit: &[u8]) -> u64 {
        assert_eq!(c.open_level(), None, "the unit opens a frame");
        let z = c.compress(unit).unwrap();
        assert_eq!(d.decompress(&z, 1 << 20).unwrap(), unit);
        declared_window(&z).expect("a streaming frame declares its window")
    }

    #[test]
    fn a_frame_opened_after_expect_is_sized_for_what_is_expected() {
        let cfg = ChannelConfig::default();
        let unit = message(1).repeat(40);
        // Told nothing: the level's own window (level 3: 2 MiB).
        let (mut c, mut d) = pair(&cfg);
        assert!(opened_window(&mut c, &mut d, &unit) >= 2 << 20);
        // Told 40 KB follow: a window for 64 KiB (MIN_EXPECT), and the
        // stream still decodes, also past what was expected.
        let (mut c, mut d) = pair(&cfg);
        c.expect(40_000);
        assert!(opened_window(&mut c, &mut d, &unit) <= 2 * MIN_EXPECT);
        for i in 0..100 {
            let more = message(i).repeat(30);
            let z = c.compress(&more).unwrap();
            assert_eq!(d.decompress(&z, 1 << 20).unwrap(), more);
        }
        // Told a lot: the level's own window again.
        let (mut c, mut d) = pair(&cfg);
        c.expect(64 << 20);
        assert!(opened_window(&mut c, &mut d, &unit) >= 2 << 20);
    }

    #[test]
    fn an_expectation_given_while_a_frame_is_open_does_not_reach_a_later_frame() {
        let cfg = ChannelConfig::default();
        let unit = message(2).repeat(40);
        let (mut c, mut d) = pair(&cfg);
        opened_window(&mut c, &mut d, &unit);
        c.expect(1_000);
        let z = c.compress(&unit).unwrap();
        assert_eq!(d.decompress(&z, 1 << 20).unwrap(), unit);
        let end = c.finish().unwrap();
        assert_eq!(d.decompress(&end, 1 << 20).unwrap(), b"");
        // The next frame was told nothing: the level's own window.
        assert!(opened_window(&mut c, &mut d, &unit) >= 2 << 20);
    }

    #[test]
    fn an_expectation_given_before_a_whole_frame_unit_does_not_reach_a_later_frame() {
        let cfg = ChannelConfig::default();
        let (mut c, mut d) = (Compressor::new(&cfg), Decompressor::new(&cfg));
        c.expect(1_000);
        let small = message(3);
        let z = c.compress(&small).unwrap();
        assert_eq!(d.decompress(&z, 1 << 20).unwrap(), small);
        assert_eq!(c.open_level(), None, "a channel's first unit is whole");
        c.whole_left = 0;
        // The streaming frame after it was told nothing.
        let unit = message(4).repeat(40);
        assert!(opened_window(&mut c, &mut d, &unit) >= 2 << 20);
    }

    #[test]
    fn a_channels_first_units_are_whole_frames_sized_for_them() {
        let cfg = ChannelConfig::default();
        let (mut c, mut d) = (Compressor::new(&cfg), Decompressor::new(&cfg));
        // A Welcome, then a few small messages: each a frame of its own; no
        // context stays open on either side.
        let mut sent = 0;
        for i in 0.. {
            let unit = message(i).repeat(8);
            if sent + unit.len() > FIRST_WHOLE {
                break;
            }
            sent += unit.len();
            let z = c.compress(&unit).unwrap();
            assert!(z.len() * 3 < unit.len(), "still compressed: {}", z.len());
            assert_eq!(c.open_level(), None, "unit {i}");
            assert_eq!(d.decompress(&z, 1 << 20).unwrap(), unit);
            assert!(!d.is_open(), "unit {i}: the frame ended with the unit");
        }
        // Past FIRST_WHOLE, the stream opens its frame, and later units
        // refer back to earlier ones.
        let big = message(100).repeat(FIRST_WHOLE / 100);
        let first = c.compress(&big).unwrap();
        assert_eq!(c.open_level(), Some(3));
        let second = c.compress(&message(100)).unwrap();
        assert!(second.len() * 10 < message(100).len(), "{}", second.len());
        assert_eq!(d.decompress(&first, 1 << 20).unwrap(), big);
        assert_eq!(d.decompress(&second, 1 << 20).unwrap(), message(100));
        assert!(d.is_open());
    }

    #[test]
    fn later_frames_benefit_from_earlier_ones() {
        let (mut c, mut d) = pair(&ChannelConfig::default());
        let mail = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: the \
                     quarterly figures, revised again\r\n\r\nPlease find them below.\r\n"
            .repeat(3);
        let first = c.compress(&mail).unwrap();
        let second = c.compress(&mail).unwrap();
        assert!(
            second.len() * 3 < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        assert_eq!(d.decompress(&first, 1 << 20).unwrap(), mail);
        assert_eq!(d.decompress(&second, 1 << 20).unwrap(), mail);
    }

    #[test]
    fn contexts_exist_only_while_a_frame_is_open() {
        let (mut c, mut d) = pair(&ChannelConfig::default());
        assert_eq!(c.open_level(), None);
        assert!(c.finish().unwrap().is_empty(), "nothing to end");
        let z = c.compress(b"Subject: hello\r\n").unwrap();
        assert_eq!(c.open_level(), Some(3));
        assert_eq!(d.decompress(&z, 1 << 20).unwrap(), b"Subject: hello\r\n");
        assert!(d.is_open());
        let end = c.finish().unwrap();
        assert_eq!(c.open_level(), None);
        assert!(!end.is_empty() && end.len() < 16, "{}", end.len());
        assert!(d.decompress(&end, 1 << 20).unwrap().is_empty());
        assert!(!d.is_open(), "the end of the frame frees the window");
        // The next unit starts a new frame on both sides.
        let again = c.compress(b"Subject: again\r\n").unwrap();
        assert_eq!(
            d.decompress(&again, 1 << 20).unwrap(),
            b"Subject: again\r\n"
        );
    }

    #[test]
    fn a_new_level_starts_a_new_frame_in_the_same_unit() {
        let (mut c, mut d) = pair(&ChannelConfig::default());
        let mail = b"Received: from mx.example.org by mail.example.org\r\n".repeat(40);
        let first = c.compress(&mail).unwrap();
        c.set_level(9);
        let second = c.compress(&mail).unwrap();
        assert_eq!(c.open_level(), Some(9));
        assert_eq!(d.decompress(&first, 1 << 20).unwrap(), mail);
        assert_eq!(d.decompress(&second, 1 << 20).unwrap(), mail);
        // The switch lost the history: the second unit could not refer to
        // the first, so it costs about as much.
        assert!(
            second.len() * 2 > first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        let third = c.compress(&mail).unwrap();
        assert!(
            third.len() * 3 < second.len(),
            "{} vs {}",
            third.len(),
            second.len()
        );
        assert_eq!(d.decompress(&third, 1 << 20).unwrap(), mail);
    }

    /// A sample of mail: similar messages, as a mailbox has.
    fn message(i: usize) -> Vec<u8> {
        format!(
            "Received: from mx{}.example.org by mail.example.org with ESMTP\r\n\
             From: \"Alice Liddell\" <alice@example.org>\r\nTo: bob@example.org\r\n\
             Subject: the quarterly figures, revision {i}\r\n\r\nPlease find the \
             figures for region {} below; the totals moved by {} since the last \
             revision, as discussed at the meeting.\r\n-- \r\nAlice, Accounts\r\n",
            i % 7,
            i * 31 % 97,
            i * 7919 % 1000
        )
        .into_bytes()
    }

    fn with_history() -> ChannelConfig {
        ChannelConfig {
            history: 4096,
            ..ChannelConfig::default()
        }
    }

    #[test]
    fn a_resumed_stream_primed_with_the_history_compresses_as_before_the_cut() {
        let cfg = with_history();
        let (mut c, mut d) = pair(&cfg);
        for i in 0..20 {
            let z = c.compress(&message(i)).unwrap();
            // The receiver loses the last two units in the cut.
            if i < 18 {
                assert_eq!(d.decompress(&z, 1 << 20).unwrap(), message(i));
            }
        }
        let (sent, received) = (c.discard(), d.discard());
        assert_eq!(c.open_level(), None);
        assert!(!d.is_open(), "both contexts are freed");
        let mark = received.mark().unwrap();
        let primer = sent
            .primer(&mark)
            .expect("the sender holds what was received");
        assert_eq!(primer, received.offered().unwrap());

        let (mut c2, mut d2) = pair(&cfg);
        assert!(c2.prime(primer.clone()) && d2.prime(primer));
        let (mut fresh, _) = pair(&cfg);
        let next = message(20);
        let primed = c2.compress(&next).unwrap();
        let unprimed = fresh.compress(&next).unwrap();
        assert_eq!(d2.decompress(&primed, 1 << 20).unwrap(), next);
        assert!(
            primed.len() * 2 < unprimed.len(),
            "primed {} vs fresh {}",
            primed.len(),
            unprimed.len()
        );
        // The primed frame's history includes the primer: a second cut can
        // prime again.
        let again = c2.discard().primer(&d2.discard().mark().unwrap());
        assert!(again.is_some_and(|p| p.ends_with(&next)));
    }

    #[test]
    fn histories_agree_on_frames_when_a_unit_changes_level() {
        let cfg = with_history();
        let (mut c, mut d) = pair(&cfg);
        let first = c.compress(&message(1)).unwrap();
        c.set_level(9);
        // One unit that ends the level-3 frame and starts a level-9 one.
        let second = c.compress(&message(2)).unwrap();
        d.decompress(&first, 1 << 20).unwrap();
        d.decompress(&second, 1 << 20).unwrap();
        let mark = d.discard().mark().unwrap();
        assert_eq!(mark.frame, 2);
        assert_eq!(c.discard().primer(&mark).unwrap(), message(2));
    }

    #[test]
    fn no_priming_beside_a_trained_dictionary() {
        let cfg = ChannelConfig {
            dictionary: Some(std::sync::Arc::new(b"Subject: From: To: ".repeat(20))),
            ..with_history()
        };
        let (mut c, mut d) = pair(&cfg);
        assert!(!c.prime(message(1)) && !d.prime(message(1)));
    }

    #[test]
    fn a_bomb_is_stopped_at_the_limit() {
        let (mut c, mut d) = pair(&ChannelConfig::default());
        let zeros = vec![0u8; 8 << 20];
        let bomb = c.compress(&zeros).unwrap();
        assert!(bomb.len() < 4096, "{}", bomb.len());
        let e = d.decompress(&bomb, 1 << 20).unwrap_err();
        assert!(matches!(e, WireError::DecompressedTooLarge { limit } if limit == 1 << 20));
    }

    #[test]
    fn a_dictionary_mismatch_is_a_decompress_error() {
        let with = ChannelConfig {
            dictionary: Some(std::sync::Arc::new(
                b"Subject: From: To: Received: ".repeat(20),
            )),
            ..ChannelConfig::default()
        };
        let mut c = Compressor::new(&with);
        let mut d = Decompressor::new(&ChannelConfig::default());
        let z = c.compress(b"Subject: hi\r\nFrom: a\r\nTo: b\r\n").unwrap();
        let e = d.decompress(&z, 1 << 20).unwrap_err();
        assert!(matches!(e, WireError::Decompress(_)), "{e}");
    }

    #[test]
    fn garbage_is_a_decompress_error() {
        let (_, mut d) = pair(&ChannelConfig::default());
        let e = d.decompress(b"definitely not zstd", 1 << 20).unwrap_err();
        assert!(matches!(e, WireError::Decompress(_)), "{e}");
    }
}
