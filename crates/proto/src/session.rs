//! Client proxy <-> edge.
//!
//! ```text
//! client proxy                         edge
//!   Hello{version, user info,   --->                 (uncompressed: credentials)
//!         sessions it lost}
//!                               <---  Welcome{session id, listing per server}
//!                                     | Refused{error}
//!   Request{id, server, op}     --->
//!                               <---  Response{id, result}
//!   Delivered{id}               --->  (the body reached the mail client whole:
//!                                      only now may the edge mark it read)
//!   Ping{n}                     --->
//!                               <---  Pong{n}
//!   Quit                        --->
//!                               <---  Bye{outcome per server}
//! ```
//!
//! The listing in `Welcome` is the replica's list: the client proxy answers
//! STAT, LIST and UIDL from it without a round trip on the line. DELE is
//! answered `+OK` to the mail client only after the edge's `Response` arrives:
//! from then on the edge owns the delete and completes it on the server even if
//! the line dies the next instant.

use serde::{Deserialize, Serialize};

use crate::user::UserInfo;
use causeway_wire::Message;

use crate::OpError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientToEdge {
    /// First message of a session. `supersedes` names earlier sessions of
    /// this client proxy whose line was lost: the edge ends them (committing
    /// what they owe, QUITting their servers) before it opens the servers
    /// again, so their maildrop locks do not turn this session away.
    Hello {
        version: u16,
        user: UserInfo,
        supersedes: Vec<String>,
    },
    /// A mail-client request for one server, by that server's name.
    Request { id: u64, server: String, op: Op },
    /// The response to request `id` was delivered completely to the mail client.
    Delivered { id: u64 },
    /// Keeps an idle line observable: the edge treats a silent line as cut.
    Ping { nonce: u64 },
    /// The mail client sent QUIT: commit and end the session.
    Quit,
}

/// What the mail client asked of one server's mailbox. Messages are named by
/// UIDL and size, never by number: numbers belong to one server session, and
/// the edge may be on its second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Retr {
        msg: MessageId,
    },
    Top {
        msg: MessageId,
        lines: u32,
    },
    Dele {
        msg: MessageId,
    },
    /// Undo this session's deletes (and read marks) on this server.
    Rset,
}

/// Which message: its server's UIDL, and its size as the listing gave it.
/// The size is the second key that tells apart messages a broken server
/// lists under one UIDL (see `causeway_upstream::pop3::Numbering`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId {
    pub uidl: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdgeToClient {
    Welcome {
        session: String,
        servers: Vec<ServerListing>,
    },
    /// The session was not opened; the error is fit to show the user, and
    /// its code says whether trying again later can help (`[SYS/TEMP]`: the
    /// edge is full) or not (`[SYS/PERM]`: the configuration must change).
    Refused {
        error: OpError,
    },
    Response {
        id: u64,
        result: Result<Reply, OpError>,
    },
    Pong {
        nonce: u64,
    },
    /// Answer to `Quit`: whether each server's work was committed.
    Bye {
        servers: Vec<ServerOutcome>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerListing {
    pub name: String,
    pub state: ListingState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListingState {
    Ready {
        messages: Vec<ListEntry>,
    },
    /// The edge could not open this server (refused login, locked, down...).
    Unavailable {
        error: OpError,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub uidl: String,
    /// Octets as the server reports them in LIST.
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// RETR / TOP: the message (or its head), un-stuffed, CRLF line ends.
    Body(#[serde(with = "serde_bytes")] Vec<u8>),
    /// DELE / RSET: done (in the replica; the server follows).
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerOutcome {
    pub name: String,
    pub result: Result<(), OpError>,
}

impl Message for ClientToEdge {
    fn carries_credentials(&self) -> bool {
        matches!(self, ClientToEdge::Hello { .. })
    }
}

impl Message for EdgeToClient {
    fn carries_credentials(&self) -> bool {
        false
    }
}
