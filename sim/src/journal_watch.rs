//! Invariant 4's journal half, judged as the run goes: the edge's journal
//! on its simulated disk must never hold owed work that the next start
//! could not replay. Checked after every commit, from the keys alone (no
//! key needed, nothing decrypted), because the instant a crash would
//! expose such a state comes too seldom for a sweep to crash the edge at
//! it.

use std::collections::BTreeMap;

use crate::coverage::Cov;
use crate::oracle::{Verdict, Violation};
use crate::world::World;

/// Invariant 4, as the run goes: after each commit to the edge's journal,
/// every owed entry on disk has its group's header beside it. An entry
/// without one is erased as orphaned at the next start, so a crash at that
/// instant would drop acknowledged work; the sweep crashes the edge too
/// seldom at exactly such an instant to see it the other way (the mutation
/// pass found the journal erasing a header early and no seed failing).
/// Reports the first instant only.
#[derive(Default)]
pub struct JournalWatch {
    commits: u64,
    /// Owed entries per group after the last commit.
    ops: BTreeMap<u64, usize>,
    failed: bool,
}

impl JournalWatch {
    pub fn after_step(&mut self, w: &mut World, v: &mut Verdict) {
        let commits = w.disk.counts().0;
        if commits == self.commits {
            return;
        }
        self.commits = commits;
        let keys = w.disk.durable_keys();
        let census = causeway_edge::journal::census(keys.iter().map(Vec::as_slice));
        let headless = census.headless();
        let ops = census.entries;
        if ops
            .iter()
            .any(|(g, n)| self.ops.get(g).is_some_and(|before| before > n))
        {
            w.coverage.insert(Cov::JournalPartErased);
        }
        self.ops = ops;
        if self.failed {
            return;
        }
        if let Some(first) = headless.first() {
            self.failed = true;
            v.violations.push(Violation {
                invariant: 4,
                key: None,
                message: format!(
                    "the edge journal holds owed entries without their header ({} groups, \
                     first {first:016x}): a crash now would drop that work",
                    headless.len()
                ),
            });
        }
    }
}
