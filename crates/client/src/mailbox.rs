//! The unified mailbox: every Ready server's messages as one POP3 maildrop.
//!
//! The edge's `Welcome` carries each server's listing (UIDL and size). The
//! mail client sees them numbered together in configuration order, each with
//! a UIDL of its own ([`shown_uidl`]): the server's UIDL prefixed by the
//! server's name (`HOST1:abc`), so UIDLs stay unique across servers and a
//! UIDL-keeping client (fetchmail, Thunderbird) never confuses two servers'
//! messages. STAT, LIST and UIDL are answered from here without a round trip
//! on the line; RETR, TOP and DELE are turned into requests naming the server
//! and the message's own UIDL and size, never a number.
//!
//! Like a POP3 server, the mailbox is a snapshot taken at login: mail that
//! arrives later is not shown, and a deleted message keeps its number (other
//! messages are never renumbered) but is hidden from STAT/LIST/UIDL.
//!
//! Pure data, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use causeway_proto::OpError;
use causeway_proto::session::{ListEntry, ListingState, MessageId, ServerFlags, ServerListing};
use sha2::{Digest, Sha256};

/// The longest UIDL a mail client is shown (RFC 1939 §7: 1 to 70
/// characters); strict clients refuse longer ones.
pub const MAX_SHOWN_UIDL: usize = 70;

/// One message as the mail client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Index of its server in [`Mailbox::servers`].
    pub server: usize,
    /// The server's own UIDL and the size it reported in LIST (what the
    /// edge understands).
    pub id: MessageId,
    /// The UIDL the mail client is shown.
    pub shown: String,
    pub deleted: bool,
    /// The system flags its IMAP server kept for it (`None`: a POP3
    /// server, or not known), for the IMAP front (`XFLAGS`).
    pub flags: Option<ServerFlags>,
}

impl Entry {
    pub fn size(&self) -> u64 {
        self.id.size
    }
}

/// The UIDL the mail client is shown for a message of server `server`: at
/// most [`MAX_SHOWN_UIDL`] printable characters, unique across servers, and
/// the same in every session.
///
/// `NAME:uidl` when that fits. A UIDL the server lists more than once (a
/// broken migration) gets its size as a second key, `NAME:uidl/size`, and a
/// UIDL listed twice with the same size too gets its place among them,
/// `NAME:uidl/size/k` (the edge refuses to touch those anyway). Whatever does
/// not fit, or could be mistaken for the digest form, is shown as
/// `NAME:#` and 32 hex digits of the SHA-256 of that key.
pub fn shown_uidl(server: &str, key: &str) -> String {
    let natural = format!("{server}:{key}");
    if natural.len() <= MAX_SHOWN_UIDL && !key.starts_with('#') {
        return natural;
    }
    let digest = hex32(&Sha256::digest(key.as_bytes()));
    format!("{server}:#{digest}")
}

fn hex32(bytes: &[u8]) -> String {
    bytes[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The key each message of one server's listing is shown by (see
/// [`shown_uidl`]), in listing order.
pub fn shown_keys(messages: &[ListEntry]) -> Vec<String> {
    let mut per_uidl: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_id: BTreeMap<(&str, u64), usize> = BTreeMap::new();
    for m in messages {
        *per_uidl.entry(&m.uidl).or_default() += 1;
        *per_id.entry((&m.uidl, m.size)).or_default() += 1;
    }
    let mut seen: BTreeMap<(&str, u64), usize> = BTreeMap::new();
    messages
        .iter()
        .map(|m| {
            if per_uidl[m.uidl.as_str()] == 1 {
                return m.uidl.clone();
            }
            let k = seen.entry((&m.uidl, m.size)).or_default();
            *k += 1;
            if per_id[&(m.uidl.as_str(), m.size)] == 1 {
                format!("{}/{}", m.uidl, m.size)
            } else {
                format!("{}/{}/{k}", m.uidl, m.size)
            }
        })
        .collect()
}

/// Why a message number does not name a message the mail client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    NoSuch,
    Deleted,
}

/// A server the mailbox could not include, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub server: String,
    pub error: OpError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    servers: Vec<String>,
    messages: Vec<Entry>,
}

impl Mailbox {
    /// Builds the mailbox from the edge's listings, in the order of `names`
    /// (the configuration). A configured server without a listing counts as
    /// unavailable. Returns the mailbox (possibly without any server, when
    /// none was Ready) and the servers left out.
    pub fn build(names: &[String], listings: &[ServerListing]) -> (Mailbox, Vec<Unavailable>) {
        let mut mailbox = Mailbox {
            servers: Vec::new(),
            messages: Vec::new(),
        };
        let mut unavailable = Vec::new();
        for name in names {
            match listings.iter().find(|l| &l.name == name).map(|l| &l.state) {
                Some(ListingState::Ready { messages }) => mailbox.add(name, messages),
                Some(ListingState::Unavailable { error }) => unavailable.push(Unavailable {
                    server: name.clone(),
                    error: error.clone(),
                }),
                None => unavailable.push(Unavailable {
                    server: name.clone(),
                    error: OpError::new(
                        Some(causeway_proto::ErrCode::SysTemp),
                        "the edge sent no listing for this server",
                    ),
                }),
            }
        }
        (mailbox, unavailable)
    }

    fn add(&mut self, name: &str, messages: &[ListEntry]) {
        let server = self.servers.len();
        self.servers.push(name.to_owned());
        let keys = shown_keys(messages);
        self.messages
            .extend(messages.iter().zip(keys).map(|(m, key)| Entry {
                server,
                id: MessageId {
                    uidl: m.uidl.clone(),
                    size: m.size,
                },
                shown: shown_uidl(name, &key),
                deleted: false,
                flags: m.flags,
            }));
    }

    /// The servers in the mailbox, in order.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Whether `server` has a message not deleted.
    pub fn has_live(&self, server: &str) -> bool {
        self.live().any(|(_, e)| self.servers[e.server] == server)
    }

    /// The numbers of `server`'s messages not deleted that are among
    /// `msgs`.
    pub fn numbers_of(&self, server: &str, msgs: &[MessageId]) -> Vec<u32> {
        let msgs: BTreeSet<&MessageId> = msgs.iter().collect();
        self.live()
            .filter(|(_, e)| self.servers[e.server] == server && msgs.contains(&e.id))
            .map(|(n, _)| n)
            .collect()
    }

    /// True if no server made it into the mailbox.
    pub fn has_no_server(&self) -> bool {
        self.servers.is_empty()
    }

    /// Message `n` (1-based), if it exists and is not deleted.
    pub fn get(&self, n: u32) -> Result<&Entry, Missing> {
        let e = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.messages.get(i))
            .ok_or(Missing::NoSuch)?;
        if e.deleted {
            Err(Missing::Deleted)
        } else {
            Ok(e)
        }
    }

    /// The server's name for an entry.
    pub fn server_name(&self, e: &Entry) -> &str {
        &self.servers[e.server]
    }

    /// True if its server lists another message under the same UIDL and
    /// size: no command can name it safely (the edge refuses them too).
    pub fn ambiguous(&self, e: &Entry) -> bool {
        self.messages
            .iter()
            .filter(|o| o.server == e.server && o.id == e.id)
            .count()
            > 1
    }

    /// (number, entry) of every message not deleted.
    pub fn live(&self) -> impl Iterator<Item = (u32, &Entry)> {
        (1u32..).zip(&self.messages).filter(|(_, e)| !e.deleted)
    }

    /// STAT: count and total octets of the messages not deleted.
    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, octets), (_, e)| (n + 1, octets + e.size()))
    }

    /// Marks message `n` deleted (after the edge acknowledged it).
    pub fn mark_deleted(&mut self, n: u32) {
        if let Some(e) = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.messages.get_mut(i))
        {
            e.deleted = true;
        }
    }

    /// Number of messages marked deleted.
    pub fn deleted_count(&self) -> usize {
        self.messages.iter().filter(|e| e.deleted).count()
    }

    /// Names of the servers with at least one deleted message, in order.
    pub fn servers_with_deletes(&self) -> Vec<String> {
        (0..self.servers.len())
            .filter(|&s| self.messages.iter().any(|e| e.server == s && e.deleted))
            .map(|s| self.servers[s].clone())
            .collect()
    }

    /// Undoes the deletes on one server (after the edge's RSET for it).
    pub fn undelete(&mut self, server: &str) {
        let Some(s) = self.servers.iter().position(|n| n == server) else {
            return;
        };
        for e in self.messages.iter_mut().filter(|e| e.server == s) {
            e.deleted = false;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use causeway_proto::ErrCode;

    pub(crate) fn ready(name: &str, msgs: &[(&str, u64)]) -> ServerListing {
        ServerListing {
            name: name.into(),
            state: ListingState::Ready {
                messages: msgs
                    .iter()
                    .map(|(u, s)| ListEntry {
                        uidl: (*u).into(),
                        size: *s,
                        flags: None,
                    })
                    .collect(),
            },
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn numbers_servers_together_in_configuration_order() {
        // The edge's order differs from the configuration's: configuration wins.
        let listings = [
            ready("B", &[("x", 5)]),
            ready("A", &[("a1", 10), ("a2", 20)]),
        ];
        let (mb, unavailable) = Mailbox::build(&names(&["A", "B"]), &listings);
        assert!(unavailable.is_empty());
        let shown: Vec<_> = mb
            .live()
            .map(|(n, e)| (n, e.shown.clone(), e.size()))
            .collect();
        assert_eq!(
            shown,
            [
                (1, "A:a1".into(), 10),
                (2, "A:a2".into(), 20),
                (3, "B:x".into(), 5)
            ]
        );
        assert_eq!(mb.stat(), (3, 35));
        assert_eq!(mb.server_name(mb.get(3).unwrap()), "B");
    }

    #[test]
    fn unavailable_and_missing_servers_are_left_out_with_a_reason() {
        let down = ServerListing {
            name: "B".into(),
            state: ListingState::Unavailable {
                error: OpError::new(Some(ErrCode::InUse), "locked"),
            },
        };
        let (mb, unavailable) =
            Mailbox::build(&names(&["A", "B", "C"]), &[ready("A", &[("a", 1)]), down]);
        let shown: Vec<_> = mb.live().map(|(_, e)| e.shown.clone()).collect();
        assert_eq!(shown, ["A:a"]);
        let who: Vec<_> = unavailable
            .iter()
            .map(|u| (u.server.as_str(), u.error.code))
            .collect();
        assert_eq!(
            who,
            [("B", Some(ErrCode::InUse)), ("C", Some(ErrCode::SysTemp))]
        );
        let (none, _) = Mailbox::build(&names(&["C"]), &[]);
        assert!(none.has_no_server());
    }

    #[test]
    fn deleted_messages_keep_their_number_and_disappear_from_listings() {
        let (mut mb, _) = Mailbox::build(
            &names(&["A", "B"]),
            &[
                ready("A", &[("a1", 10), ("a2", 20)]),
                ready("B", &[("b1", 5)]),
            ],
        );
        assert_eq!(mb.get(0), Err(Missing::NoSuch));
        assert_eq!(mb.get(4), Err(Missing::NoSuch));
        mb.mark_deleted(2);
        assert_eq!(mb.get(2), Err(Missing::Deleted));
        assert_eq!(mb.stat(), (2, 15));
        assert_eq!(mb.live().map(|(n, _)| n).collect::<Vec<_>>(), [1, 3]);
        mb.mark_deleted(3);
        assert_eq!(mb.servers_with_deletes(), ["A", "B"]);
        assert_eq!(mb.deleted_count(), 2);
        mb.undelete("A");
        assert_eq!(mb.servers_with_deletes(), ["B"]);
        assert_eq!(mb.get(2).unwrap().id.uidl, "a2");
    }

    #[test]
    fn shown_uidls_fit_70_characters_and_stay_unique_and_stable() {
        let long = "L".repeat(200);
        let listing = ready(
            "HOST1",
            &[
                ("plain", 5),
                (long.as_str(), 10),
                ("dup", 20),
                ("dup", 30),
                ("twin", 7),
                ("twin", 7),
                ("#looks-like-a-digest", 1),
            ],
        );
        let (mb, _) = Mailbox::build(&names(&["HOST1"]), std::slice::from_ref(&listing));
        let shown: Vec<String> = mb.live().map(|(_, e)| e.shown.clone()).collect();
        assert_eq!(shown[0], "HOST1:plain");
        assert!(shown[1].starts_with("HOST1:#") && shown[1].len() == 6 + 1 + 32);
        assert_eq!(shown[2], "HOST1:dup/20");
        assert_eq!(shown[3], "HOST1:dup/30");
        assert_eq!(shown[4], "HOST1:twin/7/1");
        assert_eq!(shown[5], "HOST1:twin/7/2");
        assert!(shown[6].starts_with("HOST1:#") && !shown[6].contains("looks"));
        for s in &shown {
            assert!(s.len() <= MAX_SHOWN_UIDL, "{s}");
            assert!(s.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{s}");
        }
        let unique: std::collections::BTreeSet<_> = shown.iter().collect();
        assert_eq!(unique.len(), shown.len());
        // The same listing next session: the same UIDLs.
        let (again, _) = Mailbox::build(&names(&["HOST1"]), &[listing]);
        let again: Vec<String> = again.live().map(|(_, e)| e.shown.clone()).collect();
        assert_eq!(again, shown);
        // The longest server name still leaves room.
        let name = "N".repeat(32);
        assert!(shown_uidl(&name, &long).len() <= MAX_SHOWN_UIDL);
    }
}
