//! A slow line, judged on a real Dovecot with a real mail client: a 2 MB
//! attachment crosses a 40 kbit/s line with 300 ms of delay each way
//! (about five minutes), through the `causeway` binaries, fetched by
//! fetchmail in delete mode with a 60 s timeout, five times shorter than
//! the body takes. It arrives whole, once; the mailbox ends empty; every
//! Dovecot session ended with QUIT; the next poll finds nothing.
//!
//! A proxy that answered RETR only once the whole body had crossed kept
//! fetchmail waiting in silence past its timeout, on every poll, forever
//! (`crates/client/src/tee.rs`).

use std::time::{Duration, Instant};

use causeway_tests::interop::clients::{Fetchmail, FetchmailOpts};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{
    Chain, Dovecot, Format, Mailbox, Nodes, Route, assert_clean_ends, have_dovecot, require, settle,
};
use causeway_tests::{Dir, Pace};

/// fetchmail in delete mode, by UIDL.
const DELETE: FetchmailOpts = FetchmailOpts {
    keep: false,
    uidl: true,
    fetchall: false,
    imap: false,
};

/// A Dovecot with one message of about `size` bytes, and the chain to it
/// over a 40 kbit/s line with 300 ms of delay each way.
async fn one_message_on_a_slow_line(size: usize) -> (Dovecot, Mailbox, Chain) {
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 1, size).await;
    let before = dc.mailbox(USER).await;
    let pace = Pace {
        bytes_per_sec: 5_000,
        delay: Duration::from_millis(300),
    };
    let chain = Chain::start_paced(
        Nodes::from_env(),
        Route::Direct,
        &dc.pop3_addr(),
        USER,
        PASSWORD,
        Some(pace),
    )
    .await;
    (dc, before, chain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_takes_a_2mb_attachment_across_40kbit_once() {
    if !have_dovecot() || !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    let (dc, before, chain) = one_message_on_a_slow_line(2_000_000).await;
    assert!(before.messages[0].size > 2_000_000, "{before}");
    let fm = Fetchmail::new();
    let mark = dc.log_mark();
    let started = Instant::now();
    let r = fm.run(&chain.proxy, DELETE).await;
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}\n{}", r.text(), chain.output());
    assert_eq!(
        fm.delivered(),
        before.body_digests().into_iter().collect::<Vec<_>>(),
        "the attachment arrived whole, once"
    );
    assert!(
        took > Duration::from_secs(120),
        "the body crossed in {took:?}: the line was not slower than fetchmail's timeout"
    );
    settle(&dc, &chain, USER, mark, emptied).await;
    assert_clean_ends(&dc, mark, "fetchmail over a slow line").await;
    let r = fm.run(&chain.proxy, DELETE).await;
    assert_eq!(r.code, 1, "the next poll finds nothing\n{}", r.text());
    assert_eq!(fm.delivered().len(), 1, "no duplicate");
}

/// A cut in the middle of a body on the slow line is resumed: the client
/// proxy reconnects by itself, proves the session, and the body continues
/// from the byte it had reached. fetchmail (delete mode, its 60 s timeout)
/// sees no error: the message arrives whole, once, is deleted, and every
/// Dovecot session ends with QUIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_mid_body_is_resumed_from_its_offset_and_fetchmail_sees_nothing() {
    if !have_dovecot() || !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    let (dc, before, chain) = one_message_on_a_slow_line(400_000).await;
    let fm = Fetchmail::new();
    let mark = dc.log_mark();
    // The listing is small: 100 KB down is inside the body.
    chain.line.cut_after(Dir::Down, 100_000);
    let r = fm.run(&chain.proxy, DELETE).await;
    assert_eq!(r.code, 0, "{}\n{}", r.text(), chain.output());
    assert_eq!(
        fm.delivered(),
        before.body_digests().into_iter().collect::<Vec<_>>(),
        "the message arrived whole, once"
    );
    assert_eq!(chain.line.connections(), 2, "one cut, one resume");
    let (resumes, partial) = chain.resumes();
    assert_eq!(
        (resumes, partial),
        (1, 1),
        "resumed once, the body from its offset\n{}",
        chain.output()
    );
    settle(&dc, &chain, USER, mark, emptied).await;
    assert_clean_ends(&dc, mark, "a resumed cut on a slow line").await;
    eprintln!(
        "resumed mid-body: {} B down on the line in all for a {} B message",
        chain.line.bytes(Dir::Down),
        before.messages[0].size
    );
}

/// What fetchmail without `keep` leaves: an empty mailbox.
fn emptied(mb: &Mailbox) -> Result<(), String> {
    if mb.messages.is_empty() {
        Ok(())
    } else {
        Err("fetchmail without keep: the message deleted expected".into())
    }
}
