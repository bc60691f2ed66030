//! What a mail client that reads a message's structure sees (Thunderbird
//! fetches `BODYSTRUCTURE`, then one part at a time, for messages above
//! 30 KB; others fetch `ENVELOPE`): through the client proxy's IMAP front,
//! exactly what Dovecot itself answers, byte for byte as python `imaplib`
//! receives it. The messages are MIME's awkward cases: no MIME-Version,
//! nested multiparts, a forwarded message with parts of its own, a digest,
//! RFC 2231 parameter continuations, address groups and comments, 8-bit
//! headers, a multipart without its closing boundary and one with no parts,
//! a message without a header.
//! See docs/interop.md, "IMAP mail clients".

use causeway_tests::interop::chain::{LOCAL_PASSWORD, LOCAL_USER};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{Chain, Dovecot, Format, Nodes, Route, have_dovecot};
use causeway_tests::python;

/// The messages, LF line ends (imaplib's APPEND sends CRLF).
const MESSAGES: &[&str] = &[
    // 1: plain, no MIME-Version (its Content-Type does not count).
    "From: Ann Example <ann@example.org>\nTo: bob@example.org\nSubject: plain\nDate: Mon, 1 Jun 2026 10:00:00 +0000\nMessage-ID: <one@example.org>\nContent-Type: text/html\n\nHello,\nBob.\n",
    // 2: mixed: alternative (text, html) + a base64 attachment with every
    // extension field + a forwarded multipart message.
    "From: \"Doe, John\" <john@example.org>, jane.q@example.com (Jane Q)\nSender: list@example.org\nReply-To: Team: a@b.example, c@d.example;\nTo: undisclosed-recipients:;\nCc: <@relay.example:u@h.example>, nobody\nSubject: =?utf-8?q?caf=C3=A9?= report\n  folded\nIn-Reply-To: <zero@example.org>\nMessage-ID: <two@example.org>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"outer\"; x-extra=\"a b\"\nContent-Disposition: inline\nContent-Language: en, fr\n\nThis is a preamble.\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n--inner\nContent-Type: text/plain; charset=utf-8; format=flowed\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\nline two\n--inner\nContent-Type: TEXT/HTML; CHARSET=\"UTF-8\"\n\n<p>caf\u{e9}</p>\n--inner--\n--outer\nContent-Type: application/pdf; name=\"report.pdf\"\nContent-Transfer-Encoding: base64\nContent-ID: <part3@example.org>\nContent-Description: the report\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\nContent-Disposition: attachment; filename*0=\"long\"; filename*1=\"name.pdf\"; size=12\nContent-Language: de\nContent-Location: http://example.org/report.pdf\n\nJVBERi0xLjQK\nJVBERi0xLjQK\n--outer\nContent-Type: message/rfc822\n\nFrom: inner@example.org\nTo: Ann <ann@example.org>\nSubject: forwarded\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=fwd\n\n--fwd\n\ninner text\n--fwd\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--fwd--\n--outer--\nepilogue\n",
    // 3: a digest (its parts are messages without saying so), unclosed.
    "From: digest@example.org\nSubject: digest\nMIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: one@example.org\nSubject: first\n\nfirst body\n--d\n\nFrom: two@example.org\nSubject: second\n\nsecond body\n",
    // 4: a multipart whose boundary never comes, and an 8-bit subject.
    "From: x@example.org\nSubject: \u{e9}t\u{e9}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=never\n\nno parts here\n",
    // 5: no header at all (it opens with the blank line).
    "\nno header at all\n\nsecond paragraph\n",
];

/// One FETCH item per command, so the order of items in a response is not
/// compared; every part-section form Thunderbird and others use.
const ITEMS: &[&str] = &[
    "BODYSTRUCTURE",
    "BODY",
    "ENVELOPE",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[1]",
    "BODY.PEEK[1.MIME]",
    "BODY.PEEK[1.1]",
    "BODY.PEEK[1.2]",
    "BODY.PEEK[1.2.MIME]",
    "BODY.PEEK[2]",
    "BODY.PEEK[2.MIME]",
    "BODY.PEEK[2.HEADER]",
    "BODY.PEEK[2.TEXT]",
    "BODY.PEEK[2.1]",
    "BODY.PEEK[2.2]",
    "BODY.PEEK[3]",
    "BODY.PEEK[3.HEADER.FIELDS (SUBJECT FROM)]",
    "BODY.PEEK[3.1]",
    "BODY.PEEK[3.2]",
    "BODY.PEEK[3.2.1]",
    "BODY.PEEK[1]<2.5>",
    "BODY.PEEK[9]",
];

/// Media type names are case-insensitive (RFC 2045 §5.1): Dovecot writes
/// a text part's type as the message spells it and `"message" "rfc822"`,
/// imap-codec writes `"TEXT"` and `"MESSAGE" "RFC822"`. Made alike; every
/// other byte is compared as it came.
fn media_case(response: &str) -> String {
    response
        .replace("(\"TEXT\" \"", "(\"text\" \"")
        .replace("(\"Text\" \"", "(\"text\" \"")
        .replace("\"MESSAGE\" \"RFC822\"", "\"message\" \"rfc822\"")
}

/// Logs in, then FETCHes each of `items` from each of messages 1..=`n`
/// on its own, printing `"<item> <n>"` and imaplib's answer.
fn fetch_script(user: &str, password: &str, items: &[&str], n: usize) -> String {
    let items: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!(
        r#"attempt("login", p.login, "{user}", "{password}")
attempt("select", p.select, "INBOX")
for item in [{}]:
    for i in range(1, {n} + 1):
        typ, data = p.fetch(str(i), "(" + item + ")")
        out("%s %d" % (item, i), repr((typ, data)))
attempt("logout", p.logout)
"#,
        items.join(", ")
    )
}

/// Dovecot with `append` run against it (a script body, logged in), and the
/// chain in front of it: for each of `items` and messages 1..=`n`, where
/// the proxy's answer differs from Dovecot's. None if the rig is missing.
async fn differences(append: &str, items: &[&str], n: usize) -> Option<Vec<String>> {
    if !have_dovecot() || !python::available().await {
        return None;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    let direct = format!("127.0.0.1:{}", dc.imap_port);
    let append = format!(
        "attempt(\"login\", p.login, \"{USER}\", \"{PASSWORD}\")\n{append}\nattempt(\"logout\", p.logout)\n"
    );
    let out = python::run_imap(&direct, &append).await;
    assert!(
        !out.0.iter().any(|(k, _)| k.ends_with(".err")),
        "APPEND to Dovecot: {out:?}"
    );
    let theirs = python::run_imap(&direct, &fetch_script(USER, PASSWORD, items, n)).await;
    let chain = Chain::start(
        Nodes::from_env(),
        Route::Direct,
        &dc.pop3_addr(),
        USER,
        PASSWORD,
    )
    .await;
    let ours = python::run_imap(
        &chain.imap,
        &fetch_script(LOCAL_USER, LOCAL_PASSWORD, items, n),
    )
    .await;
    let mut differ = Vec::new();
    for item in items {
        for i in 1..=n {
            let key = format!("{item} {i}");
            let (d, c) = (media_case(theirs.get(&key)), media_case(ours.get(&key)));
            assert!(d.starts_with("('OK'"), "Dovecot refused {key}: {d}");
            if d != c {
                differ.push(format!("{key}:\n  Dovecot: {d}\n  proxy:   {c}"));
            }
        }
    }
    Some(differ)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structure_and_parts_as_dovecot_answers_them() {
    let hex: Vec<String> = MESSAGES
        .iter()
        .map(|m| {
            let h: String = m.bytes().map(|b| format!("{b:02x}")).collect();
            format!("{h:?}")
        })
        .collect();
    let append = format!(
        "for h in [{}]:\n    attempt(\"append\", p.append, \"INBOX\", None, None, bytes.fromhex(h))",
        hex.join(", ")
    );
    let Some(differ) = differences(&append, ITEMS, MESSAGES.len()).await else {
        return;
    };
    assert!(
        differ.is_empty(),
        "{} of {} answers differ from Dovecot's:\n{}",
        differ.len(),
        ITEMS.len() * MESSAGES.len(),
        differ.join("\n")
    );
}

/// The same over a real corpus (`../shared/corpus/test.lst`, 1,549
/// messages: `cargo test -p causeway-tests --test interop_imap_structure
/// -- --ignored`): prints how many answers differ, per item, and the first
/// few differences. A measurement for docs/interop.md, not a gate: spam
/// holds every malformation there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ../shared/corpus; a measurement"]
async fn corpus_structure_against_dovecot() {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let list = std::fs::read_to_string(base.join("test.lst")).expect("../shared/corpus/test.lst");
    let n = list.split_whitespace().count();
    let append = format!(
        "import os\nfor rel in open({:?}).read().split():\n    data = open(os.path.join({:?}, rel), \"rb\").read()\n    if data.startswith(b\"From \"):\n        data = data.split(b\"\\n\", 1)[1]\n    attempt(\"append\", p.append, \"INBOX\", None, None, data)",
        base.join("test.lst").display().to_string(),
        base.display().to_string()
    );
    let items = [
        "BODYSTRUCTURE",
        "ENVELOPE",
        "BODY.PEEK[1]",
        "BODY.PEEK[1.MIME]",
        "BODY.PEEK[2]",
    ];
    let Some(differ) = differences(&append, &items, n).await else {
        return;
    };
    for item in items {
        let k = differ
            .iter()
            .filter(|d| d.starts_with(&format!("{item} ")))
            .count();
        eprintln!("{item}: {k} of {n} messages differ");
    }
    for d in differ.iter().take(12) {
        eprintln!("{}", &d[..d.len().min(3000)]);
    }
}
