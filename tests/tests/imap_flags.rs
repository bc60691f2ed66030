//! Flags an IMAP client stores (`\Flagged`, `\Answered`, keywords) through
//! the whole chain (python `imaplib` at the client proxy's IMAP front, the
//! line forwarder, the edge, model servers), judged on the model IMAP
//! server's own record: on a message of an IMAP server they are set there
//! before the STORE is answered, taken away as asked (`-FLAGS`, and what a
//! `FLAGS` replace drops), and never `\Seen` by that route; on a POP3
//! server, which has none, the proxy's UID book alone keeps them. Every
//! server session QUITs.

use std::collections::BTreeSet;

use causeway_mailserver::SessionId;
use causeway_net::Env;
use causeway_tests::python;
use causeway_tests::rig::{Rig, RigSpec, USER};

/// The model server's flags (other than `\Seen`, `\Deleted`) of each of
/// the entry's messages, in UID order.
fn server_flags(rig: &Rig, entry: &str) -> Vec<BTreeSet<String>> {
    let h = rig.host(entry);
    h.store
        .messages(&h.maildrop)
        .into_iter()
        .map(|m| m.flags)
        .collect()
}

/// HOST1 (POP3) is the INBOX; the entry `Archive` reads the folder
/// Archive of an IMAP server, which holds 3 messages.
async fn archive() -> Rig {
    let rig = Rig::start(RigSpec {
        folders: vec![("Archive", "Archive")],
        ..RigSpec::default()
    })
    .await;
    rig.host("Archive").deliver(rig.env.rng(), 3, 2000);
    rig
}

fn set(flags: &[&str]) -> BTreeSet<String> {
    flags.iter().map(|f| (*f).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_flags_reach_the_imap_server_and_stay_in_the_book_for_pop3() {
    if !python::available().await {
        return;
    }
    let rig = archive().await;
    rig.host("HOST1").deliver(rig.env.rng(), 1, 2000);

    let first = format!(
        r#"{}attempt("star", p.uid, "STORE", "1", "+FLAGS", "(\\Flagged $Label1)")
attempt("answer", p.uid, "STORE", "2:3", "+FLAGS.SILENT", "(\\Answered)")
attempt("unanswer", p.uid, "STORE", "3", "-FLAGS", "(\\Answered)")
attempt("replace", p.uid, "STORE", "2", "FLAGS", "(\\Flagged)")
attempt("inbox", p.select, "INBOX")
attempt("pop3", p.uid, "STORE", "1", "+FLAGS", "(\\Flagged)")
attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
    );
    let out = python::run_imap(&rig.imap, &first).await;
    for step in ["star", "answer", "unanswer", "replace", "pop3"] {
        assert!(out.get(step).starts_with("OK"), "{step}: {out:?}");
    }
    // Set on the server before the OK: no settling needed.
    assert_eq!(
        server_flags(&rig, "Archive"),
        [
            set(&["\\Flagged", "$Label1"]),
            set(&["\\Flagged"]),
            set(&[]),
        ],
        "{}",
        rig.report()
    );
    rig.settle().await;
    // Not one of them read: `\Seen` never goes by this route.
    let h = rig.host("Archive");
    assert!(
        h.store
            .messages(&h.maildrop)
            .iter()
            .all(|m| m.seen_by.is_none()),
        "{}",
        rig.report()
    );
    // POP3 has no flags; the book keeps the star, and the next session
    // shows both folders as they were stored.
    assert!(rig.host("HOST1").store.messages(USER)[0].flags.is_empty());
    let again = format!(
        r#"{}{}attempt("inbox", p.select, "INBOX")
out("inbox.flags", text(attempt("f", p.uid, "FETCH", "1", "(FLAGS)")[0]))
attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
        python::imap_folder_script(),
    );
    let second = python::run_imap(&rig.imap, &again).await;
    assert_eq!(
        second.get("flags"),
        "1:\\Flagged $Label1;2:\\Flagged;3:",
        "{second:?}"
    );
    assert!(
        second.get("inbox.flags").contains("\\Flagged"),
        "{second:?}"
    );
    rig.settle().await;
    rig.assert_no_leaks();
}

/// Flags another device of the user set on the IMAP server (the phone
/// read one message, starred and answered another, unstarred a third)
/// show at the client proxy's IMAP front from its next listing, over what
/// its UID book kept. Before, the front showed only what it had seen
/// itself: read on the phone, still unread here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_set_on_the_server_elsewhere_show_at_the_front() {
    if !python::available().await {
        return;
    }
    let rig = archive().await;
    let first = format!(
        r#"{}attempt("star", p.uid, "STORE", "3", "+FLAGS.SILENT", "(\\Flagged)")
{}attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
        python::imap_folder_script(),
    );
    let out = python::run_imap(&rig.imap, &first).await;
    assert_eq!(out.get("flags"), "1:;2:;3:\\Flagged", "{out:?}");
    rig.settle().await;
    // Elsewhere, between two sessions.
    let h = rig.host("Archive");
    let uids: Vec<u32> = (h.store.messages(&h.maildrop).iter())
        .map(|m| m.uid)
        .collect();
    let flags = |fs: &[&str]| fs.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
    let now = rig.env.unix_millis();
    h.store
        .read_elsewhere(&h.maildrop, uids[0], SessionId(u64::MAX), now);
    h.store.store_flags(
        &h.maildrop,
        uids[1],
        true,
        &flags(&["\\Flagged", "\\Answered"]),
        now,
    );
    h.store
        .store_flags(&h.maildrop, uids[2], false, &flags(&["\\Flagged"]), now);
    let again = format!(
        "{}{}attempt(\"logout\", p.logout)\n",
        python::imap_login_select("Archive"),
        python::imap_folder_script(),
    );
    let second = python::run_imap(&rig.imap, &again).await;
    assert_eq!(
        second.get("flags"),
        "1:\\Seen;2:\\Answered \\Flagged;3:",
        "{second:?}\n{}",
        rig.report()
    );
    rig.settle().await;
    rig.assert_no_leaks();
}

/// "Mark as unread" reaches the IMAP server: a message read in this
/// session, whose read mark the edge still owes (it is committed at the
/// session's end), stays unread, for the edge drops the mark; one read
/// and committed in an earlier session is unread on the server before
/// the STORE is answered. Each later listing shows both unread. Before,
/// the front kept "unread" in its UID book alone, and the first message
/// ended read on the server all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marked_unread_a_message_is_unread_on_its_server_though_its_read_mark_was_owed() {
    if !python::available().await {
        return;
    }
    let rig = archive().await;
    let h = rig.host("Archive");
    let seen = || -> Vec<bool> {
        let all = h.store.messages(&h.maildrop);
        all.iter().map(|m| m.seen_by.is_some()).collect()
    };
    let first = format!(
        r#"{}attempt("read1", p.uid, "FETCH", "1", "(BODY[])")
attempt("read2", p.uid, "FETCH", "2", "(BODY[])")
attempt("noop", p.noop)
attempt("unread", p.uid, "STORE", "2", "-FLAGS", "(\Seen)")
{}attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
        python::imap_folder_script(),
    );
    let out = python::run_imap(&rig.imap, &first).await;
    assert!(out.get("unread").starts_with("OK"), "{out:?}");
    assert_eq!(out.get("flags"), "1:\\Seen;2:;3:", "{out:?}");
    rig.settle().await;
    assert_eq!(seen(), [true, false, false], "{}", rig.report());

    let second = format!(
        r#"{}attempt("unread", p.uid, "STORE", "1", "-FLAGS.SILENT", "(\Seen)")
attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
    );
    let out = python::run_imap(&rig.imap, &second).await;
    assert!(out.get("unread").starts_with("OK"), "{out:?}");
    rig.settle().await;
    assert_eq!(seen(), [false, false, false], "{}", rig.report());
    let third = format!(
        "{}{}attempt(\"logout\", p.logout)\n",
        python::imap_login_select("Archive"),
        python::imap_folder_script(),
    );
    let out = python::run_imap(&rig.imap, &third).await;
    assert_eq!(out.get("flags"), "1:;2:;3:", "{out:?}");
    rig.settle().await;
    rig.assert_no_leaks();
}

/// Two IMAP clients on one folder of a server that does not lock (as
/// Thunderbird's two connections are): a message the first expunged is
/// not listed to the second while the first's delete is still owed (its
/// session behind has not ended, so the delete is not committed yet),
/// neither while the delete waits in the client proxy's journal nor once
/// the edge holds it.
/// Before, the second listed it again, as if the expunge had never been
/// made, and a client that keeps copies fetched it anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_expunged_in_one_session_is_not_listed_to_another_meanwhile() {
    if !python::available().await {
        return;
    }
    let rig = archive().await;
    let first = format!(
        r#"{}attempt("delete", p.store, "1", "+FLAGS", "(\\Deleted)")
attempt("expunge", p.expunge)
pause("expunged")
attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
    );
    let mut a = python::Py::start_imap(&rig.imap, &first);
    a.expect("pause").await;
    let second = format!(
        r#"{}attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
    );
    // At once (the delete may still be in the client proxy's batch), and
    // once the edge holds it.
    let b = python::run_imap(&rig.imap, &second).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let c = python::run_imap(&rig.imap, &second).await;
    // Still there on the server: the first session has not committed.
    let h = rig.host("Archive");
    assert_eq!(
        h.store.present_uidls(&h.maildrop).len(),
        3,
        "{}",
        rig.report()
    );
    assert_eq!(b.get("select"), "OK 2", "{b:?}");
    assert_eq!(c.get("select"), "OK 2", "{c:?}");
    a.resume().await;
    let out = a.finish().await;
    assert!(out.get("expunge").starts_with("OK"), "{out:?}");
    rig.settle().await;
    assert_eq!(
        h.store.present_uidls(&h.maildrop).len(),
        2,
        "{}",
        rig.report()
    );
    rig.assert_no_leaks();
}
