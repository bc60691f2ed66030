//! A text criterion of the mail client's `SEARCH`, asked of the server.
//!
//! Why the server searches: the edge holds only the bodies it streamed or
//! fetched, and a search of the mail's text must see every message; the
//! IMAP server has them all and searches where they lie (`UID SEARCH`),
//! which costs the line one short request and answer instead of every
//! body. Like a stored flag it is no owed work: it changes nothing, so a
//! session lost on the way is opened again and asked again, once.

use causeway_net::Env;
use causeway_pop3::Command;
use causeway_pop3::client::parse_number_listing;
use causeway_pop3::search::TextKey;
use causeway_proto::session::MessageId;
use causeway_proto::user::Protocol;
use causeway_proto::{ErrCode, OpError};

use super::Worker;

impl<E: Env> Worker<E> {
    /// The messages of the server session's listing that `key` matches.
    pub(super) async fn search(&mut self, key: TextKey) -> Result<Vec<MessageId>, OpError> {
        if self.spec.protocol == Protocol::Pop3 {
            return Err(OpError::new(
                Some(ErrCode::SysPerm),
                format!(
                    "server {} speaks POP3, which cannot search the text of its mail",
                    self.spec.name
                ),
            ));
        }
        let r = self
            .asked_twice(|_| Ok(Command::Xsearch(key.clone())))
            .await?;
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
}
