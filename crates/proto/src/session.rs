//! Client proxy <-> edge.
//!
//! ```text
//! client proxy                         edge
//!   Hello{version, user info,   --->                 (uncompressed: credentials)
//!         sessions it lost}
//!                               <---  Welcome{session id, listing per server}
//!                                     | Refused{error}
//!   Want{server, bodies}        --->  (no answer: the bodies stream, below)
//!                               <---  Chunk{server, msg, offset, total, data}...
//!   Window{received}            --->  (flow control: body bytes received)
//!   Request{id, server, op}     --->
//!                               <---  Response{id, result}
//!   Delivered{server, msgs}     --->  (those bodies reached the mail client
//!                                      whole: only now may the edge mark them
//!                                      read; no answer)
//!   Ping{n}                     --->
//!                               <---  Pong{n}
//!   Quit                        --->
//!                               <---  Bye{outcome per server}
//! ```
//!
//! The listing in `Welcome` is the replica's list: the client proxy answers
//! STAT, LIST and UIDL from it without a round trip on the line. Right after
//! it the client proxy names the bodies it wants ahead of demand (`Want`), and
//! the edge streams them in `Chunk`s of at most [`CHUNK`] bytes, interleaved
//! with every other answer, as fast as the client proxy's `Window` allows; a
//! `RETR` of a body the client proxy holds costs no turn on the line. A `Retr`
//! request makes its body jump the queue, and is answered `Streamed` once its
//! last chunk went out. DELE is answered `+OK` to the mail client only after
//! the edge's `Response` arrives: from then on the edge owns the delete and
//! completes it on the server even if the line dies the next instant.

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
    /// Bodies to stream ahead of demand, in the order the mail client will
    /// likely read them; each from the offset the client proxy already holds
    /// (a body half received before a cut continues where it stopped).
    Want { server: String, bodies: Vec<Wanted> },
    /// Flow control: the body bytes (`Chunk` data) received so far in this
    /// session. The edge keeps at most a window of them in flight.
    Window { received: u64 },
    /// These bodies were delivered completely to the mail client (written,
    /// flushed and followed by its next command): the edge may mark them
    /// read. Batched; a batch lost in a cut leaves the messages unread.
    Delivered {
        server: String,
        msgs: Vec<MessageId>,
    },
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

/// A body wanted ahead of demand, from byte `from` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    pub msg: MessageId,
    pub from: u64,
}

/// The most body bytes one `Chunk` carries: small enough that an answer the
/// mail client waits for, or a `Pong`, is never queued behind more than
/// about 1.6 s of a 40 kbit/s line.
pub const CHUNK: usize = 8 << 10;

/// The most bodies one `Want` may name.
pub const MAX_WANTED: usize = 100_000;

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
    /// Part of a body, in order: bytes `offset..offset + data.len()` of a
    /// body `total` bytes long (un-stuffed, CRLF line ends).
    Chunk {
        server: String,
        msg: MessageId,
        offset: u64,
        total: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
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
    /// TOP: the message's head, un-stuffed, CRLF line ends.
    Body(#[serde(with = "serde_bytes")] Vec<u8>),
    /// RETR: the body went out in `Chunk`s, the last one before this answer;
    /// it is `total` bytes long.
    Streamed { total: u64 },
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
