//! A selected folder as this server session numbers it.
//!
//! IMAP names a message two ways: its UID (stable while the folder's
//! UIDVALIDITY stays the same) and its sequence number (its place in this
//! session's view, which every `EXPUNGE` shifts). The edge keys everything
//! it keeps by UID, but the server reports changes by sequence number
//! (`* 3 EXPUNGE`, `* 5 FETCH (FLAGS ...)`), so this map follows every
//! untagged response exactly, in order, and answers "which UID was that?".
//!
//! Sans-IO: [`Folder::apply`] takes response data and changes nothing but
//! the map. Hostile numbers are errors, never allocations: a folder is
//! capped at [`MAX_MESSAGES`] before any slot is made.

use std::num::NonZeroU32;

use imap_types::fetch::MessageDataItem;
use imap_types::flag::{Flag, FlagFetch};
use imap_types::response::{Code, Data};

/// Messages in one folder at most (a server announcing more is refused
/// rather than given memory for it).
pub const MAX_MESSAGES: u32 = 1_000_000;

/// A message whose UID and size this session has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub uid: NonZeroU32,
    pub size: u32,
    pub seen: bool,
    pub deleted: bool,
    /// `\Answered`, `\Flagged`, `\Draft`, in that order.
    pub marks: [bool; 3],
}

/// What the session knows of the message at one sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    uid: Option<NonZeroU32>,
    size: Option<u32>,
    seen: bool,
    deleted: bool,
    marks: [bool; 3],
}

/// The server broke the folder's numbering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FolderError {
    #[error(
        "the server announced {0} messages in one folder, more than the {MAX_MESSAGES} allowed"
    )]
    TooMany(u32),
    #[error("the server said EXISTS {now} after {before} without an EXPUNGE between")]
    Shrank { before: u32, now: u32 },
    #[error("the server named message {seq} of a folder of {exists}")]
    OutOfRange { seq: u32, exists: u32 },
    #[error("the server gave message {seq} UID {now}, after UID {before}")]
    UidChanged {
        seq: u32,
        before: NonZeroU32,
        now: NonZeroU32,
    },
}

/// A selected folder: its UIDVALIDITY and the message behind each sequence
/// number.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    pub uidvalidity: Option<NonZeroU32>,
    pub uidnext: Option<NonZeroU32>,
    /// By sequence number minus one.
    slots: Vec<Slot>,
}

impl Folder {
    /// Takes one untagged response. Data of other kinds (capabilities,
    /// folder lists) changes nothing here.
    pub fn apply(&mut self, data: &Data<'_>) -> Result<(), FolderError> {
        match data {
            Data::Exists(n) => self.exists_now(*n),
            Data::Expunge(seq) => {
                let i = self.index(seq.get())?;
                self.slots.remove(i);
                Ok(())
            }
            Data::Fetch { seq, items } => {
                let i = self.index(seq.get())?;
                let slot = &mut self.slots[i];
                for item in items.as_ref() {
                    match item {
                        MessageDataItem::Uid(uid) => match slot.uid {
                            Some(before) if before != *uid => {
                                return Err(FolderError::UidChanged {
                                    seq: seq.get(),
                                    before,
                                    now: *uid,
                                });
                            }
                            _ => slot.uid = Some(*uid),
                        },
                        MessageDataItem::Rfc822Size(size) => slot.size = Some(*size),
                        MessageDataItem::Flags(flags) => {
                            slot.seen = flags.contains(&FlagFetch::Flag(Flag::Seen));
                            slot.deleted = flags.contains(&FlagFetch::Flag(Flag::Deleted));
                            let has = |f: Flag<'static>| flags.contains(&FlagFetch::Flag(f));
                            slot.marks =
                                [has(Flag::Answered), has(Flag::Flagged), has(Flag::Draft)];
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Takes a status response's code (`UIDVALIDITY`, `UIDNEXT`).
    pub fn apply_code(&mut self, code: &Code<'_>) {
        match code {
            Code::UidValidity(v) => self.uidvalidity = Some(*v),
            Code::UidNext(n) => self.uidnext = Some(*n),
            _ => {}
        }
    }

    fn exists_now(&mut self, n: u32) -> Result<(), FolderError> {
        if n > MAX_MESSAGES {
            return Err(FolderError::TooMany(n));
        }
        let before = self.exists();
        if n < before {
            return Err(FolderError::Shrank { before, now: n });
        }
        self.slots.resize(n as usize, Slot::default());
        Ok(())
    }

    fn index(&self, seq: u32) -> Result<usize, FolderError> {
        if seq == 0 || seq > self.exists() {
            return Err(FolderError::OutOfRange {
                seq,
                exists: self.exists(),
            });
        }
        Ok(seq as usize - 1)
    }

    /// Messages in the folder, as the server last said.
    pub fn exists(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The sequence number of `uid`, if this session has seen it.
    pub fn seq_of(&self, uid: NonZeroU32) -> Option<NonZeroU32> {
        let i = self.slots.iter().position(|s| s.uid == Some(uid))?;
        NonZeroU32::new(i as u32 + 1)
    }

    /// The UID behind sequence number `seq`, if this session knows it.
    pub fn uid_at(&self, seq: NonZeroU32) -> Option<NonZeroU32> {
        self.slots.get(seq.get() as usize - 1)?.uid
    }

    /// The messages whose UID and size are known, in sequence order.
    pub fn listed(&self) -> impl Iterator<Item = Listed> + '_ {
        self.slots.iter().filter_map(|s| {
            Some(Listed {
                uid: s.uid?,
                size: s.size?,
                seen: s.seen,
                deleted: s.deleted,
                marks: s.marks,
            })
        })
    }

    /// Messages announced (`EXISTS`) whose UID or size is not known yet.
    pub fn unlisted(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.uid.is_none() || s.size.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use imap_types::core::Vec1;
    use proptest::prelude::*;

    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn fetch(seq: u32, uid: u32, size: u32) -> Data<'static> {
        Data::Fetch {
            seq: nz(seq),
            items: Vec1::try_from(vec![
                MessageDataItem::Uid(nz(uid)),
                MessageDataItem::Rfc822Size(size),
                MessageDataItem::Flags(vec![]),
            ])
            .unwrap(),
        }
    }

    fn listed(n: u32) -> Folder {
        let mut f = Folder::default();
        f.apply(&Data::Exists(n)).unwrap();
        for s in 1..=n {
            f.apply(&fetch(s, s * 10, 100 + s)).unwrap();
        }
        f
    }

    #[test]
    fn expunges_shift_the_numbers_after_them() {
        let mut f = listed(5);
        f.apply(&Data::Expunge(nz(2))).unwrap(); // UID 20
        f.apply(&Data::Expunge(nz(2))).unwrap(); // UID 30, now second
        let uids: Vec<u32> = f.listed().map(|m| m.uid.get()).collect();
        assert_eq!(uids, [10, 40, 50]);
        assert_eq!(f.seq_of(nz(40)), Some(nz(2)));
        assert_eq!(f.uid_at(nz(3)), Some(nz(50)));
        // New mail: announced first, listed once fetched.
        f.apply(&Data::Exists(4)).unwrap();
        assert_eq!(f.unlisted(), 1);
        f.apply(&fetch(4, 60, 9)).unwrap();
        assert_eq!(f.unlisted(), 0);
    }

    #[test]
    fn flags_follow_unsolicited_fetches() {
        let mut f = listed(2);
        let flags = Data::Fetch {
            seq: nz(2),
            items: Vec1::from(MessageDataItem::Flags(vec![
                FlagFetch::Flag(Flag::Seen),
                FlagFetch::Flag(Flag::Deleted),
            ])),
        };
        f.apply(&flags).unwrap();
        let m: Vec<Listed> = f.listed().collect();
        assert!(!m[0].seen && m[1].seen && m[1].deleted);
    }

    #[test]
    fn hostile_numbers_are_errors_not_allocations() {
        let mut f = listed(3);
        assert_eq!(
            f.apply(&Data::Exists(u32::MAX)),
            Err(FolderError::TooMany(u32::MAX))
        );
        assert!(matches!(
            f.apply(&Data::Expunge(nz(4))),
            Err(FolderError::OutOfRange { seq: 4, exists: 3 })
        ));
        assert!(matches!(
            f.apply(&Data::Exists(2)),
            Err(FolderError::Shrank { .. })
        ));
        assert!(matches!(
            f.apply(&fetch(1, 11, 1)),
            Err(FolderError::UidChanged { .. })
        ));
        assert_eq!(f.exists(), 3);
    }

    proptest! {
        /// Any order of expunges leaves exactly the other UIDs, in order,
        /// each at the sequence number the server would give it.
        #[test]
        fn the_map_matches_a_model_after_any_expunges(
            n in 1u32..40,
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let mut f = listed(n);
            let mut model: Vec<u32> = (1..=n).map(|s| s * 10).collect();
            for p in picks {
                if model.is_empty() {
                    break;
                }
                let i = p.index(model.len());
                model.remove(i);
                f.apply(&Data::Expunge(nz(i as u32 + 1))).unwrap();
            }
            let uids: Vec<u32> = f.listed().map(|m| m.uid.get()).collect();
            prop_assert_eq!(&uids, &model);
            for (i, u) in model.iter().enumerate() {
                prop_assert_eq!(f.seq_of(nz(*u)), Some(nz(i as u32 + 1)));
            }
        }
    }

    #[test]
    fn a_fetch_of_flags_sets_the_marks_it_names_and_clears_the_others() {
        let mut f = listed(1);
        let flags = |fs: Vec<Flag<'static>>| Data::Fetch {
            seq: nz(1),
            items: Vec1::from(MessageDataItem::Flags(
                fs.into_iter().map(FlagFetch::Flag).collect(),
            )),
        };
        f.apply(&flags(vec![Flag::Flagged, Flag::Seen, Flag::Draft]))
            .unwrap();
        let m = f.listed().next().unwrap();
        assert!(m.seen && !m.deleted);
        assert_eq!(m.marks, [false, true, true]);
        f.apply(&flags(vec![Flag::Answered])).unwrap();
        let m = f.listed().next().unwrap();
        assert!(!m.seen);
        assert_eq!(m.marks, [true, false, false]);
    }
}
