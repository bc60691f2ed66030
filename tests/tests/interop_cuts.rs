//! Real line cuts between our nodes, judged on a real Dovecot.
//!
//! A cuttable forwarder sits on the bad line (client proxy <-> edge) and on
//! the edge <-> relay link. For each flow a clean run first measures how
//! many bytes it puts on the line, then the same flow is cut at a sweep of
//! byte offsets spread over it (both directions). After every cut, Dovecot
//! itself (IMAP EXAMINE, matched by content hash) must show:
//!
//! * nothing lost: every message the client was not told is deleted is
//!   still there (and what it was told is deleted is gone);
//! * nothing wrongly marked read: a message whose RETR did not complete at
//!   the client is not `\Seen` (Dovecot's maildir commits a RETR's `\Seen`
//!   even on a dropped connection, which is why the edge fetches with TOP);
//!   when the client's QUIT was answered `+OK`, everything it read is
//!   `\Seen`;
//! * no corruption: every body the client got is Dovecot's, byte for byte;
//! * every Dovecot session ended `Disconnected: Logged out`, and the
//!   next login works at once (with mbox and `pop3_lock_session = yes` a
//!   leaked session would make it wait ~10 s and fail `[IN-USE]`).
//!
//! The same holds for an IMAP mail client at the client proxy's IMAP front
//! (python `imaplib` reading with `BODY[]` and expunging each message),
//! with the edge reading Dovecot's POP3 on the bad line and Dovecot's IMAP
//! through the relay.

use std::time::Instant;

use causeway_tests::interop::chain::{LOCAL_PASSWORD, LOCAL_USER};
use causeway_tests::interop::clients::{Fetchmail, FetchmailOpts};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{
    Chain, Dovecot, Format, Mailbox, Nodes, Route, assert_clean_ends, assert_next_login_at_once,
    have_dovecot, require, settle,
};
use causeway_tests::{Dir, Forwarder, PyOut, python};

/// Messages per flow, and their size: bodies dominate the bytes on the
/// line, so most cut points fall inside a body.
const N: usize = 3;
const SIZE: usize = 12_000;
/// Cut points per flow: spread over the bytes flowing down (server ->
/// client) and up (commands).
const DOWN_POINTS: u64 = 14;
const UP_POINTS: u64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// RETR every message, QUIT.
    Retr,
    /// RETR and DELE every message (what a client without `keep` does), QUIT.
    RetrDele,
    /// At the IMAP front: `FETCH n (BODY[])` (not a peek: it reads) of
    /// every message, then `STORE +FLAGS (\Deleted)` and `EXPUNGE` of it,
    /// LOGOUT.
    ImapFetchExpunge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// The bad line, client proxy <-> edge (edge reaches Dovecot directly).
    ClientEdge,
    /// The edge <-> relay link (the relay reaches Dovecot).
    EdgeRelay,
}

fn script(flow: Flow) -> String {
    if flow == Flow::ImapFetchExpunge {
        // The same keys as the POP3 script: `dele n` is an EXPUNGE that
        // reported the message expunged, `quit` a LOGOUT answered.
        return format!(
            r#"
if attempt("pass", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}") is None:
    raise SystemExit(0)
if attempt("select", p.select, "INBOX") is None:
    raise SystemExit(0)
for n in range(1, {N} + 1):
    r = attempt("retr %d" % n, p.fetch, "1", "(BODY[])")
    if r is None:
        break
    out("digest %d" % n, digest(r))
    if attempt("store %d" % n, p.store, "1", "+FLAGS", "(\\Deleted)") is None:
        break
    if attempt("dele %d" % n, p.expunge) is None:
        break
else:
    attempt("quit", p.logout)
"#
        );
    }
    format!(
        r#"
p.user("{LOCAL_USER}")
if attempt("pass", p.pass_, "{LOCAL_PASSWORD}") is None:
    raise SystemExit(0)
for n in range(1, {N} + 1):
    r = attempt("retr %d" % n, p.retr, n)
    if r is None:
        break
    out("digest %d" % n, digest(r[1]))
    if {dele} and attempt("dele %d" % n, p.dele, n) is None:
        break
else:
    attempt("quit", p.quit)
"#,
        dele = if flow == Flow::RetrDele {
            "True"
        } else {
            "False"
        }
    )
}

/// What the client was told, message by message, and what Dovecot must
/// therefore hold.
fn judge(before: &Mailbox, out: &PyOut) -> impl Fn(&Mailbox) -> Result<(), String> + use<> {
    struct Told {
        sha: String,
        retrieved: bool,
        dele_acked: bool,
        dele_tried: bool,
    }
    let told: Vec<Told> = before
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let n = i + 1;
            let digest = out
                .0
                .iter()
                .find(|(k, _)| *k == format!("digest {n}"))
                .map(|(_, v)| v.clone());
            if let Some(d) = &digest {
                assert_eq!(
                    *d,
                    format!("{} {}", m.sha256, m.size),
                    "message {n} corrupted"
                );
            }
            Told {
                sha: m.sha256.clone(),
                retrieved: digest.is_some(),
                dele_acked: out.has(&format!("dele {n}")),
                dele_tried: out.has(&format!("dele {n}")) || out.has(&format!("dele {n}.err")),
            }
        })
        .collect();
    let quit_ok = out.has("quit");
    move |mb: &Mailbox| {
        for (i, t) in told.iter().enumerate() {
            let n = i + 1;
            let now = mb.get(&t.sha);
            match now {
                Some(_) if t.dele_acked => {
                    return Err(format!("message {n}: acknowledged DELE not committed"));
                }
                None if !t.dele_tried => return Err(format!("message {n} LOST")),
                _ => {}
            }
            if let Some(m) = now {
                if m.seen() && !t.retrieved {
                    return Err(format!(
                        "message {n} marked read, but its RETR never completed"
                    ));
                }
                if !m.seen() && t.retrieved && quit_ok {
                    return Err(format!(
                        "message {n} read and QUIT +OK, but not marked read"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One run of the flow, optionally cut `at` bytes into it; checked on
/// Dovecot. How far the client got (its last printed key).
async fn point(
    dc: &Dovecot,
    chain: &Chain,
    fwd: &Forwarder,
    flow: Flow,
    at: Option<(Dir, u64)>,
) -> String {
    dc.empty(USER).await;
    dc.deliver(USER, N, SIZE).await;
    let before = dc.mailbox(USER).await;
    let mark = dc.log_mark();
    if let Some((dir, more)) = at {
        fwd.cut_after(dir, more);
    }
    let out = if flow == Flow::ImapFetchExpunge {
        python::run_imap(&chain.imap, &script(flow)).await
    } else {
        python::run(&chain.proxy, &script(flow)).await
    };
    // Disarm a cut the flow did not reach (it would hit the next run).
    fwd.cut_after(Dir::Down, u64::MAX / 4);
    let what = format!("{flow:?} cut at {at:?}");
    if at.is_none() {
        assert!(out.has("quit"), "the clean run must succeed: {out:?}");
    }
    let check = judge(&before, &out);
    settle(dc, chain, USER, mark, |mb| {
        check(mb).map_err(|e| format!("{what}: {e}; client: {out:?}"))
    })
    .await;
    assert_clean_ends(dc, mark, &what).await;
    assert_next_login_at_once(dc, USER, &what).await;
    out.0
        .last()
        .map(|(k, v)| format!("{k}={:.50}", v))
        .unwrap_or_default()
}

async fn sweep(format: Format, line: Line, flow: Flow) {
    if !have_dovecot() {
        return;
    }
    let t0 = Instant::now();
    let route = match line {
        Line::ClientEdge => Route::Direct,
        Line::EdgeRelay => Route::Relay,
    };
    let dc = Dovecot::start(format).await;
    // IMAP at both ends through the relay: the edge reads Dovecot's IMAP.
    let chain = if flow == Flow::ImapFetchExpunge && line == Line::EdgeRelay {
        let imap = format!("127.0.0.1:{}", dc.imap_port);
        Chain::start_imap(Nodes::from_env(), route, (&imap, "INBOX"), USER, PASSWORD).await
    } else {
        Chain::start(Nodes::from_env(), route, &dc.pop3_addr(), USER, PASSWORD).await
    };
    let fwd = match line {
        Line::ClientEdge => &chain.line,
        Line::EdgeRelay => chain.relay_line(),
    };
    let (down0, up0) = (fwd.bytes(Dir::Down), fwd.bytes(Dir::Up));
    point(&dc, &chain, fwd, flow, None).await;
    let (down, up) = (fwd.bytes(Dir::Down) - down0, fwd.bytes(Dir::Up) - up0);
    assert!(
        down > (N * SIZE) as u64 / 2,
        "the bodies crossed this line: {down}"
    );

    let mut points: Vec<(Dir, u64)> = (1..=DOWN_POINTS)
        .map(|k| (Dir::Down, down * k / (DOWN_POINTS + 1)))
        .collect();
    points.extend((1..=UP_POINTS).map(|k| (Dir::Up, up * k / (UP_POINTS + 1))));
    let mut outcomes = Vec::new();
    for &(dir, at) in &points {
        let last = point(&dc, &chain, fwd, flow, Some((dir, at))).await;
        outcomes.push(format!("{dir:?}@{at}:{last}"));
    }
    eprintln!(
        "{format} {line:?} {flow:?}: clean run {down} B down / {up} B up; {} cut points in {:?}; \
         client's last word per point: {}",
        points.len(),
        t0.elapsed(),
        outcomes.join(" ")
    );
}

macro_rules! sweeps {
    ($($name:ident: $format:expr, $line:expr, $flow:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            sweep($format, $line, $flow).await
        }
    )*};
}

sweeps! {
    maildir_client_edge_retr: Format::Maildir, Line::ClientEdge, Flow::Retr;
    maildir_client_edge_retr_dele: Format::Maildir, Line::ClientEdge, Flow::RetrDele;
    maildir_edge_relay_retr: Format::Maildir, Line::EdgeRelay, Flow::Retr;
    maildir_edge_relay_retr_dele: Format::Maildir, Line::EdgeRelay, Flow::RetrDele;
    mbox_locked_client_edge_retr: Format::MboxLocked, Line::ClientEdge, Flow::Retr;
    mbox_locked_client_edge_retr_dele: Format::MboxLocked, Line::ClientEdge, Flow::RetrDele;
    mbox_locked_edge_relay_retr: Format::MboxLocked, Line::EdgeRelay, Flow::Retr;
    mbox_locked_edge_relay_retr_dele: Format::MboxLocked, Line::EdgeRelay, Flow::RetrDele;
    maildir_client_edge_imap_fetch_expunge: Format::Maildir, Line::ClientEdge, Flow::ImapFetchExpunge;
    maildir_edge_relay_imap_fetch_expunge: Format::Maildir, Line::EdgeRelay, Flow::ImapFetchExpunge;
}

/// fetchmail (`keep`, `uidl`) has its line cut in the middle of the second
/// of four messages. The client proxy resumes the session (protocol 8), so
/// fetchmail sees nothing: the poll succeeds with all four, once each;
/// nothing is marked read on Dovecot (fetchmail reads with TOP under
/// `keep`), every Dovecot session ends with QUIT, and the next poll finds
/// nothing new. (Before resume the poll failed with exit 2 and the rerun
/// fetched the rest.)
async fn fetchmail_cut(format: Format) {
    if !have_dovecot() || !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    let dc = Dovecot::start(format).await;
    dc.deliver(USER, 4, 40_000).await;
    let before = dc.mailbox(USER).await;
    let chain = Chain::start(
        Nodes::from_env(),
        Route::Direct,
        &dc.pop3_addr(),
        USER,
        PASSWORD,
    )
    .await;
    let fm = Fetchmail::new();
    let keep = FetchmailOpts {
        keep: true,
        uidl: true,
        fetchall: false,
        imap: false,
    };
    let mark = dc.log_mark();
    // Handshake and listing are small; 1.5 bodies in, the second is cut.
    chain.line.cut_after(Dir::Down, 60_000);
    let first = fm.run(&chain.proxy, keep).await;
    assert_eq!(first.code, 0, "the cut was resumed: {}", first.text());
    assert_eq!(chain.line.connections(), 2, "one cut, one resume");
    let got: Vec<String> = fm.delivered();
    let mut want: Vec<String> = before
        .messages
        .iter()
        .map(|m| m.body_sha256.clone())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want, "every message once");
    let all: Vec<String> = before.messages.iter().map(|m| m.sha256.clone()).collect();
    settle(&dc, &chain, USER, mark, |mb| {
        for (i, sha) in all.iter().enumerate() {
            match mb.get(sha) {
                None => return Err(format!("message {} lost", i + 1)),
                Some(m) if m.seen() => return Err(format!("message {} marked read", i + 1)),
                _ => {}
            }
        }
        Ok(())
    })
    .await;
    assert_clean_ends(&dc, mark, "fetchmail cut and resumed").await;
    assert_next_login_at_once(&dc, USER, "fetchmail cut and resumed").await;
    let second = fm.run(&chain.proxy, keep).await;
    assert_eq!(
        second.code,
        1,
        "the next poll finds nothing new: {}",
        second.text()
    );
    assert_eq!(fm.delivered().len(), 4, "no duplicate");
    assert_clean_ends(&dc, mark, "fetchmail rerun").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_cut_maildir() {
    fetchmail_cut(Format::Maildir).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_cut_mbox_locked() {
    fetchmail_cut(Format::MboxLocked).await
}

/// A line is cut mid-RETR, then the mail client connects again at once and
/// reads everything: the new session must not wait for the old one's
/// server session (with `pop3_lock_session` Dovecot would make it wait
/// ~10 s and refuse it `[IN-USE]`), and ends with everything read. On the
/// client's line the cut is resumed (the first run succeeds); on the
/// edge <-> relay link the edge opens the server session again.
async fn reconnect_at_once(format: Format, route: Route) {
    if !have_dovecot() {
        return;
    }
    let dc = Dovecot::start(format).await;
    dc.deliver(USER, N, SIZE).await;
    let before = dc.mailbox(USER).await;
    let chain = Chain::start(Nodes::from_env(), route, &dc.pop3_addr(), USER, PASSWORD).await;
    let fwd = match route {
        Route::Direct => &chain.line,
        Route::Relay => chain.relay_line(),
    };
    let mark = dc.log_mark();
    fwd.cut_after(Dir::Down, (SIZE * 3 / 2) as u64);
    let first = python::run(&chain.proxy, &script(Flow::Retr)).await;
    // Through a relay, the cut may meet a body the edge fetches ahead of
    // demand: its worker opens the server session again and fetches it
    // again, and the mail client sees nothing (better than an error).
    assert!(
        first.has("quit") || matches!(route, Route::Relay),
        "the cut was resumed: {first:?}"
    );
    let t = Instant::now();
    let second = python::run(&chain.proxy, &script(Flow::Retr)).await;
    let took = t.elapsed();
    assert!(
        second.has("quit"),
        "the reconnected session failed: {second:?}"
    );
    assert!(took.as_secs() < 3, "the reconnected session took {took:?}");
    let check = judge(&before, &second);
    settle(&dc, &chain, USER, mark, |mb| {
        check(mb)?;
        if mb.messages.iter().all(|m| m.seen()) {
            Ok(())
        } else {
            Err("all read expected".into())
        }
    })
    .await;
    assert_clean_ends(&dc, mark, "reconnect").await;
    eprintln!("{format} {route:?}: reconnected session took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_at_once_mbox_locked_direct() {
    reconnect_at_once(Format::MboxLocked, Route::Direct).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_at_once_mbox_locked_relay() {
    reconnect_at_once(Format::MboxLocked, Route::Relay).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_at_once_maildir_relay() {
    reconnect_at_once(Format::Maildir, Route::Relay).await
}
