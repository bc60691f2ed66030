//! A message going up the line: the IMAP front's APPEND (a mail client's
//! sent mail and drafts), stored by the edge in a server's folder.
//!
//! Why in pieces: a message with an attachment takes minutes to cross a
//! slow line, and a line that is cut every few minutes would never carry it
//! in one frame. So it goes as `Upload` pieces of [`UPLOAD_PIECE`] bytes,
//! each a turn of [`EdgeLink::append_step`] (the session reports each one
//! to the front, which keeps its mail client patient). A cut is resumed:
//! `Resumed` says how many bytes of this request's message the edge holds,
//! and the pieces go on from there; no byte crosses twice.
//!
//! Then the `Append` request, with the id of the upload, asked again with
//! the same id after a cut: the edge stores the message once per id
//! (`serving::append` at the edge), and answers a repeat from what it
//! kept.

use causeway_net::Env;
use causeway_proto::OpError;
use causeway_proto::session::{ClientToEdge, Op, Reply, UPLOAD_PIECE};

use super::{EdgeLink, LineCut, send};
use crate::front::Request;

/// The message being uploaded, and for which request.
pub(super) struct Upload {
    id: u64,
    server: String,
    op: Op,
    message: Vec<u8>,
    /// Bytes the edge has (or will have, once the piece sent last arrives).
    sent: usize,
}

/// What one [`EdgeLink::append_step`] did.
#[derive(Debug)]
pub enum AppendStep {
    /// Bytes of the message the edge holds (of this many): the upload went
    /// on, or a resume said where it stands.
    Sent(u64, u64),
    /// The edge's answer: `Done` once the server stored the message.
    Answered(Result<Reply, OpError>),
}

impl<E: Env> EdgeLink<E> {
    /// Starts storing `message` in `server`'s folder with `flags`: call
    /// [`EdgeLink::append_step`] until it answers.
    pub fn start_append(&mut self, server: String, flags: Vec<String>, message: Vec<u8>) {
        let id = self.next_id();
        let op = Op::Append {
            flags,
            size: message.len() as u64,
        };
        self.upload = Some(Upload {
            id,
            server,
            op,
            message,
            sent: 0,
        });
    }

    /// One piece of the message up the line, or once all of it is up, the
    /// request and its answer. A cut is resumed (the `Err` is a cut that
    /// could not be).
    pub async fn append_step(&mut self) -> Result<AppendStep, LineCut> {
        let Some(u) = self.upload.as_mut() else {
            return Err(LineCut::broken("no message is being stored"));
        };
        let total = u.message.len();
        let sending = if u.sent < total {
            let end = total.min(u.sent + UPLOAD_PIECE);
            let piece = ClientToEdge::Upload {
                id: u.id,
                offset: u.sent as u64,
                data: u.message[u.sent..end].to_vec(),
            };
            u.sent = end;
            send(&self.env, &mut self.channel, &piece, self.request_timeout).await
        } else {
            let r = Request {
                server: u.server.clone(),
                op: u.op.clone(),
                expect: 0,
            };
            // Asked with the upload's id, again after a cut.
            self.in_flight = Some((u.id, r.server.clone(), r.op.clone()));
            match self.ask_edge(&r).await {
                Ok(answer) => {
                    self.in_flight = None;
                    self.upload = None;
                    return Ok(AppendStep::Answered(answer));
                }
                Err(cut) => Err(cut),
            }
        };
        if let Err(cut) = sending {
            self.resume(cut).await?;
        }
        let sent = self.upload.as_ref().map_or(0, |u| u.sent);
        Ok(AppendStep::Sent(sent as u64, total as u64))
    }

    /// After a resume: the edge holds `uploaded` (request id, bytes), so
    /// the upload goes on from there (from the start if the edge holds
    /// none of this request's message).
    pub(super) fn upload_resumed(&mut self, uploaded: Option<(u64, u64)>) {
        if let Some(u) = self.upload.as_mut() {
            u.sent = match uploaded {
                Some((id, held)) if id == u.id => {
                    usize::try_from(held).map_or(0, |h| h.min(u.message.len()))
                }
                _ => 0,
            };
        }
    }
}
