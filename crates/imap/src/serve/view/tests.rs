use std::num::NonZeroU32;

use imap_types::flag::{Flag, StoreType};
use imap_types::search::SearchKey;
use imap_types::sequence::SequenceSet;
use proptest::prelude::*;

use super::*;

fn set(s: &str) -> SequenceSet {
    SequenceSet::try_from(s).unwrap()
}

fn view(n: u32) -> View<u32> {
    View::numbered(
        NonZeroU32::new(7).unwrap(),
        (1..=n).map(|k| (k, u64::from(k) * 100)),
    )
}

#[test]
fn numbers_and_uids_resolve_with_star_and_reversed_ranges() {
    let v = view(5);
    assert_eq!(v.resolve(&set("2:3"), false), vec![1, 2]);
    assert_eq!(v.resolve(&set("4:*"), false), vec![3, 4]);
    assert_eq!(v.resolve(&set("*:4"), false), vec![3, 4]);
    assert_eq!(v.resolve(&set("1,5"), true), vec![0, 4]);
    assert_eq!(v.resolve(&set("9"), false), Vec::<usize>::new());
    assert_eq!(v.uid_next().get(), 6);
    assert!(view(0).resolve(&set("1:*"), true).is_empty());
}

#[test]
fn a_huge_range_costs_no_more_than_the_folder() {
    let v = view(3);
    assert_eq!(v.resolve(&set("1:4294967295"), true), vec![0, 1, 2]);
}

#[test]
fn uids_outlive_expunges_and_numbers_close_up() {
    let mut v = view(5);
    // Expunging 2 and 4: the second is reported as 3, since 2 went first.
    let reported: Vec<u32> = v.expunge(&[1, 3]).iter().map(|n| n.get()).collect();
    assert_eq!(reported, vec![2, 3]);
    assert_eq!(v.exists(), 3);
    assert_eq!(v.resolve(&set("2"), false), vec![1]);
    assert_eq!(v.get(1).uid.get(), 3);
    assert!(v.resolve(&set("2"), true).is_empty());
    assert_eq!(v.uid_next().get(), 6, "UIDNEXT never goes back");
}

#[test]
fn kept_uids_are_put_in_uid_order_with_their_flags() {
    let nz = |n| NonZeroU32::new(n).unwrap();
    let flagged = Flags {
        flagged: true,
        ..Flags::default()
    };
    let message = |key, uid, flags| Message {
        key,
        uid: nz(uid),
        size: 10,
        flags,
        arrived: 0,
    };
    // Listed in the POP3 order 1, 2, 3; numbered earlier 9, 4, 12.
    let v = View::with_uids(
        (nz(3), nz(13)),
        Keywords::default(),
        vec![
            message(1, 9, flagged),
            message(2, 4, Flags::default()),
            message(3, 12, Flags::default()),
        ],
    );
    let keys: Vec<u32> = (0..3).map(|i| v.get(i).key).collect();
    assert_eq!(keys, vec![2, 1, 3]);
    assert_eq!(v.resolve(&set("9:*"), true), vec![1, 2]);
    assert_eq!(v.uid_next().get(), 13);
    assert!(v.get(1).flags.flagged);
}

#[test]
fn internal_dates_and_the_date_searches() {
    // 2026-12-02 21:33:59 UTC, and the day before.
    let (now, yesterday) = (1_796_247_239u64, 1_796_247_239u64 - 86_400);
    let d = internal_date(now);
    assert_eq!(d.as_ref().to_rfc3339(), "2026-12-02T21:33:59+00:00");
    assert_eq!(
        internal_date(u64::MAX).as_ref().to_rfc3339(),
        "9999-12-31T23:59:59+00:00"
    );
    let mut v = view(2);
    v.get_mut(0).arrived = yesterday;
    v.get_mut(1).arrived = now;
    let day = |s: &str| {
        imap_types::datetime::NaiveDate::try_from(
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap(),
        )
        .unwrap()
    };
    let search = |k| v.search(&[k], &|_, _| None).unwrap();
    assert_eq!(search(SearchKey::Since(day("2026-12-02"))), vec![1]);
    assert_eq!(search(SearchKey::Before(day("2026-12-02"))), vec![0]);
    assert_eq!(search(SearchKey::On(day("2026-12-01"))), vec![0]);
}

proptest! {
    #[test]
    fn flags_survive_their_byte(bits in 0u8..32) {
        prop_assert_eq!(Flags::from_bits(bits, 7).bits(), bits);
    }
}

#[test]
fn store_adds_removes_and_replaces_flags_and_keywords() {
    let mut table = Keywords::default();
    let x = Flag::Keyword("x".try_into().unwrap());
    let y = Flag::Keyword("$Junk".try_into().unwrap());
    let added = [Flag::Seen, Flag::Deleted, x.clone(), y.clone()];
    table.admit(&added).unwrap();
    let mut f = Flags::default();
    f.store(StoreType::Add, &added, table.mask(&added));
    assert!(f.seen && f.deleted && !f.flagged);
    assert_eq!(f.keywords, 0b11);
    f.store(
        StoreType::Remove,
        &[Flag::Seen, x.clone()],
        table.mask(&[x]),
    );
    assert!(!f.seen && f.deleted);
    assert_eq!(
        f.fetched(&table),
        vec![FlagFetch::Flag(Flag::Deleted), FlagFetch::Flag(y)]
    );
    f.store(StoreType::Replace, &[Flag::Flagged], 0);
    assert_eq!(
        f,
        Flags {
            flagged: true,
            ..Flags::default()
        }
    );
    assert_eq!(f.fetched(&table), vec![FlagFetch::Flag(Flag::Flagged)]);
}

#[test]
fn search_on_keywords() {
    let mut v = view(3);
    let junk = [Flag::Keyword("$Junk".try_into().unwrap())];
    v.keywords.admit(&junk).unwrap();
    v.get_mut(1).flags.keywords = v.keywords.mask(&junk);
    let search = |k| v.search(&[k], &|_, _| None).unwrap();
    assert_eq!(
        search(SearchKey::Keyword("$junk".try_into().unwrap())),
        vec![1]
    );
    assert_eq!(
        search(SearchKey::Unkeyword("$Junk".try_into().unwrap())),
        vec![0, 2]
    );
    assert_eq!(
        search(SearchKey::Keyword("other".try_into().unwrap())),
        Vec::<usize>::new()
    );
    assert_eq!(
        search(SearchKey::Unkeyword("other".try_into().unwrap())),
        vec![0, 1, 2]
    );
}

#[test]
fn search_on_flags_sizes_and_numbers() {
    let mut v = view(4);
    v.get_mut(0).flags.seen = true;
    v.get_mut(2).flags.deleted = true;
    let search = |keys: &[SearchKey<'_>]| v.search(keys, &|_, _| None);
    assert_eq!(search(&[SearchKey::Unseen]).unwrap(), vec![1, 2, 3]);
    assert_eq!(
        search(&[SearchKey::Unseen, SearchKey::Undeleted]).unwrap(),
        vec![1, 3]
    );
    assert_eq!(search(&[SearchKey::Larger(250)]).unwrap(), vec![2, 3]);
    assert_eq!(
        search(&[SearchKey::Or(
            Box::new(SearchKey::Seen),
            Box::new(SearchKey::Deleted)
        )])
        .unwrap(),
        vec![0, 2]
    );
    assert_eq!(
        search(&[SearchKey::Not(Box::new(SearchKey::Uid(set("2:*"))))]).unwrap(),
        vec![0]
    );
    let subject = || SearchKey::Subject("x".try_into().unwrap());
    assert!(search(&[subject()]).is_err());
    // A text criterion is asked of the caller, and combines as any other.
    let text = |m: &Message<u32>, k: &SearchKey<'_>| {
        matches!(k, SearchKey::Subject(_)).then_some(m.key % 2 == 1)
    };
    let not = SearchKey::Not(Box::new(subject()));
    assert_eq!(v.search(&[subject()], &text).unwrap(), vec![0, 2]);
    assert_eq!(
        v.search(&[not, SearchKey::Unseen], &text).unwrap(),
        vec![1, 3]
    );
    assert_eq!(v.first_unseen().map(|n| n.get()), Some(2));
    assert_eq!(v.unseen(), 3);
}

proptest! {
    /// After any expunges, every message keeps its UID, sequence numbers
    /// are 1..=n in UID order, and the reported numbers replayed one by one
    /// on a model give the same folder.
    #[test]
    fn expunge_matches_a_model(n in 0u32..40, picks in proptest::collection::vec(any::<bool>(), 40)) {
        let mut v = view(n);
        let mut model: Vec<u32> = (1..=n).collect();
        let doomed: Vec<usize> = (0..n as usize).filter(|&i| picks[i]).collect();
        for seq in v.expunge(&doomed) {
            model.remove(seq.get() as usize - 1);
        }
        let uids: Vec<u32> = (0..v.exists() as usize).map(|i| v.get(i).uid.get()).collect();
        prop_assert_eq!(&uids, &model);
        let kept: Vec<u32> = (1..=n).filter(|k| !picks[*k as usize - 1]).collect();
        prop_assert_eq!(uids, kept);
    }
}

#[test]
fn mail_that_arrives_later_takes_uids_above_uidnext_only() {
    let mut v = view(3);
    let m = |uid: u32| Message {
        key: 0,
        uid: NonZeroU32::new(uid).unwrap(),
        size: 1,
        flags: Flags::default(),
        arrived: 0,
    };
    // A UID below UIDNEXT (one the client may have seen UIDNEXT pass) is
    // refused; one at or above it is added last and moves UIDNEXT on.
    assert!(v.arrived(m(2)).is_none());
    v.raise_uid_next(NonZeroU32::new(6).unwrap());
    assert!(v.arrived(m(5)).is_none());
    assert!(v.arrived(m(9)).is_some());
    assert_eq!((v.exists(), v.uid_next().get()), (4, 10));
    assert_eq!(v.resolve(&set("*"), true), vec![3]);
    v.raise_uid_next(NonZeroU32::new(2).unwrap());
    assert_eq!(v.uid_next().get(), 10);
}
