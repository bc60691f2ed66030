//! Interop harness: the chain against software we did not write. A
//! throw-away Dovecot per test (the project's own scripts in
//! `tests/dovecot/`), our nodes in between (the real `causeway` binary, or
//! in-process), real mail clients in front (python `poplib`, `curl`,
//! `fetchmail`, `getmail6`), and Dovecot's own view (a separate IMAP
//! connection with EXAMINE, and Dovecot's log) as the judge.
//!
//! Missing software: a developer's machine gets a message saying what to
//! install and the test skips; under CI (`CI=true`) it is a failure.

pub mod chain;
pub mod clients;
pub mod dovecot;

use std::path::PathBuf;
use std::process::Stdio;

pub use chain::{Chain, Nodes, Route};
pub use dovecot::{Dovecot, Format, MailSession, Mailbox, Message};

/// Which of Dovecot's servers the edge (or the relay) reads: its POP3
/// server, or its IMAP server's INBOX, served as a POP3 maildrop
/// (`protocol = "imap"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Pop3,
    Imap,
}

/// A fresh Dovecot in `format` with `n` messages of about `bytes` octets
/// for alice, the chain in front reading it through `backend`, and the
/// mailbox as delivered. None (skip) when software is missing.
pub async fn rig(
    format: Format,
    route: Route,
    backend: Backend,
    n: usize,
    bytes: usize,
) -> Option<(Dovecot, Chain, Mailbox)> {
    if !have_dovecot() {
        return None;
    }
    let dc = Dovecot::start(format).await;
    dc.deliver(dovecot::USER, n, bytes).await;
    let before = dc.mailbox(dovecot::USER).await;
    assert_eq!(before.messages.len(), n, "{before}");
    let (user, password) = (dovecot::USER, dovecot::PASSWORD);
    let chain = match backend {
        Backend::Pop3 => {
            Chain::start(Nodes::from_env(), route, &dc.pop3_addr(), user, password).await
        }
        Backend::Imap => {
            let imap = format!("127.0.0.1:{}", dc.imap_port);
            Chain::start_imap(Nodes::from_env(), route, (&imap, "INBOX"), user, password).await
        }
    };
    Some((dc, chain, before))
}

/// What the whole interop suite needs, as Debian packages.
pub const APT_PACKAGES: &str = "dovecot-core dovecot-pop3d dovecot-imapd fetchmail getmail6 isync offlineimap3 neomutt tmux curl python3 openssh-client openssh-server";

/// True if `program args` runs successfully. If not: panics under CI
/// (`CI=true`); otherwise prints what to install and returns false, and
/// the caller skips.
pub fn require(program: &str, args: &[&str], package: &str) -> bool {
    let ok = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!(
            "the interop tests and the bench need `{program}`: install it with \
             `apt-get install -y {package}` (all of them: `apt-get install -y {APT_PACKAGES}`)"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg} (CI=true: missing software is a failure)");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

/// Dovecot (with its POP3 and IMAP servers) and python3, which the rig's
/// scripts and the IMAP judge need.
pub fn have_dovecot() -> bool {
    let dovecot = std::env::var("DOVECOT_BIN").unwrap_or_else(|_| "/usr/sbin/dovecot".into());
    require(
        "python3",
        &["-c", "import imaplib, poplib, hashlib"],
        "python3",
    ) && require(&dovecot, &["--version"], "dovecot-core")
        && require("test", &["-x", "/usr/lib/dovecot/pop3"], "dovecot-pop3d")
        && require("test", &["-x", "/usr/lib/dovecot/imap"], "dovecot-imapd")
}

/// `tests/dovecot/`, where the rig's scripts are.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dovecot")
}

pub use causeway::chain::TempDir;

/// A fresh directory for one test's files (see [`TempDir`]; kept with
/// `CAUSEWAY_KEEP_DIRS=1`).
pub fn temp_dir(tag: &str) -> TempDir {
    use causeway_net::Env;
    TempDir::new(causeway_net::TokioEnv::new().rng(), tag).expect("create a temporary directory")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Lowercase hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// The hash a delivered copy is matched by: the body (after the first
/// blank line), with CRLF turned into LF and trailing line ends dropped, so
/// that a client adding headers or changing line ends still matches.
pub fn body_digest(message: &[u8]) -> String {
    let text: Vec<u8> = {
        let mut v = Vec::with_capacity(message.len());
        let mut i = 0;
        while i < message.len() {
            if message[i] == b'\r' && message.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            v.push(message[i]);
            i += 1;
        }
        v
    };
    let body = match text.windows(2).position(|w| w == b"\n\n") {
        Some(p) => &text[p + 2..],
        None => &text[..],
    };
    let mut end = body.len();
    while end > 0 && body[end - 1] == b'\n' {
        end -= 1;
    }
    sha256(&body[..end])
}

/// How long [`settle`] waits for Dovecot to reach the expected state.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until every POP3 and IMAP session that logged in to Dovecot after `mark`
/// has ended, the in-process nodes (if any) are quiet, and `check` accepts
/// the user's mailbox as Dovecot holds it; then checks once more a moment
/// later (nothing may change after that). Returns the mailbox; panics with
/// the last complaint, the sessions and the nodes' output after [`SETTLE`].
/// [`settle`] until INBOX holds `before`'s messages, unchanged: for a
/// test whose work was in another folder.
pub async fn settle_unchanged(dc: &Dovecot, chain: &Chain, mark: usize, before: &Mailbox) {
    settle(dc, chain, dovecot::USER, mark, |mb| {
        if mb.messages == before.messages {
            Ok(())
        } else {
            Err(format!("INBOX changed; it was:\n{before}"))
        }
    })
    .await;
}

pub async fn settle(
    dc: &Dovecot,
    chain: &Chain,
    user: &str,
    mark: usize,
    check: impl Fn(&Mailbox) -> Result<(), String>,
) -> Mailbox {
    let deadline = std::time::Instant::now() + SETTLE;
    let mut complaint = String::new();
    let mut stable = 0;
    loop {
        let open: Vec<_> = dc
            .sessions(mark)
            .into_iter()
            .filter(|s| s.end.is_none())
            .collect();
        if !open.is_empty() {
            complaint = format!("mail sessions still open on Dovecot: {open:?}");
            stable = 0;
        } else if !chain.quiet() {
            complaint = "the in-process nodes are still busy".into();
            stable = 0;
        } else {
            // (Only now: with mbox an open session's read lock would make
            // EXAMINE wait.)
            let mb = dc.mailbox(user).await;
            match check(&mb) {
                Ok(()) if stable == 1 => return mb,
                Ok(()) => stable += 1,
                Err(e) => {
                    complaint = format!("{e}\nDovecot holds:\n{mb}");
                    stable = 0;
                }
            }
        }
        if std::time::Instant::now() > deadline {
            let log = dc.log();
            let pop3: Vec<&str> = log
                .get(mark..)
                .unwrap_or("")
                .lines()
                .filter(|l| l.contains("pop3") || l.contains("imap"))
                .collect();
            panic!(
                "not settled after {SETTLE:?}: {complaint}\nsessions: {:#?}\n\
                 Dovecot's log (pop3 and imap lines):\n{}\nnodes:\n{}",
                dc.sessions(mark),
                pop3.join("\n"),
                chain.output()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every POP3 and IMAP session that logged in to Dovecot after `mark`
/// ended with `Disconnected: Logged out` (QUIT, LOGOUT), none with
/// `Connection closed` or anything else. Returns how many there were.
/// A session may still be ending (the judge's last read races its log
/// line): one open for 5 s more is a leak.
pub async fn assert_clean_ends(dc: &Dovecot, mark: usize, what: &str) -> usize {
    let mut sessions = dc.sessions(mark);
    for _ in 0..50 {
        if sessions.iter().all(|s| s.end.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        sessions = dc.sessions(mark);
    }
    for s in &sessions {
        assert_eq!(
            s.end.as_deref(),
            Some("Logged out"),
            "{what}: a Dovecot session did not end with QUIT or LOGOUT: {s:?}\nall: {sessions:#?}"
        );
    }
    sessions.len()
}

/// A new POP3 session of `user` logs in to Dovecot at once (a leaked
/// session would hold mbox's `pop3_lock_session` lock: ~10 s, `[IN-USE]`).
pub async fn assert_next_login_at_once(dc: &Dovecot, user: &str, what: &str) {
    match dc.probe_login(user).await {
        Ok(t) => assert!(
            t < std::time::Duration::from_secs(3),
            "{what}: the next login took {t:?}"
        ),
        Err(e) => panic!("{what}: the next login failed {e}"),
    }
}

/// One fetchmail run with `keep` through `chain` (at its POP3 or IMAP
/// front, as `opts` says): its log shows `marker`, every message of `before`
/// is delivered intact, and Dovecot ends with all of them present, each
/// read if `read`, and every session ended cleanly.
pub async fn fetchmail_keeps(
    dc: &Dovecot,
    chain: &Chain,
    fm: &clients::Fetchmail,
    opts: clients::FetchmailOpts,
    marker: &str,
    read: bool,
    before: &Mailbox,
) {
    let mark = dc.log_mark();
    let address = if opts.imap { &chain.imap } else { &chain.proxy };
    let r = fm.run(address, opts).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.text().contains(marker), "{}", r.text());
    let got: std::collections::BTreeSet<String> = fm.delivered().into_iter().collect();
    assert_eq!(
        got,
        before.body_digests(),
        "fetchmail delivered every message intact"
    );
    let all = before.body_digests();
    settle(dc, chain, dovecot::USER, mark, |mb| {
        if mb.body_digests() != all || mb.messages.iter().any(|m| m.seen() != read) {
            return Err(format!("keep: all present and read = {read} expected"));
        }
        Ok(())
    })
    .await;
    assert_clean_ends(dc, mark, "fetchmail keep").await;
}
