//! One POP3 session as a sans-IO state machine: commands in, reply bytes out.
//!
//! RFC 1939's three states are modelled as Dovecot behaves:
//!
//! - AUTHORIZATION: USER/PASS (APOP is refused), CAPA, QUIT. A wrong
//!   password and an unknown user get the same answer.
//! - TRANSACTION: the maildrop is a *snapshot* taken at login. Message
//!   numbers are fixed; mail delivered meanwhile shows up next session.
//!   DELE and RETR's seen flag are only *pending*; RSET forgets both.
//! - UPDATE, at QUIT: the pending changes reach the store, credited to this
//!   session. Any other end commits no deletion, and commits seen flags only
//!   if `seen_on_abrupt_close` says so (Dovecot with maildir does).
//!
//! Keeping the socket out of this type lets tests drive a session command by
//! command, and keeps the async driver (`server.rs`) about I/O and faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use causeway_pop3::server::{write_listing, write_multiline, write_status};
use causeway_pop3::{Command, CommandError, RespCode, StatusLine};

use crate::record::{EndKind, InjectedFault, SessionId};
use crate::store::{Commit, LoginRefused, MailStore, SnapMsg};
use crate::{LockPolicy, ServerConfig};

/// Longest excerpt of a command kept in the session's command log.
const LOGGED_COMMAND_MAX: usize = 80;

/// What to send back for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply, encoded (status line, and the dot-stuffed body if any).
    pub bytes: Vec<u8>,
    /// Wait this long before sending it (after a failed PASS).
    pub delay: Duration,
    /// Hang up after sending it. The session has already ended in the store.
    pub close: bool,
}

/// One POP3 session's protocol state, bound to a store.
///
/// Dropping a core that has not ended records a
/// [`EndKind::ServerShutdown`]: that is what happens to session tasks when a
/// simulated host crashes.
pub struct SessionCore {
    store: MailStore,
    config: Arc<ServerConfig>,
    id: SessionId,
    state: State,
    ended: bool,
}

enum State {
    Authorization { user: Option<String> },
    Transaction(Maildrop),
}

/// The logged-in view: the snapshot and the pending changes.
struct Maildrop {
    user: String,
    msgs: Vec<SnapMsg>,
    deleted: Vec<bool>,
    seen: Vec<bool>,
}

impl Maildrop {
    /// Message `n` (1-based) if it exists and is not marked deleted.
    fn pick(&self, n: u32) -> Result<usize, StatusLine> {
        let i = (n as usize).wrapping_sub(1);
        if n == 0 || i >= self.msgs.len() {
            return Err(StatusLine::err(None, format!("There's no message {n}.")));
        }
        if self.deleted[i] {
            return Err(StatusLine::err(None, "Message is deleted."));
        }
        Ok(i)
    }

    fn live(&self) -> impl Iterator<Item = (usize, &SnapMsg)> {
        self.msgs
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    fn marked(&self, flags: &[bool]) -> Vec<u32> {
        self.msgs
            .iter()
            .zip(flags)
            .filter(|(_, f)| **f)
            .map(|(m, _)| m.uid)
            .collect()
    }
}

impl SessionCore {
    /// Starts a session from `peer` (recorded in the store).
    /// Whether the configured faults are to be injected now.
    pub(crate) fn faults_enabled(&self) -> bool {
        self.store.faults_enabled()
    }

    pub fn new(store: MailStore, config: Arc<ServerConfig>, peer: SocketAddr, now_ms: u64) -> Self {
        let id = store.begin_session(peer, now_ms);
        Self {
            store,
            config,
            id,
            state: State::Authorization { user: None },
            ended: false,
        }
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The greeting to send first.
    pub fn greeting(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let text = format!("Causeway model POP3 on {} ready.", self.config.hostname);
        write_status(&mut out, &StatusLine::ok(text));
        out
    }

    pub(crate) fn record_fault(&self, fault: InjectedFault) {
        self.store.record_fault(self.id, fault);
    }

    /// True if `input` is a QUIT that would enter the UPDATE state.
    pub(crate) fn is_update(&self, input: &Result<Command, CommandError>) -> bool {
        !self.ended
            && matches!(self.state, State::Transaction(_))
            && matches!(input, Ok(Command::Quit))
    }

    /// The injected failure of the UPDATE state: `-ERR`, nothing committed
    /// (neither deletes nor read marks), and the session ends as the client
    /// asked, with its lock released.
    pub(crate) fn refuse_quit(&mut self, now_ms: u64) -> Reply {
        self.store.log_command(self.id, "QUIT".into());
        self.record_fault(InjectedFault::QuitRefused);
        self.end_with(EndKind::Quit, now_ms, false);
        status(
            StatusLine::err(None, "Some deleted messages not removed."),
            true,
        )
    }

    /// Answers one parsed command (or the codec's error for a bad line).
    /// After the session ended every input gets an empty reply that closes.
    pub fn handle(&mut self, input: Result<Command, CommandError>, now_ms: u64) -> Reply {
        if self.ended {
            return reply(Vec::new(), true);
        }
        self.store.log_command(self.id, describe(&input));
        let cmd = match input {
            Ok(cmd) => cmd,
            Err(CommandError::LineTooLong) => {
                // Dovecot's answer, and it hangs up: the rest of the line
                // cannot be trusted to be a command.
                self.end(EndKind::Abrupt, now_ms);
                return status(StatusLine::err(None, "Input line too long."), true);
            }
            Err(e) => return status(StatusLine::err(None, e.to_string()), false),
        };
        if cmd == Command::Capa {
            return self.capa();
        }
        match &mut self.state {
            State::Authorization { user } => match cmd {
                Command::User(name) => {
                    *user = Some(String::from_utf8_lossy(&name).into_owned());
                    status(StatusLine::ok(""), false)
                }
                Command::Pass(pw) => match user.take() {
                    None => status(StatusLine::err(None, "No username given."), false),
                    Some(name) => self.login(name, &pw, now_ms),
                },
                Command::Apop { .. } => status(
                    StatusLine::err(Some(RespCode::Auth), "APOP is not enabled."),
                    false,
                ),
                Command::Stls => status(StatusLine::err(None, "TLS support isn't enabled."), false),
                Command::Quit => {
                    self.end(EndKind::Quit, now_ms);
                    status(StatusLine::ok("Logging out."), true)
                }
                _ => status(StatusLine::err(None, "Unknown command."), false),
            },
            State::Transaction(md) => {
                let (line, body) = match transaction(md, &self.store, &self.config, &cmd) {
                    Ok(x) => x,
                    Err(e) => return status(e, false),
                };
                if cmd == Command::Quit {
                    self.end(EndKind::Quit, now_ms);
                    return status(line, true);
                }
                let mut out = Vec::new();
                match body {
                    Body::None => write_status(&mut out, &line),
                    Body::Bytes(b) => write_multiline(&mut out, &line, &b),
                    Body::Lines(ls) => write_listing(&mut out, &line, &ls),
                }
                reply(out, false)
            }
        }
    }

    fn capa(&self) -> Reply {
        let caps: Vec<Vec<u8>> = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "USER"]
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let mut out = Vec::new();
        write_listing(&mut out, &StatusLine::ok(""), &caps);
        reply(out, false)
    }

    fn login(&mut self, user: String, password: &[u8], now_ms: u64) -> Reply {
        if !self.store.password_ok(&user, password) {
            let mut r = status(
                StatusLine::err(Some(RespCode::Auth), "Authentication failed."),
                false,
            );
            r.delay = self.config.auth_failure_delay;
            return r;
        }
        let exclusive = matches!(self.config.lock, LockPolicy::Exclusive { .. });
        match self.store.login(self.id, &user, exclusive, now_ms) {
            Err(LoginRefused::Locked(holder)) => {
                tracing::debug!(session = %self.id, holder = %holder.session, "maildrop locked");
                status(
                    StatusLine::err(
                        Some(RespCode::InUse),
                        "Mailbox is locked by another POP3 session.",
                    ),
                    false,
                )
            }
            Ok(msgs) => {
                let n = msgs.len();
                self.state = State::Transaction(Maildrop {
                    user,
                    msgs,
                    deleted: vec![false; n],
                    seen: vec![false; n],
                });
                status(StatusLine::ok("Logged in."), false)
            }
        }
    }

    /// Ends the session (no-op if it already ended): commits what `kind`
    /// allows and releases or stales the lock.
    pub fn end(&mut self, kind: EndKind, now_ms: u64) {
        self.end_with(kind, now_ms, true);
    }

    /// [`SessionCore::end`]; without `update`, the UPDATE state failed and
    /// nothing is committed.
    fn end_with(&mut self, kind: EndKind, now_ms: u64, update: bool) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let mut commit = Commit::default();
        let mut stale_for = None;
        if let State::Transaction(md) = &self.state {
            let seen_too = kind == EndKind::Quit
                || (self.config.seen_on_abrupt_close
                    && matches!(kind, EndKind::Abrupt | EndKind::IdleTimeout));
            if seen_too && update {
                commit.seen = md.marked(&md.seen);
            }
            if kind == EndKind::Quit && update {
                commit.delete = md.marked(&md.deleted);
            }
            if let LockPolicy::Exclusive { stale_after_abrupt } = self.config.lock {
                stale_for = Some(match kind {
                    EndKind::Quit | EndKind::IdleTimeout => Duration::ZERO,
                    EndKind::Abrupt | EndKind::ServerShutdown => stale_after_abrupt,
                });
            }
        }
        let deleted = self
            .store
            .end_session(self.id, kind, now_ms, commit, stale_for);
        tracing::debug!(session = %self.id, %kind, deleted, "session ended");
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        if !self.ended {
            let now = self.store.last_seen_ms();
            self.end(EndKind::ServerShutdown, now);
        }
    }
}

enum Body {
    None,
    Bytes(Vec<u8>),
    Lines(Vec<Vec<u8>>),
}

/// A TRANSACTION-state command: the status line and body to send.
fn transaction(
    md: &mut Maildrop,
    store: &MailStore,
    config: &ServerConfig,
    cmd: &Command,
) -> Result<(StatusLine, Body), StatusLine> {
    let ok = |t: String| StatusLine::ok(t);
    Ok(match *cmd {
        Command::Stat => {
            let (n, size) = md.live().fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.size));
            (ok(format!("{n} {size}")), Body::None)
        }
        Command::List(None) => {
            let lines = md
                .live()
                .map(|(i, m)| format!("{} {}", i + 1, m.size).into_bytes())
                .collect::<Vec<_>>();
            (ok(format!("{} messages:", lines.len())), Body::Lines(lines))
        }
        Command::List(Some(n)) => {
            let i = md.pick(n)?;
            (ok(format!("{n} {}", md.msgs[i].size)), Body::None)
        }
        Command::Uidl(None) => {
            let lines = md
                .live()
                .map(|(i, m)| format!("{} {}", i + 1, m.uidl).into_bytes())
                .collect();
            (ok(String::new()), Body::Lines(lines))
        }
        Command::Uidl(Some(n)) => {
            let i = md.pick(n)?;
            (ok(format!("{n} {}", md.msgs[i].uidl)), Body::None)
        }
        Command::Retr(n) => {
            let i = md.pick(n)?;
            let body = fetch(md, i, store, config)?;
            md.seen[i] = true;
            (ok(format!("{} octets", body.len())), Body::Bytes(body))
        }
        Command::Top { msg, lines } => {
            let i = md.pick(msg)?;
            let body = fetch(md, i, store, config)?;
            (ok(String::new()), Body::Bytes(top(&body, lines)))
        }
        Command::Dele(n) => {
            let i = md.pick(n)?;
            md.deleted[i] = true;
            (ok("Marked to be deleted.".into()), Body::None)
        }
        Command::Noop => (ok(String::new()), Body::None),
        Command::Rset => {
            md.deleted.fill(false);
            md.seen.fill(false);
            (ok(String::new()), Body::None)
        }
        Command::Quit => {
            let text = if md.deleted.contains(&true) {
                "Logging out, messages deleted."
            } else {
                "Logging out."
            };
            (ok(text.into()), Body::None)
        }
        Command::User(_)
        | Command::Pass(_)
        | Command::Apop { .. }
        | Command::Stls
        | Command::Xappend { .. }
        | Command::Xstore { .. }
        | Command::Xflags
        | Command::Xsearch { .. } => {
            return Err(StatusLine::err(
                None,
                format!("Unknown command: {}", cmd.keyword()),
            ));
        }
        // Answered before the state split.
        Command::Capa => (ok(String::new()), Body::None),
    })
}

fn fetch(
    md: &Maildrop,
    i: usize,
    store: &MailStore,
    config: &ServerConfig,
) -> Result<Vec<u8>, StatusLine> {
    let m = &md.msgs[i];
    if m.size > config.max_message {
        return Err(StatusLine::err(
            Some(RespCode::SysPerm),
            format!(
                "Message is larger than this server hands out ({} > {} octets).",
                m.size, config.max_message
            ),
        ));
    }
    store
        .body_by_uid(&md.user, m.uid)
        .map(|b| b.to_vec())
        .ok_or_else(|| StatusLine::err(Some(RespCode::SysTemp), "Message vanished from the store."))
}

/// What `TOP n lines` answers, as Dovecot does: the header, the blank line
/// that ends it, and the first `lines` lines of the body. The header ends at
/// the first empty line, so a message that opens with one has an empty
/// header (its first paragraph is body); a message without one is all
/// header. Lines end with CRLF. The simulation judges every TOP the mail
/// client gets against this.
pub fn top(msg: &[u8], lines: u32) -> Vec<u8> {
    let mut end = 0;
    let mut in_body = false;
    let mut body_lines = 0;
    while end < msg.len() {
        if in_body && body_lines == lines {
            break;
        }
        let line_end = msg[end..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(msg.len(), |p| end + p + 2);
        if in_body {
            body_lines += 1;
        } else if line_end - end == 2 {
            in_body = true;
        }
        end = line_end;
    }
    msg[..end].to_vec()
}

/// The command as the session log shows it: protocol text, PASS and APOP
/// secrets replaced, bounded and printable.
fn describe(input: &Result<Command, CommandError>) -> String {
    let text = match input {
        Ok(Command::Pass(_)) => "PASS <redacted>".to_owned(),
        Ok(Command::Apop { name, .. }) => {
            format!("APOP {} <redacted>", String::from_utf8_lossy(name))
        }
        Ok(cmd) => {
            let mut out = Vec::new();
            cmd.encode(&mut out);
            String::from_utf8_lossy(&out).trim_end().to_owned()
        }
        Err(e) => format!("<refused: {e}>"),
    };
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(LOGGED_COMMAND_MAX)
        .collect()
}

fn status(line: StatusLine, close: bool) -> Reply {
    let mut out = Vec::new();
    write_status(&mut out, &line);
    reply(out, close)
}

fn reply(bytes: Vec<u8>, close: bool) -> Reply {
    Reply {
        bytes,
        delay: Duration::ZERO,
        close,
    }
}

#[cfg(test)]
mod tests;
