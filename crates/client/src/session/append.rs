//! `XAPPEND`: the IMAP front's APPEND, stored through the edge (see
//! `causeway_pop3::Command::Xappend` for the exchange).
//!
//! The go-ahead comes before the message, as for an IMAP synchronising
//! literal, so the message is read raw from the front, never through the
//! command codec (whose line cap would cut its long lines). While it
//! crosses the line, each piece is reported (`+OK [XPROGRESS] sent total`):
//! the front waits on silence, and a message with an attachment takes
//! minutes on a slow line. The outcome is the edge's, which says `Done`
//! only once the server said `OK`.

use causeway_net::{Env, Stream};
use causeway_pop3::command::{XPROGRESS, stored};
use causeway_pop3::server::write_status;
use causeway_pop3::{RespCode, Status, StatusLine};
use causeway_proto::session::Reply;
use tokio::io::AsyncReadExt;

use super::Session;
use crate::link::AppendStep;
use crate::replies;

impl<E: Env, M: Stream> Session<E, M> {
    /// Serves one `XAPPEND` the front has checked. False: the session is
    /// over.
    pub(super) async fn append(&mut self, server: String, octets: u32, flags: Vec<String>) -> bool {
        if self.codec.buffered() > 0 {
            // Sent before the go-ahead: the stream is out of step.
            return self
                .gone("the IMAP front sent a message before XAPPEND's go-ahead")
                .await;
        }
        if !self.say(&StatusLine::ok("Go ahead.")).await {
            return false;
        }
        let message = match self.read_message(octets as usize).await {
            Ok(m) => m,
            Err(why) => return self.gone(&why).await,
        };
        match self.link() {
            Ok(link) => link.start_append(server.clone(), flags, message),
            Err(cut) => return self.cut(cut).await,
        }
        let outcome = loop {
            let step = match self.link() {
                Ok(link) => link.append_step().await,
                Err(cut) => Err(cut),
            };
            match step {
                Ok(AppendStep::Sent(sent, total)) => {
                    let progress = StatusLine {
                        status: Status::Ok,
                        code: Some(RespCode::Other(XPROGRESS.into())),
                        text: format!("{sent} {total}").into_bytes(),
                    };
                    if !self.say(&progress).await {
                        return false;
                    }
                }
                Ok(AppendStep::Answered(answer)) => break answer,
                Err(cut) => return self.cut(cut).await,
            }
        };
        let line = match outcome {
            Ok(Reply::Stored { uidl }) => stored(uidl.as_deref()),
            Ok(_) => replies::err(
                Some(RespCode::SysTemp),
                "Causeway internal error: the edge answered APPEND with the wrong kind of reply",
            ),
            Err(e) => replies::server_err(&server, &e),
        };
        self.say(&line).await
    }

    /// Writes one status line. False (the session is over) if it could not.
    async fn say(&mut self, line: &StatusLine) -> bool {
        let mut out = Vec::new();
        write_status(&mut out, line);
        match self.write(&out).await {
            Ok(()) => true,
            Err(e) => {
                self.gone(&format!("writing to the IMAP front failed: {e}"))
                    .await
            }
        }
    }

    /// Exactly `octets` octets from the front, each read within the
    /// request timeout.
    async fn read_message(&mut self, octets: usize) -> Result<Vec<u8>, String> {
        let mut message = Vec::with_capacity(octets);
        let mut buf = vec![0u8; 16 << 10];
        let within = self.config.timeouts.request;
        while message.len() < octets {
            let want = (octets - message.len()).min(buf.len());
            let read = self
                .env
                .timeout(
                    within,
                    "XAPPEND's message",
                    self.mail.read(&mut buf[..want]),
                )
                .await;
            match read {
                Ok(Ok(n)) if n > 0 => message.extend_from_slice(&buf[..n]),
                Ok(Ok(_)) => return Err("the IMAP front hung up mid-message".into()),
                Ok(Err(e)) => return Err(format!("reading the message failed: {e}")),
                Err(_) => return Err("the IMAP front stopped sending its message".into()),
            }
        }
        Ok(message)
    }
}
