//! POP3 (RFC 1939, RFC 2449) for Causeway: a sans-IO codec for both sides of
//! the conversation, plus a thin async client driver.
//!
//! Causeway sits between an unchanged mail client and real mail servers, so it
//! speaks POP3 in both roles: as a *server* to the mail client (the client
//! proxy, the model mail server) and as a *client* to real servers (edge,
//! relay). Both roles share one codec so the two directions cannot drift apart.
//!
//! The codec is sans-IO in the style of quinn-proto and rustls: parsers and
//! state machines take bytes and return values; nothing here reads a socket
//! except [`client::Pop3Client`], which is a thin loop around
//! [`client::ClientCodec`]. That keeps every parser testable with proptest and
//! fuzzable, and lets the same code run under turmoil.
//!
//! Hostile input never panics and never makes us buffer without bound:
//! every line has a cap ([`MAX_COMMAND_LINE`], [`MAX_RESPONSE_LINE`],
//! [`client::CLIENT_MAX_RESPONSE_LINE`]) and every multi-line body has a size
//! cap ([`DEFAULT_MAX_MESSAGE`] unless the caller chooses another).
//!
//! Bodies are bytes (`Vec<u8>`), never `String`: mail is 8-bit.
//!
//! Secrets never reach logs: the `Debug` of a `PASS` or `APOP` command
//! redacts the password and the digest.
//!
//! Owns: the POP3 grammar and its limits, on both sides. Must not depend on
//! anything above `causeway-net` (no channel, no catalogue, no node): it is
//! a protocol library.

pub mod client;
pub mod command;
pub mod fuzzing;
pub mod line;
pub mod multiline;
pub mod response;
pub mod search;
pub mod server;
mod text;

pub use client::{ClientCodec, ClientError, Pop3Client, Response, Timeouts};
pub use command::{Command, CommandError};
pub use response::{RespCode, ResponseError, Status, StatusLine};
pub use server::ServerCodec;

/// Longest command line we accept, in octets *including* the CRLF.
///
/// RFC 2449 §4 says 255 octets; the Causeway issue says 512, and we are
/// liberal in what we accept: a 300-octet `USER` line from a real mail
/// client is served, not refused. Longer lines are answered with
/// [`CommandError::LineTooLong`] and never buffered beyond this cap.
pub const MAX_COMMAND_LINE: usize = 512;

/// Longest response *first* line (the status line) in octets including
/// CRLF, per RFC 2449 §4. Our servers never send longer; the client side is
/// more tolerant, see [`client::CLIENT_MAX_RESPONSE_LINE`].
pub const MAX_RESPONSE_LINE: usize = 512;

/// Default cap on a multi-line body (a `RETR`ed message, a listing): 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;
