use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn key(uidl: &str) -> Key {
    (
        "A".to_owned(),
        MessageId {
            uidl: uidl.into(),
            size: 0,
        },
    )
}

/// A start time, from the seam (the outbox itself never reads a clock).
fn t0() -> Instant {
    use causeway_net::Env;
    causeway_net::TokioEnv::new().now()
}

/// The names the tests use, each at its index as its place.
const NAMES: [&str; 7] = ["a", "b", "m0", "m1", "m2", "m3", "m4"];

fn at(uidl: &str) -> Place {
    NAMES.iter().position(|n| *n == uidl).expect("a test name") as Place
}

fn name(at: Place) -> String {
    NAMES[at as usize].to_owned()
}

fn body(n: usize, fill: u8) -> Arc<Vec<u8>> {
    Arc::new(vec![fill; n])
}

/// A chunk as the tests see it: (uidl, offset, data, waiters if last).
type Seen = (String, u64, Vec<u8>, Option<Vec<u64>>);

/// Sends every chunk the window allows, acknowledging all as it goes.
fn drain(o: &mut Outbox, now: Instant) -> Vec<Seen> {
    let mut out = Vec::new();
    while let Some(next) = o.next_chunk(now) {
        let EdgeToClient::Chunk {
            at, offset, data, ..
        } = next.chunk
        else {
            panic!("not a chunk")
        };
        out.push((name(at), offset, data, next.finished.map(|f| f.2)));
        let sent = o.sent;
        o.window(sent, now).unwrap();
    }
    out
}

#[test]
fn bodies_go_out_in_chunks_in_order_and_name_their_waiters() {
    let now = t0();
    let mut o = Outbox::default();
    o.push(key("a"), at("a"), body(20_000, 1), 0, false, vec![7]);
    o.push(key("b"), at("b"), body(10, 2), 0, false, vec![]);
    assert_eq!(o.unsent(), 20_010);
    let out = drain(&mut o, now);
    let sizes: Vec<(&str, u64, usize)> = out
        .iter()
        .map(|(u, off, d, _)| (u.as_str(), *off, d.len()))
        .collect();
    assert_eq!(
        sizes,
        [
            ("a", 0, CHUNK),
            ("a", 8192, CHUNK),
            ("a", 16384, 3616),
            ("b", 0, 10)
        ]
    );
    assert_eq!(out[2].3, Some(vec![7]));
    assert_eq!(out[3].3, Some(vec![]));
    assert_eq!(out[0].3, None);
    assert_eq!(o.unsent(), 0);
}

#[test]
fn an_urgent_body_jumps_the_queue_and_the_other_continues_where_it_was() {
    let now = t0();
    let mut o = Outbox::default();
    o.push(key("a"), at("a"), body(3 * CHUNK, 1), 0, false, vec![]);
    o.push(key("b"), at("b"), body(CHUNK + 1, 2), 0, false, vec![]);
    let first = o.next_chunk(now).unwrap();
    assert!(matches!(first.chunk, EdgeToClient::Chunk { offset: 0, .. }));
    assert!(o.promote(&key("b"), true, vec![9]));
    let out = drain(&mut o, now);
    let order: Vec<(&str, u64)> = out.iter().map(|(u, off, ..)| (u.as_str(), *off)).collect();
    assert_eq!(order, [("b", 0), ("b", 8192), ("a", 8192), ("a", 16384)]);
    assert_eq!(out[1].3, Some(vec![9]));
    // Promoting what is not queued says so.
    assert!(!o.promote(&key("c"), true, vec![]));
}

#[test]
fn a_body_queued_twice_goes_once_and_a_resumed_one_from_its_offset() {
    let now = t0();
    let mut o = Outbox::default();
    o.push(key("a"), at("a"), body(100, 1), 40, false, vec![1]);
    o.push(key("a"), at("a"), body(100, 1), 0, true, vec![2]);
    assert_eq!(o.unsent(), 60);
    let out = drain(&mut o, now);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].1, out[0].2.len()), (40, 60));
    assert_eq!(out[0].3, Some(vec![1, 2]));
    // An offset past the end starts again from the beginning.
    o.push(key("b"), at("b"), body(10, 1), 11, false, vec![]);
    assert_eq!(drain(&mut o, now)[0].1, 0);
}

#[test]
fn the_window_stops_the_stream_until_the_client_acknowledges() {
    let now = t0();
    let mut o = Outbox::default();
    o.push(key("a"), at("a"), body(1 << 20, 1), 0, false, vec![]);
    let mut sent = 0;
    while let Some(n) = o.next_chunk(now) {
        let EdgeToClient::Chunk { data, .. } = n.chunk else {
            panic!()
        };
        sent += data.len() as u64;
    }
    assert_eq!(sent, MIN_WINDOW);
    assert!(!o.ready());
    o.window(CHUNK as u64, now).unwrap();
    assert!(o.ready());
    // More than was sent, or going backwards, is refused.
    assert!(o.window(sent + 1, now).is_err());
    assert!(o.window(0, now).is_err());
}

#[test]
fn the_window_grows_to_twice_what_a_fast_long_line_carries_per_round_trip() {
    // 2 MB/s of body bytes, 500 ms round trip: 2 MB in flight after ramping.
    let mut now = t0();
    let rtt = Duration::from_millis(500);
    let rate = 2_000_000.0;
    let mut o = Outbox::default();
    o.push(key("a"), at("a"), body(64 << 20, 1), 0, false, vec![]);
    let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::new();
    let step = Duration::from_millis(10);
    let mut delivered_at = now;
    for _ in 0..2_000 {
        while let Some(_n) = o.next_chunk(now) {
            in_flight.push_back((o.sent, now));
        }
        // The line delivers `rate` bytes per second; each acknowledgement
        // arrives one round trip after its chunk was sent, no earlier than
        // the line could carry it.
        while let Some(&(end, at)) = in_flight.front() {
            let carried = at + rtt;
            let slot = delivered_at + Duration::from_secs_f64(CHUNK as f64 / rate);
            let arrives = carried.max(slot);
            if arrives > now {
                break;
            }
            delivered_at = arrives;
            in_flight.pop_front();
            o.window(end, now).unwrap();
        }
        now += step;
    }
    let w = o.pacer.window();
    assert!(
        (1_800_000..=2_600_000).contains(&w),
        "window {w} is not about 2 x 2 MB/s x 0.5 s"
    );
}

#[test]
fn a_slow_line_keeps_the_smallest_window() {
    let mut p = Pacer::default();
    let mut now = t0();
    // 20 kB/s, 600 ms: 24 kB per two round trips, under the floor.
    let mut bytes = 0;
    for _ in 0..50 {
        bytes += CHUNK as u64;
        p.sent(bytes - CHUNK as u64, bytes, now);
        now += Duration::from_millis(600);
        p.acked(bytes, now);
        now += Duration::from_secs_f64(CHUNK as f64 / 20_000.0);
    }
    assert_eq!(p.window(), MIN_WINDOW);
}

/// A mail client reading 4 KiB messages in lock step (each RETR waits for
/// the last; a pause for its next command), the proxy acknowledging every
/// 32 KiB as it does: what the outbox says the line carries, after 64
/// messages, with each chunk acknowledged `rtt` after it was sent.
fn lock_step_rate(rtt: Duration, pause: Duration) -> f64 {
    let mut now = t0();
    let mut o = Outbox::default();
    let mut unacked = 0;
    for i in 0..64u8 {
        o.push(key("m0"), at("m0"), body(4096, i), 0, true, vec![1]);
        while o.next_chunk(now).is_some() {}
        unacked += 4096;
        now += rtt;
        if unacked >= 32 << 10 {
            let sent = o.sent;
            o.window(sent, now).unwrap();
            unacked = 0;
        }
        now += pause;
    }
    o.rate().expect("measured")
}

#[test]
fn a_lock_step_reader_on_a_fast_line_is_seen_fast() {
    use crate::compression::BULK_BELOW;
    // Loopback or a LAN: 150 us from a chunk out to its acknowledgement,
    // 500 us of the client's own between messages. Measured between
    // acknowledgements alone, that was 6 MB/s: a slow line.
    let fast = lock_step_rate(Duration::from_micros(150), Duration::from_micros(500));
    assert!(fast > 2.0 * BULK_BELOW, "{fast}");
    // A 3G line (100 ms) and a 40 kbit/s one (a 4 KiB chunk takes 800 ms)
    // stay slow, however short the client's pauses.
    for rtt in [100, 800] {
        let slow = lock_step_rate(Duration::from_millis(rtt), Duration::from_micros(500));
        assert!(slow < BULK_BELOW, "{rtt} ms: {slow}");
    }
}

proptest! {
    /// Whatever the pushes, promotions and acknowledgements, each body's
    /// chunks cover it from its first offset to its end without gap or
    /// overlap, and every body is finished exactly once.
    #[test]
    fn chunks_cover_each_body_exactly(
        ops in prop::collection::vec((0u8..3, 0usize..5, 0usize..40_000, any::<bool>()), 1..40)
    ) {
        let now = t0();
        let mut o = Outbox::default();
        let mut expected: BTreeMap<String, (u64, usize)> = BTreeMap::new();
        let mut got: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut finished: BTreeMap<String, u32> = BTreeMap::new();
        let take = |o: &mut Outbox, got: &mut BTreeMap<String, (u64, u64)>,
                        finished: &mut BTreeMap<String, u32>, n: usize| {
            for _ in 0..n {
                let Some(next) = o.next_chunk(now) else { break };
                let EdgeToClient::Chunk { at, offset, data, .. } = next.chunk else { panic!() };
                let uidl = name(at);
                let e = got.entry(uidl.clone()).or_insert((offset, offset));
                assert_eq!(e.1, offset, "gap or overlap in {uidl}");
                e.1 += data.len() as u64;
                if let Some((k, ..)) = next.finished {
                    *finished.entry(k.1.uidl).or_default() += 1;
                }
                let sent = o.sent;
                o.window(sent, now).unwrap();
            }
        };
        for (op, which, len, urgent) in ops {
            let uidl = format!("m{which}");
            match op {
                0 if !expected.contains_key(&uidl) => {
                    let from = (len / 3) as u64;
                    expected.insert(uidl.clone(), (from, len));
                    o.push(key(&uidl), at(&uidl), body(len, which as u8), from, urgent, vec![]);
                }
                1 => { o.promote(&key(&uidl), urgent, vec![]); }
                _ => take(&mut o, &mut got, &mut finished, which + 1),
            }
            let sent = o.sent;
            o.window(sent, now).unwrap();
        }
        take(&mut o, &mut got, &mut finished, usize::MAX);
        for (uidl, (from, len)) in expected {
            let from = if from as usize <= len { from } else { 0 };
            if from as usize == len {
                // Nothing to send but the (empty) last chunk.
                prop_assert_eq!(finished.get(&uidl), Some(&1));
                continue;
            }
            prop_assert_eq!(got.get(&uidl), Some(&(from, len as u64)));
            prop_assert_eq!(finished.get(&uidl), Some(&1));
        }
    }
}

#[test]
fn chunks_travel_as_lf_where_reversible_and_never_split_a_crlf() {
    let now = t0();
    let mut o = Outbox::default();
    // A CRLF across the first chunk boundary, and a bare LF in the second.
    let mut body = vec![b'x'; CHUNK - 1];
    body.extend_from_slice(b"\r\nline\r\n");
    body.extend_from_slice(b"bare\nLF\r\n");
    body.extend(std::iter::repeat_n(b'y', CHUNK));
    o.push(key("a"), at("a"), Arc::new(body.clone()), 0, false, vec![]);
    let mut got = Vec::new();
    let mut forms = Vec::new();
    while let Some(next) = o.next_chunk(now) {
        let EdgeToClient::Chunk {
            offset, lf, data, ..
        } = next.chunk
        else {
            panic!("not a chunk")
        };
        assert_eq!(offset, got.len() as u64, "offsets count the body's bytes");
        let data = causeway_proto::line_ends::decode(lf, data);
        forms.push((lf, data.len()));
        got.extend_from_slice(&data);
        let sent = o.sent;
        o.window(sent, now).unwrap();
    }
    assert_eq!(got, body);
    // The first chunk took the LF of its last CR; the second has a bare LF.
    assert_eq!(forms[0], (true, CHUNK + 1));
    assert!(!forms[1].0);
    assert_eq!(
        o.sent,
        body.len() as u64,
        "the window counts the body's bytes"
    );
}

#[test]
fn a_resume_continues_what_the_client_holds_drops_what_it_does_not_want_and_reopens_the_window() {
    let now = t0();
    let mut o = Outbox::default();
    o.push(key("a"), at("a"), body(3 * CHUNK, 1), 0, false, vec![4]);
    o.push(key("b"), at("b"), body(CHUNK, 2), 0, false, vec![]);
    o.push(key("m0"), at("m0"), body(10, 3), 0, false, vec![]);
    // Two chunks of "a" go out; the line dies before any Window.
    o.next_chunk(now).unwrap();
    o.next_chunk(now).unwrap();
    assert_eq!(o.sent, 2 * CHUNK as u64);
    // The client proxy received only the first, and no longer wants "b".
    let holds = |k: &Key| match k.1.uidl.as_str() {
        "a" => Some(CHUNK as u64),
        "m0" => Some(0),
        _ => None,
    };
    assert_eq!(o.resume(CHUNK as u64, holds), 1);
    assert_eq!(o.unsent(), 2 * CHUNK + 10);
    assert_eq!((o.sent, o.acked), (CHUNK as u64, CHUNK as u64));
    let out = drain(&mut o, now);
    let order: Vec<(&str, u64)> = out.iter().map(|(u, off, ..)| (u.as_str(), *off)).collect();
    assert_eq!(order, [("a", 8192), ("a", 16384), ("m0", 0)]);
    // The request that waited on "a" was forgotten: it is asked again.
    assert_eq!(out[1].3, Some(vec![]));
}

#[test]
fn a_body_is_held_by_the_client_once_a_window_passes_its_last_byte() {
    let now = t0();
    let mut o = Outbox::default();
    o.push(key("a"), at("a"), body(CHUNK + 10, 1), 0, false, vec![]);
    o.push(key("b"), at("b"), body(20, 2), 0, false, vec![]);
    o.push(key("m0"), at("m0"), body(30, 3), 0, false, vec![]);
    while o.next_chunk(now).is_some() {}
    let a_end = CHUNK as u64 + 10;
    assert_eq!(o.window(CHUNK as u64, now).unwrap(), [], "a's tail not yet");
    assert_eq!(
        o.window(a_end + 19, now).unwrap(),
        [key("a")],
        "b short by one"
    );
    assert_eq!(o.window(a_end + 20, now).unwrap(), [key("b")]);
    // A cut: the counts restart where the client proxy says, and what went
    // out before it is not counted again (m0 is sent anew if still wanted).
    assert_eq!(o.resume(a_end + 20, |_| None), 0);
    o.push(key("m0"), at("m0"), body(30, 3), 0, false, vec![]);
    o.next_chunk(now).unwrap();
    assert_eq!(o.window(a_end + 50, now).unwrap(), [key("m0")]);
}
