//! A logged-in server session of either protocol, behind the POP3
//! interface every node uses (see [`crate::as_pop3`] for why an IMAP
//! server is served as a POP3 maildrop).

use causeway_net::Env;
use causeway_pop3::{Command, Response, StatusLine};
use causeway_proto::OpError;
use causeway_proto::user::{Protocol, ServerSpec};

use crate::as_pop3::ImapAsPop3;
use crate::connect::ServerTimeouts;
use crate::pop3::Pop3Session;
use crate::tls::ServerTls;

/// `execute` answers `Ok` for any reply (`-ERR` included) and `Err` when
/// the connection failed and the session is over.
pub enum ServerSession<E: Env> {
    Pop3(Box<Pop3Session<E>>),
    Imap(Box<ImapAsPop3<E>>),
}

impl<E: Env> ServerSession<E> {
    /// Connects to `spec`'s server in its protocol, with TLS as `spec.tls`
    /// says, and logs in. Returns the session and its greeting.
    pub async fn open(
        env: &E,
        spec: &ServerSpec,
        tls: &ServerTls,
        timeouts: ServerTimeouts,
        max_message: usize,
    ) -> Result<(Self, StatusLine), OpError> {
        match spec.protocol {
            Protocol::Pop3 => Pop3Session::open(env, spec, tls, timeouts, max_message)
                .await
                .map(|(s, g)| (ServerSession::Pop3(Box::new(s)), g)),
            Protocol::Imap => ImapAsPop3::open(env, spec, tls, timeouts, max_message)
                .await
                .map(|(s, g)| (ServerSession::Imap(Box::new(s)), g)),
        }
    }

    /// Runs one command. `Ok` for any answer (`-ERR` too); `Err` when the
    /// connection failed and this session is over.
    pub async fn execute(&mut self, cmd: &Command) -> Result<Response, OpError> {
        match self {
            ServerSession::Pop3(s) => match imap_only(cmd) {
                Some(why) => Ok(Response {
                    status: StatusLine::err(Some(causeway_pop3::RespCode::SysPerm), why),
                    body: None,
                }),
                None => s.execute(cmd).await,
            },
            ServerSession::Imap(s) => s.execute(cmd).await,
        }
    }

    /// `APPEND` to the entry's folder (see [`crate::Upstream::append`]).
    pub async fn append(&mut self, flags: &[String], message: &[u8]) -> Result<Response, OpError> {
        match self {
            ServerSession::Pop3(_) => Ok(Response {
                status: StatusLine::err(
                    Some(causeway_pop3::RespCode::SysPerm),
                    "this server speaks POP3, which cannot store a message (APPEND needs \
                     protocol = \"imap\")",
                ),
                body: None,
            }),
            ServerSession::Imap(s) => s.append(flags, message).await,
        }
    }

    /// `QUIT`: the server's answer (`-ERR` means it did not commit).
    pub async fn quit(self) -> Result<StatusLine, OpError> {
        match self {
            ServerSession::Pop3(s) => s.quit().await,
            ServerSession::Imap(s) => s.quit().await,
        }
    }
}

/// Why a POP3 server is never sent `cmd`, if it is one of Causeway's own
/// commands that need IMAP.
fn imap_only(cmd: &Command) -> Option<&'static str> {
    match cmd {
        Command::Xstore { .. } | Command::Xflags => Some(
            "this server speaks POP3, which keeps no flags (stored flags need protocol = \"imap\")",
        ),
        Command::Xsearch { .. } => Some(
            "this server speaks POP3, which cannot search (the edge reads its messages instead)",
        ),
        _ => None,
    }
}
