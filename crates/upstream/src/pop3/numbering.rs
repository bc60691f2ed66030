//! Message numbers belong to one server session; UIDLs do not.
//!
//! POP3 names messages by number, and numbers shift between sessions: mail
//! delivered or deleted by someone else renumbers the maildrop. Work that
//! outlives a server session (an acknowledged delete, a read mark) is
//! therefore kept by UIDL, and every new server session rebuilds this map
//! from its own `UIDL` answer before any command names a number.
//!
//! **Duplicate UIDLs.** A UIDL is meant to be unique in a maildrop, but
//! servers after a broken migration list one UIDL twice. The one rule,
//! everywhere in Causeway: a message is named by its UIDL *and* its size (as
//! `LIST` gives it); when the UIDL is unique the size is not needed, when it
//! is not, the size tells the messages apart, and when even the size does
//! not, the message is [`Resolved::Ambiguous`] and nothing is ever done to
//! it (no fetch, no delete, no read mark).

use std::collections::BTreeMap;

/// Where a message is in the current server session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    Number(u32),
    /// The server no longer lists it.
    Gone,
    /// Several messages share its UIDL (and size): it cannot be named safely.
    Ambiguous,
}

/// UIDL -> message numbers (and sizes, when the UIDL is not unique), for the
/// current server session only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Numbering {
    by_uidl: BTreeMap<String, Vec<(u32, Option<u64>)>>,
}

impl Numbering {
    /// The numbering of a session whose `UIDL` answered `uidls`; `sizes` is
    /// its `LIST` answer, needed only when some UIDL is listed twice (see
    /// [`Numbering::needs_sizes`]).
    pub fn new(uidls: impl IntoIterator<Item = (u32, String)>, sizes: &BTreeMap<u32, u64>) -> Self {
        let mut by_uidl: BTreeMap<String, Vec<(u32, Option<u64>)>> = BTreeMap::new();
        for (n, u) in uidls {
            by_uidl
                .entry(u)
                .or_default()
                .push((n, sizes.get(&n).copied()));
        }
        Self { by_uidl }
    }

    /// True if some UIDL appears twice in `uidls`: then the sizes are needed
    /// to tell its messages apart.
    pub fn needs_sizes(uidls: &[(u32, String)]) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        uidls.iter().any(|(_, u)| !seen.insert(u.as_str()))
    }

    /// The number of the message with this UIDL and size in this session.
    /// `size` is `None` where it is not known (work journaled by an older
    /// edge): then only a unique UIDL resolves.
    pub fn resolve(&self, uidl: &str, size: Option<u64>) -> Resolved {
        let Some(all) = self.by_uidl.get(uidl) else {
            return Resolved::Gone;
        };
        if let [(n, _)] = all.as_slice() {
            return Resolved::Number(*n);
        }
        let Some(size) = size else {
            return Resolved::Ambiguous;
        };
        let mut same = all.iter().filter(|(_, s)| *s == Some(size));
        match (same.next(), same.next()) {
            (None, _) => Resolved::Gone,
            (Some((n, _)), None) => Resolved::Number(*n),
            (Some(_), Some(_)) => Resolved::Ambiguous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(uidls: &[&str]) -> Vec<(u32, String)> {
        uidls
            .iter()
            .enumerate()
            .map(|(i, u)| (i as u32 + 1, u.to_string()))
            .collect()
    }

    #[test]
    fn numbers_come_from_this_sessions_listing_only() {
        let first = Numbering::new(listing(&["a", "b"]), &BTreeMap::new());
        assert_eq!(first.resolve("b", Some(10)), Resolved::Number(2));
        // Next session: "a" was deleted elsewhere, "b" is now number 1.
        let second = Numbering::new(listing(&["b", "new"]), &BTreeMap::new());
        assert_eq!(second.resolve("b", None), Resolved::Number(1));
        assert_eq!(second.resolve("a", Some(1)), Resolved::Gone);
        assert_eq!(Numbering::default().resolve("b", None), Resolved::Gone);
    }

    #[test]
    fn a_duplicate_uidl_is_told_apart_by_size_or_left_alone() {
        let uidls = listing(&["dup", "x", "dup", "dup"]);
        assert!(Numbering::needs_sizes(&uidls));
        assert!(!Numbering::needs_sizes(&listing(&["a", "b"])));
        let sizes = BTreeMap::from([(1, 100), (2, 5), (3, 200), (4, 200)]);
        let n = Numbering::new(uidls, &sizes);
        assert_eq!(n.resolve("dup", Some(100)), Resolved::Number(1));
        assert_eq!(n.resolve("dup", Some(200)), Resolved::Ambiguous);
        assert_eq!(n.resolve("dup", Some(300)), Resolved::Gone);
        assert_eq!(n.resolve("dup", None), Resolved::Ambiguous);
        assert_eq!(n.resolve("x", None), Resolved::Number(2));
    }
}
