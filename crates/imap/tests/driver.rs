//! The IMAP client driver against scripted servers under turmoil
//! (simulated time, so the timeouts are exact and fast): a whole session,
//! the bytes each rule puts on the wire, refusals, and a line that trickles,
//! stalls or ends mid-literal.

use std::num::NonZeroU32;
use std::time::Duration;

use causeway_imap::{ImapClient, ImapError, Timeouts};
use causeway_net::script::{Step, serve_script};
use causeway_net::{Env, Listener, SimEnv};

use Step::*;

const TIMEOUTS: Timeouts = Timeouts {
    greeting: Duration::from_secs(5),
    command: Duration::from_secs(10),
};

type Client = ImapClient<SimEnv, <SimEnv as Env>::Stream>;

const GREETING: &[u8] =
    b"* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS IDLE AUTH=PLAIN] Dovecot ready.\r\n";

/// Runs `client` against a turmoil host that plays `script` once.
fn sim<F, Fut>(script: Vec<Step>, max_message: usize, client: F)
where
    F: FnOnce(Result<Client, ImapError>) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(3600))
        .build();
    sim.host("imap", move || {
        let script = script.clone();
        async move {
            let env = SimEnv::new(7, "imap", 0);
            let mut l = env.bind("0.0.0.0:143").await?;
            let (s, _) = l.accept().await?;
            serve_script(s, &script).await?;
            Ok(())
        }
    });
    sim.client("client", async move {
        let env = SimEnv::new(7, "client", 0);
        let stream = env.connect("imap:143").await?;
        client(ImapClient::start(env, stream, TIMEOUTS, max_message).await).await;
        Ok(())
    });
    sim.run().unwrap();
}

fn uid(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// Greeting, LOGIN, SELECT and a listing of three messages (UIDs 10, 11,
/// 12); the next tag is C4.
fn opened() -> Vec<Step> {
    vec![
        Send(GREETING),
        Expect("C1 LOGIN alice secret"),
        Send(b"C1 OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS IDLE] Logged in\r\n"),
        Expect("C2 SELECT INBOX"),
        Send(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* 3 EXISTS\r\n* 0 RECENT\r\n"),
        Send(b"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n* OK [UIDNEXT 13] Predicted next UID\r\n"),
        Send(b"C2 OK [READ-WRITE] Select completed.\r\n"),
        Expect("C3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)"),
        Send(b"* 1 FETCH (UID 10 RFC822.SIZE 120 FLAGS (\\Seen))\r\n* 2 FETCH (UID 11 RFC822.SIZE 5 FLAGS ())\r\n"),
        Send(b"* 3 FETCH (UID 12 RFC822.SIZE 300 FLAGS ())\r\nC3 OK Fetch completed.\r\n"),
    ]
}

async fn open(c: Result<Client, ImapError>) -> Client {
    let mut c = c.unwrap();
    c.login("alice", b"secret").await.unwrap();
    let f = c.select("INBOX").await.unwrap();
    assert_eq!(f.uidvalidity, Some(uid(1_700_000_000)));
    assert_eq!(f.uidnext, Some(uid(13)));
    c
}

#[test]
fn a_whole_session_peeks_marks_and_expunges_by_uid() {
    let mut script = opened();
    script.extend([
        Expect("C4 UID FETCH 11 (UID BODY.PEEK[])"),
        Send(b"* 2 FETCH (UID 11 BODY[] {5}\r\nhello)\r\nC4 OK Fetch completed.\r\n"),
        Expect("C5 UID STORE 11 +FLAGS.SILENT (\\Seen)"),
        Send(b"C5 OK Store completed.\r\n"),
        Expect("C6 UID STORE 10,12 +FLAGS.SILENT (\\Deleted)"),
        Send(b"C6 OK Store completed.\r\n"),
        Expect("C7 UID EXPUNGE 10,12"),
        // Sequence numbers shift after each EXPUNGE: 3 (UID 12), then 1.
        Send(b"* 3 EXPUNGE\r\n* 1 EXPUNGE\r\nC7 OK Expunge completed.\r\n"),
        Expect("C8 LOGOUT"),
        Send(b"* BYE Logging out\r\nC8 OK Logout completed.\r\n"),
        Close,
    ]);
    sim(script, 1 << 20, |c| async move {
        let mut c = open(c).await;
        let listed: Vec<_> = c.folder().unwrap().listed().collect();
        assert_eq!(
            listed
                .iter()
                .map(|m| (m.uid.get(), m.size, m.seen))
                .collect::<Vec<_>>(),
            [(10, 120, true), (11, 5, false), (12, 300, false)]
        );
        assert_eq!(c.fetch_body(uid(11)).await.unwrap().unwrap(), b"hello");
        c.mark_seen(&[uid(11)]).await.unwrap();
        let gone = c.delete(&[uid(10), uid(12)]).await.unwrap();
        assert_eq!(gone, [uid(12), uid(10)]);
        let left: Vec<u32> = c.folder().unwrap().listed().map(|m| m.uid.get()).collect();
        assert_eq!(left, [11]);
        c.logout().await.unwrap();
    });
}

#[test]
fn a_refused_login_says_authentication_and_leaves_the_session_usable() {
    let script = vec![
        Send(GREETING),
        Expect("C1 LOGIN alice wrong"),
        Send(b"C1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        Expect("C2 LOGOUT"),
        Send(b"* BYE Logging out\r\nC2 OK Logout completed.\r\n"),
        Close,
    ];
    sim(script, 1 << 20, |c| async move {
        let mut c = c.unwrap();
        let e = c.login("alice", b"wrong").await.unwrap_err();
        assert!(e.is_authentication() && !e.is_transient(), "{e}");
        assert!(e.to_string().contains("[AUTHENTICATIONFAILED]"), "{e}");
        c.logout().await.unwrap();
    });
}

/// A server without UIDPLUS, logged in and INBOX selected: UIDs 4 and 9.
fn old_server() -> Vec<Step> {
    vec![
        Send(b"* OK [CAPABILITY IMAP4rev1] old server\r\n"),
        Expect("C1 LOGIN alice secret"),
        Send(b"C1 OK Logged in\r\n"),
        Expect("C2 SELECT INBOX"),
        Send(b"* 2 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nC2 OK [READ-WRITE] done\r\n"),
        Expect("C3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)"),
        Send(
            b"* 1 FETCH (UID 4 RFC822.SIZE 10 FLAGS ())\r\n\
              * 2 FETCH (UID 9 RFC822.SIZE 10 FLAGS ())\r\nC3 OK done\r\n",
        ),
        // The login listed no capabilities: the client asks.
        Expect("C4 CAPABILITY"),
        Send(b"* CAPABILITY IMAP4rev1 IDLE\r\nC4 OK done\r\n"),
    ]
}

fn delete_on_old_server(script: Vec<Step>, check: fn(Result<Vec<NonZeroU32>, ImapError>)) {
    sim(script, 1 << 20, move |c| async move {
        let mut c = c.unwrap();
        c.login("alice", b"secret").await.unwrap();
        c.select("INBOX").await.unwrap();
        check(c.delete(&[uid(4)]).await);
        c.logout().await.unwrap();
    });
}

#[test]
fn without_uidplus_a_bare_expunge_is_sent_when_no_other_message_is_deleted() {
    let mut script = old_server();
    script.extend([
        Expect("C5 UID SEARCH DELETED"),
        Send(b"* SEARCH\r\nC5 OK done\r\n"),
        Expect("C6 UID STORE 4 +FLAGS.SILENT (\\Deleted)"),
        Send(b"C6 OK done\r\n"),
        Expect("C7 UID SEARCH DELETED"),
        Send(b"* SEARCH 4\r\nC7 OK done\r\n"),
        Expect("C8 EXPUNGE"),
        Send(b"* 1 EXPUNGE\r\nC8 OK done\r\n"),
        Expect("C9 LOGOUT"),
        Send(b"* BYE bye\r\nC9 OK done\r\n"),
        Close,
    ]);
    delete_on_old_server(script, |r| assert_eq!(r.unwrap(), [uid(4)]));
}

#[test]
fn without_uidplus_nothing_is_flagged_while_another_message_is_deleted() {
    let mut script = old_server();
    script.extend([
        Expect("C5 UID SEARCH DELETED"),
        Send(b"* SEARCH 9\r\nC5 OK done\r\n"),
        // No STORE: straight to LOGOUT.
        Expect("C6 LOGOUT"),
        Send(b"* BYE bye\r\nC6 OK done\r\n"),
        Close,
    ]);
    delete_on_old_server(script, |r| {
        let e = r.unwrap_err();
        assert!(matches!(e, ImapError::NoUidplus { others: 1 }), "{e}");
        assert!(e.to_string().contains("1 other message(s)"), "{e}");
    });
}

#[test]
fn without_uidplus_a_message_deleted_meanwhile_takes_our_flag_back() {
    let mut script = old_server();
    script.extend([
        Expect("C5 UID SEARCH DELETED"),
        Send(b"* SEARCH\r\nC5 OK done\r\n"),
        Expect("C6 UID STORE 4 +FLAGS.SILENT (\\Deleted)"),
        Send(b"C6 OK done\r\n"),
        // Another client flagged UID 9 in between: no EXPUNGE, and ours is
        // unflagged again.
        Expect("C7 UID SEARCH DELETED"),
        Send(b"* SEARCH 4 9\r\nC7 OK done\r\n"),
        Expect("C8 UID STORE 4 -FLAGS.SILENT (\\Deleted)"),
        Send(b"C8 OK done\r\n"),
        Expect("C9 LOGOUT"),
        Send(b"* BYE bye\r\nC9 OK done\r\n"),
        Close,
    ]);
    delete_on_old_server(script, |r| {
        assert!(
            matches!(r, Err(ImapError::NoUidplus { others: 1 })),
            "{r:?}"
        );
    });
}

#[test]
fn a_body_that_trickles_for_longer_than_any_timeout_arrives() {
    let mut script = opened();
    script.extend([
        Expect("C4 UID FETCH 12 (UID BODY.PEEK[])"),
        Send(b"* 3 FETCH (UID 12 BODY[] {300000}\r\n"),
        // 300 writes of 1000 bytes, 2 s apart: 10 minutes, with the command
        // timeout at 10 s.
        Stream {
            byte: b'x',
            n: 300_000,
            chunk: 1000,
            delay_ms: 2000,
        },
        Send(b")\r\nC4 OK Fetch completed.\r\n"),
    ]);
    sim(script, 1 << 20, |c| async move {
        let mut c = open(c).await;
        let body = c.fetch_body(uid(12)).await.unwrap().unwrap();
        assert_eq!(body.len(), 300_000);
    });
}

#[test]
fn a_body_that_stops_times_out_and_breaks_the_session() {
    let mut script = opened();
    script.extend([
        Expect("C4 UID FETCH 12 (UID BODY.PEEK[])"),
        Send(b"* 3 FETCH (UID 12 BODY[] {300000}\r\n"),
        Stream {
            byte: b'x',
            n: 1000,
            chunk: 1000,
            delay_ms: 0,
        },
        Sleep(60_000),
    ]);
    sim(script, 1 << 20, |c| async move {
        let mut c = open(c).await;
        let e = c.fetch_body(uid(12)).await.unwrap_err();
        assert!(matches!(e, ImapError::Timeout { .. }), "{e}");
        assert!(e.is_transient());
        assert!(matches!(c.noop().await, Err(ImapError::Broken)));
    });
}

#[test]
fn eof_mid_literal_is_an_error_not_a_short_body() {
    let mut script = opened();
    script.extend([
        Expect("C4 UID FETCH 12 (UID BODY.PEEK[])"),
        Send(b"* 3 FETCH (UID 12 BODY[] {300}\r\nonly part of it"),
        Close,
    ]);
    sim(script, 1 << 20, |c| async move {
        let mut c = open(c).await;
        let e = c.fetch_body(uid(12)).await.unwrap_err();
        assert!(matches!(e, ImapError::Eof { .. }), "{e}");
    });
}

/// imap-next keeps reading a response past the cap (so that the next one
/// starts at a sane point) but stops holding its bytes: memory stays at the
/// cap, and the answer is an error, not a truncated body.
#[test]
fn an_oversized_literal_is_an_error_and_is_not_held() {
    let mut script = opened();
    script.extend([
        Expect("C4 UID FETCH 12 (UID BODY.PEEK[])"),
        Send(b"* 3 FETCH (UID 12 BODY[] {10000000}\r\n"),
        Stream {
            byte: b'x',
            n: 10_000_000,
            chunk: 65536,
            delay_ms: 1,
        },
        Send(b")\r\nC4 OK Fetch completed.\r\n"),
    ]);
    sim(script, 64 * 1024, |c| async move {
        let mut c = open(c).await;
        let e = c.fetch_body(uid(12)).await.unwrap_err();
        assert!(matches!(e, ImapError::TooLarge { max: 65536 }), "{e}");
    });
}

/// `LIST "" "*"` names the folders that can be selected: not a `\Noselect`
/// parent, not a `\NonExistent` one; quoted names come back unquoted.
#[test]
fn the_folders_are_those_that_can_be_selected() {
    let mut script = opened();
    script.extend([
        Expect("C4 LIST \"\" *"),
        Send(b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\Noselect \\HasChildren) \"/\" Lists\r\n"),
        Send(b"* LIST (\\HasNoChildren) \"/\" Lists/rust\r\n* LIST (\\NonExistent) \"/\" Gone\r\n"),
        Send(b"* LIST () \"/\" \"Sent Items\"\r\nC4 OK List completed.\r\n"),
    ]);
    sim(script, 1 << 20, |c| async move {
        let mut c = open(c).await;
        assert_eq!(
            c.folders().await.unwrap(),
            ["INBOX", "Lists/rust", "Sent Items"]
        );
    });
}

/// Each response is capped, but a server could send them without end: an
/// answer holds the bodies its commands asked for and no more. Here a NOOP
/// (no body asked for) gets unsolicited FETCHes of 40 KiB bodies, each
/// under the 64 KiB cap: the second is refused, before the server is done.
#[test]
fn bodies_nobody_asked_for_are_refused_before_they_are_held() {
    let body = format!(
        "* 2 FETCH (UID 11 BODY[] {{40960}}\r\n{})\r\n",
        "x".repeat(40960)
    );
    let body: &'static [u8] = Box::leak(body.into_bytes().into_boxed_slice());
    let mut script = opened();
    script.extend([Expect("C4 NOOP"), Send(body), Send(body)]);
    script.extend(std::iter::repeat_n(Send(body), 100));
    script.push(Send(b"C4 OK NOOP completed.\r\n"));
    sim(script, 64 * 1024, |c| async move {
        let mut c = open(c).await;
        let e = c.noop().await.unwrap_err();
        assert!(
            matches!(&e, ImapError::Protocol(m) if m.contains("81920 octets of message bodies")),
            "{e}"
        );
        assert!(matches!(c.noop().await, Err(ImapError::Broken)));
    });
}

#[test]
fn a_bye_greeting_is_a_refusal_and_silence_a_timeout() {
    sim(
        vec![Send(b"* BYE Too many connections\r\n"), Close],
        1024,
        |c| async move {
            let e = c.unwrap_err();
            assert!(
                matches!(&e, ImapError::Bye(t) if t == "Too many connections"),
                "{e}"
            );
            assert!(e.is_transient());
        },
    );
    sim(vec![Sleep(60_000)], 1024, |c| async move {
        assert!(matches!(c.unwrap_err(), ImapError::Timeout { .. }));
    });
}

#[test]
fn news_during_a_fetch_moves_the_map_and_a_gone_message_is_none() {
    let mut script = opened();
    script.extend([
        Expect("C4 UID FETCH 11 (UID BODY.PEEK[])"),
        // Another client expunged UID 11 and flagged UID 12 meanwhile; the
        // UID FETCH finds nothing (UID FETCH may report expunges).
        Send(b"* 2 EXPUNGE\r\n* 2 FETCH (FLAGS (\\Seen))\r\n* 3 EXISTS\r\nC4 OK Fetch completed.\r\n"),
    ]);
    sim(script, 1 << 20, |c| async move {
        let mut c = open(c).await;
        assert_eq!(c.fetch_body(uid(11)).await.unwrap(), None);
        let f = c.folder().unwrap();
        let listed: Vec<_> = f.listed().map(|m| (m.uid.get(), m.seen)).collect();
        assert_eq!(listed, [(10, true), (12, true)]);
        assert_eq!(f.unlisted(), 1, "the new message is announced, not listed");
    });
}
