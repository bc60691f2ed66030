//! The fuzz targets' bodies under proptest: random bytes, and random bytes
//! spliced into real responses (so that the generator reaches past the
//! greeting), must never panic.

use causeway_imap::fuzzing::server_responses;
use proptest::prelude::*;

const SESSION: &[u8] = b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] ready\r\n\
* 2 EXISTS\r\n* 1 FETCH (UID 5 RFC822.SIZE 12 FLAGS (\\Seen))\r\n\
* 2 FETCH (UID 9 RFC822.SIZE 3 FLAGS ())\r\nC0 OK done\r\n\
* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\n* 1 EXPUNGE\r\nC1 OK done\r\n";

/// `session` with `junk` spliced in at `at`, after the piece-size byte.
fn damaged(seed: u8, session: &[u8], at: usize, junk: &[u8]) -> Vec<u8> {
    let mut data = vec![seed];
    data.extend_from_slice(&session[..at]);
    data.extend_from_slice(junk);
    data.extend_from_slice(&session[at..]);
    data
}

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
        let _ = server_responses(&damaged(seed, SESSION, at, &junk));
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

mod client_side {
    use causeway_imap::fuzzing::client_commands;
    use proptest::prelude::*;

    /// Commands the real clients send (`../shared/notes/imap.md`).
    const SESSION: &[u8] = b"a LOGIN me pw\r\nb SELECT INBOX\r\n\
c FETCH 1:* (UID RFC822.SIZE FLAGS)\r\nd UID FETCH 3 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])\r\n\
e FETCH 2 BODY[]<0.10>\r\nf UID STORE 1:4 +FLAGS.SILENT (\\Deleted \\Seen)\r\n\
g UID EXPUNGE 1:2\r\nh SEARCH UNSEEN NOT DELETED\r\ni LIST \"\" *\r\nj LOGOUT\r\n";

    proptest! {
        #[test]
        fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = client_commands(&data);
        }

        #[test]
        fn real_commands_with_damage(
            seed in any::<u8>(),
            at in 0..SESSION.len(),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = client_commands(&super::damaged(seed, SESSION, at, &junk));
        }
    }

    /// The target really parses: however the bytes are split, all ten
    /// commands arrive, and the two cuts give the header fields and ten
    /// bytes.
    #[test]
    fn a_whole_session_parses() {
        for seed in 0..64u8 {
            let mut data = vec![seed];
            data.extend_from_slice(SESSION);
            assert_eq!(client_commands(&data), (10, 48 + 10), "seed {seed}");
        }
    }
}

mod mime_side {
    use causeway_imap::fuzzing::mime_message;
    use proptest::prelude::*;

    /// A message with every kind of part.
    const MESSAGE: &[u8] = b"From: \"A, B\" <a@b.example>, c@d (C)\r\nTo: g: x@y;\r\n\
Subject: s\r\n t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--o\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/alternative; b\
oundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n--o\r\nContent-Type: application/pdf; name*0=a; na\
me*1=b\r\nContent-Disposition: attachment\r\n\r\nJVBE\r\n--o--\r\n";

    proptest! {
        #[test]
        fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = mime_message(&data);
        }

        #[test]
        fn a_real_message_with_damage(
            at in 0..MESSAGE.len(),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut data = MESSAGE[..at].to_vec();
            data.extend_from_slice(&junk);
            data.extend_from_slice(&MESSAGE[at..]);
            let _ = mime_message(&data);
        }
    }

    /// The target really parses: the whole message has its six parts
    /// (the message, its three parts, the message inside the second, that
    /// one's single part).
    #[test]
    fn a_whole_message_parses() {
        assert_eq!(mime_message(MESSAGE), 6);
    }
}
