//! Runs the fuzz target bodies (`causeway_wire::fuzzing`, called by
//! `fuzz/fuzz_targets/wire_*.rs`) under proptest, so `cargo test` keeps the
//! targets compiling and exercised where libFuzzer is unavailable.

use proptest::prelude::*;

/// Pieces as the targets read them: a little-endian u16 length, then bytes.
fn framed() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..2000),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|ps| {
        ps.iter()
            .flat_map(|p| {
                let mut v = (p.len() as u16).to_le_bytes().to_vec();
                v.extend_from_slice(p);
                v
            })
            .collect()
    })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![framed(), prop::collection::vec(any::<u8>(), 0..3000)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn handshake(data in input()) {
        causeway_wire::fuzzing::handshake(&data);
    }

    #[test]
    fn sealed_frames(data in input()) {
        causeway_wire::fuzzing::sealed_frames(&data);
    }

    #[test]
    fn message_stream(data in input()) {
        causeway_wire::fuzzing::message_stream(&data);
    }
}
