//! The fuzz targets' bodies under proptest: random bytes, and random bytes
//! spliced into real responses (so that the generator reaches past the
//! greeting), must never panic.

use causeway_imap::fuzzing::server_responses;
use proptest::prelude::*;

const SESSION: &[u8] = b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] ready\r\n\
* 2 EXISTS\r\n* 1 FETCH (UID 5 RFC822.SIZE 12 FLAGS (\\Seen))\r\n\
* 2 FETCH (UID 9 RFC822.SIZE 3 FLAGS ())\r\nC0 OK done\r\n\
* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\n* 1 EXPUNGE\r\nC1 OK done\r\n";

proptest! {
    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = server_responses(&data);
    }

    #[test]
    fn real_responses_with_damage(
        seed in any::<u8>(),
        at in 0..SESSION.len(),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut data = vec![seed];
        data.extend_from_slice(&SESSION[..at]);
        data.extend_from_slice(&junk);
        data.extend_from_slice(&SESSION[at..]);
        let _ = server_responses(&data);
    }
}

/// The target really parses: however the bytes are split, a whole session
/// gives its five data responses and the five body bytes.
#[test]
fn a_whole_session_parses() {
    for seed in 0..64u8 {
        let mut data = vec![seed];
        data.extend_from_slice(SESSION);
        assert_eq!(
            server_responses(&data),
            (5, 5),
            "pieces of {}",
            seed % 64 + 1
        );
    }
}
