//! Flags an IMAP client stores, through the whole chain to a real
//! Dovecot: python `imaplib` stars one message with a keyword beside it,
//! marks another answered, and takes the star back, as Thunderbird does
//! when a user stars, replies and unstars. Judged on Dovecot: each flag
//! there as the client left it, once each STORE was answered; nothing
//! read, nothing removed; every server session ended with LOGOUT. Direct
//! and through the relay (which carries the edge's `XSTORE`). Then the
//! other way: flags another device set straight on Dovecot (read, starred)
//! show through Causeway from its next listing (the edge's `XFLAGS`). And
//! "mark as unread" reaches Dovecot, for a message read through Causeway
//! in that session (its read mark still owed) as for one read on the
//! phone. See docs/interop.md, "IMAP mail clients".

use causeway_tests::interop::chain::{LOCAL_PASSWORD, LOCAL_USER};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{self, Chain, Dovecot, Format, Route, assert_clean_ends, settle};
use causeway_tests::python;

async fn flags_reach_dovecot(route: Route) {
    if !interop::have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 3, 2000).await;
    let before = dc.mailbox(USER).await;
    let imap = format!("127.0.0.1:{}", dc.imap_port);
    let chain = Chain::start_imap_folders(
        interop::Nodes::from_env(),
        route,
        &imap,
        &[("DOVECOT", "INBOX")],
        USER,
        PASSWORD,
    )
    .await;
    let mark = dc.log_mark();
    let script = format!(
        r#"attempt("login", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}")
attempt("select", p.select, "INBOX")
attempt("star", p.store, "1", "+FLAGS", "(\\Flagged $Label1)")
attempt("answer", p.store, "2", "+FLAGS.SILENT", "(\\Answered)")
attempt("unstar", p.store, "1", "-FLAGS", "(\\Flagged)")
attempt("logout", p.logout)
"#
    );
    let out = python::run_imap(&chain.imap, &script).await;
    for step in ["star", "answer", "unstar"] {
        assert!(out.get(step).starts_with("OK"), "{step}: {out:?}");
    }
    settle(&dc, &chain, USER, mark, |_| Ok(())).await;
    let after = dc.mailbox(USER).await;
    let flags: Vec<Vec<&str>> = after
        .messages
        .iter()
        .map(|m| m.flags.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        flags,
        [vec!["$Label1"], vec!["\\Answered"], vec![]],
        "{after}"
    );
    let shas = |mb: &interop::dovecot::Mailbox| -> Vec<String> {
        mb.messages.iter().map(|m| m.sha256.clone()).collect()
    };
    assert_eq!(shas(&after), shas(&before), "{after}");
    assert_clean_ends(&dc, mark, "flags stored").await;

    // The phone, straight to Dovecot: reads message 3, stars message 2.
    let phone = format!(
        r#"attempt("login", p.login, "{USER}", "{PASSWORD}")
attempt("select", p.select, "INBOX")
attempt("read", p.store, "3", "+FLAGS.SILENT", "(\\Seen)")
attempt("star", p.store, "2", "+FLAGS.SILENT", "(\\Flagged)")
attempt("logout", p.logout)
"#
    );
    let out = python::run_imap(&imap, &phone).await;
    assert!(out.get("star").starts_with("OK"), "{out:?}");
    let mark = dc.log_mark();
    let shown = format!(
        "attempt(\"login\", p.login, \"{LOCAL_USER}\", \"{LOCAL_PASSWORD}\")\n\
         attempt(\"select\", p.select, \"INBOX\")\n{}attempt(\"logout\", p.logout)\n",
        python::imap_folder_script()
    );
    let out = python::run_imap(&chain.imap, &shown).await;
    // Through Causeway, as on the phone (UIDs are the proxy's own, 1-3).
    assert_eq!(
        out.get("flags"),
        "1:$Label1;2:\\Answered \\Flagged;3:\\Seen",
        "{out:?}"
    );
    settle(&dc, &chain, USER, mark, |_| Ok(())).await;
    assert_clean_ends(&dc, mark, "flags shown").await;

    // Mark as unread: message 1 read now (its read mark still owed by the
    // edge), message 3 read on the phone. Both end unread on Dovecot.
    let mark = dc.log_mark();
    let unread = format!(
        r#"attempt("login", p.login, "{LOCAL_USER}", "{LOCAL_PASSWORD}")
attempt("select", p.select, "INBOX")
attempt("read", p.fetch, "1", "(BODY[])")
attempt("noop", p.noop)
attempt("unread", p.store, "1,3", "-FLAGS", "(\\Seen)")
attempt("logout", p.logout)
"#
    );
    let out = python::run_imap(&chain.imap, &unread).await;
    assert!(out.get("unread").starts_with("OK"), "{out:?}");
    settle(&dc, &chain, USER, mark, |_| Ok(())).await;
    let after = dc.mailbox(USER).await;
    assert!(
        after
            .messages
            .iter()
            .all(|m| !m.flags.iter().any(|f| f == "\\Seen")),
        "{after}"
    );
    assert_clean_ends(&dc, mark, "marked unread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_reach_dovecot_direct() {
    flags_reach_dovecot(Route::Direct).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_reach_dovecot_via_relay() {
    flags_reach_dovecot(Route::Relay).await
}
