//! The recent plaintext of a compression frame, so that a channel resumed
//! after a cut compresses as well as the one it replaces.
//!
//! A cut loses both zstd contexts: the receiver may have lost part of a
//! unit, so the sender's context cannot simply go on. A fresh context
//! compresses the first messages after a resume much worse (mail repeats
//! across messages: headers, signatures, quoted replies), measured at 3.5x
//! against 4.8x for ten messages at level 9 in `../shared/notes/line.md`.
//! So each end keeps the last [`ChannelConfig::history`] bytes of its open
//! frame: the sender what it fed its compressor, the receiver what its
//! decompressor gave back, both unit by unit. After a cut the receiver
//! names what it holds with a [`Mark`] (which frame, how many of its bytes,
//! SHA-256 of the last ones); the sender primes its next frame with the
//! same bytes only when its own history has exactly them, and both load
//! them as a raw-content dictionary ([`crate::SecureChannel::prime_sending`],
//! [`crate::SecureChannel::prime_receiving`]).
//!
//! A frame that ended in the part the cut lost, a range trimmed away, or any
//! other disagreement means no priming, never wrong output: the digest is
//! over the very bytes both ends would load. Memory: at most twice the cap
//! per direction, and only while a frame is open (a resting channel, like
//! an idle session, holds none) or while a cut session waits for a resume.
//!
//! [`ChannelConfig::history`]: crate::ChannelConfig::history

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const LABEL: &[u8] = b"causeway compression history v1";

/// The magic number that makes zstd read a dictionary as a trained one
/// (little-endian `0xEC30A437`); a primer must not start with it.
const DICT_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];

/// What a receiver holds of the frame that was open when its channel was
/// cut: the sender primes with the same bytes if it has them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The frame's number in its channel (1 = the first).
    pub frame: u64,
    /// Bytes of the frame the receiver got (its primer included).
    pub fed: u64,
    /// How many of the last of them it offers.
    pub len: u32,
    /// SHA-256 over a label and those bytes.
    pub digest: [u8; 32],
}

/// One direction's recent plaintext (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct History {
    cap: usize,
    /// Frames started on this channel.
    frames: u64,
    open: bool,
    /// Bytes of the open frame so far.
    fed: u64,
    /// The last of them: at least `min(cap, fed)`, at most `2 * cap`.
    tail: Vec<u8>,
}

impl History {
    pub(crate) fn new(cap: usize) -> Self {
        History {
            cap,
            ..History::default()
        }
    }

    /// A frame starts, primed with `primer` (or not).
    pub(crate) fn start(&mut self, primer: Option<&[u8]>) {
        self.frames += 1;
        self.open = true;
        self.fed = 0;
        self.tail.clear();
        if let Some(p) = primer {
            self.feed(p);
        }
    }

    /// Plaintext that went into (or came out of) the open frame.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.cap == 0 || !self.open {
            return;
        }
        self.fed += bytes.len() as u64;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * self.cap {
            let drop = self.tail.len() - self.cap;
            self.tail.drain(..drop);
        }
    }

    /// The open frame ended: its history is of no use any more.
    pub(crate) fn end(&mut self) {
        self.open = false;
        self.fed = 0;
        self.tail = Vec::new();
    }

    /// Hands over this history, leaving an empty one with the same cap.
    pub(crate) fn take(&mut self) -> History {
        std::mem::replace(self, History::new(self.cap))
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tail.is_empty()
    }

    /// What a receiver offers to prime with: the last bytes of its open
    /// frame. `None` when no frame is open or nothing was kept.
    pub fn mark(&self) -> Option<Mark> {
        if !self.open || self.tail.is_empty() {
            return None;
        }
        let len = self.tail.len().min(self.cap);
        let bytes = &self.tail[self.tail.len() - len..];
        Some(Mark {
            frame: self.frames,
            fed: self.fed,
            len: u32::try_from(len).ok()?,
            digest: digest(bytes),
        })
    }

    /// The sender's side: the bytes `mark` names, when this history holds
    /// exactly them (same frame, range still kept, same digest).
    pub fn primer(&self, mark: &Mark) -> Option<Vec<u8>> {
        if !self.open || mark.frame != self.frames || mark.fed > self.fed {
            return None;
        }
        let behind = usize::try_from(self.fed - mark.fed).ok()?;
        let end = self.tail.len().checked_sub(behind)?;
        let start = end.checked_sub(usize::try_from(mark.len).ok()?)?;
        let bytes = &self.tail[start..end];
        (!bytes.is_empty() && digest(bytes) == mark.digest).then(|| bytes.to_vec())
    }

    /// The receiver's side, once the sender agreed: the bytes its own
    /// [`History::mark`] named.
    pub fn offered(&self) -> Option<Vec<u8>> {
        let m = self.mark()?;
        Some(self.tail[self.tail.len() - m.len as usize..].to_vec())
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(LABEL);
    h.update(bytes);
    h.finalize().into()
}

/// `primer` as zstd must see it to take it for raw content: without a
/// leading dictionary magic number (both ends trim the same bytes).
pub(crate) fn raw_content(mut primer: &[u8]) -> &[u8] {
    while primer.starts_with(&DICT_MAGIC) {
        primer = &primer[DICT_MAGIC.len()..];
    }
    primer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(cap: usize, parts: &[&[u8]]) -> History {
        let mut h = History::new(cap);
        h.start(None);
        for p in parts {
            h.feed(p);
        }
        h
    }

    #[test]
    fn the_sender_primes_with_what_the_receiver_holds() {
        let receiver = fed(8, &[b"0123", b"456789"]);
        let sender = fed(8, &[b"0123", b"456789", b"abcdef"]);
        let m = receiver.mark().unwrap();
        assert_eq!((m.frame, m.fed, m.len), (1, 10, 8));
        assert_eq!(sender.primer(&m).unwrap(), b"23456789");
        assert_eq!(receiver.offered().unwrap(), b"23456789");
    }

    #[test]
    fn no_primer_when_the_histories_disagree() {
        let receiver = fed(8, &[b"0123", b"456789"]);
        let m = receiver.mark().unwrap();
        // Other bytes, another frame, a range trimmed away, a frame ended.
        assert!(fed(8, &[b"0123", b"45678X"]).primer(&m).is_none());
        let mut later = fed(8, &[b"0123", b"456789"]);
        later.end();
        later.start(None);
        later.feed(b"0123456789");
        assert!(later.primer(&m).is_none());
        let far = fed(8, &[b"0123", b"456789", &[b'x'; 20]]);
        assert!(far.primer(&m).is_none());
        let mut ended = fed(8, &[b"0123", b"456789"]);
        ended.end();
        assert!(ended.primer(&m).is_none() && ended.mark().is_none());
        // A receiver that got more than the sender sent is out of step.
        assert!(fed(8, &[b"0123"]).primer(&m).is_none());
    }

    #[test]
    fn memory_stays_within_twice_the_cap_and_none_without_one() {
        let mut h = fed(1000, &[]);
        for _ in 0..100 {
            h.feed(&[7; 333]);
        }
        assert!(h.len() <= 2000 && h.len() >= 1000, "{}", h.len());
        let none = fed(0, &[b"mail"]);
        assert!(none.is_empty() && none.mark().is_none());
    }

    #[test]
    fn a_primer_is_counted_in_its_frame() {
        let mut h = History::new(16);
        h.start(Some(b"primer"));
        h.feed(b"next");
        let m = h.mark().unwrap();
        assert_eq!((m.fed, m.len), (10, 10));
        assert_eq!(h.offered().unwrap(), b"primernext");
    }

    #[test]
    fn a_dictionary_magic_is_trimmed_from_a_primer() {
        let mut p = DICT_MAGIC.repeat(2);
        p.extend_from_slice(b"mail");
        assert_eq!(raw_content(&p), b"mail");
        assert_eq!(raw_content(b"mail"), b"mail");
    }
}
