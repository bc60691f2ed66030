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
//! has used its tries ([`LoginLimits`]: a burst, then one back every
//! `60 / per_minute` s) is refused by the edge itself with `[LOGIN-DELAY]`, without asking the
//! server, and a log line names it once per lockout. A busy maildrop
//! (`[IN-USE]`) or a server that failed (`[SYS/TEMP]`) proves nothing and
//! counts nothing, and work replayed from the journal (no client) neither
//! asks nor counts: the user's next session must not be delayed because an
//! old password stopped working.

use causeway_net::Instant;
use causeway_proto::{ErrCode, OpError};
use causeway_wire::PublicKey;
use tracing::warn;

use crate::account::Account;
use crate::failures::Failures;

/// The limits (`[edge]` in the configuration file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Wrong passwords an account may be sent in a row, and how fast a
    /// try comes back. Below what servers that lock accounts allow (often
    /// 5 to 10 in a row).
    pub account_burst: u32,
    pub account_per_minute: u32,
    /// The same for a client key, across its accounts: more, so that one
    /// account with a wrong password (locked by the rule above, and then
    /// spending no more) leaves the key's other accounts alone.
    pub client_burst: u32,
    pub client_per_minute: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            account_burst: 5,
            account_per_minute: 2,
            client_burst: 20,
            client_per_minute: 6,
        }
    }
}

/// Accounts and client keys tracked at most.
const MAX_TRACKED: usize = 65_536;

pub(crate) struct Logins {
    clients: Failures<PublicKey>,
    accounts: Failures<Account>,
}

impl Logins {
    pub fn new(l: LoginLimits) -> Self {
        Logins {
            clients: Failures::new(l.client_burst, l.client_per_minute, MAX_TRACKED),
            accounts: Failures::new(l.account_burst, l.account_per_minute, MAX_TRACKED),
        }
    }

    /// New limits (a reload), for every account and key from now on.
    pub fn set_rate(&self, l: &LoginLimits) {
        self.clients.set_rate(l.client_burst, l.client_per_minute);
        self.accounts
            .set_rate(l.account_burst, l.account_per_minute);
    }

    /// May `client` log in to `account` now? The refusal is the answer for
    /// the mail client.
    pub fn check(
        &self,
        session: &str,
        server: &str,
        client: &PublicKey,
        account: &Account,
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
    pub fn answered(&self, client: PublicKey, account: &Account, e: &OpError, now: Instant) {
        if matches!(e.code, None | Some(ErrCode::Auth)) {
            self.accounts.failed(account.clone(), now);
            self.clients.failed(client, now);
        }
    }
}
