//! The simulation catches real bugs: each deliberately broken edge
//! (`causeway-edge`'s `broken-variants` feature) fails on the seed that first
//! caught it in a sweep, on the invariant that guards against it, while the
//! real edge passes the same seed.
//!
//! Runs only with the feature: `cargo test -p causeway-sim --features
//! broken-variants --test broken` (the shipped edge has no such code).
#![cfg(feature = "broken-variants")]

use causeway_edge::broken::Broken;
use causeway_sim::{Focus, RunOptions, Variant, run_seed};

fn check(seed: u64, focus: Option<Focus>, broken: Broken, invariant: u8) {
    let bad = run_seed(
        seed,
        &RunOptions {
            variant: Variant::BrokenEdge(broken),
            focus,
            ..RunOptions::default()
        },
    );
    assert!(
        bad.violations.iter().any(|v| v.invariant == invariant),
        "{broken} on seed {seed} should break invariant {invariant}:\n{}",
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
        "the real edge fails seed {seed}:\n{}",
        good.report()
    );
}

#[test]
fn marking_read_before_delivery_is_caught() {
    check(17, Some(Focus::Line), Broken::MarkReadBeforeDelivered, 3);
}

#[test]
fn no_quit_after_a_cut_is_caught() {
    check(0, None, Broken::NoQuitAfterCut, 5);
}

#[test]
fn stale_message_numbers_are_caught() {
    check(68, None, Broken::StaleMessageNumbers, 1);
}

#[test]
fn dropping_an_acknowledged_delete_is_caught() {
    check(0, None, Broken::DropAckedDeleteOnCut, 4);
}
