//! APPEND through the whole chain (python `imaplib` at the client proxy's
//! IMAP front, the line forwarder, the edge, a model IMAP server), judged
//! on the model server's own record: a message a mail client stores (its
//! sent mail) is on the server of the folder it named, byte for byte, with
//! its flags, exactly once, even when the line is cut while it goes up;
//! a folder no IMAP server keeps refuses it with the code clients act on.

use causeway_tests::rig::{Rig, RigSpec, USER};
use causeway_tests::{Dir, python};

/// Python that builds `msg`: a message of about `size` octets whose body
/// is random 8-bit text (no NUL, CR or LF inside a line; zstd cannot
/// shrink it), in CRLF lines, the same for every run. Prints its
/// `sha256 size` as `msg.digest`.
fn message_script(size: usize) -> String {
    format!(
        r#"import random
rng = random.Random(7)
alphabet = bytes(b for b in range(1, 256) if b not in (10, 13))
lines = [b"From: me@causeway.test", b"To: you@causeway.test", b"Subject: sent mail", b""]
while sum(len(l) + 2 for l in lines) < {size}:
    lines.append(bytes(rng.choice(alphabet) for _ in range(76)))
msg = b"".join(l + b"\r\n" for l in lines)
out("msg.digest", "%s %d" % (hashlib.sha256(msg).hexdigest(), len(msg)))
"#
    )
}

/// The server's copies of the message with this `sha256 size` digest in
/// `maildrop`, and whether each is `\Seen`.
fn copies(rig: &Rig, maildrop: &str, digest: &str) -> Vec<bool> {
    let host = rig.host("Sent");
    host.store
        .messages(maildrop)
        .into_iter()
        .filter(|m| format!("{} {}", m.sha256, m.size) == digest && m.deleted_by.is_none())
        .inspect(|m| assert!(m.appended_by.is_some(), "delivered, not appended: {m:?}"))
        .map(|m| m.seen_by.is_some())
        .collect()
}

/// HOST1 (POP3) is the INBOX; the entry `Sent` reads the folder Sent of
/// an IMAP server. `None` without python.
async fn rig() -> Option<Rig> {
    if !python::available().await {
        return None;
    }
    let spec = RigSpec {
        folders: vec![("Sent", "Sent")],
        ..RigSpec::default()
    };
    Some(Rig::start(spec).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appended_message_is_stored_once_on_the_server_of_its_folder() {
    let Some(rig) = rig().await else {
        return;
    };
    let script = format!(
        r#"{}{}attempt("caps", p.capability)
attempt("sent", p.append, "Sent", "(\\Seen)", None, msg)
attempt("inbox", p.append, "INBOX", None, None, msg)
attempt("trash", p.append, "Trash", None, None, msg)
attempt("drafts", p.append, "Drafts", None, None, msg)
attempt("logout", p.logout)
"#,
        python::imap_login_select("INBOX"),
        message_script(20_000),
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert!(out.get("caps").contains("APPENDLIMIT=33554432"), "{out:?}");
    // `OK [APPENDUID validity uid]`: where the message will be (RFC 4315).
    let sent = out.get("sent");
    let given: Vec<&str> = sent
        .strip_prefix("OK [APPENDUID ")
        .and_then(|s| s.split(']').next())
        .map(|s| s.split(' ').collect())
        .unwrap_or_default();
    let [validity, uid] = given[..] else {
        panic!("no APPENDUID: {out:?}");
    };
    // POP3 cannot keep it, Trash is the proxy's own: the folder exists but
    // cannot; a folder that does not exist says so, as RFC 3501 asks.
    assert!(out.get("inbox.err").contains("[CANNOT]"), "{out:?}");
    assert!(out.get("trash.err").contains("[CANNOT]"), "{out:?}");
    assert!(out.get("drafts.err").contains("[TRYCREATE]"), "{out:?}");
    rig.settle().await;
    let digest = out.get("msg.digest");
    let maildrop = &rig.host("Sent").maildrop;
    assert_eq!(copies(&rig, maildrop, digest), [true], "{}", rig.report());
    assert!(rig.host("HOST1").store.messages(USER).is_empty());

    // The next session lists it in the folder at that UID, byte for byte,
    // `\Seen` as it was stored.
    let again = format!(
        r#"{}out("validity", text(p.response("UIDVALIDITY")[1][0]))
attempt("flags", p.uid, "FETCH", "{uid}", "(FLAGS)")
out("read.digest", digest(attempt("read", p.uid, "FETCH", "{uid}", "(BODY.PEEK[])")))
attempt("logout", p.logout)
"#,
        python::imap_login_select("Sent"),
    );
    let second = python::run_imap(&rig.imap, &again).await;
    assert_eq!(second.get("select"), "OK 1", "{second:?}");
    assert_eq!(second.get("validity"), validity, "{second:?}");
    assert!(second.get("flags").contains("\\Seen"), "{second:?}");
    assert_eq!(second.get("read.digest"), digest, "{second:?}");
    rig.settle().await;
    rig.assert_no_leaks();
}

/// The line is cut while the message is a third of the way up: the proxy
/// resumes the session, sends on from the byte the edge holds, and the
/// server stores one copy. Up the line crosses the message about once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_cut_on_its_way_up_is_resumed_and_stored_once() {
    let Some(rig) = rig().await else {
        return;
    };
    const SIZE: usize = 300 << 10;
    rig.line.cut_after(Dir::Up, 100 << 10);
    let script = format!(
        r#"{}{}attempt("sent", p.append, "Sent", None, None, msg)
attempt("logout", p.logout)
"#,
        python::imap_login_select("INBOX"),
        message_script(SIZE),
    );
    let out = python::run_imap(&rig.imap, &script).await;
    assert!(out.get("sent").starts_with("OK"), "{out:?}");
    rig.settle().await;
    assert!(
        rig.edge.resumes() >= 1,
        "the cut did not fall in the upload"
    );
    let digest = out.get("msg.digest");
    let maildrop = &rig.host("Sent").maildrop;
    assert_eq!(copies(&rig, maildrop, digest), [false], "{}", rig.report());
    let up = rig.line.bytes(Dir::Up);
    assert!(
        up < SIZE as u64 * 6 / 5,
        "{up} bytes went up for a message of {SIZE}: the upload started again"
    );
    rig.assert_no_leaks();
}

/// The edge's upload budget (`upload_total_bytes`, 64 KiB here) cannot
/// hold a 300 KiB message: the mail client hears a temporary refusal that
/// says to try again (`NO [UNAVAILABLE]`), nothing is stored, the edge
/// gives the budget back, and the next message, which fits, is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_edges_upload_budget_is_refused_for_now() {
    if !python::available().await {
        return;
    }
    let spec = RigSpec {
        folders: vec![("Sent", "Sent")],
        edge_upload_total_bytes: 64 << 10,
        ..RigSpec::default()
    };
    let rig = Rig::start(spec).await;
    // Two messages: `big`, then `msg` (the small one).
    let mut script = python::imap_login_select("INBOX");
    script.push_str(&message_script(300_000));
    script.push_str("big = msg\n");
    script.push_str(&message_script(20_000));
    script.push_str(
        r#"out("small.digest", "%s %d" % (hashlib.sha256(msg).hexdigest(), len(msg)))
attempt("big", p.append, "Sent", None, None, big)
attempt("small", p.append, "Sent", None, None, msg)
attempt("logout", p.logout)
"#,
    );
    let out = python::run_imap(&rig.imap, &script).await;
    let refused = out.get("big.err");
    assert!(refused.contains("[UNAVAILABLE]"), "{out:?}");
    assert!(refused.contains("try again"), "{out:?}");
    assert!(out.get("small").starts_with("OK"), "{out:?}");
    rig.settle().await;
    let maildrop = &rig.host("Sent").maildrop;
    let big = out.get("msg.digest");
    assert!(copies(&rig, maildrop, big).is_empty(), "{}", rig.report());
    assert_eq!(copies(&rig, maildrop, out.get("small.digest")), [false]);
    assert_eq!(rig.edge.upload_bytes(), 0, "the budget is given back");
    rig.assert_no_leaks();
}
