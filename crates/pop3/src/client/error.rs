//! Client errors, worded for the person reading the log.

use std::io;
use std::time::Duration;

use crate::multiline::BodyError;
use crate::response::StatusLine;

/// Everything that can go wrong talking to a POP3 server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The stream failed.
    #[error("I/O error talking to the POP3 server: {0}")]
    Io(#[from] io::Error),
    /// A read or write did not finish in time.
    #[error("POP3 server did not answer in time: gave up after {} ms waiting for {what}", after.as_millis())]
    Timeout { what: &'static str, after: Duration },
    /// The server closed the connection before a complete response.
    #[error("POP3 server closed the connection in the middle of {during}")]
    Eof { during: &'static str },
    /// A status line longer than [`super::CLIENT_MAX_RESPONSE_LINE`].
    #[error(
        "POP3 server sent a status line longer than {} octets",
        super::CLIENT_MAX_RESPONSE_LINE
    )]
    LineTooLong,
    /// A multi-line reply larger than the configured cap.
    #[error("POP3 message larger than the limit of {max} bytes")]
    MessageTooLarge { max: usize },
    /// The server broke the protocol.
    #[error("POP3 protocol error: {0}")]
    Protocol(String),
    /// The server answered `-ERR` where we needed `+OK` (keeps the response
    /// code, so callers can see `[IN-USE]`, `[AUTH]`, `[SYS/TEMP]`).
    #[error("POP3 server refused: {0}")]
    Refused(StatusLine),
    /// An earlier error left the connection in an unknown state.
    #[error("POP3 connection unusable after an earlier error")]
    Broken,
}

impl From<causeway_net::wait::WaitError> for ClientError {
    fn from(e: causeway_net::wait::WaitError) -> Self {
        match e {
            causeway_net::wait::WaitError::Timeout { what, after } => {
                ClientError::Timeout { what, after }
            }
            causeway_net::wait::WaitError::Io(e) => ClientError::Io(e),
        }
    }
}

impl From<BodyError> for ClientError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { max } => ClientError::MessageTooLarge { max },
            BodyError::AfterEnd => ClientError::Protocol(e.to_string()),
        }
    }
}

impl ClientError {
    /// Whether trying again later may help (I/O, timeouts, EOF, `[IN-USE]`,
    /// `[LOGIN-DELAY]`, `[SYS/TEMP]`), as opposed to a permanent refusal.
    pub fn is_transient(&self) -> bool {
        use crate::response::RespCode;
        match self {
            ClientError::Io(_)
            | ClientError::Timeout { .. }
            | ClientError::Eof { .. }
            | ClientError::Broken => true,
            ClientError::Refused(s) => matches!(
                s.code,
                Some(RespCode::InUse | RespCode::LoginDelay | RespCode::SysTemp)
            ),
            _ => false,
        }
    }
}
