//! Hostile and ordinary inputs to one channel direction, without sockets.

use causeway_net::EnvRng;
use proptest::prelude::*;

use super::*;
use crate::handshake::{Handshake, run_in_memory};
use crate::keys::Keypair;
use crate::record::total_len;

fn pair_with(send_cfg: &ChannelConfig, recv_cfg: &ChannelConfig) -> (Sealer, Opener) {
    let rng = EnvRng::from_seed([42; 32]);
    let edge = Keypair::generate(&rng);
    let relay = Keypair::generate(&rng);
    let ((t_edge, _), (t_relay, _)) = run_in_memory(
        Handshake::kk(&rng, &edge, &relay.public, true).unwrap(),
        Handshake::kk(&rng, &relay, &edge.public, false).unwrap(),
    )
    .unwrap();
    (
        Sealer::new(t_edge, send_cfg, Counters::default()),
        Opener::new(t_relay, recv_cfg, Counters::default()),
    )
}

fn pair() -> (Sealer, Opener) {
    pair_with(&ChannelConfig::default(), &ChannelConfig::default())
}

/// Cuts sealed bytes into record bodies.
fn records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(total) = total_len(bytes) {
        out.push(bytes[HEADER_LEN..total].to_vec());
        bytes = &bytes[total..];
    }
    assert!(bytes.is_empty());
    out
}

fn seal(s: &mut Sealer, plain: &[u8], c: Compress) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    s.seal_message(plain, c, &mut out).unwrap();
    records(&out)
}

/// Feeds records until one completes something (or fails).
fn open_all(o: &mut Opener, recs: &[Vec<u8>]) -> Result<Vec<Opened>, WireError> {
    let mut got = Vec::new();
    for r in recs {
        if let Some(x) = o.open_record(r)? {
            got.push(x);
            got.extend(std::iter::from_fn(|| o.next_queued()).map(Opened::Message));
        }
    }
    Ok(got)
}

fn msg(bytes: &[u8]) -> Opened {
    Opened::Message(bytes.to_vec())
}

#[test]
fn a_message_and_a_close_arrive_intact() {
    let (mut s, mut o) = pair();
    let mut recs = seal(&mut s, b"RETR 1", Compress::Yes);
    let mut close = Vec::new();
    s.seal_close("done", &mut close).unwrap();
    recs.extend(records(&close));
    let got = open_all(&mut o, &recs).unwrap();
    assert_eq!(got, vec![msg(b"RETR 1"), Opened::Close("done".into())]);
    assert_eq!(o.closed(), Some("done"));
}

#[test]
fn a_flipped_ciphertext_bit_is_a_decrypt_error() {
    let (mut s, mut o) = pair();
    let mut recs = seal(&mut s, b"hello", Compress::Never);
    recs[0][3] ^= 0x40;
    assert!(matches!(open_all(&mut o, &recs), Err(WireError::Decrypt)));
    // And the direction is over: even the genuine record is refused now.
    assert!(matches!(o.open_record(&[0; 20]), Err(WireError::Broken)));
}

#[test]
fn a_replayed_record_is_a_decrypt_error() {
    let (mut s, mut o) = pair();
    let recs = seal(&mut s, b"DELE 1", Compress::Never);
    assert_eq!(open_all(&mut o, &recs).unwrap(), vec![msg(b"DELE 1")]);
    assert!(matches!(open_all(&mut o, &recs), Err(WireError::Decrypt)));
}

#[test]
fn reordered_records_are_a_decrypt_error() {
    let (mut s, mut o) = pair();
    let first = seal(&mut s, b"one", Compress::Never);
    let second = seal(&mut s, b"two", Compress::Never);
    let swapped = [second[0].clone(), first[0].clone()];
    assert!(matches!(
        open_all(&mut o, &swapped),
        Err(WireError::Decrypt)
    ));
}

#[test]
fn a_dropped_record_is_a_decrypt_error() {
    let (mut s, mut o) = pair();
    let _lost = seal(&mut s, b"one", Compress::Never);
    let second = seal(&mut s, b"two", Compress::Never);
    assert!(matches!(open_all(&mut o, &second), Err(WireError::Decrypt)));
}

#[test]
fn a_record_shorter_than_a_tag_is_a_decrypt_error() {
    let (_, mut o) = pair();
    assert!(matches!(o.open_record(&[1, 2, 3]), Err(WireError::Decrypt)));
}

#[test]
fn sender_refuses_an_oversize_message_without_spending_state() {
    let small = ChannelConfig {
        max_frame: 1000,
        ..ChannelConfig::default()
    };
    let (mut s, mut o) = pair_with(&small, &small);
    let mut out = Vec::new();
    let e = s
        .seal_message(&[0; 1001], Compress::Yes, &mut out)
        .unwrap_err();
    assert!(matches!(
        e,
        WireError::FrameTooLarge {
            size: 1001,
            limit: 1000
        }
    ));
    assert!(out.is_empty());
    // Nonce and compressor untouched: the next message goes through.
    let recs = seal(&mut s, b"fits", Compress::Yes);
    assert_eq!(open_all(&mut o, &recs).unwrap(), vec![msg(b"fits")]);
}

#[test]
fn queued_messages_share_one_unit_and_arrive_in_order() {
    let (mut s, mut o) = pair();
    let mut out = Vec::new();
    s.queue_message(b"chunk one", Compress::Yes, &mut out)
        .unwrap();
    s.queue_message(b"chunk two", Compress::Yes, &mut out)
        .unwrap();
    assert!(out.is_empty(), "nothing is sealed before the flush");
    // A credential goes alone and uncompressed, after what was queued.
    s.queue_message(b"secret", Compress::Never, &mut out)
        .unwrap();
    s.queue_message(b"chunk three", Compress::Yes, &mut out)
        .unwrap();
    s.flush(&mut out).unwrap();
    let recs = records(&out);
    assert_eq!(recs.len(), 3, "one unit, the credential, one unit");
    let got = open_all(&mut o, &recs).unwrap();
    assert_eq!(
        got,
        vec![
            msg(b"chunk one"),
            msg(b"chunk two"),
            msg(b"secret"),
            msg(b"chunk three")
        ]
    );
}

#[test]
fn a_rest_ends_the_frame_on_both_sides() {
    let (mut s, mut o) = pair();
    let mut out = Vec::new();
    s.queue_message(b"listing", Compress::Yes, &mut out)
        .unwrap();
    s.rest(&mut out).unwrap();
    assert_eq!(s.compressing(), None);
    let got = open_all(&mut o, &records(&out)).unwrap();
    assert_eq!(got, vec![msg(b"listing")]);
    assert!(!o.decompressing(), "the receiver freed its window");
    // Resting with nothing open sends nothing.
    let mut idle = Vec::new();
    s.rest(&mut idle).unwrap();
    assert!(idle.is_empty());
}

#[test]
fn a_unit_whose_prefix_lies_is_refused() {
    let (mut s, mut o) = pair();
    // A unit claiming a 200-byte message with 3 bytes behind it.
    let mut comp = Compressor::new(&ChannelConfig::default());
    let body = comp.compress(&[0xc8, 0x01, 1, 2, 3]).unwrap();
    let mut out = Vec::new();
    s.seal_frame(
        &Frame::Last {
            compressed: true,
            body: &body,
        },
        &mut out,
    )
    .unwrap();
    let e = open_all(&mut o, &records(&out)).unwrap_err();
    assert!(
        matches!(e, WireError::FrameTooLarge { size: 200, .. }),
        "{e}"
    );
    // And one that ends inside its prefix.
    let (mut s, mut o) = pair();
    let mut comp = Compressor::new(&ChannelConfig::default());
    let body = comp.compress(&[0x80]).unwrap();
    let mut out = Vec::new();
    s.seal_frame(
        &Frame::Last {
            compressed: true,
            body: &body,
        },
        &mut out,
    )
    .unwrap();
    let e = open_all(&mut o, &records(&out)).unwrap_err();
    assert!(matches!(e, WireError::Protocol(_)), "{e}");
}

#[test]
fn receiver_refuses_a_multi_record_frame_past_its_cap_as_it_grows() {
    let big = ChannelConfig::default();
    let small = ChannelConfig {
        max_frame: 100_000,
        ..ChannelConfig::default()
    };
    let (mut s, mut o) = pair_with(&big, &small);
    let recs = seal(&mut s, &vec![7; 1_000_000], Compress::Never);
    assert_eq!(recs.len(), 1_000_000_usize.div_ceil(MAX_CHUNK));
    let e = open_all(&mut o, &recs).unwrap_err();
    assert!(
        matches!(e, WireError::FrameTooLarge { size, limit }
        if limit == o.max_carried && size <= 2 * MAX_CHUNK),
        "{e}"
    );
    // It stopped at the second piece: nothing past the cap was buffered.
    assert!(o.partial.capacity() <= limit_capacity(100_000));
}

fn limit_capacity(max_frame: usize) -> usize {
    // Vec growth may round up to the next power of two past the cap.
    (zstd::zstd_safe::compress_bound(unit_cap(max_frame)) + END_SLACK).next_power_of_two()
}

#[test]
fn receiver_refuses_a_single_record_frame_past_its_cap() {
    let small = ChannelConfig {
        max_frame: 1000,
        ..ChannelConfig::default()
    };
    let (mut s, mut o) = pair_with(&ChannelConfig::default(), &small);
    let recs = seal(&mut s, &[1; 5000], Compress::Never);
    let e = open_all(&mut o, &recs).unwrap_err();
    assert!(
        matches!(
            e,
            WireError::FrameTooLarge {
                size: 5000,
                limit: 1000
            }
        ),
        "{e}"
    );
}

#[test]
fn a_decompression_bomb_is_refused() {
    let small = ChannelConfig {
        max_frame: 1 << 20,
        ..ChannelConfig::default()
    };
    let (mut s, mut o) = pair_with(&ChannelConfig::default(), &small);
    let recs = seal(&mut s, &vec![0; 32 << 20], Compress::Yes);
    assert_eq!(recs.len(), 1, "32 MiB of zeros should fit one record");
    let e = open_all(&mut o, &recs).unwrap_err();
    assert!(
        matches!(e, WireError::DecompressedTooLarge { limit } if limit == unit_cap(1 << 20)),
        "{e}"
    );
}

#[test]
fn bincode_garbage_inside_a_valid_record_is_a_decode_error() {
    let (mut s, mut o) = pair();
    let mut out = Vec::new();
    s.seal_plaintext(&[0xff, 0xff, 0xff, 0xff, 0x13], &mut out)
        .unwrap();
    let e = open_all(&mut o, &records(&out)).unwrap_err();
    assert!(matches!(e, WireError::Decode(_)), "{e}");
}

#[test]
fn a_message_that_is_not_the_expected_type_is_a_decode_error() {
    let (mut s, mut o) = pair();
    let recs = seal(&mut s, &[0xff, 0x00, 0x01], Compress::Never);
    let Opened::Message(plain) = open_all(&mut o, &recs).unwrap().remove(0) else {
        panic!("expected a message");
    };
    let e = o.decode::<String>(&plain).unwrap_err();
    assert!(matches!(e, WireError::Decode(_)), "{e}");
    assert!(matches!(o.check_usable(), Err(WireError::Broken)));
}

#[test]
fn nothing_may_follow_a_close() {
    let (mut s, mut o) = pair();
    let mut out = Vec::new();
    s.seal_close("bye", &mut out).unwrap();
    s.seal_message(b"late", Compress::Never, &mut out).unwrap();
    let e = open_all(&mut o, &records(&out)).unwrap_err();
    assert!(matches!(e, WireError::Protocol(_)), "{e}");
}

#[test]
fn a_close_in_the_middle_of_a_message_is_refused() {
    let (mut s, mut o) = pair();
    let mut out = Vec::new();
    s.seal_plaintext(&codec::encode(&Frame::More(b"half")).unwrap(), &mut out)
        .unwrap();
    s.seal_close("bye", &mut out).unwrap();
    let e = open_all(&mut o, &records(&out)).unwrap_err();
    assert!(matches!(e, WireError::Protocol(_)), "{e}");
}

#[test]
fn an_overlong_close_reason_is_refused() {
    let (mut s, mut o) = pair();
    let mut out = Vec::new();
    let long = "x".repeat(MAX_CLOSE_REASON + 1);
    s.seal_plaintext(
        &codec::encode(&Frame::Close { reason: &long }).unwrap(),
        &mut out,
    )
    .unwrap();
    let e = open_all(&mut o, &records(&out)).unwrap_err();
    assert!(matches!(e, WireError::Decode(_)), "{e}");
}

#[test]
fn credentials_never_enter_the_compression_context() {
    let mail =
        b"Subject: minutes of the meeting\r\nFrom: secretary@example.org\r\n\r\nAll present.\r\n";
    let password = b"PASS correct-horse-battery-staple";
    // With a credential frame between two mails...
    let (mut s1, mut o1) = pair();
    let mut recs = seal(&mut s1, mail, Compress::Yes);
    recs.extend(seal(&mut s1, password, Compress::Never));
    let third = seal(&mut s1, mail, Compress::Yes);
    recs.extend(third.clone());
    let got = open_all(&mut o1, &recs).unwrap();
    assert_eq!(got, vec![msg(mail), msg(password), msg(mail)]);
    // ...the second mail compresses to exactly what it would without it.
    let (mut s2, _) = pair();
    seal(&mut s2, mail, Compress::Yes);
    let alone = seal(&mut s2, mail, Compress::Yes);
    assert_eq!(third[0].len(), alone[0].len());
    let sent = s1.counters.sent();
    assert_eq!(sent.plain, (2 * mail.len() + password.len()) as u64);
    assert_eq!(
        sent.compressed - s2.counters.sent().compressed,
        password.len() as u64
    );
}

#[test]
fn counters_add_up() {
    let (mut s, mut o) = pair();
    let body = b"Received: from relay\r\n".repeat(50);
    let recs = seal(&mut s, &body, Compress::Yes);
    open_all(&mut o, &recs).unwrap();
    let (sent, received) = (s.counters.sent(), o.counters.received());
    assert_eq!(sent, received);
    assert_eq!(sent.plain, body.len() as u64);
    assert!(sent.compressed < sent.plain / 5, "{sent:?}");
    // One record: 2 (header) + 16 (tag) + 1 (variant) + 1 (flag) + 1 (length).
    assert_eq!(sent.wire, sent.compressed + 21);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Several messages in a row (so the compression contexts carry state
    /// across frames), some bigger than one record.
    #[test]
    fn messages_round_trip(
        msgs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..3000), any::<bool>(), 0usize..3),
            1..6,
        )
    ) {
        let (mut s, mut o) = pair();
        for (seed, compress, scale) in &msgs {
            // Stretch some messages past one record (65,503 bytes).
            let plain: Vec<u8> = seed.iter().cycle().take(seed.len() * [1, 30, 60][*scale]).copied().collect();
            let c = if *compress { Compress::Yes } else { Compress::Never };
            let recs = seal(&mut s, &plain, c);
            prop_assert!(recs.iter().all(|r| r.len() <= MAX_RECORD));
            prop_assert_eq!(open_all(&mut o, &recs).unwrap(), vec![msg(&plain)]);
        }
    }

    #[test]
    fn random_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut o) = pair();
        prop_assert!(o.open_record(&bytes).is_err());
    }
}

/// `per_message`: a message's compressed size is the same whatever was
/// sent before it (no shared window for an attacker's mail to probe), and
/// the peer still reads every message in order; in the default stream
/// mode, a message that repeats an earlier one costs almost nothing.
#[test]
fn per_message_frames_share_no_window() {
    // Larger than a channel's first units, which are whole frames anyway.
    let secret = b"Subject: your one-time code is 493817\r\n".repeat(500);
    let sizes = |cfg: &ChannelConfig| {
        let (mut s, mut o) = pair_with(cfg, cfg);
        let mut sizes = Vec::new();
        for m in [&secret[..], &secret[..]] {
            let before = s.counters.sent().compressed;
            let recs = seal(&mut s, m, Compress::Yes);
            sizes.push(s.counters.sent().compressed - before);
            assert_eq!(open_all(&mut o, &recs).unwrap(), vec![msg(m)]);
        }
        sizes
    };
    let per = ChannelConfig {
        per_message: true,
        ..ChannelConfig::default()
    };
    let (stream, separate) = (sizes(&ChannelConfig::default()), sizes(&per));
    assert!(
        stream[1] * 4 < stream[0],
        "stream mode reuses the window: {stream:?}"
    );
    assert_eq!(separate[0], separate[1], "per message: {separate:?}");
    let (mut s, _) = pair_with(&per, &per);
    assert!(!s.prime(b"history".to_vec()), "no priming per message");
}
