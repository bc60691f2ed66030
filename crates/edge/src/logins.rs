//! Failed mail-server logins through the edge, limited per client key and
//! per account.
//!
//! A client key on the allow list may have the edge log in to any account
//! on an allowed server with any password. Without a limit, a stolen key
//! would make the edge a password-guessing tool with its own address, and
//! a client proxy configured with a wrong password, polling every minute,
//! would get the account locked by servers that count failures. So a login
//! the server refuses as a wrong password (`[AUTH]`, or a `-ERR` without a
//! code) counts against the account and against the client key; one that
//! has used its tries ([`BURST`], one back every `60 / PER_MINUTE` s) is
//! refused by the edge itself with `[LOGIN-DELAY]`, without asking the
//! server, and a log line names it once per lockout. A busy maildrop
//! (`[IN-USE]`) or a server that failed (`[SYS/TEMP]`) proves nothing and
//! counts nothing, and work replayed from the journal (no client) neither
//! asks nor counts: the user's next session must not be delayed because an
//! old password stopped working.

use causeway_net::Instant;
use causeway_proto::{ErrCode, OpError};
use causeway_wire::PublicKey;
use tracing::warn;

use crate::failures::Failures;
use crate::maildrop::MaildropKey;

/// Wrong passwords an account may be sent in a row, and how fast a try
/// comes back.
const ACCOUNT_BURST: u32 = 5;
const ACCOUNT_PER_MINUTE: u32 = 2;
/// The same for a client key, across its accounts: more, so that one
/// account with a wrong password (locked by the rule above, and then
/// spending no more) leaves the key's other accounts alone.
const CLIENT_BURST: u32 = 20;
const CLIENT_PER_MINUTE: u32 = 6;
/// Accounts and client keys tracked at most.
const MAX_TRACKED: usize = 65_536;

pub(crate) struct Logins {
    clients: Failures<PublicKey>,
    accounts: Failures<MaildropKey>,
}

impl Default for Logins {
    fn default() -> Self {
        Logins {
            clients: Failures::new(CLIENT_BURST, CLIENT_PER_MINUTE, MAX_TRACKED),
            accounts: Failures::new(ACCOUNT_BURST, ACCOUNT_PER_MINUTE, MAX_TRACKED),
        }
    }
}

impl Logins {
    /// May `client` log in to `account` now? The refusal is the answer for
    /// the mail client.
    pub fn check(
        &self,
        session: &str,
        server: &str,
        client: &PublicKey,
        account: &MaildropKey,
        now: Instant,
    ) -> Result<(), OpError> {
        let (lockout, whose) = match self.accounts.check(account, now) {
            Err(l) => (l, "this account"),
            Ok(()) => match self.clients.check(client, now) {
                Err(l) => (l, "this client proxy"),
                Ok(()) => return Ok(()),
            },
        };
        let secs = lockout.wait.as_secs().max(1);
        if lockout.first {
            warn!(%session, %server, %client, whose, wait_s = secs,
                "not logging in to the mail server: too many wrong passwords in a row for {whose}; \
                 check the password in the client proxy's configuration (or someone with this \
                 client key is guessing)");
        }
        Err(OpError::new(
            Some(ErrCode::LoginDelay),
            format!(
                "The mail server refused too many logins in a row for {whose}; Causeway will try \
                 again in {secs} s. Check the password in the client proxy's configuration."
            ),
        ))
    }

    /// The server answered a login of `client` to `account` with `e`.
    pub fn answered(&self, client: PublicKey, account: &MaildropKey, e: &OpError, now: Instant) {
        if matches!(e.code, None | Some(ErrCode::Auth)) {
            self.accounts.failed(account.clone(), now);
            self.clients.failed(client, now);
        }
    }
}
