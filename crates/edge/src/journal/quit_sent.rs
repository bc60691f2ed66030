//! Which work a server session's `QUIT` was sent for, kept across a crash.
//!
//! A POP3 server commits a session's deletes together at `QUIT`, or none
//! of them. When the answer to `QUIT` is lost, the ledger holds the work
//! the session sent as one batch in doubt, which the next listing judges
//! (`crate::ledger`): one of its deletes gone says all of it was
//! committed, and a message listed by the UIDL and size of another of its
//! deletes is a later copy, not to be deleted. Held only in memory, that
//! knowledge died with the edge: a crash between the `QUIT` and its answer
//! left the work in the journal item by item, and the restarted edge
//! deleted an exact copy that was listed last, with no witness after it
//! (seed 693863997).
//!
//! So before a POP3 server session that sent work is sent `QUIT`, the
//! worker records, for each journal group that work came from, the
//! sequence numbers of its entries: `q/<group>`, one record per group,
//! replaced by the next `QUIT`'s. On start, the entries a record names are
//! restored as one batch in doubt ([`super::Recorded::quit_sent`]). A
//! record goes with its group's header, and when a listing settled its
//! batch (`crate::ledger::Settled`), so none outlives the doubt it
//! describes; one left by a crash between those two names entries already
//! erased, which are not restored.
//!
//! The sequence numbers are kept as runs (a session's entries are numbered
//! one after another), so a record of thousands of items stays small.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use causeway_store::{Write, decode, encode};
use serde::{Deserialize, Serialize};

use super::{Entry, Group};

const VERSION: u8 = 1;

/// The key of a group's record.
pub(super) fn quit_key(group: u64) -> Vec<u8> {
    format!("q/{group:016x}").into_bytes()
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: u8,
    /// The entries' sequence numbers, as (first, how many) runs.
    runs: Vec<(u64, u64)>,
}

fn runs(seqs: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &s in seqs {
        match runs.last_mut() {
            Some((first, n)) if *first + *n == s => *n += 1,
            _ => runs.push((s, 1)),
        }
    }
    runs
}

/// The sequence numbers a record names, as sorted runs (`None`: it does
/// not decode). Never expanded: a damaged run allocates nothing.
pub(super) fn decode_quit_sent(plain: &[u8]) -> Option<QuitSent> {
    let r: Record = decode(plain).ok()?;
    if r.version != VERSION {
        return None;
    }
    let mut runs = r.runs;
    runs.sort_unstable();
    Some(QuitSent(runs))
}

/// What a record names ([`decode_quit_sent`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct QuitSent(Vec<(u64, u64)>);

impl QuitSent {
    pub(super) fn contains(&self, seq: u64) -> bool {
        let after = self.0.partition_point(|&(first, _)| first <= seq);
        after > 0 && seq - self.0[after - 1].0 < self.0[after - 1].1
    }
}

/// Groups `entries` by their group.
fn by_group(entries: &[Entry]) -> BTreeMap<u64, (Group, BTreeSet<u64>)> {
    let mut groups: BTreeMap<u64, (Group, BTreeSet<u64>)> = BTreeMap::new();
    for e in entries {
        (groups.entry(e.group.id()))
            .or_insert_with(|| (e.group.clone(), BTreeSet::new()))
            .1
            .insert(e.seq);
    }
    groups
}

/// Records, before a `QUIT` is sent, that it is sent for `entries` (the
/// work the server session sent). A group whose entries were all erased
/// meanwhile gets no record: its header is gone, and nothing is owed.
pub(crate) async fn record(entries: &[Entry]) -> io::Result<()> {
    for (_, (group, seqs)) in by_group(entries) {
        let g = &group.inner;
        let live = g.live.lock().await;
        let seqs: BTreeSet<u64> = (seqs.into_iter())
            .filter(|s| live.entries.contains_key(s))
            .collect();
        if seqs.is_empty() || !live.header_durable {
            continue;
        }
        let key = quit_key(g.id);
        let record = Record {
            version: VERSION,
            runs: runs(&seqs),
        };
        let value = g.journal.seal(&key, &encode(&record));
        (g.journal)
            .commit_timed(vec![Write::Put { key, value }])
            .await?;
    }
    Ok(())
}

/// Erases the records of the groups of `entries`: the batch they name is
/// settled.
pub(crate) async fn forget(entries: &[Entry]) -> io::Result<()> {
    for (_, (group, _)) in by_group(entries) {
        let g = &group.inner;
        let _live = g.live.lock().await;
        let key = quit_key(g.id);
        (g.journal)
            .commit_timed(vec![Write::Delete { key }])
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_kept_as_runs_and_read_back() {
        let seqs: BTreeSet<u64> = [0, 1, 2, 3, 7, 9, 10].into_iter().collect();
        assert_eq!(runs(&seqs), vec![(0, 4), (7, 1), (9, 2)]);
        let plain = encode(&Record {
            version: VERSION,
            runs: runs(&seqs),
        });
        let read = decode_quit_sent(&plain).expect("decodes");
        for s in 0..20 {
            assert_eq!(read.contains(s), seqs.contains(&s), "{s}");
        }
    }

    #[test]
    fn a_damaged_record_allocates_nothing_and_names_what_it_says() {
        let plain = encode(&Record {
            version: VERSION,
            runs: vec![(u64::MAX, u64::MAX), (5, u64::MAX)],
        });
        let read = decode_quit_sent(&plain).expect("decodes");
        assert!(!read.contains(4) && read.contains(5) && read.contains(u64::MAX));
        let other = encode(&Record {
            version: 2,
            runs: vec![(0, 1)],
        });
        assert_eq!(decode_quit_sent(&other), None, "another version");
        assert_eq!(decode_quit_sent(b"junk that is no record"), None);
    }
}
