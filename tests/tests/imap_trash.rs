//! The IMAP front's Trash (`causeway_client` `imap_front::trash`) with an
//! unchanged IMAP mail client (python `imaplib`), through the whole chain,
//! judged on the model servers' own records: a message moved to Trash
//! stays on its server, unread, until the Trash is emptied; one moved back
//! returns to its folder under a new UID; moves the servers cannot keep
//! are refused. Every server session QUITs.

use causeway_net::Env;
use causeway_tests::python;
use causeway_tests::rig::{Rig, RigSpec, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_moved_to_trash_stays_on_its_server_until_the_trash_is_emptied() {
    if !python::available().await {
        return;
    }
    let rig = Rig::start(RigSpec::default()).await;
    let h = rig.host("HOST1");
    let u = h.deliver(rig.env.rng(), 4, 2000);

    // Session 1, as Thunderbird deletes: UID MOVE to the folder LIST marks
    // \Trash. COPY, and a MOVE to a folder that is not Trash, are refused.
    let first = format!(
        r#"{}out("caps", text(p.capability()[1][0]))
out("list", " | ".join(text(x) for x in p.list()[1]))
attempt("move", p.uid, "MOVE", "1:2", "Trash")
out("copyuid", text(p.response("COPYUID")[1][0]))
out("expunged", " ".join(text(x) for x in p.response("EXPUNGE")[1]))
attempt("copy", p.copy, "1", "Trash")
attempt("nowhere", p.uid, "MOVE", "3", "Archive")
attempt("same", p.uid, "MOVE", "3", "INBOX")
{}attempt("logout", p.logout)
"#,
        python::imap_login_select("INBOX"),
        python::imap_folder_script()
    );
    let out = python::run_imap(&rig.imap, &first).await;
    assert!(out.get("caps").contains("MOVE"), "{out:?}");
    assert!(
        out.get("list")
            .contains("(\\HasNoChildren \\Trash) \"/\" Trash"),
        "{out:?}"
    );
    assert!(out.get("move").starts_with("OK"), "{out:?}");
    let (trash_validity, copied) = out
        .get("copyuid")
        .split_once(' ')
        .expect("COPYUID validity source destination");
    assert_eq!(copied, "1,2 1,2", "{out:?}");
    // Both moved out: the first sequence number twice.
    assert_eq!(out.get("expunged"), "1 1", "{out:?}");
    assert!(
        out.get("copy.err").contains("[CANNOT]") && out.get("copy.err").contains("Trash"),
        "{out:?}"
    );
    assert!(out.get("nowhere.err").contains("TRYCREATE"), "{out:?}");
    assert!(out.get("same.err").contains("already"), "{out:?}");
    assert_eq!(out.get("flags"), "3:;4:", "{out:?}");
    rig.settle().await;
    for x in &u {
        assert!(
            h.store.is_present(USER, x) && !h.store.is_seen(USER, x),
            "{}",
            rig.report()
        );
    }

    // Session 2, in Trash: the two under the UIDs COPYUID gave; one goes
    // back to INBOX, the other is deleted (the Trash emptied).
    let second = format!(
        r#"{}{}out("status", text(p.status("INBOX", "(MESSAGES UIDNEXT)")[1][0]))
attempt("back", p.uid, "MOVE", "2", "INBOX")
attempt("delete", p.uid, "STORE", "1", "+FLAGS", "(\\Deleted)")
attempt("expunge", p.expunge)
attempt("logout", p.logout)
"#,
        python::imap_login_select("Trash"),
        python::imap_folder_script()
    );
    let out = python::run_imap(&rig.imap, &second).await;
    assert_eq!(out.get("select"), "OK 2", "{out:?}");
    assert_eq!(out.get("validity"), trash_validity, "{out:?}");
    assert_eq!(out.get("flags"), "1:;2:", "{out:?}");
    assert_eq!(out.get("status"), "INBOX (MESSAGES 2 UIDNEXT 5)", "{out:?}");
    assert!(out.get("back").starts_with("OK"), "{out:?}");
    // (imaplib's answer lists the MOVE's EXPUNGE first.)
    assert_eq!(out.get("expunge"), "OK 2", "{out:?}");
    rig.settle().await;
    assert!(!h.store.is_present(USER, &u[0]), "{}", rig.report());
    for x in &u[1..] {
        assert!(h.store.is_present(USER, x), "{}", rig.report());
    }

    // Session 3: the message put back is in INBOX under a new UID; Trash
    // is empty.
    let third = format!(
        r#"{}{}out("trash", text(p.status("Trash", "(MESSAGES)")[1][0]))
attempt("logout", p.logout)
"#,
        python::imap_login_select("INBOX"),
        python::imap_folder_script()
    );
    let out = python::run_imap(&rig.imap, &third).await;
    assert_eq!(out.get("flags"), "3:;4:;5:", "{out:?}");
    assert_eq!(out.get("trash"), "Trash (MESSAGES 0)", "{out:?}");
    rig.settle().await;
    for x in &u {
        assert!(!h.store.is_seen(USER, x), "{}", rig.report());
    }
    rig.assert_no_leaks();
}
