//! The IMAP mail user stores a message (its sent mail, a draft) with
//! APPEND into the folder of an entry that reads an IMAP folder, as
//! Thunderbird does after each message it sends.
//!
//! The record (invariant 10): the message's SHA-256 and whether the APPEND
//! was answered `OK`. One answered must be on that server exactly once
//! after the quiet phase, one that was not (the line or a node failed, or
//! the proxy said the outcome is unknown) at most once: the edge stores
//! each upload once, whatever the line does meanwhile. Most messages are a
//! few kilobytes; some are long enough to go up in many pieces, so that
//! cuts fall inside an upload.
//!
//! An `OK [APPENDUID validity uid]` is recorded as that UID of the folder
//! naming the stored message (invariant 2, as for a body received whole):
//! received later in that folder under that UIDVALIDITY, the message must
//! be at that UID and no other, or a client that pushed it (mbsync) takes
//! it for new mail; until any mail client moves it to Trash or sends its
//! delete.

use std::num::NonZeroU32;

use causeway_net::Env;

use super::imap::Client;
use super::record::{Activity, Appended, Ended, MsgKey};
use super::{Mua, sim_ms};

/// How often an IMAP session that can store mail does.
const APPEND_CHANCE: f64 = 0.5;

/// How often an appended message is long (tens of pieces up the line).
const LONG_CHANCE: f64 = 0.25;

/// How often it is stored `\Seen` (Thunderbird's sent mail), so that its
/// own APPEND marks it read on the server.
const SEEN_CHANCE: f64 = 0.5;

impl Mua {
    /// Maybe APPENDs a new message to one of the entries' folders.
    /// `Err`: how the session ended.
    pub(super) async fn maybe_append(
        &self,
        c: &mut Client,
        session: u32,
        commands: &mut u32,
    ) -> Result<(), Ended> {
        let folders = self.entry_folders();
        if folders.is_empty() || !self.chance(APPEND_CHANCE) {
            return Ok(());
        }
        let rng = self.env.rng();
        let host = folders[rng.range(0, folders.len() as u64) as usize].to_owned();
        let size = if rng.chance(LONG_CHANCE) {
            rng.range(20_000, 160_000)
        } else {
            rng.range(300, 4_000)
        } as usize;
        let index = 1_000_000 + u64::from(self.client) * 100_000 + u64::from(session);
        let message = causeway_mailserver::generate::message(rng, index, size);
        let sha256 = causeway_mailserver::content_sha256(&message);
        let flags: Vec<String> = if rng.chance(SEEN_CHANCE) {
            vec!["\\Seen".into()]
        } else {
            vec!["\\Draft".into()]
        };
        self.log.event(
            sim_ms(),
            format!(
                "client {} APPENDs {} octets to {host} ({})",
                self.client,
                message.len(),
                &sha256[..12]
            ),
        );
        let at = self.log.with(|m| {
            m.imap_appends.push(Appended {
                host: host.clone(),
                sha256,
                stored: false,
            });
            m.imap_appends.len() - 1
        });
        *commands += 1;
        self.log.set(Activity::Appending);
        let stored = c.append(&host, &flags, &message).await;
        self.log.set(Activity::InSession);
        match stored {
            Ok(given) => {
                self.log.with(|m| m.imap_appends[at].stored = true);
                if let Some(a) = given {
                    self.appended_at(&host, &message, a, session);
                }
                Ok(())
            }
            // Refused (`NO`: the proxy lost the line or the edge for good,
            // and cannot say whether the server stored it) or the session
            // lost: over, as for any failure.
            Err(e) => Err(Ended::Broken(format!("APPEND to {host}: {e}"))),
        }
    }

    /// The APPEND was answered `APPENDUID` `a`: from now on, that UID of
    /// `host`'s folder names the stored message (the server's record says
    /// which it is), and the message is at no other UID there.
    fn appended_at(&self, host: &str, message: &[u8], a: causeway_imap::Appended, session: u32) {
        let sha256 = causeway_mailserver::content_sha256(message);
        let Some(key) = self.stores.iter().filter(|s| s.host == host).find_map(|s| {
            let m = s.store.messages(&s.user);
            let m = m.iter().find(|m| m.sha256 == sha256)?;
            Some((s.host.clone(), m.uid))
        }) else {
            // Gone again already (another mail client): nothing to judge.
            return;
        };
        self.log.event(
            sim_ms(),
            format!(
                "client {} APPENDUID {} {} for {key:?}",
                self.client, a.validity, a.uid
            ),
        );
        self.log.with(|m| {
            m.imap_append_uid_given += 1;
            m.imap_append_uids.insert(
                (self.client, key.clone()),
                (host.to_owned(), a.validity.get(), a.uid.get()),
            );
        });
        self.uid_names((host, a.validity), a.uid, &key, session);
    }

    /// Checks that a message an `APPENDUID` placed in `folder` under
    /// `validity` is shown at that UID, not at another (invariant 2: mbsync
    /// would take it for new mail, and copy it back).
    pub(super) fn at_append_uid(
        &self,
        (folder, validity): (&str, NonZeroU32),
        uid: NonZeroU32,
        key: &MsgKey,
    ) {
        let given = self.log.with(|m| {
            let (f, v, u) = m.imap_append_uids.get(&(self.client, key.clone()))?;
            if f != folder || *v != validity.get() {
                return None;
            }
            if *u == uid.get() {
                m.imap_append_uid_kept += 1;
            }
            Some(*u)
        });
        if let Some(given) = given.filter(|g| *g != uid.get()) {
            self.log.violation(
                2,
                Some(key.clone()),
                format!(
                    "IMAP UID {uid} of {folder} under UIDVALIDITY {validity} is a message \
                     whose APPEND was answered APPENDUID {validity} {given}"
                ),
            );
        }
    }
}
