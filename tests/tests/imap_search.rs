//! A text SEARCH (`FROM`, `SUBJECT`, `BODY`, `TEXT`, `HEADER`) through the
//! whole chain (python `imaplib` at the client proxy's IMAP front, the
//! line, the edge, a model IMAP server): each criterion is searched by the
//! server, and combined at the front with what the front judges itself
//! (`NOT`, `OR`, flags), and so is the day a message was sent (`SENTON`,
//! `SENTBEFORE`, `SENTSINCE`: the day its `Date:` names, as written).
//! Judged against the messages' own text. A POP3
//! entry's messages are read whole by the edge and judged there (POP3
//! cannot search); an unknown charset is `NO [BADCHARSET]`. Nothing is read
//! by a search, and every server session ends.

use causeway_net::Env;
use causeway_tests::python;
use causeway_tests::rig::{Rig, RigSpec};

/// HOST1 (POP3, a generated message and the one below, whose sender,
/// words and day no generated message has) is the INBOX; the
/// entry `Archive` reads the folder Archive of an IMAP server, which holds
/// the three messages below.
async fn rig() -> Rig {
    let rig = Rig::start(RigSpec {
        folders: vec![("Archive", "Archive")],
        ..RigSpec::default()
    })
    .await;
    let pop3 = rig.host("HOST1");
    pop3.deliver(rig.env.rng(), 1, 2000);
    let ferry = "From: Zelda Quist <zq@example.org>\r\nSubject: Ferry\r\nDate: Tue, 5 May 2026 \
                 10:00:00 +0000\r\n\r\nThe Zebra-crossing.\r\n";
    pop3.store.deliver(&pop3.maildrop, ferry).expect("deliver");
    let h = rig.host("Archive");
    for m in [
        "From: Ann <ann@example.org>\r\nSubject: Quarterly report\r\nDate: Mon, 02 Mar 2026 \
         23:00:00 -0500\r\n\r\nThe numbers.\r\n",
        "From: bob@example.org\r\nSubject: Lunch\r\nX-Tag: blue\r\nDate: 3 Mar 2026 08:00 \
         +0100\r\n\r\nAfter the quarterly figures?\r\n",
        "From: ann@example.org\r\nSubject: =?utf-8?q?x?= Gr\u{fc}\u{df}e\r\n\r\nHallo.\r\n",
    ] {
        h.store.deliver(&h.maildrop, m).expect("deliver");
    }
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_criteria_are_searched_by_the_server_and_combined_at_the_front() {
    if !python::available().await {
        return;
    }
    let rig = rig().await;
    let script = format!(
        r#"{}attempt("subject", p.search, None, "SUBJECT", "quarterly")
attempt("from", p.uid, "SEARCH", "FROM", "ann")
attempt("body", p.search, None, "BODY", "quarterly")
attempt("text", p.search, None, "TEXT", "QUARTERLY")
attempt("or", p.search, None, "OR", "FROM", "bob", "SUBJECT", "nothing-like-it")
attempt("not", p.search, None, "NOT", "FROM", "ann", "UNSEEN")
attempt("header", p.search, None, "HEADER", "X-Tag", '""')
attempt("none", p.search, None, "SUBJECT", "absent")
attempt("senton", p.search, None, "SENTON", "2-Mar-2026")
attempt("sentsince", p.search, None, "SENTSINCE", "3-Mar-2026")
attempt("sentbefore", p.search, None, "SENTBEFORE", "1-Jan-2030", "NOT", "FROM", "bob")
p.literal = "grüße".encode("utf-8")
attempt("utf8", p.search, "UTF-8", "SUBJECT")
attempt("koi8", p.search, "KOI8-R", "SUBJECT", "x")
attempt("inbox", p.select, "INBOX")
attempt("pop3-from", p.search, None, "FROM", "ZELDA")
attempt("pop3-body", p.search, None, "BODY", "zebra-crossing")
attempt("pop3-not", p.search, None, "NOT", "TEXT", "zebra")
attempt("pop3-none", p.search, None, "SUBJECT", "zebra")
attempt("pop3-sent", p.search, None, "SENTSINCE", "1-May-2026")
attempt("flags", p.search, None, "UNSEEN")
attempt("logout", p.logout)
"#,
        python::imap_login_select("Archive"),
    );
    let out = python::run_imap(&rig.imap, &script).await;
    let h = rig.host("Archive");
    let uids: Vec<u32> = (h.store.messages(&h.maildrop).iter())
        .map(|m| m.uid)
        .collect();
    for (step, found) in [
        ("subject", "1".to_owned()),
        ("from", format!("{} {}", uids[0], uids[2])),
        ("body", "2".to_owned()),
        ("text", "1 2".to_owned()),
        ("or", "2".to_owned()),
        ("not", "2".to_owned()),
        ("header", "2".to_owned()),
        ("none", String::new()),
        ("senton", "1".to_owned()),
        ("sentsince", "2".to_owned()),
        ("sentbefore", "1".to_owned()),
        ("utf8", "3".to_owned()),
        ("pop3-from", "2".to_owned()),
        ("pop3-body", "2".to_owned()),
        ("pop3-not", "1".to_owned()),
        ("pop3-none", String::new()),
        ("pop3-sent", "2".to_owned()),
        ("flags", "1 2".to_owned()),
    ] {
        assert_eq!(out.get(step), format!("OK {found}"), "{step}: {out:?}");
    }
    assert!(out.get("koi8.err").contains("BADCHARSET"), "{out:?}");
    rig.settle().await;
    // A search reads nothing, on either server.
    for h in [h, rig.host("HOST1")] {
        assert!(
            h.store
                .messages(&h.maildrop)
                .iter()
                .all(|m| m.seen_by.is_none()),
            "{}",
            rig.report()
        );
    }
    rig.assert_no_leaks();
}
