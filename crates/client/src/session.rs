//! One mail client's connection: the thin async loop around [`Front`].
//!
//! It reaches the edge (connection and handshake) before it greets the mail
//! client: if the edge is out of reach the mail client is hung up on without
//! a greeting, which every mail client reports as a connection failure (a
//! `-ERR` greeting or a `-ERR` to PASS would count as a failed login; see
//! `docs/interop.md`). Then it reads command lines, hands them to the front,
//! and performs the actions the front returns: writing to the mail client,
//! opening the edge session, asking the edge, quitting. It also keeps the
//! idle line honest: while the mail client says nothing, it watches the
//! channel (EOF or a close from the edge) and pings the edge every
//! `ping_interval` (a silent line), so a lost line is noticed before the
//! next command, which then gets the line-cut error even if the front could
//! have answered it locally.
//!
//! A RETR reply counts as delivered (and the edge may mark the message read)
//! only once it was written and flushed *and* the mail client sent its next
//! command after that: proof that it took the whole reply. A mail client
//! that hangs up instead leaves the message unread, the safe direction.
//! "After" is after the reply's last byte left ([`write_proved`]): input
//! already waiting then was sent before the client could have all of it
//! (a pipelining client's next commands) and proves nothing.
//!
//! Every wait has a timeout, and each is on silence, never on size: writes
//! to the mail client (a piece at a time), the mail client's silence
//! (`client_idle`), and all waits on the edge (in [`crate::link`], which
//! also pings the edge while a long answer arrives).

use std::sync::Arc;

use causeway_net::{Env, Instant, Stream, shutdown_requested};
use causeway_pop3::{Command, CommandError, ServerCodec};
use causeway_proto::session::Op;
use causeway_proto::{ErrCode, OpError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::broken::Broken;
use crate::config::ClientConfig;
use crate::deletes::DeleteJournal;
use crate::front::{Action, Front};
use crate::link::{EdgeLink, LineCut, NotOpened, Reached};
use crate::login::LocalLogin;
use crate::mirror::Key;
use crate::shared::{Serving, Shared};

mod append;
mod passing;
use passing::Passed;

enum Link<E: Env> {
    /// No channel: the session has ended.
    None,
    /// Reached before the greeting; opened at PASS.
    Reached(Box<Reached<E>>),
    Open(Box<EdgeLink<E>>),
    /// The line was lost while the mail client was idle (or just after a
    /// reply was written): its next command gets the error.
    Cut(LineCut),
}

/// The mail client hung up while the proxy waited for the edge.
struct Gone;

/// Why the loop stopped waiting for a command.
enum End {
    /// The mail client closed the connection (or it failed).
    Gone(String),
    Idle,
    Shutdown,
}

struct Session<E: Env, M: Stream> {
    env: E,
    config: Arc<ClientConfig>,
    mail: M,
    codec: ServerCodec,
    front: Front,
    link: Link<E>,
    shared: Shared,
    _serving: Serving,
    shutdown: watch::Receiver<bool>,
    /// RETR replies written and flushed whose bodies await the mail
    /// client's next command, the proof that it took them whole.
    unconfirmed: Vec<Key>,
}

/// How long a partial batch of read marks and deletes waits for company
/// while the mail client is quiet.
const MARKS_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Whom a session serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serves {
    /// A POP3 mail client.
    Pop3Client,
    /// The IMAP front, in process: `XAPPEND` is served too.
    ImapFront,
}

/// Serves one mail client until it quits, goes away, or the line is cut.
pub(crate) async fn serve<E: Env, M: Stream>(
    env: E,
    mail: M,
    config: Arc<ClientConfig>,
    shared: Shared,
    shutdown: watch::Receiver<bool>,
    serves: Serves,
) {
    let serving = shared.serving();
    let login = LocalLogin {
        user: config.user.clone(),
        password: config.password.clone(),
    };
    let names = config.servers.iter().map(|s| s.name.clone()).collect();
    let reached = match EdgeLink::reach(&env, &config).await {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(reason = %why,
                "the edge is out of reach: hanging up on the mail client without a greeting, \
                 which it reports as a connection failure and retries later");
            return;
        }
    };
    let mut s = Session {
        env,
        config,
        mail,
        codec: ServerCodec::new(),
        front: match serves {
            Serves::Pop3Client => Front::new(login, names),
            Serves::ImapFront => Front::new(login, names).serving_imap(),
        },
        link: Link::Reached(Box::new(reached)),
        shared,
        _serving: serving,
        shutdown,
        unconfirmed: Vec::new(),
    };
    if s.write(&Front::greeting()).await.is_err() {
        s.abandon("the mail client went away before the greeting")
            .await;
        return;
    }
    loop {
        let cmd = match s.next_command().await {
            Ok(cmd) => cmd,
            Err(end) => return s.end(end).await,
        };
        if let Link::Cut(cut) = &s.link {
            let reply = Front::line_cut(&cut.why);
            let _ = s.write(&reply).await;
            return;
        }
        let action = s.front.command(cmd);
        if !s.perform(action).await {
            return;
        }
    }
}

impl<E: Env, M: Stream> Session<E, M> {
    /// Writes to the mail client and flushes, a piece at a time: a mail
    /// client that stops reading for `request` is given up on, one that
    /// reads slowly is not.
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        write_to(
            &self.env,
            &mut self.mail,
            self.config.timeouts.request,
            bytes,
        )
        .await
    }

    /// Writes a RETR's reply ([`write_proved`]): what the mail client sent
    /// before it could have all of it goes to the codec, proving nothing.
    async fn write_reply(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut early = Vec::new();
        let within = self.config.timeouts.request;
        let written = write_proved(&self.env, &mut self.mail, within, bytes, &mut early).await;
        self.codec.feed(&early);
        written
    }

    /// The next command line; meanwhile takes in the body stream, pings the
    /// edge when due and sends read marks that waited long enough.
    async fn next_command(&mut self) -> Result<Result<Command, CommandError>, End> {
        let t = self.config.timeouts.clone();
        let idle_until = self.env.now() + t.client_idle;
        let mut marks_at = None;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(cmd) = self.codec.next_command() {
                return Ok(cmd);
            }
            let pinging = matches!(self.link, Link::Open(_));
            // Due once we have sent the edge nothing for a ping interval,
            // however busy the mail client is: commands answered here (the
            // mirror, the delete journal) say nothing to the edge, which
            // takes a silent line for a cut.
            let now = self.env.now();
            let ping_at = match &mut self.link {
                Link::Open(l) => l.quiet_since(now) + t.ping_interval,
                _ => now + t.ping_interval,
            };
            let marking = match &self.link {
                Link::Open(l) if l.batched_pending() => {
                    *marks_at.get_or_insert(self.env.now() + MARKS_DELAY)
                }
                _ => {
                    marks_at = None;
                    idle_until
                }
            };
            tokio::select! {
                // A cut that already happened must win over a command that
                // arrived with it: that command gets the error.
                biased;
                m = next_message(&mut self.link) => {
                    let taken = match (m, &mut self.link) {
                        (Ok(m), Link::Open(link)) => link.unsolicited(m).await,
                        (Ok(_), _) => Ok(()),
                        (Err(cut), _) => Err(cut),
                    };
                    let taken = match (taken, &mut self.link) {
                        (Err(cut), Link::Open(link)) => link.resume(cut).await,
                        (taken, _) => taken,
                    };
                    if let Err(cut) = taken {
                        tracing::warn!(reason = %cut, "line to the edge lost while the mail client was idle");
                        self.link = Link::Cut(cut);
                    }
                }
                r = self.mail.read(&mut buf) => match r {
                    Ok(0) => return Err(End::Gone("the mail client closed the connection".into())),
                    Ok(n) => {
                        self.codec.feed(&buf[..n]);
                        self.confirm().await;
                    }
                    Err(e) => return Err(End::Gone(format!("reading from the mail client failed: {e}"))),
                },
                _ = self.env.sleep(left(&self.env, ping_at)), if pinging => {
                    self.ping().await;
                }
                _ = self.env.sleep(left(&self.env, marking)), if marks_at.is_some() => {
                    marks_at = None;
                    if let Link::Open(link) = &mut self.link {
                        if let Err(cut) = link.send_batched().await {
                            tracing::warn!(reason = %cut, "line to the edge lost while sending read marks and deletes");
                            self.link = Link::Cut(cut);
                        }
                    }
                }
                _ = self.env.sleep(left(&self.env, idle_until)) => return Err(End::Idle),
                _ = shutdown_requested(&mut self.shutdown) => return Err(End::Shutdown),
            }
        }
    }

    /// The mail client sent something after the replies in `unconfirmed`
    /// were flushed: it took them whole; their read marks may go.
    async fn confirm(&mut self) {
        for key in std::mem::take(&mut self.unconfirmed) {
            if let Link::Open(link) = &mut self.link {
                if let Err(cut) = link.delivered(key).await {
                    // The next command hears of the cut.
                    tracing::warn!(reason = %cut, "line to the edge lost while confirming a delivery");
                    self.link = Link::Cut(cut);
                }
            }
            if self.config.broken(Broken::BreakAfterDelivery) {
                self.abandon("a broken proxy ends its session after each delivery")
                    .await;
                self.link = Link::Cut(LineCut::lost("broken variant"));
            }
        }
    }

    async fn ping(&mut self) {
        if let Link::Open(link) = &mut self.link {
            if let Err(cut) = link.ping().await {
                tracing::warn!(reason = %cut, "line to the edge lost while the mail client was idle");
                self.link = Link::Cut(cut);
            }
        }
    }

    fn link(&mut self) -> Result<&mut EdgeLink<E>, LineCut> {
        match &mut self.link {
            Link::Open(link) => Ok(link),
            Link::Cut(cut) => Err(cut.clone()),
            Link::None | Link::Reached(_) => Err(LineCut::lost("no session with the edge is open")),
        }
    }

    /// Performs `action` and what follows from it. False: the session is over.
    async fn perform(&mut self, mut action: Action) -> bool {
        let t = self.config.timeouts.clone();
        // The body a following `Deliver` writes.
        let mut last_key = None;
        loop {
            action = match action {
                Action::Reply(bytes) => {
                    return match self.write(&bytes).await {
                        Ok(()) => true,
                        Err(e) => {
                            self.gone(&format!("writing to the mail client failed: {e}"))
                                .await
                        }
                    };
                }
                Action::Close(bytes) => {
                    let _ = self.write(&bytes).await;
                    self.abandon("the session ended with an error to the mail client")
                        .await;
                    return false;
                }
                Action::Later(after, then) => {
                    self.env.sleep(after).await;
                    *then
                }
                Action::Open => {
                    let shown = self.config.broken(Broken::PendingDeletesShown);
                    let journal = self.shared.deletes.clone().filter(|_| !shown);
                    let mark = journal.as_ref().map(DeleteJournal::mark);
                    match self.open().await {
                        Ok((link, mut listings)) => {
                            self.link = Link::Open(Box::new(link));
                            if let (Some(journal), Some(mark)) = (&journal, &mark) {
                                journal.hide_pending(&mut listings, mark);
                            }
                            self.front.opened(Ok(listings))
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not open a session with the edge");
                            self.front.opened(Err(e))
                        }
                    }
                }
                Action::Hangup(why) => {
                    tracing::warn!(reason = %why,
                        "hanging up on the mail client without a reply: it reports a connection \
                         failure and tries again later (a -ERR here would count as a wrong password)");
                    self.abandon("the session could not be opened").await;
                    return false;
                }
                Action::Ask { requests, then } => {
                    let mut answers = Vec::with_capacity(requests.len());
                    for r in &requests {
                        let asked = match (&r.op, self.front.passing(&then)) {
                            (Op::Retr { msg }, Some(passing)) => {
                                let key = (r.server.clone(), msg.clone());
                                let delivers = passing.delivers;
                                match self.ask_passing_on(r, key.clone(), passing).await {
                                    Ok(Passed::Unwritten(asked)) => Ok(asked),
                                    Ok(Passed::Written) => {
                                        // A RETR's body is delivered once
                                        // the mail client's next command
                                        // shows it took it.
                                        if delivers {
                                            self.unconfirmed.push(key);
                                        }
                                        return true;
                                    }
                                    Ok(Passed::BrokeOff) => return false,
                                    Err(Gone) => Err(Gone),
                                }
                            }
                            _ => self.ask_watching(r).await,
                        };
                        let asked = match asked {
                            Ok(asked) => asked,
                            Err(Gone) => {
                                return self
                                    .gone("the mail client closed the connection mid-command")
                                    .await;
                            }
                        };
                        match asked {
                            Ok(answer) => {
                                if let Op::Retr { msg } = &r.op {
                                    last_key = Some((r.server.clone(), msg.clone()));
                                }
                                answers.push(answer);
                            }
                            Err(cut) => return self.cut(cut).await,
                        }
                    }
                    self.front.answered(then, answers)
                }
                Action::Deliver(bytes) => {
                    if self.config.broken(Broken::ReadMarkBeforeWrite) {
                        self.unconfirmed.extend(last_key.take());
                        self.confirm().await;
                        if let Link::Open(link) = &mut self.link {
                            let _ = link.send_batched().await;
                        }
                    }
                    if let Err(e) = self.write_reply(&bytes).await {
                        return self
                            .gone(&format!(
                                "the mail client did not take the whole message: {e}"
                            ))
                            .await;
                    }
                    // Delivered once the mail client's next command shows it
                    // took the reply (see the module docs).
                    self.unconfirmed.extend(last_key);
                    return true;
                }
                Action::Sync(bytes) => {
                    let synced = match self.link() {
                        Ok(link) => link.sync().await,
                        Err(cut) => Err(cut),
                    };
                    if let Err(cut) = synced {
                        return self.cut(cut).await;
                    }
                    Action::Reply(bytes)
                }
                Action::Append {
                    server,
                    octets,
                    flags,
                } => return self.append(server, octets, flags).await,
                Action::Quit => {
                    let quitted = match std::mem::replace(&mut self.link, Link::None) {
                        Link::Open(link) => link.quit(t.quit).await,
                        Link::Cut(cut) => Err(cut),
                        Link::None | Link::Reached(_) => {
                            Err(LineCut::lost("no session with the edge is open"))
                        }
                    };
                    match quitted {
                        Ok(outcomes) => self.front.bye(&outcomes),
                        Err(cut) => return self.cut(cut).await,
                    }
                }
            }
        }
    }

    /// Asks the edge while watching the mail client: one that hangs up
    /// meanwhile (a mail client giving up on a slow RETR) ends the wait at
    /// once, so the session's server locks are freed now and not when the
    /// body has crossed the line; what it sends meanwhile (pipelined
    /// commands) is kept for later.
    async fn ask_watching(
        &mut self,
        r: &crate::front::Request,
    ) -> Result<Result<Result<causeway_proto::session::Reply, OpError>, LineCut>, Gone> {
        if let Err(cut) = self.link() {
            return Ok(Err(cut));
        }
        let Link::Open(link) = &mut self.link else {
            unreachable!("link() found it open")
        };
        let (mail, codec) = (&mut self.mail, &mut self.codec);
        let ask = link.ask(r);
        tokio::pin!(ask);
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                asked = &mut ask => return Ok(asked),
                read = mail.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return Err(Gone),
                    Ok(n) => codec.feed(&buf[..n]),
                },
            }
        }
    }

    /// The line was lost during a command: it gets the error, and we end.
    async fn cut(&mut self, cut: LineCut) -> bool {
        tracing::warn!(reason = %cut, "line to the edge lost during a command");
        self.link = Link::None;
        let reply = Front::line_cut(&cut.why);
        let _ = self.write(&reply).await;
        false
    }

    /// The mail client went away mid-command.
    async fn gone(&mut self, why: &str) -> bool {
        tracing::info!(why, "mail client gone");
        self.abandon(why).await;
        false
    }

    async fn end(mut self, end: End) {
        match end {
            End::Gone(why) => {
                if self.front.in_transaction() {
                    tracing::info!(why, "mail client left without QUIT");
                }
                self.abandon(&format!("{why} without QUIT")).await;
            }
            End::Idle => {
                let _ = self.write(b"-ERR Disconnected for inactivity.\r\n").await;
                self.abandon("the mail client was idle too long").await;
            }
            End::Shutdown => self.abandon("the client proxy is shutting down").await,
        }
    }

    /// Opens the edge session on the channel reached before the greeting,
    /// or on a fresh one if the edge dropped that meanwhile (it waits only so
    /// long for a `Hello`).
    async fn open(
        &mut self,
    ) -> Result<(EdgeLink<E>, Vec<causeway_proto::session::ServerListing>), OpError> {
        let early = match std::mem::replace(&mut self.link, Link::None) {
            Link::Reached(c) => Some(*c),
            _ => None,
        };
        if let Some(c) = early {
            match EdgeLink::open(&self.env, &self.config, &self.shared, None, c).await {
                Ok(opened) => return Ok(opened),
                Err(NotOpened::Refused(e)) => return Err(e),
                Err(NotOpened::Unreachable(why)) => {
                    tracing::info!(reason = %why, "the channel reached before the greeting is gone; reaching the edge again");
                }
            }
        }
        let temporary = |why: String| OpError::new(Some(ErrCode::SysTemp), why);
        let c = EdgeLink::reach(&self.env, &self.config)
            .await
            .map_err(temporary)?;
        match EdgeLink::open(&self.env, &self.config, &self.shared, None, c).await {
            Ok(opened) => Ok(opened),
            Err(NotOpened::Refused(e)) => Err(e),
            Err(NotOpened::Unreachable(why)) => Err(temporary(why)),
        }
    }

    /// Ends the edge session without `Quit`, if one is open (a channel
    /// reached but never used is closed too).
    async fn abandon(&mut self, reason: &str) {
        match std::mem::replace(&mut self.link, Link::None) {
            Link::Open(link) => link.abandon(reason).await,
            Link::Reached(c) => {
                let within = self.config.timeouts.request;
                let _ = self
                    .env
                    .timeout(within, "closing the channel", c.close(reason))
                    .await;
            }
            Link::None | Link::Cut(_) => {}
        }
    }
}

/// Writes `bytes` to the mail client and flushes, each 64 KiB piece
/// within `within` (a deadline on progress, not on size).
pub(crate) async fn write_to<E: Env, M: Stream>(
    env: &E,
    mail: &mut M,
    within: std::time::Duration,
    bytes: &[u8],
) -> std::io::Result<()> {
    const PIECE: usize = 64 << 10;
    let what = "the mail client to take our reply";
    for piece in bytes.chunks(PIECE) {
        env.timeout(within, what, mail.write_all(piece)).await??;
    }
    env.timeout(within, what, mail.flush()).await?
}

/// Most input [`write_proved`] takes in while it holds a reply's last byte.
pub(crate) const EARLY_MAX: usize = 64 << 10;

/// Writes a reply whose arrival the mail client's next command is to
/// prove, as [`write_to`] does, but holds its last byte back until the
/// input already waiting has been read into `early`: what the mail client
/// sent before it could have the whole reply (a pipelining client's next
/// commands, in the socket while the reply was on its way) proves nothing
/// about that reply, and a client that then hangs up never took it (the
/// simulation's IMAP user that pipelines its fetches found this). What
/// arrives after the last byte went out may prove it. At most
/// [`EARLY_MAX`] bytes are taken in.
pub(crate) async fn write_proved<E: Env, M: Stream>(
    env: &E,
    mail: &mut M,
    within: std::time::Duration,
    bytes: &[u8],
    early: &mut Vec<u8>,
) -> std::io::Result<()> {
    let Some((last, head)) = bytes.split_last() else {
        return Ok(());
    };
    write_to(env, mail, within, head).await?;
    let mut buf = [0u8; 4096];
    while early.len() < EARLY_MAX {
        // Polled once, so only what is already there: a zero timeout
        // would wait for tokio's next timer tick (1 ms on every reply:
        // figure 6's RETR from the mirror went from 121 to 1,200 µs).
        let mut read = std::pin::pin!(mail.read(&mut buf));
        let ready = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match read.as_mut().poll(cx) {
                std::task::Poll::Ready(r) => Some(r),
                std::task::Poll::Pending => None,
            })
        })
        .await;
        match ready {
            Some(Ok(n)) if n > 0 => early.extend_from_slice(&buf[..n]),
            Some(Err(e)) => return Err(e),
            // Nothing waiting; or the end of the stream, which the next
            // read sees again.
            _ => break,
        }
    }
    write_to(env, mail, within, std::slice::from_ref(last)).await
}

/// The next message from the edge (never resolves if no session is open).
async fn next_message<E: Env>(
    link: &mut Link<E>,
) -> Result<causeway_proto::session::EdgeToClient, LineCut> {
    match link {
        Link::Open(l) => l.next_message().await,
        Link::None | Link::Reached(_) | Link::Cut(_) => std::future::pending().await,
    }
}

/// Time left until `at` (zero if past).
fn left<E: Env>(env: &E, at: Instant) -> std::time::Duration {
    at.saturating_duration_since(env.now())
}
