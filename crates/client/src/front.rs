//! The POP3 server the mail client talks to, as a state machine.
//!
//! Command in, [`Action`] out; no sockets, no clock. The driver
//! ([`crate::session`]) performs the action (write a reply, open the edge
//! session, ask the edge, quit) and feeds the outcome back. Keeping the
//! decisions here means every POP3 rule (which state allows what, what is
//! answered locally, when a DELE may be acknowledged, when a body counts as
//! delivered) is tested without a network.
//!
//! The rules that matter for mail safety:
//! - STAT/LIST/UIDL come from the [`Mailbox`] snapshot: no round trip.
//! - A DELE is answered `+OK` only after the edge answered `Done`, or the
//!   proxy's delete journal holds it (the driver decides; see
//!   `crate::deletes`); from then on it is owed. A message its server lists
//!   twice under one UIDL and size is never deleted.
//! - A RETR body is handed to the driver as [`Action::Deliver`]: the driver
//!   sends `Delivered` only once the whole reply is written. TOP is never
//!   delivered (it does not mark a message read on a POP3 server either).

use causeway_pop3::multiline::encode_body;
use causeway_pop3::search::TextKey;
use causeway_pop3::server::{write_listing, write_multiline, write_status};
use causeway_pop3::{Command, CommandError, RespCode, StatusLine};
use causeway_proto::OpError;
use causeway_proto::session::{MAX_APPEND, Op, Reply, ServerListing, ServerOutcome};

use crate::login::LocalLogin;
use crate::mailbox::{Entry, Mailbox, Missing};
use crate::replies;

/// After this many wrong passwords the connection is closed.
const MAX_FAILED_LOGINS: u32 = 3;

/// A wrong local password is answered only after this long (Dovecot's
/// `auth_failure_delay`), so a program on this machine guessing the local
/// password gets one try per delay per connection, and three per
/// connection.
pub const LOGIN_FAILURE_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// What CAPA announces. PIPELINING holds because commands are read from a
/// buffer and answered strictly in order, one at a time.
const CAPABILITIES: &[&str] = &[
    "TOP",
    "UIDL",
    "RESP-CODES",
    "PIPELINING",
    "USER",
    "IMPLEMENTATION Causeway",
];

/// What the driver must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the mail client.
    Reply(Vec<u8>),
    /// Write these bytes (if any), then end: close the mail client's
    /// connection and the edge session.
    Close(Vec<u8>),
    /// Close the mail client's connection without a word (the reason is for
    /// the log): what every mail client takes for a connection failure,
    /// where a `-ERR` to PASS would count as a failed login (see
    /// [`Front::opened`]).
    Hangup(String),
    /// The local login is right: open the edge session, then call
    /// [`Front::opened`].
    Open,
    /// Send these requests to the edge one after the other, then call
    /// [`Front::answered`] with `then` and the results in the same order.
    Ask {
        requests: Vec<Request>,
        then: Pending,
    },
    /// Write this RETR reply; only if all of it was written, tell the edge
    /// `Delivered` for the request that fetched it.
    Deliver(Vec<u8>),
    /// Make sure the edge has every read mark and delete sent so far
    /// ([`crate::link::EdgeLink::sync`]), then write these bytes: a `NOOP`
    /// answered `+OK` means the edge owes what came before it (the IMAP
    /// front answers a stored `\Seen` only after one).
    Sync(Vec<u8>),
    /// Send `Quit`, wait for `Bye`, then call [`Front::bye`].
    Quit,
    /// Wait this long, then perform the action: a wrong local password is
    /// answered after [`LOGIN_FAILURE_DELAY`].
    Later(std::time::Duration, Box<Action>),
    /// `XAPPEND` (the IMAP front's APPEND, see `crate::imap_front`): say go
    /// ahead, read `octets` octets of message, store them in `server`'s
    /// folder with `flags` (`crate::link::EdgeLink::start_append`), and
    /// answer with the outcome.
    Append {
        server: String,
        octets: u32,
        flags: Vec<String>,
    },
}

/// How to write a reply whose body arrives piece by piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passing {
    /// The status line.
    pub head: Vec<u8>,
    /// A RETR: the body, once written whole, awaits the mail client's next
    /// command to count as delivered.
    pub delivers: bool,
}

/// One request for the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub server: String,
    pub op: Op,
    /// Octets the answer may carry (for the body allowance of its timeout).
    pub expect: u64,
}

/// What to do with the edge's answers; opaque to the driver.
#[derive(Debug, PartialEq, Eq)]
pub struct Pending(Then);

#[derive(Debug, PartialEq, Eq)]
enum Then {
    Retr {
        server: String,
        size: u64,
    },
    /// `whole`: the line count covers the whole message, which is then
    /// asked for as a body stream (see [`Front::passing`]).
    Top {
        server: String,
        whole: bool,
    },
    Dele {
        server: String,
        n: u32,
    },
    Rset {
        servers: Vec<String>,
    },
    Store {
        server: String,
    },
    Search {
        servers: Vec<String>,
    },
}

enum State {
    Authorization { user: Option<Vec<u8>> },
    Transaction(Mailbox),
}

pub struct Front {
    login: LocalLogin,
    /// Configured server names, in order: the mailbox's numbering order.
    names: Vec<String>,
    state: State,
    failed_logins: u32,
    /// `XAPPEND` is served: the session is the IMAP front's, in process.
    xappend: bool,
}

fn reply(s: StatusLine) -> Action {
    Action::Reply(status(&s))
}

/// RETR's `+OK` line (the body follows).
fn retr_head(size: u64) -> Vec<u8> {
    status(&StatusLine::ok(format!("{size} octets")))
}

fn status(s: &StatusLine) -> Vec<u8> {
    let mut out = Vec::new();
    write_status(&mut out, s);
    out
}

fn ok(text: impl Into<Vec<u8>>) -> Action {
    reply(StatusLine::ok(text))
}

impl Front {
    pub fn new(login: LocalLogin, names: Vec<String>) -> Self {
        Front {
            login,
            names,
            state: State::Authorization { user: None },
            failed_logins: 0,
            xappend: false,
        }
    }

    /// Serves `XAPPEND` too: for the IMAP front's own session only, never
    /// for a POP3 mail client (POP3 has no APPEND).
    pub fn serving_imap(mut self) -> Self {
        self.xappend = true;
        self
    }

    /// The greeting, sent when the mail client connects.
    pub fn greeting() -> Vec<u8> {
        status(&StatusLine::ok("Causeway ready."))
    }

    /// True once the edge session is open (so the driver keeps it alive).
    pub fn in_transaction(&self) -> bool {
        matches!(self.state, State::Transaction(_))
    }

    /// The mail client sent a command line.
    pub fn command(&mut self, cmd: Result<Command, CommandError>) -> Action {
        let cmd = match cmd {
            Ok(c) => c,
            Err(e) => return reply(StatusLine::err(None, e.to_string())),
        };
        if let Command::Capa = cmd {
            let caps: Vec<Vec<u8>> = CAPABILITIES.iter().map(|c| c.as_bytes().to_vec()).collect();
            let mut out = Vec::new();
            write_listing(&mut out, &StatusLine::ok("Capability list follows"), &caps);
            return Action::Reply(out);
        }
        if let (
            Command::Xappend {
                server,
                octets,
                flags,
            },
            true,
            State::Transaction(_),
        ) = (&cmd, self.xappend, &self.state)
        {
            return self.append(server, *octets, flags);
        }
        if let (Command::Xstore { msg, add, flags }, true, State::Transaction(mailbox)) =
            (&cmd, self.xappend, &self.state)
        {
            return store(mailbox, *msg, *add, flags);
        }
        if let (Command::Xsearch { key, servers }, true, State::Transaction(mailbox)) =
            (&cmd, self.xappend, &self.state)
        {
            return search(mailbox, key, servers);
        }
        if let (Command::Xflags, true, State::Transaction(mailbox)) =
            (&cmd, self.xappend, &self.state)
        {
            // Only the messages whose server said: the IMAP front keeps
            // its own flags for the others.
            let lines = (mailbox.live())
                .filter_map(|(n, e)| Some(format!("{n} {}", e.flags?.0).into_bytes()));
            let mut out = Vec::new();
            write_listing(&mut out, &StatusLine::ok(""), &lines.collect::<Vec<_>>());
            return Action::Reply(out);
        }
        match &mut self.state {
            State::Authorization { user } => match cmd {
                Command::User(name) => {
                    *user = Some(name);
                    ok("")
                }
                Command::Pass(password) => {
                    let name = user.take();
                    self.pass(name, &password)
                }
                Command::Quit => Action::Close(status(&StatusLine::ok("Logging out."))),
                Command::Apop { .. } => reply(StatusLine::err(
                    None,
                    "APOP is not supported; use USER and PASS.",
                )),
                Command::Stls => reply(StatusLine::err(
                    None,
                    "STLS is not supported: this proxy serves only its own machine.",
                )),
                _ => reply(StatusLine::err(None, "Unknown command.")),
            },
            State::Transaction(mailbox) => transaction(mailbox, cmd),
        }
    }

    /// `XAPPEND`, checked: a configured server, a size within
    /// [`MAX_APPEND`], flags in UTF-8.
    fn append(&self, server: &[u8], octets: u32, flags: &[Vec<u8>]) -> Action {
        let Some(server) = self.names.iter().find(|n| n.as_bytes() == server) else {
            return reply(StatusLine::err(
                Some(RespCode::SysPerm),
                "No server of that name.",
            ));
        };
        if octets as usize > MAX_APPEND {
            return reply(StatusLine::err(
                Some(RespCode::SysPerm),
                format!("A message over {MAX_APPEND} octets is not stored."),
            ));
        }
        let Ok(flags) = flags.iter().map(|f| String::from_utf8(f.clone())).collect() else {
            return reply(StatusLine::err(None, "A flag that is not UTF-8."));
        };
        Action::Append {
            server: server.clone(),
            octets,
            flags,
        }
    }

    /// PASS, after `USER name` (if any); the name is used up either way.
    fn pass(&mut self, name: Option<Vec<u8>>, password: &[u8]) -> Action {
        let Some(name) = name else {
            return reply(StatusLine::err(None, "No username given."));
        };
        if self.login.accepts(&name, password) {
            return Action::Open;
        }
        self.failed_logins += 1;
        tracing::warn!(
            attempt = self.failed_logins,
            "the mail client presented a wrong local user name or password"
        );
        let refused = status(&StatusLine::err(
            Some(RespCode::Auth),
            "Authentication failed.",
        ));
        let answer = if self.failed_logins >= MAX_FAILED_LOGINS {
            Action::Close(refused)
        } else {
            Action::Reply(refused)
        };
        Action::Later(LOGIN_FAILURE_DELAY, Box::new(answer))
    }

    /// The edge session was opened (its listings) or not (why).
    ///
    /// A mail client reads any `-ERR` to PASS as a failed login, except
    /// `[IN-USE]` (measured: fetchmail counts an authentication failure and
    /// mails the user "password invalid" for `[SYS/TEMP]` and `[SYS/PERM]`;
    /// curl says "access denied"). So a failure that is temporary (the edge or
    /// every server unreachable for now) hangs up instead, which fetchmail,
    /// getmail6, curl and python's poplib all report as a connection error;
    /// a lock is `[IN-USE]`; and only what the user must fix (a server that
    /// refuses our stored password, an edge that refuses us) is `-ERR
    /// [SYS/PERM]`, naming the server.
    pub fn opened(&mut self, result: Result<Vec<ServerListing>, OpError>) -> Action {
        let listings = match result {
            Ok(l) => l,
            Err(e) if is_temporary(&e) => return Action::Hangup(e.to_string()),
            Err(e) => {
                return Action::Close(status(&replies::err(
                    e.code.map(replies::resp_code),
                    e.text,
                )));
            }
        };
        let (mailbox, unavailable) = Mailbox::build(&self.names, &listings);
        let errors: Vec<(String, OpError)> = unavailable
            .into_iter()
            .map(|u| (u.server, u.error))
            .collect();
        if mailbox.has_no_server() {
            if errors.iter().all(|(_, e)| is_temporary(e)) {
                let all: Vec<String> = errors.iter().map(|(s, e)| format!("{s}: {e}")).collect();
                return Action::Hangup(all.join("; "));
            }
            return Action::Close(status(&replies::servers_err("", &errors)));
        }
        for (server, error) in &errors {
            tracing::warn!(server, %error, "server unavailable; continuing with the others");
        }
        self.state = State::Transaction(mailbox);
        ok("Logged in.")
    }

    /// For a reply whose body may be written on as it arrives (see
    /// [`crate::tee`]): the status line [`Front::answered`] would put
    /// before the whole body, and whether the body counts as delivered
    /// (RETR) or not (a TOP of the whole message). `None` for any other
    /// request.
    pub fn passing(&self, then: &Pending) -> Option<Passing> {
        match &then.0 {
            Then::Retr { size, .. } => Some(Passing {
                head: retr_head(*size),
                delivers: true,
            }),
            Then::Top { whole: true, .. } => Some(Passing {
                head: status(&StatusLine::ok("")),
                delivers: false,
            }),
            _ => None,
        }
    }

    /// The edge answered the requests of an [`Action::Ask`], in order.
    pub fn answered(&mut self, then: Pending, answers: Vec<Result<Reply, OpError>>) -> Action {
        let State::Transaction(mailbox) = &mut self.state else {
            unreachable!("requests are only asked in TRANSACTION")
        };
        let mut answers = answers.into_iter();
        match then.0 {
            Then::Retr { server, size } => match body(answers.next(), &server, "RETR") {
                Ok(b) => {
                    let mut out = retr_head(size);
                    encode_body(&b, &mut out);
                    Action::Deliver(out)
                }
                Err(e) => reply(e),
            },
            Then::Top { server, .. } => match body(answers.next(), &server, "TOP") {
                Ok(b) => {
                    let mut out = Vec::new();
                    write_multiline(&mut out, &StatusLine::ok(""), &b);
                    Action::Reply(out)
                }
                Err(e) => reply(e),
            },
            Then::Search { servers } => found(mailbox, servers, answers),
            Then::Store { server } => match answers.next() {
                Some(Ok(Reply::Done)) => ok("Flags stored."),
                other => reply(replies::server_err(&server, &failure(other, "XSTORE"))),
            },
            Then::Dele { server, n } => match answers.next() {
                Some(Ok(Reply::Done)) => {
                    mailbox.mark_deleted(n);
                    ok("Marked to be deleted.")
                }
                other => reply(replies::server_err(&server, &failure(other, "DELE"))),
            },
            Then::Rset { servers } => {
                let mut undone = Vec::new();
                let mut errors = Vec::new();
                for server in servers {
                    match answers.next() {
                        Some(Ok(Reply::Done)) => undone.push(server),
                        other => errors.push((server, failure(other, "RSET"))),
                    }
                }
                if errors.is_empty() {
                    for server in &undone {
                        mailbox.undelete(server);
                    }
                    return ok("");
                }
                // A failed RSET ends the session. POP3 has no answer for
                // "undone on some servers, not on others", and even on one
                // server the edge may have undone more than the proxy could
                // record (its read marks, when the proxy's own journal then
                // failed). An -ERR that let the session go on would tell the
                // mail client that every delete and read still stands, which
                // may be false; closing tells it the truth: it does not know,
                // and its next session lists the mailbox as it is.
                let mut line = replies::servers_err("RSET failed for", &errors);
                let others = if undone.is_empty() {
                    String::new()
                } else {
                    format!("; undone on {}", undone.join(", "))
                };
                line.text.extend_from_slice(
                    format!("{others}; ending the session, reconnect to see the mailbox as it is")
                        .as_bytes(),
                );
                Action::Close(status(&line))
            }
        }
    }

    /// The edge's `Bye`: whether each server's work was committed.
    pub fn bye(&mut self, outcomes: &[ServerOutcome]) -> Action {
        let errors: Vec<(String, OpError)> = outcomes
            .iter()
            .filter_map(|o| o.result.clone().err().map(|e| (o.name.clone(), e)))
            .collect();
        let deleted = match &self.state {
            State::Transaction(mb) => mb.deleted_count(),
            State::Authorization { .. } => 0,
        };
        let line = if !errors.is_empty() {
            replies::servers_err("Some work was not committed:", &errors)
        } else if deleted > 0 {
            StatusLine::ok("Logging out, messages deleted.")
        } else {
            StatusLine::ok("Logging out.")
        };
        Action::Close(status(&line))
    }

    /// The reply to the current or next command once the line to the edge
    /// is lost; the driver then closes the connection.
    pub fn line_cut(reason: &str) -> Vec<u8> {
        status(&replies::line_cut(reason))
    }
}

/// A failure a retry may fix and that no mail client should count as a
/// failed login (a busy lock has a code of its own, `[IN-USE]`).
fn is_temporary(e: &OpError) -> bool {
    matches!(
        e.code,
        None | Some(causeway_proto::ErrCode::SysTemp) | Some(causeway_proto::ErrCode::LoginDelay)
    )
}

fn transaction(mailbox: &Mailbox, cmd: Command) -> Action {
    match cmd {
        Command::Stat => {
            let (n, octets) = mailbox.stat();
            ok(format!("{n} {octets}"))
        }
        Command::List(None) => listing(mailbox, format!("{} messages:", mailbox.stat().0), |e| {
            e.size().to_string()
        }),
        Command::List(Some(n)) => with_message(mailbox, n, |e| ok(format!("{n} {}", e.size()))),
        Command::Uidl(None) => listing(mailbox, String::new(), |e| e.shown.clone()),
        Command::Uidl(Some(n)) => with_message(mailbox, n, |e| ok(format!("{n} {}", e.shown))),
        // Refused here, not by the edge: a proxy with a delete journal
        // acknowledges DELE without asking the edge, and a body this proxy
        // kept from a session whose listing had one message of this UIDL
        // and size may be either of them now.
        Command::Dele(n) | Command::Retr(n) | Command::Top { msg: n, .. }
            if mailbox.get(n).is_ok_and(|e| mailbox.ambiguous(e)) =>
        {
            let e = mailbox.get(n).expect("checked above");
            reply(StatusLine::err(
                Some(RespCode::SysPerm),
                format!(
                    "Server {} lists more than one message as {} of {} octets; Causeway will \
                     not fetch, delete or mark them until the server's UIDLs are fixed.",
                    mailbox.server_name(e),
                    e.id.uidl,
                    e.size()
                ),
            ))
        }
        Command::Retr(n) => ask_one(mailbox, n, |e, server| {
            (
                Op::Retr { msg: e.id.clone() },
                Then::Retr {
                    server,
                    size: e.size(),
                },
            )
        }),
        // A TOP whose line count is at least the message's size in octets
        // asks for all of it (fetchmail reads with `TOP n 99999999`): that
        // is the whole body, which then streams like a RETR's and is
        // written on as it arrives. It is still a TOP: never reported
        // delivered, never marked read.
        Command::Top { msg, lines } => ask_one(mailbox, msg, |e, server| {
            let msg = e.id.clone();
            if u64::from(lines) >= e.size() {
                (
                    Op::Retr { msg },
                    Then::Top {
                        server,
                        whole: true,
                    },
                )
            } else {
                (
                    Op::Top { msg, lines },
                    Then::Top {
                        server,
                        whole: false,
                    },
                )
            }
        }),
        Command::Dele(n) => ask_one(mailbox, n, |e, server| {
            (Op::Dele { msg: e.id.clone() }, Then::Dele { server, n })
        }),
        Command::Rset => {
            let servers = mailbox.servers_with_deletes();
            if servers.is_empty() {
                return ok("");
            }
            let requests = servers
                .iter()
                .map(|s| Request {
                    server: s.clone(),
                    op: Op::Rset,
                    expect: 0,
                })
                .collect();
            Action::Ask {
                requests,
                then: Pending(Then::Rset { servers }),
            }
        }
        Command::Noop => Action::Sync(status(&StatusLine::ok(""))),
        Command::Quit => Action::Quit,
        other => reply(StatusLine::err(
            None,
            format!("Unknown command: {}", other.keyword()),
        )),
    }
}

/// `XSTORE`: the IMAP front's flags for message `n`, stored on its server.
fn store(mailbox: &Mailbox, n: u32, add: bool, flags: &[Vec<u8>]) -> Action {
    let Ok(flags) = flags
        .iter()
        .map(|f| String::from_utf8(f.clone()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return reply(StatusLine::err(None, "A flag that is not UTF-8."));
    };
    ask_one(mailbox, n, |e, server| {
        let msg = e.id.clone();
        (Op::Store { msg, add, flags }, Then::Store { server })
    })
}

/// `XSEARCH`: the IMAP front's text criterion, asked of the servers it
/// names (every server if none) that have a message here to find.
fn search(mailbox: &Mailbox, key: &TextKey, named: &[String]) -> Action {
    let servers: Vec<String> = (mailbox.servers().iter())
        .filter(|s| named.is_empty() || named.contains(s))
        .filter(|s| mailbox.has_live(s))
        .cloned()
        .collect();
    let requests = (servers.iter())
        .map(|s| Request {
            server: s.clone(),
            op: Op::Search { key: key.clone() },
            expect: 0,
        })
        .collect();
    Action::Ask {
        requests,
        then: Pending(Then::Search { servers }),
    }
}

/// The numbers of the messages the servers found, or the first server's
/// failure.
fn found(
    mailbox: &Mailbox,
    servers: Vec<String>,
    mut answers: impl Iterator<Item = Result<Reply, OpError>>,
) -> Action {
    let mut numbers = Vec::new();
    for server in servers {
        match answers.next() {
            Some(Ok(Reply::Found { msgs })) => numbers.extend(mailbox.numbers_of(&server, &msgs)),
            other => return reply(replies::server_err(&server, &failure(other, "XSEARCH"))),
        }
    }
    numbers.sort_unstable();
    let lines: Vec<Vec<u8>> = numbers.iter().map(|n| n.to_string().into_bytes()).collect();
    let mut out = Vec::new();
    write_listing(&mut out, &StatusLine::ok(""), &lines);
    Action::Reply(out)
}

/// `f(message n)`, or the Dovecot-like error for a number that names none.
fn with_message(mailbox: &Mailbox, n: u32, f: impl FnOnce(&Entry) -> Action) -> Action {
    match mailbox.get(n) {
        Ok(e) => f(e),
        Err(Missing::NoSuch) => reply(StatusLine::err(None, format!("There's no message {n}."))),
        Err(Missing::Deleted) => reply(StatusLine::err(None, "Message is deleted.")),
    }
}

/// One request about message `n` to its server.
fn ask_one(mailbox: &Mailbox, n: u32, make: impl FnOnce(&Entry, String) -> (Op, Then)) -> Action {
    with_message(mailbox, n, |e| {
        let server = mailbox.server_name(e).to_owned();
        let (op, then) = make(e, server.clone());
        Action::Ask {
            requests: vec![Request {
                server,
                op,
                expect: e.size(),
            }],
            then: Pending(then),
        }
    })
}

/// A multi-line LIST/UIDL answer: "n value" per message not deleted.
fn listing(mailbox: &Mailbox, head: String, value: impl Fn(&Entry) -> String) -> Action {
    let lines: Vec<Vec<u8>> = mailbox
        .live()
        .map(|(n, e)| format!("{n} {}", value(e)).into_bytes())
        .collect();
    let mut out = Vec::new();
    write_listing(&mut out, &StatusLine::ok(head), &lines);
    Action::Reply(out)
}

/// The body of a RETR/TOP answer, or the line to send instead.
fn body(
    answer: Option<Result<Reply, OpError>>,
    server: &str,
    what: &str,
) -> Result<Vec<u8>, StatusLine> {
    match answer {
        Some(Ok(Reply::Body(b))) => Ok(b),
        other => Err(replies::server_err(server, &failure(other, what))),
    }
}

/// Why an answer is not the one wanted: the edge's error, or a bug on the
/// edge (the wrong kind of reply, or none), reported as a temporary failure.
fn failure(answer: Option<Result<Reply, OpError>>, what: &str) -> OpError {
    let how = match answer {
        Some(Err(e)) => return e,
        Some(Ok(_)) => "with the wrong kind of reply",
        None => "without a reply",
    };
    OpError::new(
        Some(causeway_proto::ErrCode::SysTemp),
        format!("Causeway internal error: the edge answered {what} {how}"),
    )
}

#[cfg(test)]
mod tests;
