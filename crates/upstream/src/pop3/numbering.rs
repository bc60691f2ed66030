//! Message numbers belong to one server session; UIDLs do not.
//!
//! POP3 names messages by number, and numbers shift between sessions: mail
//! delivered or deleted by someone else renumbers the maildrop. Work that
//! outlives a server session (an acknowledged delete, a read mark) is
//! therefore kept by UIDL, and every new server session rebuilds this map
//! from its own `UIDL` answer before any command names a number.
//!
//! **Duplicate UIDLs.** A UIDL is meant to be unique in a maildrop, but
//! servers after a broken migration list one UIDL twice, and some reuse a
//! UIDL once its message is gone. The one rule, everywhere in Causeway: a
//! message is named by its UIDL *and* its size (as `LIST` gives it). A
//! message listed with the UIDL but another size is another message
//! ([`Resolved::Gone`] for this work: deleting it would delete mail the user
//! never deleted); when even the size does not tell two messages apart, the
//! message is [`Resolved::Ambiguous`] and nothing is ever done to it (no
//! fetch, no delete, no read mark).
//!
//! **A copy that comes later.** Even a unique UIDL and size can name a
//! newcomer: a copy delivered after the original was deleted (or while the
//! `QUIT` that deleted it lost its reply). Servers list a maildrop in the
//! order mail arrived, so [`Numbering::in_order`] lets work that outlives a
//! session remember a message listed after its own; when a later session
//! lists the UIDL *after* that witness, it is not the same message.

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

/// UIDL -> message numbers and sizes, for the current server session only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Numbering {
    by_uidl: BTreeMap<String, Vec<(u32, Option<u64>)>>,
}

impl Numbering {
    /// The numbering of a session whose `UIDL` answered `uidls` and whose
    /// `LIST` answered `sizes`.
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

    /// The number of the message with this UIDL and size in this session.
    /// `size` is `None` where it is not known (work journaled by an older
    /// edge): then only a unique UIDL resolves.
    pub fn resolve(&self, uidl: &str, size: Option<u64>) -> Resolved {
        let Some(all) = self.by_uidl.get(uidl) else {
            return Resolved::Gone;
        };
        let Some(size) = size else {
            return match all.as_slice() {
                [(n, _)] => Resolved::Number(*n),
                _ => Resolved::Ambiguous,
            };
        };
        let mut same = all.iter().filter(|(_, s)| *s == Some(size));
        match (same.next(), same.next()) {
            (None, _) => Resolved::Gone,
            (Some((n, _)), None) => Resolved::Number(*n),
            (Some(_), Some(_)) => Resolved::Ambiguous,
        }
    }

    /// Every message as the server listed it, by number: `(number, UIDL,
    /// size)`.
    pub fn in_order(&self) -> Vec<(u32, &str, Option<u64>)> {
        let mut all: Vec<_> = self
            .by_uidl
            .iter()
            .flat_map(|(u, ns)| ns.iter().map(move |(n, s)| (*n, u.as_str(), *s)))
            .collect();
        all.sort_unstable_by_key(|(n, _, _)| *n);
        all
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
        let first = Numbering::new(listing(&["a", "b"]), &BTreeMap::from([(1, 1), (2, 10)]));
        assert_eq!(first.resolve("b", Some(10)), Resolved::Number(2));
        // Next session: "a" was deleted elsewhere, "b" is now number 1.
        let second = Numbering::new(listing(&["b", "new"]), &BTreeMap::from([(1, 10), (2, 7)]));
        assert_eq!(second.resolve("b", Some(10)), Resolved::Number(1));
        assert_eq!(second.resolve("b", None), Resolved::Number(1));
        assert_eq!(second.resolve("a", Some(1)), Resolved::Gone);
        assert_eq!(Numbering::default().resolve("b", None), Resolved::Gone);
    }

    #[test]
    fn a_uidl_listed_with_another_size_is_another_message() {
        // Three messages shared UIDL "dup"; two were deleted (sizes 300 and
        // 400) and the session that did it lost QUIT's answer. The next
        // session lists "dup" once, at size 100: the owed deletes are done,
        // not aimed at the survivor.
        let n = Numbering::new(listing(&["x", "dup"]), &BTreeMap::from([(1, 5), (2, 100)]));
        assert_eq!(n.resolve("dup", Some(300)), Resolved::Gone);
        assert_eq!(n.resolve("dup", Some(400)), Resolved::Gone);
        assert_eq!(n.resolve("dup", Some(100)), Resolved::Number(2));
    }

    #[test]
    fn a_duplicate_uidl_is_told_apart_by_size_or_left_alone() {
        let uidls = listing(&["dup", "x", "dup", "dup"]);
        let sizes = BTreeMap::from([(1, 100), (2, 5), (3, 200), (4, 200)]);
        let n = Numbering::new(uidls, &sizes);
        assert_eq!(n.resolve("dup", Some(100)), Resolved::Number(1));
        assert_eq!(n.resolve("dup", Some(200)), Resolved::Ambiguous);
        assert_eq!(n.resolve("dup", Some(300)), Resolved::Gone);
        assert_eq!(n.resolve("dup", None), Resolved::Ambiguous);
        assert_eq!(n.resolve("x", None), Resolved::Number(2));
    }
}
