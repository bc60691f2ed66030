//! The IMAP mail user searches the text of its mail (`UID SEARCH SUBJECT`,
//! `UID SEARCH TEXT`), as mutt's `=s` and Thunderbird's "search on server"
//! do, and judges the answer (invariant 15).
//!
//! The client proxy holds few bodies, so it asks each text criterion of the
//! IMAP servers behind the folder (through the line, the edge and perhaps a
//! relay) and maps what they found back to its own UIDs. The user judges
//! that against the servers' own judgment of each message it has whole in
//! the session ([`causeway_mailserver::text_matches`] on the stored body):
//! a UID found must match, and a message that matches must be found unless
//! it was deleted (on its server, by the phone's or another client's
//! expunge, or by this user, whose delete the edge may already have sent).
//! A folder that shows messages of a POP3 entry may rightly answer `NO`:
//! POP3 cannot search.

use std::num::NonZeroU32;

use causeway_imap::ImapError;
use causeway_imap::imap_types::core::AString;
use causeway_imap::imap_types::search::SearchKey;
use causeway_mailserver::text_matches;
use causeway_net::Env;

use super::Mua;
use super::imap::Client;
use super::record::{Ended, MsgKey};

impl Mua {
    /// Now and then ([`MuaParams::text_search`](crate::swarm::MuaParams)),
    /// one text search for the subject of a message the session has whole.
    pub(super) async fn maybe_search(
        &self,
        c: &mut Client,
        folder: &str,
        whole: &[(NonZeroU32, Option<MsgKey>)],
        commands: &mut u32,
    ) -> Result<(), Ended> {
        let known: Vec<(NonZeroU32, MsgKey)> = (whole.iter())
            .filter_map(|(uid, key)| Some((*uid, key.clone()?)))
            .collect();
        if known.is_empty() || !self.chance(self.params.text_search) {
            return Ok(());
        }
        let pick = &known[self.env.rng().range(0, known.len() as u64) as usize].1;
        let Some(subject) = self.body(pick).as_deref().and_then(subject) else {
            return Ok(());
        };
        let Ok(needle) = AString::try_from(subject.clone()) else {
            return Ok(());
        };
        let key = match self.chance(0.5) {
            true => SearchKey::Subject(needle),
            false => SearchKey::Text(needle),
        };
        *commands += 1;
        let found = match c.search(key.clone()).await {
            Ok(found) => found,
            Err(ImapError::Refused { .. }) if self.pop3_in(folder) => {
                self.log.with(|m| m.imap_search_refused += 1);
                return Ok(());
            }
            Err(e) => return Err(Ended::Broken(format!("UID SEARCH {subject:?}: {e}"))),
        };
        for (uid, msg) in &known {
            let Some(body) = self.body(msg) else { continue };
            let matches = text_matches(&key, &body).expect("a text criterion");
            let was_found = found.contains(uid);
            if was_found && !matches {
                self.log.violation(
                    15,
                    Some(msg.clone()),
                    format!("UID SEARCH {key:?} found UID {uid}, whose text does not match"),
                );
            }
            if matches && !was_found && !self.deleted(msg) {
                self.log.violation(
                    15,
                    Some(msg.clone()),
                    format!("UID SEARCH {key:?} missed UID {uid}, whose text matches"),
                );
            }
        }
        self.log.with(|m| m.imap_searched += 1);
        Ok(())
    }

    /// The message as its server stores it.
    fn body(&self, (host, uid): &MsgKey) -> Option<Vec<u8>> {
        let s = self.stores.iter().find(|s| &s.host == host)?;
        s.store.body_by_uid_copy(&s.user, *uid)
    }

    /// Deleted on its server, or by this user (the edge may have sent its
    /// delete already, and the server's search no longer sees it).
    fn deleted(&self, key: &MsgKey) -> bool {
        let on_server = (self.stores.iter())
            .filter(|s| s.host == key.0)
            .flat_map(|s| s.store.messages(&s.user))
            .any(|m| m.uid == key.1 && m.deleted_at_ms.is_some());
        on_server || self.log.with(|m| m.must_delete.contains(key))
    }

    /// Whether an entry speaking POP3 shows its messages in `folder` (its
    /// own, or the client proxy's Trash, which holds every entry's).
    fn pop3_in(&self, folder: &str) -> bool {
        (self.stores.iter()).any(|s| {
            !s.imap && (folder == causeway_client::TRASH || self.folder_of(&s.host) == folder)
        })
    }
}

/// The value of a message's `Subject:` field, if it has a simple one.
fn subject(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n")
        .find_map(|l| l.strip_prefix("Subject: "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
