//! A text SEARCH through the whole chain to a real Dovecot, as mutt's
//! `=s`/`=b` patterns and Thunderbird's "search on server" send it:
//! python `imaplib` searches subject, body, sender, whole text and a
//! header, alone and combined (`OR`, `NOT`, a flag). Judged against
//! Dovecot itself: each search, sent straight to Dovecot, must find the
//! same messages (sequence numbers are the same on both sides), and
//! against what the messages say. Nothing is read or removed; every
//! server session ends with LOGOUT. Direct and through the relay (which
//! carries the edge's `XSEARCH`), and with the edge reading Dovecot's POP3
//! instead: POP3 cannot search, so the edge reads each message whole
//! (`TOP`, never marked read) and judges it itself, and must still find
//! what Dovecot's own IMAP search finds. See docs/interop.md, "IMAP mail
//! clients".

use causeway_tests::interop::chain::{LOCAL_PASSWORD, LOCAL_USER};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{self, Chain, Dovecot, Format, Route, assert_clean_ends, settle};
use causeway_tests::python;

/// (name, criteria as `imaplib` sends them, the messages they find).
const SEARCHES: &[(&str, &[&str], &str)] = &[
    ("subject", &["SUBJECT", "\"Interop 2\""], "2"),
    ("body", &["BODY", "\"Test message 3\""], "3"),
    ("from", &["FROM", "sender@rig"], "1 2 3 4 5"),
    ("text", &["TEXT", "\"interop 4\""], "4"),
    ("header", &["HEADER", "Message-ID", ".5."], "5"),
    (
        "or",
        &[
            "OR",
            "SUBJECT",
            "\"Interop 1\"",
            "BODY",
            "\"Test message 5\"",
        ],
        "1 5",
    ),
    (
        "not",
        &["NOT", "SUBJECT", "\"Interop 1\"", "UNSEEN"],
        "2 3 4 5",
    ),
    ("none", &["SUBJECT", "no-such-subject"], ""),
    // Their `Date:` is the day of delivery.
    ("sentsince", &["SENTSINCE", "1-Jan-2000"], "1 2 3 4 5"),
    ("sentbefore", &["SENTBEFORE", "1-Jan-2000"], ""),
    ("senton", &["NOT", "SENTON", "1-Jan-2000"], "1 2 3 4 5"),
];

fn script(user: &str, password: &str) -> String {
    let mut s = format!(
        "attempt(\"login\", p.login, \"{user}\", \"{password}\")\n\
         attempt(\"select\", p.select, \"INBOX\")\n"
    );
    for (name, criteria, _) in SEARCHES {
        let args: Vec<String> = criteria.iter().map(|c| format!("'{c}'")).collect();
        s.push_str(&format!(
            "attempt(\"{name}\", p.search, None, {})\n",
            args.join(", ")
        ));
    }
    s.push_str("attempt(\"logout\", p.logout)\n");
    s
}

/// How the edge reads Dovecot's INBOX.
enum Reads {
    Imap,
    Pop3,
}

async fn searched_as_dovecot_searches(route: Route, reads: Reads) {
    if !interop::have_dovecot() {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 5, 2000).await;
    let before = dc.mailbox(USER).await;
    let imap = format!("127.0.0.1:{}", dc.imap_port);
    let nodes = interop::Nodes::from_env();
    let chain = match reads {
        Reads::Imap => {
            let entries = [("DOVECOT", "INBOX")];
            Chain::start_imap_folders(nodes, route, &imap, &entries, USER, PASSWORD).await
        }
        Reads::Pop3 => {
            let pop3 = format!("127.0.0.1:{}", dc.pop3_port);
            Chain::start(nodes, route, &pop3, USER, PASSWORD).await
        }
    };
    let direct = python::run_imap(&imap, &script(USER, PASSWORD)).await;
    let mark = dc.log_mark();
    let through = python::run_imap(&chain.imap, &script(LOCAL_USER, LOCAL_PASSWORD)).await;
    for (name, _, found) in SEARCHES {
        assert_eq!(
            direct.get(name),
            format!("OK {found}"),
            "{name}: {direct:?}"
        );
        assert_eq!(through.get(name), direct.get(name), "{name}: {through:?}");
    }
    settle(&dc, &chain, USER, mark, |_| Ok(())).await;
    let after = dc.mailbox(USER).await;
    assert!(after.messages.iter().all(|m| !m.seen()), "{after}");
    let shas = |mb: &interop::dovecot::Mailbox| -> Vec<String> {
        mb.messages.iter().map(|m| m.sha256.clone()).collect()
    };
    assert_eq!(shas(&after), shas(&before), "{after}");
    assert_clean_ends(&dc, mark, "searched").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_search_finds_what_dovecot_finds_direct() {
    searched_as_dovecot_searches(Route::Direct, Reads::Imap).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_search_finds_what_dovecot_finds_via_relay() {
    searched_as_dovecot_searches(Route::Relay, Reads::Imap).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_search_of_dovecots_pop3_finds_what_its_imap_finds_direct() {
    searched_as_dovecot_searches(Route::Direct, Reads::Pop3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_search_of_dovecots_pop3_finds_what_its_imap_finds_via_relay() {
    searched_as_dovecot_searches(Route::Relay, Reads::Pop3).await
}
