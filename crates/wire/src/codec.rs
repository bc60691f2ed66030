//! The one place that knows the serialization format (bincode 2, varint,
//! little endian), so it could be swapped without touching the rest.
//!
//! bincode decodes a length prefix and then allocates that much, and its
//! default configuration has no limit: ten hostile bytes could ask for
//! gigabytes. So every decode here carries an explicit limit. bincode's limit
//! is a const generic, while `max_frame` is configuration, so application
//! messages are decoded under the smallest of a few fixed budgets that covers
//! `max_frame` (see [`decode_message`]). Decoding also refuses trailing bytes:
//! a record means exactly one value.

use bincode::config::{Config, standard};
use bincode::error::DecodeError;
use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};

use crate::error::WireError;

/// Limit for the wire layer's own frames: one record's plaintext can never be
/// larger than this.
const FRAME_LIMIT: usize = 1 << 16;

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(value, standard()).map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes one wire-layer frame, borrowing from `bytes`.
pub(crate) fn decode_frame<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    decode_with(bytes, standard().with_limit::<FRAME_LIMIT>())
}

/// Decodes one application message of at most `max_frame` bytes.
///
/// The budget (what bincode may claim to allocate while decoding) is the
/// smallest of 1, 16, 64 or 256 MiB that is at least `max_frame`: a legitimate
/// message can need more memory decoded than encoded, and a hostile one can
/// never make us reserve more than that budget.
pub fn decode_message<T: DeserializeOwned>(bytes: &[u8], max_frame: usize) -> Result<T, WireError> {
    if max_frame <= 1 << 20 {
        decode_with(bytes, standard().with_limit::<{ 1 << 20 }>())
    } else if max_frame <= 16 << 20 {
        decode_with(bytes, standard().with_limit::<{ 16 << 20 }>())
    } else if max_frame <= 64 << 20 {
        decode_with(bytes, standard().with_limit::<{ 64 << 20 }>())
    } else {
        // `ChannelConfig::validate` caps max_frame at 256 MiB.
        decode_with(bytes, standard().with_limit::<{ 256 << 20 }>())
    }
}

fn decode_with<'a, T: Deserialize<'a>, C: Config>(
    bytes: &'a [u8],
    config: C,
) -> Result<T, WireError> {
    let (value, used) = bincode::serde::borrow_decode_from_slice(bytes, config).map_err(|e| {
        WireError::Decode(match e {
            DecodeError::LimitExceeded => {
                "it declares a size larger than this channel accepts".to_string()
            }
            other => other.to_string(),
        })
    })?;
    if used != bytes.len() {
        return Err(WireError::Decode(format!(
            "{} unexpected bytes after the value",
            bytes.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_message_cannot_claim_a_huge_allocation() {
        // A Vec<u8> (as bytes) whose varint length says 2^40: 0xfd + u64 LE.
        let mut evil = vec![0xfd];
        evil.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let e = decode_message::<String>(&evil, 1 << 20).unwrap_err();
        assert!(matches!(e, WireError::Decode(_)), "{e}");
        assert!(
            e.to_string().contains("larger than this channel accepts"),
            "{e}"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        let e = decode_message::<u32>(&bytes, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("1 unexpected bytes"), "{e}");
    }
}
