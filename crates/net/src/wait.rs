//! What the protocol drivers (POP3, IMAP) share about waiting on a peer:
//! the two bounds on its silence, and turning a timed I/O result into one
//! error with a name for the wait.
//!
//! The bound is always on silence, never on size: a driver applies
//! `command` to each read and write, so a reply of any size has the time it
//! needs while it keeps arriving.

use std::io;
use std::time::Duration;

/// How long a protocol client waits for its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the greeting after connecting.
    pub greeting: Duration,
    /// For sending a command, and for each stretch of its reply: the reply
    /// fails once nothing arrived for this long.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(30),
            command: Duration::from_secs(60),
        }
    }
}

/// A wait that failed: the peer was silent too long, or the I/O failed.
#[derive(Debug)]
pub enum WaitError {
    Timeout { what: &'static str, after: Duration },
    Io(io::Error),
}

/// Unwraps `Env::timeout(..)`'s nested result: a timeout names `what` and
/// how long it waited.
pub fn waited<T>(
    r: io::Result<io::Result<T>>,
    what: &'static str,
    after: Duration,
) -> Result<T, WaitError> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(WaitError::Timeout { what, after }),
        Err(e) | Ok(Err(e)) => Err(WaitError::Io(e)),
        Ok(Ok(v)) => Ok(v),
    }
}
