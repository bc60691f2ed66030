//! The IMAP folders' UIDs and flags, kept from one session to the next.
//!
//! A mail client that keeps a copy (mbsync, offlineimap, Thunderbird's
//! offline folders) knows a message by its folder's UIDVALIDITY and its UID.
//! Numbered afresh at every login, the INBOX would look like a new folder at
//! every sync: mbsync refuses to go on ("UIDVALIDITY changed"), the others
//! fetch every message again, over the slow line. POP3 has no UIDs and no
//! flags, so the proxy keeps them itself:
//!
//! - a message gets its UID once, the next of the folder; UIDs rise with
//!   arrival and are never given twice under one UIDVALIDITY, so UIDNEXT is
//!   durable before any UID below it is shown;
//! - a message is known by the UIDL the proxy shows (stable across
//!   sessions, see [`crate::mailbox::shown_uidl`]) and its size
//!   ([`book_key`]): RFC 1939 lets a server give a deleted message's UIDL
//!   to a new one, and the size tells such a pair apart; an expunge through
//!   the proxy also forgets the message at once;
//! - the flags the user stores stay with the message (keywords too, as bits
//!   into the folder's keyword table, `causeway_imap::serve::keywords`),
//!   and `\Seen`
//!   once the mail client proved it took the whole body and the read mark
//!   went to the POP3 session (never before: a body that did not arrive
//!   whole must not look read in the next session either);
//! - a message no longer listed is forgotten, but only if its server listed
//!   others in the same session: a server that is out of reach for one
//!   session lists nothing, and its messages keep their UIDs for the next;
//!   at a start, the messages of a server the folder no longer shows (the
//!   configuration changed) are forgotten.
//!
//! With a journal (`journal` in the configuration) the book lives in it,
//! sealed like the delete journal's entries, and survives a restart; without
//! one it lives as long as the process, and a restart starts a new
//! UIDVALIDITY (clients then fetch the folder again, as RFC 3501 allows).
//!
//! Each folder the front shows has a book of its own ([`UidBooks`]), with
//! its own UIDVALIDITY and UIDNEXT: RFC 3501 lets a folder's UIDNEXT change
//! only when mail arrives in that folder.
//!
//! Layout: the INBOX's `u/validity` holds (version, UIDVALIDITY, UIDNEXT,
//! keyword table); `u/m/<UID>` (8 hex digits) holds (version, UIDL, system
//! flags, arrival, keyword bits) of one message (version 1 had neither
//! keywords field, and is read with none);
//! another folder's keys are the same under `u/f/<folder>/` (a folder's
//! name is its entry's, `[A-Za-z0-9_-]`, so no name is a prefix of
//! another's keys). Every value is sealed under the journal key with its
//! key as associated data, so no UIDL is readable at rest.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::num::NonZeroU32;
use std::sync::Arc;

use causeway_imap::imap_types::flag::Flag;
use causeway_imap::serve::keywords::{Keywords, Unkept};
use causeway_imap::serve::view::Flags;
use causeway_net::EnvRng;
use causeway_proto::session::ServerFlags;
use causeway_store::{JournalConfig, JournalStore, Sealer, Write};

use crate::config::{ClientConfig, TRASH};

mod records;
pub(crate) use records::PREFIX;
use records::{
    META, decode_meta, decode_record, in_folder, message_key, message_record, meta_key,
    meta_record, parse_message_key, prefix_of,
};

/// A message's UID, kept flags, and when the book first listed it (its
/// INTERNALDATE, Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kept {
    pub uid: NonZeroU32,
    pub flags: Flags,
    pub arrived: u64,
    /// Whether its IMAP server had it `\Seen` at the last listing that
    /// said ([`UidBook::take_server_flags`]).
    pub seen_there: bool,
}

/// The folder as numbered for one session.
#[derive(Debug)]
pub(crate) struct Numbered {
    pub validity: NonZeroU32,
    pub next: NonZeroU32,
    /// The keyword table, naming every keyword bit of `messages`.
    pub keywords: Keywords,
    /// For each listed UIDL, in the order given.
    pub messages: Vec<Kept>,
}

struct Book {
    validity: NonZeroU32,
    next: NonZeroU32,
    keywords: Keywords,
    known: BTreeMap<String, Kept>,
    /// Whether the disk has this UIDVALIDITY (a new book writes it with its
    /// first numbering, so a proxy that serves no IMAP client writes none;
    /// always true without a disk).
    durable: bool,
    /// Messages taken in ([`UidBook::take_in`]: stored by APPEND, moved
    /// here) and when (Unix milliseconds), until a listing shows them: a
    /// listing taken before cannot show them, and must not forget them.
    /// Not on disk: after a restart, the next listing is a new one.
    taken_in: BTreeMap<String, u64>,
}

impl Book {
    /// What `keys` are kept as, in order: the entry a key has, or a new
    /// one (with its flags) under the next free UID. Returns them, the new
    /// ones by key, and the next free UID after them; nothing is kept yet.
    fn assign<'k>(
        &self,
        keys: impl Iterator<Item = (&'k str, Flags)>,
        now: u64,
    ) -> io::Result<(Vec<Kept>, BTreeMap<String, Kept>, NonZeroU32)> {
        let mut next = self.next;
        let mut given: BTreeMap<String, Kept> = BTreeMap::new();
        let mut kept = Vec::with_capacity(keys.size_hint().0);
        for (key, flags) in keys {
            let k = match self.known.get(key).or_else(|| given.get(key)) {
                Some(k) => *k,
                None => {
                    let k = Kept {
                        uid: next,
                        flags,
                        arrived: now,
                        seen_there: false,
                    };
                    next = next
                        .checked_add(1)
                        .ok_or_else(|| io::Error::other("the folder ran out of UIDs"))?;
                    given.insert(key.to_owned(), k);
                    k
                }
            };
            kept.push(k);
        }
        Ok((kept, given, next))
    }
}

struct Disk {
    store: Arc<dyn JournalStore>,
    sealer: Sealer,
}

/// One folder's book, shared by the proxy's IMAP sessions. Changes are made
/// on a copy, committed, and only then kept: what a session was shown is
/// never ahead of the disk.
#[derive(Clone)]
pub(crate) struct UidBook {
    book: Arc<tokio::sync::Mutex<Book>>,
    disk: Option<Arc<Disk>>,
    /// Where its keys are: `u/`, or `u/f/<folder>/`.
    prefix: String,
}

/// Every folder's book, by the folder's name as the front shows it.
#[derive(Clone)]
pub(crate) struct UidBooks(BTreeMap<String, UidBook>);

impl UidBooks {
    /// Books that live as long as the process.
    pub(crate) fn in_memory<'a>(
        folders: impl IntoIterator<Item = &'a str>,
        unix_millis: u64,
    ) -> Self {
        UidBooks(
            folders
                .into_iter()
                .map(|f| (f.to_owned(), UidBook::in_memory(f, unix_millis)))
                .collect(),
        )
    }

    /// Reads the book of each folder `proxy` shows from the journal's store
    /// ([`read_book`]), in one scan of the store and one commit.
    pub(crate) async fn load(
        config: &JournalConfig,
        rng: &EnvRng,
        unix_millis: u64,
        proxy: &ClientConfig,
    ) -> io::Result<Self> {
        let folders: Vec<(&str, Vec<&str>)> = proxy
            .imap_folders()
            .into_iter()
            .map(|f| {
                // Trash holds messages of every entry.
                let servers = proxy
                    .servers
                    .iter()
                    .map(|s| s.name.as_str())
                    .filter(|s| f == TRASH || proxy.imap_folder_of(s) == Some(f))
                    .collect();
                (f, servers)
            })
            .collect();
        Self::load_folders(config, rng, unix_millis, &folders).await
    }

    /// Reads the books of `folders` (each with the servers it shows). The
    /// keys of a folder the configuration no longer shows are erased, with
    /// a log line: no book would ever read them again.
    async fn load_folders(
        config: &JournalConfig,
        rng: &EnvRng,
        unix_millis: u64,
        folders: &[(&str, Vec<&str>)],
    ) -> io::Result<Self> {
        let disk = Arc::new(Disk {
            store: config.store.clone(),
            sealer: config.sealer(rng.clone()),
        });
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = config
            .store
            .scan()
            .await?
            .into_iter()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .collect();
        let mut writes = Vec::new();
        let mut books = BTreeMap::new();
        for (folder, servers) in folders {
            let prefix = prefix_of(folder);
            let (mine, rest) = entries
                .into_iter()
                .partition(|(k, _)| in_folder(k, &prefix));
            entries = rest;
            let book = read_book(&disk.sealer, (folder, servers), &prefix, mine, unix_millis);
            writes.extend(book.1);
            let book = UidBook {
                book: Arc::new(tokio::sync::Mutex::new(book.0)),
                disk: Some(disk.clone()),
                prefix,
            };
            books.insert((*folder).to_owned(), book);
        }
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                "IMAP UID books: forgot the books of folders the configuration no longer shows"
            );
            writes.extend(entries.into_iter().map(|(key, _)| Write::Delete { key }));
        }
        if !writes.is_empty() {
            config.store.commit(writes).await?;
        }
        Ok(UidBooks(books))
    }

    /// The book of `folder` (a name the configuration gives the front).
    pub(crate) fn folder(&self, folder: &str) -> &UidBook {
        self.0
            .get(folder)
            .expect("a book for every folder the configuration names")
    }
}

/// Reads `folder`'s book from its entries in the store, and gives the
/// writes that tidy them. An entry that cannot be read (another key,
/// another version) is dropped with an error line; if the folder's own
/// entry cannot be read, the book starts again under a new UIDVALIDITY, so
/// that no UID is ever given twice. The messages of a server the folder no
/// longer shows (its entry gone from the configuration, or moved to a folder
/// of its own) are forgotten: the configuration changes only at a start.
fn read_book(
    sealer: &Sealer,
    (folder, servers): (&str, &[&str]),
    prefix: &str,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    unix_millis: u64,
) -> (Book, Vec<Write>) {
    let mut meta = None;
    let mut known = BTreeMap::new();
    let mut unreadable: Vec<Vec<u8>> = Vec::new();
    for (k, v) in entries {
        let rest = std::str::from_utf8(&k[prefix.len()..]).unwrap_or("");
        let plain = sealer.open(&k, &v);
        let plain = plain.ok();
        if rest == META {
            match plain.as_deref().and_then(decode_meta) {
                Some(m) => meta = Some(m),
                None => unreadable.push(k),
            }
            continue;
        }
        let record = plain.as_deref().and_then(decode_record);
        match (parse_message_key(rest), record) {
            (Some(uid), Some((uidl, (flags, seen_there), arrived))) => {
                known.insert(
                    uidl,
                    Kept {
                        uid,
                        flags,
                        arrived,
                        seen_there,
                    },
                );
            }
            _ => unreadable.push(k),
        }
    }
    let kept = meta.and_then(|(validity, next, keywords)| {
        Some((
            NonZeroU32::new(validity)?,
            NonZeroU32::new(next)?,
            Keywords::from_slots(keywords),
        ))
    });
    if !unreadable.is_empty() {
        tracing::error!(
            folder,
            entries = unreadable.len(),
            "IMAP UID book: CANNOT READ some entries (was the key changed?); they are \
             dropped, and their messages get new UIDs"
        );
    }
    let mut writes: Vec<Write> = unreadable
        .into_iter()
        .map(|key| Write::Delete { key })
        .collect();
    let book = match kept {
        Some((validity, next, mut keywords)) => {
            known.retain(|_, k| k.uid < next);
            let before = known.len();
            known.retain(|uidl, k| {
                let shown = servers.contains(&server_of(uidl));
                if !shown {
                    writes.push(Write::Delete {
                        key: message_key(prefix, k.uid),
                    });
                }
                shown
            });
            if known.len() < before {
                tracing::info!(
                    folder,
                    messages = before - known.len(),
                    "IMAP UID book: forgot the messages of servers this folder no \
                     longer shows (the configuration changed)"
                );
            }
            // Bits the table does not name are no keywords; the slots of
            // keywords no message carries any more are free again.
            let named = keywords.named();
            let mut used = 0;
            for k in known.values_mut() {
                k.flags.keywords &= named;
                used |= k.flags.keywords;
            }
            keywords.keep_only(used);
            Book {
                validity,
                next,
                keywords,
                known,
                durable: true,
                taken_in: BTreeMap::new(),
            }
        }
        None => {
            // Without the folder's numbering no UID can be trusted: start
            // again under a new UIDVALIDITY, so that no UID is ever given
            // twice under one.
            writes.extend(known.values().map(|k| Write::Delete {
                key: message_key(prefix, k.uid),
            }));
            Book {
                validity: fresh_validity(unix_millis),
                next: NonZeroU32::MIN,
                keywords: Keywords::default(),
                known: BTreeMap::new(),
                durable: false,
                taken_in: BTreeMap::new(),
            }
        }
    };
    (book, writes)
}

/// A UIDVALIDITY for a new book: the time in seconds, as Dovecot chooses
/// them (a book started later has a larger one).
fn fresh_validity(unix_millis: u64) -> NonZeroU32 {
    let secs = u32::try_from(unix_millis / 1000).unwrap_or(u32::MAX);
    NonZeroU32::new(secs.max(1)).expect("at least 1")
}

/// The server a book key belongs to (`NAME:...`).
pub(crate) fn server_of(key: &str) -> &str {
    key.split_once(':').map_or(key, |(s, _)| s)
}

/// What the book knows a message by: its shown UIDL (printable, no spaces)
/// and its size.
pub(crate) fn book_key(shown_uidl: &str, size: u64) -> String {
    format!("{shown_uidl} {size}")
}

impl UidBook {
    /// A book that lives as long as the process.
    pub(crate) fn in_memory(folder: &str, unix_millis: u64) -> Self {
        UidBook {
            prefix: prefix_of(folder),
            book: Arc::new(tokio::sync::Mutex::new(Book {
                validity: fresh_validity(unix_millis),
                next: NonZeroU32::MIN,
                keywords: Keywords::default(),
                known: BTreeMap::new(),
                durable: true,
                taken_in: BTreeMap::new(),
            })),
            disk: None,
        }
    }

    /// Numbers a session's listing ([`book_key`]s, in listing order), taken
    /// at `listed_ms` (Unix milliseconds): known messages keep their UID
    /// and flags, new ones get the next UIDs in listing order, and messages
    /// of a listed server that are no longer there are forgotten, except
    /// those taken in since the listing was taken; a new message arrived
    /// `now` (Unix seconds). `Err`: nothing was kept, nothing may be shown.
    pub(crate) async fn number(
        &self,
        uidls: &[String],
        listed_ms: u64,
        now: u64,
    ) -> io::Result<Numbered> {
        let mut book = self.book.lock().await;
        let fresh = uidls.iter().map(|u| (u.as_str(), Flags::default()));
        let (messages, given, next) = book.assign(fresh, now)?;
        let listed: BTreeSet<&str> = uidls.iter().map(String::as_str).collect();
        let servers: BTreeSet<&str> = uidls.iter().map(|u| server_of(u)).collect();
        let after = |u: &str| book.taken_in.get(u).is_some_and(|&t| t > listed_ms);
        let gone: Vec<(String, NonZeroU32)> = book
            .known
            .iter()
            .filter(|(u, _)| {
                !listed.contains(u.as_str()) && servers.contains(server_of(u)) && !after(u)
            })
            .map(|(u, k)| (u.clone(), k.uid))
            .collect();
        if let Some(disk) = &self.disk
            && (!given.is_empty() || !gone.is_empty() || !book.durable)
        {
            let mut writes: Vec<Write> = gone
                .iter()
                .map(|(_, uid)| Write::Delete {
                    key: message_key(&self.prefix, *uid),
                })
                .collect();
            writes.extend(given.iter().map(|(u, k)| self.message_write(disk, u, *k)));
            writes.push(self.meta_write(disk, (book.validity, next), &book.keywords));
            disk.store.commit(writes).await?;
        }
        book.durable = true;
        book.next = next;
        for (u, _) in gone {
            book.taken_in.remove(&u);
            book.known.remove(&u);
        }
        for u in &listed {
            book.taken_in.remove(*u);
        }
        book.known.extend(given);
        Ok(Numbered {
            validity: book.validity,
            next: book.next,
            keywords: book.keywords.clone(),
            messages,
        })
    }

    /// The folder's keyword table as it now is; with `define`, first
    /// given a slot for each keyword among `flags` it lacks, durably before
    /// any message carries one. `Ok(Err)`: a keyword cannot be kept, and
    /// nothing changed.
    pub(crate) async fn admit(
        &self,
        flags: &[Flag<'_>],
        define: bool,
    ) -> io::Result<Result<Keywords, Unkept>> {
        let mut book = self.book.lock().await;
        let mut table = book.keywords.clone();
        if !define {
            return Ok(Ok(table));
        }
        match table.admit(flags) {
            Err(why) => return Ok(Err(why)),
            Ok(false) => return Ok(Ok(table)),
            Ok(true) => {}
        }
        if let Some(disk) = &self.disk {
            let write = self.meta_write(disk, (book.validity, book.next), &table);
            disk.store.commit(vec![write]).await?;
        }
        book.durable = true;
        book.keywords = table.clone();
        Ok(Ok(table))
    }

    /// Which of `keys` the book holds (Trash holds the messages moved
    /// there).
    pub(crate) async fn holds<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> BTreeSet<&'k str> {
        let book = self.book.lock().await;
        keys.into_iter()
            .filter(|k| book.known.contains_key(*k))
            .collect()
    }

    /// Takes in messages moved or stored here ([`book_key`]s, with their
    /// flags), durably: each new one gets the next UID, in the order given;
    /// one the book holds already keeps its UID. Returns the folder's
    /// UIDVALIDITY and their UIDs (for `COPYUID` and `APPENDUID`). `now`
    /// in Unix milliseconds: a listing taken before does not forget them.
    pub(crate) async fn take_in(
        &self,
        moved: &[(&str, Flags)],
        now_ms: u64,
    ) -> io::Result<(NonZeroU32, Vec<NonZeroU32>)> {
        let mut book = self.book.lock().await;
        let (kept, given, next) = book.assign(moved.iter().copied(), now_ms / 1000)?;
        for (key, _) in moved {
            book.taken_in.insert((*key).to_owned(), now_ms);
        }
        let uids = (book.validity, kept.iter().map(|k| k.uid).collect());
        if given.is_empty() {
            return Ok(uids);
        }
        if let Some(disk) = &self.disk {
            let mut writes: Vec<Write> = given
                .iter()
                .map(|(u, k)| self.message_write(disk, u, *k))
                .collect();
            writes.push(self.meta_write(disk, (book.validity, next), &book.keywords));
            disk.store.commit(writes).await?;
        }
        book.next = next;
        book.known.extend(given);
        Ok(uids)
    }

    /// Forgets messages that were expunged (a later message with the same
    /// key is a new one).
    pub(crate) async fn forget(&self, keys: &[&str]) -> io::Result<()> {
        let mut book = self.book.lock().await;
        let gone: Vec<NonZeroU32> = keys
            .iter()
            .filter_map(|k| book.known.get(*k).map(|kept| kept.uid))
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        if let Some(disk) = &self.disk {
            let writes = gone
                .iter()
                .map(|uid| Write::Delete {
                    key: message_key(&self.prefix, *uid),
                })
                .collect();
            disk.store.commit(writes).await?;
        }
        for k in keys {
            book.known.remove(*k);
        }
        Ok(())
    }

    /// Changes the kept flags of the messages `uidls` ([`book_key`]s) with
    /// `change`; a message not in the book is left alone.
    pub(crate) async fn change(
        &self,
        uidls: &[&str],
        change: impl Fn(&mut Flags),
    ) -> io::Result<()> {
        let change = |_: usize, k: Kept| {
            let mut flags = k.flags;
            change(&mut flags);
            Kept { flags, ..k }
        };
        self.change_each(uidls, change).await.1
    }

    /// Takes what the IMAP server of each of `listed` ([`book_key`]s) said
    /// it keeps (`XFLAGS`, at the listing just numbered) into the book,
    /// durably ([`merged`]); returns the flags to show of each, by key, and
    /// whether the book kept what changed. Every one listed, not only
    /// those this call changed: another session may have taken the same
    /// change between this session's numbering and now (two mail clients
    /// log in at once), and its numbering still shows the old flags.
    /// Shown even when the book could not keep them (the server has them);
    /// the next listing then merges them again. A message not in the book
    /// is left alone.
    pub(crate) async fn take_server_flags(
        &self,
        listed: &[(&str, ServerFlags)],
    ) -> (BTreeMap<String, Flags>, io::Result<()>) {
        let keys: Vec<&str> = listed.iter().map(|(k, _)| *k).collect();
        let (changed, kept) = self.change_each(&keys, |i, k| merged(k, listed[i].1)).await;
        let mut flags: BTreeMap<String, Flags> = {
            let book = self.book.lock().await;
            (keys.iter())
                .filter_map(|k| Some(((*k).to_owned(), book.known.get(*k)?.flags)))
                .collect()
        };
        flags.extend(changed.into_iter().map(|(u, k)| (u, k.flags)));
        (flags, kept)
    }

    /// The messages `uidls` were marked unread on their IMAP server (the
    /// user's "mark as unread"): a `\Seen` a later listing shows there is
    /// another device's read, to be shown ([`merged`]).
    pub(crate) async fn unread_there(&self, uidls: &[&str]) -> io::Result<()> {
        let unread = |_: usize, k: Kept| Kept {
            seen_there: false,
            ..k
        };
        self.change_each(uidls, unread).await.1
    }

    /// Changes what the book keeps of `uidls` with `change(index, kept)`,
    /// durably; returns what changed, and whether the book kept it (if
    /// not, it keeps what it had).
    async fn change_each(
        &self,
        uidls: &[&str],
        change: impl Fn(usize, Kept) -> Kept,
    ) -> (Vec<(String, Kept)>, io::Result<()>) {
        let mut book = self.book.lock().await;
        let mut changed = Vec::new();
        for (i, &u) in uidls.iter().enumerate() {
            if let Some(k) = book.known.get(u) {
                let now = change(i, *k);
                if now != *k {
                    changed.push((u.to_owned(), now));
                }
            }
        }
        if changed.is_empty() {
            return (changed, Ok(()));
        }
        if let Some(disk) = &self.disk {
            let writes = changed
                .iter()
                .map(|(u, k)| self.message_write(disk, u, *k))
                .collect();
            if let Err(e) = disk.store.commit(writes).await {
                return (changed, Err(e));
            }
        }
        book.known.extend(changed.iter().cloned());
        (changed, Ok(()))
    }
}

/// A message's kept flags after a listing in which its IMAP server said
/// which system flags it has there (another device may have changed them):
///
/// - `\Answered`, `\Flagged` and `\Draft` as the server has them: the
///   front sets them there before it answers a STORE, so a difference is
///   another client's change;
/// - `\Seen` once the server has it and did not at the last listing, or
///   since the user marked it unread here, which reached the server
///   ([`UidBook::unread_there`]): read elsewhere. A `\Seen` the server
///   lacks is kept (this proxy's read mark may not be committed yet);
/// - `\Deleted` and keywords are this proxy's (not carried).
fn merged(k: Kept, server: ServerFlags) -> Kept {
    let mut flags = k.flags;
    flags.answered = server.has(ServerFlags::ANSWERED);
    flags.flagged = server.has(ServerFlags::FLAGGED);
    flags.draft = server.has(ServerFlags::DRAFT);
    let seen_there = server.has(ServerFlags::SEEN);
    if seen_there && !k.seen_there {
        flags.seen = true;
    }
    Kept {
        flags,
        seen_there,
        ..k
    }
}

impl UidBook {
    fn meta_write(
        &self,
        disk: &Disk,
        (validity, next): (NonZeroU32, NonZeroU32),
        keywords: &Keywords,
    ) -> Write {
        let key = meta_key(&self.prefix);
        let value = disk
            .sealer
            .seal(&key, &meta_record(validity, next, keywords));
        Write::Put { key, value }
    }

    fn message_write(&self, disk: &Disk, uidl: &str, kept: Kept) -> Write {
        let key = message_key(&self.prefix, kept.uid);
        let value = disk.sealer.seal(&key, &message_record(uidl, kept));
        Write::Put { key, value }
    }
}

#[cfg(test)]
mod tests;
