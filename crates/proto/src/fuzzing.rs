//! Fuzz target body for the message catalogue, as a plain function (the
//! pattern of `causeway_pop3::fuzzing`): `fuzz/fuzz_targets/proto_messages.rs`
//! calls it, and `tests/roundtrip.rs` runs it under proptest.
//!
//! Every message a node decodes came from another machine; after the
//! channel's authentication a peer can still be buggy or compromised. So
//! arbitrary bytes are decoded as each message type the nodes receive, under
//! the same limit the channel applies, and the user information they carry
//! is validated as the edge and relay do before acting on it.

use causeway_wire::codec::{decode_message, encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::relay::{EdgeToRelay, RelayToEdge};
use crate::session::{ClientToEdge, EdgeToClient};

/// The decode limit the targets run under: what a channel with the default
/// 1 MiB budget allows (`causeway_wire::codec::decode_message`).
const LIMIT: usize = 1 << 20;

/// Decodes `data` as each message type. Must hold: no panic; whatever
/// decodes re-encodes and decodes to the same value; validation of decoded
/// user information answers without panicking.
pub fn messages(data: &[u8]) {
    if let Some(ClientToEdge::Hello { user, .. }) = decoded::<ClientToEdge>(data) {
        let _ = user.validate();
    }
    decoded::<EdgeToClient>(data);
    if let Some(EdgeToRelay::Open { server, .. }) = decoded::<EdgeToRelay>(data) {
        let _ = server.validate();
    }
    decoded::<RelayToEdge>(data);
}

fn decoded<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let m = decode_message::<T>(data, LIMIT).ok()?;
    let again = encode(&m).expect("a decoded message encodes");
    let back = decode_message::<T>(&again, LIMIT).expect("an encoded message decodes");
    assert_eq!(back, m, "decode(encode(m)) differs from m");
    Some(m)
}
