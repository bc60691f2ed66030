//! The session state machine, driven command by command without sockets.

use super::*;
use causeway_pop3::ServerCodec;

const PEER: &str = "10.0.0.9:40000";

fn store() -> MailStore {
    let s = MailStore::new();
    s.add_user("alice", "secret");
    s
}

fn core(store: &MailStore, config: ServerConfig) -> SessionCore {
    SessionCore::new(store.clone(), Arc::new(config), PEER.parse().unwrap(), 0)
}

/// Feeds `line` (without CRLF) and returns the reply as text.
fn say(c: &mut SessionCore, line: &str) -> String {
    let mut codec = ServerCodec::new();
    codec.feed(format!("{line}\r\n").as_bytes());
    let input = codec.next_command().expect("one command");
    String::from_utf8(c.handle(input, 1_000).bytes).unwrap()
}

fn logged_in(store: &MailStore, config: ServerConfig) -> SessionCore {
    let mut c = core(store, config);
    assert_eq!(say(&mut c, "USER alice"), "+OK\r\n");
    assert_eq!(say(&mut c, "PASS secret"), "+OK Logged in.\r\n");
    c
}

#[test]
fn dovecot_texts_for_the_usual_mistakes() {
    let s = store();
    s.deliver("alice", "Subject: a\r\n\r\nbody\r\n").unwrap();
    let mut c = core(&s, ServerConfig::default());
    assert!(String::from_utf8(c.greeting()).unwrap().starts_with("+OK "));
    assert_eq!(say(&mut c, "STAT"), "-ERR Unknown command.\r\n");
    assert_eq!(say(&mut c, "PASS x"), "-ERR No username given.\r\n");
    say(&mut c, "USER alice");
    assert_eq!(
        say(&mut c, "PASS wrong"),
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    say(&mut c, "USER mallory");
    assert_eq!(
        say(&mut c, "PASS secret"),
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    say(&mut c, "USER alice");
    assert_eq!(say(&mut c, "PASS secret"), "+OK Logged in.\r\n");
    assert_eq!(say(&mut c, "USER alice"), "-ERR Unknown command: USER\r\n");
    assert_eq!(say(&mut c, "RETR 99"), "-ERR There's no message 99.\r\n");
    assert_eq!(say(&mut c, "RETR 0"), "-ERR There's no message 0.\r\n");
    assert_eq!(say(&mut c, "XYZZY"), "-ERR Unknown command: XYZZY\r\n");
    assert_eq!(say(&mut c, "DELE 1"), "+OK Marked to be deleted.\r\n");
    assert_eq!(say(&mut c, "DELE 1"), "-ERR Message is deleted.\r\n");
    assert_eq!(say(&mut c, "RETR 1"), "-ERR Message is deleted.\r\n");
    assert_eq!(say(&mut c, "LIST 1"), "-ERR Message is deleted.\r\n");
    assert_eq!(say(&mut c, "STAT"), "+OK 0 0\r\n");
    assert_eq!(say(&mut c, "RSET"), "+OK\r\n");
    assert_eq!(say(&mut c, "STAT"), "+OK 1 20\r\n");
    assert_eq!(say(&mut c, "QUIT"), "+OK Logging out.\r\n");
    assert!(c.is_ended());
}

#[test]
fn capa_lists_what_we_do_and_no_stls() {
    let s = store();
    let mut c = core(&s, ServerConfig::default());
    assert_eq!(
        say(&mut c, "CAPA"),
        "+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nUSER\r\n.\r\n"
    );
    assert_eq!(say(&mut c, "STLS"), "-ERR TLS support isn't enabled.\r\n");
}

#[test]
fn listings_retr_and_top() {
    let s = store();
    let u1 = s
        .deliver("alice", "Subject: one\r\n\r\nl1\r\n.dot\r\nl3\r\n")
        .unwrap();
    let u2 = s.deliver("alice", "Subject: two\r\n\r\nx\r\n").unwrap();
    let mut c = logged_in(&s, ServerConfig::default());
    assert_eq!(
        say(&mut c, "LIST"),
        "+OK 2 messages:\r\n1 30\r\n2 19\r\n.\r\n"
    );
    assert_eq!(say(&mut c, "LIST 2"), "+OK 2 19\r\n");
    assert_eq!(
        say(&mut c, "UIDL"),
        format!("+OK\r\n1 {u1}\r\n2 {u2}\r\n.\r\n")
    );
    assert_eq!(say(&mut c, "UIDL 2"), format!("+OK 2 {u2}\r\n"));
    assert_eq!(
        say(&mut c, "RETR 1"),
        "+OK 30 octets\r\nSubject: one\r\n\r\nl1\r\n..dot\r\nl3\r\n.\r\n"
    );
    assert_eq!(say(&mut c, "TOP 1 0"), "+OK\r\nSubject: one\r\n\r\n.\r\n");
    assert_eq!(
        say(&mut c, "TOP 1 2"),
        "+OK\r\nSubject: one\r\n\r\nl1\r\n..dot\r\n.\r\n"
    );
    assert_eq!(
        say(&mut c, "TOP 1 99"),
        "+OK\r\nSubject: one\r\n\r\nl1\r\n..dot\r\nl3\r\n.\r\n"
    );
}

#[test]
fn top_ends_the_header_at_its_first_empty_line() {
    let m = b"Subject: a\r\n\r\none\r\n\r\ntwo\r\nthree";
    assert_eq!(top(m, 0), b"Subject: a\r\n\r\n");
    assert_eq!(top(m, 2), b"Subject: a\r\n\r\none\r\n\r\n");
    // The last line has no CRLF: it is a line all the same.
    assert_eq!(top(m, 4), m);
    assert_eq!(top(m, 99), m);
    // No header at all: the message opens with its blank line, and its
    // first paragraph is body (the first CRLF CRLF is not the header's end).
    let headerless = b"\r\nbody one\r\nbody two\r\n\r\nmore\r\n";
    assert_eq!(top(headerless, 0), b"\r\n");
    assert_eq!(top(headerless, 1), b"\r\nbody one\r\n");
    // No blank line: all header.
    assert_eq!(top(b"A: b\r\nC: d\r\n", 0), b"A: b\r\nC: d\r\n");
    assert_eq!(top(b"", 3), b"");
}

#[test]
fn retr_marks_seen_top_does_not_and_only_quit_commits() {
    let s = store();
    let u1 = s.deliver("alice", "a\r\n").unwrap();
    let u2 = s.deliver("alice", "b\r\n").unwrap();
    let mut c = logged_in(&s, ServerConfig::default());
    say(&mut c, "RETR 1");
    say(&mut c, "TOP 2 0");
    say(&mut c, "DELE 2");
    assert!(!s.is_seen("alice", u1.as_str()), "seen before QUIT");
    assert!(s.is_present("alice", u2.as_str()), "deleted before QUIT");
    assert_eq!(
        say(&mut c, "QUIT"),
        "+OK Logging out, messages deleted.\r\n"
    );
    let id = c.id();
    assert_eq!(s.message("alice", u1.as_str()).unwrap().seen_by, Some(id));
    assert!(!s.is_seen("alice", u2.as_str()));
    assert_eq!(
        s.message("alice", u2.as_str()).unwrap().deleted_by,
        Some(id)
    );
    let rec = s.session(id).unwrap();
    assert_eq!(rec.end_kind(), Some(EndKind::Quit));
    assert_eq!(rec.user.as_deref(), Some("alice"));
}

#[test]
fn a_refused_quit_commits_nothing_and_releases_the_lock() {
    let s = store();
    let u1 = s.deliver("alice", "a\r\n").unwrap();
    let config = ServerConfig {
        lock: LockPolicy::Exclusive {
            stale_after_abrupt: Duration::from_secs(600),
        },
        ..ServerConfig::default()
    };
    let mut c = logged_in(&s, config);
    say(&mut c, "RETR 1");
    say(&mut c, "DELE 1");
    assert!(c.is_update(&Ok(Command::Quit)));
    let r = c.refuse_quit(1_000);
    assert!(r.close);
    assert_eq!(r.bytes, b"-ERR Some deleted messages not removed.\r\n");
    assert!(s.is_present("alice", u1.as_str()), "nothing deleted");
    assert!(!s.is_seen("alice", u1.as_str()), "nothing marked");
    assert!(s.locks_held(1_000).is_empty(), "the lock is released");
    let rec = s.session(c.id()).unwrap();
    assert_eq!(rec.end_kind(), Some(EndKind::Quit));
    assert_eq!(rec.faults, vec![InjectedFault::QuitRefused]);
    assert!(!c.is_update(&Ok(Command::Quit)), "the session is over");
}

#[test]
fn rset_undoes_deletions_and_seen_marks() {
    let s = store();
    let u1 = s.deliver("alice", "a\r\n").unwrap();
    let u2 = s.deliver("alice", "b\r\n").unwrap();
    let mut c = logged_in(&s, ServerConfig::default());
    say(&mut c, "RETR 1");
    say(&mut c, "DELE 2");
    say(&mut c, "RSET");
    say(&mut c, "RETR 2");
    say(&mut c, "QUIT");
    assert!(!s.is_seen("alice", u1.as_str()));
    assert!(s.is_seen("alice", u2.as_str()));
    assert!(s.is_present("alice", u2.as_str()));
}

#[test]
fn abrupt_end_commits_no_deletion_and_seen_only_if_configured() {
    for seen_on_abrupt_close in [false, true] {
        let s = store();
        let u = s.deliver("alice", "a\r\n").unwrap();
        let config = ServerConfig {
            seen_on_abrupt_close,
            ..ServerConfig::default()
        };
        let mut c = logged_in(&s, config);
        say(&mut c, "RETR 1");
        say(&mut c, "DELE 1");
        c.end(EndKind::Abrupt, 2_000);
        assert!(s.is_present("alice", u.as_str()));
        assert_eq!(s.is_seen("alice", u.as_str()), seen_on_abrupt_close);
    }
}

#[test]
fn a_session_is_a_snapshot() {
    let s = store();
    s.deliver("alice", "a\r\n").unwrap();
    let mut c = logged_in(&s, ServerConfig::default());
    let late = s.deliver("alice", "late\r\n").unwrap();
    assert_eq!(say(&mut c, "STAT"), "+OK 1 3\r\n");
    assert_eq!(say(&mut c, "RETR 2"), "-ERR There's no message 2.\r\n");
    say(&mut c, "QUIT");
    let mut c = logged_in(&s, ServerConfig::default());
    assert_eq!(say(&mut c, "UIDL 2"), format!("+OK 2 {late}\r\n"));
}

#[test]
fn exclusive_lock_refuses_a_second_session_and_quit_releases() {
    let s = store();
    let config = ServerConfig {
        lock: LockPolicy::Exclusive {
            stale_after_abrupt: Duration::from_secs(600),
        },
        ..ServerConfig::default()
    };
    let mut a = logged_in(&s, config.clone());
    let mut b = core(&s, config.clone());
    say(&mut b, "USER alice");
    assert_eq!(
        say(&mut b, "PASS secret"),
        "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    );
    say(&mut a, "QUIT");
    assert!(s.locks_held(1_000).is_empty());
    say(&mut b, "USER alice");
    assert_eq!(say(&mut b, "PASS secret"), "+OK Logged in.\r\n");
    // Dropped without QUIT: the lock goes stale for ten minutes.
    b.end(EndKind::Abrupt, 5_000);
    let held = s.locks_held(5_000);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].stale_until_ms, Some(605_000));
    assert!(s.locks_held(605_000).is_empty());
}

#[test]
fn dropping_a_live_core_is_a_server_shutdown() {
    let s = store();
    let c = logged_in(&s, ServerConfig::default());
    let id = c.id();
    assert_eq!(s.live_sessions().len(), 1);
    drop(c);
    assert_eq!(
        s.session(id).unwrap().end_kind(),
        Some(EndKind::ServerShutdown)
    );
    assert!(s.live_sessions().is_empty());
}

#[test]
fn passwords_never_reach_the_log_and_long_lines_hang_up() {
    let s = store();
    let mut c = core(&s, ServerConfig::default());
    say(&mut c, "USER alice");
    say(&mut c, "PASS hunter2-secret");
    say(&mut c, "APOP alice 0123456789abcdef");
    let mut codec = ServerCodec::new();
    codec.feed(&[b'X'; 3000]);
    codec.feed(b"\r\n");
    let r = c.handle(codec.next_command().unwrap(), 1);
    assert_eq!(r.bytes, b"-ERR Input line too long.\r\n");
    assert!(r.close);
    let rec = s.session(c.id()).unwrap();
    assert_eq!(rec.end_kind(), Some(EndKind::Abrupt));
    let log = rec.commands.join("\n");
    assert!(!log.contains("hunter2"), "{log}");
    assert!(!log.contains("0123456789abcdef"), "{log}");
    assert!(log.contains("PASS <redacted>"), "{log}");
    assert!(!s.report().contains("hunter2"));
}

#[test]
fn command_log_is_bounded() {
    let s = store();
    let mut c = logged_in(&s, ServerConfig::default());
    for _ in 0..crate::COMMAND_LOG_LIMIT + 10 {
        say(&mut c, "NOOP");
    }
    let rec = s.session(c.id()).unwrap();
    assert_eq!(rec.commands.len(), crate::COMMAND_LOG_LIMIT);
    assert_eq!(rec.commands_dropped, 12);
}

#[test]
fn oversized_messages_are_refused_not_sent() {
    let s = store();
    s.deliver("alice", vec![b'x'; 100]).unwrap();
    let config = ServerConfig {
        max_message: 50,
        ..ServerConfig::default()
    };
    let mut c = logged_in(&s, config);
    assert!(say(&mut c, "RETR 1").starts_with("-ERR [SYS/PERM] "));
}
