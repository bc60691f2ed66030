//! The journal as an operator sees it, with the edge stopped: the work it
//! still owes (`causeway owed --config edge.toml`), and a way to drop some
//! by hand (`--drop`).
//!
//! The edge never drops acknowledged work because a lock was busy or a
//! deadline passed: it keeps it and retries across sessions and restarts.
//! Some work can only be ended by a person: the account was closed, the
//! server moved for good, the message was removed by other means. Dropping
//! is therefore a deliberate act on named entries, and every drop is printed.

use std::collections::BTreeMap;
use std::io;

use causeway_net::EnvRng;

use super::{
    EntryKey, Header, Journal, JournalConfig, Write, decode_header, decode_op, header_key, op_key,
    parse_key,
};
use crate::owed::what;
use crate::state::EdgeState;

/// The work of one (client session, server) still in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwedGroup {
    /// 16 hex digits; names the group in `--drop`.
    pub id: String,
    /// The client session that acknowledged the work.
    pub session: String,
    /// The server's name, address and user (never its password).
    pub server: String,
    pub address: String,
    pub user: String,
    /// The IMAP folder (INBOX for POP3).
    pub folder: String,
    pub items: Vec<OwedItem>,
}

/// One acknowledged delete or read mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwedItem {
    /// `<group>/<seq>`; names the entry in `--drop`.
    pub id: String,
    /// "delete" or "read mark".
    pub what: &'static str,
    pub uidl: String,
    pub size: Option<u64>,
}

/// What the journal holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwedListing {
    pub groups: Vec<OwedGroup>,
    /// Entries that do not open with this key (another edge's key, or
    /// damage): left alone, counted.
    pub unreadable: usize,
}

fn reader(config: &JournalConfig) -> Journal {
    // Reading needs no randomness (only sealing does).
    // Listing and dropping time no commit an operator would read.
    let clock: super::Clock =
        std::sync::Arc::new(|| causeway_net::Env::now(&causeway_net::TokioEnv::new()));
    Journal::new(config, EnvRng::from_seed([0; 32]), EdgeState::new(), clock)
}

/// Everything the journal still owes, group by group. Reads only.
pub async fn list(config: &JournalConfig) -> io::Result<OwedListing> {
    let j = reader(config);
    let mut headers: BTreeMap<u64, Header> = BTreeMap::new();
    let mut items: BTreeMap<u64, Vec<OwedItem>> = BTreeMap::new();
    let mut unreadable = 0;
    for (k, v) in j.store.scan().await? {
        let Some(parsed) = parse_key(&k) else {
            continue;
        };
        let Ok(plain) = j.open(&k, &v) else {
            unreadable += 1;
            continue;
        };
        match parsed {
            EntryKey::Header(g) => match decode_header(&plain) {
                Ok(h) => {
                    headers.insert(g, h);
                }
                Err(_) => unreadable += 1,
            },
            EntryKey::Op(g, seq) => match decode_op(&plain) {
                Some(r) => items.entry(g).or_default().push(OwedItem {
                    id: format!("{g:016x}/{seq:016x}"),
                    what: what(r.owed),
                    uidl: r.target.uidl,
                    size: r.target.size,
                }),
                None => unreadable += 1,
            },
            // A delete taken and remembered, or which work a QUIT was
            // sent for: no work of its own.
            EntryKey::Taken(_) | EntryKey::QuitSent(_) => {}
        }
    }
    let mut groups = Vec::new();
    for (g, list) in items {
        let (session, server, address, user, folder) = match headers.get(&g) {
            Some(h) => (
                h.session.clone(),
                h.spec.name.clone(),
                format!("{}:{}", h.spec.host, h.spec.port),
                h.spec.user.clone(),
                h.spec.folder.clone(),
            ),
            None => Default::default(),
        };
        groups.push(OwedGroup {
            id: format!("{g:016x}"),
            session,
            server,
            address,
            user,
            folder,
            items: list,
        });
    }
    Ok(OwedListing { groups, unreadable })
}

/// Drops the named work: `<group>` (all of it) or `<group>/<seq>` (one
/// entry), as [`list`] names them. A group's header (and with it the
/// server's credentials) goes with its last entry. Returns the entries
/// dropped; a name that matches nothing is an error, and nothing is
/// dropped then.
pub async fn drop_work(config: &JournalConfig, names: &[String]) -> io::Result<Vec<OwedItem>> {
    let listing = list(config).await?;
    let mut dropped: Vec<(u64, OwedItem)> = Vec::new();
    for name in names {
        let before = dropped.len();
        for g in &listing.groups {
            for item in &g.items {
                if (item.id == *name || g.id == *name) && !dropped.iter().any(|(_, d)| d == item) {
                    let id = u64::from_str_radix(&g.id, 16).expect("listed ids are hex");
                    dropped.push((id, item.clone()));
                }
            }
        }
        if dropped.len() == before {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no owed work named {name:?} (see `causeway owed` for the names)"),
            ));
        }
    }
    let mut batch = Vec::new();
    for (g, item) in &dropped {
        let seq = item.id.rsplit_once('/').map(|(_, s)| s).unwrap_or_default();
        let seq = u64::from_str_radix(seq, 16).expect("listed ids are hex");
        batch.push(Write::Delete {
            key: op_key(*g, seq),
        });
    }
    for g in &listing.groups {
        let id = u64::from_str_radix(&g.id, 16).expect("listed ids are hex");
        let left = g
            .items
            .iter()
            .filter(|i| !dropped.iter().any(|(_, d)| d == *i))
            .count();
        if left == 0 {
            batch.push(Write::Delete {
                key: header_key(id),
            });
            batch.push(Write::Delete {
                key: super::quit_sent::quit_key(id),
            });
        }
    }
    reader(config).store.commit(batch).await?;
    Ok(dropped.into_iter().map(|(_, i)| i).collect())
}
