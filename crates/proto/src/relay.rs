//! Edge <-> relay.
//!
//! The relay sits beside the mail server and is a remote POP3 client for the
//! edge: it opens one server session per `Open`, one at a time on a link (a
//! link whose session ended with `Quit` may carry the next; version 13),
//! runs the POP3 commands the edge sends, and returns the replies over the
//! encrypted, compressed channel. It keeps no mailbox state: the replica and every decision about
//! read marks and deletes stay with the edge. Only the edge's `Quit` commits:
//! if the link ends any other way, the relay sends the server RSET, then QUIT,
//! so the server commits nothing (as when a direct connection drops), its
//! lock is released, and the edge redoes its owed work in a new session. A
//! link lost between a DELE and the RSET that undid it must never commit the
//! delete.
//!
//! ```text
//! edge                                   relay
//!   Open{version, server spec}   --->              (uncompressed: credentials)
//!                                <---  Opened{greeting} | Refused{error}
//!   Command{id, line}            --->
//!                                <---  Reply{id, status line, body}
//!   Quit                         --->
//!                                <---  QuitDone{result}
//!   [Ping{n}]  Open{...}         --->  (the next session on a kept link)
//!                                <---  Pong{n}  Opened{greeting} | ...
//! ```

use serde::{Deserialize, Serialize};

use crate::user::ServerSpec;
use causeway_wire::Message;

use crate::OpError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdgeToRelay {
    Open {
        version: u16,
        server: ServerSpec,
    },
    /// One POP3 command line, without CRLF. The relay parses it and refuses
    /// anything but transaction-state commands (no USER/PASS/STLS smuggling).
    Command {
        id: u64,
        #[serde(with = "serde_bytes")]
        line: Vec<u8>,
    },
    /// An IMAP server's `APPEND` of `message` to the entry's folder, with
    /// these flags (version 15); answered by `Reply` (the server's `OK` as
    /// `+OK`, its `NO` as `-ERR`) or `Failed`. Refused for a POP3 server.
    Append {
        id: u64,
        flags: Vec<String>,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    Ping {
        nonce: u64,
    },
    Quit,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayToEdge {
    Opened {
        #[serde(with = "serde_bytes")]
        greeting: Vec<u8>,
    },
    Refused {
        error: OpError,
    },
    /// The server's status line (without CRLF) and, for a multi-line `+OK`,
    /// the un-stuffed body.
    Reply {
        id: u64,
        #[serde(with = "serde_bytes")]
        status: Vec<u8>,
        #[serde(with = "serde_bytes")]
        body: Option<Vec<u8>>,
    },
    /// The relay could not run command `id` (link to the server lost, ...).
    Failed {
        id: u64,
        error: OpError,
    },
    Pong {
        nonce: u64,
    },
    /// Answer to `Quit`: the server's reply to QUIT, or why it failed.
    QuitDone {
        result: Result<Vec<u8>, OpError>,
    },
}

impl Message for EdgeToRelay {
    fn carries_credentials(&self) -> bool {
        matches!(self, EdgeToRelay::Open { .. })
    }
}

impl Message for RelayToEdge {
    fn carries_credentials(&self) -> bool {
        false
    }
}
