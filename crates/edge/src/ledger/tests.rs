use std::collections::BTreeMap;

use causeway_pop3::Command;

use super::*;
use crate::state::EdgeState;

/// A session listing `uidls`, each message of the size [`t`] gives.
fn listing(uidls: &[&str]) -> Numbering {
    let sizes = (1..=uidls.len() as u32).map(|n| (n, 100)).collect();
    Numbering::new(
        uidls
            .iter()
            .enumerate()
            .map(|(i, u)| (i as u32 + 1, u.to_string())),
        &sizes,
    )
}

fn t(uidl: &str) -> Target {
    Target::new(uidl, 100)
}

/// Runs every step as a server would, returning what was sent.
fn bring_up_to_date(l: &mut Ledger) -> Vec<Action> {
    let mut sent = Vec::new();
    while let Some(s) = l.next_step() {
        l.done(&s.target, s.owed);
        sent.push(s.action);
    }
    sent
}

#[test]
fn a_delete_follows_its_uidl_into_a_shifted_session() {
    let st = EdgeState::new();
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "b", "c"]));
    l.owe(t("c"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Send(Command::Dele(3))]
    );
    // The server session dies before QUIT; meanwhile someone deleted "a"
    // and new mail arrived: "c" is now number 2, number 3 is new mail.
    l.session_lost();
    assert_eq!(
        l.resolve(&t("c")),
        Resolved::Gone,
        "numbers never cross sessions"
    );
    l.new_session(listing(&["b", "c", "new"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Send(Command::Dele(2))]
    );
    assert_eq!(st.pending_work(), 1);
    l.committed();
    assert!(l.is_empty());
    assert_eq!(st.pending_work(), 0);
}

#[test]
fn redo_is_idempotent_when_the_message_is_gone() {
    let st = EdgeState::new();
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "b"]));
    l.owe(t("a"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    l.owe(t("a"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    l.owe(t("b"), Owed::Read, None, || {
        st.work_ticket(crate::state::test_now())
    });
    assert_eq!(st.pending_work(), 2, "owing twice is owing once");
    bring_up_to_date(&mut l);
    // QUIT was committed by the server but its answer was lost: the next
    // session no longer lists "a".
    l.new_session(listing(&["b"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Gone, Action::Send(Command::Retr(1))]
    );
    l.committed();
    assert_eq!(st.pending_work(), 0);
}

#[test]
fn read_before_delete_and_rset_undoes_this_sessions_work_only() {
    let st = EdgeState::new();
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "b", "c"]));
    l.owe(t("a"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    l.owe(t("a"), Owed::Read, None, || {
        st.work_ticket(crate::state::test_now())
    });
    l.owe(t("b"), Owed::Read, None, || {
        st.work_ticket(crate::state::test_now())
    });
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![
            Action::Send(Command::Retr(1)),
            Action::Send(Command::Dele(1)),
            Action::Send(Command::Retr(2))
        ]
    );
    // Another session's delete of "c", adopted.
    let mut other = Ledger::default();
    other.owe(t("c"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    l.adopt(other.hand_over());
    bring_up_to_date(&mut l);
    l.rset();
    assert_eq!(st.pending_work(), 1, "only the adopted delete is left");
    assert_eq!(l.outstanding(), vec!["delete of c"]);
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Send(Command::Dele(3))],
        "the server's RSET undid it too: sent again"
    );
}

#[test]
fn only_what_was_sent_is_committed() {
    let st = EdgeState::new();
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "b"]));
    l.owe(t("a"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    bring_up_to_date(&mut l);
    l.owe(t("b"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    l.committed();
    assert_eq!(l.outstanding(), vec!["delete of b"]);
    assert_eq!(st.pending_work(), 1);
    drop(l);
    assert_eq!(
        st.pending_work(),
        0,
        "a dropped ledger gives its count back"
    );
}

#[test]
fn handed_over_work_keeps_its_count_and_is_sent_again() {
    let st = EdgeState::new();
    let mut old = Ledger::default();
    old.new_session(listing(&["a"]));
    old.owe(t("a"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    bring_up_to_date(&mut old);
    let items = old.hand_over();
    assert!(old.is_empty());
    assert_eq!(
        st.pending_work(),
        1,
        "in flight between workers, still owed"
    );
    let mut new = Ledger::default();
    new.new_session(listing(&["x", "a"]));
    new.adopt(items);
    assert_eq!(new.deletes().cloned().collect::<Vec<_>>(), vec![t("a")]);
    assert_eq!(
        bring_up_to_date(&mut new),
        vec![Action::Send(Command::Dele(2))]
    );
    new.committed();
    assert_eq!(st.pending_work(), 0);
}

#[test]
fn an_ambiguous_message_is_never_touched() {
    let st = EdgeState::new();
    let mut l = Ledger::default();
    let sizes = BTreeMap::from([(1, 100), (2, 100), (3, 50)]);
    l.new_session(Numbering::new(
        [
            (1, "d".to_owned()),
            (2, "d".to_owned()),
            (3, "d".to_owned()),
        ],
        &sizes,
    ));
    l.owe(t("d"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    l.owe(Target::new("d", 50), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Send(Command::Dele(3)), Action::Ambiguous]
    );
    assert!(l.impossible(&t("d"), Owed::Delete).is_empty());
    assert_eq!(l.outstanding(), vec!["delete of d"]);
}

#[test]
fn adopted_work_missing_from_the_adopters_listing_waits_for_a_fresh_listing() {
    // The adopter's server session began before "new" arrived (a session
    // is a snapshot): not being listed there proves nothing (seed
    // 869921513: the delete was counted done, and erased, with the message
    // still on the server).
    let st = EdgeState::new();
    let mut adopter = Ledger::default();
    adopter.new_session(listing(&["old"]));
    let mut other = Ledger::default();
    other.owe(t("new"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    adopter.adopt(other.hand_over());
    assert_eq!(bring_up_to_date(&mut adopter), vec![]);
    assert!(adopter.committed().is_empty());
    assert!(!adopter.is_empty(), "still owed after the adopter's QUIT");
    adopter.new_session(listing(&["old", "new"]));
    assert_eq!(
        bring_up_to_date(&mut adopter),
        vec![Action::Send(Command::Dele(2))]
    );
    adopter.committed();
    assert!(adopter.is_empty());
    // Gone from a listing taken after the adoption: gone indeed.
    let mut other = Ledger::default();
    other.owe(t("gone"), Owed::Delete, None, || {
        st.work_ticket(crate::state::test_now())
    });
    adopter.adopt(other.hand_over());
    adopter.new_session(listing(&["old"]));
    assert_eq!(bring_up_to_date(&mut adopter), vec![Action::Gone]);
}

#[test]
fn a_copy_listed_after_the_witness_is_not_the_message_owed() {
    // The session deletes "x" (listed before "y") and its QUIT loses the
    // answer: the server may have committed. The next session lists "x"
    // once, but after "y": a copy delivered since, not the message the
    // user deleted, which is gone. No DELE for it; "z", listed before its
    // witness as ever, is still owed.
    let st = EdgeState::new();
    let mut l = Ledger::default();
    l.new_session(listing(&["x", "y", "z", "w"]));
    let ticket = || st.work_ticket(crate::state::test_now());
    l.owe(t("x"), Owed::Delete, None, ticket);
    l.owe(t("z"), Owed::Read, None, ticket);
    bring_up_to_date(&mut l);
    l.session_lost();
    l.new_session(listing(&["y", "z", "w", "x"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Gone, Action::Send(Command::Retr(2))],
        "x is listed after its witness y: a newcomer"
    );
    // Listed where it was, it is the same message and still owed.
    let mut l = Ledger::default();
    l.new_session(listing(&["x", "y"]));
    l.owe(t("x"), Owed::Delete, None, ticket);
    bring_up_to_date(&mut l);
    l.session_lost();
    l.new_session(listing(&["new", "x", "y", "later"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Send(Command::Dele(2))]
    );
}

#[test]
fn a_witness_is_never_a_message_owed_a_delete_nor_one_named_twice() {
    // "y" is deleted in the same batch and "d" is listed twice, so the
    // witness of "x" is "w". The batch's QUIT is lost and committed: "y"
    // is gone, and a copy of "x" arrives after "w".
    let st = EdgeState::new();
    let mut l = Ledger::default();
    l.new_session(listing(&["x", "y", "d", "d", "w"]));
    let ticket = || st.work_ticket(crate::state::test_now());
    l.owe(t("x"), Owed::Delete, None, ticket);
    l.owe(t("y"), Owed::Delete, None, ticket);
    bring_up_to_date(&mut l);
    l.session_lost();
    l.new_session(listing(&["d", "d", "w", "x"]));
    assert_eq!(bring_up_to_date(&mut l), vec![Action::Gone, Action::Gone]);
}

#[test]
fn a_batch_whose_quit_went_unanswered_and_was_committed_leaves_a_later_copy_alone() {
    // Seed 273611101: the session deletes a, b, d and e (every message
    // after d: no witness), its QUIT is committed and the answer lost, and
    // an exact copy of d arrived before the commit. The next listing shows
    // c and the copy: a, b and e gone say the batch was committed, so the
    // copy is left alone and its read mark not made again either.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "b", "c", "d", "e"]));
    for u in ["a", "b", "d", "e"] {
        l.owe(t(u), Owed::Read, None, ticket);
        l.owe(t(u), Owed::Delete, None, ticket);
    }
    bring_up_to_date(&mut l);
    l.quit_unanswered();
    l.new_session(listing(&["c", "d"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        (0..8).map(|_| Action::Gone).collect::<Vec<_>>(),
        "committed: nothing is sent for the copy of d"
    );
    // Nothing gone: nothing was committed, and all is sent again.
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "b", "c"]));
    l.owe(t("a"), Owed::Delete, None, ticket);
    l.owe(t("c"), Owed::Delete, None, ticket);
    bring_up_to_date(&mut l);
    l.quit_unanswered();
    l.new_session(listing(&["a", "b", "c", "new"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![
            Action::Send(Command::Dele(1)),
            Action::Send(Command::Dele(3))
        ]
    );
    // A later doubt is judged by its own batch: a QUIT answered +OK
    // after all settles nothing it did not send.
    l.committed();
    assert!(l.is_empty());
}

#[test]
fn work_a_session_found_gone_is_no_part_of_its_batch_in_doubt() {
    // Seed 41076: a and b are owed; the user's other mail client deleted a
    // before this session listed the maildrop, so the session sends DELE
    // for b alone, and the server refuses its QUIT, the answer lost to a
    // cut. a being gone from the next listing says nothing about this
    // QUIT: b must be deleted again, not taken for a later copy.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let mut l = Ledger::default();
    l.owe(t("a"), Owed::Delete, None, ticket);
    l.owe(t("b"), Owed::Delete, None, ticket);
    l.new_session(listing(&["b", "c"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Gone, Action::Send(Command::Dele(1))]
    );
    l.quit_unanswered();
    l.new_session(listing(&["b", "c"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Gone, Action::Send(Command::Dele(1))],
        "b was not committed: a went before this batch was sent"
    );
    // Nor is a later copy the session left alone: someone deleting it
    // says nothing about this QUIT either.
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "w", "b"]));
    l.owe(t("a"), Owed::Delete, None, ticket);
    l.owe(t("b"), Owed::Delete, None, ticket);
    l.session_lost();
    l.new_session(listing(&["w", "a", "b"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Gone, Action::Send(Command::Dele(3))],
        "a listed after its witness is a later copy"
    );
    l.quit_unanswered();
    l.new_session(listing(&["w", "b"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Gone, Action::Send(Command::Dele(2))]
    );
}

#[test]
fn a_batch_in_doubt_handed_over_mid_session_waits_for_the_adopters_fresh_listing() {
    // Seed 273612574: the batch in doubt is adopted by the session that
    // holds the maildrop, whose listing was taken before the commit and
    // still shows every message of the batch: it must not send the deletes
    // there (the server may have committed them, and the copy is listed
    // the same), but judge them by its next listing.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let mut old = Ledger::default();
    old.new_session(listing(&["a", "b"]));
    old.owe(t("a"), Owed::Delete, None, ticket);
    old.owe(t("b"), Owed::Delete, None, ticket);
    bring_up_to_date(&mut old);
    old.quit_unanswered();
    let mut adopter = Ledger::default();
    adopter.new_session(listing(&["a", "b", "c"]));
    adopter.adopt(old.hand_over());
    assert_eq!(bring_up_to_date(&mut adopter), vec![]);
    assert!(adopter.committed().is_empty());
    adopter.new_session(listing(&["a", "c"]));
    assert_eq!(
        bring_up_to_date(&mut adopter),
        vec![Action::Gone, Action::Gone],
        "b is gone: committed, and a is a later copy"
    );
    adopter.committed();
    assert!(adopter.is_empty());
    assert_eq!(st.pending_work(), 0);
}

#[test]
fn adopted_work_this_session_already_sent_counts_as_its_own_commit() {
    // Seed 2840 --focus line: the first session sent DELE for c and d and
    // lost its QUIT's answer to a server crash (nothing committed). The
    // user's next session deleted d itself, then adopted the first's
    // batch. Its QUIT commits d: our own delete, no sign that the batch
    // was committed, so c is still owed.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let commits = crate::commits::Commits::default();
    let reads = crate::read_marks::ReadMarks::default();
    let key = crate::account::MaildropKey::for_test("alice");
    let mut first = Ledger::watching(commits.of(&key), reads.of(&key), false);
    first.listing();
    first.new_session(listing(&["a", "b", "c", "d"]));
    for u in ["c", "d"] {
        first.owe(t(u), Owed::Delete, None, ticket);
    }
    bring_up_to_date(&mut first);
    first.quit_unanswered();
    let mut adopter = Ledger::watching(commits.of(&key), reads.of(&key), false);
    adopter.listing();
    adopter.new_session(listing(&["a", "b", "c", "d", "new"]));
    adopter.owe(t("d"), Owed::Delete, None, ticket);
    assert_eq!(
        bring_up_to_date(&mut adopter),
        vec![Action::Send(Command::Dele(4))]
    );
    adopter.adopt(first.hand_over());
    assert_eq!(
        bring_up_to_date(&mut adopter),
        vec![],
        "d was sent; c waits for a fresh listing"
    );
    adopter.committed();
    adopter.listing();
    adopter.new_session(listing(&["a", "b", "c", "new"]));
    assert_eq!(
        bring_up_to_date(&mut adopter),
        vec![Action::Send(Command::Dele(3))],
        "d gone is our own doing: c was not committed"
    );
    adopter.committed();
    assert!(adopter.is_empty());
    assert_eq!(st.pending_work(), 0);
}

#[test]
fn a_batch_judged_committed_stays_done_when_the_next_quit_is_refused() {
    // Seed 273611101 again: the session that found the batch committed had
    // its own QUIT refused; the session after it must not take the copy
    // for the message owed.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "d", "e"]));
    for u in ["a", "d", "e"] {
        l.owe(t(u), Owed::Delete, None, ticket);
    }
    bring_up_to_date(&mut l);
    l.quit_unanswered();
    l.new_session(listing(&["d"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        (0..3).map(|_| Action::Gone).collect::<Vec<_>>()
    );
    l.session_lost();
    l.new_session(listing(&["d", "new"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        (0..3).map(|_| Action::Gone).collect::<Vec<_>>()
    );
    assert_eq!(l.committed().len(), 0);
    assert!(l.is_empty());
}

#[test]
fn a_delete_our_other_session_committed_is_no_sign_that_a_batch_in_doubt_was() {
    // Seed 9689: two mail clients of one user both delete b; the first
    // session's QUIT goes unanswered (nothing committed), the second's
    // commits b. b gone from the next listing was our second session's
    // doing, so the first session's a and c are still owed.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let commits = crate::commits::Commits::default();
    let reads = crate::read_marks::ReadMarks::default();
    let key = crate::account::MaildropKey::for_test("alice");
    let mut first = Ledger::watching(commits.of(&key), reads.of(&key), false);
    let mut second = Ledger::watching(commits.of(&key), reads.of(&key), false);
    for l in [&mut first, &mut second] {
        l.listing();
        l.new_session(listing(&["a", "b", "c"]));
    }
    for u in ["a", "b", "c"] {
        first.owe(t(u), Owed::Delete, None, ticket);
    }
    second.owe(t("b"), Owed::Delete, None, ticket);
    bring_up_to_date(&mut first);
    bring_up_to_date(&mut second);
    first.quit_unanswered();
    second.committed();
    first.listing();
    first.new_session(listing(&["a", "c"]));
    assert_eq!(
        bring_up_to_date(&mut first),
        vec![
            Action::Send(Command::Dele(1)),
            Action::Gone,
            Action::Send(Command::Dele(2))
        ]
    );
    // Without the second session's record, b gone reads as the commit.
    let mut blind = Ledger::default();
    blind.new_session(listing(&["a", "b", "c"]));
    for u in ["a", "b", "c"] {
        blind.owe(t(u), Owed::Delete, None, ticket);
    }
    bring_up_to_date(&mut blind);
    blind.quit_unanswered();
    blind.new_session(listing(&["a", "c"]));
    assert_eq!(
        bring_up_to_date(&mut blind),
        (0..3).map(|_| Action::Gone).collect::<Vec<_>>()
    );
}

#[test]
fn work_adopted_mid_session_listed_after_its_witness_is_a_later_copy() {
    // Seed 1032 --focus twins: a session sent DELE for x and z and lost its
    // QUIT's answer; the server had committed both, and exact copies of x
    // and z came after. The next session of the maildrop listed the copies,
    // then adopted the batch; at its end the message after x's copy became
    // x's witness, and the session after that deleted the copy.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let mut first = Ledger::default();
    first.new_session(listing(&["x", "w", "z"]));
    for u in ["x", "z"] {
        first.owe(t(u), Owed::Delete, None, ticket);
    }
    bring_up_to_date(&mut first);
    first.quit_unanswered();
    let mut adopter = Ledger::default();
    adopter.new_session(listing(&["w", "x", "z", "new"]));
    adopter.adopt(first.hand_over());
    assert_eq!(
        bring_up_to_date(&mut adopter),
        vec![Action::Gone],
        "x's copy is listed after x's witness; z waits for a fresh listing"
    );
    adopter.committed();
    adopter.new_session(listing(&["w", "x", "z", "new"]));
    let sent = bring_up_to_date(&mut adopter);
    assert!(
        !sent.contains(&Action::Send(Command::Dele(2))),
        "x's copy is left alone: {sent:?}"
    );
}

#[test]
fn marked_unread_a_read_mark_is_dropped_sent_or_not_and_a_delete_stays() {
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let mut l = Ledger::default();
    l.new_session(listing(&["a", "b", "c"]));
    l.owe(t("a"), Owed::Read, None, ticket);
    l.owe(t("b"), Owed::Read, None, ticket);
    l.owe(t("b"), Owed::Delete, None, ticket);
    // "a" is sent in this server session; "b"'s mark is not yet.
    let first = l.next_step().expect("owed");
    assert_eq!(first.action, Action::Send(Command::Retr(1)));
    l.done(&first.target, first.owed);
    assert!(l.unread(&t("a")));
    assert!(l.unread(&t("b")));
    assert!(!l.unread(&t("c")), "nothing was owed on c");
    assert_eq!(st.pending_work(), 1, "b's delete is still owed");
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Send(Command::Dele(2))]
    );
    assert_eq!(l.outstanding(), vec!["delete of b".to_owned()]);
}

/// A ledger of an IMAP maildrop, and where its read marks are registered.
fn imap_ledger() -> (crate::read_marks::MaildropReads, Ledger) {
    let key = crate::account::MaildropKey::for_test("alice");
    let reads = crate::read_marks::ReadMarks::default().of(&key);
    (reads.clone(), imap_ledger_beside(&reads))
}

/// Another ledger of the same maildrop.
fn imap_ledger_beside(reads: &crate::read_marks::MaildropReads) -> Ledger {
    let key = crate::account::MaildropKey::for_test("alice");
    let commits = crate::commits::Commits::default().of(&key);
    Ledger::watching(commits, reads.clone(), true)
}

#[test]
fn a_read_mark_taken_back_in_another_session_is_dropped_wherever_its_item_went() {
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let (reads, mut older) = imap_ledger();
    let mut other = imap_ledger_beside(&reads);
    older.new_session(listing(&["a", "b", "c"]));
    older.owe(t("a"), Owed::Read, None, ticket);
    older.owe(t("b"), Owed::Read, None, ticket);
    older.owe(t("c"), Owed::Read, None, ticket);
    older.owe(t("c"), Owed::Delete, None, ticket);
    // "a" is sent in the older session's server session; "b" is handed to
    // another worker, which has not sent it.
    let first = older.next_step().expect("owed");
    assert_eq!(first.action, Action::Send(Command::Retr(1)));
    older.done(&first.target, first.owed);
    let (b, rest): (Vec<_>, Vec<_>) =
        (older.hand_over().into_iter()).partition(|h| h.target == t("b"));
    older.adopt_back(rest);
    other.adopt(b);
    assert!(older.taken_back().is_empty(), "nothing taken back yet");
    // The user marks a, b and c unread in a later session.
    for m in ["a", "b", "c"] {
        reads.take_back(&t(m));
    }
    let back = other.taken_back();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].target.clone(), back[0].sent), (t("b"), None));
    assert!(other.is_empty());
    // adopt_back made everything unsent again: none counts as sent.
    let back: Vec<_> = older.taken_back().into_iter().map(|b| b.target).collect();
    assert_eq!(back, vec![t("a"), t("c")]);
    assert_eq!(older.outstanding(), vec!["delete of c".to_owned()]);
    assert_eq!(st.pending_work(), 1, "c's delete is still owed");
    // A mark owed after the unread is a new read: not taken back.
    older.owe(t("a"), Owed::Read, None, ticket);
    assert!(older.taken_back().is_empty());
}

#[test]
fn a_read_mark_taken_back_after_its_retr_was_sent_names_its_number() {
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let (reads, mut l) = imap_ledger();
    l.new_session(listing(&["a", "b"]));
    l.owe(t("b"), Owed::Read, None, ticket);
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Send(Command::Retr(2))]
    );
    reads.take_back(&t("b"));
    let back = l.taken_back();
    assert_eq!((back[0].target.clone(), back[0].sent), (t("b"), Some(2)));
    assert!(l.committed().is_empty(), "nothing left to commit");
}

#[test]
fn work_whose_quit_was_sent_before_a_crash_is_one_batch_in_doubt() {
    // Seed 693863997: the edge sent QUIT for deletes of a and b (b listed
    // last), the server committed them, and the edge crashed before the
    // answer. An exact copy of b came meanwhile. Replayed with the
    // journal's record of that QUIT, a gone says the batch was committed:
    // the copy is left alone, and both entries leave the journal at once.
    let st = EdgeState::new();
    let ticket = || st.work_ticket(crate::state::test_now());
    let disk = crate::journal::SimDisk::new();
    let group =
        crate::journal::tests::journal(&disk, 1, &st).group("s1", &crate::journal::tests::spec());
    let replayed = |in_doubt: bool| {
        let mut l = Ledger::default();
        for (seq, u) in ["a", "b"].into_iter().enumerate() {
            let entry = Some(Entry::new(&group, seq as u64));
            l.owe(t(u), Owed::Delete, entry, ticket);
        }
        if in_doubt {
            l.quit_sent_before_crash(&[(t("a"), Owed::Delete), (t("b"), Owed::Delete)]);
        }
        l
    };
    let mut l = replayed(true);
    l.new_session(listing(&["c", "b"]));
    assert_eq!(bring_up_to_date(&mut l), vec![Action::Gone, Action::Gone]);
    let settled = l.take_settled();
    assert_eq!((settled.done.len(), settled.not_done.len()), (2, 0));
    assert!(l.take_settled().done.is_empty(), "settled once");
    // Without the record, the copy is taken for b.
    let mut l = replayed(false);
    l.new_session(listing(&["c", "b"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![Action::Gone, Action::Send(Command::Dele(2))]
    );
    // Nothing gone: the QUIT was not committed, and all is owed as before.
    let mut l = replayed(true);
    l.new_session(listing(&["a", "b", "c"]));
    assert_eq!(
        bring_up_to_date(&mut l),
        vec![
            Action::Send(Command::Dele(1)),
            Action::Send(Command::Dele(2))
        ]
    );
    let settled = l.take_settled();
    assert_eq!((settled.done.len(), settled.not_done.len()), (0, 2));
    // Before QUIT, the entries of what was sent, for the journal.
    assert_eq!(l.sent_entries().len(), 2);
}
