//! The IMAP front's maildrop: the proxy's own POP3 session (`crate::session`),
//! spoken to in process over an in-memory pipe.
//!
//! The POP3 session is where the client proxy keeps its promises: DELE is
//! acknowledged only once durable, a body counts as delivered (and may be
//! marked read) only when the next command proves the last reply was taken
//! whole, a lost line is an error and nothing more is done. The IMAP front
//! speaks to it as a mail client would, so every one of those rules holds
//! for IMAP without a second copy of them:
//!
//! - bodies are read with `TOP n 0` (the header) or `TOP n 4294967295` (all
//!   of it, which streams like a RETR and is never marked read);
//! - a read mark is a `RETR`, sent only when the IMAP client has earned it
//!   (it took a non-peek FETCH whole and spoke again, or it stored `\Seen`
//!   itself); for a stored `\Seen` a `NOOP` follows, answered once the
//!   edge owes the mark, and only then is the STORE answered;
//! - an EXPUNGE is one `DELE` per message, each acknowledged only once the
//!   POP3 session has it durably;
//! - LOGOUT is `QUIT`, and so is the end of an IMAP client that hangs up
//!   without it: in IMAP a change answered `OK` is done, logged out or not;
//!   a body it took without a later command proved nothing and is never
//!   marked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use causeway_net::Env;
use causeway_net::wait::Timeouts;
use causeway_pop3::ClientError;
use causeway_pop3::client::Pop3Client;
use causeway_pop3::search::TextKey;
use causeway_proto::session::ServerFlags;
use tokio::io::DuplexStream;
use tokio::sync::watch;

use crate::config::ClientConfig;
use crate::shared::Shared;

/// The pipe's buffer: a body streams through it a piece at a time.
const PIPE: usize = 64 << 10;

/// `TOP n ALL`: a line count no message reaches, so TOP gives all of it.
const ALL_LINES: u32 = u32::MAX;

pub(super) struct Maildrop<E: Env> {
    pop3: Pop3Client<E, DuplexStream>,
    /// When the session started (Unix milliseconds). Its listing is the
    /// edge's, taken later, when the edge logged in to the servers, and
    /// kept for the whole session: a message stored after this may be
    /// missing from it.
    opened_ms: u64,
}

impl<E: Env> Maildrop<E> {
    /// Starts the POP3 session and reads its greeting. `None` if it hung up
    /// first (the edge is out of reach; it has logged why).
    pub async fn open(
        env: &E,
        config: &Arc<ClientConfig>,
        shared: &Shared,
        shutdown: &watch::Receiver<bool>,
    ) -> Option<Self> {
        let opened_ms = env.unix_millis();
        let (ours, theirs) = tokio::io::duplex(PIPE);
        tokio::spawn(crate::session::serve(
            env.clone(),
            theirs,
            config.clone(),
            shared.clone(),
            shutdown.clone(),
            crate::session::Serves::ImapFront,
        ));
        let max = usize::try_from(config.prefetch.max_body).unwrap_or(usize::MAX);
        match Pop3Client::start(env.clone(), ours, silence(config), max).await {
            Ok((pop3, _greeting)) => Some(Maildrop { pop3, opened_ms }),
            Err(e) => {
                tracing::debug!(error = %e, "the POP3 session ended before its greeting");
                None
            }
        }
    }

    /// When the session started: a message stored since may be missing
    /// from its listing (`crate::uids::UidBook::number`).
    pub fn opened_ms(&self) -> u64 {
        self.opened_ms
    }

    /// `USER` and `PASS`: the local login, then the edge session.
    pub async fn login(&mut self, user: &[u8], password: &[u8]) -> Result<(), ClientError> {
        self.pop3.login(user, password).await
    }

    /// (POP3 message number, size, shown UIDL) of every message.
    pub async fn listing(&mut self) -> Result<Vec<(u32, u64, String)>, ClientError> {
        let sizes = self.pop3.list().await?;
        let uidls: BTreeMap<u32, String> = self.pop3.uidl().await?.into_iter().collect();
        sizes
            .into_iter()
            .map(|(n, size)| match uidls.get(&n) {
                Some(u) => Ok((n, size, u.clone())),
                None => Err(ClientError::Protocol(format!("message {n} has no UIDL"))),
            })
            .collect()
    }

    /// What the IMAP servers keep of each message's system flags, by
    /// number (`XFLAGS`; messages of a POP3 server are not named).
    pub async fn server_flags(&mut self) -> Result<BTreeMap<u32, ServerFlags>, ClientError> {
        let masks = self.pop3.xflags().await?.into_iter();
        Ok(masks.map(|(n, m)| (n, ServerFlags(m as u8))).collect())
    }

    /// The header of message `n` (with the blank line after it).
    pub async fn header(&mut self, n: u32) -> Result<Vec<u8>, ClientError> {
        self.pop3.top(n, 0).await
    }

    /// The whole of message `n`, not marked read.
    pub async fn whole(&mut self, n: u32) -> Result<Vec<u8>, ClientError> {
        self.pop3.top(n, ALL_LINES).await
    }

    /// Marks messages `ns` read: each is retrieved, and the POP3 session
    /// reports them delivered when its next command (the front's next
    /// operation, keep-alive or QUIT) shows the replies were taken whole.
    /// Returns the refusals (the message stays unread); a lost session is
    /// an error.
    pub async fn mark_read(&mut self, ns: &[u32]) -> Result<Vec<(u32, ClientError)>, ClientError> {
        let mut refused = Vec::new();
        for &n in ns {
            match self.pop3.retr(n).await {
                Ok(_) => {}
                Err(e @ ClientError::Refused(_)) => refused.push((n, e)),
                Err(e) => return Err(e),
            }
        }
        Ok(refused)
    }

    /// [`Maildrop::mark_read`], then a `NOOP`, which the POP3 session
    /// answers only once the edge has the read marks: `Ok` means they are
    /// owed to the servers, whatever the line or this client does next.
    pub async fn mark_read_owed(
        &mut self,
        ns: &[u32],
    ) -> Result<Vec<(u32, ClientError)>, ClientError> {
        let refused = self.mark_read(ns).await?;
        self.pop3.noop().await?;
        Ok(refused)
    }

    /// `DELE n`: `Ok` once the delete is durable.
    pub async fn delete(&mut self, n: u32) -> Result<(), ClientError> {
        self.pop3.dele(n).await
    }

    /// `XAPPEND`: stores `message` in `server`'s folder; `Ok` once the
    /// server said `OK` (see `crate::session`'s `append`), with the UIDL
    /// the edge will list it by when the server said where it stored it.
    pub async fn append(
        &mut self,
        server: &str,
        flags: &[Vec<u8>],
        message: &[u8],
    ) -> Result<Option<String>, ClientError> {
        self.pop3.xappend(server.as_bytes(), flags, message).await
    }

    /// `XSTORE`: adds `flags` to message `n` on its IMAP server (`add`) or
    /// takes them away; `Ok` once the server said `OK`.
    pub async fn store_flags(
        &mut self,
        n: u32,
        add: bool,
        flags: &[String],
    ) -> Result<(), ClientError> {
        let flags = flags.iter().map(|f| f.as_bytes().to_vec()).collect();
        self.pop3.xstore(n, add, flags).await
    }

    /// `XSEARCH`: the numbers of the messages of `servers` one text
    /// criterion matches, as their servers (or, for POP3, the edge) judged
    /// them (`causeway_pop3::search`).
    pub async fn search(
        &mut self,
        key: TextKey,
        servers: Vec<String>,
    ) -> Result<Vec<u32>, ClientError> {
        self.pop3.xsearch(key, servers).await
    }

    /// `NOOP`: keeps the POP3 session from timing out while the IMAP
    /// client is quiet.
    pub async fn noop(&mut self) -> Result<(), ClientError> {
        self.pop3.noop().await
    }

    /// `QUIT`: the POP3 session commits (its `-ERR` means not everything
    /// could be committed now; acknowledged deletes are still owed).
    pub async fn quit(self) -> Result<causeway_pop3::StatusLine, ClientError> {
        self.pop3.quit().await
    }
}

/// How long the front waits on its own POP3 session: that session bounds
/// every wait of its own (the edge's welcome, a resume after a cut, the
/// quit), so this only has to outlast the longest of them and catches
/// nothing but a bug.
fn silence(config: &ClientConfig) -> Timeouts {
    let t = &config.timeouts;
    let longest = t.edge_connect
        + config.channel.handshake_timeout
        + t.welcome
        + t.resume
        + t.quit
        + t.request;
    Timeouts {
        greeting: longest,
        command: longest + Duration::from_secs(60),
    }
}
