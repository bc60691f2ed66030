//! Runs the fuzz target bodies (`causeway_pop3::fuzzing`, called by
//! `fuzz/fuzz_targets/*.rs`) under proptest, so `cargo test` keeps the
//! targets compiling and exercised even where libFuzzer is unavailable.

use proptest::prelude::*;

/// Bytes that look like POP3: keywords, status indicators, dots, CR, LF.
fn pop3ish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"+OK".to_vec()),
        Just(b"-ERR [IN-USE] ".to_vec()),
        Just(b"RETR 1".to_vec()),
        Just(b"USER a".to_vec()),
        Just(b"PASS b c".to_vec()),
        Just(b"TOP 1 2".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"..".to_vec()),
        Just(b" ".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
        Just(vec![b'X'; 700]),
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![pop3ish(), prop::collection::vec(any::<u8>(), 0..2000)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn command_parse(data in input()) {
        causeway_pop3::fuzzing::command_parse(&data);
    }

    #[test]
    fn status_line_parse(data in input()) {
        causeway_pop3::fuzzing::status_line_parse(&data);
    }

    #[test]
    fn body_decoder(data in input()) {
        causeway_pop3::fuzzing::body_decoder(&data);
    }

    #[test]
    fn client_codec(data in input()) {
        causeway_pop3::fuzzing::client_codec(&data);
    }

    #[test]
    fn server_codec(data in input()) {
        causeway_pop3::fuzzing::server_codec(&data);
    }
}
