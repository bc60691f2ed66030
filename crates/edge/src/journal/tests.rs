//! The journal against a simulated disk: what is written, read back,
//! erased, and what cannot be read.

use super::*;
use causeway_proto::Secret;
use causeway_proto::user::{Protocol, Route, TlsMode};

pub(crate) fn spec() -> ServerSpec {
    ServerSpec {
        name: "HOST1".into(),
        protocol: Protocol::Pop3,
        host: "mail".into(),
        port: 110,
        tls: TlsMode::None,
        user: "alice".into(),
        password: Secret::new(b"pw-in-the-journal".to_vec()),
        route: Route::Direct,
        folder: causeway_proto::user::INBOX.into(),
    }
}

pub(crate) fn journal(disk: &SimDisk, key: u8, state: &EdgeState) -> Journal {
    let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([key; 32]));
    let clock: super::Clock =
        std::sync::Arc::new(|| causeway_net::Env::now(&causeway_net::TokioEnv::new()));
    Journal::new(&cfg, EnvRng::from_seed([3; 32]), state.clone(), clock)
}

pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn keys_round_trip() {
    assert_eq!(parse_key(&header_key(7)), Some(EntryKey::Header(7)));
    assert_eq!(parse_key(&op_key(7, 9)), Some(EntryKey::Op(7, 9)));
    assert_eq!(parse_key(b"o/7/9"), None);
    assert_eq!(parse_key(b"x"), None);
}

#[test]
fn record_load_erase() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let g = j.group("s1", &spec());
        let (ta, tb) = (Target::new("uidl-a", 10), Target::new("uidl-b", 20));
        let a = g.record(&ta, Owed::Delete, Some(&tb)).await.unwrap();
        let b = g.record(&tb, Owed::Read, None).await.unwrap();
        assert_eq!(disk.len(), 3, "header + two entries");
        assert_eq!(owed_entries(&disk.durable()), 2);
        assert_eq!(st.journal_entries(), 2);
        assert!(!disk.contains(b"pw-in-the-journal"));
        assert!(!disk.contains(b"alice") && !disk.contains(b"uidl-a"));

        // A new life of the edge finds both, with the spec.
        let st2 = EdgeState::new();
        let j2 = journal(&disk, 1, &st2);
        let r = j2.load().await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].spec, spec());
        assert_eq!(r[0].session, "s1");
        assert_eq!(
            r[0].ops,
            vec![
                (
                    a.seq,
                    Recorded {
                        target: ta.clone(),
                        owed: Owed::Delete,
                        witness: Some(tb.clone()),
                        quit_sent: false,
                    }
                ),
                (
                    b.seq,
                    Recorded {
                        target: tb.clone(),
                        owed: Owed::Read,
                        witness: None,
                        quit_sent: false,
                    }
                )
            ],
            "each entry with the witness it was recorded with"
        );
        assert_eq!(st2.journal_entries(), 2);

        g.erase(&[a.seq]).await.unwrap();
        assert_eq!(disk.len(), 2);
        g.erase(&[b.seq]).await.unwrap();
        assert_eq!(disk.len(), 0, "the header goes with the last entry");
        assert_eq!(st.journal_entries(), 0);
        // Recording again writes the header again.
        g.record(&Target::new("uidl-c", 1), Owed::Delete, None)
            .await
            .unwrap();
        assert_eq!(disk.len(), 2);
        g.erase_all().await.unwrap();
        assert_eq!(disk.len(), 0);
    });
}

#[test]
fn a_failed_commit_records_nothing() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let g = j.group("s1", &spec());
        disk.fail_next_commits(1);
        assert!(
            g.record(&Target::new("u", 1), Owed::Delete, None)
                .await
                .is_err()
        );
        assert_eq!(disk.len(), 0);
        assert_eq!((st.journal_entries(), st.journal_failures()), (0, 1));
        // The header is still owed to the next record.
        g.record(&Target::new("u", 1), Owed::Delete, None)
            .await
            .unwrap();
        assert_eq!(disk.len(), 2);
    });
}

#[test]
fn a_wrong_key_or_a_moved_value_does_not_open() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        journal(&disk, 1, &st)
            .group("s1", &spec())
            .record(&Target::new("u", 1), Owed::Delete, None)
            .await
            .unwrap();
        let st2 = EdgeState::new();
        let r = journal(&disk, 2, &st2).load().await.unwrap();
        assert!(r.is_empty());
        assert_eq!(st2.journal_unreadable_entries(), 2);
        assert_eq!(disk.len(), 2, "unreadable entries are left in place");

        // Swap the two values: the associated data (the key) catches it.
        let d = disk.durable();
        let swapped = SimDisk::new();
        let batch = vec![
            Write::Put {
                key: d[0].0.clone(),
                value: d[1].1.clone(),
            },
            Write::Put {
                key: d[1].0.clone(),
                value: d[0].1.clone(),
            },
        ];
        swapped.commit(batch).await.unwrap();
        let st3 = EdgeState::new();
        assert!(journal(&swapped, 1, &st3).load().await.unwrap().is_empty());
        assert_eq!(st3.journal_unreadable_entries(), 2);
    });
}

#[test]
fn leftovers_are_cleaned_up() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let g = j.group("s1", &spec());
        g.record(&Target::new("u", 1), Owed::Delete, None)
            .await
            .unwrap();
        // Lose the entry but keep the header, and add an orphan entry.
        let d = disk.durable();
        let (hk, ok) = (d[0].0.clone(), d[1].0.clone());
        assert!(hk.starts_with(b"g/") && ok.starts_with(b"o/"));
        disk.commit(vec![
            Write::Delete { key: ok },
            Write::Put {
                key: op_key(99, 0),
                value: j.seal(
                    &op_key(99, 0),
                    &encode(&OpRecord {
                        version: OP_VERSION,
                        uidl: "x".into(),
                        kind: 1,
                        size: Some(1),
                        witness: None,
                    }),
                ),
            },
        ])
        .await
        .unwrap();
        let r = journal(&disk, 1, &EdgeState::new()).load().await.unwrap();
        assert!(r.is_empty());
        assert_eq!(disk.len(), 0);
    });
}

#[test]
fn derived_key_depends_on_the_private_key() {
    let a = super::edge_key(&causeway_wire::PrivateKey::from_bytes([1; 32]));
    let b = super::edge_key(&causeway_wire::PrivateKey::from_bytes([2; 32]));
    assert_ne!(a, b);
    assert_ne!(a, JournalKey::from_bytes([1; 32]));
    assert_eq!(format!("{a:?}"), "JournalKey(<redacted>)");
}

#[test]
fn entries_of_the_first_version_still_read_without_a_size() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let g = j.group("s1", &spec());
        // A header, and an entry as version 1 wrote it.
        g.record(&Target::new("new", 5), Owed::Read, None)
            .await
            .unwrap();
        let key = op_key(g.id(), 7);
        let old = OpRecordV1 {
            version: 1,
            uidl: "old".into(),
            kind: 1,
        };
        disk.commit(vec![Write::Put {
            value: j.seal(&key, &encode(&old)),
            key,
        }])
        .await
        .unwrap();
        let r = journal(&disk, 1, &EdgeState::new()).load().await.unwrap();
        let ops: Vec<_> = r[0]
            .ops
            .iter()
            .map(|(_, r)| (r.target.clone(), r.owed))
            .collect();
        assert_eq!(
            ops,
            vec![
                (Target::new("new", 5), Owed::Read),
                (
                    Target {
                        uidl: "old".into(),
                        size: None
                    },
                    Owed::Delete
                )
            ]
        );
    });
}

/// A journal on `disk` with one delete owed, and its group's header key.
async fn one_owed_delete(disk: &SimDisk) -> (Journal, Vec<u8>) {
    let j = journal(disk, 1, &EdgeState::new());
    j.group("s1", &spec())
        .record(&Target::new("u", 1), Owed::Delete, None)
        .await
        .unwrap();
    let header = disk
        .durable()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with(b"g/"))
        .unwrap();
    (j, header)
}

/// The journal on `disk` loaded by a new edge after the header at `key`
/// was replaced by `plain` (sealed).
async fn with_header(
    disk: &SimDisk,
    j: &Journal,
    key: &[u8],
    plain: &[u8],
) -> (EdgeState, Vec<Restored>) {
    let value = j.seal(key, plain);
    disk.commit(vec![Write::Put {
        key: key.to_vec(),
        value,
    }])
    .await
    .unwrap();
    let st = EdgeState::new();
    let r = journal(disk, 1, &st).load().await.unwrap();
    (st, r)
}

#[test]
fn headers_of_the_first_version_still_read_as_inbox() {
    block_on(async {
        let disk = SimDisk::new();
        let (j, header) = one_owed_delete(&disk).await;
        // The header as version 1 wrote it: the spec had no folder. A
        // tuple is encoded field by field, as a struct is.
        let s = spec();
        let v1 = (
            1u8,
            "s1",
            (
                &s.name,
                s.protocol,
                &s.host,
                s.port,
                s.tls,
                &s.user,
                &s.password,
                &s.route,
            ),
        );
        let (st, r) = with_header(&disk, &j, &header, &encode(&v1)).await;
        assert_eq!(st.journal_unreadable_entries(), 0);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].spec, spec(), "read with the only folder there was");
        assert_eq!(r[0].spec.folder, "INBOX");
        // A folder survives the journal.
        let archive = ServerSpec {
            protocol: causeway_proto::user::Protocol::Imap,
            folder: "Archive".into(),
            ..spec()
        };
        j.group("s2", &archive)
            .record(&Target::new("v", 1), Owed::Delete, None)
            .await
            .unwrap();
        let r = journal(&disk, 1, &st).load().await.unwrap();
        assert!(r.iter().any(|g| g.spec == archive), "{:?}", r.len());
    });
}

#[test]
fn erase_takes_entries_of_several_groups() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let (g1, g2) = (j.group("s1", &spec()), j.group("s2", &spec()));
        let a = g1
            .record(&Target::new("a", 1), Owed::Delete, None)
            .await
            .unwrap();
        let b = g2
            .record(&Target::new("b", 1), Owed::Delete, None)
            .await
            .unwrap();
        assert_eq!(disk.len(), 4);
        erase(vec![a, b]).await.unwrap();
        assert_eq!(disk.len(), 0, "entries and both headers");
    });
}

#[test]
fn an_operator_lists_owed_work_and_drops_it_by_name() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let g1 = j.group("s1", &spec());
        g1.record(&Target::new("uidl-a", 10), Owed::Delete, None)
            .await
            .unwrap();
        g1.record(&Target::new("uidl-b", 20), Owed::Read, None)
            .await
            .unwrap();
        let g2 = j.group("s2", &spec());
        g2.record(&Target::new("uidl-c", 30), Owed::Delete, None)
            .await
            .unwrap();
        let cfg = JournalConfig::new(disk.clone(), JournalKey::from_bytes([1; 32]));

        let l = inspect::list(&cfg).await.unwrap();
        assert_eq!(l.unreadable, 0);
        assert_eq!(l.groups.len(), 2);
        let first = l.groups.iter().find(|g| g.session == "s1").unwrap();
        assert_eq!(
            (
                first.server.as_str(),
                first.address.as_str(),
                first.user.as_str()
            ),
            ("HOST1", "mail:110", "alice")
        );
        let whats: Vec<(&str, &str, Option<u64>)> = first
            .items
            .iter()
            .map(|i| (i.what, i.uidl.as_str(), i.size))
            .collect();
        assert_eq!(
            whats,
            vec![
                ("delete", "uidl-a", Some(10)),
                ("read mark", "uidl-b", Some(20))
            ]
        );

        // One entry by name: its group keeps its header for the other.
        let one = first.items[0].id.clone();
        let dropped = inspect::drop_work(&cfg, &[one]).await.unwrap();
        assert_eq!(dropped.len(), 1);
        assert_eq!(owed_entries(&disk.durable()), 2);
        // A whole group by name: entries and header go.
        let second = l
            .groups
            .iter()
            .find(|g| g.session == "s2")
            .unwrap()
            .id
            .clone();
        inspect::drop_work(&cfg, &[second]).await.unwrap();
        assert_eq!(owed_entries(&disk.durable()), 1);
        assert_eq!(disk.len(), 2, "one header, one entry left");
        // A name that matches nothing drops nothing.
        let e = inspect::drop_work(&cfg, &["0000000000000000".into()])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(disk.len(), 2);
        // Another key reads nothing and says so.
        let other = JournalConfig::new(disk.clone(), JournalKey::from_bytes([2; 32]));
        let l = inspect::list(&other).await.unwrap();
        assert!(l.groups.is_empty());
        assert_eq!(l.unreadable, 2);
    });
}

#[test]
fn entries_of_an_unknown_version_or_kind_are_not_read_as_work() {
    // A later Causeway's entry, or a damaged one, is never guessed at: a
    // delete read from the wrong layout could name another message.
    let v1 = |version, kind| {
        encode(&OpRecordV1 {
            version,
            uidl: "u".into(),
            kind,
        })
    };
    let v2 = |version, kind| {
        encode(&OpRecordV2 {
            version,
            uidl: "u".into(),
            kind,
            size: Some(9),
        })
    };
    let v3 = |version, kind| {
        encode(&OpRecord {
            version,
            uidl: "u".into(),
            kind,
            size: Some(9),
            witness: Some(("w".into(), Some(4))),
        })
    };
    let read = |target, owed, witness| {
        Some(Recorded {
            target,
            owed,
            witness,
            quit_sent: false,
        })
    };
    assert_eq!(
        decode_op(&v3(3, 1)),
        read(Target::new("u", 9), Owed::Delete, Some(Target::new("w", 4)))
    );
    assert_eq!(
        decode_op(&v2(2, 1)),
        read(Target::new("u", 9), Owed::Delete, None)
    );
    let sizeless = Target {
        uidl: "u".into(),
        size: None,
    };
    assert_eq!(decode_op(&v1(1, 0)), read(sizeless, Owed::Read, None));
    for plain in [
        v3(2, 1),
        v3(4, 1),
        v3(3, 2),
        v2(3, 1),
        v2(1, 1),
        v1(2, 1),
        v1(3, 1),
        v1(0, 1),
        v2(2, 2),
        v1(1, 7),
    ] {
        assert_eq!(decode_op(&plain), None);
    }
}

#[test]
fn work_under_a_header_that_cannot_be_read_is_left_in_place() {
    // A later Causeway's header (or a damaged one) is not guessed at, and
    // the acknowledged work under it is not taken for debris either.
    block_on(async {
        let disk = SimDisk::new();
        let (j, header) = one_owed_delete(&disk).await;
        for plain in [
            encode(&Header {
                version: VERSION + 1,
                session: "s1".into(),
                spec: spec(),
            }),
            b"not a header".to_vec(),
        ] {
            let (st, r) = with_header(&disk, &j, &header, &plain).await;
            assert!(r.is_empty(), "nothing is read as work");
            assert_eq!(st.journal_unreadable_entries(), 1);
            assert_eq!(disk.len(), 2, "the header and its work stay");
        }
    });
}

#[test]
fn a_header_of_this_version_cut_short_by_its_folder_is_not_read_as_inbox() {
    block_on(async {
        let disk = SimDisk::new();
        let (j, header) = one_owed_delete(&disk).await;
        // A version 2 header for Archive without its folder's bytes is a
        // version 1 header's bytes but for the version: read as INBOX, its
        // deletes would go to another folder's messages.
        let archive = ServerSpec {
            protocol: causeway_proto::user::Protocol::Imap,
            folder: "Archive".into(),
            ..spec()
        };
        let whole = encode(&Header {
            version: VERSION,
            session: "s1".into(),
            spec: archive,
        });
        let cut = &whole[..whole.len() - encode(&"Archive").len()];
        let (st, r) = with_header(&disk, &j, &header, cut).await;
        assert_eq!(st.journal_unreadable_entries(), 1);
        assert!(r.is_empty(), "{} groups restored", r.len());
    });
}

/// A delete taken by the client proxy's number is remembered in the
/// same commit as its entry, past the entry's erasure and across a
/// restart, only for the same delete and client, and forgotten once the
/// proxy says it can carry it no more (`journal::taken`).
#[test]
fn a_taken_delete_outlives_its_entry_and_a_restart_until_the_proxy_is_past_it() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let (alice, bob) = (
            causeway_wire::PublicKey::from_bytes([1; 32]),
            causeway_wire::PublicKey::from_bytes([2; 32]),
        );
        let g = j.group_of("s1", &spec(), &alice);
        let t = Target::new("uidl-a", 10);
        let e = g
            .record_numbered(&t, Owed::Delete, None, Some(7))
            .await
            .unwrap();
        g.record_numbered(&Target::new("uidl-b", 5), Owed::Delete, None, Some(9))
            .await
            .unwrap();
        assert_eq!(disk.len(), 5, "header, two entries, two records");
        assert_eq!(owed_entries(&disk.durable()), 2, "records are no work");
        assert_eq!(st.taken_records(), 2, "the metric counts them");
        assert!(!disk.contains(b"uidl-a"), "sealed");
        erase(vec![e]).await.unwrap();
        assert!(j.took(&alice, 7, "HOST1", &t), "past its entry");
        assert!(!j.took(&bob, 7, "HOST1", &t), "another client");
        assert!(!j.took(&alice, 7, "HOST2", &t), "another server");
        assert!(
            !j.took(&alice, 7, "HOST1", &Target::new("uidl-a", 11)),
            "a reused number naming another delete"
        );
        assert!(!j.took(&alice, 8, "HOST1", &t));

        let again = journal(&disk, 1, &st);
        let restored = again.load().await.unwrap();
        assert_eq!(restored.len(), 1, "the group still owes uidl-b");
        assert!(again.took(&alice, 7, "HOST1", &t), "across a restart");
        again.forget_taken_below(&alice, 8).await;
        assert!(!again.took(&alice, 7, "HOST1", &t));
        assert!(again.took(&alice, 9, "HOST1", &Target::new("uidl-b", 5)));
        assert_eq!(disk.len(), 3, "header, entry, one record");
        assert_eq!(st.taken_records(), 1);
        let later = journal(&disk, 1, &st);
        later.load().await.unwrap();
        assert!(!later.took(&alice, 7, "HOST1", &t), "erased on disk too");
    });
}

/// The record of a `QUIT` sent: read back as a batch on the entries it
/// names (and only those still there), gone with the group's last entry
/// or once forgotten, and never left behind a group that is gone.
#[test]
fn a_quit_sent_is_recorded_until_its_group_or_its_doubt_is_gone() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let g = j.group("s1", &spec());
        let mut entries = Vec::new();
        for u in ["a", "b", "c"] {
            let t = Target::new(u, 10);
            entries.push(g.record(&t, Owed::Delete, None).await.unwrap());
        }
        // The QUIT is sent for a and b; b is then erased (done).
        quit_sent::record(&entries[..2]).await.unwrap();
        assert_eq!(
            census(disk.durable_keys().iter().map(Vec::as_slice))
                .quits_sent
                .len(),
            1
        );
        g.erase(&[entries[1].seq]).await.unwrap();
        let restored = journal(&disk, 1, &EdgeState::new()).load().await.unwrap();
        let sent: Vec<(&str, bool)> = (restored[0].ops.iter())
            .map(|(_, r)| (r.target.uidl.as_str(), r.quit_sent))
            .collect();
        assert_eq!(sent, vec![("a", true), ("c", false)]);

        // Forgotten: the batch was settled.
        quit_sent::forget(&entries[..1]).await.unwrap();
        let restored = journal(&disk, 1, &EdgeState::new()).load().await.unwrap();
        assert!(restored[0].ops.iter().all(|(_, r)| !r.quit_sent));

        // Recorded again, then the group's last entries go: so does it.
        quit_sent::record(&entries).await.unwrap();
        g.erase(&[entries[0].seq, entries[2].seq]).await.unwrap();
        assert_eq!(disk.len(), 0, "header, entries and the record all gone");
        // A group with nothing left gets no record.
        quit_sent::record(&entries).await.unwrap();
        assert_eq!(disk.len(), 0);
    });
}

/// A record whose group has no header (left by damage, or by an older
/// edge's crash) names no work: the next start erases it.
#[test]
fn a_quit_record_without_its_group_is_erased_at_start() {
    block_on(async {
        let disk = SimDisk::new();
        let st = EdgeState::new();
        let j = journal(&disk, 1, &st);
        let g = j.group("s1", &spec());
        let e = g
            .record(&Target::new("a", 1), Owed::Delete, None)
            .await
            .unwrap();
        quit_sent::record(std::slice::from_ref(&e)).await.unwrap();
        // Only the record survives.
        disk.commit(vec![
            Write::Delete {
                key: header_key(g.id()),
            },
            Write::Delete {
                key: op_key(g.id(), e.seq),
            },
        ])
        .await
        .unwrap();
        assert_eq!(disk.len(), 1);
        assert!(
            journal(&disk, 1, &EdgeState::new())
                .load()
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(disk.len(), 0);
    });
}
