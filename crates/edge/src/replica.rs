//! The session's replica of the user's mailboxes: one list per server, plus a
//! capped cache of the bodies fetched so far.
//!
//! The list is what the client proxy answers STAT, LIST and UIDL from, so it is
//! fetched whole at session start and never evicted. Bodies come on demand and
//! are kept only to answer a repeated RETR or a TOP without another trip to the
//! server, and to send again what a cut lost, until the client proxy's
//! `Window` says it holds them whole (its mirror is the copy then); they are
//! evicted least-recently-used by bytes, so one session can
//! never hold more than `replica_cache_bytes` of mail, and all sessions
//! together not more than `replica_cache_total_bytes` (a
//! [`causeway_cache::Pool`]: a session
//! makes room by evicting its own bodies, never another's). A body that does
//! not fit is served but not kept.
//!
//! Messages are named by UIDL and size (see
//! `causeway_upstream::pop3::Numbering`): two messages a broken server lists
//! with the same UIDL *and* size are both shown, but the replica refuses to
//! fetch, delete or mark either.
//!
//! Deletes and RSET act here first (the client gets its answer at once); the
//! server follows through the worker. The replica dies with the session, and
//! holds a [`crate::state::Ticket`] so "no replica outlives its session" is a
//! counter the tests can read.
//!
//! Pure data: no sockets, no clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use causeway_cache::ByteLru;
use causeway_proto::session::{
    ListEntry, ListingState, MessageId, Place, ServerFlags, ServerListing, witness,
};
use causeway_proto::{ErrCode, OpError};

use crate::state::Ticket;

/// One message as the client proxy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// How many messages the server listed with this UIDL and size: more
    /// than one, and none of them may be touched.
    count: usize,
    deleted: bool,
    /// Its first place in the listing (see [`Place`]).
    place: Place,
}

/// A server's list, in server order, indexed by UIDL and size.
#[derive(Debug, Default)]
struct ServerList {
    order: Vec<MessageId>,
    /// The server's flags of each message in `order`, for `Welcome`.
    flags: Vec<Option<ServerFlags>>,
    entries: BTreeMap<MessageId, Entry>,
}

/// A session's bodies by (server, message).
pub type Bodies = ByteLru<(String, MessageId), Arc<Vec<u8>>>;

/// What a server looked like when the session opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    Ready(Vec<ListEntry>),
    Unavailable(OpError),
}

pub struct Replica {
    /// In the order the user information named the servers.
    servers: Vec<(String, Result<ServerList, OpError>)>,
    /// Bodies by (server, message), shared with the stream's outbox.
    cache: Bodies,
    _live: Ticket,
}

impl Replica {
    /// A replica of `servers` (name, what opening it gave), keeping bodies
    /// in `cache`.
    pub fn new(servers: Vec<(String, Opened)>, cache: Bodies, live: Ticket) -> Self {
        let servers = servers
            .into_iter()
            .map(|(name, opened)| {
                let list = match opened {
                    Opened::Ready(entries) => {
                        let mut l = ServerList::default();
                        for (place, e) in (0..).zip(entries) {
                            let id = MessageId {
                                uidl: e.uidl,
                                size: e.size,
                            };
                            l.order.push(id.clone());
                            l.flags.push(e.flags);
                            l.entries
                                .entry(id)
                                .or_insert(Entry {
                                    count: 0,
                                    deleted: false,
                                    place,
                                })
                                .count += 1;
                        }
                        Ok(l)
                    }
                    Opened::Unavailable(e) => Err(e),
                };
                (name, list)
            })
            .collect();
        Self {
            servers,
            cache,
            _live: live,
        }
    }

    /// The listing for `Welcome`: every message, deleted or not (nothing is
    /// deleted yet when it is sent).
    pub fn listing(&self) -> Vec<ServerListing> {
        self.servers
            .iter()
            .map(|(name, list)| ServerListing {
                name: name.clone(),
                state: match list {
                    Ok(l) => ListingState::Ready {
                        messages: (l.order.iter().zip(&l.flags))
                            .map(|(id, flags)| ListEntry {
                                uidl: id.uidl.clone(),
                                size: id.size,
                                flags: *flags,
                            })
                            .collect(),
                    },
                    Err(e) => ListingState::Unavailable { error: e.clone() },
                },
            })
            .collect()
    }

    /// The octets of every message listed, on every server that opened.
    pub fn mailbox_bytes(&self) -> u64 {
        self.servers
            .iter()
            .filter_map(|(_, l)| l.as_ref().ok())
            .flat_map(|l| l.order.iter().map(|id| id.size))
            .sum()
    }

    fn list(&self, server: &str) -> Result<&ServerList, OpError> {
        let slot = self.servers.iter().find(|(n, _)| n == server);
        usable(server, slot.map(|(_, l)| l.as_ref()))
    }

    fn list_mut(&mut self, server: &str) -> Result<&mut ServerList, OpError> {
        let slot = self.servers.iter_mut().find(|(n, _)| n == server);
        usable(server, slot.map(|(_, l)| l.as_mut().map_err(|e| &*e)))
    }

    /// Checks that `msg` is a live message of `server` that may be touched
    /// (the errors read like Dovecot's, since the mail client shows them as
    /// the server's), and gives its place in the listing.
    pub fn check(&self, server: &str, msg: &MessageId) -> Result<Place, OpError> {
        match self.list(server)?.entries.get(msg) {
            None => Err(OpError::new(
                None,
                format!("There's no message {}.", msg.uidl),
            )),
            Some(e) if e.deleted => Err(OpError::new(None, "Message is deleted.")),
            Some(e) if e.count > 1 => Err(OpError::new(
                Some(ErrCode::SysPerm),
                format!(
                    "Server {server} lists more than one message as {} of {} octets; Causeway \
                     will not fetch, delete or mark them until the server's UIDLs are fixed.",
                    msg.uidl, msg.size
                ),
            )),
            Some(e) => Ok(e.place),
        }
    }

    /// The message at `at` in `server`'s listing, deleted or not.
    pub fn at(&self, server: &str, at: Place) -> Result<MessageId, OpError> {
        let list = self.list(server)?;
        let id = usize::try_from(at).ok().and_then(|i| list.order.get(i));
        id.cloned().ok_or_else(|| {
            OpError::new(
                Some(ErrCode::SysPerm),
                format!("{server}'s listing in this session has no message {at}"),
            )
        })
    }

    /// Where `msg` is in `server`'s listing, deleted or not.
    pub fn place(&self, server: &str, msg: &MessageId) -> Option<Place> {
        Some(self.list(server).ok()?.entries.get(msg)?.place)
    }

    /// The witness the crash journal keeps with work on `msg`
    /// ([`causeway_proto::session::witness`]): a message `server` listed
    /// after it that is neither deleted in this session nor listed twice.
    pub fn witness(&self, server: &str, msg: &MessageId) -> Option<MessageId> {
        let list = self.list(server).ok()?;
        let at = usize::try_from(list.entries.get(msg)?.place).ok()?;
        let usable = |id: &MessageId| {
            list.entries
                .get(id)
                .is_some_and(|e| e.count == 1 && !e.deleted)
        };
        witness(&list.order, at, usable).cloned()
    }

    /// Marks `msg` deleted (the server follows at its QUIT).
    pub fn delete(&mut self, server: &str, msg: &MessageId) -> Result<(), OpError> {
        self.check(server, msg)?;
        if let Some(e) = self.list_mut(server)?.entries.get_mut(msg) {
            e.deleted = true;
        }
        Ok(())
    }

    /// Undoes this session's deletes on `server`.
    pub fn rset(&mut self, server: &str) -> Result<(), OpError> {
        for e in self.list_mut(server)?.entries.values_mut() {
            e.deleted = false;
        }
        Ok(())
    }

    /// The cached body of a live message, if it is cached.
    pub fn body(&mut self, server: &str, msg: &MessageId) -> Option<Arc<Vec<u8>>> {
        self.check(server, msg).ok()?;
        self.cache.get(&(server.to_owned(), msg.clone())).cloned()
    }

    /// Keeps a fetched body (if it fits the cap at all).
    pub fn store_body(&mut self, server: &str, msg: &MessageId, body: Arc<Vec<u8>>) {
        self.cache.put((server.to_owned(), msg.clone()), body);
    }

    /// Lets go of a body the client proxy holds whole: its mirror is the
    /// copy now (an idle session kept its whole prefetched mailbox here
    /// too, about 40 KB a session: #18). Should the proxy ask for it again
    /// (its mirror evicted it), the server is asked again.
    pub fn forget_body(&mut self, server: &str, msg: &MessageId) {
        self.cache.take(&(server.to_owned(), msg.clone()));
    }

    /// Bytes of body currently cached.
    #[cfg(test)]
    pub fn cached_bytes(&self) -> usize {
        self.cache.used()
    }
}

/// The list of a server, or why the client cannot use it.
fn usable<L>(server: &str, slot: Option<Result<L, &OpError>>) -> Result<L, OpError> {
    match slot {
        None => Err(OpError::new(
            None,
            format!("There is no server named {server} in this session."),
        )),
        Some(Err(e)) => Err(OpError::new(
            e.code,
            format!("Server {server} is unavailable: {}", e.text),
        )),
        Some(Ok(l)) => Ok(l),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EdgeState;
    use causeway_proto::session::WITNESS_REACH;

    /// The id of `u<i>` in [`entries`].
    fn m(uidl: &str) -> MessageId {
        let i: u64 = uidl[1..].parse().unwrap_or(1);
        MessageId {
            uidl: uidl.into(),
            size: 100 * i,
        }
    }

    fn entries(n: usize) -> Vec<ListEntry> {
        (1..=n)
            .map(|i| ListEntry {
                uidl: format!("u{i}"),
                size: 100 * i as u64,
                flags: None,
            })
            .collect()
    }

    fn replica(state: &EdgeState, cap: usize) -> Replica {
        Replica::new(
            vec![
                ("A".into(), Opened::Ready(entries(3))),
                (
                    "B".into(),
                    Opened::Unavailable(OpError::new(
                        Some(causeway_proto::ErrCode::InUse),
                        "locked",
                    )),
                ),
            ],
            ByteLru::new(cap),
            state.replica_ticket(),
        )
    }

    #[test]
    fn listing_keeps_server_order_and_errors() {
        let st = EdgeState::new();
        let r = replica(&st, 1000);
        let l = r.listing();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "A");
        assert_eq!(
            l[0].state,
            ListingState::Ready {
                messages: entries(3)
            }
        );
        match &l[1].state {
            ListingState::Unavailable { error } => assert_eq!(error.to_string(), "[IN-USE] locked"),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn delete_rset_and_dovecot_errors() {
        let st = EdgeState::new();
        let mut r = replica(&st, 1000);
        r.delete("A", &m("u2")).unwrap();
        assert_eq!(
            r.delete("A", &m("u2")).unwrap_err().text,
            "Message is deleted."
        );
        assert_eq!(
            r.check("A", &m("u2")).unwrap_err().text,
            "Message is deleted."
        );
        assert!(
            r.check("A", &m("nope"))
                .unwrap_err()
                .text
                .contains("no message nope")
        );
        assert!(
            r.check("C", &m("u1"))
                .unwrap_err()
                .text
                .contains("no server named C")
        );
        let e = r.check("B", &m("u1")).unwrap_err();
        assert_eq!(e.code, Some(causeway_proto::ErrCode::InUse));
        assert!(e.text.contains("unavailable"), "{e}");
        r.rset("A").unwrap();
        r.check("A", &m("u2")).unwrap();
    }

    #[test]
    fn cache_evicts_least_recently_used_bodies_never_the_list() {
        let st = EdgeState::new();
        let mut r = replica(&st, 250);
        r.store_body("A", &m("u1"), Arc::new(vec![1; 100]));
        r.store_body("A", &m("u2"), Arc::new(vec![2; 100]));
        assert!(r.body("A", &m("u1")).is_some()); // u1 is now the most recent
        r.store_body("A", &m("u3"), Arc::new(vec![3; 100])); // evicts u2
        assert!(r.body("A", &m("u2")).is_none());
        assert_eq!(r.body("A", &m("u1")).unwrap()[0], 1);
        assert_eq!(r.body("A", &m("u3")).unwrap()[0], 3);
        assert_eq!(r.cached_bytes(), 200);
        // Too big for the whole cap: not kept, nothing evicted for it.
        r.store_body("A", &m("u2"), Arc::new(vec![2; 251]));
        assert!(r.body("A", &m("u2")).is_none());
        assert_eq!(r.cached_bytes(), 200);
        // Storing the same body again replaces it, no double counting.
        r.store_body("A", &m("u3"), Arc::new(vec![4; 50]));
        assert_eq!(r.cached_bytes(), 150);
        // The list survived every eviction.
        assert_eq!(
            r.listing()[0].state,
            ListingState::Ready {
                messages: entries(3)
            }
        );
        // A deleted message's body is not served.
        r.delete("A", &m("u1")).unwrap();
        assert!(r.body("A", &m("u1")).is_none());
    }

    #[test]
    fn live_replicas_are_counted_until_dropped() {
        let st = EdgeState::new();
        let r1 = replica(&st, 10);
        let r2 = replica(&st, 10);
        assert_eq!(st.live_replicas(), 2);
        drop(r1);
        assert_eq!(st.live_replicas(), 1);
        drop(r2);
        assert_eq!(st.live_replicas(), 0);
    }

    #[test]
    fn a_witness_is_listed_after_and_neither_deleted_nor_listed_twice() {
        let st = EdgeState::new();
        let mut list = entries(4);
        // u3 twice: neither copy can be named by UIDL and size alone.
        list.insert(3, list[2].clone());
        let mut r = Replica::new(
            vec![("A".into(), Opened::Ready(list))],
            ByteLru::new(0),
            st.replica_ticket(),
        );
        assert_eq!(r.witness("A", &m("u1")), Some(m("u2")));
        r.delete("A", &m("u2")).unwrap();
        assert_eq!(
            r.witness("A", &m("u1")),
            Some(m("u4")),
            "u2 deleted, u3 twice"
        );
        assert_eq!(r.witness("A", &m("u4")), None, "listed last");
        assert_eq!(r.witness("B", &m("u1")), None, "no such server");
        r.rset("A").unwrap();
        assert_eq!(r.witness("A", &m("u1")), Some(m("u2")));
    }

    #[test]
    fn a_witness_is_looked_for_only_so_far() {
        let st = EdgeState::new();
        let n = WITNESS_REACH + 2;
        let mut r = Replica::new(
            vec![("A".into(), Opened::Ready(entries(n)))],
            ByteLru::new(0),
            st.replica_ticket(),
        );
        for i in 2..=WITNESS_REACH + 1 {
            r.delete("A", &m(&format!("u{i}"))).unwrap();
        }
        assert_eq!(r.witness("A", &m("u1")), None);
        assert_eq!(r.witness("A", &m("u2")), Some(m(&format!("u{n}"))));
    }
}

#[cfg(test)]
mod duplicate_tests {
    use super::*;
    use crate::state::EdgeState;

    #[test]
    fn a_duplicate_uidl_is_told_apart_by_size_or_refused() {
        let st = EdgeState::new();
        let list = [("dup", 10), ("dup", 20), ("twin", 5), ("twin", 5)]
            .iter()
            .map(|(u, s)| ListEntry {
                uidl: (*u).into(),
                size: *s,
                flags: None,
            })
            .collect();
        let mut r = Replica::new(
            vec![("A".into(), Opened::Ready(list))],
            ByteLru::new(1000),
            st.replica_ticket(),
        );
        let id = |u: &str, size| MessageId {
            uidl: u.into(),
            size,
        };
        r.delete("A", &id("dup", 20)).unwrap();
        r.check("A", &id("dup", 10)).unwrap();
        let e = r.check("A", &id("twin", 5)).unwrap_err();
        assert!(e.text.contains("more than one message"), "{e}");
        assert!(r.delete("A", &id("twin", 5)).is_err());
        // Every message is still listed.
        match &r.listing()[0].state {
            ListingState::Ready { messages } => assert_eq!(messages.len(), 4),
            s => panic!("{s:?}"),
        }
    }
}
