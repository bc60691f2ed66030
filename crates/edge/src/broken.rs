//! Deliberately broken edges, for proving that the fault simulation catches
//! real bugs: each variant is a bug a reasonable implementation could have,
//! and each breaks one of the promises in `docs/architecture.md`.
//!
//! A variant acts only when the edge was built with the `broken-variants`
//! feature, which nothing but the simulation's bug hunts enables
//! (`cargo run -p causeway-sim --features broken-variants -- --broken NAME`);
//! in any other build [`crate::EdgeConfig::broken`] is constant `false` and
//! the broken paths are compiled out.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// Mark a message read when its body is sent, not when the client proxy
    /// says it was delivered: a cut mid-transfer leaves it marked read.
    MarkReadBeforeDelivered,
    /// After a line cut, drop the server sessions without QUIT (and with
    /// them the owed work): locks left, deletes lost.
    NoQuitAfterCut,
    /// Resolve owed work by the message numbers of the first server session,
    /// never re-resolving UIDLs in a new one: a delete can hit another message.
    StaleMessageNumbers,
    /// After a line cut, forget deletes already acknowledged to the client.
    DropAckedDeleteOnCut,
    /// Forget owed work when the server session drops (instead of redoing
    /// it in the next one).
    ForgetOwedOnSessionLoss,
    /// Do not queue acknowledged work while no server session is open.
    DropOwedWhileDisconnected,
    /// Keep the deletes the mail client undid with RSET.
    KeepDeletesAfterRset,
    /// Acknowledge deletes without writing them to the crash journal.
    NoJournalEntry,
    /// Give up (and erase) owed work when the maildrop is locked by
    /// another session, as the edge once did at its completion deadline.
    EraseOwedWhenLocked,
    /// Mark a body read once it was streamed ahead of demand, as if
    /// reaching the client proxy were reaching the mail client.
    MarkPrefetchedRead,
    /// Owe the deletes a client proxy carried from an earlier session as
    /// this session's own, so that this session's RSET undoes them too.
    CarriedUndoneByRset,
    /// Erase a group's journal header with the first of its entries
    /// erased, not the last: the entries left cannot be replayed (the
    /// header holds where to log in), so a crash then drops them. A
    /// mutant of the journal no seed caught until invariant 4 checked the
    /// disk after each commit.
    JournalHeaderErasedEarly,
    /// Take a delete a client proxy carried again though this edge took
    /// it before (the proxy lost its `Held`): done twice by UIDL and size,
    /// it deletes a later copy the user never deleted.
    CarriedTakenTwice,
    /// Store an `Append` asked again after a resume as if it were new (its
    /// first answer was lost, not its effect): the message is on the
    /// server twice.
    AppendAgainOnResume,
    /// Take `\Seen` away on the server when the mail client marks a
    /// message unread, but keep the read mark still owed on it: the
    /// session's QUIT marks it read again.
    UnreadKeepsOwedRead,
    /// Take back only this session's read mark when the mail client marks
    /// a message unread: an earlier session's worker, still finishing,
    /// commits its own mark on it afterwards.
    UnreadSparesOtherSessions,
    /// Report work handed to another worker of the maildrop as committed
    /// in the session's `Bye`: the client proxy erases deletes the edge's
    /// journal does not hold.
    HandoverReportedCommitted,
    /// Search a POP3 server's mail by its headers alone (`TOP n 0`, to
    /// spare the server's hop): a word of a body is never found.
    SearchReadsHeaders,
}

impl Broken {
    pub const ALL: [Broken; 18] = [
        Broken::MarkReadBeforeDelivered,
        Broken::NoQuitAfterCut,
        Broken::StaleMessageNumbers,
        Broken::DropAckedDeleteOnCut,
        Broken::ForgetOwedOnSessionLoss,
        Broken::DropOwedWhileDisconnected,
        Broken::KeepDeletesAfterRset,
        Broken::NoJournalEntry,
        Broken::EraseOwedWhenLocked,
        Broken::MarkPrefetchedRead,
        Broken::CarriedUndoneByRset,
        Broken::JournalHeaderErasedEarly,
        Broken::CarriedTakenTwice,
        Broken::AppendAgainOnResume,
        Broken::UnreadKeepsOwedRead,
        Broken::UnreadSparesOtherSessions,
        Broken::HandoverReportedCommitted,
        Broken::SearchReadsHeaders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Broken::MarkReadBeforeDelivered => "mark-read-before-delivered",
            Broken::NoQuitAfterCut => "no-quit-after-cut",
            Broken::StaleMessageNumbers => "stale-message-numbers",
            Broken::DropAckedDeleteOnCut => "drop-acked-delete-on-cut",
            Broken::ForgetOwedOnSessionLoss => "forget-owed-on-session-loss",
            Broken::DropOwedWhileDisconnected => "drop-owed-while-disconnected",
            Broken::KeepDeletesAfterRset => "keep-deletes-after-rset",
            Broken::NoJournalEntry => "no-journal-entry",
            Broken::EraseOwedWhenLocked => "erase-owed-when-locked",
            Broken::MarkPrefetchedRead => "mark-prefetched-read",
            Broken::CarriedUndoneByRset => "carried-undone-by-rset",
            Broken::JournalHeaderErasedEarly => "journal-header-erased-early",
            Broken::CarriedTakenTwice => "carried-taken-twice",
            Broken::AppendAgainOnResume => "append-again-on-resume",
            Broken::UnreadKeepsOwedRead => "unread-keeps-owed-read",
            Broken::UnreadSparesOtherSessions => "unread-spares-other-sessions",
            Broken::HandoverReportedCommitted => "handover-reported-committed",
            Broken::SearchReadsHeaders => "search-reads-headers",
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Broken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Broken::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Broken::ALL.iter().map(|b| b.name()).collect();
                format!("no broken variant {s:?}; one of: {}", names.join(", "))
            })
    }
}
