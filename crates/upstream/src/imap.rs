//! One logged-in IMAP session with a mail server: connect, TLS, LOGIN,
//! SELECT of the folder with its listing, then peeked bodies, read marks and
//! deletes by UID, then LOGOUT.
//!
//! The IMAP twin of [`crate::pop3::ServerSession`], with the same policy:
//! a bounded connect, TLS as the server's [`TlsMode`] says (implicit, or a
//! strict STARTTLS that never falls back to clear text), and every failure
//! turned into an [`OpError`] a mail client can classify: a refused
//! password is `[AUTH]`, a server that is down or busy `[SYS/TEMP]`, a
//! server that cannot do what the rules need (no STARTTLS, no UIDPLUS)
//! `[SYS/PERM]`.
//!
//! What the rules need from IMAP is in [`causeway_imap::command`]: bodies
//! are fetched with `BODY.PEEK[]`, the read mark is its own `UID STORE`,
//! and a delete expunges exactly the UIDs it names.
//!
//! The operations return [`ImapError`], so that a caller can tell a refusal
//! (the server answered; the session goes on) from a lost session;
//! [`ImapSession::error`] words either for the mail client.

use std::num::NonZeroU32;

use causeway_imap::imap_types::search::SearchKey;
use causeway_imap::{Appended, Folder, ImapClient, ImapError, Timeouts};
use causeway_net::Env;
use causeway_proto::user::{ServerSpec, TlsMode};
use causeway_proto::{ErrCode, OpError};

use crate::connect::{ServerTimeouts, connect};
use crate::tls::{ServerStream, ServerTls};

/// A failure, worded with the server's name and address, and classified
/// for the mail client.
fn failure(spec_name: &str, address: &str, e: &ImapError) -> OpError {
    let code = if e.is_authentication() {
        ErrCode::Auth
    } else if e.is_transient() {
        ErrCode::SysTemp
    } else {
        ErrCode::SysPerm
    };
    OpError::new(
        Some(code),
        format!("mail server {spec_name} ({address}): {e}"),
    )
}

/// Folders named at most in [`folders_hint`].
const HINT_FOLDERS: usize = 20;

/// "; the server's folders: ..." for an error about a folder, the first
/// [`HINT_FOLDERS`] names (each cut to 64 characters) and how many more.
fn folders_hint(names: &[String]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(HINT_FOLDERS)
        .map(|n| format!("{:?}", n.chars().take(64).collect::<String>()))
        .collect();
    let more = names.len().saturating_sub(HINT_FOLDERS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "; the server's folders: {}{more} (the entry's `folder` must be one of them)",
        shown.join(", ")
    )
}

pub struct ImapSession<E: Env> {
    client: ImapClient<E, ServerStream<E::Stream>>,
    spec_name: String,
    address: String,
}

impl<E: Env> ImapSession<E> {
    /// Connects to `spec`'s server (TLS as `spec.tls` says, certificates
    /// checked with `tls`), logs in and selects `spec.folder`, listing it.
    ///
    /// The password is only ever sent over TLS unless `spec.tls` is
    /// [`TlsMode::None`].
    pub async fn open(
        env: &E,
        spec: &ServerSpec,
        tls: &ServerTls,
        timeouts: ServerTimeouts,
        max_message: usize,
    ) -> Result<Self, OpError> {
        let address = spec.address();
        let imap = Timeouts {
            greeting: timeouts.command,
            command: timeouts.command,
        };
        let fail = |e: ImapError| failure(&spec.name, &address, &e);
        let stream = connect(env, spec, tls, timeouts, |stream| async {
            let clear = ImapClient::start(env.clone(), stream, imap, max_message)
                .await
                .map_err(fail)?;
            let stream = clear.starttls().await.map_err(fail)?;
            Ok((stream, Vec::new()))
        })
        .await?;
        let mut client = if spec.tls == TlsMode::Starttls {
            ImapClient::after_starttls(env.clone(), stream, imap, max_message)
        } else {
            ImapClient::start(env.clone(), stream, imap, max_message)
                .await
                .map_err(fail)?
        };
        if let Err(e) = client.log_in(&spec.user, spec.password.expose()).await {
            // Refused but still talking: end with LOGOUT, so the server
            // sees a clean end rather than a dropped connection.
            if matches!(e, ImapError::Refused { .. } | ImapError::NoLogin) {
                let _ = client.logout().await;
            }
            return Err(fail(e));
        }
        let mut session = Self {
            client,
            spec_name: spec.name.clone(),
            address,
        };
        if let Err(e) = session.client.select(&spec.folder).await {
            let refused = matches!(e, ImapError::Refused { .. });
            let mut e = session.fail(e);
            if refused {
                // Most often a folder name misspelt in the configuration:
                // say which ones there are.
                if let Ok(names) = session.client.folders().await {
                    e.text.push_str(&folders_hint(&names));
                }
                let _ = session.logout().await;
            }
            return Err(e);
        }
        Ok(session)
    }

    fn fail(&self, e: ImapError) -> OpError {
        self.error(&e)
    }

    /// `e` worded with the server's name and address, and classified for
    /// the mail client.
    pub fn error(&self, e: &ImapError) -> OpError {
        failure(&self.spec_name, &self.address, e)
    }

    /// The selected folder: UIDVALIDITY and the listing, kept up to date
    /// with what the server reported since.
    pub fn folder(&self) -> &Folder {
        self.client
            .folder()
            .expect("a session is opened with its folder selected")
    }

    /// The whole message `uid`, fetched without marking it read; `None`
    /// when the server no longer has it.
    pub async fn fetch_body(&mut self, uid: NonZeroU32) -> Result<Option<Vec<u8>>, ImapError> {
        self.client.fetch_body(uid).await
    }

    /// Marks `uids` read: only once the mail client has each whole message.
    pub async fn mark_seen(&mut self, uids: &[NonZeroU32]) -> Result<(), ImapError> {
        self.client.mark_seen(uids).await
    }

    /// Marks `uids` unread, as the mail client asked.
    pub async fn unmark_seen(&mut self, uids: &[NonZeroU32]) -> Result<(), ImapError> {
        self.client.unmark_seen(uids).await
    }

    /// Adds or takes away flags the mail client stored (see
    /// `ImapClient::store_flags`).
    pub async fn store_flags(
        &mut self,
        uids: &[NonZeroU32],
        add: bool,
        flags: &[String],
    ) -> Result<(), ImapError> {
        self.client.store_flags(uids, add, flags).await
    }

    /// The UIDs of the messages one text criterion matches (see
    /// `ImapClient::search`).
    pub async fn search(&mut self, key: SearchKey<'static>) -> Result<Vec<NonZeroU32>, ImapError> {
        self.client.search(key).await
    }

    /// Deletes exactly `uids`; returns those the server expunged.
    pub async fn delete(&mut self, uids: &[NonZeroU32]) -> Result<Vec<NonZeroU32>, ImapError> {
        self.client.delete(uids).await
    }

    /// `APPEND` of `message` to `folder` (see `ImapClient::append`).
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &[String],
        message: &[u8],
    ) -> Result<Option<Appended>, ImapError> {
        self.client.append(folder, flags, message).await
    }

    /// `NOOP`: keeps the session alive and collects the server's news.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        self.client.noop().await
    }

    /// `LOGOUT`: every session ends with it.
    pub async fn logout(self) -> Result<(), OpError> {
        let Self {
            client,
            spec_name,
            address,
        } = self;
        client
            .logout()
            .await
            .map_err(|e| failure(&spec_name, &address, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folders_hint_names_a_few_and_counts_the_rest() {
        let names: Vec<String> = ["Archive", "INBOX", "Sent"].map(String::from).to_vec();
        assert_eq!(
            folders_hint(&names),
            "; the server's folders: \"Archive\", \"INBOX\", \"Sent\" (the entry's `folder` \
             must be one of them)"
        );
        let many: Vec<String> = (0..25).map(|i| format!("F{i}")).collect();
        let hint = folders_hint(&many);
        assert!(hint.contains("\"F19\" and 5 more"), "{hint}");
        assert!(!hint.contains("F20"), "{hint}");
        let long = vec!["x".repeat(1000)];
        assert!(folders_hint(&long).len() < 200);
    }
}
