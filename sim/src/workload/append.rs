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

use causeway_net::Env;

use super::imap::Client;
use super::record::{Activity, Appended, Ended};
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
            Ok(()) => {
                self.log.with(|m| m.imap_appends[at].stored = true);
                Ok(())
            }
            // Refused (`NO`: the proxy lost the line or the edge for good,
            // and cannot say whether the server stored it) or the session
            // lost: over, as for any failure.
            Err(e) => Err(Ended::Broken(format!("APPEND to {host}: {e}"))),
        }
    }
}
