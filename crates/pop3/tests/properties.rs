//! Property tests: what round-trips, and that hostile input in any chunking
//! never panics and never breaks a cap.
//!
//! Round-trips stated exactly:
//! - `Command::encode` then `Command::parse` gives the same command, for
//!   every command whose arguments hold no CR, LF or NUL (and, for APOP, no
//!   space), also with the keyword in lower case.
//! - `StatusLine::encode` then `StatusLine::parse` gives the same line, for
//!   text without CR/LF that, when there is no code, does not start with "["
//!   (it would read as a code).
//! - `encode_body` then `BodyDecoder`, fed in any chunking, gives
//!   `normalise(body)` for any bytes; a body whose lines all end in CRLF
//!   comes back byte for byte.

use causeway_pop3::client::ClientCodec;
use causeway_pop3::line::{LineBuffer, LineTooLong};
use causeway_pop3::multiline::{BodyDecoder, encode_body, normalise};
use causeway_pop3::server::{write_listing, write_multiline, write_status};
use causeway_pop3::{Command, RespCode, Status, StatusLine};
use proptest::prelude::*;

fn arg(min: usize, max: usize, space: bool) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), min..max).prop_map(move |v| {
        v.into_iter()
            .map(|b| {
                if matches!(b, b'\r' | b'\n' | 0) || (!space && b == b' ') {
                    b'x'
                } else {
                    b
                }
            })
            .collect()
    })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        arg(1, 40, true).prop_map(Command::User),
        arg(1, 40, true).prop_map(Command::Pass),
        (arg(1, 20, false), arg(1, 40, false))
            .prop_map(|(name, digest)| Command::Apop { name, digest }),
        Just(Command::Stat),
        any::<Option<u32>>().prop_map(Command::List),
        any::<Option<u32>>().prop_map(Command::Uidl),
        any::<u32>().prop_map(Command::Retr),
        (any::<u32>(), any::<u32>()).prop_map(|(msg, lines)| Command::Top { msg, lines }),
        any::<u32>().prop_map(Command::Dele),
        Just(Command::Noop),
        Just(Command::Rset),
        Just(Command::Quit),
        Just(Command::Capa),
        Just(Command::Stls),
    ]
}

fn resp_code() -> impl Strategy<Value = RespCode> {
    prop_oneof![
        Just(RespCode::InUse),
        Just(RespCode::LoginDelay),
        Just(RespCode::Auth),
        Just(RespCode::SysTemp),
        Just(RespCode::SysPerm),
        "X-[A-Z0-9-]{1,12}(/[A-Za-z0-9.]{1,8})?".prop_map(RespCode::Other),
    ]
}

fn status_line() -> impl Strategy<Value = StatusLine> {
    (
        any::<bool>(),
        prop::option::of(resp_code()),
        arg(0, 80, true),
    )
        .prop_map(|(ok, code, mut text)| {
            if code.is_none() && text.first() == Some(&b'[') {
                text[0] = b'(';
            }
            StatusLine {
                status: if ok { Status::Ok } else { Status::Err },
                code,
                text,
            }
        })
}

/// Bytes rich in the characters that matter: '.', CR, LF.
fn wire_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![3 => Just(b'.'), 3 => Just(b'\r'), 3 => Just(b'\n'), 4 => b'a'..=b'e', 2 => any::<u8>()],
        0..max,
    )
}

/// Split points: feeds `data` in pieces of the given sizes (cycled).
fn pieces<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let (a, b) = rest.split_at(n);
        rest = b;
        Some(a)
    })
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..40, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn command_round_trips(cmd in command(), lower in any::<bool>()) {
        let mut out = Vec::new();
        cmd.encode(&mut out);
        prop_assert!(out.ends_with(b"\r\n"));
        let mut line = out[..out.len() - 2].to_vec();
        if lower {
            let k = cmd.keyword().len();
            line[..k].make_ascii_lowercase();
        }
        prop_assert_eq!(Command::parse(&line), Ok(cmd.clone()));
        // And through the server codec, with a lone LF.
        let mut s = causeway_pop3::ServerCodec::new();
        line.push(b'\n');
        s.feed(&line);
        prop_assert_eq!(s.next_command(), Some(Ok(cmd)));
    }

    #[test]
    fn status_line_round_trips(s in status_line()) {
        let mut out = Vec::new();
        s.encode(&mut out);
        prop_assert!(out.ends_with(b"\r\n"));
        prop_assert_eq!(StatusLine::parse(&out[..out.len() - 2]), Ok(s));
    }

    #[test]
    fn body_round_trips_in_any_chunking(body in wire_bytes(400), sz in sizes(), junk in wire_bytes(20)) {
        let mut wire = Vec::new();
        encode_body(&body, &mut wire);
        let end = wire.len();
        wire.extend_from_slice(&junk); // the next reply must not be eaten
        let mut d = BodyDecoder::new(1 << 20);
        let mut consumed = 0;
        let mut done = false;
        for p in pieces(&wire, &sz) {
            if done { break; }
            let pr = d.feed(p).unwrap();
            consumed += pr.consumed;
            done = pr.done;
            if !done { prop_assert_eq!(pr.consumed, p.len()); }
        }
        prop_assert!(done);
        prop_assert_eq!(consumed, end);
        prop_assert_eq!(d.into_body(), normalise(&body));
    }

    #[test]
    fn crlf_bodies_round_trip_byte_exact(lines in prop::collection::vec(arg(0, 30, true).prop_map(|mut l| {
        // Lines of any bytes except CR/LF, some starting with '.'.
        if l.first() == Some(&b'x') { l[0] = b'.'; }
        l
    }), 0..20)) {
        let body: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain(*b"\r\n")).collect();
        prop_assert_eq!(normalise(&body), body.clone());
        let mut wire = Vec::new();
        encode_body(&body, &mut wire);
        let mut d = BodyDecoder::new(body.len());
        prop_assert!(d.feed(&wire).unwrap().done);
        prop_assert_eq!(d.into_body(), body);
    }

    #[test]
    fn body_cap_is_exact(body in wire_bytes(200)) {
        let want = normalise(&body);
        let mut wire = Vec::new();
        encode_body(&body, &mut wire);
        let fits = BodyDecoder::new(want.len()).feed(&wire);
        prop_assert!(fits.unwrap().done);
        if !want.is_empty() {
            let mut d = BodyDecoder::new(want.len() - 1);
            prop_assert!(d.feed(&wire).is_err());
        }
    }

    #[test]
    fn line_buffer_matches_a_reference_split(data in wire_bytes(600), sz in sizes(), cap in 1usize..50) {
        let mut lb = LineBuffer::new(cap);
        let mut got = Vec::new();
        for p in pieces(&data, &sz) {
            lb.feed(p);
            prop_assert!(lb.buffered() <= p.len() + cap + 1);
            while let Some(l) = lb.next_line() { got.push(l); }
            prop_assert!(lb.buffered() <= cap, "an unfinished line stays under the cap");
        }
        // Reference: split complete lines; drop the unfinished tail unless it
        // is already over the cap.
        let mut want: Vec<Result<Vec<u8>, LineTooLong>> = Vec::new();
        let mut rest = &data[..];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..=i];
            want.push(if line.len() > cap { Err(LineTooLong) } else {
                let l = &line[..line.len() - 1];
                Ok(l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            });
            rest = &rest[i + 1..];
        }
        if rest.len() >= cap { want.push(Err(LineTooLong)); }
        prop_assert_eq!(got, want);
    }

    /// What a server writes, the client codec reads back.
    #[test]
    fn server_writes_client_reads(body in wire_bytes(300), lines in prop::collection::vec(arg(0, 20, true), 0..6),
                                  s in status_line(), sz in sizes()) {
        let ok = StatusLine { status: Status::Ok, ..s.clone() };
        let mut wire = Vec::new();
        let mut out = Vec::new();
        let mut c = ClientCodec::new(1 << 20);
        c.expect_greeting();
        write_status(&mut wire, &s);
        c.send(&Command::Retr(1), &mut out);
        write_multiline(&mut wire, &ok, &body);
        c.send(&Command::Capa, &mut out);
        write_listing(&mut wire, &ok, &lines);
        c.send(&Command::Top { msg: 1, lines: 0 }, &mut out);
        write_status(&mut wire, &StatusLine::err(Some(RespCode::SysTemp), "later"));
        for p in pieces(&wire, &sz) {
            c.feed(p).unwrap();
        }
        let r: Vec<_> = std::iter::from_fn(|| c.next_response()).collect();
        prop_assert_eq!(r.len(), 4);
        prop_assert_eq!(&r[0].status, &s);
        prop_assert_eq!(r[0].body.as_ref(), None);
        prop_assert_eq!(r[1].body.as_ref(), Some(&normalise(&body)));
        let listing: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain(*b"\r\n")).collect();
        prop_assert_eq!(r[2].body.as_ref(), Some(&listing));
        prop_assert_eq!(&r[3].status.code, &Some(RespCode::SysTemp));
        prop_assert_eq!(r[3].body.as_ref(), None);
    }
}
