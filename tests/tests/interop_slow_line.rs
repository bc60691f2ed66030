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

use causeway_tests::Pace;
use causeway_tests::interop::clients::{Fetchmail, FetchmailOpts};
use causeway_tests::interop::dovecot::{PASSWORD, USER};
use causeway_tests::interop::{
    Chain, Dovecot, Format, Nodes, Route, assert_clean_ends, have_dovecot, require, settle,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_takes_a_2mb_attachment_across_40kbit_once() {
    if !have_dovecot() || !require("fetchmail", &["--version"], "fetchmail") {
        return;
    }
    let dc = Dovecot::start(Format::Maildir).await;
    dc.deliver(USER, 1, 2_000_000).await;
    let before = dc.mailbox(USER).await;
    assert!(before.messages[0].size > 2_000_000, "{before}");
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
    let fm = Fetchmail::new();
    let delete = FetchmailOpts {
        keep: false,
        uidl: true,
        fetchall: false,
    };
    let mark = dc.log_mark();
    let started = Instant::now();
    let r = fm.run(&chain.proxy, delete).await;
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
    settle(&dc, &chain, USER, mark, |mb| {
        if mb.messages.is_empty() {
            Ok(())
        } else {
            Err("fetchmail without keep: the message deleted expected".into())
        }
    })
    .await;
    assert_clean_ends(&dc, mark, "fetchmail over a slow line");
    let r = fm.run(&chain.proxy, delete).await;
    assert_eq!(r.code, 1, "the next poll finds nothing\n{}", r.text());
    assert_eq!(fm.delivered().len(), 1, "no duplicate");
}
