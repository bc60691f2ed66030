//! The simulation catches real bugs: each deliberately broken node (the
//! `broken-variants` feature of `causeway-edge`, `causeway-client` and
//! `causeway-relay`) fails on a pinned seed, on the invariant that guards
//! against it, while the real system passes the same seed.
//!
//! The seeds are the first a 500-seed sweep found
//! (`cargo run --release -p causeway-sim --features broken-variants --
//! --seeds 500 --broken NAME`); a change to the swarm or workload that moves
//! them is re-pinned the same way. A variant the simulation no longer
//! catches at all within 500 seeds is a blind spot: strengthen the
//! simulation, do not drop the variant.
//!
//! Runs only with the feature: `cargo test -p causeway-sim --features
//! broken-variants --test broken` (the shipped nodes have no such code).
#![cfg(feature = "broken-variants")]

use std::sync::Mutex;

use causeway_sim::swarm::Focus;
use causeway_sim::world::Broken;
use causeway_sim::{RunOptions, Variant, run_seed};

/// (variant, seed, the invariant it must break there, the focus of its
/// sweep: the standard one unless named)
const PINNED: &[(&str, u64, u8, Option<Focus>)] = &[
    ("mark-read-before-delivered", 22, 3, None),
    ("no-quit-after-cut", 1, 5, None),
    ("stale-message-numbers", 175, 3, None),
    ("drop-acked-delete-on-cut", 103, 6, None),
    ("forget-owed-on-session-loss", 1, 6, None),
    ("drop-owed-while-disconnected", 5, 6, None),
    ("keep-deletes-after-rset", 4, 1, None),
    ("no-journal-entry", 116, 4, None),
    ("erase-owed-when-locked", 41, 4, None),
    ("read-mark-before-write", 446, 3, None),
    ("break-after-delivery", 0, 8, None),
    ("relay-commits-on-link-loss", 177, 1, None),
    ("mark-prefetched-read", 2, 3, None),
    ("dele-not-journaled", 17, 4, None),
    ("carried-undone-by-rset", 249, 6, None),
    ("unprimed-resume", 25, 9, None),
    ("imap-uids-by-listing", 6, 2, None),
    ("imap-seen-unowed", 228, 4, None),
    ("imap-pipelined-proves-read", 173, 3, None),
    ("journal-header-erased-early", 8, 4, Some(Focus::Twins)),
    ("carried-taken-twice", 46, 1, Some(Focus::Twins)),
    ("append-again-on-resume", 5816, 10, None),
    ("imap-append-uid-unkept", 98, 2, None),
    ("imap-flags-unsent", 225, 11, None),
    ("pending-deletes-shown", 1242, 12, None),
    ("imap-taken-in-forgotten", 437, 2, Some(Focus::ProxyAndMua)),
    ("imap-server-flags-ignored", 27, 13, None),
    ("unread-keeps-owed-read", 575, 14, None),
    ("unread-spares-other-sessions", 233922264, 14, None),
    ("handover-reported-committed", 233925731, 4, None),
    ("imap-search-unasked", 225, 15, None),
    ("search-reads-headers", 159, 15, None),
];

/// One simulation at a time in this process: tokio's task counter is
/// process-wide and a crash's aftermath depends on it
/// (`run::align_task_ids`), so runs on parallel test threads would not
/// replay their seeds (CI once saw two pinned seeds pass this way).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn check(name: &str) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let &(_, seed, invariant, focus) = PINNED
        .iter()
        .find(|(n, _, _, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} has no pinned seed"));
    let broken = Broken::parse(name).expect("a known variant");
    let bad = run_seed(
        seed,
        &RunOptions {
            variant: Variant::Broken(broken),
            focus,
            ..RunOptions::default()
        },
    );
    assert!(
        bad.violations.iter().any(|v| v.invariant == invariant),
        "{name} on seed {seed} should break invariant {invariant}:\n{}",
        bad.report()
    );
    let good = run_seed(
        seed,
        &RunOptions {
            focus,
            ..RunOptions::default()
        },
    );
    assert!(
        !good.failed(),
        "the real system fails seed {seed}:\n{}",
        good.report()
    );
}

#[test]
fn every_variant_has_a_pinned_seed() {
    let pinned: Vec<&str> = PINNED.iter().map(|(n, _, _, _)| *n).collect();
    for b in Broken::all() {
        assert!(
            pinned.contains(&b.name()),
            "{} has no pinned seed",
            b.name()
        );
    }
    assert_eq!(pinned.len(), Broken::all().len());
}

macro_rules! caught {
    ($($test:ident: $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*
    };
}

caught! {
    marking_read_before_delivery: "mark-read-before-delivered",
    no_quit_after_a_cut: "no-quit-after-cut",
    stale_message_numbers: "stale-message-numbers",
    dropping_an_acknowledged_delete_on_a_cut: "drop-acked-delete-on-cut",
    forgetting_owed_work_when_the_server_session_drops: "forget-owed-on-session-loss",
    dropping_owed_work_while_disconnected: "drop-owed-while-disconnected",
    keeping_deletes_after_rset: "keep-deletes-after-rset",
    acknowledging_without_a_journal_entry: "no-journal-entry",
    erasing_owed_work_when_locked: "erase-owed-when-locked",
    a_proxy_that_confirms_before_writing: "read-mark-before-write",
    a_proxy_that_ends_its_session_after_each_delivery: "break-after-delivery",
    a_relay_that_commits_on_link_loss: "relay-commits-on-link-loss",
    marking_a_prefetched_body_read: "mark-prefetched-read",
    a_proxy_that_acknowledges_dele_without_its_journal: "dele-not-journaled",
    an_edge_whose_rset_undoes_carried_deletes: "carried-undone-by-rset",
    a_proxy_that_ignores_a_primed_resume: "unprimed-resume",
    a_proxy_that_numbers_imap_uids_by_the_listing: "imap-uids-by-listing",
    a_proxy_that_answers_a_stored_seen_before_the_edge_owes_it: "imap-seen-unowed",
    a_proxy_that_takes_a_pipelined_command_for_proof_of_delivery: "imap-pipelined-proves-read",
    an_edge_journal_that_erases_a_header_early: "journal-header-erased-early",
    an_edge_that_takes_a_carried_delete_it_took_before_again: "carried-taken-twice",
    an_edge_that_stores_an_append_asked_again_twice: "append-again-on-resume",
    a_proxy_that_answers_appenduid_without_keeping_the_uid: "imap-append-uid-unkept",
    a_proxy_that_answers_a_stored_flag_without_sending_it_on: "imap-flags-unsent",
    a_proxy_that_shows_a_message_whose_delete_it_holds: "pending-deletes-shown",
    a_proxy_whose_listing_forgets_what_was_taken_in_after_it: "imap-taken-in-forgotten",
    a_proxy_that_ignores_the_flags_its_servers_list: "imap-server-flags-ignored",
    an_edge_that_keeps_a_read_mark_the_user_took_back: "unread-keeps-owed-read",
    an_edge_whose_unread_spares_an_earlier_sessions_read_mark: "unread-spares-other-sessions",
    an_edge_that_reports_handed_over_work_committed: "handover-reported-committed",
    a_proxy_that_answers_a_text_search_without_asking_the_servers: "imap-search-unasked",
    an_edge_that_searches_a_pop3_servers_mail_by_its_headers: "search-reads-headers",
}
