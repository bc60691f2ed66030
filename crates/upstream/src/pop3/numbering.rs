//! Message numbers belong to one server session; UIDLs do not.
//!
//! POP3 names messages by number, and numbers shift between sessions: mail
//! delivered or deleted by someone else renumbers the maildrop. Work that
//! outlives a server session (an acknowledged delete, a read mark) is
//! therefore kept by UIDL, and every new server session rebuilds this map
//! from its own `UIDL` answer before any command names a number.

use std::collections::BTreeMap;

/// UIDL -> message number, for the current server session only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Numbering {
    by_uidl: BTreeMap<String, u32>,
}

impl Numbering {
    /// The numbering of a session whose `UIDL` answered `listing`.
    pub fn new(listing: impl IntoIterator<Item = (u32, String)>) -> Self {
        Self {
            by_uidl: listing.into_iter().map(|(n, u)| (u, n)).collect(),
        }
    }

    /// The number of `uidl` in this session, if the server listed it.
    pub fn number(&self, uidl: &str) -> Option<u32> {
        self.by_uidl.get(uidl).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_from_this_sessions_listing_only() {
        let first = Numbering::new([(1, "a".to_owned()), (2, "b".to_owned())]);
        assert_eq!(first.number("b"), Some(2));
        // Next session: "a" was deleted elsewhere, "b" is now number 1.
        let second = Numbering::new([(1, "b".to_owned()), (2, "new".to_owned())]);
        assert_eq!(second.number("b"), Some(1));
        assert_eq!(second.number("a"), None);
        assert_eq!(Numbering::default().number("b"), None);
    }
}
