//! Client proxy <-> edge.
//!
//! ```text
//! client proxy                         edge
//!   Hello{version, user info,   --->                 (uncompressed: credentials)
//!         sessions it lost,
//!         deletes it carries}
//!                               <---  Welcome{session id, listing per server}
//!                                     | Refused{error}
//!                               <---  Held{seqs}   (carried deletes now durable)
//!   Want{server, bodies}        --->  (no answer: the bodies stream, below)
//!                               <---  Chunk{server, msg, offset, total, data}...
//!   Window{received}            --->  (flow control: body bytes received)
//!   Request{id, server, op}     --->
//!                               <---  Response{id, result}
//!   Deletes{ops}                --->  (deletes the client proxy acknowledged
//!                                      from its own journal; batched)
//!                               <---  Held{seqs}   (now durable at the edge)
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
//! last chunk went out.
//!
//! **Deletes** cost no turn. A client proxy with a delete journal answers
//! the mail client's DELE `+OK` once its own journal holds it durably, and
//! sends it to the edge in a `Deletes` batch (ahead of the next request,
//! ping or Quit, or after a short wait). The edge records each durably in its
//! own journal and says so in `Held`; only then does the client proxy erase
//! its entry. A delete whose batch a cut or a crash kept from the edge, or
//! that the edge could not record, is carried in the next `Hello` and owed
//! from the start of that session (RSET there does not undo it: it was
//! acknowledged in an earlier one). Every op has a sequence number unique
//! in the client proxy's journal; applying one twice is harmless (a delete
//! by UIDL of a message already gone is done), so a resent op is applied
//! once in effect. A client proxy without a journal asks with `Request{Dele}`
//! and answers `+OK` after the edge's `Response`: one turn per DELE.

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
        /// Deletes acknowledged to a mail client in an earlier session that
        /// the edge has not said it holds (at most [`MAX_DELETES`]).
        carried: Vec<DeleteOp>,
    },
    /// Deletes acknowledged to the mail client from the client proxy's
    /// journal (at most [`MAX_DELETES`]); answered by `Held`.
    Deletes { ops: Vec<DeleteOp> },
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

/// One delete the client proxy acknowledged: its number in the client
/// proxy's journal, and which message of which server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOp {
    pub seq: u64,
    pub server: String,
    pub msg: MessageId,
}

/// The most deletes one `Deletes` or `Hello` may carry.
pub const MAX_DELETES: usize = 100_000;

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
    /// The edge's journal now holds these deletes (by `DeleteOp::seq`): the
    /// client proxy may erase them from its own. A delete the edge took but
    /// could not record durably is not listed; it stays in the client
    /// proxy's journal until the session's `Bye` says its server committed.
    Held {
        seqs: Vec<u64>,
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
