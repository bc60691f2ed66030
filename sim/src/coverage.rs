//! "Sometimes" assertions: situations a sweep must reach at least once.
//!
//! An invariant that held in ten thousand seeds says little if no seed ever
//! cut the line during a RETR. Each run records which of these situations it
//! reached; the sweep counts seeds per situation and shows the zeros.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cov {
    CutDuringRetr,
    CutMidStream,
    CutAfterDeleAck,
    CutAfterRsetAck,
    CutAfterSeenStored,
    CutAtImapRecheck,
    RelayCrashPendingDelete,
    EdgeCrash,
    EdgeCrashWithJournal,
    EdgeCrashPendingWork,
    EdgeCrashQuitInDoubt,
    JournalCommitFailed,
    RelayCrash,
    ProxyCrash,
    LineCut,
    LineHold,
    RelayLinkCut,
    NewMailDuringSession,
    StaleLockMet,
    LockInUse,
    LostSessionEnded,
    ServerRestart,
    ServerStall,
    ServerDropMidReply,
    ServerRefusedQuit,
    MuaGaveUp,
    MuaGaveUpMidRetr,
    BigMessage,
    TwoPlusServers,
    ViaRelay,
    DeleteCommitted,
    SeenCommitted,
    ImapDeleteCommitted,
    ImapSeenCommitted,
    ImapFolderChanged,
    ImapFrontSession,
    ImapFrontExpunged,
    ImapFrontSeenStored,
    ImapFrontNewListed,
    ImapUidKept,
    ImapHungUp,
    ImapFrontOtherFolder,
    ImapFrontSwitchedFolder,
    ImapFrontRead,
    ImapFrontReadOwed,
    ImapFrontReadMarked,
    ImapBareExpunge,
    ImapExpungeHeldBack,
    ImapFlaggedElsewhereKept,
    ImapPlainOnlyLogin,
    ImapPipelined,
    ImapPipelinedLeft,
    ImapPartRead,
    ImapMovedToTrash,
    ImapPutBack,
    ImapTrashEmptied,
    ImapAppendStored,
    ImapAppendUnanswered,
    CutDuringAppend,
    ImapAppendUidGiven,
    ImapAppendUidKept,
    ImapTextSearched,
    Pop3TextSearched,
    ImapDaySearched,
    ImapFlagStored,
    ImapFlagTakenAway,
    ImapPhoneStarShown,
    ImapPhoneReadShown,
    ImapUnreadStored,
    ImapUnreadOwedReadDropped,
    LoginWhileExpungeOwed,
    RsetAcked,
    RelayCutAfterRset,
    OwedWorkAdopted,
    DuplicateUidl,
    TwinAfterDelete,
    CopyIndistinguishable,
    LongUidl,
    Pipelined,
    LongSession,
    TwoClients,
    TopAsked,
    StreamedAheadUnread,
    ProxyCrashWithDeletes,
    CarriedTakenBefore,
    JournalPartErased,
    SlowLine,
    CleanSession,
    Resumed,
    ResumedPartialBody,
    ResumePrimed,
    CutCovered,
}

impl Cov {
    pub const ALL: &'static [Cov] = &[
        Cov::CutDuringRetr,
        Cov::CutMidStream,
        Cov::CutAfterDeleAck,
        Cov::CutAfterRsetAck,
        Cov::CutAfterSeenStored,
        Cov::CutAtImapRecheck,
        Cov::RelayCrashPendingDelete,
        Cov::EdgeCrash,
        Cov::EdgeCrashWithJournal,
        Cov::EdgeCrashPendingWork,
        Cov::EdgeCrashQuitInDoubt,
        Cov::JournalCommitFailed,
        Cov::RelayCrash,
        Cov::ProxyCrash,
        Cov::LineCut,
        Cov::LineHold,
        Cov::RelayLinkCut,
        Cov::NewMailDuringSession,
        Cov::StaleLockMet,
        Cov::LockInUse,
        Cov::LostSessionEnded,
        Cov::ServerRestart,
        Cov::ServerStall,
        Cov::ServerDropMidReply,
        Cov::ServerRefusedQuit,
        Cov::MuaGaveUp,
        Cov::MuaGaveUpMidRetr,
        Cov::BigMessage,
        Cov::TwoPlusServers,
        Cov::ViaRelay,
        Cov::DeleteCommitted,
        Cov::SeenCommitted,
        Cov::ImapDeleteCommitted,
        Cov::ImapSeenCommitted,
        Cov::ImapFolderChanged,
        Cov::ImapFrontSession,
        Cov::ImapFrontExpunged,
        Cov::ImapFrontSeenStored,
        Cov::ImapFrontNewListed,
        Cov::ImapUidKept,
        Cov::ImapHungUp,
        Cov::ImapFrontOtherFolder,
        Cov::ImapFrontSwitchedFolder,
        Cov::ImapFrontRead,
        Cov::ImapFrontReadOwed,
        Cov::ImapFrontReadMarked,
        Cov::ImapBareExpunge,
        Cov::ImapExpungeHeldBack,
        Cov::ImapFlaggedElsewhereKept,
        Cov::ImapPlainOnlyLogin,
        Cov::ImapPipelined,
        Cov::ImapPipelinedLeft,
        Cov::ImapPartRead,
        Cov::ImapMovedToTrash,
        Cov::ImapPutBack,
        Cov::ImapTrashEmptied,
        Cov::ImapAppendStored,
        Cov::ImapAppendUnanswered,
        Cov::CutDuringAppend,
        Cov::ImapAppendUidGiven,
        Cov::ImapAppendUidKept,
        Cov::ImapTextSearched,
        Cov::Pop3TextSearched,
        Cov::ImapDaySearched,
        Cov::ImapFlagStored,
        Cov::ImapFlagTakenAway,
        Cov::ImapPhoneStarShown,
        Cov::ImapPhoneReadShown,
        Cov::ImapUnreadStored,
        Cov::ImapUnreadOwedReadDropped,
        Cov::LoginWhileExpungeOwed,
        Cov::RsetAcked,
        Cov::RelayCutAfterRset,
        Cov::OwedWorkAdopted,
        Cov::DuplicateUidl,
        Cov::TwinAfterDelete,
        Cov::CopyIndistinguishable,
        Cov::LongUidl,
        Cov::Pipelined,
        Cov::LongSession,
        Cov::TwoClients,
        Cov::TopAsked,
        Cov::StreamedAheadUnread,
        Cov::ProxyCrashWithDeletes,
        Cov::CarriedTakenBefore,
        Cov::JournalPartErased,
        Cov::SlowLine,
        Cov::CleanSession,
        Cov::Resumed,
        Cov::ResumedPartialBody,
        Cov::ResumePrimed,
        Cov::CutCovered,
    ];

    /// Whether a large plain sweep fails when no seed reached this
    /// ([`crate::sweep::COVERAGE_GATE_SEEDS`]). Not gated: a journal group
    /// erased in part, which the standard swarm reaches about once in 100
    /// seeds, unevenly (work that proved impossible or was adopted
    /// part-way), and the twins focus often; and an exact copy deleted
    /// where no listing could tell it from the original, an exemption the
    /// oracle makes (about once in 10,000 seeds), not a path to cover; and
    /// an edge crash while the record of a `QUIT` sent is on disk, about 7
    /// in 1,500 standard seeds (too few to gate at 1,000), which
    /// `twins_that_once_failed` requires of seed 693863997.
    pub fn gated(self) -> bool {
        !matches!(
            self,
            Cov::JournalPartErased | Cov::CopyIndistinguishable | Cov::EdgeCrashQuitInDoubt
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Cov::CutDuringRetr => "cut during RETR",
            Cov::CutMidStream => "cut while the edge streamed to the proxy",
            Cov::CutAfterDeleAck => "cut right after a DELE ack",
            Cov::CutAfterRsetAck => "cut right after an RSET ack",
            Cov::CutAfterSeenStored => "cut right after an IMAP STORE of \\Seen was answered",
            Cov::CutAtImapRecheck => "cut as an IMAP NOOP went out after BODY[] reads",
            Cov::RelayCrashPendingDelete => "relay crash with a pending delete",
            Cov::EdgeCrash => "edge crash",
            Cov::EdgeCrashWithJournal => "edge crash with a journal",
            Cov::EdgeCrashPendingWork => "edge crash with pending work",
            Cov::EdgeCrashQuitInDoubt => {
                "edge crash with a QUIT sent and its batch recorded (not seen answered)"
            }
            Cov::JournalCommitFailed => "journal commit failed",
            Cov::RelayCrash => "relay crash",
            Cov::ProxyCrash => "client proxy crash",
            Cov::LineCut => "line cut",
            Cov::LineHold => "line hold/burst",
            Cov::RelayLinkCut => "edge<->relay cut",
            Cov::NewMailDuringSession => "new mail during a session",
            Cov::StaleLockMet => "stale lock met",
            Cov::LockInUse => "lock in use met",
            Cov::LostSessionEnded => "lost session superseded by the next",
            Cov::ServerRestart => "server restart",
            Cov::ServerStall => "server stalled",
            Cov::ServerDropMidReply => "server dropped mid-reply",
            Cov::ServerRefusedQuit => "server refused QUIT (committed nothing)",
            Cov::MuaGaveUp => "mua gave up mid-session",
            Cov::MuaGaveUpMidRetr => "mua gave up mid-RETR",
            Cov::BigMessage => "message > 1 MB",
            Cov::TwoPlusServers => "two+ servers",
            Cov::ViaRelay => "via relay",
            Cov::DeleteCommitted => "delete committed",
            Cov::SeenCommitted => "read mark committed",
            Cov::ImapDeleteCommitted => "delete committed over IMAP (UID EXPUNGE)",
            Cov::ImapSeenCommitted => "read mark committed over IMAP (UID STORE)",
            Cov::ImapFolderChanged => {
                "a delete or read mark committed in an IMAP folder other than INBOX"
            }
            Cov::ImapFrontSession => "IMAP mail client session at the client proxy",
            Cov::ImapFrontExpunged => "expunge acknowledged at the client proxy's IMAP front",
            Cov::ImapFrontSeenStored => "\\Seen stored at the client proxy's IMAP front",
            Cov::ImapFrontNewListed => "new mail listed again by the IMAP front mid-session",
            Cov::ImapUidKept => "IMAP UID named the same message in a later session",
            Cov::ImapHungUp => "IMAP mail client hung up without LOGOUT after its work",
            Cov::ImapFrontOtherFolder => {
                "IMAP front expunge acknowledged in an entry's own folder (not INBOX)"
            }
            Cov::ImapFrontSwitchedFolder => {
                "IMAP front session selected another folder mid-session"
            }
            Cov::ImapFrontRead => "body read with BODY[] (not a peek) at the IMAP front",
            Cov::ImapFrontReadOwed => {
                "... and owed a read mark: the session's LOGOUT said every mark was made"
            }
            Cov::ImapFrontReadMarked => "... and marked read on its server without a STORE",
            Cov::ImapBareExpunge => "delete committed by a bare EXPUNGE (server without UIDPLUS)",
            Cov::ImapExpungeHeldBack => {
                "delete held back: no UIDPLUS and another client's \\Deleted in the folder"
            }
            Cov::ImapFlaggedElsewhereKept => {
                "message another client flagged \\Deleted kept through our expunges"
            }
            Cov::ImapPlainOnlyLogin => "logged in with AUTHENTICATE PLAIN where LOGIN is disabled",
            Cov::ImapPipelined => "IMAP fetches pipelined (several in one write)",
            Cov::ImapPipelinedLeft => "IMAP client hung up with pipelined fetches in flight",
            Cov::ImapPartRead => "IMAP BODYSTRUCTURE and part 1 read, not the whole message",
            Cov::ImapMovedToTrash => "IMAP MOVE to the client proxy's Trash answered",
            Cov::ImapPutBack => "IMAP MOVE out of Trash, back to the message's folder",
            Cov::ImapTrashEmptied => "a delete committed after an expunge in Trash",
            Cov::ImapAppendStored => "an IMAP APPEND answered OK, stored once",
            Cov::ImapAppendUnanswered => "an IMAP APPEND whose outcome the mail client never heard",
            Cov::CutDuringAppend => "cut during an IMAP APPEND",
            Cov::ImapAppendUidGiven => "an IMAP APPEND answered APPENDUID",
            Cov::ImapAppendUidKept => "an appended message received at the UID its APPENDUID gave",
            Cov::ImapTextSearched => {
                "an IMAP text search answered and judged by the servers' own judgment"
            }
            Cov::Pop3TextSearched => {
                "a POP3 entry's message found by an IMAP text search (the edge read it whole)"
            }
            Cov::ImapDaySearched => {
                "an IMAP search by the day sent (SENTON, SENTBEFORE, SENTSINCE)"
            }
            Cov::ImapFlagStored => "\\Flagged stored at the IMAP front, on its IMAP server",
            Cov::ImapFlagTakenAway => {
                "\\Flagged taken away at the IMAP front, gone from its server"
            }
            Cov::ImapPhoneStarShown => {
                "a star another device set or took away on the server shown at the IMAP front"
            }
            Cov::ImapPhoneReadShown => {
                "a message read on the phone shown read at the IMAP front, never read there"
            }
            Cov::ImapUnreadStored => {
                "a message read on its IMAP server, marked unread at the IMAP front, stays unread"
            }
            Cov::ImapUnreadOwedReadDropped => {
                "... one read in the same session (its read mark owed), stays unread"
            }
            Cov::LoginWhileExpungeOwed => {
                "an IMAP LOGIN sent while an answered expunge was not done yet"
            }
            Cov::RsetAcked => "RSET acknowledged",
            Cov::RelayCutAfterRset => "relay cut/crash right after RSET +OK",
            Cov::OwedWorkAdopted => "owed work adopted by another session",
            Cov::DuplicateUidl => "duplicate UIDL on a server",
            Cov::TwinAfterDelete => "an exact copy of a message delivered right after its DELE +OK",
            Cov::CopyIndistinguishable => {
                "an exact copy deleted where no listing told it from the original (exempt)"
            }
            Cov::LongUidl => "UIDL over 70 characters",
            Cov::Pipelined => "pipelined commands",
            Cov::LongSession => "long browsing session",
            Cov::TwoClients => "two mail clients at once",
            Cov::TopAsked => "TOP asked",
            Cov::StreamedAheadUnread => "body streamed ahead, never delivered",
            Cov::ProxyCrashWithDeletes => "proxy crash with deletes in its journal",
            Cov::CarriedTakenBefore => {
                "a delete carried again that the edge had taken (its Held lost)"
            }
            Cov::JournalPartErased => "edge journal erased part of a group's work",
            Cov::SlowLine => "session that met no fault on a slow line",
            Cov::CleanSession => "session that met no fault",
            Cov::Resumed => "session resumed after a cut",
            Cov::ResumedPartialBody => "resume continued a body part-way",
            Cov::ResumePrimed => "resumed stream primed with the cut one's history",
            Cov::CutCovered => "session judged by invariant 9 (cuts a resume covers)",
        }
    }
}

/// Seeds per situation over a sweep.
#[derive(Clone, Debug, Default)]
pub struct CoverageCounts {
    pub counts: BTreeMap<Cov, u64>,
}

impl CoverageCounts {
    pub fn add<'a>(&mut self, reached: impl IntoIterator<Item = &'a Cov>) {
        for c in reached {
            *self.counts.entry(*c).or_default() += 1;
        }
    }

    pub fn get(&self, c: Cov) -> u64 {
        self.counts.get(&c).copied().unwrap_or(0)
    }

    pub fn missing(&self) -> Vec<Cov> {
        Cov::ALL
            .iter()
            .copied()
            .filter(|c| self.get(*c) == 0)
            .collect()
    }

    pub fn merge(&mut self, other: &CoverageCounts) {
        for (c, n) in &other.counts {
            *self.counts.entry(*c).or_default() += n;
        }
    }
}

impl fmt::Display for CoverageCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "coverage (seeds reaching each situation):")?;
        for c in Cov::ALL {
            let n = self.get(*c);
            let flag = if n == 0 { "   <-- NEVER REACHED" } else { "" };
            writeln!(f, "  {:<36} {n:>7}{flag}", c.name())?;
        }
        Ok(())
    }
}
