//! A text criterion of the mail client's `SEARCH`, judged where the mail
//! lies.
//!
//! Why near the server: the client proxy holds only the bodies it was
//! streamed, and a search of the mail's text must see every message. An
//! IMAP server has them all and searches them itself (`UID SEARCH`); a
//! POP3 server cannot search, so the worker reads each message of it with
//! `TOP n` (never marked read) and judges it here
//! ([`TextKey::matches`]), one at a time. Either way the line carries one
//! short request and its answer, never a body: the server's own hop pays
//! for the reading, which is what the edge is beside the server for.
//!
//! Like a stored flag a search is no owed work: it changes nothing, so a
//! session lost on the way is opened again and the search goes on, once.

use causeway_net::Env;
use causeway_pop3::Command;
use causeway_pop3::client::parse_number_listing;
use causeway_pop3::search::TextKey;
use causeway_proto::session::MessageId;
use causeway_proto::user::Protocol;
use causeway_proto::{ErrCode, OpError};
use tracing::info;

use super::{WHOLE_MESSAGE, Worker};
use crate::broken::Broken;
use crate::owed::Target;

impl<E: Env> Worker<E> {
    /// The messages of the server session's listing that `key` matches.
    pub(super) async fn search(&mut self, key: TextKey) -> Result<Vec<MessageId>, OpError> {
        if self.spec.protocol == Protocol::Pop3 {
            return self.read_and_search(&key).await;
        }
        let cmd = Command::Xsearch {
            key,
            servers: Vec::new(),
        };
        let r = self.asked_twice(|_| Ok(cmd.clone())).await?;
        let numbers = parse_number_listing(r.body.as_deref().unwrap_or_default())
            .map_err(|e| OpError::new(Some(ErrCode::SysTemp), e.to_string()))?;
        let listed = self.ledger.numbers().in_order();
        Ok(numbers
            .into_iter()
            .filter_map(|n| {
                let i = listed.binary_search_by_key(&n, |(m, _, _)| *m).ok()?;
                let (_, uidl, size) = listed[i];
                Some(MessageId {
                    uidl: uidl.to_owned(),
                    size: size?,
                })
            })
            .collect())
    }

    /// A POP3 server's messages that `key` matches, each read whole and
    /// judged here. A message the server no longer gives (deleted meanwhile)
    /// is not found; a session lost on the way is opened again once, and
    /// the reading goes on by UIDL where it stopped.
    async fn read_and_search(&mut self, key: &TextKey) -> Result<Vec<MessageId>, OpError> {
        if self.upstream.is_none() {
            self.connect().await?;
        }
        let listed: Vec<MessageId> = (self.ledger.numbers().in_order().into_iter())
            .filter_map(|(_, uidl, size)| {
                Some(MessageId {
                    uidl: uidl.to_owned(),
                    size: size?,
                })
            })
            .collect();
        let lines = match self.config().broken(Broken::SearchReadsHeaders) {
            true => 0,
            false => WHOLE_MESSAGE,
        };
        let (mut found, mut octets, mut lost_once) = (Vec::new(), 0u64, false);
        for msg in listed {
            let target = Target::new(&msg.uidl, msg.size);
            let body = loop {
                match self.fetch(&target, lines).await {
                    Ok(body) => break Some(body),
                    // Lost: `fetch` opens a session again.
                    Err(_) if self.upstream.is_none() && !lost_once => lost_once = true,
                    Err(e) if self.upstream.is_none() => return Err(e),
                    Err(_) => break None,
                }
            };
            let Some(body) = body else { continue };
            octets += body.len() as u64;
            if key.matches(&body) {
                found.push(msg);
            }
        }
        info!(session = %self.session, server = %self.spec.name, found = found.len(), octets,
            "searched a POP3 server's mail for the mail client (read whole, not marked read)");
        Ok(found)
    }
}
