//! Replays real Dovecot 2.3 POP3 transcripts (captured by
//! `tests/data/dovecot/capture-dovecot.py`, committed, so Dovecot is not
//! needed here) through both sides of the codec:
//!
//! - every server reply through `ClientCodec`, in several chunkings, checking
//!   the framing against the capture script's own (independent) framing,
//!   every status field, and every body byte for byte against the message
//!   files that were delivered;
//! - every command the script sent through `ServerCodec` / `Command::parse`.

use std::path::PathBuf;

use causeway_pop3::client::{
    ClientCodec, Response, parse_capabilities, parse_scan_line, parse_scan_listing, parse_stat,
    parse_uidl_line, parse_uidl_listing,
};
use causeway_pop3::multiline::normalise;
use causeway_pop3::{Command, CommandError, RespCode, ServerCodec, Status, StatusLine};

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dovecot")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Exchange {
    command: Vec<u8>,
    reply: Vec<u8>,
    multi: bool,
}

struct Transcript {
    client: Vec<u8>,
    server: Vec<u8>,
    exchanges: Vec<Exchange>,
}

fn transcript(name: &str) -> Transcript {
    let client = data(&format!("{name}.client.bin"));
    let server = data(&format!("{name}.server.bin"));
    let index = String::from_utf8(data(&format!("{name}.txt"))).unwrap();
    let exchanges = index
        .lines()
        .filter_map(|l| l.strip_prefix("X "))
        .map(|l| {
            let f: Vec<usize> = l.split(' ').map(|x| x.parse().unwrap()).collect();
            Exchange {
                command: client[f[0]..f[0] + f[1]].to_vec(),
                reply: server[f[2]..f[2] + f[3]].to_vec(),
                multi: f[4] == 1,
            }
        })
        .collect();
    Transcript {
        client,
        server,
        exchanges,
    }
}

/// An independent, line-based un-stuffer for the cross-check.
fn naive_body(reply: &[u8]) -> Option<Vec<u8>> {
    let lines: Vec<&[u8]> = reply.split(|&b| b == b'\n').collect();
    // [status, body..., ".", ""]
    if lines.len() < 3 {
        return None;
    }
    assert_eq!(lines[lines.len() - 2], b".\r");
    let mut out = Vec::new();
    for l in &lines[1..lines.len() - 2] {
        out.extend_from_slice(l.strip_prefix(b".").unwrap_or(l));
        out.push(b'\n');
    }
    Some(out)
}

/// Runs the whole server stream through a `ClientCodec` told about each
/// command, fed in `chunk`-sized pieces; checks the framing matches.
fn replay(t: &Transcript, chunk: usize) -> Vec<Response> {
    let mut codec = ClientCodec::new(causeway_pop3::DEFAULT_MAX_MESSAGE);
    for (i, x) in t.exchanges.iter().enumerate() {
        if i == 0 {
            assert!(x.command.is_empty());
            codec.expect_greeting();
            continue;
        }
        let line = &x.command[..x.command.len() - 2];
        match Command::parse(line) {
            Ok(cmd) => {
                let mut out = Vec::new();
                codec.send(&cmd, &mut out);
                assert!(out.eq_ignore_ascii_case(&x.command), "encode {cmd:?}");
                assert_eq!(cmd.expects_multiline(), x.multi, "{cmd:?}");
            }
            Err(_) => codec.expect(x.multi),
        }
    }
    for piece in t.server.chunks(chunk) {
        codec.feed(piece).unwrap();
    }
    let responses: Vec<Response> = std::iter::from_fn(|| codec.next_response()).collect();
    assert_eq!(
        responses.len(),
        t.exchanges.len(),
        "one response per exchange"
    );
    assert_eq!(codec.outstanding(), 0);
    assert_eq!(codec.buffered(), 0);
    for (r, x) in responses.iter().zip(&t.exchanges) {
        let first = &x.reply[..x.reply.iter().position(|&b| b == b'\n').unwrap() + 1];
        let mut encoded = Vec::new();
        r.status.encode(&mut encoded);
        // Re-encoding the status line gives Dovecot's bytes back (modulo a
        // trailing space, which Dovecot sends after "number:").
        assert_eq!(
            String::from_utf8_lossy(&encoded).trim_end(),
            String::from_utf8_lossy(first).trim_end()
        );
        assert_eq!(
            r.body,
            naive_body(&x.reply).filter(|_| x.multi && r.status.is_ok())
        );
    }
    responses
}

fn st(status: Status, code: Option<RespCode>, text: &str) -> StatusLine {
    StatusLine {
        status,
        code,
        text: text.as_bytes().to_vec(),
    }
}

fn ok(text: &str) -> StatusLine {
    st(Status::Ok, None, text)
}

fn err(text: &str) -> StatusLine {
    st(Status::Err, None, text)
}

fn message(n: usize) -> Vec<u8> {
    data(&format!("message-{n}.eml"))
}

/// The size Dovecot reports: the message with CRLF line ends, *not*
/// counting the CRLF it appends to a message without a final newline.
fn dovecot_size(msg: &[u8]) -> u64 {
    let n = normalise(msg);
    (if msg.ends_with(b"\n") {
        n.len()
    } else {
        n.len() - 2
    }) as u64
}

/// Header, blank line and the first `lines` body lines, CRLF.
fn top(msg: &[u8], lines: usize) -> Vec<u8> {
    let n = normalise(msg);
    let split = n.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut out = n[..split].to_vec();
    for l in n[split..].split_inclusive(|&b| b == b'\n').take(lines) {
        out.extend_from_slice(l);
    }
    out
}

#[test]
fn main_session_client_side() {
    let t = transcript("main");
    let r = replay(&t, usize::MAX);
    for chunk in [1, 2, 3, 7, 64, 1500, 4096] {
        assert_eq!(replay(&t, chunk), r, "chunk {chunk}");
    }
    let status: Vec<&StatusLine> = r.iter().map(|r| &r.status).collect();
    let sizes: Vec<u64> = (1..=7).map(|n| dovecot_size(&message(n))).collect();
    let total: u64 = sizes.iter().sum();

    // Greeting, CAPA before login, failed and good login, CAPA after.
    assert_eq!(status[0], &ok("Dovecot (Debian) ready."));
    let capa = parse_capabilities(r[1].body.as_ref().unwrap());
    let capa: Vec<&[u8]> = capa.iter().map(Vec::as_slice).collect();
    assert_eq!(
        capa,
        [
            &b"CAPA"[..],
            b"TOP",
            b"UIDL",
            b"RESP-CODES",
            b"PIPELINING",
            b"AUTH-RESP-CODE",
            b"USER",
            b"SASL PLAIN LOGIN"
        ]
    );
    assert_eq!(status[2], &ok(""));
    assert_eq!(
        status[3],
        &st(Status::Err, Some(RespCode::Auth), "Authentication failed.")
    );
    assert_eq!(status[4], &ok(""));
    assert_eq!(status[5], &ok("Logged in."));
    let capa_after = parse_capabilities(r[6].body.as_ref().unwrap());
    assert_eq!(capa_after.len(), 6, "no USER / SASL after login");

    // STAT, LIST, UIDL, LIST 1, UIDL 1, LIST 99.
    assert_eq!(parse_stat(&status[7].text).unwrap(), (7, total));
    assert_eq!(status[8], &ok("7 messages:"));
    let list = parse_scan_listing(r[8].body.as_ref().unwrap()).unwrap();
    assert_eq!(
        list,
        (1..=7)
            .map(|n| (n as u32, sizes[n - 1]))
            .collect::<Vec<_>>()
    );
    let uidl = parse_uidl_listing(r[9].body.as_ref().unwrap()).unwrap();
    assert_eq!(
        uidl.iter().map(|u| u.0).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<u32>>()
    );
    for (_, u) in &uidl {
        assert_eq!(u.len(), 16, "Dovecot's %08Xu%08Xv");
        assert!(
            u.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
    assert_eq!(parse_scan_line(&status[10].text).unwrap(), (1, sizes[0]));
    assert_eq!(parse_uidl_line(&status[11].text).unwrap(), uidl[0]);
    assert_eq!(status[12], &err("There's no message 99."));

    // RETR 1..7: each body is the delivered file, CRLF-normalised, byte for
    // byte; "+OK <size> octets".
    for n in 1..=7 {
        let resp = &r[12 + n];
        assert_eq!(
            resp.status,
            ok(&format!("{} octets", sizes[n - 1])),
            "RETR {n}"
        );
        assert_eq!(
            resp.body.as_deref(),
            Some(&normalise(&message(n))[..]),
            "RETR {n}"
        );
    }
    // The dots message really has dot lines, 8-bit bytes; the CRLF file a lone CR.
    assert!(message(4).windows(3).any(|w| w == b"\n.\n"));
    assert!(message(4).contains(&0xff));
    assert!(message(5).last() != Some(&b'\n'));
    assert!(message(6).windows(3).any(|w| w == b"e\rc"));

    // TOP 4 0, TOP 4 3, TOP 5 3, top 6 100000 (whole message).
    assert_eq!(status[20], &ok(""));
    assert_eq!(r[20].body.as_deref(), Some(&top(&message(4), 0)[..]));
    assert_eq!(r[21].body.as_deref(), Some(&top(&message(4), 3)[..]));
    assert_eq!(r[22].body.as_deref(), Some(&top(&message(5), 3)[..]));
    assert_eq!(r[23].body.as_deref(), Some(&normalise(&message(6))[..]));

    // Errors.
    assert_eq!(
        r[24],
        Response {
            status: err("There's no message 99."),
            body: None
        }
    );
    assert_eq!(status[25], &err("Invalid message number: abc"));
    assert_eq!(status[26], &err("There's no message 0."));
    assert_eq!(
        status[27],
        &err("Noise after message number: "),
        "Dovecot's trailing space"
    );
    assert_eq!(status[28], &ok("Marked to be deleted."));
    assert_eq!(status[29], &err("Message is deleted."));
    assert_eq!(
        r[30],
        Response {
            status: err("Message is deleted."),
            body: None
        }
    );
    assert_eq!(parse_stat(&status[31].text).unwrap(), (6, total - sizes[0]));
    let list = parse_scan_listing(r[32].body.as_ref().unwrap()).unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(
        list[0],
        (2, sizes[1]),
        "numbers are not renumbered after DELE"
    );
    assert_eq!(
        parse_uidl_listing(r[33].body.as_ref().unwrap()).unwrap(),
        uidl[1..]
    );
    assert_eq!(status[34], &ok(""), "RSET");
    assert_eq!(parse_stat(&status[35].text).unwrap(), (7, total));
    assert_eq!(status[36], &ok(""), "NOOP");
    assert_eq!(parse_scan_line(&status[37].text).unwrap(), (2, sizes[1]));
    assert_eq!(status[38], &err("Unknown command: XYZZY"));
    assert_eq!(status[39], &ok("Logging out."));
    assert_eq!(r.len(), 40);
}

#[test]
fn pipelined_session_client_side() {
    let t = transcript("pipelined");
    let r = replay(&t, usize::MAX);
    for chunk in [1, 5, 100] {
        assert_eq!(replay(&t, chunk), r);
    }
    let total: u64 = (1..=7).map(|n| dovecot_size(&message(n))).sum();
    assert_eq!(parse_stat(&r[3].status.text).unwrap(), (7, total));
    assert_eq!(r[5].body.as_deref(), Some(&normalise(&message(4))[..]));
    assert_eq!(r[7].body.as_deref(), Some(&top(&message(4), 0)[..]));
    assert_eq!(r[8].status, ok("Marked to be deleted."));
    assert_eq!(r.last().unwrap().status, ok("Logging out."));
}

#[test]
fn in_use_session_client_side() {
    let t = transcript("in-use");
    let r = replay(&t, 3);
    assert_eq!(
        r[2].status,
        st(
            Status::Err,
            Some(RespCode::InUse),
            "Mailbox is locked by another POP3 session."
        )
    );
}

#[test]
fn long_line_session_client_side() {
    let t = transcript("long-line");
    let r = replay(&t, 10);
    assert_eq!(r[1].status, err("Unknown command."), "NOOP before login");
    assert_eq!(r[2].status, err("Input buffer full, aborting"));
}

/// The commands the capture script sent, through the server side.
#[test]
fn commands_parse_server_side() {
    let mut parsed = Vec::new();
    for name in ["main", "pipelined", "in-use", "long-line"] {
        let t = transcript(name);
        for chunk in [1, 4, 1000] {
            let mut s = ServerCodec::new();
            let mut got = Vec::new();
            for piece in t.client.chunks(chunk) {
                s.feed(piece);
                got.extend(std::iter::from_fn(|| s.next_command()));
            }
            assert_eq!(got.len(), t.exchanges.len() - 1, "{name}");
            assert_eq!(s.buffered(), 0);
            if chunk == 1 {
                parsed.extend(got);
            }
        }
    }
    let errors: Vec<&CommandError> = parsed.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        matches!(errors[0], CommandError::InvalidNumber { .. }),
        "RETR abc"
    );
    assert!(
        matches!(errors[1], CommandError::MissingArgument { .. }),
        "TOP 1"
    );
    assert!(matches!(errors[2], CommandError::Unknown(_)), "XYZZY");
    assert_eq!(errors[3], &CommandError::LineTooLong);
    assert!(parsed.contains(&Ok(Command::Top {
        msg: 6,
        lines: 100_000
    })));
    assert!(parsed.contains(&Ok(Command::Pass(b"wrong".to_vec()))));
}
