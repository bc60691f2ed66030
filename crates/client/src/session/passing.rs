//! A RETR (or a TOP of the whole message) with the body written to the
//! mail client as it arrives (see [`crate::tee`] for why).
//!
//! The `+OK` goes out with the first piece of the body, not before: until
//! then the edge may still answer `-ERR` (the message is gone, the server
//! is down), and that answer reaches the mail client as it always did. After
//! it, a reply that breaks off (the line lost, the edge's error) cannot be
//! taken back, so the connection is closed mid-reply: the mail client sees
//! a truncated message, keeps it unread, and the edge marks nothing.

use causeway_net::{Env, Stream};
use causeway_pop3::multiline::BodyEncoder;
use causeway_proto::OpError;
use causeway_proto::session::Reply;
use tokio::io::AsyncReadExt;

use super::{Gone, Link, Session, write_to};
use crate::broken::Broken;
use crate::front::{Passing, Request};
use crate::link::LineCut;
use crate::mirror::Key;

/// How a reply that may pass its body on went.
pub(super) enum Passed {
    /// Nothing was written: the answer, for the front to reply with.
    Unwritten(Result<Result<Reply, OpError>, LineCut>),
    /// The whole reply was written (the body awaits the mail client's next
    /// command to count as delivered).
    Written,
    /// The reply broke off after its `+OK`; the session is over.
    BrokeOff,
}

impl<E: Env, M: Stream> Session<E, M> {
    /// Asks the edge for `r` (the body of `key`) while watching the mail
    /// client, as `ask_watching` does, and writes the status line and the
    /// body on as it arrives.
    pub(super) async fn ask_passing_on(
        &mut self,
        r: &Request,
        key: Key,
        passing: Passing,
    ) -> Result<Passed, Gone> {
        if let Err(cut) = self.link() {
            return Ok(Passed::Unwritten(Err(cut)));
        }
        let Link::Open(link) = &mut self.link else {
            unreachable!("link() found it open")
        };
        let tee = link.tee(key.clone());
        let within = self.config.timeouts.request;
        // Some once the `+OK` was written; the bytes of the body fed to it.
        let mut encoder: Option<BodyEncoder> = None;
        let mut fed = 0usize;
        let asked = {
            let (env, mail, codec) = (&self.env, &mut self.mail, &mut self.codec);
            let ask = link.ask(r);
            tokio::pin!(ask);
            let mut buf = [0u8; 4096];
            loop {
                tokio::select! {
                    biased;
                    asked = &mut ask => break asked,
                    () = tee.more() => {
                        let piece = tee.take();
                        if piece.is_empty() {
                            continue;
                        }
                        let mut out = Vec::new();
                        let e = encoder.get_or_insert_with(|| {
                            out.extend_from_slice(&passing.head);
                            BodyEncoder::default()
                        });
                        e.feed(&piece, &mut out);
                        fed += piece.len();
                        if write_to(env, mail, within, &out).await.is_err() {
                            return Err(Gone);
                        }
                    }
                    read = mail.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return Err(Gone),
                        Ok(n) => codec.feed(&buf[..n]),
                    },
                }
            }
        };
        if let Link::Open(link) = &mut self.link {
            link.untee();
        }
        let Some(mut encoder) = encoder else {
            return Ok(Passed::Unwritten(asked));
        };
        let body = match asked {
            Ok(Ok(Reply::Body(b))) if fed <= b.len() => b,
            other => {
                let why = match other {
                    Ok(Ok(_)) => "the edge's answer did not match the bytes already written".into(),
                    Ok(Err(e)) => format!("the edge answered {e}"),
                    Err(cut) => {
                        self.link = Link::None;
                        format!("the line was lost: {cut}")
                    }
                };
                tracing::warn!(server = %key.0, uidl = %key.1.uidl, written = fed, why,
                    "a reply broke off after its +OK; closing the mail client's connection \
                     (it keeps the message unread and asks again next time)");
                self.abandon("a reply broke off after its +OK").await;
                return Ok(Passed::BrokeOff);
            }
        };
        if passing.delivers && self.config.broken(Broken::ReadMarkBeforeWrite) {
            self.unconfirmed.push(key.clone());
            self.confirm().await;
        }
        let mut out = Vec::new();
        encoder.feed(&body[fed..], &mut out);
        encoder.finish(&mut out);
        if let Err(e) = self.write_reply(&out).await {
            tracing::info!(error = %e, "the mail client did not take the whole message");
            return Err(Gone);
        }
        Ok(Passed::Written)
    }
}
