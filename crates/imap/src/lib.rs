//! IMAP for Causeway: the edge's side of a conversation with a real IMAP
//! server, on [imap-next] (a sans-IO client state machine over imap-codec,
//! which handles literals, continuations and the grammar; nothing here
//! parses IMAP by hand).
//!
//! What this crate adds is the part the rules of Causeway decide:
//!
//! - [`command`]: the only commands the edge sends on a user's behalf, so
//!   that the rules hold by construction: bodies are always fetched with
//!   `BODY.PEEK[]` (a fetch never marks a message read; the read mark is a
//!   separate `UID STORE +FLAGS.SILENT (\Seen)` sent only after delivery),
//!   and deletes are `UID STORE +FLAGS.SILENT (\Deleted)` followed by `UID
//!   EXPUNGE` of exactly those UIDs (RFC 4315), never a bare `EXPUNGE` or
//!   `CLOSE`, which would also remove messages another client flagged.
//! - [`folder`]: a selected folder as the server numbers it: UIDVALIDITY,
//!   and the UID, size and flags behind every sequence number, kept in step
//!   with the server's untagged `EXISTS`, `EXPUNGE` and `FETCH` responses.
//!   Sans-IO: it takes response data and returns nothing but its state.
//! - [`client`]: a thin async driver ([`ImapClient`]) that feeds bytes to
//!   imap-next through the node's [`causeway_net::Env`]. Every wait is bound
//!   by silence, never by size: a body of any size has the time it needs as
//!   long as bytes keep arriving, and its size is capped before it is held.
//!
//! Owns: the IMAP commands and the sequence-number bookkeeping of the edge's
//! server sessions. Must not depend on anything above `causeway-net`: it is
//! a protocol library, like `causeway-pop3` beside it.
//!
//! [imap-next]: https://github.com/duesee/imap-next

pub mod client;
pub mod command;
pub mod folder;
pub mod fuzzing;
pub mod serve;

/// The exact IMAP crates this one is built on, for the client proxy's IMAP
/// front and the demo's record (one place pins their versions).
pub use {imap_codec, imap_next, imap_types};

pub use client::{Appended, ImapClient, ImapError, Timeouts};
pub use folder::{Folder, Listed};
