//! Keywords: the flags a mail client names itself (`$Junk`, `$NotJunk`,
//! `$Forwarded`, `$MDNSent`, Thunderbird's tags `$label1`...).
//!
//! A client learns from PERMANENTFLAGS whether the folder keeps them: with
//! `\*` it may define new ones by storing them, and Thunderbird then keeps
//! its tags and junk marks on the folder rather than only in its own files.
//! A folder keeps a table of at most [`MAX_KEYWORDS`] names, and each
//! message a set of bits into it, so that a message's flags stay one small
//! copyable value however long the names are. A slot is given to a name
//! once and keeps it while any message may carry its bit; the keeper of
//! the table frees the slots no message uses when it starts
//! ([`Keywords::keep_only`]), never while sessions may hold bits.
//!
//! Keywords compare without regard to case (as Dovecot's do): `$junk` is
//! `$Junk`, and the table keeps the spelling first stored.

use imap_types::core::Atom;
use imap_types::flag::Flag;

/// The most keywords one folder holds (a message's keywords are the bits
/// of a `u32`). A STORE that would define one more is refused with
/// `[LIMIT]`, and PERMANENTFLAGS leaves out `\*` once the table is full.
pub const MAX_KEYWORDS: usize = 32;

/// The longest keyword kept, in bytes (Dovecot's `mail_max_keyword_length`
/// is 50).
pub const MAX_KEYWORD_LEN: usize = 64;

/// A folder's keyword table: slot `i` names bit `i`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    slots: Vec<Option<String>>,
}

/// Why a STORE's keywords cannot be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unkept {
    #[error(
        "this folder keeps at most {MAX_KEYWORDS} keywords and has no room for {0}; remove a \
         keyword from every message that has it, and it is freed at the proxy's next start"
    )]
    Full(String),
    #[error("a keyword is kept up to {MAX_KEYWORD_LEN} characters")]
    TooLong,
}

impl Keywords {
    /// The table as a keeper stored it (slots past [`MAX_KEYWORDS`], and
    /// names that are not keywords, are dropped).
    pub fn from_slots(mut slots: Vec<Option<String>>) -> Self {
        slots.truncate(MAX_KEYWORDS);
        for s in &mut slots {
            if s.as_deref().is_some_and(|n| keyword(n).is_none()) {
                *s = None;
            }
        }
        Keywords { slots }
    }

    /// The slots, for a keeper to store.
    pub fn slots(&self) -> &[Option<String>] {
        &self.slots
    }

    /// Whether another keyword can be defined (PERMANENTFLAGS' `\*`).
    pub fn has_room(&self) -> bool {
        self.slots.len() < MAX_KEYWORDS || self.slots.iter().any(Option::is_none)
    }

    /// The bit of keyword `name`; 0 if the table does not know it, as no
    /// message carries it then (SEARCH KEYWORD).
    pub fn bit(&self, name: &str) -> u32 {
        self.slots
            .iter()
            .position(|s| s.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .map_or(0, |i| 1 << i)
    }

    /// The bits of the keywords among `flags` (those the table does not
    /// know are none of any message's).
    pub fn mask(&self, flags: &[Flag<'_>]) -> u32 {
        flags
            .iter()
            .map(|f| match f {
                Flag::Keyword(a) => self.bit(a.as_ref()),
                _ => 0,
            })
            .fold(0, |acc, b| acc | b)
    }

    /// The bits of every slot that names a keyword: a message's other bits
    /// are none.
    pub fn named(&self) -> u32 {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .fold(0, |acc, (i, _)| acc | (1 << i))
    }

    /// Gives a slot to each keyword among `flags` the table does not know;
    /// returns whether it did. Nothing changes if one cannot be kept.
    pub fn admit(&mut self, flags: &[Flag<'_>]) -> Result<bool, Unkept> {
        let mut table = self.clone();
        for f in flags {
            let Flag::Keyword(a) = f else { continue };
            let name = a.as_ref();
            if table.bit(name) != 0 {
                continue;
            }
            if name.len() > MAX_KEYWORD_LEN {
                return Err(Unkept::TooLong);
            }
            match table.slots.iter().position(Option::is_none) {
                Some(free) => table.slots[free] = Some(name.to_owned()),
                None if table.slots.len() < MAX_KEYWORDS => table.slots.push(Some(name.to_owned())),
                None => return Err(Unkept::Full(name.to_owned())),
            }
        }
        let grew = table != *self;
        *self = table;
        Ok(grew)
    }

    /// Frees the slots of every keyword no message carries (`used`: the
    /// union of every message's bits); returns whether any was freed.
    pub fn keep_only(&mut self, used: u32) -> bool {
        let mut freed = false;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.is_some() && used & (1 << i) == 0 {
                *s = None;
                freed = true;
            }
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        freed
    }

    /// The keywords of `bits`, in slot order.
    pub fn flags(&self, bits: u32) -> impl Iterator<Item = Flag<'static>> + '_ {
        self.slots.iter().enumerate().filter_map(move |(i, s)| {
            let name = s.as_deref()?;
            (bits & (1 << i) != 0).then(|| keyword(name)).flatten()
        })
    }

    /// Every keyword of the table (FLAGS, PERMANENTFLAGS).
    pub fn all(&self) -> impl Iterator<Item = Flag<'static>> + '_ {
        self.flags(u32::MAX)
    }
}

fn keyword(name: &str) -> Option<Flag<'static>> {
    Atom::try_from(name.to_owned()).ok().map(Flag::Keyword)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(names: &[&str]) -> Vec<Flag<'static>> {
        names
            .iter()
            .map(|n| Flag::Keyword(Atom::try_from((*n).to_owned()).unwrap()))
            .collect()
    }

    fn names(k: &Keywords, bits: u32) -> Vec<String> {
        k.flags(bits).map(|f| f.to_string()).collect()
    }

    #[test]
    fn keywords_get_slots_once_case_blind_and_system_flags_none() {
        let mut k = Keywords::default();
        let mut stored = kw(&["$Junk", "work"]);
        stored.push(Flag::Seen);
        assert_eq!(k.admit(&stored), Ok(true));
        assert_eq!(k.admit(&kw(&["$JUNK"])), Ok(false));
        assert_eq!(k.mask(&kw(&["$junk"])), 1);
        assert_eq!(k.mask(&stored), 0b11);
        assert_eq!(k.mask(&kw(&["unknown"])), 0);
        assert_eq!(names(&k, 0b10), vec!["work"]);
        assert_eq!(names(&k, u32::MAX), vec!["$Junk", "work"]);
    }

    #[test]
    fn a_full_table_refuses_and_changes_nothing_until_a_slot_is_freed() {
        let mut k = Keywords::default();
        let many: Vec<String> = (0..MAX_KEYWORDS).map(|i| format!("k{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(k.admit(&kw(&many)), Ok(true));
        assert!(!k.has_room());
        let before = k.clone();
        assert!(matches!(k.admit(&kw(&["k0", "new"])), Err(Unkept::Full(n)) if n == "new"));
        assert_eq!(k, before);
        // Every message's bits but k3's: its slot is freed and taken again.
        assert!(k.keep_only(!(1 << 3)));
        assert!(k.has_room());
        assert_eq!(k.admit(&kw(&["new"])), Ok(true));
        assert_eq!(k.mask(&kw(&["new"])), 1 << 3);
        let long = "x".repeat(MAX_KEYWORD_LEN + 1);
        assert_eq!(
            Keywords::default().admit(&kw(&[long.as_str()])),
            Err(Unkept::TooLong)
        );
    }

    #[test]
    fn a_stored_table_is_read_back_and_trailing_free_slots_go() {
        let mut k = Keywords::from_slots(vec![Some("a".into()), Some("b".into()), None]);
        assert_eq!(k.slots().len(), 3);
        assert!(k.keep_only(0b01));
        assert_eq!(k.slots(), &[Some("a".to_owned())]);
        let hostile = Keywords::from_slots(vec![Some("no spaces".into()); MAX_KEYWORDS + 5]);
        assert_eq!(hostile.slots(), &vec![None; MAX_KEYWORDS][..]);
    }
}
