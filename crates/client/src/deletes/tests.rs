use causeway_net::EnvRng;
use causeway_store::{JournalConfig, JournalKey, SimDisk};

use super::*;
use crate::state::ClientState;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

fn msg(uidl: &str) -> MessageId {
    MessageId {
        uidl: uidl.into(),
        size: 10,
    }
}

/// A session that knows no listing: no witness.
fn no_listing() -> Places {
    Places::default()
}

fn servers() -> Vec<String> {
    vec!["A".into(), "B".into()]
}

async fn journal(disk: &SimDisk, key: u8) -> DeleteJournal {
    journal_started(disk, key, 1_000).await
}

/// The journal of a proxy life that started `ms` after 1970.
async fn journal_started(disk: &SimDisk, key: u8, ms: u64) -> DeleteJournal {
    let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([key; 32]));
    DeleteJournal::load(
        &cfg,
        EnvRng::from_seed([1; 32]),
        &servers(),
        ClientState::new(),
        ms,
    )
    .await
    .unwrap()
}

#[test]
fn an_entry_lives_until_held_and_survives_a_restart_sealed() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &no_listing()).await.unwrap();
        s.record("B", &msg("u2"), &no_listing()).await.unwrap();
        assert_eq!(disk.len(), 2);
        for (_, v) in disk.durable() {
            assert!(!v.windows(2).any(|w| w == b"u1" || w == b"u2"), "sealed");
        }
        let sent = s.take_unsent();
        assert_eq!(sent.len(), 2);
        // Owned by a live session: nobody else carries them.
        assert!(j.take_carried(&servers()).is_empty());
        s.held(&[sent[0].seq]).await;
        assert_eq!(disk.len(), 1);
        drop(s);
        // After a restart (a new process reads the disk), what is left is
        // carried, once.
        let j2 = journal(&disk, 1).await;
        let carried = j2.take_carried(&servers());
        assert_eq!(carried.len(), 1);
        assert_eq!(
            (carried[0].server.as_str(), carried[0].msg.uidl.as_str()),
            ("B", "u2")
        );
        assert!(j2.take_carried(&servers()).is_empty());
        // New entries never reuse a number.
        let mut s2 = SessionDeletes::new(j2.clone(), &carried);
        s2.record("A", &msg("u3"), &no_listing()).await.unwrap();
        assert!(s2.take_unsent()[0].seq > carried[0].seq);
    });
}

#[test]
fn an_entry_whose_erase_a_hang_up_cut_short_is_erased_later() {
    // Seed 898010586: the edge said Held, and the mail client hung up while
    // the disk erased the entry; the session was dropped mid-erase.
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &no_listing()).await.unwrap();
        let seq = s.take_unsent()[0].seq;
        disk.inject(causeway_store::CommitFault::StallBeforeSync);
        let seqs = [seq];
        {
            let held = std::pin::pin!(s.held(&seqs));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(held.poll(&mut cx).is_pending(), "the disk never answers");
        }
        drop(s);
        assert!(j.take_carried(&servers()).is_empty(), "done: never carried");
        assert!(j.has_settled(), "left for the next erase");
        assert!(j.erase_settled().await);
        assert_eq!(disk.len(), 0);
    });
}

#[test]
fn a_number_erased_before_a_restart_is_not_used_again() {
    // Seed 305270335: an edge session of the proxy's earlier life, still
    // finishing, held the number; the new life's delete under it was taken
    // for one that session held, and dropped.
    block_on(async {
        let disk = SimDisk::new();
        let j = journal_started(&disk, 1, 1_000).await;
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &no_listing()).await.unwrap();
        let first = s.take_unsent()[0].seq;
        assert!(j.erase(&[first]).await, "held by the edge");
        drop(s);
        let j2 = journal_started(&disk, 1, 9_000).await;
        let mut s2 = SessionDeletes::new(j2.clone(), &[]);
        s2.record("A", &msg("u2"), &no_listing()).await.unwrap();
        assert!(s2.take_unsent()[0].seq > first);
    });
}

#[test]
fn rset_undoes_the_sessions_own_deletes_but_not_carried_ones() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        {
            let mut earlier = SessionDeletes::new(j.clone(), &[]);
            earlier
                .record("A", &msg("old"), &no_listing())
                .await
                .unwrap();
        }
        let carried = j.take_carried(&servers());
        let mut s = SessionDeletes::new(j.clone(), &carried);
        s.record("A", &msg("new"), &no_listing()).await.unwrap();
        s.record("B", &msg("other"), &no_listing()).await.unwrap();
        s.undone("A").await.unwrap();
        let left: Vec<String> = disk
            .durable()
            .iter()
            .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
            .collect();
        assert_eq!(left.len(), 2, "the carried delete and B's stay: {left:?}");
        let unsent = s.take_unsent();
        assert_eq!(
            unsent
                .iter()
                .map(|op| (op.server.as_str(), op.msg.uidl.as_str()))
                .collect::<Vec<_>>(),
            [("B", "other")],
            "only B's is still to send: an undone delete sent after the RSET would be done"
        );
        s.committed("A").await;
        s.committed("B").await;
        assert_eq!(disk.len(), 0);
    });
}

/// An RSET the journal cannot record: the session's deletes on that server
/// stand and go to the edge again; the other server's wait as they were,
/// each once (the mutation pass found this path unchecked).
#[test]
fn an_rset_the_disk_refuses_leaves_every_delete_standing_and_sent_once() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("a1"), &no_listing()).await.unwrap();
        let sent = s.take_unsent();
        s.record("B", &msg("b1"), &no_listing()).await.unwrap();
        disk.fail_next_commits(1);
        assert!(s.undone("A").await.is_err());
        assert_eq!(disk.len(), 2, "both deletes stay journaled");
        let mut unsent: Vec<(String, String)> = s
            .take_unsent()
            .into_iter()
            .map(|op| (op.server, op.msg.uidl))
            .collect();
        unsent.sort();
        assert_eq!(
            unsent,
            [("A".into(), "a1".into()), ("B".into(), "b1".into())],
            "A's sent again, B's still to send, each once (A's was sent: {sent:?})"
        );
    });
}

#[test]
fn a_delete_the_disk_refuses_is_not_recorded_and_a_session_that_ends_leaves_its_entries() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let mut s = SessionDeletes::new(j.clone(), &[]);
        disk.fail_next_commits(1);
        assert!(s.record("A", &msg("u1"), &no_listing()).await.is_err());
        assert_eq!((disk.len(), s.unsent()), (0, 0));
        s.record("A", &msg("u2"), &no_listing()).await.unwrap();
        assert_eq!(j.carriable_servers(), Vec::<String>::new());
        drop(s);
        assert_eq!(j.carriable_servers(), vec!["A".to_string()]);
        // The carrier is woken.
        tokio::time::timeout(std::time::Duration::from_secs(1), j.entries_left())
            .await
            .expect("woken");
    });
}

#[test]
fn entries_that_do_not_open_or_name_an_unknown_server_stay_on_disk_uncarried() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &no_listing()).await.unwrap();
        drop(s);
        let other_key = journal(&disk, 2).await;
        assert!(other_key.take_carried(&servers()).is_empty());
        let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([1; 32]));
        let only_b = DeleteJournal::load(
            &cfg,
            EnvRng::from_seed([1; 32]),
            &["B".into()],
            ClientState::new(),
            1_000,
        )
        .await
        .unwrap();
        assert!(only_b.take_carried(&servers()).is_empty());
        assert_eq!(disk.len(), 1, "left for an operator");
    });
}

#[test]
fn a_done_entry_the_disk_will_not_erase_is_never_carried_again() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &no_listing()).await.unwrap();
        s.record("A", &msg("u2"), &no_listing()).await.unwrap();
        s.record("A", &msg("u3"), &no_listing()).await.unwrap();
        let sent = s.take_unsent();
        // Held, but the erase fails: done all the same (the edge has it),
        // so never carried, even once the session is gone: taken again by
        // another session, it would be applied twice.
        disk.fail_next_commits(1);
        s.held(&[sent[0].seq]).await;
        assert_eq!((disk.len(), j.has_settled()), (3, true));
        // An RSET whose erase fails: the session's own delete stands and
        // goes again (the settled one is the edge's to undo).
        disk.fail_next_commits(1);
        assert!(s.undone("A").await.is_err());
        assert_eq!(s.take_unsent().len(), 2);
        // A commit whose erase fails settles the rest.
        disk.fail_next_commits(1);
        s.committed("A").await;
        drop(s);
        assert_eq!(disk.len(), 3);
        assert!(j.take_carried(&servers()).is_empty());
        assert!(j.carriable_servers().is_empty());
        // The next erase that works takes them all.
        assert!(j.erase_settled().await);
        assert_eq!((disk.len(), j.has_settled()), (0, false));
    });
}

/// The simulation's quiet-phase check and its "settled" test count what
/// the journal still owes with this: delete entries, never the UID book's
/// keys beside them (the mutation pass found the count unchecked).
#[test]
fn owed_deletes_counts_delete_entries_and_not_the_uid_book() {
    let entries = vec![
        (entry_key(1), vec![1]),
        (entry_key(7), vec![2]),
        (b"u/validity".to_vec(), vec![3]),
        (b"u/m/00000001".to_vec(), vec![4]),
    ];
    assert_eq!(owed_deletes(&entries), 2);
    assert_eq!(owed_deletes(&entries[2..]), 0);
    assert_eq!(owed_deletes(&entries[1..]), 1);
}

fn listed(uidls: &[&str]) -> causeway_proto::session::ServerListing {
    use causeway_proto::session::{ListEntry, ListingState, ServerListing};
    ServerListing {
        name: "A".into(),
        state: ListingState::Ready {
            messages: uidls
                .iter()
                .map(|u| ListEntry {
                    uidl: (*u).into(),
                    size: 10,
                    flags: None,
                })
                .collect(),
        },
    }
}

#[test]
fn a_delete_keeps_its_witness_across_a_restart_and_first_version_entries_still_read() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        // u3 twice: neither copy is a witness.
        let places = Places::new(&[listed(&["u1", "u2", "u3", "u3", "u4", "u5"])]);
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u2"), &places).await.unwrap();
        s.record("A", &msg("u1"), &places).await.unwrap();
        s.record("A", &msg("u5"), &places).await.unwrap();
        let witnesses: Vec<_> = s.take_unsent().into_iter().map(|op| op.witness).collect();
        assert_eq!(
            witnesses,
            vec![Some(msg("u4")), Some(msg("u4")), None],
            "past u3 listed twice; past u2 deleted; nothing after the last"
        );
        // An entry the first version wrote, without a witness.
        let key = entry_key(99);
        let old = RecordV1 {
            version: 1,
            server: "A".into(),
            uidl: "old".into(),
            size: 10,
        };
        let sealer = JournalConfig::new(disk.clone(), JournalKey::from_bytes([1; 32]))
            .sealer(EnvRng::from_seed([2; 32]));
        disk.commit(vec![Write::Put {
            value: sealer.seal(&key, &encode(&old)),
            key,
        }])
        .await
        .unwrap();
        drop(s);
        let carried = journal(&disk, 1).await.take_carried(&servers());
        let read: Vec<_> = carried
            .iter()
            .map(|op| (op.msg.uidl.as_str(), op.witness.clone()))
            .collect();
        assert_eq!(
            read,
            vec![
                // In the order of their numbers: 99 is older than this
                // life's, which start from the time it started.
                ("old", None),
                ("u2", Some(msg("u4"))),
                ("u1", Some(msg("u4"))),
                ("u5", None),
            ]
        );
    });
}

#[test]
fn no_witness_is_a_message_deleted_here_held_or_carried_until_an_rset_frees_the_sessions_own() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let places = Places::new(&[listed(&["u1", "u2", "u3", "u4", "u5", "u6"])]);
        // An earlier session's delete of u3, carried by this one.
        let mut earlier = SessionDeletes::new(j.clone(), &[]);
        earlier
            .record("A", &msg("u3"), &no_listing())
            .await
            .unwrap();
        drop(earlier);
        let carried = j.take_carried(&servers());
        let mut s = SessionDeletes::new(j.clone(), &carried);
        s.record("A", &msg("u4"), &places).await.unwrap();
        let sent = s.take_unsent();
        assert_eq!(sent[0].witness, Some(msg("u5")));
        s.held(&[sent[0].seq]).await;
        s.record("A", &msg("u2"), &places).await.unwrap();
        assert_eq!(
            s.take_unsent()[0].witness,
            Some(msg("u5")),
            "past u3 (carried) and u4 (deleted here; the edge holds it)"
        );
        s.undone("A").await.unwrap();
        s.record("A", &msg("u1"), &places).await.unwrap();
        assert_eq!(
            s.take_unsent()[0].witness,
            Some(msg("u2")),
            "the RSET undid u2 and u4"
        );
        s.record("A", &msg("u2"), &places).await.unwrap();
        assert_eq!(
            s.take_unsent()[0].witness,
            Some(msg("u4")),
            "u3's carried delete stands after the RSET"
        );
    })
}

/// `Hello`'s `oldest`: no number the proxy may still carry is below it,
/// across a restart too, so the edge may forget what it took below.
#[test]
fn the_oldest_number_said_is_never_above_one_the_proxy_may_still_carry() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal_started(&disk, 1, 1_000).await;
        let empty = j.oldest();
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &no_listing()).await.unwrap();
        s.record("A", &msg("u2"), &no_listing()).await.unwrap();
        let sent = s.take_unsent();
        assert_eq!(sent[0].seq, empty, "the next number, when empty");
        assert_eq!(j.oldest(), sent[0].seq);
        s.held(&[sent[0].seq]).await;
        assert_eq!(j.oldest(), sent[1].seq, "the lowest left");
        drop(s);
        let j2 = journal_started(&disk, 1, 9_000).await;
        assert_eq!(j2.oldest(), sent[1].seq, "an earlier life's entry");
        assert!(j2.erase(&[sent[1].seq]).await);
        assert!(j2.oldest() > sent[1].seq);
    });
}

/// A mail client that hangs up while the proxy's disk writes its DELE
/// (`Session::ask_watching` drops the session's request) was never told
/// `+OK`: the entry the disk still writes is erased, and neither this
/// life nor the next carries it.
#[test]
fn a_delete_whose_session_went_away_while_the_disk_wrote_it_is_erased_not_carried() {
    block_on(async {
        let disk = SimDisk::new();
        disk.set_sync_latency(std::time::Duration::from_millis(50));
        // `SimDisk` finishes a commit whose caller stopped waiting, as
        // redb does on its blocking thread.
        let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([1; 32]));
        let names = servers();
        let load = || {
            DeleteJournal::load(
                &cfg,
                EnvRng::from_seed([1; 32]),
                &names,
                ClientState::new(),
                1_000,
            )
        };
        let j = load().await.unwrap();
        let mut s = SessionDeletes::new(j.clone(), &[]);
        let (u1, listing) = (msg("u1"), no_listing());
        let asked = s.record("A", &u1, &listing);
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(10), asked).await;
        assert!(gave_up.is_err(), "the disk was still writing");
        drop(s);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(disk.is_empty(), "written, then erased: {disk:?}");
        assert!(j.carriable_servers().is_empty(), "not carried");
        assert!(!j.has_settled());
        let next_life = load().await.unwrap();
        assert!(next_life.take_carried(&servers()).is_empty());
        // A caller that waits is answered, and owns its entry.
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u2"), &no_listing()).await.unwrap();
        assert_eq!(disk.len(), 1);
    });
}

#[test]
fn a_new_session_is_not_shown_what_the_journal_deletes_unless_its_uidl_is_twice() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let places = Places::new(&[listed(&["u1", "u2", "u3", "u3"])]);
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &places).await.unwrap();
        s.record("A", &msg("u3"), &places).await.unwrap();
        let mut listings = vec![listed(&["u1", "u2", "u3", "u3"])];
        j.hide_pending(&mut listings, &j.mark());
        // u1 is left out; u3 is listed twice, and leaving out one copy
        // would rename the other.
        assert_eq!(listings, [listed(&["u2", "u3", "u3"])]);
    });
}

#[test]
fn a_delete_handed_to_the_edge_while_a_session_opened_is_not_shown_to_it() {
    block_on(async {
        let disk = SimDisk::new();
        let j = journal(&disk, 1).await;
        let places = Places::new(&[listed(&["u1", "u2", "u3"])]);
        let mut s = SessionDeletes::new(j.clone(), &[]);
        s.record("A", &msg("u1"), &places).await.unwrap();
        let early = s.take_unsent();
        s.held(&[early[0].seq]).await;
        // A session begins opening: u1 was held by the edge before, so
        // the edge's listing leaves it out itself.
        let mark = j.mark();
        s.record("A", &msg("u2"), &places).await.unwrap();
        let late = s.take_unsent();
        s.held(&[late[0].seq]).await;
        assert!(disk.is_empty(), "both erased from the journal");
        let mut listings = vec![listed(&["u1", "u2", "u3"])];
        j.hide_pending(&mut listings, &mark);
        assert_eq!(listings, [listed(&["u1", "u3"])]);
        // Once no session is being opened, the log keeps nothing.
        drop(mark);
        let mut listings = vec![listed(&["u1", "u2", "u3"])];
        j.hide_pending(&mut listings, &j.mark());
        assert_eq!(listings, [listed(&["u1", "u2", "u3"])]);
        assert!(j.book().done.is_empty());
    });
}
