//! Fuzz target bodies for what another machine's bytes reach first, as plain
//! functions (the pattern of `causeway_pop3::fuzzing`).
//!
//! Each `fuzz/fuzz_targets/wire_*.rs` is a one-line call to one of these,
//! and `tests/fuzz_bodies.rs` runs them under proptest, so the targets are
//! compiled and exercised by an ordinary `cargo test` and cannot rot. A
//! panic is a finding; so is a broken cap or a channel that keeps working
//! after an error.
//!
//! Two surfaces matter. Before authentication, anyone who can reach a port
//! sends handshake messages ([`handshake`]). After it, a peer holding a
//! valid key may still be buggy or compromised, so the record layer, the
//! frame decoding, reassembly and decompression get arbitrary plaintext
//! inside correctly sealed records ([`sealed_frames`]) and arbitrary
//! streams of real messages ([`message_stream`]).

use std::sync::OnceLock;

use crate::config::ChannelConfig;
use crate::counters::Counters;
use crate::error::WireError;
use crate::handshake::{Handshake, run_in_memory};
use crate::keys::{Keypair, Psk};
use crate::record::{HEADER_LEN, MAX_PLAINTEXT, RecordBuf};
use crate::seal::{Compress, Opened, Opener, Sealer, Transport};
use causeway_net::EnvRng;

/// The frame cap the channel targets run with: small, so that inputs of a
/// few kilobytes reach it.
const FUZZ_MAX_FRAME: usize = 4096;

/// Splits `data` into pieces, each a little-endian `u16` length then that
/// many bytes (fewer at the end).
fn pieces(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        let (piece, rest) = data[2..].split_at(n);
        data = rest;
        Some(piece)
    })
}

/// Arbitrary handshake messages from an unauthenticated peer, both sides.
///
/// `data[0]` picks the pattern and our role: an XK or XKpsk3 responder (the
/// edge, reached by anyone), a KK responder (the relay), or an initiator
/// (the client proxy or edge) reading a hostile reply to its first message.
/// Must hold: no panic; outside plain XK, random bytes never complete a
/// handshake (they would need the pre-shared key or a private key; plain XK
/// lets anyone complete it with a key of their own, and the allow list
/// decides after it).
pub fn handshake(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    static KEYS: OnceLock<(Keypair, Keypair)> = OnceLock::new();
    let rng = EnvRng::from_seed([7; 32]);
    let (ours, theirs) = KEYS.get_or_init(|| (Keypair::generate(&rng), Keypair::generate(&rng)));
    let psk = Psk::from_bytes([9; 32]);
    let mut hs = match mode % 4 {
        0 => Handshake::xk_responder(&rng, ours, None),
        1 => Handshake::xk_responder(&rng, ours, Some(&psk)),
        2 => Handshake::kk(&rng, ours, &theirs.public, false),
        _ => Handshake::xk_initiator(&rng, ours, &theirs.public, None),
    }
    .expect("fixed keys build");
    if hs.is_my_turn() {
        hs.write().expect("the first message is always writable");
    }
    for msg in pieces(rest) {
        if hs.read(msg).is_err() {
            return;
        }
        if hs.is_finished() {
            break;
        }
        hs.write().expect("after a good read it is our turn");
    }
    assert!(
        mode % 4 == 0 || !hs.is_finished(),
        "arbitrary bytes completed a handshake without the peer's private key"
    );
}

/// A sealer/opener pair over a real handshake, with the fuzzing frame cap.
/// The handshake runs once per process: its transport keys are stateless
/// (each sealer and opener counts its own nonces from zero), and six
/// Diffie-Hellman operations per input would make fuzzing a hundred times
/// slower.
fn channel_pair() -> (Sealer, Opener) {
    static TRANSPORTS: OnceLock<(Transport, Transport)> = OnceLock::new();
    let (ta, tb) = TRANSPORTS.get_or_init(|| {
        let rng = EnvRng::from_seed([42; 32]);
        let a = Keypair::generate(&rng);
        let b = Keypair::generate(&rng);
        let ((ta, _), (tb, _)) = run_in_memory(
            Handshake::kk(&rng, &a, &b.public, true).expect("fixed keys build"),
            Handshake::kk(&rng, &b, &a.public, false).expect("fixed keys build"),
        )
        .expect("an honest handshake completes");
        (ta, tb)
    });
    let (ta, tb) = (ta.clone(), tb.clone());
    let cfg = ChannelConfig {
        max_frame: FUZZ_MAX_FRAME,
        ..ChannelConfig::default()
    };
    (
        Sealer::new(ta, &cfg, Counters::default()),
        Opener::new(tb, &cfg, Counters::default()),
    )
}

/// Feeds sealed bytes to `opener` through a [`RecordBuf`], in reads of the
/// sizes `cuts` gives; what was opened, or the first error.
fn open_stream(
    opener: &mut Opener,
    mut bytes: &[u8],
    cuts: &mut impl Iterator<Item = usize>,
) -> Result<Vec<Opened>, WireError> {
    let mut buf = RecordBuf::new();
    let mut got = Vec::new();
    while !bytes.is_empty() {
        let room = buf.unfilled();
        let n = cuts.next().unwrap_or(usize::MAX).clamp(1, room.len());
        let n = n.min(bytes.len());
        room[..n].copy_from_slice(&bytes[..n]);
        buf.advance(n);
        bytes = &bytes[n..];
        if buf.is_complete()
            && let Some(o) = opener.open_record(buf.take())?
        {
            got.push(o);
            got.extend(std::iter::from_fn(|| opener.next_queued()).map(Opened::Message));
        }
    }
    for o in &got {
        if let Opened::Message(m) = o {
            assert!(m.len() <= FUZZ_MAX_FRAME, "a message past the frame cap");
        }
    }
    Ok(got)
}

/// Arbitrary plaintext frames from an authenticated peer: each piece of
/// `data` is sealed as one record as it is, so the opener's frame decoding,
/// reassembly caps, decompression and close handling see anything at all.
/// Must hold: no panic; no message past the frame cap; after an error the
/// direction refuses every later record.
pub fn sealed_frames(data: &[u8]) {
    let (mut sealer, mut opener) = channel_pair();
    let mut wire = Vec::new();
    for piece in pieces(data) {
        let piece = &piece[..piece.len().min(MAX_PLAINTEXT)];
        sealer
            .seal_plaintext(piece, &mut wire)
            .expect("any plaintext up to a record seals");
    }
    let mut cuts = data.iter().map(|&b| usize::from(b) * 7 + 1);
    if open_stream(&mut opener, &wire, &mut cuts).is_err() {
        let mut next = Vec::new();
        sealer
            .seal_plaintext(&[0], &mut next)
            .expect("one byte seals");
        assert!(
            opener.open_record(&next[HEADER_LEN..]).is_err(),
            "a failed direction accepted another record"
        );
    }
}

/// Real messages of arbitrary content, sizes and compression, read in
/// arbitrary slices: what goes in comes out, in order, or the sender
/// refused it for its size.
pub fn message_stream(data: &[u8]) {
    let (mut sealer, mut opener) = channel_pair();
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for (i, piece) in pieces(data).enumerate() {
        // Repeat short pieces now and then, so messages cross the cap and
        // several records. Past the cap only the length matters (the
        // sealer refuses it before reading a byte), so the body stops one
        // byte over it: building the whole 64-fold copy of a long piece
        // cost more than the rest of the target.
        let body: Vec<u8> = if i % 3 == 2 {
            piece
                .iter()
                .copied()
                .cycle()
                .take((piece.len() * 64).min(FUZZ_MAX_FRAME + 1))
                .collect()
        } else {
            piece.to_vec()
        };
        let c = if piece.first().is_some_and(|b| b % 2 == 0) {
            Compress::Yes
        } else {
            Compress::Never
        };
        // How the sender batches: flush at once, queue behind the next
        // one, end the compression frame, or change the level first.
        let how = piece.get(1).copied().unwrap_or(0);
        if how % 4 == 3 {
            sealer.set_level([1, 3, 9][usize::from(how / 4) % 3]);
        }
        match sealer.queue_message(&body, c, &mut wire) {
            Ok(()) => sent.push(Opened::Message(body)),
            Err(WireError::FrameTooLarge { .. }) => assert!(body.len() > FUZZ_MAX_FRAME),
            Err(e) => panic!("sealing a message failed: {e}"),
        }
        let step = match how % 4 {
            0 => sealer.flush(&mut wire),
            2 => sealer.rest(&mut wire),
            _ => Ok(()),
        };
        step.expect("flushing honest messages works");
    }
    sealer.flush(&mut wire).expect("the last unit seals");
    sealer.seal_close("done", &mut wire).expect("close seals");
    sent.push(Opened::Close("done".into()));
    let mut cuts = data.iter().rev().map(|&b| usize::from(b) * 31 + 1);
    let got = open_stream(&mut opener, &wire, &mut cuts).expect("honest records open");
    assert_eq!(got, sent);
}
