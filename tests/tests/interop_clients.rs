//! Real mail clients through the whole chain to a real Dovecot, judged on
//! Dovecot itself: its mailbox over a separate IMAP connection (EXAMINE,
//! matched by content hash) and its log (every POP3 session ended by QUIT).
//!
//! Every client runs against Dovecot maildir and Dovecot mbox with
//! `pop3_lock_session = yes`, with the edge reaching Dovecot directly and
//! through the relay; and against Dovecot's IMAP server (`protocol =
//! "imap"`: the edge reads the INBOX over IMAP and serves it as POP3), with
//! the same checks. See docs/interop.md.

use std::collections::BTreeSet;

use causeway_tests::interop::chain::{LOCAL_PASSWORD, LOCAL_USER, SERVER_NAME};
use causeway_tests::interop::clients::{self, Fetchmail, FetchmailOpts, Getmail};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{
    Backend, Chain, Dovecot, Format, Nodes, Route, assert_clean_ends, assert_next_login_at_once,
    fetchmail_keeps, have_dovecot, require, rig, settle, settle_unchanged,
};
use causeway_tests::python;

/// fetchmail fetching everything and deleting it (no `keep`).
const FLUSH: FetchmailOpts = FetchmailOpts {
    keep: false,
    uidl: true,
    fetchall: true,
    imap: false,
};

fn login() -> String {
    format!("p.user(\"{LOCAL_USER}\")\nout(\"pass\", text(p.pass_(\"{LOCAL_PASSWORD}\")))\n")
}

/// python poplib: STAT, LIST, UIDL, RETR of all but the last, TOP of the
/// last, DELE 2, QUIT.
async fn poplib(format: Format, route: Route, backend: Backend) {
    const N: usize = 5;
    let Some((dc, chain, before)) = rig(format, route, backend, N, 3000).await else {
        return;
    };
    let mark = dc.log_mark();
    let script = format!(
        "{}out(\"stat\", \"%d %d\" % p.stat())\n\
         out(\"list\", \",\".join(text(l) for l in p.list()[1]))\n\
         out(\"uidl\", \",\".join(text(l) for l in p.uidl()[1]))\n\
         for n in range(1, {N}):\n    out(\"retr %d\" % n, digest(p.retr(n)[1]))\n\
         out(\"top\", digest(p.top({N}, 0)[1]))\n\
         out(\"dele\", text(p.dele(2)))\n\
         out(\"quit\", text(p.quit()))\n",
        login()
    );
    let out = python::run(&chain.proxy, &script).await;
    let total: usize = before.messages.iter().map(|m| m.size).sum();
    assert_eq!(out.get("stat"), format!("{N} {total}"));
    let list: Vec<String> = before
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}", i + 1, m.size))
        .collect();
    assert_eq!(
        out.get("list"),
        list.join(","),
        "sizes as Dovecot counts them"
    );
    let uidl: Vec<String> = before
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {SERVER_NAME}:{}", i + 1, before.uidl(m)))
        .collect();
    assert_eq!(out.get("uidl"), uidl.join(","), "Dovecot's UIDLs, prefixed");
    for (i, m) in before.messages[..N - 1].iter().enumerate() {
        assert_eq!(
            out.get(&format!("retr {}", i + 1)),
            format!("{} {}", m.sha256, m.size),
            "RETR {} is Dovecot's message byte for byte",
            i + 1
        );
    }
    assert_eq!(out.get("dele"), "+OK Marked to be deleted.");
    assert!(out.get("quit").starts_with("+OK"), "{out:?}");

    let msgs = before.messages.clone();
    settle(&dc, &chain, USER, mark, |mb| {
        if mb.get(&msgs[1].sha256).is_some() {
            return Err("message 2 not deleted".into());
        }
        for (i, m) in msgs.iter().enumerate().filter(|(i, _)| *i != 1) {
            let now = mb.get(&m.sha256).ok_or(format!("message {} lost", i + 1))?;
            // RETR marks read (committed at the edge's QUIT); TOP never does.
            if now.seen() != (i < N - 1) {
                return Err(format!("message {}: flags {:?}", i + 1, now.flags));
            }
        }
        Ok(())
    })
    .await;
    let sessions = assert_clean_ends(&dc, mark, "poplib").await;
    assert!(sessions >= 1);
    assert_next_login_at_once(&dc, USER, "poplib").await;
}

/// curl: LIST, UIDL, RETR 1, TOP 2 0, DELE 3, one connection each.
async fn curl(format: Format, route: Route, backend: Backend) {
    if !require("curl", &["--version"], "curl") {
        return;
    }
    let Some((dc, chain, before)) = rig(format, route, backend, 3, 3000).await else {
        return;
    };
    let mark = dc.log_mark();
    let p = &chain.proxy;
    let list = clients::curl(p, "", &[]).await;
    assert_eq!(list.code, 0, "{}", list.text());
    let want: String = before
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}\r\n", i + 1, m.size))
        .collect();
    assert_eq!(String::from_utf8_lossy(&list.stdout), want);
    let uidl = clients::curl(p, "", &["-X", "UIDL"]).await;
    assert!(
        String::from_utf8_lossy(&uidl.stdout).contains(&format!(
            "2 {SERVER_NAME}:{}",
            before.uidl(&before.messages[1])
        )),
        "{}",
        uidl.text()
    );
    let retr = clients::curl(p, "1", &[]).await;
    assert_eq!(retr.code, 0, "{}", retr.text());
    assert_eq!(
        causeway_tests::interop::sha256(&retr.stdout),
        before.messages[0].sha256,
        "curl's RETR 1 is Dovecot's message byte for byte"
    );
    let top = clients::curl(p, "", &["-X", "TOP 2 0"]).await;
    assert_eq!(top.code, 0, "{}", top.text());
    assert!(String::from_utf8_lossy(&top.stdout).contains("Subject: Interop 2 "));
    let dele = clients::curl(p, "3", &["-X", "DELE", "-I"]).await;
    assert_eq!(dele.code, 0, "{}", dele.text());

    let msgs = before.messages.clone();
    settle(&dc, &chain, USER, mark, |mb| {
        let m1 = mb.get(&msgs[0].sha256).ok_or("message 1 lost")?;
        let m2 = mb.get(&msgs[1].sha256).ok_or("message 2 lost")?;
        if !m1.seen() || m2.seen() {
            return Err(format!("flags 1 {:?} 2 {:?}", m1.flags, m2.flags));
        }
        if mb.get(&msgs[2].sha256).is_some() {
            return Err("message 3 not deleted".into());
        }
        Ok(())
    })
    .await;
    let sessions = assert_clean_ends(&dc, mark, "curl").await;
    assert!(sessions >= 5, "one server session per curl: {sessions}");
    assert_next_login_at_once(&dc, USER, "curl").await;
}

/// fetchmail with `keep` and `uidl` (twice: the second run finds nothing
/// new), again after new mail, then without `keep` (`fetchall`): it
/// fetches everything and the deletes are committed on Dovecot.
///
/// With `keep`, fetchmail reads with `TOP n 99999999`, not RETR, so that
/// the server does not mark the mail read; through the chain it stays
/// unread on Dovecot too.
async fn fetchmail(format: Format, route: Route, backend: Backend) {
    if !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    let Some((dc, chain, before)) = rig(format, route, backend, 4, 5000).await else {
        return;
    };
    let fm = Fetchmail::new();
    let keep = FetchmailOpts {
        keep: true,
        uidl: true,
        fetchall: false,
        imap: false,
    };
    // `keep` reads with TOP: all present and unread.
    let marker = "POP3> TOP 1 99999999";
    fetchmail_keeps(&dc, &chain, &fm, keep, marker, false, &before).await;

    let r = fm.run(&chain.proxy, keep).await;
    assert_eq!(
        r.code,
        1,
        "second run: no new mail (UIDLs remembered)\n{}",
        r.text()
    );
    assert_eq!(fm.delivered().len(), 4);

    dc.deliver(USER, 2, 5000).await;
    let with_new = dc.mailbox(USER).await;
    let r = fm.run(&chain.proxy, keep).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(fm.delivered().len(), 6, "only the 2 new ones\n{}", r.text());

    let mark = dc.log_mark();
    let flush = FLUSH;
    let r = fm.run(&chain.proxy, flush).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let got: BTreeSet<String> = fm.delivered().into_iter().collect();
    assert_eq!(got, with_new.body_digests());
    assert_eq!(fm.delivered().len(), 12, "fetchall fetched all 6 again");
    settle(&dc, &chain, USER, mark, |mb| {
        if mb.messages.is_empty() {
            Ok(())
        } else {
            Err("fetchmail without keep: everything deleted expected".into())
        }
    })
    .await;
    assert_clean_ends(&dc, 0, "fetchmail").await;
    assert_next_login_at_once(&dc, USER, "fetchmail").await;
}

/// getmail6 (read_all = false: UIDL-tracked), keeping mail, then again
/// (nothing new), then with new mail and `delete = true`: getmail then
/// deletes the messages it had already seen too (`not retrieved (seen),
/// deleted`), so the mailbox ends empty.
async fn getmail(format: Format, route: Route, backend: Backend) {
    if !require("getmail", &["--version"], "getmail6") {
        return;
    }
    let Some((dc, chain, before)) = rig(format, route, backend, 4, 5000).await else {
        return;
    };
    let gm = Getmail::new();
    let mark = dc.log_mark();
    let r = gm.run(&chain.proxy, false).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let got: BTreeSet<String> = gm.delivered().into_iter().collect();
    assert_eq!(
        got,
        before.body_digests(),
        "getmail delivered every message intact\n{}",
        r.text()
    );
    let all = before.body_digests();
    settle(&dc, &chain, USER, mark, |mb| {
        if mb.body_digests() != all || mb.messages.iter().any(|m| !m.seen()) {
            return Err("kept: all present and read expected".into());
        }
        Ok(())
    })
    .await;

    let r = gm.run(&chain.proxy, false).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(gm.delivered().len(), 4, "nothing new\n{}", r.text());

    dc.deliver(USER, 2, 5000).await;
    let with_new = dc.mailbox(USER).await;
    let mark = dc.log_mark();
    let r = gm.run(&chain.proxy, true).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(gm.delivered().len(), 6, "the 2 new ones\n{}", r.text());
    let got: BTreeSet<String> = gm.delivered().into_iter().collect();
    assert_eq!(got, with_new.body_digests());
    assert!(
        r.text().contains("not retrieved (seen), deleted"),
        "{}",
        r.text()
    );
    settle(&dc, &chain, USER, mark, |mb| {
        if mb.messages.is_empty() {
            Ok(())
        } else {
            Err("getmail delete = true: everything deleted expected".into())
        }
    })
    .await;
    assert_clean_ends(&dc, 0, "getmail").await;
    assert_next_login_at_once(&dc, USER, "getmail").await;
}

macro_rules! matrix {
    ($client:ident) => {
        mod $client {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn maildir_direct() {
                super::$client(Format::Maildir, Route::Direct, Backend::Pop3).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn maildir_relay() {
                super::$client(Format::Maildir, Route::Relay, Backend::Pop3).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mbox_locked_direct() {
                super::$client(Format::MboxLocked, Route::Direct, Backend::Pop3).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mbox_locked_relay() {
                super::$client(Format::MboxLocked, Route::Relay, Backend::Pop3).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn imap_maildir_direct() {
                super::$client(Format::Maildir, Route::Direct, Backend::Imap).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn imap_maildir_relay() {
                super::$client(Format::Maildir, Route::Relay, Backend::Imap).await
            }
        }
    };
}

matrix!(poplib);
matrix!(curl);
matrix!(fetchmail);
matrix!(getmail);

/// fetchmail (deleting what it fetched) through the relay to an account
/// whose entry names an IMAP folder (`folder = "Archive"`): it gets exactly
/// the folder's messages, the folder ends empty, and INBOX, which holds
/// other mail, ends as it began (none deleted, none marked read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_reads_and_deletes_the_imap_folder_its_entry_names() {
    if !have_dovecot() || !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 5, 4000).await;
    dc.file(USER, "Archive", 3).await;
    let (inbox, archive) = (dc.mailbox(USER).await, dc.folder(USER, "Archive").await);
    assert_eq!((inbox.messages.len(), archive.messages.len()), (2, 3));
    let imap = format!("127.0.0.1:{}", dc.imap_port);
    let chain = Chain::start_imap(
        Nodes::from_env(),
        Route::Relay,
        (&imap, "Archive"),
        USER,
        PASSWORD,
    )
    .await;
    let fm = Fetchmail::new();
    let mark = dc.log_mark();
    let flush = FLUSH;
    let r = fm.run(&chain.proxy, flush).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let got: BTreeSet<String> = fm.delivered().into_iter().collect();
    assert_eq!(
        got,
        archive.body_digests(),
        "the folder's mail, not INBOX's"
    );
    assert_eq!(fm.delivered().len(), 3);
    settle_unchanged(&dc, &chain, mark, &inbox).await;
    let after = dc.folder(USER, "Archive").await;
    assert!(after.messages.is_empty(), "fetchmail deleted all: {after}");
    assert_clean_ends(&dc, mark, "fetchmail, folder Archive").await;
}

/// fetchmail against a client proxy whose edge is out of reach: a connection
/// failure (status 2, SOCKET) every time, never an authentication failure
/// (status 3, which fetchmail counts and, polling as a daemon, reports to
/// the user as "password invalid"). See docs/interop.md, "When the edge or
/// a server cannot be reached".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_against_an_unreachable_edge_sees_a_socket_error_not_a_bad_password() {
    if !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    // The mail server is never contacted: the edge is gone before any login.
    let mut chain = Chain::start(
        Nodes::Processes,
        Route::Direct,
        "127.0.0.1:9",
        USER,
        PASSWORD,
    )
    .await;
    chain.kill_edge().await;
    let fm = Fetchmail::new();
    let keep = FetchmailOpts {
        keep: true,
        uidl: true,
        fetchall: false,
        imap: false,
    };
    for attempt in 1..=3 {
        let r = fm.run(&chain.proxy, keep).await;
        let text = r.text();
        assert_eq!(r.code, 2, "attempt {attempt}: SOCKET expected\n{text}");
        assert!(
            !text.contains("Authorization failure") && !text.contains("AUTHFAIL"),
            "attempt {attempt}: fetchmail took it for a bad password\n{text}"
        );
        assert!(!text.contains("PASS"), "no password was asked for\n{text}");
    }
}
