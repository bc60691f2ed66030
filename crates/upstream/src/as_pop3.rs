//! An IMAP server's folder (INBOX unless the server's entry names another)
//! served as a POP3 maildrop.
//!
//! Why: the edge, the relay and everything behind them (the ledger of owed
//! work, the crash journal, resume, the simulation's rules) speak POP3 to
//! mail servers, and their promises are stated in POP3 terms: a message is
//! read once RETR was committed by QUIT, deleted once DELE was, and RSET
//! undoes both. A user whose provider offers only IMAP gets the same
//! promises if the IMAP session keeps POP3's semantics exactly, the way
//! Dovecot's own POP3 server does on top of its IMAP storage:
//!
//! - The maildrop is the folder as SELECT found it (messages another client
//!   already flagged `\Deleted` left out), numbered 1..n for the whole
//!   session; another client's EXPUNGE never renumbers it (that message
//!   answers `-ERR` from then on).
//! - A message's UIDL is its IMAP UID and the folder's UIDVALIDITY, as
//!   Dovecot's POP3 writes them (`%08x` of each): owed work for a folder
//!   whose UIDVALIDITY changed names UIDLs that no longer exist, so it is
//!   never applied to the new folder's messages.
//! - RETR and TOP fetch with `BODY.PEEK[]`: nothing is marked on the
//!   server. DELE and RSET only change marks held here.
//! - QUIT commits, as POP3's UPDATE state does: `UID STORE +FLAGS.SILENT
//!   (\Seen)` for the messages retrieved and kept, `UID STORE ... (\Deleted)`
//!   and `UID EXPUNGE` for exactly the messages deleted (never a bare
//!   EXPUNGE), then LOGOUT. A refusal there answers QUIT with `-ERR`,
//!   which the edge already reads as "not committed": it redoes the work in
//!   a new session, by UIDL (marking read again changes nothing; a message
//!   already expunged is gone).
//! - `XSTORE n - \Seen` (the mail client marked the message unread) takes
//!   `\Seen` away on the server at once, and this session's own read mark
//!   with it: a RETR before it is not marked at QUIT.
//! - `XSEARCH field =text` (a text criterion of the mail client's SEARCH)
//!   runs `UID SEARCH CHARSET UTF-8` at once and answers the numbers of
//!   the maildrop's messages found (not one this session deleted).
//! - A session that ends without QUIT commits nothing, as in POP3; it still
//!   ends with LOGOUT when the connection allows.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use causeway_imap::ImapError;
use causeway_imap::command::Unsendable;
use causeway_imap::folder::Listed;
use causeway_imap::imap_types::core::AString;
use causeway_imap::imap_types::search::SearchKey;
use causeway_net::Env;
use causeway_pop3::command::stored;
use causeway_pop3::search::{Day, Sent, TextField, TextKey};
use causeway_pop3::{Command, RespCode, Response, StatusLine};
use causeway_proto::OpError;
use causeway_proto::session::ServerFlags;
use causeway_proto::user::ServerSpec;

use crate::connect::ServerTimeouts;
use crate::imap::ImapSession;
use crate::tls::ServerTls;

#[derive(Debug, Clone, Copy)]
struct Message {
    uid: NonZeroU32,
    size: u32,
    /// The system flags the server kept for it at SELECT.
    flags: ServerFlags,
    deleted: bool,
    retrieved: bool,
}

pub struct ImapAsPop3<E: Env> {
    session: ImapSession<E>,
    /// The folder selected, as the server's `LIST` names it.
    folder: String,
    uidvalidity: NonZeroU32,
    /// POP3 message n is `messages[n - 1]`.
    messages: Vec<Message>,
}

/// The UIDL a message is listed by: its UID and the folder's UIDVALIDITY,
/// so that a UIDL is never given to another message, even across a
/// UIDVALIDITY change.
fn uidl(uid: NonZeroU32, uidvalidity: NonZeroU32) -> String {
    format!("{:08x}{:08x}", uid.get(), uidvalidity.get())
}

/// What `XFLAGS` says of a message: the system flags as SELECT found them.
fn server_flags(m: &Listed) -> ServerFlags {
    let [answered, flagged, draft] = m.marks;
    let bits = [
        (m.seen, ServerFlags::SEEN),
        (answered, ServerFlags::ANSWERED),
        (flagged, ServerFlags::FLAGGED),
        (draft, ServerFlags::DRAFT),
    ];
    ServerFlags(bits.iter().filter(|(on, _)| *on).fold(0, |a, (_, b)| a | b))
}

fn ok(text: impl Into<Vec<u8>>) -> Response {
    Response {
        status: StatusLine::ok(text),
        body: None,
    }
}

fn multi(text: &str, body: Vec<u8>) -> Response {
    Response {
        status: StatusLine::ok(text),
        body: Some(body),
    }
}

fn err(text: impl Into<Vec<u8>>) -> Response {
    Response {
        status: StatusLine::err(None, text),
        body: None,
    }
}

/// The header and the first `lines` lines of the body (POP3 `TOP`).
fn top(message: &[u8], lines: u32) -> Vec<u8> {
    let body_at = memchr_blank_line(message).unwrap_or(message.len());
    let mut end = body_at;
    for _ in 0..lines {
        if end >= message.len() {
            break;
        }
        end = match message[end..].iter().position(|&b| b == b'\n') {
            Some(i) => end + i + 1,
            None => message.len(),
        };
    }
    message[..end].to_vec()
}

/// Where the body starts: after the first empty line.
fn memchr_blank_line(message: &[u8]) -> Option<usize> {
    if message.starts_with(b"\r\n") {
        return Some(2);
    }
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

impl<E: Env> ImapAsPop3<E> {
    /// Logs in and selects the entry's folder. Returns the session and a greeting
    /// for the relay to pass on (there is no POP3 greeting to relay).
    pub async fn open(
        env: &E,
        spec: &ServerSpec,
        tls: &ServerTls,
        timeouts: ServerTimeouts,
        max_message: usize,
    ) -> Result<(Self, StatusLine), OpError> {
        let session = ImapSession::open(env, spec, tls, timeouts, max_message).await?;
        let folder = session.folder();
        let Some(uidvalidity) = folder.uidvalidity else {
            let e = ImapError::Protocol(format!(
                "SELECT {} gave no UIDVALIDITY, so its UIDs cannot name messages across sessions",
                spec.folder
            ));
            let e = session.error(&e);
            let _ = session.logout().await;
            return Err(e);
        };
        let messages = folder
            .listed()
            .filter(|m| !m.deleted)
            .map(|m| Message {
                uid: m.uid,
                size: m.size,
                flags: server_flags(&m),
                deleted: false,
                retrieved: false,
            })
            .collect();
        let greeting = StatusLine::ok(format!(
            "{}: the IMAP folder {}, served as a POP3 maildrop by Causeway",
            spec.name, spec.folder
        ));
        Ok((
            Self {
                session,
                folder: spec.folder.clone(),
                uidvalidity,
                messages,
            },
            greeting,
        ))
    }

    fn uidl(&self, m: &Message) -> String {
        uidl(m.uid, self.uidvalidity)
    }

    /// Message `n`, unless it is not there or marked deleted.
    fn live(&self, n: u32) -> Result<(usize, Message), Response> {
        let i = (n as usize).wrapping_sub(1);
        match self.messages.get(i) {
            Some(m) if m.deleted => Err(err("Message is deleted.")),
            Some(m) => Ok((i, *m)),
            None => Err(err(format!("There's no message {n}."))),
        }
    }

    fn lines(&self, each: impl Fn(u32, &Message) -> String) -> Vec<u8> {
        let mut out = String::new();
        for (i, m) in self.messages.iter().enumerate() {
            if !m.deleted {
                out.push_str(&each(i as u32 + 1, m));
                out.push_str("\r\n");
            }
        }
        out.into_bytes()
    }

    /// A refusal is the server answering (`-ERR` to the command); anything
    /// else lost the session.
    fn answered(&self, e: ImapError) -> Result<Response, OpError> {
        match e {
            ImapError::Refused { .. } | ImapError::NoUidplus { .. } | ImapError::Unsendable(_) => {
                Ok(err(self.session.error(&e).text))
            }
            e => Err(self.session.error(&e)),
        }
    }

    /// Runs one POP3 command of the TRANSACTION state. `Ok` for any answer
    /// (`-ERR` too); `Err` when the IMAP session was lost.
    pub async fn execute(&mut self, cmd: &Command) -> Result<Response, OpError> {
        let r = match *cmd {
            Command::Stat => {
                let live = self.messages.iter().filter(|m| !m.deleted);
                let (n, size) = live.fold((0u32, 0u64), |(n, s), m| (n + 1, s + u64::from(m.size)));
                ok(format!("{n} {size}"))
            }
            Command::List(None) => multi("", self.lines(|n, m| format!("{n} {}", m.size))),
            Command::List(Some(n)) => match self.live(n) {
                Ok((_, m)) => ok(format!("{n} {}", m.size)),
                Err(r) => r,
            },
            Command::Uidl(None) => multi("", self.lines(|n, m| format!("{n} {}", self.uidl(m)))),
            Command::Uidl(Some(n)) => match self.live(n) {
                Ok((_, m)) => ok(format!("{n} {}", self.uidl(&m))),
                Err(r) => r,
            },
            Command::Retr(n) => return self.fetch(n, None).await,
            Command::Top { msg, lines } => return self.fetch(msg, Some(lines)).await,
            Command::Dele(n) => match self.live(n) {
                Ok((i, _)) => {
                    self.messages[i].deleted = true;
                    ok("Marked to be deleted.")
                }
                Err(r) => r,
            },
            Command::Rset => {
                for m in &mut self.messages {
                    m.deleted = false;
                }
                ok("")
            }
            Command::Noop => match self.session.noop().await {
                Ok(()) => ok(""),
                Err(e) => return self.answered(e),
            },
            Command::Capa => multi("", b"TOP\r\nUIDL\r\nRESP-CODES\r\n".to_vec()),
            Command::Xflags => multi("", self.lines(|n, m| format!("{n} {}", m.flags.0))),
            Command::Xstore {
                msg,
                add,
                ref flags,
            } => return self.store_flags(msg, add, flags).await,
            Command::Xsearch { ref key, .. } => return self.search(key).await,
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop { .. }
            | Command::Stls
            | Command::Xappend { .. }
            | Command::Quit => err("Not in the TRANSACTION state's commands here."),
        };
        Ok(r)
    }

    /// `APPEND` to the folder this maildrop serves. The message is not in
    /// this session's maildrop (a POP3 maildrop does not change while it is
    /// open); the next session lists it, by the UIDL the outcome names when
    /// the server said where it stored it (`APPENDUID` in the folder's
    /// UIDVALIDITY; see `causeway_pop3::command::XUIDL`).
    pub async fn append(&mut self, flags: &[String], message: &[u8]) -> Result<Response, OpError> {
        match self.session.append(&self.folder, flags, message).await {
            Ok(at) => {
                let uidl = at
                    .filter(|a| a.validity == self.uidvalidity)
                    .map(|a| uidl(a.uid, self.uidvalidity));
                Ok(Response {
                    status: stored(uidl.as_deref()),
                    body: None,
                })
            }
            Err(e) => self.answered(e),
        }
    }

    /// `XSTORE n ±flags`: flags the mail client stored on message `n`, set
    /// on the server now. Unlike a read mark or a delete this is not held
    /// for QUIT: a flag such as `\Flagged` promises nothing about delivery,
    /// storing it twice changes nothing, and the mail client was told it is
    /// stored only once the server said `OK`. A `\Seen` taken away (the
    /// mail client marked the message unread) also takes back this
    /// session's read mark, which QUIT would otherwise set again.
    async fn store_flags(
        &mut self,
        n: u32,
        add: bool,
        flags: &[Vec<u8>],
    ) -> Result<Response, OpError> {
        let (i, m) = match self.live(n) {
            Ok(found) => found,
            Err(r) => return Ok(r),
        };
        let Ok(mut flags) = flags
            .iter()
            .map(|f| String::from_utf8(f.clone()))
            .collect::<Result<Vec<_>, _>>()
        else {
            return Ok(err("A flag name is not ASCII."));
        };
        let before = flags.len();
        flags.retain(|f| !f.eq_ignore_ascii_case("\\Seen"));
        if flags.len() < before {
            if add {
                return Ok(err("A read mark is made by delivery, not by XSTORE."));
            }
            self.messages[i].retrieved = false;
            if let Err(e) = self.session.unmark_seen(&[m.uid]).await {
                return self.answered(e);
            }
        }
        if flags.is_empty() {
            return Ok(ok("Flags stored."));
        }
        match self.session.store_flags(&[m.uid], add, &flags).await {
            Ok(()) => Ok(ok("Flags stored.")),
            Err(e) => self.answered(e),
        }
    }

    /// `XSEARCH`: the messages of this maildrop that one text criterion
    /// matches, as the server searched them (`UID SEARCH`). A message the
    /// session deleted, or one that came after SELECT, is not named: it is
    /// not in the maildrop.
    async fn search(&mut self, key: &TextKey) -> Result<Response, OpError> {
        let key = match search_key(key) {
            Ok(key) => key,
            Err(e) => return Ok(err(e.to_string())),
        };
        let found: BTreeSet<NonZeroU32> = match self.session.search(key).await {
            Ok(uids) => uids.into_iter().collect(),
            Err(e) => return self.answered(e),
        };
        let mut numbers = String::new();
        for (i, m) in self.messages.iter().enumerate() {
            if !m.deleted && found.contains(&m.uid) {
                numbers.push_str(&format!("{}\r\n", i + 1));
            }
        }
        Ok(multi("", numbers.into_bytes()))
    }

    /// `RETR n` (`lines` None) or `TOP n lines`, fetched with BODY.PEEK[].
    async fn fetch(&mut self, n: u32, lines: Option<u32>) -> Result<Response, OpError> {
        let (i, m) = match self.live(n) {
            Ok(found) => found,
            Err(r) => return Ok(r),
        };
        let body = match self.session.fetch_body(m.uid).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return Ok(err(format!(
                    "Message {n} was removed from the server by another mail client."
                )));
            }
            Err(e) => return self.answered(e),
        };
        Ok(match lines {
            None => {
                self.messages[i].retrieved = true;
                multi(&format!("{} octets", body.len()), body)
            }
            Some(lines) => multi("", top(&body, lines)),
        })
    }

    /// `QUIT`: commits the read marks and deletes, then LOGOUT. `-ERR`
    /// (with `[SYS/TEMP]`) when the server refused part of the commit.
    pub async fn quit(mut self) -> Result<StatusLine, OpError> {
        let seen: Vec<NonZeroU32> = self
            .messages
            .iter()
            .filter(|m| m.retrieved && !m.deleted)
            .map(|m| m.uid)
            .collect();
        let deleted: Vec<NonZeroU32> = self
            .messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect();
        let mut refused = None;
        if !seen.is_empty() {
            if let Err(e) = self.session.mark_seen(&seen).await {
                refused = Some(self.answered(e)?);
            }
        }
        if refused.is_none() && !deleted.is_empty() {
            if let Err(e) = self.session.delete(&deleted).await {
                refused = Some(self.answered(e)?);
            }
        }
        let logout = self.session.logout().await;
        if let Some(r) = refused {
            return Ok(StatusLine::err(
                Some(RespCode::SysTemp),
                format!(
                    "Some changes were not committed: {}",
                    String::from_utf8_lossy(&r.status.text)
                ),
            ));
        }
        logout.map(|()| StatusLine::ok("Logging out."))
    }
}

/// The IMAP criterion of an `XSEARCH`.
fn search_key(key: &TextKey) -> Result<SearchKey<'static>, Unsendable> {
    let text = |s: &str| {
        AString::try_from(s.to_owned()).map_err(|_| Unsendable("a search text with a NUL"))
    };
    let value = || text(&key.value);
    let day = || {
        (Day::parse(&key.value))
            .and_then(|d| causeway_imap::command::search_day(d.year, d.month, d.day))
            .ok_or(Unsendable("a search day the calendar does not have"))
    };
    Ok(match &key.field {
        TextField::From => SearchKey::From(value()?),
        TextField::To => SearchKey::To(value()?),
        TextField::Cc => SearchKey::Cc(value()?),
        TextField::Bcc => SearchKey::Bcc(value()?),
        TextField::Subject => SearchKey::Subject(value()?),
        TextField::Body => SearchKey::Body(value()?),
        TextField::Text => SearchKey::Text(value()?),
        TextField::Header(name) => SearchKey::Header(text(name)?, value()?),
        TextField::Sent(Sent::Before) => SearchKey::SentBefore(day()?),
        TextField::Sent(Sent::On) => SearchKey::SentOn(day()?),
        TextField::Sent(Sent::Since) => SearchKey::SentSince(day()?),
    })
}

#[cfg(test)]
mod tests {
    use super::top;

    #[test]
    fn top_gives_the_header_and_the_first_lines() {
        let m = b"Subject: x\r\nFrom: y\r\n\r\none\r\ntwo\r\nthree";
        assert_eq!(top(m, 0), b"Subject: x\r\nFrom: y\r\n\r\n");
        assert_eq!(top(m, 2), b"Subject: x\r\nFrom: y\r\n\r\none\r\ntwo\r\n");
        assert_eq!(top(m, 9), m);
        assert_eq!(
            top(b"Subject: only a header\r\n", 3),
            b"Subject: only a header\r\n"
        );
        assert_eq!(top(b"\r\nbody\r\n", 0), b"\r\n");
    }
}
