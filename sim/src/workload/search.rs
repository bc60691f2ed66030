//! The IMAP mail user searches the text of its mail (`UID SEARCH SUBJECT`
//! for a message's subject, `UID SEARCH TEXT` for a word of its body) and
//! the day it was sent (`SENTON`, `SENTBEFORE`, `SENTSINCE` its `Date:`),
//! as mutt's `=s` and `=b` and Thunderbird's "search on server" do, and
//! judges the answer (invariant 15).
//!
//! The client proxy holds few bodies, so it asks each text criterion of the
//! servers behind the folder (through the line, the edge and perhaps a
//! relay): an IMAP server searches its own mail, and the edge reads a POP3
//! server's whole and judges it there. The proxy maps what they found back
//! to its own UIDs. The user judges that against the model's own judgment
//! of each message it has whole in the session
//! ([`causeway_mailserver::text_matches`] on the stored body): a UID found
//! must match, and a message that matches must be found unless it was
//! deleted (on its server, by the phone's or another client's expunge, or
//! by this user, whose delete the edge may already have sent). Every folder
//! can be searched, whatever its entries speak: a refusal is a failure.

use std::num::NonZeroU32;

use causeway_imap::imap_types::core::AString;
use causeway_imap::imap_types::datetime::NaiveDate;
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
        let Some(body) = self.body(pick) else {
            return Ok(());
        };
        // One draw, as the choice between two took before days were asked.
        let how = self.env.rng().range(0, 6);
        let text = |t: Option<String>| t.and_then(|t| AString::try_from(t).ok());
        let key = match how {
            0..=2 => text(subject(&body)).map(SearchKey::Subject),
            3 => text(first_word(&body)).map(SearchKey::Text),
            _ => sent_day(&body).map(|day| match (how, pick.1 % 2) {
                (4, _) => SearchKey::SentOn(day),
                (_, 0) => SearchKey::SentBefore(day),
                _ => SearchKey::SentSince(day),
            }),
        };
        let Some(key) = key else {
            return Ok(());
        };
        *commands += 1;
        let found = (c.search(key.clone()).await)
            .map_err(|e| Ended::Broken(format!("UID SEARCH {key:?} in {folder}: {e}")))?;
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
            if matches && was_found && self.pop3(msg) {
                self.log.with(|m| m.imap_searched_pop3 += 1);
            }
            if matches && !was_found && !self.deleted(msg) {
                self.log.violation(
                    15,
                    Some(msg.clone()),
                    format!("UID SEARCH {key:?} missed UID {uid}, whose text matches"),
                );
            }
        }
        let by_day = matches!(
            key,
            SearchKey::SentOn(_) | SearchKey::SentBefore(_) | SearchKey::SentSince(_)
        );
        self.log.with(|m| {
            m.imap_searched += 1;
            m.imap_searched_by_day += u32::from(by_day);
        });
        Ok(())
    }

    /// The message as its server stores it.
    fn body(&self, (host, uid): &MsgKey) -> Option<Vec<u8>> {
        let s = self.stores.iter().find(|s| &s.host == host)?;
        s.store.body_by_uid_copy(&s.user, *uid)
    }

    /// Whether its server speaks POP3 (the edge searched it itself).
    fn pop3(&self, (host, _): &MsgKey) -> bool {
        (self.stores.iter()).any(|s| &s.host == host && !s.imap)
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
}

/// The day of a message's `Date:` field as the model server writes it
/// (`Thu, 01 Jan 2026 00:00:00 +0000`), if it has one.
fn sent_day(message: &[u8]) -> Option<NaiveDate> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = std::str::from_utf8(message).ok()?;
    let (head, _) = text.split_once("\r\n\r\n")?;
    let date = head.split("\r\n").find_map(|l| l.strip_prefix("Date: "))?;
    let words: Vec<&str> = date.split_ascii_whitespace().collect();
    let [_, day, month, year, ..] = words.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? as u8 + 1;
    causeway_imap::command::search_day(year.parse().ok()?, month, day.parse().ok()?)
}

/// The first word of a message's body of three letters or more, if any.
fn first_word(message: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    (body.split_ascii_whitespace())
        .find(|w| w.len() >= 3 && w.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
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
