//! The client side of POP3: what edge and relay use to fetch mail from a
//! real server.
//!
//! - [`ClientCodec`] (sans-IO): told which commands are outstanding, fed the
//!   server's bytes, it yields [`Response`]s. It holds a queue of outstanding
//!   commands, so pipelining (RFC 2449) works.
//! - [`Pop3Client`]: a thin async loop over the codec and any
//!   [`causeway_net::Stream`], where every read and write is bounded by
//!   [`causeway_net::Env::timeout`].
//! - `parse_*` helpers turn `STAT`, `LIST` and `UIDL` replies into numbers.

mod codec;
mod driver;
mod error;
mod listing;

pub use codec::{CLIENT_MAX_RESPONSE_LINE, ClientCodec, Response};
pub use driver::{Pop3Client, Timeouts};
pub use error::ClientError;
pub use listing::{
    MAX_SERVER_UIDL, parse_capabilities, parse_number_listing, parse_scan_line, parse_scan_listing,
    parse_stat, parse_uidl_line, parse_uidl_listing,
};
