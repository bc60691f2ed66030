//! Which maildrop a piece of work is for: the account (server address and
//! user name, what a password is for) and, for IMAP, the folder. Work owed
//! to one maildrop is done only in a session of that maildrop, whatever
//! route or password reached it (`crate::maildrop`); the logins' limits
//! count by account (`crate::logins`).

use causeway_proto::user::ServerSpec;

/// A mail server account: what a password is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Account {
    address: String,
    user: String,
}

/// One maildrop: an account's folder (POP3's one maildrop is INBOX).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MaildropKey {
    pub(crate) account: Account,
    folder: String,
}

impl MaildropKey {
    /// `user`'s INBOX on `mail:110`.
    #[cfg(test)]
    pub(crate) fn for_test(user: &str) -> Self {
        MaildropKey {
            account: Account {
                address: "mail:110".into(),
                user: user.into(),
            },
            folder: "INBOX".into(),
        }
    }

    pub(crate) fn of(spec: &ServerSpec) -> Self {
        Self {
            account: Account {
                address: spec.address().to_ascii_lowercase(),
                user: spec.user.clone(),
            },
            folder: spec.folder.clone(),
        }
    }
}
