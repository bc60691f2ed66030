//! Client errors, worded for the person reading the log.

use std::io;
use std::time::Duration;

use crate::command::Unsendable;
use crate::folder::FolderError;

/// Everything that can go wrong talking to an IMAP server.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("I/O error talking to the IMAP server: {0}")]
    Io(#[from] io::Error),
    /// Nothing arrived (or could be sent) for this long.
    #[error("IMAP server did not answer in time: gave up after {} ms waiting for {what}", after.as_millis())]
    Timeout { what: &'static str, after: Duration },
    /// The server closed the connection before the answer was complete.
    #[error("IMAP server closed the connection in the middle of {during}")]
    Eof { during: &'static str },
    /// A response (a message body included) larger than the cap.
    #[error("IMAP response larger than the limit of {max} bytes")]
    TooLarge { max: u32 },
    /// The server broke the protocol.
    #[error("IMAP protocol error: {0}")]
    Protocol(String),
    /// A tagged `NO` or `BAD`, with the server's response code.
    #[error("IMAP server refused {what}: {kind}{} {text}", code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default())]
    Refused {
        what: &'static str,
        /// `NO` or `BAD`.
        kind: &'static str,
        /// The response code's atom (`AUTHENTICATIONFAILED`, `UNAVAILABLE`...).
        code: Option<String>,
        text: String,
    },
    /// The server said `BYE` (at the greeting, or while closing on us).
    #[error("IMAP server closed the session: {0}")]
    Bye(String),
    #[error(transparent)]
    Unsendable(#[from] Unsendable),
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// Deletes need `UID EXPUNGE` (RFC 4315) unless no other message is
    /// flagged `\Deleted`: a bare `EXPUNGE` would remove those too.
    #[error(
        "the IMAP server does not offer UIDPLUS, and {others} other message(s) in the folder are \
         flagged \\Deleted, so an EXPUNGE would remove mail the user did not delete here; \
         nothing was expunged (it is tried again in a later session: expunge or undelete those \
         messages with another mail client)"
    )]
    NoUidplus { others: usize },
    /// With TLS by STARTTLS required, a server that does not offer it.
    #[error(
        "the IMAP server does not offer STARTTLS; Causeway never falls back to clear text, so \
         the password was not sent (use tls = \"implicit\", usually port 993, if the server \
         offers it)"
    )]
    NoStarttls,
    /// The server answered STARTTLS with `NO` or `BAD`.
    #[error(
        "the IMAP server refused STARTTLS ({0}); Causeway never falls back to clear text, so the \
         password was not sent (use tls = \"implicit\", usually port 993, if the server offers it)"
    )]
    StarttlsRefused(String),
    /// Responses arrived after the `OK` to STARTTLS, before TLS began.
    #[error(
        "the IMAP server sent a response after its OK to STARTTLS, before TLS began: refused, \
         as this is how a STARTTLS injection attack (CVE-2011-0411 class) smuggles clear text \
         into the TLS session; the password was not sent"
    )]
    Injected,
    /// The server lists `LOGINDISABLED` and no mechanism Causeway speaks.
    #[error(
        "the IMAP server takes no LOGIN (LOGINDISABLED) and does not offer AUTHENTICATE PLAIN; \
         the password was not sent (servers that disable LOGIN in clear text usually take it \
         over TLS: check the server's tls setting)"
    )]
    NoLogin,
    #[error("no folder is selected")]
    NotSelected,
    /// An earlier error left the connection in an unknown state.
    #[error("IMAP connection unusable after an earlier error")]
    Broken,
}

impl From<causeway_net::wait::WaitError> for ImapError {
    fn from(e: causeway_net::wait::WaitError) -> Self {
        match e {
            causeway_net::wait::WaitError::Timeout { what, after } => {
                ImapError::Timeout { what, after }
            }
            causeway_net::wait::WaitError::Io(e) => ImapError::Io(e),
        }
    }
}

impl ImapError {
    /// Whether trying again later may help (the path, a timeout, a server
    /// saying it is unavailable or the mailbox in use), as opposed to a
    /// refusal that will stay (wrong password, no UIDPLUS).
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Io(_)
            | ImapError::Timeout { .. }
            | ImapError::Eof { .. }
            | ImapError::Bye(_)
            | ImapError::Broken => true,
            ImapError::Refused { code, .. } => matches!(
                code.as_deref(),
                Some("UNAVAILABLE" | "INUSE" | "SERVERBUG" | "LIMIT" | "OVERQUOTA")
            ),
            _ => false,
        }
    }

    /// Whether the server refused the credentials (RFC 5530's
    /// `AUTHENTICATIONFAILED`, or a `NO` to LOGIN or AUTHENTICATE without
    /// a code).
    pub fn is_authentication(&self) -> bool {
        match self {
            ImapError::Refused { what, code, .. } => {
                matches!(
                    code.as_deref(),
                    Some("AUTHENTICATIONFAILED" | "AUTHORIZATIONFAILED" | "EXPIRED")
                ) || (matches!(*what, "LOGIN" | "AUTHENTICATE") && code.is_none())
            }
            _ => false,
        }
    }
}
