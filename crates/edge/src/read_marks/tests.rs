use super::*;
use crate::journal::SimDisk;
use crate::journal::tests::{block_on, journal, spec};
use crate::owed::Owed;
use crate::state::EdgeState;

fn key(user: &str) -> MaildropKey {
    MaildropKey::for_test(user)
}

fn t(uidl: &str) -> Target {
    Target::new(uidl, 10)
}

#[test]
fn an_unread_takes_back_every_claim_on_the_message_and_finds_every_entry() {
    block_on(async {
        let j = journal(&SimDisk::new(), 1, &EdgeState::new());
        let (older, newer) = (j.group("s1", &spec()), j.group("s2", &spec()));
        let e1 = older.record(&t("a"), Owed::Read, None).await.unwrap();
        let e2 = older.record(&t("a"), Owed::Read, None).await.unwrap();
        let e3 = newer.record(&t("a"), Owed::Read, None).await.unwrap();
        let marks = ReadMarks::default();
        let (alice, bob) = (marks.of(&key("alice")), marks.of(&key("bob")));
        let first = alice.claim(&t("a"), std::slice::from_ref(&e1));
        first.add(std::slice::from_ref(&e2));
        let second = alice.claim(&t("a"), std::slice::from_ref(&e3));
        let other_message = alice.claim(&t("b"), &[]);
        let other_maildrop = bob.claim(&t("a"), &[]);
        assert_eq!(alice.entries_of(&t("a")), vec![e1, e2, e3]);
        alice.take_back(&t("a"));
        assert!(first.taken_back() && second.taken_back());
        assert!(!other_message.taken_back() && !other_maildrop.taken_back());
        // A mark owed after the unread is a new read.
        let later = alice.claim(&t("a"), &[]);
        assert!(!later.taken_back());
        drop((first, second, other_message, other_maildrop, later));
        assert!(
            marks.maildrops.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    })
}

#[test]
fn a_turn_is_held_by_one_worker_of_the_maildrop_at_a_time() {
    block_on(async {
        let marks = ReadMarks::default();
        let alice = marks.of(&key("alice"));
        let turn = alice.turn().await;
        // Another maildrop's turn is free.
        drop(marks.of(&key("bob")).turn().await);
        let waiting = tokio::spawn({
            let alice = alice.clone();
            async move { drop(alice.turn().await) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waits for the turn held");
        drop(turn);
        waiting.await.unwrap();
        assert!(
            marks.maildrops.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    })
}
