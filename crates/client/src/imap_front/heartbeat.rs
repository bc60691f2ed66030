//! Waiting on the line while the mail client waits on us.
//!
//! A message fetched or stored across a slow line takes minutes, and mail
//! clients time out on silence (mbsync after 20 s by default). So while
//! such work runs the client is told every `heartbeat` that it goes on, in
//! an untagged `OK`, which RFC 3501 §7.1 allows at any time. Nothing of the
//! command's own responses has been written yet (imap-next writes them
//! after it), so the line goes out whole, between responses.
//!
//! Meanwhile the mail client's socket is read too: commands it pipelines
//! go to imap-next's `server` in order, and a client that hangs up (the end
//! of its stream, or a reset) ends the wait at once. Its session then ends
//! as after a failed write, and lets go of the maildrops behind it;
//! otherwise they stayed locked until every fetch it had pipelined before
//! hanging up had crossed the line (seed 625 `--focus proxy-and-mua`: the
//! user's next login met `[INUSE]`).

use std::future::Future;
use std::time::Duration;

use causeway_imap::imap_next::State as _;
use causeway_imap::imap_next::server::Server;
use causeway_net::Env;
use tokio::io::AsyncReadExt;

use super::commands::Front;

/// The mail client hung up while the work ran.
pub(super) struct ClientGone;

/// How to keep one mail client patient.
pub(super) struct Heartbeat<'a, E: Env> {
    env: E,
    mail: &'a mut E::Stream,
    server: &'a mut Server,
    /// How often the client hears that the work goes on.
    every: Duration,
    /// The silence allowed writing to it.
    request: Duration,
}

impl<E: Env> Front<E> {
    /// The heartbeat of this session's mail client (`mail`, read through
    /// `server`): every half ping interval, writes within `request`.
    pub(super) fn heartbeat<'a>(
        &self,
        mail: &'a mut E::Stream,
        server: &'a mut Server,
    ) -> Heartbeat<'a, E> {
        Heartbeat {
            env: self.env.clone(),
            mail,
            server,
            every: self.heartbeat,
            request: self.request,
        }
    }
}

impl<E: Env> Heartbeat<'_, E> {
    /// Runs `work` to its end, saying `line` every [`Heartbeat::every`].
    pub async fn around<T>(
        self,
        line: &'static [u8],
        work: impl Future<Output = T>,
    ) -> Result<T, ClientGone> {
        tokio::pin!(work);
        let mut alive = true;
        let (mut scratch, mut taken) = ([0u8; 4096], 0);
        loop {
            tokio::select! {
                r = &mut work => return Ok(r),
                () = self.env.sleep(self.every), if alive => {
                    // A client that stopped reading is found out by the
                    // response itself; until then the work goes on.
                    alive = crate::session::write_to(&self.env, self.mail, self.request, line)
                        .await
                        .is_ok();
                }
                // Past that much pipelined, the rest waits in the socket.
                r = self.mail.read(&mut scratch), if taken < crate::session::EARLY_MAX => match r {
                    Ok(got) if got > 0 => {
                        taken += got;
                        self.server.enqueue_input(&scratch[..got]);
                    }
                    _ => return Err(ClientGone),
                },
            }
        }
    }
}
