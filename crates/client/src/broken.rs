//! Deliberately broken client proxies, for proving that the fault
//! simulation catches real bugs on the client side too: each variant is a
//! bug a reasonable implementation could have.
//!
//! They act only in a build with the `broken-variants` feature, which only
//! the simulation's bug hunts enable; elsewhere
//! [`crate::ClientConfig::broken`] is constant `false` and the broken paths
//! are compiled out.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// Tell the edge a body was delivered before writing it to the mail
    /// client: a mail client that gives up mid-body leaves it marked read.
    ReadMarkBeforeWrite,
    /// End the edge session after every delivered message: each next
    /// command fails, although nothing went wrong.
    BreakAfterDelivery,
    /// Answer DELE `+OK` with the delete held in memory only, not in the
    /// delete journal: a cut before its batch went, or a crash of the
    /// proxy, loses a delete the mail client was told of.
    DeleNotJournaled,
    /// Take up a resumed stream the edge primed with the cut one's history
    /// without priming the receiving side: the first compressed frame on
    /// the new channel cannot be decoded, and the mail client sees the cut
    /// the resume was for.
    UnprimedResume,
    /// Number the IMAP folder by its listing, 1 to n, in every session
    /// under the same UIDVALIDITY (the UID book's UIDs ignored): once a
    /// message is gone, its UID names the next one, and a client that
    /// keeps copies by UID mixes them up.
    ImapUidsByListing,
    /// Answer an IMAP STORE of `\Seen` before the edge owes the read mark
    /// (it goes with the session's next command): a line cut right after
    /// the `OK` loses a change the mail client was told was made.
    ImapSeenUnowed,
    /// Take any next command as proof that the IMAP client took the last
    /// non-peek FETCH's response whole, one it had pipelined before the
    /// response was written too: a client that pipelines its fetches and
    /// hangs up (or loses the line) mid-response leaves a message it
    /// never got marked read.
    ImapPipelinedProvesRead,
    /// Answer an IMAP APPEND with `APPENDUID` and the UID the folder's book
    /// gives the message, without keeping it there: the next listing
    /// numbers the message anew, and a client that pushed it (mbsync) takes
    /// it for new mail and copies it back.
    ImapAppendUidUnkept,
    /// The IMAP front answers a STORE of `\Flagged` (or any flag its IMAP
    /// server keeps) without sending it on: the star is seen on this
    /// machine only, and never on the server.
    ImapFlagsUnsent,
    /// A new session's mail client is shown the messages whose deletes the
    /// delete journal holds (acknowledged in another session, not done
    /// yet): an expunged message shows again to the user's other client.
    PendingDeletesShown,
    /// An IMAP folder's listing forgets a message moved or appended into
    /// the folder after the listing was taken (it could not show it): the
    /// message loses its UID, and shows again under a new one.
    ImapTakenInForgotten,
    /// The IMAP front ignores the flags its IMAP servers list: a star or a
    /// read mark set on the phone never shows on this machine.
    ImapServerFlagsIgnored,
    /// The IMAP front answers a text search without asking the servers,
    /// as if no message's text matched.
    ImapSearchUnasked,
}

impl Broken {
    pub const ALL: [Broken; 13] = [
        Broken::ReadMarkBeforeWrite,
        Broken::BreakAfterDelivery,
        Broken::DeleNotJournaled,
        Broken::UnprimedResume,
        Broken::ImapUidsByListing,
        Broken::ImapSeenUnowed,
        Broken::ImapPipelinedProvesRead,
        Broken::ImapAppendUidUnkept,
        Broken::ImapFlagsUnsent,
        Broken::PendingDeletesShown,
        Broken::ImapTakenInForgotten,
        Broken::ImapServerFlagsIgnored,
        Broken::ImapSearchUnasked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Broken::ReadMarkBeforeWrite => "read-mark-before-write",
            Broken::BreakAfterDelivery => "break-after-delivery",
            Broken::DeleNotJournaled => "dele-not-journaled",
            Broken::UnprimedResume => "unprimed-resume",
            Broken::ImapUidsByListing => "imap-uids-by-listing",
            Broken::ImapSeenUnowed => "imap-seen-unowed",
            Broken::ImapPipelinedProvesRead => "imap-pipelined-proves-read",
            Broken::ImapAppendUidUnkept => "imap-append-uid-unkept",
            Broken::ImapFlagsUnsent => "imap-flags-unsent",
            Broken::PendingDeletesShown => "pending-deletes-shown",
            Broken::ImapTakenInForgotten => "imap-taken-in-forgotten",
            Broken::ImapServerFlagsIgnored => "imap-server-flags-ignored",
            Broken::ImapSearchUnasked => "imap-search-unasked",
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
