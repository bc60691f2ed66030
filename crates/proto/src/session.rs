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
//!   Want{server, bodies at}     --->  (no answer: the bodies stream, below)
//!                               <---  Chunk{server, at, offset, total, lf, data}...
//!   Window{received}            --->  (flow control: body bytes received)
//!   Request{id, server, op}     --->
//!                               <---  Response{id, result}
//!   Deletes{ops}                --->  (deletes the client proxy acknowledged
//!                                      from its own journal; batched)
//!                               <---  Held{seqs}   (now durable at the edge)
//!   Delivered{server, at}       --->  (those bodies reached the mail client
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
//! **Places** (version 7). `Want`, `Chunk`, `Delivered` and `Deletes` name a
//! message by its [`Place`] in the `Welcome`'s listing, not by its UIDL:
//! they name one message per body, per chunk, per read mark and per delete,
//! and on W1 the UIDLs were a third of what the client proxy sent. A
//! chunk's data travels with CRLF as LF where that is reversible
//! ([`crate::line_ends`]).
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
//! in the client proxy's journal, and the edge takes each sequence number
//! once per session: a batch sent again after a resume is never taken a
//! second time, for an RSET may have undone its deletes meanwhile (taken
//! again, they would be owed once more); nor does a session take a carried
//! delete that a session its `Hello` supersedes held, and the client proxy
//! never carries one it knows done. (A delete done twice by UIDL and size
//! would hit a later message that came with the same UIDL and size.) A
//! delete whose `Held` a crash or cut took after the session that held it
//! had committed it is carried all the same: the edge remembers each
//! delete it took, by the proxy's key and number, durably and past its
//! commit, and answers `Held` for one carried again without taking it
//! twice, until the proxy's `Hello` says (`oldest`) it can carry it no
//! more (version 14). A client proxy without a journal asks with `Request{Dele}` and answers `+OK` after the edge's
//! `Response`: one turn per DELE.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::user::UserInfo;
use causeway_pop3::search::TextKey;
use causeway_wire::Message;

use crate::OpError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientToEdge {
    /// First message of a session. `supersedes` names earlier sessions of
    /// this client proxy whose line was lost: the edge ends them (committing
    /// what they owe, QUITting their servers) before it opens the servers
    /// again, so their maildrop locks do not turn this session away. Each
    /// by the id its `Welcome` gave or, when no `Welcome` came (a cut took
    /// it, or the `Hello`), by the `nonce` its `Hello` carried: the edge
    /// may have opened that session all the same (version 13).
    Hello {
        version: u16,
        /// Chosen by the client proxy, at most [`MAX_NONCE`] bytes, fresh
        /// for every `Hello`: the session's name until `Welcome` tells its id.
        nonce: String,
        user: UserInfo,
        supersedes: Vec<String>,
        /// Deletes acknowledged to a mail client in an earlier session that
        /// the edge has not said it holds (at most [`MAX_DELETES`]).
        carried: Vec<DeleteOp>,
        /// Every delete this client proxy may still carry, now or later,
        /// has a sequence number at least this (the lowest in its journal,
        /// or the next it will give when the journal is empty): the edge
        /// forgets the deletes of this client it took below it (version 14;
        /// the edge's `journal::taken` explains why it remembers them).
        oldest: u64,
        /// The first session since the client proxy started: every earlier
        /// session of its key is lost (a restart forgets their ids), and the
        /// edge ends them all, attached or waiting for a resume.
        restarted: bool,
        /// This client proxy resumes its sessions after a cut (its
        /// `timeouts.resume` is not zero). If not, the edge gives the session
        /// no `Ticket` and ends it at a cut instead of keeping it detached,
        /// holding the maildrops' locks, for a resume that never comes.
        resumes: bool,
    },
    /// Deletes acknowledged to the mail client from the client proxy's
    /// journal (at most [`MAX_DELETES`]), each by its listing [`Place`];
    /// answered by `Held`.
    Deletes { ops: Vec<PlacedDelete> },
    /// A mail-client request for one server, by that server's name.
    Request { id: u64, server: String, op: Op },
    /// Bodies to stream ahead of demand, in the order the mail client will
    /// likely read them; each from the offset the client proxy already holds
    /// (a body half received before a cut continues where it stopped).
    Want {
        server: String,
        bodies: Vec<WantedAt>,
    },
    /// Flow control: the body bytes (`Chunk` data) received so far in this
    /// session. The edge keeps at most a window of them in flight.
    Window { received: u64 },
    /// Bytes `offset..` of the message that the `Append` request `id` will
    /// store, at most [`UPLOAD_PIECE`] of them (version 15). Sent in
    /// order before the request; after a resume, from the byte `Resumed`
    /// says the edge holds. The edge holds one upload at a time: a new id
    /// (from offset 0) replaces it.
    Upload {
        id: u64,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// These bodies were delivered completely to the mail client (written,
    /// flushed and followed by its next command): the edge may mark them
    /// read. Batched; a batch lost in a cut leaves the messages unread.
    Delivered { server: String, at: Vec<Place> },
    /// Keeps an idle line observable: the edge treats a silent line as cut.
    Ping { nonce: u64 },
    /// The mail client sent QUIT: commit and end the session.
    Quit,
    /// First message of a channel that re-attaches to a session whose line
    /// was cut (instead of `Hello`): `proof` is
    /// `causeway_wire::binding::proof` of the session's latest secret over
    /// this channel's handshake. Then the state the client proxy holds, not
    /// a replay: the body bytes it received in the session (the edge's
    /// window restarts there) and, per server, the bodies it still wants,
    /// each from the byte it holds, and what it holds of the edge's open
    /// compression frame (`history`), to prime the new one with. Answered
    /// by `Resumed` or `Refused`.
    Resume {
        version: u16,
        session: String,
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
        received: u64,
        wants: Vec<ServerWants>,
        history: Option<causeway_wire::history::Mark>,
    },
}

/// The bodies a resuming client proxy still wants from one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerWants {
    pub server: String,
    pub bodies: Vec<WantedAt>,
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
    /// Store the message `Upload`ed for this request's id, `size` octets
    /// (at most [`MAX_APPEND`]), in the server's folder that this entry
    /// reads (IMAP `APPEND`, version 15), with these flags (IMAP flag
    /// names: `\Seen`, `\Draft`, keywords). Answered `Done` once the
    /// server answered `OK`. Asked again after a resume (same id), it is
    /// answered, never stored twice; the message is in the server's
    /// listing from the next session on.
    Append {
        flags: Vec<String>,
        size: u64,
    },
    /// Add (`add`) or take away these flags of `msg` on its IMAP server
    /// (version 17): flags the mail client stored itself, other than
    /// `\Seen` and `\Deleted` (read marks and deletes have rules of their
    /// own), at most [`MAX_APPEND_FLAGS`]. Done at once, not at QUIT, and
    /// answered `Done` once the server said `OK`; asked again after a
    /// resume, it is stored again, which changes nothing.
    Store {
        msg: MessageId,
        add: bool,
        flags: Vec<String>,
    },
    /// The messages of this server's listing that one text criterion of an
    /// IMAP `SEARCH` matches (version 20), searched by its IMAP server
    /// (`UID SEARCH`), or (version 21) read whole from a POP3 server and
    /// judged by the edge: answered `Found`. The client proxy combines the
    /// answers with what it judges itself (flags, sizes, `NOT`, `OR`).
    Search {
        key: TextKey,
    },
}

/// The largest message an `Append` carries (advertised to IMAP clients as
/// `APPENDLIMIT`): well inside a frame ([`causeway_wire::DEFAULT_MAX_FRAME`])
/// and the edge's default `max_message`.
pub const MAX_APPEND: usize = 32 << 20;

/// The most flags one `Append` or `Store` names.
pub const MAX_APPEND_FLAGS: usize = 64;

/// The most message bytes one `Upload` carries: a piece is one turn of
/// the client proxy's loop, about 3 s of a 40 kbit/s line.
pub const UPLOAD_PIECE: usize = 16 << 10;

/// One delete the client proxy acknowledged: its number in the client
/// proxy's journal, and which message of which server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOp {
    pub seq: u64,
    pub server: String,
    pub msg: MessageId,
    /// A message the session that acknowledged the delete listed after
    /// `msg` (not deleted by it, and the only one of its UIDL and size),
    /// if it knew one: a later session that lists `msg` after it lists an
    /// exact copy that came later, not the message deleted (the edge's
    /// ledger explains; version 12).
    pub witness: Option<MessageId>,
}

/// A message by its place in its server's listing in this session's
/// `Welcome` (0 is the first). A listing never changes during a session, so
/// within one the place names a message as surely as its [`MessageId`]
/// does, in a byte or two where the UIDL takes twenty: the messages that
/// name one message per body chunk, per read mark and per delete name it
/// this way (on W1 the UIDLs were 40 KB of 71 KB that the client proxy sent
/// up, and a third of every chunk's header). Anything that outlives the
/// session (a journaled delete, a carried one in `Hello`) names it by
/// `MessageId`.
pub type Place = u32;

/// [`DeleteOp`] within the session that listed its message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedDelete {
    pub seq: u64,
    pub server: String,
    pub at: Place,
}

/// The most deletes one `Deletes` or `Hello` may carry.
pub const MAX_DELETES: usize = 100_000;

/// A body wanted ahead of demand, from byte `from` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    pub msg: MessageId,
    pub from: u64,
}

/// [`Wanted`] as `Want` carries it: by the message's [`Place`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantedAt {
    pub at: Place,
    pub from: u64,
}

/// The most body bytes one `Chunk` carries: small enough that an answer the
/// mail client waits for, or a `Pong`, is never queued behind more than
/// about 1.6 s of a 40 kbit/s line.
pub const CHUNK: usize = 8 << 10;

/// The longest `Hello::nonce` an edge accepts.
pub const MAX_NONCE: usize = 64;

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
    /// Part of a body, in order: bytes `offset..` of a body `total` bytes
    /// long (un-stuffed, CRLF line ends), of the message at [`Place`] `at`
    /// of `server`'s listing. With `lf`, `data` has each CRLF as LF
    /// ([`crate::line_ends`]); offsets count the body's own bytes.
    Chunk {
        server: String,
        at: Place,
        offset: u64,
        total: u64,
        lf: bool,
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
    /// The session's resume secret ([`SECRET_LEN`] bytes), sent before
    /// `Welcome` (uncompressed, like credentials: it never shares a
    /// compression context with mail). Without one the session is not
    /// resumable (the edge is at its cap, or resume is off).
    Ticket {
        #[serde(with = "serde_bytes")]
        secret: Vec<u8>,
    },
    /// Answer to `Resume`: re-attached. `secret` replaces the previous one
    /// (uncompressed); `marks` is how many read marks (places in
    /// `Delivered`) the edge received in this session, so the client proxy
    /// sends again those after them, which the cut may have lost.
    /// `primed`: the edge's stream on this channel starts primed with the
    /// history the `Resume` offered (the client proxy primes its receiving
    /// side with the same bytes before it reads on). `uploaded`: the
    /// upload the edge holds (request id, octets; version 15): the client
    /// proxy sends on from there.
    Resumed {
        #[serde(with = "serde_bytes")]
        secret: Vec<u8>,
        marks: u64,
        primed: bool,
        uploaded: Option<(u64, u64)>,
    },
    /// After `Quit`, every 10 s until `Bye`: the servers are still
    /// committing. The client proxy waits for `Bye` on silence, as for any
    /// answer, so a `Quit` a cut lost is found in its request timeout, and
    /// a commit that takes long (a slow server) is not taken for a cut.
    Finishing,
    /// After `Hello`, every 10 s until `Welcome`: the edge is still
    /// logging in to the servers and listing them. The client proxy waits
    /// for `Welcome` on silence too, so a `Hello` a cut lost is found in
    /// its request timeout, and a slow login is not taken for a cut.
    Opening,
}

/// Length of a resume secret.
pub const SECRET_LEN: usize = causeway_wire::binding::SECRET_LEN;

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
    /// The system flags its IMAP server kept for it when the listing was
    /// taken; `None` from a POP3 server, or when they could not be had.
    pub flags: Option<ServerFlags>,
}

/// Which system flags an IMAP server keeps for a message, whichever client
/// set them: a user who reads, stars or answers a message on the phone
/// expects to see it so everywhere. A bit mask, as `XFLAGS` carries it
/// (`causeway_pop3::Command::Xflags`); other bits are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFlags(pub u8);

impl ServerFlags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DRAFT: u8 = 8;

    /// Whether `bit` (one of the constants) is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Leaves out of `messages` those `hidden` names (deletes another session
/// owes, or this one), but only a message whose UIDL is listed once: the
/// client proxy names a UIDL listed twice by UIDL and size, so leaving out
/// one of two would rename the other (`HOST:uidl/size` one session,
/// `HOST:uidl` the next), and a mail client that keeps UIDLs could take the
/// name for another message's. Used by the edge for the listings it sends
/// and by the client proxy for what its mail client is shown.
pub fn leave_out(messages: &mut Vec<ListEntry>, hidden: impl Fn(&ListEntry) -> bool) {
    let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
    for m in messages.iter() {
        *listed.entry(m.uidl.as_str()).or_default() += 1;
    }
    let keep: Vec<bool> = (messages.iter())
        .map(|m| listed[m.uidl.as_str()] > 1 || !hidden(m))
        .collect();
    let mut keep = keep.into_iter();
    messages.retain(|_| keep.next().unwrap_or(true));
}

impl ListEntry {
    /// The name the protocol gives this message.
    pub fn id(&self) -> MessageId {
        MessageId {
            uidl: self.uidl.clone(),
            size: self.size,
        }
    }
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
    /// APPEND: the server answered `OK`; `uidl` is the UIDL the message
    /// will be listed by, when the server said where it stored it (an IMAP
    /// server with UIDPLUS), so that the IMAP front can number it at once.
    Stored { uidl: Option<String> },
    /// SEARCH: the messages of the `Welcome`'s listing of the request's
    /// server that the criterion matched, in listing order; a message not
    /// in that listing is not named. By `MessageId`, not by `Place`: the
    /// client proxy shows a listing less the messages whose deletes it
    /// still carries, and maps what was found by name.
    Found { msgs: Vec<MessageId> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerOutcome {
    pub name: String,
    pub result: Result<(), OpError>,
}

/// Both ways between a message's [`Place`] and its [`MessageId`], for the
/// listings of one `Welcome`. A message a broken server lists twice (same
/// UIDL and size) is named by its first place.
#[derive(Clone, Debug, Default)]
pub struct Places {
    servers: Vec<ServerPlaces>,
}

#[derive(Clone, Debug)]
struct ServerPlaces {
    name: String,
    order: Vec<MessageId>,
    by_id: BTreeMap<MessageId, Place>,
    /// Messages listed more than once.
    twice: BTreeSet<MessageId>,
}

impl Places {
    pub fn new(listings: &[ServerListing]) -> Self {
        let servers = listings
            .iter()
            .map(|l| {
                let order: Vec<MessageId> = match &l.state {
                    ListingState::Ready { messages } => {
                        messages.iter().map(ListEntry::id).collect()
                    }
                    ListingState::Unavailable { .. } => Vec::new(),
                };
                let mut by_id = BTreeMap::new();
                let mut twice = BTreeSet::new();
                for (at, id) in (0..).zip(&order) {
                    if by_id.contains_key(id) {
                        twice.insert(id.clone());
                    } else {
                        by_id.insert(id.clone(), at);
                    }
                }
                ServerPlaces {
                    name: l.name.clone(),
                    order,
                    by_id,
                    twice,
                }
            })
            .collect();
        Self { servers }
    }

    fn server(&self, server: &str) -> Option<&ServerPlaces> {
        self.servers.iter().find(|s| s.name == server)
    }

    /// The message at `at` in `server`'s listing.
    pub fn id(&self, server: &str, at: Place) -> Option<&MessageId> {
        self.server(server)?.order.get(usize::try_from(at).ok()?)
    }

    /// Where `msg` is in `server`'s listing.
    pub fn place(&self, server: &str, msg: &MessageId) -> Option<Place> {
        self.server(server)?.by_id.get(msg).copied()
    }

    /// The witness of `msg` in `server`'s listing ([`witness`]): a message
    /// listed after it, listed once, and not `deleted`.
    pub fn witness(
        &self,
        server: &str,
        msg: &MessageId,
        deleted: impl Fn(&MessageId) -> bool,
    ) -> Option<MessageId> {
        let s = self.server(server)?;
        let at = usize::try_from(*s.by_id.get(msg)?).ok()?;
        witness(&s.order, at, |id| !s.twice.contains(id) && !deleted(id)).cloned()
    }
}

/// How far past a message [`witness`] looks.
pub const WITNESS_REACH: usize = 64;

/// The witness of the message at `at` in `order` (a server's listing, in
/// the server's order): the first message after it that `usable` takes
/// (one not deleted, and named by its UIDL and size alone), at most
/// [`WITNESS_REACH`] places on, so a session deleting thousands of messages
/// from the end does not pay the whole listing for each. Servers list mail
/// in the order it arrived, so a later session that lists the message
/// *after* its witness lists an exact copy that came later, not the
/// message itself: the edge's ledger then counts work on it done.
pub fn witness(
    order: &[MessageId],
    at: usize,
    usable: impl Fn(&MessageId) -> bool,
) -> Option<&MessageId> {
    order
        .get(at + 1..)?
        .iter()
        .take(WITNESS_REACH)
        .find(|id| usable(id))
}

impl Message for ClientToEdge {
    fn carries_credentials(&self) -> bool {
        matches!(
            self,
            ClientToEdge::Hello { .. } | ClientToEdge::Resume { .. }
        )
    }
}

impl Message for EdgeToClient {
    fn carries_credentials(&self) -> bool {
        matches!(
            self,
            EdgeToClient::Ticket { .. } | EdgeToClient::Resumed { .. }
        )
    }
}
