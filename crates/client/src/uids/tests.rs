use causeway_net::EnvRng;
use causeway_store::{JournalConfig, JournalKey, SimDisk, encode};

use super::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

async fn book(disk: &SimDisk, key: u8, now_ms: u64) -> UidBook {
    folder_book(disk, key, now_ms, "INBOX").await
}

async fn folder_book(disk: &SimDisk, key: u8, now_ms: u64, folder: &str) -> UidBook {
    shown_book(disk, key, now_ms, folder, &["A", "B", "W"]).await
}

/// `folder`'s book, showing the messages of `servers`.
async fn shown_book(
    disk: &SimDisk,
    key: u8,
    now_ms: u64,
    folder: &str,
    servers: &[&str],
) -> UidBook {
    books(disk, key, now_ms, &[(folder, servers)])
        .await
        .folder(folder)
        .clone()
}

/// The books of `folders`, each showing the messages of its servers.
async fn books(disk: &SimDisk, key: u8, now_ms: u64, folders: &[(&str, &[&str])]) -> UidBooks {
    let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([key; 32]));
    let folders: Vec<(&str, Vec<&str>)> = folders.iter().map(|(f, s)| (*f, s.to_vec())).collect();
    UidBooks::load_folders(&cfg, &EnvRng::from_seed([2; 32]), now_ms, &folders)
        .await
        .unwrap()
}

const SERVERS: &[&str] = &["A", "B", "W"];

/// A disk the delete journal shares: one entry of its own.
async fn disk_with_a_delete() -> SimDisk {
    let disk = SimDisk::new();
    disk.commit(vec![Write::Put {
        key: b"d/0000000000000001".to_vec(),
        value: b"sealed".to_vec(),
    }])
    .await
    .unwrap();
    disk
}

fn listing(uidls: &[&str]) -> Vec<String> {
    uidls.iter().map(|u| (*u).to_owned()).collect()
}

impl UidBook {
    async fn number_at(&self, uidls: &[String]) -> io::Result<Numbered> {
        self.number(uidls, 1_000_000, 1_000).await
    }
}

fn uids(n: &Numbered) -> Vec<u32> {
    n.messages.iter().map(|k| k.uid.get()).collect()
}

#[test]
fn uids_and_flags_outlive_sessions_and_restarts_sealed() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_700_000_000_000).await;
        let first = b.number_at(&listing(&["A:x", "A:y", "B:z"])).await.unwrap();
        assert_eq!(uids(&first), vec![1, 2, 3]);
        assert_eq!((first.validity.get(), first.next.get()), (1_700_000_000, 4));
        b.change(&["A:y"], |f| f.flagged = true).await.unwrap();
        for (k, v) in disk.durable() {
            for bytes in [k, v] {
                assert!(!bytes.windows(3).any(|w| w == b"A:y"), "no UIDL at rest");
            }
        }
        // A restart an hour later: same folder, same numbers, same flags;
        // the new message gets the next UID even though it is listed first.
        let again = book(&disk, 1, 1_700_003_600_000).await;
        let second = again
            .number(&listing(&["A:new", "A:x", "A:y", "B:z"]), 5_000_000, 5_000)
            .await
            .unwrap();
        // Each keeps the time the book first listed it (its INTERNALDATE).
        let arrived: Vec<u64> = second.messages.iter().map(|k| k.arrived).collect();
        assert_eq!(arrived, vec![5_000, 1_000, 1_000, 1_000]);
        assert_eq!(second.validity, first.validity);
        assert_eq!(uids(&second), vec![4, 1, 2, 3]);
        assert!(second.messages[2].flags.flagged);
        assert_eq!(second.next.get(), 5);
    });
}

#[test]
fn a_gone_message_is_forgotten_and_its_uid_never_given_again() {
    block_on(async {
        let b = UidBook::in_memory("INBOX", 5_000);
        b.number_at(&listing(&["A:1", "A:2", "B:1"])).await.unwrap();
        // B was out of reach this time: its message keeps its UID; A:2 was
        // deleted.
        let n = b.number_at(&listing(&["A:1"])).await.unwrap();
        assert_eq!(uids(&n), vec![1]);
        let n = b.number_at(&listing(&["A:1", "A:2", "B:1"])).await.unwrap();
        assert_eq!(uids(&n), vec![1, 4, 3], "A:2 came back as a new message");
        assert_eq!(n.validity.get(), 5);
    });
}

#[test]
fn a_failed_commit_shows_nothing_and_keeps_nothing() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 9_000).await;
        b.number_at(&listing(&["A:1"])).await.unwrap();
        disk.fail_next_commits(1);
        assert!(b.number_at(&listing(&["A:1", "A:2"])).await.is_err());
        disk.fail_next_commits(1);
        assert!(b.change(&["A:1"], |f| f.answered = true).await.is_err());
        // Neither the UID nor the flag was kept, in memory or on disk.
        let n = b.number_at(&listing(&["A:1", "A:3"])).await.unwrap();
        assert_eq!(uids(&n), vec![1, 2]);
        assert!(!n.messages[0].flags.answered);
        let reread = book(&disk, 1, 9_000).await;
        let n = reread.number_at(&listing(&["A:1", "A:3"])).await.unwrap();
        assert_eq!(uids(&n), vec![1, 2]);
    });
}

#[test]
fn a_book_under_another_key_starts_again_under_a_new_validity() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_000_000).await;
        b.number_at(&listing(&["A:1", "A:2"])).await.unwrap();
        let other = book(&disk, 2, 2_000_000).await;
        let n = other.number_at(&listing(&["A:2"])).await.unwrap();
        assert_eq!(n.validity.get(), 2_000);
        assert_eq!(uids(&n), vec![1]);
        // Only the new book is left on disk.
        assert_eq!(disk.len(), 2);
    });
}

#[test]
fn the_delete_journals_entries_are_left_alone() {
    block_on(async {
        let disk = disk_with_a_delete().await;
        let b = book(&disk, 1, 1_000).await;
        b.number_at(&listing(&["A:1"])).await.unwrap();
        assert_eq!(disk.len(), 3);
        let n = book(&disk, 1, 1_000)
            .await
            .number_at(&listing(&["A:1"]))
            .await
            .unwrap();
        assert_eq!(uids(&n), vec![1]);
    });
}

#[test]
fn an_expunged_message_is_forgotten_so_a_reused_uidl_is_a_new_message() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_000).await;
        let key = book_key("A:1", 300);
        b.number(std::slice::from_ref(&key), 1_000, 1)
            .await
            .unwrap();
        b.change(&[&key], |f| f.deleted = true).await.unwrap();
        b.forget(&[&key]).await.unwrap();
        // The server gives the UIDL to a new message of the same size.
        let n = book(&disk, 1, 1_000)
            .await
            .number(&[key], 1_000, 1)
            .await
            .unwrap();
        assert_eq!(uids(&n), vec![2]);
        assert!(!n.messages[0].flags.deleted);
        // One of another size is another message anyway.
        assert_ne!(book_key("A:1", 300), book_key("A:1", 301));
    });
}

#[test]
fn each_folder_numbers_its_own_messages_and_survives_a_restart_apart() {
    block_on(async {
        let disk = SimDisk::new();
        let inbox = folder_book(&disk, 1, 1_000_000, "INBOX").await;
        let two = [("INBOX", SERVERS), ("work-archive", SERVERS)];
        let archive = books(&disk, 1, 2_000_000, &two).await;
        let archive = archive.folder("work-archive");
        inbox.number_at(&listing(&["A:1", "A:2"])).await.unwrap();
        let a = archive.number_at(&listing(&["W:1"])).await.unwrap();
        // Its own UIDs from 1 and its own UIDVALIDITY; the INBOX's UIDNEXT
        // does not move when mail arrives in another folder (RFC 3501
        // §2.3.1.1).
        assert_eq!(
            (uids(&a), a.validity.get(), a.next.get()),
            (vec![1], 2_000, 2)
        );
        archive.number_at(&listing(&["W:1", "W:2"])).await.unwrap();
        archive.change(&["W:1"], |f| f.seen = true).await.unwrap();
        // Restarted: each folder reads its own entries and none of the
        // other's (the INBOX's keys hold the others' under `u/f/`); nothing
        // was taken for unreadable and dropped.
        let entries = disk.len();
        let restarted = books(&disk, 1, 9_000_000, &two).await;
        let (inbox, archive) = (restarted.folder("INBOX"), restarted.folder("work-archive"));
        assert_eq!(disk.len(), entries);
        let i = inbox
            .number_at(&listing(&["A:1", "A:2", "A:3"]))
            .await
            .unwrap();
        assert_eq!((uids(&i), i.validity.get()), (vec![1, 2, 3], 1_000));
        let a = archive.number_at(&listing(&["W:1", "W:2"])).await.unwrap();
        assert_eq!(
            (uids(&a), a.validity.get(), a.next.get()),
            (vec![1, 2], 2_000, 3)
        );
        assert!(a.messages[0].flags.seen && !i.messages[0].flags.seen);
        // A folder whose name begins another's reads none of its keys.
        let entries = disk.len();
        let three = [two[0], two[1], ("work", SERVERS)];
        let restarted = books(&disk, 1, 9_000_000, &three).await;
        assert_eq!(disk.len(), entries);
        let w = restarted
            .folder("work")
            .number_at(&listing(&["W:1"]))
            .await
            .unwrap();
        assert_eq!((uids(&w), w.validity.get()), (vec![1], 9_000));
    });
}

#[test]
fn the_book_of_a_folder_no_longer_shown_is_erased_at_the_start() {
    block_on(async {
        let disk = disk_with_a_delete().await;
        let two = [("INBOX", SERVERS), ("work-archive", SERVERS)];
        let both = books(&disk, 1, 1_000_000, &two).await;
        both.folder("INBOX")
            .number_at(&listing(&["A:1"]))
            .await
            .unwrap();
        both.folder("work-archive")
            .number_at(&listing(&["W:1", "W:2"]))
            .await
            .unwrap();
        assert_eq!(disk.len(), 1 + 2 + 3);
        // Restarted without the folder: its three keys are erased, and
        // nothing else (the INBOX's two, the delete journal's one).
        let inbox = books(&disk, 1, 2_000_000, &two[..1]).await;
        assert_eq!(disk.len(), 1 + 2);
        let n = inbox
            .folder("INBOX")
            .number_at(&listing(&["A:1"]))
            .await
            .unwrap();
        assert_eq!((uids(&n), n.validity.get()), (vec![1], 1_000));
    });
}

#[test]
fn a_server_the_folder_no_longer_shows_is_forgotten_at_the_start() {
    block_on(async {
        let disk = SimDisk::new();
        let b = shown_book(&disk, 1, 1_000_000, "INBOX", &["A", "B"]).await;
        b.number_at(&listing(&["A:1", "B:1", "B:2"])).await.unwrap();
        // Restarted with B's entry moved to a folder of its own: the INBOX
        // forgets B's messages, on disk as well (meta and A:1 are left).
        shown_book(&disk, 1, 2_000_000, "INBOX", &["A"]).await;
        assert_eq!(disk.len(), 2);
        // B back in INBOX later: its messages are new to it, under the next
        // UIDs (never the old ones).
        let again = shown_book(&disk, 1, 3_000_000, "INBOX", &["A", "B"]).await;
        let n = again.number_at(&listing(&["A:1", "B:1"])).await.unwrap();
        assert_eq!((uids(&n), n.validity.get()), (vec![1, 4], 1_000));
    });
}

fn keywords(names: &[&str]) -> Vec<Flag<'static>> {
    names
        .iter()
        .map(|n| Flag::Keyword((*n).to_owned().try_into().unwrap()))
        .collect()
}

#[test]
fn keywords_outlive_restarts_and_free_their_slots_when_unused() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_000_000).await;
        b.number_at(&listing(&["A:1", "A:2"])).await.unwrap();
        let junk = keywords(&["$Junk", "work"]);
        let table = b.admit(&junk, true).await.unwrap().unwrap();
        let mask = table.mask(&junk);
        b.change(&["A:1"], |f| f.keywords |= mask).await.unwrap();
        b.change(&["A:2"], |f| f.keywords |= table.mask(&junk[1..]))
            .await
            .unwrap();
        // Asking without defining changes nothing.
        let other = keywords(&["other"]);
        assert_eq!(b.admit(&other, false).await.unwrap().unwrap(), table);
        // Restarted: the table and each message's keywords are read back.
        let again = book(&disk, 1, 2_000_000).await;
        let n = again.number_at(&listing(&["A:1", "A:2"])).await.unwrap();
        let named = |bits| {
            n.keywords
                .flags(bits)
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(named(n.messages[0].flags.keywords), vec!["$Junk", "work"]);
        assert_eq!(named(n.messages[1].flags.keywords), vec!["work"]);
        // `$Junk` taken off its only message: its slot is free at the next
        // start, and the next keyword takes it.
        again
            .change(&["A:1"], |f| f.keywords &= !n.keywords.mask(&junk[..1]))
            .await
            .unwrap();
        let third = book(&disk, 1, 3_000_000).await;
        let t = third.admit(&other, true).await.unwrap().unwrap();
        assert_eq!(t.mask(&other), n.keywords.mask(&junk[..1]));
        assert_eq!(t.mask(&junk[1..]), n.keywords.mask(&junk[1..]));
    });
}

#[test]
fn a_book_of_the_first_version_is_read_without_keywords() {
    block_on(async {
        let disk = SimDisk::new();
        let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([1; 32]));
        let sealer = cfg.sealer(EnvRng::from_seed([9; 32]));
        // Version 1: (version, validity, next) and (version, UIDL, flags,
        // arrival); a tuple is encoded field by field, as a struct is.
        let seen = Flags {
            seen: true,
            ..Flags::default()
        };
        let writes = vec![
            (meta_key("u/"), encode(&(1u8, 77u32, 3u32))),
            (
                message_key("u/", NonZeroU32::new(2).unwrap()),
                encode(&(1u8, "A:1", seen.bits(), 5u64)),
            ),
        ];
        let writes = writes
            .into_iter()
            .map(|(key, plain)| Write::Put {
                value: sealer.seal(&key, &plain),
                key,
            })
            .collect();
        disk.commit(writes).await.unwrap();
        let n = book(&disk, 1, 9_000_000)
            .await
            .number_at(&listing(&["A:1", "A:2"]))
            .await
            .unwrap();
        assert_eq!((n.validity.get(), uids(&n)), (77, vec![2, 3]));
        assert_eq!(n.messages[0].flags, seen);
        assert_eq!(n.keywords, Keywords::default());
    });
}

#[test]
fn messages_taken_into_trash_keep_their_uids_and_flags_across_restarts() {
    block_on(async {
        let disk = SimDisk::new();
        let trash = shown_book(&disk, 1, 1_700_000_000_000, TRASH, SERVERS).await;
        let seen = Flags {
            seen: true,
            ..Flags::default()
        };
        let given = trash
            .take_in(&[("A:x 10", seen), ("B:z 30", Flags::default())], 5_000)
            .await
            .unwrap()
            .1;
        assert_eq!(given.iter().map(|u| u.get()).collect::<Vec<_>>(), [1, 2]);
        // Taken in again (a move retried): the same UID, no new one.
        let again = trash.take_in(&[("A:x 10", seen)], 6_000).await.unwrap().1;
        assert_eq!(again[0].get(), 1);
        // Restarted: Trash shows every server's messages, so nothing of it
        // is forgotten; the next UID follows.
        let trash = shown_book(&disk, 1, 1_800_000_000_000, TRASH, SERVERS).await;
        assert_eq!(
            trash
                .holds(["A:x 10", "A:y 20", "B:z 30"])
                .await
                .into_iter()
                .collect::<Vec<_>>(),
            ["A:x 10", "B:z 30"]
        );
        let n = trash
            .number_at(&listing(&["A:x 10", "B:z 30"]))
            .await
            .unwrap();
        assert_eq!(uids(&n), [1, 2]);
        assert_eq!(n.next.get(), 3);
        assert!(n.messages[0].flags.seen && !n.messages[1].flags.seen);
        let more = trash.take_in(&[("W:q 5", Flags::default())], 7_000).await;
        assert_eq!(more.unwrap().1[0].get(), 3);
    });
}

#[test]
fn the_trash_of_a_configured_proxy_keeps_every_entrys_messages_across_a_restart() {
    block_on(async {
        let disk = SimDisk::new();
        let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([3; 32]));
        let mut proxy = crate::config::tests::config();
        let mut archive = proxy.servers[0].clone();
        archive.name = "work-archive".into();
        archive.folder = "Archive".into();
        proxy.servers.push(archive);
        let rng = EnvRng::from_seed([2; 32]);
        let load = || UidBooks::load(&cfg, &rng, 1_700_000_000_000, &proxy);
        let books = load().await.unwrap();
        let first = proxy.servers[0].name.clone();
        let keys = [format!("{first}:x 10"), "work-archive:y 20".to_owned()];
        let moved: Vec<(&str, Flags)> = keys
            .iter()
            .map(|k| (k.as_str(), Flags::default()))
            .collect();
        books.folder(TRASH).take_in(&moved, 5_000).await.unwrap();
        let books = load().await.unwrap();
        assert_eq!(
            books
                .folder(TRASH)
                .holds(keys.iter().map(String::as_str))
                .await
                .len(),
            keys.len()
        );
    });
}

#[test]
fn a_message_taken_in_after_a_listing_began_survives_that_listing() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_000).await;
        let listing_began = 2_000_000;
        b.number(&listing(&["A:x 10"]), listing_began, 2_000)
            .await
            .unwrap();
        // Stored by APPEND (APPENDUID 2) after the session behind began:
        // its listing, numbered again, cannot show it, and must not forget
        // it.
        let appended = book_key("A:new", 30);
        let given = b
            .take_in(&[(&appended, Flags::default())], listing_began + 500)
            .await
            .unwrap()
            .1;
        assert_eq!(given[0].get(), 2);
        let stale = b
            .number(&listing(&["A:x 10"]), listing_began, 2_001)
            .await
            .unwrap();
        assert_eq!(uids(&stale), [1]);
        // A listing that began later shows it at the UID APPENDUID gave.
        let fresh = b
            .number(
                &listing(&["A:x 10", &appended]),
                listing_began + 1_000,
                2_002,
            )
            .await
            .unwrap();
        assert_eq!(uids(&fresh), [1, 2]);
        // One that began later and does not show it (the server lists it
        // by another size, or it was expunged meanwhile) forgets it.
        let gone = book_key("A:lost", 40);
        b.take_in(&[(&gone, Flags::default())], listing_began + 1_500)
            .await
            .unwrap();
        b.number(
            &listing(&["A:x 10", &appended]),
            listing_began + 2_000,
            2_003,
        )
        .await
        .unwrap();
        assert!(b.holds([gone.as_str()]).await.is_empty());
    });
}

#[test]
fn the_servers_flags_are_taken_in_and_a_local_unread_stands_until_the_server_changes() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_700_000_000_000).await;
        b.number_at(&listing(&["A:x", "A:y"])).await.unwrap();
        b.change(&["A:x"], |f| f.flagged = true).await.unwrap();
        let server = |bits: u8| ServerFlags(bits);
        // Elsewhere: x unstarred and read, y answered.
        let (changed, kept) = b
            .take_server_flags(&[
                ("A:x", server(ServerFlags::SEEN)),
                ("A:y", server(ServerFlags::ANSWERED)),
            ])
            .await;
        kept.unwrap();
        assert!(changed["A:x"].seen && !changed["A:x"].flagged);
        assert!(changed["A:y"].answered && !changed["A:y"].seen);
        // The user marks x unread here; the server still has it read, as
        // at the last listing: it stays unread, across a restart too.
        b.change(&["A:x"], |f| f.seen = false).await.unwrap();
        let again = book(&disk, 1, 1_700_003_600_000).await;
        again.number_at(&listing(&["A:x", "A:y"])).await.unwrap();
        let same = [("A:x", server(ServerFlags::SEEN)), ("A:y", server(0))];
        let shown = again.take_server_flags(&same).await.0;
        assert!(!shown["A:x"].seen, "x stays unread");
        assert!(!shown["A:y"].answered);
        // Unread on the server, then read again there: read here too.
        again
            .take_server_flags(&[("A:x", server(0))])
            .await
            .1
            .unwrap();
        let changed = again.take_server_flags(&same[..1]).await.0;
        assert!(changed["A:x"].seen);
        // A message the book does not hold is left alone.
        let none = again.take_server_flags(&[("A:nope", server(15))]).await;
        assert!(none.0.is_empty());
    });
}

#[test]
fn a_session_numbered_before_another_took_the_servers_flags_shows_them_too() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_700_000_000_000).await;
        b.number_at(&listing(&["A:x"])).await.unwrap();
        b.change(&["A:x"], |f| f.flagged = true).await.unwrap();
        // Two mail clients log in at once: both numberings show the star.
        let first = b.number_at(&listing(&["A:x"])).await.unwrap();
        let second = b.number_at(&listing(&["A:x"])).await.unwrap();
        assert!(first.messages[0].flags.flagged && second.messages[0].flags.flagged);
        // Unstarred on the phone: the first session's merge changes the
        // book; the second changes nothing, and must show it all the same.
        let unstarred = [("A:x", ServerFlags(0))];
        let shown = b.take_server_flags(&unstarred).await.0;
        assert!(!shown["A:x"].flagged);
        let (shown, kept) = b.take_server_flags(&unstarred).await;
        kept.unwrap();
        assert!(
            !shown["A:x"].flagged,
            "the second session shows the server's"
        );
    });
}

#[test]
fn the_servers_flags_are_shown_when_the_book_cannot_keep_them_and_taken_again_later() {
    block_on(async {
        let disk = SimDisk::new();
        let b = book(&disk, 1, 1_700_000_000_000).await;
        b.number_at(&listing(&["A:x"])).await.unwrap();
        let read_and_starred = ServerFlags(ServerFlags::SEEN | ServerFlags::FLAGGED);
        disk.fail_next_commits(1);
        let (changed, kept) = b.take_server_flags(&[("A:x", read_and_starred)]).await;
        assert!(kept.is_err());
        assert!(
            changed["A:x"].seen && changed["A:x"].flagged,
            "shown all the same"
        );
        // Not kept: the next listing takes them again, and keeps them.
        let (changed, kept) = b.take_server_flags(&[("A:x", read_and_starred)]).await;
        kept.unwrap();
        assert!(changed["A:x"].seen && changed["A:x"].flagged);
        let reread = book(&disk, 1, 1_700_000_000_000).await;
        let n = reread.number_at(&listing(&["A:x"])).await.unwrap();
        assert!(n.messages[0].flags.seen && n.messages[0].flags.flagged);
    });
}
