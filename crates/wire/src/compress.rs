//! zstd, one streaming context per direction.
//!
//! Each `Compress::Yes` frame is fed to the sender's context and flushed at
//! its end, so the frame can be decoded on arrival while later frames still
//! refer back to earlier ones (the way `ssh -C` and IMAP COMPRESS work). Mail
//! is repetitive (headers, signatures, quoted replies), so this is where the
//! cheap bytes on the line come from. The receiver mirrors the sender's
//! context: both see exactly the same sequence of compressed frames, in order.
//!
//! Frames sent `Compress::Never` (credentials) bypass the context entirely, on
//! both sides. A shared compression context is what CRIME/BREACH-style attacks
//! exploit: if a secret and attacker-influenced content (mail) are compressed
//! together, the size of the output leaks the secret. Keeping secrets out of
//! the context closes that.
//!
//! Decompression writes into a buffer that may not grow past `max_frame`, and
//! the decoder refuses windows over 8 MiB, so neither a bomb (a few bytes that
//! expand to gigabytes) nor a hostile frame header can make us allocate more.

use zstd::stream::raw::{CParameter, DParameter, Decoder, Encoder, InBuffer, Operation, OutBuffer};

use crate::config::ChannelConfig;
use crate::error::WireError;

/// Largest window (log2 bytes) the decoder accepts: what level 19 uses.
const WINDOW_LOG_MAX: u32 = 23;

/// Scratch space for one step of the (de)compressor.
const SCRATCH: usize = 32 << 10;

pub(crate) struct Compressor {
    enc: Encoder<'static>,
    scratch: Box<[u8]>,
}

impl Compressor {
    pub(crate) fn new(cfg: &ChannelConfig) -> Result<Self, WireError> {
        let err = |e: std::io::Error| WireError::Compress(e.to_string());
        let mut enc = match &cfg.dictionary {
            Some(d) => Encoder::with_dictionary(cfg.zstd_level, d).map_err(err)?,
            None => Encoder::new(cfg.zstd_level).map_err(err)?,
        };
        // Checksums are pointless under an AEAD; frame sizes are unknown.
        enc.set_parameter(CParameter::ChecksumFlag(false))
            .map_err(err)?;
        Ok(Self {
            enc,
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
        })
    }

    /// Compresses one frame and flushes, so the output decodes on its own
    /// given everything compressed before it.
    pub(crate) fn compress(&mut self, plain: &[u8]) -> Result<Vec<u8>, WireError> {
        let err = |e: std::io::Error| WireError::Compress(e.to_string());
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        let mut input = InBuffer::around(plain);
        while input.pos() < plain.len() {
            let mut o = OutBuffer::around(&mut self.scratch[..]);
            self.enc.run(&mut input, &mut o).map_err(err)?;
            let n = o.pos();
            out.extend_from_slice(&self.scratch[..n]);
        }
        loop {
            let mut o = OutBuffer::around(&mut self.scratch[..]);
            let left = self.enc.flush(&mut o).map_err(err)?;
            let n = o.pos();
            out.extend_from_slice(&self.scratch[..n]);
            if left == 0 {
                return Ok(out);
            }
        }
    }
}

pub(crate) struct Decompressor {
    dec: Decoder<'static>,
    scratch: Box<[u8]>,
}

impl Decompressor {
    pub(crate) fn new(cfg: &ChannelConfig) -> Result<Self, WireError> {
        let err = |e: std::io::Error| WireError::Decompress(e.to_string());
        let mut dec = match &cfg.dictionary {
            Some(d) => Decoder::with_dictionary(d).map_err(err)?,
            None => Decoder::new().map_err(err)?,
        };
        dec.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
            .map_err(err)?;
        Ok(Self {
            dec,
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
        })
    }

    /// Decompresses one flushed frame; fails once the output would exceed
    /// `limit` bytes, before buffering them.
    pub(crate) fn decompress(
        &mut self,
        carried: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, WireError> {
        let err = |e: std::io::Error| WireError::Decompress(e.to_string());
        let mut out = Vec::new();
        let mut input = InBuffer::around(carried);
        loop {
            let mut o = OutBuffer::around(&mut self.scratch[..]);
            self.dec.run(&mut input, &mut o).map_err(err)?;
            let n = o.pos();
            if out.len() + n > limit {
                return Err(WireError::DecompressedTooLarge { limit });
            }
            out.extend_from_slice(&self.scratch[..n]);
            // All input consumed and room left over: zstd has emitted
            // everything this frame's (flushed) input can produce.
            if input.pos() == carried.len() && n < self.scratch.len() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cfg: &ChannelConfig) -> (Compressor, Decompressor) {
        (
            Compressor::new(cfg).unwrap(),
            Decompressor::new(cfg).unwrap(),
        )
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
        let mut c = Compressor::new(&with).unwrap();
        let mut d = Decompressor::new(&ChannelConfig::default()).unwrap();
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
