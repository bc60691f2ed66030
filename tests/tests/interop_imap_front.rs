//! Real IMAP mail clients at the client proxy's IMAP front, through the
//! whole chain to a real Dovecot, judged on Dovecot itself (its mailbox
//! over a separate IMAP connection, matched by content hash, and its log:
//! every server session ended cleanly).
//!
//! Each client runs with the edge reading Dovecot's POP3 server directly,
//! and with the edge reading Dovecot's IMAP server through the relay
//! (`protocol = "imap"`). See docs/interop.md, "IMAP mail clients".

use std::collections::BTreeSet;

use causeway_tests::interop::chain::{LOCAL_PASSWORD, LOCAL_USER};
use causeway_tests::interop::clients::{
    self, Fetchmail, FetchmailOpts, Getmail, Mbsync, Neomutt, Offlineimap, TwoWaySync,
};
use causeway_tests::interop::dovecot::{Message, USER};
use causeway_tests::interop::{
    self, Backend, Chain, Dovecot, Format, Mailbox, Route, assert_clean_ends, fetchmail_keeps,
    require, settle, settle_unchanged,
};
use causeway_tests::python;

async fn rig(
    route: Route,
    backend: Backend,
    n: usize,
    bytes: usize,
) -> Option<(Dovecot, Chain, Mailbox)> {
    interop::rig(Format::Maildir, route, backend, n, bytes).await
}

/// Waits until Dovecot shows `want` for `msgs` (`Some(seen)` for a message
/// still there, `None` for one gone) and `total` messages in all.
async fn settle_flags(
    dc: &Dovecot,
    chain: &Chain,
    mark: usize,
    msgs: &[Message],
    want: &[Option<bool>],
    total: usize,
    what: &str,
) {
    settle(dc, chain, USER, mark, |mb| {
        let seen: Vec<Option<bool>> = msgs
            .iter()
            .map(|m| mb.get(&m.sha256).map(|x| x.seen()))
            .collect();
        if seen != want || mb.messages.len() != total {
            return Err(format!(
                "{what}: {seen:?} of {} messages",
                mb.messages.len()
            ));
        }
        Ok(())
    })
    .await;
}

/// python imaplib: a peek, a whole non-peek read, a header without PEEK,
/// an expunge, LOGOUT. Only the whole read is marked read on Dovecot.
async fn imaplib(route: Route, backend: Backend) {
    let Some((dc, chain, before)) = rig(route, backend, 4, 3000).await else {
        return;
    };
    let mark = dc.log_mark();
    let script = format!(
        r#"attempt("login", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}")
attempt("select", p.select, "INBOX")
out("peek.digest", digest(attempt("peek", p.uid, "FETCH", "1", "(BODY.PEEK[])")))
out("read.digest", digest(attempt("read", p.fetch, "2", "(BODY[])")))
attempt("header", p.fetch, "3", "(BODY[HEADER])")
attempt("delete", p.store, "4", "+FLAGS", "(\\Deleted)")
attempt("expunge", p.expunge)
attempt("logout", p.logout)
"#
    );
    let out = python::run_imap(&chain.imap, &script).await;
    assert_eq!(out.get("select"), "OK 4");
    let sha = |i: usize| before.messages[i].sha256.clone();
    assert_eq!(
        out.get("peek.digest").split(' ').next(),
        Some(sha(0).as_str())
    );
    assert_eq!(
        out.get("read.digest").split(' ').next(),
        Some(sha(1).as_str())
    );
    assert_eq!(out.get("expunge"), "OK 4");
    let want = [Some(false), Some(true), Some(false), None];
    settle_flags(&dc, &chain, mark, &before.messages, &want, 3, "imaplib").await;
    assert_clean_ends(&dc, mark, "imaplib").await;
}

/// curl `imap://`: LIST, a UID FETCH of one message (byte for byte).
async fn curl(route: Route, backend: Backend) {
    if !require("curl", &["--version"], "curl") {
        return;
    }
    let Some((dc, chain, before)) = rig(route, backend, 3, 3000).await else {
        return;
    };
    let mark = dc.log_mark();
    let list = clients::curl_imap(&chain.imap, "", &[]).await;
    assert_eq!(list.code, 0, "{}", list.text());
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("INBOX"),
        "{}",
        list.text()
    );
    let fetch = clients::curl_imap(&chain.imap, "INBOX;UID=2", &[]).await;
    assert_eq!(fetch.code, 0, "{}", fetch.text());
    assert_eq!(
        causeway_tests::interop::sha256(&fetch.stdout),
        before.messages[1].sha256
    );
    // curl fetches with BODY[] and logs out: a whole read, marked.
    let want = [Some(false), Some(true), Some(false)];
    settle_flags(&dc, &chain, mark, &before.messages, &want, 3, "curl").await;
    assert_clean_ends(&dc, mark, "curl imap").await;
}

/// fetchmail `protocol IMAP`, `keep`: it reads each message as
/// `RFC822.HEADER` and `BODY.PEEK[TEXT]`, then stores `\Seen` itself, so
/// every message ends read and present; then `nokeep fetchall`: it stores
/// `\Seen \Deleted` and expunges, and the mailbox ends empty.
async fn fetchmail(route: Route, backend: Backend) {
    if !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    let Some((dc, chain, before)) = rig(route, backend, 4, 5000).await else {
        return;
    };
    let fm = Fetchmail::new();
    let keep = FetchmailOpts {
        keep: true,
        uidl: false,
        fetchall: false,
        imap: true,
    };
    // It stores \Seen itself after delivery: all present and read.
    let marker = "BODY.PEEK[TEXT]";
    fetchmail_keeps(&dc, &chain, &fm, keep, marker, true, &before).await;

    let mark = dc.log_mark();
    let flush = FetchmailOpts {
        keep: false,
        uidl: false,
        fetchall: true,
        imap: true,
    };
    let r = fm.run(&chain.imap, flush).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(
        fm.delivered().len(),
        8,
        "fetchall fetched all 4 again\n{}",
        r.text()
    );
    settle(&dc, &chain, USER, mark, |mb| {
        if mb.messages.is_empty() {
            Ok(())
        } else {
            Err("fetchmail nokeep: everything expunged expected".into())
        }
    })
    .await;
    assert_clean_ends(&dc, mark, "fetchmail imap").await;
}

/// getmail6 `SimpleIMAPRetriever` with `delete = true`: every message
/// delivered intact, then expunged on Dovecot.
async fn getmail(route: Route, backend: Backend) {
    if !require("getmail", &["--version"], "getmail6") {
        return;
    }
    let Some((dc, chain, before)) = rig(route, backend, 4, 5000).await else {
        return;
    };
    let gm = Getmail::new();
    let mark = dc.log_mark();
    let r = gm.run_imap(&chain.imap, true).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let got: BTreeSet<String> = gm.delivered().into_iter().collect();
    assert_eq!(
        got,
        before.body_digests(),
        "getmail delivered every message intact\n{}",
        r.text()
    );
    settle(&dc, &chain, USER, mark, |mb| {
        if mb.messages.is_empty() {
            Ok(())
        } else {
            Err("getmail delete = true: everything expunged expected".into())
        }
    })
    .await;
    assert_clean_ends(&dc, mark, "getmail imap").await;
}

/// A two-way sync client, three runs. The first copies the INBOX (peeking:
/// nothing is read on Dovecot). Then the user reads one copy and deletes
/// another on this machine, and a message arrives. The second run stores
/// `\Seen` (read on Dovecot), has the deleted one expunged (gone from
/// Dovecot) and copies only the new message; the third finds nothing to do.
/// Each run needs the folder's UIDVALIDITY and UIDs of the last (mbsync
/// refuses to sync a folder whose UIDVALIDITY changed, offlineimap fetches
/// it all again): the proxy keeps them (`causeway_client::uids`).
async fn two_way_sync(client: impl TwoWaySync, name: &str, route: Route, backend: Backend) {
    let Some((dc, chain, before)) = rig(route, backend, 4, 3000).await else {
        return;
    };
    let inbox = client.inbox();
    let mark = dc.log_mark();
    let r = client.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let got: Vec<String> = inbox.delivered();
    assert_eq!(got.len(), 4, "{}", r.text());
    assert_eq!(
        got.into_iter().collect::<BTreeSet<_>>(),
        before.body_digests()
    );
    let msgs = before.messages.clone();
    let want = [Some(false); 4];
    settle_flags(&dc, &chain, mark, &msgs, &want, 4, "after the first sync").await;
    assert_clean_ends(&dc, mark, &format!("{name}, first run")).await;

    assert!(inbox.set_flags(&msgs[1].body_sha256, "S"));
    assert!(inbox.remove(&msgs[2].body_sha256));
    dc.deliver(USER, 1, 3000).await;
    let arrived = dc.mailbox(USER).await;
    let mut want = arrived.body_digests();
    want.remove(&msgs[2].body_sha256);
    let mark = dc.log_mark();
    let r = client.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let got = inbox.delivered();
    assert_eq!(got.len(), 4, "one new copy, one deleted\n{}", r.text());
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    let want = [Some(false), Some(true), None, Some(false)];
    settle_flags(&dc, &chain, mark, &msgs, &want, 4, "after the second sync").await;
    assert_clean_ends(&dc, mark, &format!("{name}, second run")).await;

    let r = client.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(inbox.delivered().len(), 4, "{}", r.text());
}

/// mbsync, `Sync All` and `Expunge Both` (it expunges with `CLOSE`).
async fn mbsync(route: Route, backend: Backend) {
    if require("mbsync", &["--version"], "isync") {
        two_way_sync(Mbsync::new(), "mbsync", route, backend).await;
    }
}

/// offlineimap3, one-shot (it fetches `(FLAGS UID INTERNALDATE)` and
/// expunges with `EXPUNGE`).
async fn offlineimap(route: Route, backend: Backend) {
    if require("offlineimap", &["--version"], "offlineimap3") {
        two_way_sync(Offlineimap::new(), "offlineimap", route, backend).await;
    }
}

/// neomutt (in tmux): it opens INBOX, shows the first message, deletes the
/// third, syncs the folder and quits (without LOGOUT). On Dovecot the shown
/// one is read, the deleted one gone, the others untouched.
async fn neomutt(route: Route, backend: Backend) {
    if !require("neomutt", &["-v"], "neomutt") || !require("tmux", &["-V"], "tmux") {
        return;
    }
    let Some((dc, chain, before)) = rig(route, backend, 4, 3000).await else {
        return;
    };
    let mark = dc.log_mark();
    let keys = "<display-message>q<next-entry><next-entry><delete-message><sync-mailbox><quit>";
    let r = Neomutt::new().run(&chain.imap, keys).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let want = [Some(true), Some(false), None, Some(false)];
    settle_flags(&dc, &chain, mark, &before.messages, &want, 3, "neomutt").await;
    assert_clean_ends(&dc, mark, "neomutt").await;
}

/// python imaplib stays connected while Dovecot changes: another client
/// removes a message and new mail arrives. A NOOP once the proxy's
/// `imap_recheck` (2 s here) has passed reports both (`EXPUNGE`, `EXISTS`)
/// and the new message reads byte for byte under its new UID; then IDLE
/// hears of the next one without being asked. Nothing is read or deleted
/// by the chain meanwhile.
async fn news(route: Route, backend: Backend) {
    let Some((dc, chain, before)) = rig(route, backend, 3, 3000).await else {
        return;
    };
    let mark = dc.log_mark();
    let script = format!(
        r#"import re
attempt("login", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}")
attempt("select", p.select, "INBOX")
pause("changed")
attempt("noop", p.noop)
out("expunged", ",".join(text(x) for x in p.response("EXPUNGE")[1] if x))
out("exists", text(p.response("EXISTS")[1][-1]))
listed = attempt("listed", p.uid, "FETCH", "1:*", "(UID RFC822.SIZE)")
newest = max(int(re.search(rb"UID (\d+)", x).group(1)) for x in listed if x)
out("new.digest", digest(attempt("new", p.uid, "FETCH", str(newest), "(BODY.PEEK[])")))
pause("more")
tag = p._new_tag()
p.send(tag + b" IDLE\r\n")
out("idle", text(p.readline().strip()))
out("pushed", text(p.readline().strip()))
p.send(b"DONE\r\n")
line = p.readline()
while not line.startswith(tag):
    line = p.readline()
out("done", text(line.strip()))
attempt("logout", p.logout)
"#
    );
    let mut py = python::Py::start_imap(&chain.imap, &script);
    assert_eq!(py.expect("select").await, "OK 3");
    py.expect("pause").await;
    dc.remove(USER, before.messages[1].uid).await;
    dc.deliver(USER, 1, 2000).await;
    let new = |mb: &Mailbox, known: &[Message]| {
        mb.messages
            .iter()
            .find(|m| !known.iter().any(|k| k.sha256 == m.sha256))
            .expect("a new message")
            .clone()
    };
    let changed = dc.mailbox(USER).await;
    let arrived = new(&changed, &before.messages);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    py.resume().await;
    assert_eq!(py.expect("expunged").await, "2");
    assert_eq!(py.expect("exists").await, "3");
    let digest = py.expect("new.digest").await;
    assert_eq!(digest.split(' ').next(), Some(arrived.sha256.as_str()));
    py.expect("pause").await;
    dc.deliver(USER, 1, 2000).await;
    py.resume().await;
    assert_eq!(py.expect("idle").await, "+ idling");
    assert_eq!(py.expect("pushed").await, "* 4 EXISTS");
    assert!(py.expect("done").await.ends_with("OK IDLE terminated"));
    let out = py.finish().await;
    assert!(out.get("logout").starts_with("BYE"), "{out:?}");
    let mut all: Vec<Message> = changed.messages.clone();
    all.push(new(&dc.mailbox(USER).await, &changed.messages));
    let want = [Some(false); 4];
    settle_flags(&dc, &chain, mark, &all, &want, 4, "news").await;
    assert_clean_ends(&dc, mark, "news").await;
}

/// python imaplib idles while the line is cut, twice: at once after the
/// IDLE is accepted, and again a second later, while new mail has arrived
/// and the proxy may be listing the folder again (`imap_recheck` is 2 s
/// here). The client keeps idling, hears of the new mail, reads it byte for
/// byte, and logs out; the session behind was resumed, not logged in
/// again; nothing is read or deleted on Dovecot and every server session
/// ended with LOGOUT or QUIT.
async fn idle_through_cuts(route: Route, backend: Backend) {
    let Some((dc, chain, before)) = rig(route, backend, 3, 3000).await else {
        return;
    };
    let mark = dc.log_mark();
    let script = format!(
        r#"attempt("login", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}")
attempt("select", p.select, "INBOX")
tag = p._new_tag()
p.send(tag + b" IDLE\r\n")
out("idle", text(p.readline().strip()))
pause("idling")
line = p.readline()
while b"EXISTS" not in line:
    out("meanwhile", text(line.strip()))
    line = p.readline()
out("pushed", text(line.strip()))
p.send(b"DONE\r\n")
line = p.readline()
while not line.startswith(tag):
    line = p.readline()
out("done", text(line.strip()))
out("new.digest", digest(attempt("new", p.fetch, "4", "(BODY.PEEK[])")))
attempt("logout", p.logout)
"#
    );
    let mut py = python::Py::start_imap(&chain.imap, &script);
    assert_eq!(py.expect("select").await, "OK 3");
    assert_eq!(py.expect("idle").await, "+ idling");
    py.expect("pause").await;
    let links = chain.line.connections();
    chain.line.cut_now();
    dc.deliver(USER, 1, 2000).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    chain.line.cut_now();
    py.resume().await;
    assert_eq!(py.expect("pushed").await, "* 4 EXISTS");
    assert!(py.expect("done").await.ends_with("OK IDLE terminated"));
    let after = dc.mailbox(USER).await;
    let arrived = after
        .messages
        .iter()
        .find(|m| !before.messages.iter().any(|k| k.sha256 == m.sha256))
        .expect("a new message")
        .clone();
    let digest = py.expect("new.digest").await;
    assert_eq!(digest.split(' ').next(), Some(arrived.sha256.as_str()));
    let out = py.finish().await;
    assert!(out.get("logout").starts_with("BYE"), "{out:?}");
    // The cuts were real, and the session behind lived through them: the
    // proxy reached the edge again over new links and resumed it.
    assert!(
        chain.line.connections() > links,
        "no new link after the cuts"
    );
    assert!(chain.resumes().0 >= 1, "{}", chain.output());
    let mut all = before.messages.clone();
    all.push(arrived);
    let want = [Some(false); 4];
    settle_flags(&dc, &chain, mark, &all, &want, 4, "idle through cuts").await;
    assert_clean_ends(&dc, mark, "idle through cuts").await;
}

/// mbsync syncing every folder (`Patterns *`) of a chain with two entries
/// for one Dovecot account, its INBOX and its folder Archive (entry
/// `archive`): the IMAP front shows INBOX and a folder `archive`, each
/// with UIDs of its own. A copy read and a copy deleted in the local
/// `archive` become `\Seen` and an expunge in Dovecot's Archive, and
/// nothing else changes there or in INBOX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_syncs_each_entrys_folder() {
    if !interop::have_dovecot() || !require("mbsync", &["--version"], "isync") {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 5, 3000).await;
    dc.file(USER, "Archive", 3).await;
    let (inbox, archive) = (dc.mailbox(USER).await, dc.folder(USER, "Archive").await);
    let imap = format!("127.0.0.1:{}", dc.imap_port);
    let entries = [("DOVECOT", "INBOX"), ("archive", "Archive")];
    let chain = Chain::start_imap_folders(
        interop::Nodes::from_env(),
        Route::Direct,
        &imap,
        &entries,
        USER,
        causeway_tests::interop::dovecot::PASSWORD,
    )
    .await;
    let mbsync = Mbsync::with_patterns("*");
    let mark = dc.log_mark();
    let r = mbsync.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let local = mbsync.folder("archive");
    let copies = |l: &clients::LocalInbox| l.delivered().into_iter().collect::<BTreeSet<_>>();
    assert_eq!(
        copies(&mbsync.inbox()),
        inbox.body_digests(),
        "{}",
        r.text()
    );
    assert_eq!(copies(&local), archive.body_digests(), "{}", r.text());
    assert_clean_ends(&dc, mark, "mbsync, every folder, first run").await;

    let filed = &archive.messages;
    assert!(local.set_flags(&filed[0].body_sha256, "S"));
    assert!(local.remove(&filed[1].body_sha256));
    let mark = dc.log_mark();
    let r = mbsync.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    settle_unchanged(&dc, &chain, mark, &inbox).await;
    let after = dc.folder(USER, "Archive").await;
    let state: Vec<Option<bool>> = filed
        .iter()
        .map(|m| after.get(&m.sha256).map(|x| x.seen()))
        .collect();
    assert_eq!(
        state,
        [Some(true), None, Some(false)],
        "{after}\n{}",
        r.text()
    );
    assert_clean_ends(&dc, mark, "mbsync, every folder, second run").await;
}

/// mbsync pushes a message written on this machine (`Sync All`): the IMAP
/// front stores it in Dovecot's INBOX through the relay and answers
/// `APPENDUID` with the UID it shows the message at from the next listing,
/// so mbsync keeps track of it. Dovecot has it once; the next run copies
/// nothing back (without APPENDUID mbsync warned "lost track of 1 pushed
/// message(s)" and its next run made a second local copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_pushes_new_local_mail_once() {
    if !require("mbsync", &["--version"], "isync") {
        return;
    }
    let Some((dc, chain, before)) = rig(Route::Relay, Backend::Imap, 2, 3000).await else {
        return;
    };
    let mbsync = Mbsync::new();
    let inbox = mbsync.inbox();
    let r = mbsync.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(inbox.delivered().len(), 2, "{}", r.text());

    let sent = b"From: alice@causeway.test\nTo: bob@causeway.test\nSubject: written here\n\n\
                 Pushed once, kept track of.\n";
    inbox.add("pushed", sent);
    let mut want = before.body_digests();
    want.insert(interop::body_digest(sent));
    let mark = dc.log_mark();
    let r = mbsync.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(!r.text().contains("lost track"), "{}", r.text());
    settle(&dc, &chain, USER, mark, |mb| {
        let have: BTreeSet<String> = mb.messages.iter().map(|m| m.body_sha256.clone()).collect();
        match (have == want, mb.messages.len()) {
            (true, 3) => Ok(()),
            (_, n) => Err(format!("{n} messages in Dovecot's INBOX")),
        }
    })
    .await;
    assert_clean_ends(&dc, mark, "mbsync, pushing").await;

    let r = mbsync.run(&chain.imap).await;
    assert_eq!(r.code, 0, "{}", r.text());
    let copies = inbox.delivered();
    assert_eq!(copies.len(), 3, "no second local copy\n{}", r.text());
    assert_eq!(copies.into_iter().collect::<BTreeSet<_>>(), want);
    assert_eq!(dc.mailbox(USER).await.messages.len(), 3);
}

macro_rules! matrix {
    ($client:ident) => {
        mod $client {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pop3_direct() {
                super::$client(Route::Direct, Backend::Pop3).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn imap_relay() {
                super::$client(Route::Relay, Backend::Imap).await
            }
        }
    };
}

matrix!(imaplib);
matrix!(curl);
matrix!(fetchmail);
matrix!(mbsync);
matrix!(offlineimap);
matrix!(neomutt);
matrix!(getmail);
matrix!(news);
matrix!(idle_through_cuts);
