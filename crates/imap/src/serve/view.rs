//! One folder as an IMAP server shows it to a client: sequence numbers,
//! UIDs, sizes and the flags of this session, kept in step with expunges.
//!
//! Sans-IO and hostile-input safe: a sequence set from the client is never
//! expanded (`1:4294967295` is one range, not four billion numbers); each
//! message is tested against it, so the work is bounded by the folder.

use std::num::NonZeroU32;

use imap_types::datetime::DateTime;
use imap_types::flag::{Flag, FlagFetch, StoreType};
use imap_types::search::SearchKey;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::keywords::Keywords;

/// The flags a session keeps for each message: the system flags, and its
/// keywords as bits into the folder's [`Keywords`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub seen: bool,
    pub deleted: bool,
    pub flagged: bool,
    pub answered: bool,
    pub draft: bool,
    pub keywords: u32,
}

impl Flags {
    /// The system flags as one byte, for keeping them across sessions.
    pub fn bits(&self) -> u8 {
        [
            self.seen,
            self.deleted,
            self.flagged,
            self.answered,
            self.draft,
        ]
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &on)| acc | (u8::from(on) << i))
    }

    /// The system flags [`Flags::bits`] gave (unknown bits are ignored),
    /// with `keywords`.
    pub fn from_bits(bits: u8, keywords: u32) -> Self {
        let on = |i: u8| bits & (1 << i) != 0;
        Flags {
            seen: on(0),
            deleted: on(1),
            flagged: on(2),
            answered: on(3),
            draft: on(4),
            keywords,
        }
    }

    /// The flags as a FETCH response lists them, keywords named by `table`.
    pub fn fetched(&self, table: &Keywords) -> Vec<FlagFetch<'static>> {
        let mut out = Vec::new();
        for (on, flag) in [
            (self.seen, Flag::Seen),
            (self.answered, Flag::Answered),
            (self.flagged, Flag::Flagged),
            (self.deleted, Flag::Deleted),
            (self.draft, Flag::Draft),
        ] {
            if on {
                out.push(FlagFetch::Flag(flag));
            }
        }
        out.extend(table.flags(self.keywords).map(FlagFetch::Flag));
        out
    }

    /// Applies a STORE: `flags` added, removed or put in place of the
    /// flags; `keywords` are the bits of its keywords in the folder's table
    /// ([`Keywords::mask`]).
    pub fn store(&mut self, kind: StoreType, flags: &[Flag<'_>], keywords: u32) {
        let mut given = Flags::default();
        for f in flags {
            match f {
                Flag::Seen => given.seen = true,
                Flag::Deleted => given.deleted = true,
                Flag::Flagged => given.flagged = true,
                Flag::Answered => given.answered = true,
                Flag::Draft => given.draft = true,
                _ => {}
            }
        }
        let pairs = [
            (&mut self.seen, given.seen),
            (&mut self.deleted, given.deleted),
            (&mut self.flagged, given.flagged),
            (&mut self.answered, given.answered),
            (&mut self.draft, given.draft),
        ];
        for (mine, g) in pairs {
            match kind {
                StoreType::Replace => *mine = g,
                StoreType::Add => *mine |= g,
                StoreType::Remove => *mine &= !g,
            }
        }
        match kind {
            StoreType::Replace => self.keywords = keywords,
            StoreType::Add => self.keywords |= keywords,
            StoreType::Remove => self.keywords &= !keywords,
        }
    }
}

/// One message of the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<K> {
    /// What the caller needs to reach the message (its number in a
    /// maildrop, a key in a store).
    pub key: K,
    pub uid: NonZeroU32,
    pub size: u64,
    pub flags: Flags,
    /// Its INTERNALDATE, in seconds since the Unix epoch (UTC): when the
    /// folder first held it.
    pub arrived: u64,
}

/// The last second IMAP's date form can name (9999-12-31 23:59:59 UTC).
const LAST_SECOND: u64 = 253_402_300_799;

fn utc(unix_secs: u64) -> chrono::DateTime<chrono::Utc> {
    let secs = i64::try_from(unix_secs.min(LAST_SECOND)).expect("in range");
    chrono::DateTime::from_timestamp(secs, 0).expect("in chrono's range")
}

/// An INTERNALDATE of `unix_secs` (UTC; the IMAP form has no finer unit).
pub fn internal_date(unix_secs: u64) -> DateTime {
    DateTime::try_from(utc(unix_secs).fixed_offset()).expect("years 1970 to 9999 are valid")
}

/// The day (UTC) of `unix_secs`, as SEARCH's date keys compare it.
/// A search criterion's day as numbers: year, month, day.
pub fn ymd(d: &imap_types::datetime::NaiveDate) -> (u16, u8, u8) {
    use chrono::Datelike;
    let d = d.as_ref();
    let small = |n: u32| u8::try_from(n).expect("a month or a day");
    let year = u16::try_from(d.year()).expect("IMAP's years are 0 to 9999");
    (year, small(d.month()), small(d.day()))
}

fn day_of(unix_secs: u64) -> chrono::NaiveDate {
    utc(unix_secs).date_naive()
}

/// A search the view cannot answer from flags, sizes and numbers alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SEARCH {0} is not served here (only flags, sizes, sequence numbers and UIDs)")]
pub struct Unsearchable(pub String);

/// The folder: messages in sequence order (sequence number = index + 1).
#[derive(Debug, Clone)]
pub struct View<K> {
    pub uid_validity: NonZeroU32,
    /// The folder's keyword table, as far as this session knows it: every
    /// bit its messages carry is named there.
    pub keywords: Keywords,
    messages: Vec<Message<K>>,
    uid_next: NonZeroU32,
}

impl<K> View<K> {
    /// A folder of `messages` (key and size, in order), numbered with UIDs
    /// 1, 2, 3… under `uid_validity`.
    pub fn numbered(
        uid_validity: NonZeroU32,
        messages: impl IntoIterator<Item = (K, u64)>,
    ) -> Self {
        let messages: Vec<Message<K>> = messages
            .into_iter()
            .zip(1u32..)
            .map(|((key, size), uid)| Message {
                key,
                uid: NonZeroU32::new(uid).expect("counts from 1"),
                size,
                flags: Flags::default(),
                arrived: 0,
            })
            .collect();
        let next = u32::try_from(messages.len()).unwrap_or(u32::MAX - 1) + 1;
        View {
            uid_validity,
            keywords: Keywords::default(),
            messages,
            uid_next: NonZeroU32::new(next).expect("at least 1"),
        }
    }

    /// A folder whose UIDs were given before (they are kept across
    /// sessions): put in UID order, as sequence numbers must follow UIDs.
    /// `uid_next` must be above every UID; `keywords` names every keyword
    /// bit of the messages.
    pub fn with_uids(
        (uid_validity, uid_next): (NonZeroU32, NonZeroU32),
        keywords: Keywords,
        mut messages: Vec<Message<K>>,
    ) -> Self {
        messages.sort_by_key(|m| m.uid);
        debug_assert!(messages.last().is_none_or(|m| m.uid < uid_next));
        View {
            uid_validity,
            keywords,
            messages,
            uid_next,
        }
    }

    pub fn exists(&self) -> u32 {
        u32::try_from(self.messages.len()).unwrap_or(u32::MAX)
    }

    pub fn uid_next(&self) -> NonZeroU32 {
        self.uid_next
    }

    pub fn unseen(&self) -> u32 {
        u32::try_from(self.messages.iter().filter(|m| !m.flags.seen).count()).unwrap_or(u32::MAX)
    }

    /// The sequence number of the first unseen message.
    pub fn first_unseen(&self) -> Option<NonZeroU32> {
        let i = self.messages.iter().position(|m| !m.flags.seen)?;
        seq_of(i)
    }

    pub fn get(&self, i: usize) -> &Message<K> {
        &self.messages[i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Message<K> {
        &mut self.messages[i]
    }

    /// The indices named by `set`: sequence numbers, or UIDs when `uid`.
    /// `*` is the last message (or the highest UID); numbers past the end
    /// name nothing.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let Some(last) = self.messages.last() else {
            return Vec::new();
        };
        let largest = if uid {
            last.uid
        } else {
            NonZeroU32::new(self.exists()).expect("not empty")
        };
        (0..self.messages.len())
            .filter(|&i| {
                let n = if uid {
                    self.messages[i].uid
                } else {
                    seq_of(i).expect("in range")
                };
                contains(set, n, largest)
            })
            .collect()
    }

    /// The indices of the messages that match every key of `criteria`.
    /// A key the view cannot judge (the mail's text) is asked of `text`,
    /// which answers for the message, or `None` if it cannot either.
    pub fn search(
        &self,
        criteria: &[SearchKey<'_>],
        text: &dyn Fn(&Message<K>, &SearchKey<'_>) -> Option<bool>,
    ) -> Result<Vec<usize>, Unsearchable> {
        let mut out = Vec::new();
        for i in 0..self.messages.len() {
            let mut all = true;
            for key in criteria {
                all &= self.matches(i, key, text)?;
            }
            if all {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn matches(
        &self,
        i: usize,
        key: &SearchKey<'_>,
        text: &dyn Fn(&Message<K>, &SearchKey<'_>) -> Option<bool>,
    ) -> Result<bool, Unsearchable> {
        let m = &self.messages[i];
        let f = m.flags;
        let exists = NonZeroU32::new(self.exists()).expect("a message is being matched");
        let last_uid = self.messages.last().expect("not empty").uid;
        Ok(match key {
            SearchKey::All | SearchKey::Old => true,
            SearchKey::New | SearchKey::Recent => false,
            SearchKey::Seen => f.seen,
            SearchKey::Unseen => !f.seen,
            SearchKey::Deleted => f.deleted,
            SearchKey::Undeleted => !f.deleted,
            SearchKey::Flagged => f.flagged,
            SearchKey::Unflagged => !f.flagged,
            SearchKey::Answered => f.answered,
            SearchKey::Unanswered => !f.answered,
            SearchKey::Draft => f.draft,
            SearchKey::Undraft => !f.draft,
            SearchKey::Keyword(k) => self.keywords.bit(k.as_ref()) & f.keywords != 0,
            SearchKey::Unkeyword(k) => self.keywords.bit(k.as_ref()) & f.keywords == 0,
            SearchKey::Since(d) => day_of(m.arrived) >= *d.as_ref(),
            SearchKey::Before(d) => day_of(m.arrived) < *d.as_ref(),
            SearchKey::On(d) => day_of(m.arrived) == *d.as_ref(),
            SearchKey::Larger(n) => m.size > u64::from(*n),
            SearchKey::Smaller(n) => m.size < u64::from(*n),
            SearchKey::SequenceSet(set) => contains(set, seq_of(i).expect("in range"), exists),
            SearchKey::Uid(set) => contains(set, m.uid, last_uid),
            SearchKey::Not(k) => !self.matches(i, k, text)?,
            SearchKey::Or(a, b) => self.matches(i, a, text)? || self.matches(i, b, text)?,
            SearchKey::And(keys) => {
                let mut all = true;
                for k in keys.as_ref() {
                    all &= self.matches(i, k, text)?;
                }
                all
            }
            other => match text(m, other) {
                Some(found) => found,
                None => return Err(Unsearchable(format!("{other:?}"))),
            },
        })
    }

    /// Every message, mutably, in sequence order (their UIDs stay).
    pub fn messages_mut(&mut self) -> impl Iterator<Item = &mut Message<K>> {
        self.messages.iter_mut()
    }

    /// Adds a message that arrived after the folder was shown, as the last
    /// one. UIDs only grow under one UIDVALIDITY, so one below UIDNEXT
    /// (a client may have seen UIDNEXT pass it) is refused: `None`.
    /// Otherwise the message as now shown.
    pub fn arrived(&mut self, m: Message<K>) -> Option<&Message<K>> {
        if m.uid < self.uid_next {
            return None;
        }
        self.uid_next = m.uid.saturating_add(1);
        self.messages.push(m);
        self.messages.last()
    }

    /// Raises UIDNEXT to `next` (UIDs given meanwhile to messages not
    /// shown); never lowers it.
    pub fn raise_uid_next(&mut self, next: NonZeroU32) {
        self.uid_next = self.uid_next.max(next);
    }

    /// Removes the messages at `indices` (ascending) and returns the
    /// sequence number to report for each, in order: each `* n EXPUNGE`
    /// renumbers the messages after it at once (RFC 3501 §7.4.1).
    pub fn expunge(&mut self, indices: &[usize]) -> Vec<NonZeroU32> {
        let mut reported = Vec::with_capacity(indices.len());
        for (removed, &i) in indices.iter().enumerate() {
            let now = i - removed;
            self.messages.remove(now);
            reported.push(seq_of(now).expect("in range"));
        }
        reported
    }
}

/// The sequence number of index `i`.
pub fn seq_of(i: usize) -> Option<NonZeroU32> {
    u32::try_from(i + 1).ok().and_then(NonZeroU32::new)
}

/// Whether `n` is in `set`, with `*` standing for `largest`.
pub fn contains(set: &SequenceSet, n: NonZeroU32, largest: NonZeroU32) -> bool {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(v) => *v,
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => value(v) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a), value(b));
            a.min(b) <= n && n <= a.max(b)
        }
    })
}

#[cfg(test)]
mod tests;
