//! Flags an IMAP client stores (`\Flagged`, `\Answered`, `\Draft`,
//! keywords), kept on the message's IMAP server as well as in the UID book.
//!
//! Why: a user who stars a message or replies to it expects every other
//! device to see the star and the reply mark, as with any IMAP account;
//! kept only in the proxy's book, they would be seen by this machine's
//! mail clients alone. So each is sent on (`XSTORE`, one per message and
//! direction) before the STORE is answered, and set on the server at once
//! (`UID STORE ±FLAGS.SILENT`). It is not owed work, as a read mark or a
//! delete is: it promises nothing about delivery, removes nothing, and
//! storing it twice changes nothing, so a cut only means the client hears
//! `NO` for that message and stores it again.
//!
//! `\Seen` and `\Deleted` are not among them: they are read marks and
//! deletes, with their own rules (`super::changes`). But a `\Seen` taken
//! away is: the user marked the message unread ("mark as unread" in every
//! mail client), and every device should show it so. The edge drops the
//! read mark it still owes on the message before it takes `\Seen` away,
//! so a mark committed later cannot undo the user's last word. Nor is anything
//! stored for an entry whose server speaks POP3, which has no flags: there
//! the book alone keeps them, as before. A `STORE FLAGS` (replace) takes
//! away on the server what the message showed and no longer has; a flag
//! another device set that the front never showed is left alone.

use causeway_imap::imap_types::flag::{Flag, FlagFetch, StoreType};
use causeway_net::Env;
use causeway_pop3::ClientError;

use super::commands::Front;
use crate::broken::Broken;
use crate::uids::server_of;

/// Whether a stored flag goes to the message's IMAP server.
fn kept_on_server(f: &Flag<'_>) -> bool {
    matches!(
        f,
        Flag::Flagged | Flag::Answered | Flag::Draft | Flag::Keyword(_)
    )
}

/// Whether a flag taken away goes to the message's IMAP server: those it
/// keeps, and `\Seen` (marked unread).
fn taken_away_on_server(f: &Flag<'_>) -> bool {
    kept_on_server(f) || *f == Flag::Seen
}

impl<E: Env> Front<E> {
    /// Stores on their servers what a STORE (`kind`, `flags`) changes of the
    /// server-kept flags of the shown messages `indices` on IMAP entries.
    /// Returns those whose server refused (their flags are to stay as they
    /// were), and the book keys of those marked unread there; `Err` when
    /// the session behind was lost.
    pub(super) async fn store_on_servers(
        &mut self,
        indices: &[usize],
        kind: StoreType,
        flags: &[Flag<'_>],
    ) -> Result<(Vec<usize>, Vec<String>), ClientError> {
        let names = |keep: fn(&Flag<'_>) -> bool| -> Vec<String> {
            flags
                .iter()
                .filter(|f| keep(f))
                .map(ToString::to_string)
                .collect()
        };
        let (added, taken) = (names(kept_on_server), names(taken_away_on_server));
        let (mut refused, mut unread) = (Vec::new(), Vec::new());
        for &i in indices {
            let v = self.view.as_ref().expect("selected states have a view");
            let m = v.get(i);
            let on_imap = self
                .book_keys
                .get(&m.uid)
                .is_some_and(|k| self.config.keeps_flags(server_of(k)));
            if !on_imap || self.config.broken(Broken::ImapFlagsUnsent) {
                continue;
            }
            let (add, remove) = match kind {
                StoreType::Add => (added.clone(), Vec::new()),
                StoreType::Remove => (Vec::new(), taken.clone()),
                StoreType::Replace => {
                    let shown = m.flags.fetched(&v.keywords);
                    let gone = shown
                        .iter()
                        .filter_map(|f| match f {
                            FlagFetch::Flag(f) if taken_away_on_server(f) => Some(f.to_string()),
                            _ => None,
                        })
                        .filter(|f| !taken.contains(f))
                        .collect();
                    (added.clone(), gone)
                }
            };
            let (n, uid) = (m.key, m.uid);
            for (plus, set) in [(true, add), (false, remove)] {
                if set.is_empty() {
                    continue;
                }
                match self.maildrop()?.store_flags(n, plus, &set).await {
                    Ok(()) if !plus && set.iter().any(|f| f == "\\Seen") => {
                        unread.extend(self.book_keys.get(&uid).cloned());
                    }
                    Ok(()) => {}
                    Err(e @ ClientError::Refused(_)) => {
                        tracing::warn!(message = n, error = %e,
                            "the message's server refused its flags; they stay as they were");
                        refused.push(i);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok((refused, unread))
    }
}
