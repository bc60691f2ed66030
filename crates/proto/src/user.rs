//! The user information: which mail servers one client session uses, how to
//! reach each, and with which credentials.
//!
//! It is set in advance in the client proxy's configuration and handed to the
//! edge once per session, inside the encrypted channel. The edge validates it
//! before acting on any of it: names route requests, so they must be unique and
//! plain; strings that end up on a POP3 command line must not smuggle CR/LF.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// At most this many servers per session (a unified mailbox of more is not a
/// use case, and each costs the edge a server session).
pub const MAX_SERVERS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub servers: Vec<ServerSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// The name requests are routed by, e.g. `HOST1`; also the UIDL prefix the
    /// mail client sees.
    pub name: String,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: String,
    pub password: Secret,
    pub route: Route,
    /// The IMAP folder this entry reads, [`INBOX`] unless the configuration
    /// names another; POP3 has only its one maildrop, so [`INBOX`] there.
    /// Last, so that a journal header written before it existed reads as
    /// one with [`INBOX`] appended (see the edge's journal).
    pub folder: String,
}

/// The folder every account has (RFC 3501 §5.1), and the only one POP3 has.
pub const INBOX: &str = "INBOX";

/// What the mail server speaks. The mail client always speaks POP3 to the
/// client proxy; with `Imap` the edge reads the server's folder (INBOX
/// unless the entry names another) over IMAP and serves it as a POP3
/// maildrop (`causeway_upstream::as_pop3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    Pop3,
    Imap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsMode {
    /// Plain TCP (only sensible on a trusted segment, e.g. relay beside server).
    None,
    /// TLS from the first byte (POP3S, port 995).
    Implicit,
    /// Plain greeting, then `STLS`.
    Starttls,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// The edge talks to the server itself.
    Direct,
    /// The edge goes through the relay of this name (from the edge's config).
    Relay(String),
}

impl UserInfo {
    /// Checks everything the edge will rely on; the error says what is wrong
    /// with which server, for the person who wrote the configuration.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("the user information lists no mail server".into());
        }
        if self.servers.len() > MAX_SERVERS {
            return Err(format!(
                "the user information lists {} mail servers; at most {MAX_SERVERS} are allowed",
                self.servers.len()
            ));
        }
        for (i, s) in self.servers.iter().enumerate() {
            s.validate()?;
            if self.servers[..i].iter().any(|o| o.name == s.name) {
                return Err(format!("server name {:?} is used twice", s.name));
            }
        }
        Ok(())
    }
}

impl ServerSpec {
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty()
            || n.len() > 32
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "server name {n:?} must be 1 to 32 characters of A-Z, a-z, 0-9, '-' or '_'"
            ));
        }
        if self.host.is_empty() || self.host.len() > 253 || self.host.bytes().any(|b| b <= b' ') {
            return Err(format!(
                "server {n}: host {:?} is not a host name or address",
                self.host
            ));
        }
        if self.port == 0 {
            return Err(format!("server {n}: port 0 is not a port"));
        }
        let line_safe = |v: &[u8]| {
            !v.is_empty()
                && v.len() <= 255
                && !v.iter().any(|b| *b == b'\r' || *b == b'\n' || *b == 0)
        };
        if !line_safe(self.user.as_bytes()) || self.user.contains(' ') {
            return Err(format!(
                "server {n}: the user name must be 1 to 255 bytes without spaces, CR, LF or NUL"
            ));
        }
        if !line_safe(self.password.expose()) {
            return Err(format!(
                "server {n}: the password must be 1 to 255 bytes without CR, LF or NUL"
            ));
        }
        if self.protocol == Protocol::Pop3 && self.folder != INBOX {
            return Err(format!(
                "server {n}: a POP3 server has one maildrop; folder {:?} needs protocol \"imap\"",
                self.folder
            ));
        }
        // On the IMAP command line it is a quoted string or a literal, so
        // any bytes but these are safe; real folder names are short.
        if !line_safe(self.folder.as_bytes()) {
            return Err(format!(
                "server {n}: the folder name must be 1 to 255 bytes without CR, LF or NUL"
            ));
        }
        if let Route::Relay(r) = &self.route {
            if r.is_empty() || r.len() > 64 {
                return Err(format!("server {n}: relay name {r:?} is empty or too long"));
            }
        }
        Ok(())
    }

    /// `host:port`, the form allow lists and `Env::connect` use.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn spec(name: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            protocol: Protocol::Pop3,
            host: "mail.example.org".into(),
            port: 110,
            tls: TlsMode::None,
            user: "alice".into(),
            password: Secret::new(b"secret".to_vec()),
            route: Route::Direct,
            folder: INBOX.into(),
        }
    }

    #[test]
    fn valid_user_info_passes() {
        let u = UserInfo {
            servers: vec![spec("HOST1"), spec("HOST2")],
        };
        assert_eq!(u.validate(), Ok(()));
    }

    #[test]
    fn each_problem_is_named() {
        let dup = UserInfo {
            servers: vec![spec("A"), spec("A")],
        };
        assert!(dup.validate().unwrap_err().contains("used twice"));
        assert!(
            UserInfo { servers: vec![] }
                .validate()
                .unwrap_err()
                .contains("no mail server")
        );
        let mut s = spec("bad name");
        assert!(s.validate().unwrap_err().contains("server name"));
        s = spec("H");
        s.password = Secret::new(b"pw\r\nDELE 1".to_vec());
        let e = s.validate().unwrap_err();
        assert!(e.contains("password") && !e.contains("DELE"), "{e}");
        s = spec("H");
        s.user = "a b".into();
        assert!(s.validate().unwrap_err().contains("user name"));
        s = spec("H");
        s.port = 0;
        assert!(s.validate().unwrap_err().contains("port"));
        s = spec("H");
        s.folder = "Sent".into();
        assert!(
            s.validate()
                .unwrap_err()
                .contains("needs protocol \"imap\"")
        );
        s.protocol = Protocol::Imap;
        assert_eq!(s.validate(), Ok(()));
        s.folder = "Sent\r\nA9 DELETE INBOX".into();
        assert!(s.validate().unwrap_err().contains("folder name"));
    }

    #[test]
    fn address_brackets_ipv6() {
        let mut s = spec("H");
        assert_eq!(s.address(), "mail.example.org:110");
        s.host = "::1".into();
        assert_eq!(s.address(), "[::1]:110");
    }
}
