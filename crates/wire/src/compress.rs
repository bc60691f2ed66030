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
//! level asked for. A rest also frees the context (a level-9 context is
//! about 15 MB); the receiver frees its window when a frame ends. So a
//! session holds large contexts only while a stream flows, and a level
//! change costs the history once.
//!
//! Frames sent `Compress::Never` (credentials) bypass the context entirely, on
//! both sides. A shared compression context is what CRIME/BREACH-style attacks
//! exploit: if a secret and attacker-influenced content (mail) are compressed
//! together, the size of the output leaks the secret. Keeping secrets out of
//! the context closes that.
//!
//! Decompression writes into a buffer that may not grow past a limit, and
//! the decoder refuses windows over 8 MiB, so neither a bomb (a few bytes that
//! expand to gigabytes) nor a hostile frame header can make us allocate more.

use std::sync::Arc;

use zstd::stream::raw::{CParameter, DParameter, Decoder, Encoder, InBuffer, Operation, OutBuffer};

use crate::config::ChannelConfig;
use crate::error::WireError;

/// Largest window (log2 bytes) the decoder accepts: what level 19 uses.
const WINDOW_LOG_MAX: u32 = 23;

/// Scratch space for one step of the (de)compressor.
const SCRATCH: usize = 32 << 10;

fn compress_err(e: std::io::Error) -> WireError {
    WireError::Compress(e.to_string())
}

fn decompress_err(e: std::io::Error) -> WireError {
    WireError::Decompress(e.to_string())
}

pub(crate) struct Compressor {
    /// The open zstd frame's context and its level; none while resting.
    open: Option<(Encoder<'static>, i32)>,
    /// The level the next frame starts with.
    level: i32,
    dictionary: Option<Arc<Vec<u8>>>,
    scratch: Box<[u8]>,
}

impl Compressor {
    pub(crate) fn new(cfg: &ChannelConfig) -> Self {
        Self {
            open: None,
            level: cfg.zstd_level,
            dictionary: cfg.dictionary.clone(),
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
        }
    }

    /// The level for what is compressed next; an open frame at another level
    /// is ended first (its history is lost).
    pub(crate) fn set_level(&mut self, level: i32) {
        self.level = level;
    }

    /// The open frame's level, if a frame is open.
    pub(crate) fn open_level(&self) -> Option<i32> {
        self.open.as_ref().map(|(_, l)| *l)
    }

    fn start(&self) -> Result<Encoder<'static>, WireError> {
        let mut enc = match &self.dictionary {
            Some(d) => Encoder::with_dictionary(self.level, d).map_err(compress_err)?,
            None => Encoder::new(self.level).map_err(compress_err)?,
        };
        // Checksums are pointless under an AEAD; frame sizes are unknown.
        enc.set_parameter(CParameter::ChecksumFlag(false))
            .map_err(compress_err)?;
        Ok(enc)
    }

    /// Compresses one unit and flushes, so the output decodes on its own
    /// given everything compressed before it.
    pub(crate) fn compress(&mut self, plain: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        if self.open_level().is_some_and(|l| l != self.level) {
            self.finish_into(&mut out)?;
        }
        let (enc, _) = match &mut self.open {
            Some(open) => open,
            None => self.open.insert((self.start()?, self.level)),
        };
        let mut input = InBuffer::around(plain);
        while input.pos() < plain.len() {
            let mut o = OutBuffer::around(&mut self.scratch[..]);
            enc.run(&mut input, &mut o).map_err(compress_err)?;
            let n = o.pos();
            out.extend_from_slice(&self.scratch[..n]);
        }
        loop {
            let mut o = OutBuffer::around(&mut self.scratch[..]);
            let left = enc.flush(&mut o).map_err(compress_err)?;
            let n = o.pos();
            out.extend_from_slice(&self.scratch[..n]);
            if left == 0 {
                return Ok(out);
            }
        }
    }

    /// Ends the open frame, if any, and frees its context; returns the bytes
    /// that end it (empty when no frame was open).
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.finish_into(&mut out)?;
        Ok(out)
    }

    fn finish_into(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let Some((mut enc, _)) = self.open.take() else {
            return Ok(());
        };
        loop {
            let mut o = OutBuffer::around(&mut self.scratch[..]);
            let left = enc.finish(&mut o, true).map_err(compress_err)?;
            let n = o.pos();
            out.extend_from_slice(&self.scratch[..n]);
            if left == 0 {
                return Ok(());
            }
        }
    }
}

pub(crate) struct Decompressor {
    /// The context of the frame being received; none between frames.
    dec: Option<Decoder<'static>>,
    dictionary: Option<Arc<Vec<u8>>>,
    scratch: Box<[u8]>,
}

impl Decompressor {
    pub(crate) fn new(cfg: &ChannelConfig) -> Self {
        Self {
            dec: None,
            dictionary: cfg.dictionary.clone(),
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
        }
    }

    fn start(&self) -> Result<Decoder<'static>, WireError> {
        let mut dec = match &self.dictionary {
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
        let dec = match &mut self.dec {
            Some(dec) => dec,
            None => self.dec.insert(self.start()?),
        };
        let mut out = Vec::new();
        let mut input = InBuffer::around(carried);
        loop {
            let mut o = OutBuffer::around(&mut self.scratch[..]);
            let hint = dec.run(&mut input, &mut o).map_err(decompress_err)?;
            let n = o.pos();
            if out.len() + n > limit {
                return Err(WireError::DecompressedTooLarge { limit });
            }
            out.extend_from_slice(&self.scratch[..n]);
            // All input consumed and room left over: zstd has emitted
            // everything this unit's (flushed) input can produce.
            if input.pos() == carried.len() && n < self.scratch.len() {
                if hint == 0 {
                    // The frame ended: its window is not needed any more.
                    self.dec = None;
                }
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cfg: &ChannelConfig) -> (Compressor, Decompressor) {
        (Compressor::new(cfg), Decompressor::new(cfg))
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
