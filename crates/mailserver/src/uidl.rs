//! Unique-id listings (UIDL): the names clients remember messages by.
//!
//! A client that "leaves mail on the server" downloads only the UIDLs it has
//! not seen before, so a UIDL must never change while the message exists and
//! must never be handed to another message afterwards. The store therefore
//! derives it from a per-mailbox UID counter that only goes up, plus a
//! UIDVALIDITY drawn once when the mailbox is created (Dovecot's default
//! `pop3_uidl_format = %08Xu%08Xv`).

use std::fmt;

/// A message's unique id as POP3 `UIDL` shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uidl(String);

impl Uidl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uidl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Uidl {
    fn from(s: &str) -> Self {
        Uidl(s.to_owned())
    }
}

impl From<String> for Uidl {
    fn from(s: String) -> Self {
        Uidl(s)
    }
}

impl PartialEq<str> for Uidl {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Uidl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// How UIDLs are spelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UidlFormat {
    /// Dovecot's default: 8 lowercase hex digits of the UID, then 8 of the
    /// UIDVALIDITY, e.g. `000000016b0b34ac`.
    #[default]
    Dovecot,
    /// The bare decimal UID (Dovecot's `%u`): handy when a test wants
    /// predictable names.
    Uid,
}

impl UidlFormat {
    pub(crate) fn format(self, uid: u32, uidvalidity: u32) -> Uidl {
        match self {
            UidlFormat::Dovecot => Uidl(format!("{uid:08x}{uidvalidity:08x}")),
            UidlFormat::Uid => Uidl(uid.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_style_is_sixteen_hex_digits() {
        let u = UidlFormat::Dovecot.format(1, 0x6b0b_34ac);
        assert_eq!(u, "000000016b0b34ac");
        assert_eq!(UidlFormat::Uid.format(42, 7), "42");
    }
}
