//! What Causeway's nodes say to each other.
//!
//! `causeway-wire` moves opaque typed frames securely; this crate is the
//! catalogue of those frames' contents, kept apart so the transport can be
//! reasoned about (and fuzzed) without knowing about mail, and the protocol can
//! be read in one place:
//!
//! - [`session`]: client proxy <-> edge. The client proxy hands over the user
//!   information once, then forwards the mail client's requests tagged with the
//!   server's name, and acknowledges each body that reached the mail client
//!   completely (the edge marks a message read only after that).
//! - [`relay`]: edge <-> relay. The relay is a remote POP3 client: it opens one
//!   server session on the edge's behalf and runs the commands the edge sends.
//! - [`user`]: the user information (servers, credentials, routes).
//!
//! Every request carries an id and every response names the id it answers, so
//! a later protocol version can pipeline requests and resume a session after a
//! line cut without changing the shape of these messages.
//!
//! Owns: the messages and the user information, with their validation.
//! Depends on `causeway-wire` only for the [`causeway_wire::Message`] trait,
//! and on `causeway-pop3` only for the text criterion of a search; never on
//! a node.
//!
//! **The credential rule.** Messages that carry passwords say so through
//! [`causeway_wire::Message::carries_credentials`]; `causeway_wire::link::send`
//! then sends them uncompressed and outside the compression context, so that
//! no compression side channel ever mixes a password with
//! attacker-influenced mail content.

pub mod fuzzing;
pub mod line_ends;
pub mod relay;
mod secret;
pub mod session;
pub mod user;

pub use secret::Secret;

/// Bumped on any incompatible change of these messages; sent in the first
/// message of each link and checked by the receiver.
pub const PROTOCOL_VERSION: u16 = 21;

/// An error a mail server (or our own node on its behalf) reported, with the
/// RFC 2449 response code when there was one, so the mail client can tell
/// "locked, try later" from "wrong password".
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpError {
    pub code: Option<ErrCode>,
    pub text: String,
}

impl OpError {
    pub fn new(code: Option<ErrCode>, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "[{}] {}", c.as_str(), self.text),
            None => f.write_str(&self.text),
        }
    }
}

impl std::error::Error for OpError {}

/// RFC 2449 response codes (and the few of our own a mail client may need).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrCode {
    /// `[IN-USE]`: the maildrop is locked by another session.
    InUse,
    /// `[LOGIN-DELAY]`: logged in too recently.
    LoginDelay,
    /// `[AUTH]`: the credentials were refused.
    Auth,
    /// `[SYS/TEMP]`: a temporary failure; retrying later may work.
    SysTemp,
    /// `[SYS/PERM]`: a permanent failure.
    SysPerm,
}

impl ErrCode {
    /// The code as written inside the brackets of a POP3 reply.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrCode::InUse => "IN-USE",
            ErrCode::LoginDelay => "LOGIN-DELAY",
            ErrCode::Auth => "AUTH",
            ErrCode::SysTemp => "SYS/TEMP",
            ErrCode::SysPerm => "SYS/PERM",
        }
    }
}
