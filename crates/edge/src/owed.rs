//! What the edge can owe a mail server, and which message it is about: the
//! vocabulary the journal, the ledger and the workers share.

/// Work acknowledged to the client and owed to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owed {
    /// `RETR n`: the body reached the mail client; mark it read. Ordered
    /// before `Delete` so a message both read and deleted is RETR'd first.
    Read,
    /// `DELE n`.
    Delete,
}

/// A message as owed work names it: its UIDL, and its size where known
/// (work journaled before sizes were recorded has none).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub uidl: String,
    pub size: Option<u64>,
}

impl Target {
    pub fn new(uidl: &str, size: u64) -> Self {
        Self {
            uidl: uidl.to_owned(),
            size: Some(size),
        }
    }
}

/// "read mark" / "delete", for log lines.
pub fn what(owed: Owed) -> &'static str {
    match owed {
        Owed::Read => "read mark",
        Owed::Delete => "delete",
    }
}
