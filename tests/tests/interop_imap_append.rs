//! APPEND through the whole chain to a real Dovecot: python `imaplib`
//! stores its sent mail in the folder of an entry that reads Dovecot's
//! `Sent`, once with nothing in the way and once with the line cut while
//! the message goes up. Judged on Dovecot: each message there exactly
//! once, byte for byte, with the flags it was stored with; INBOX
//! untouched; every server session ended with LOGOUT. Each `OK` names the
//! UID the front gave the message (`APPENDUID`), and the folder shows it
//! there once listed again, as a client that pushes mail (mbsync) expects.
//! See docs/interop.md, "IMAP mail clients".

use causeway_tests::interop::chain::{LOCAL_PASSWORD, LOCAL_USER};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{self, Chain, Dovecot, Format, Route, assert_clean_ends, settle};
use causeway_tests::{Dir, python};

/// The big message's size: about 60 pieces up the line.
const BIG: usize = 1 << 20;

async fn append_through_a_cut(route: Route) {
    if !interop::have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 3, 2000).await;
    // Dovecot's Sent, with one message already in it.
    dc.file(USER, "Sent", 1).await;
    let (inbox, sent) = (dc.mailbox(USER).await, dc.folder(USER, "Sent").await);
    let imap = format!("127.0.0.1:{}", dc.imap_port);
    let entries = [("DOVECOT", "INBOX"), ("Sent", "Sent")];
    let chain = Chain::start_imap_folders(
        interop::Nodes::from_env(),
        route,
        &imap,
        &entries,
        USER,
        PASSWORD,
    )
    .await;
    let mark = dc.log_mark();
    let script = format!(
        r#"import random, re, time
rng = random.Random(11)
alphabet = bytes(b for b in range(1, 256) if b not in (10, 13))
def message(subject, size):
    lines = [b"From: me@causeway.test", b"To: you@causeway.test", b"Subject: " + subject, b""]
    while sum(len(l) + 2 for l in lines) < size:
        lines.append(bytes(rng.choice(alphabet) for _ in range(76)))
    return b"".join(l + b"\r\n" for l in lines)
small, big = message(b"small", 3000), message(b"big", {BIG})
out("small.sha", hashlib.sha256(small).hexdigest())
out("big.sha", hashlib.sha256(big).hexdigest())
attempt("login", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}")
def uid(data):
    return re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
small_uid = uid(attempt("small", p.append, "Sent", "(\\Seen)", None, small))
pause("before the big one")
big_uid = uid(attempt("big", p.append, "Sent", None, None, big))
# Past the rig's imap_recheck (2 s): the next SELECT lists Sent again.
time.sleep(3)
attempt("select", p.select, "Sent")
out("small.at", digest(attempt("small.fetch", p.uid, "FETCH", small_uid, "(BODY.PEEK[])")))
out("big.at", digest(attempt("big.fetch", p.uid, "FETCH", big_uid, "(BODY.PEEK[])")))
attempt("logout", p.logout)
"#
    );
    let mut py = python::Py::start_imap(&chain.imap, &script);
    assert!(py.expect("small").await.starts_with("OK [APPENDUID "));
    py.expect("pause").await;
    let (links, up) = (chain.line.connections(), chain.line.bytes(Dir::Up));
    chain.line.cut_after(Dir::Up, BIG as u64 / 3);
    py.resume().await;
    let out = py.finish().await;
    assert!(out.get("big").starts_with("OK [APPENDUID "), "{out:?}");
    // At the UIDs APPENDUID gave, byte for byte.
    let (small_sha, big_sha) = (out.get("small.sha"), out.get("big.sha"));
    assert!(out.get("small.at").starts_with(small_sha), "{out:?}");
    assert!(out.get("big.at").starts_with(big_sha), "{out:?}");
    assert!(out.get("logout").starts_with("BYE"), "{out:?}");
    // The cut was real, the session behind lived through it, and the
    // message crossed the line about once.
    assert!(
        chain.line.connections() > links,
        "no new link after the cut"
    );
    assert!(chain.resumes().0 >= 1, "{}", chain.output());
    let sent_up = chain.line.bytes(Dir::Up) - up;
    assert!(
        sent_up < BIG as u64 * 6 / 5,
        "{sent_up} bytes went up for a message of {BIG}"
    );
    settle(&dc, &chain, USER, mark, |mb| {
        match mb.messages == inbox.messages {
            true => Ok(()),
            false => Err("INBOX changed".into()),
        }
    })
    .await;
    let after = dc.folder(USER, "Sent").await;
    let copies = |sha: &str| after.messages.iter().filter(|m| m.sha256 == sha).count();
    assert_eq!((copies(small_sha), copies(big_sha)), (1, 1), "{after}");
    assert_eq!(after.messages.len(), sent.messages.len() + 2, "{after}");
    assert!(after.get(small_sha).is_some_and(|m| m.seen()), "{after}");
    assert!(after.get(big_sha).is_some_and(|m| !m.seen()), "{after}");
    assert_clean_ends(&dc, mark, "APPEND through a cut").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_through_a_cut_direct() {
    append_through_a_cut(Route::Direct).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_through_a_cut_via_relay() {
    append_through_a_cut(Route::Relay).await
}
