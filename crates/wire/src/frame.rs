//! The wire layer's own frames: what the plaintext of one record holds.
//!
//! An application message becomes one *frame body* (its serialized bytes,
//! compressed or not); a body that does not fit one Noise message is cut into
//! `More` pieces followed by one `Last`. `Close` ends the sender's direction:
//! it is what tells a finished conversation from a cut line.
//!
//! The compression flag rides on `Last` only: the receiver needs it once the
//! body is whole, and the size cap while pieces arrive is the same either way
//! (see `seal.rs`).

use serde::{Deserialize, Serialize, Serializer};

use crate::record::MAX_PLAINTEXT;

/// Longest close reason carried; longer reasons are cut on send and refused
/// on receipt.
pub const MAX_CLOSE_REASON: usize = 256;

/// Most body bytes one record carries. A `Last` frame's encoding adds at most
/// 1 (variant) + 1 (flag) + 9 (length varint) bytes around the body;
/// `MAX_CHUNK + 11 <= MAX_PLAINTEXT` is checked by a test.
pub const MAX_CHUNK: usize = MAX_PLAINTEXT - 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Frame<'a> {
    /// A piece of a frame body; more pieces follow.
    More(#[serde(serialize_with = "as_bytes")] &'a [u8]),
    /// The last (often the only) piece of a frame body.
    Last {
        /// The body is zstd output from the sender's streaming context.
        compressed: bool,
        #[serde(serialize_with = "as_bytes")]
        body: &'a [u8],
    },
    /// The sender is done; no record follows.
    Close { reason: &'a str },
}

/// serde serializes `&[u8]` element by element; bincode's byte-string path is
/// the same layout, done in one copy.
fn as_bytes<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// Cuts `reason` to [`MAX_CLOSE_REASON`] bytes on a character boundary.
pub(crate) fn cap_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use proptest::prelude::*;

    fn round_trip(f: &Frame<'_>) {
        let bytes = codec::encode(f).unwrap();
        assert!(bytes.len() <= MAX_PLAINTEXT, "{} bytes", bytes.len());
        let back: Frame<'_> = codec::decode_frame(&bytes).unwrap();
        assert_eq!(&back, f);
    }

    #[test]
    fn a_full_chunk_fits_one_record() {
        let body = vec![0xab; MAX_CHUNK];
        round_trip(&Frame::More(&body));
        round_trip(&Frame::Last {
            compressed: true,
            body: &body,
        });
    }

    #[test]
    fn close_reasons_are_capped_on_a_char_boundary() {
        let long = "é".repeat(MAX_CLOSE_REASON);
        let cut = cap_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON && cut.len() >= MAX_CLOSE_REASON - 1);
        assert_eq!(cap_reason("bye"), "bye");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn more_round_trips(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            round_trip(&Frame::More(&body));
        }

        #[test]
        fn last_round_trips(compressed: bool, body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            round_trip(&Frame::Last { compressed, body: &body });
        }

        #[test]
        fn close_round_trips(reason in "\\PC{0,64}") {
            round_trip(&Frame::Close { reason: cap_reason(&reason) });
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = codec::decode_frame::<Frame<'_>>(&bytes);
        }
    }
}
