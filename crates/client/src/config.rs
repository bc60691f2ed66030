//! What a client proxy needs to know: who may use it, where the edge is and
//! how to recognise it, the user information it hands the edge, and how long
//! each wait may take.
//!
//! A plain struct; reading it from TOML is the binary's business.

use std::net::SocketAddr;
use std::time::Duration;

use causeway_proto::Secret;
use causeway_proto::user::{INBOX, Protocol, ServerSpec, UserInfo};
use causeway_wire::{ChannelConfig, Keypair, Psk, PublicKey};

/// The IMAP front's own folder for messages moved out of the others
/// (`imap_front::trash`): Thunderbird, Apple Mail and Outlook delete by
/// moving there, and find it by this name or its `\Trash` attribute.
pub const TRASH: &str = "Trash";

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Where the mail client connects: a loopback address, `127.0.0.1:1110`.
    pub listen: String,
    /// Where IMAP mail clients connect (`127.0.0.1:1143`), if anywhere: the
    /// unified mailbox as `INBOX`, and a folder per entry that reads another
    /// folder ([`ClientConfig::imap_folders`], `crate::imap_front`).
    pub imap_listen: Option<String>,
    /// The user name the mail client must present (local; never sent on).
    pub user: String,
    /// The password the mail client must present (local; never sent on).
    pub password: Secret,
    /// The edge's address, `host:port`.
    pub edge: String,
    /// The edge's static key, pinned: the handshake fails unless the peer
    /// proves it holds the private half.
    pub edge_key: PublicKey,
    /// This proxy's own static key pair (its public half is on the edge's
    /// allow list).
    pub keypair: Keypair,
    /// Optional pre-shared key mixed into the handshake (XKpsk3).
    pub psk: Option<Psk>,
    /// The user information: the mail servers, in the order the unified
    /// mailbox numbers them.
    pub servers: Vec<ServerSpec>,
    /// Channel settings; its `handshake_timeout` bounds the Noise handshake.
    pub channel: ChannelConfig,
    pub timeouts: Timeouts,
    /// Which bodies cross the line before the mail client asks.
    pub prefetch: Prefetch,
    /// The delete journal (`crate::deletes`): with it the proxy answers DELE
    /// itself, once the journal holds it durably; without, every DELE waits
    /// for the edge (a turn on the line each).
    pub journal: Option<causeway_store::JournalConfig>,
    /// A deliberately broken behaviour, for the simulation's bug hunts only.
    #[cfg(feature = "broken-variants")]
    pub broken: Option<crate::broken::Broken>,
}

/// Bodies streamed ahead of demand (`crate::prefetch`), and what the proxy
/// keeps between sessions (`crate::mirror`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefetch {
    /// Off: every body crosses the line when the mail client asks for it.
    pub enabled: bool,
    /// Bytes wanted ahead of demand and not yet delivered, at most.
    pub budget: u64,
    /// Larger bodies wait for the mail client's RETR.
    pub max_message: u64,
    /// Bytes of bodies kept between sessions (delivered ones, and those
    /// prefetched or half received when a session ended), shared by all.
    pub keep: u64,
    /// The longest body accepted from the edge.
    pub max_body: u64,
}

impl Default for Prefetch {
    fn default() -> Self {
        Prefetch {
            enabled: true,
            budget: 32 << 20,
            max_message: 4 << 20,
            keep: 64 << 20,
            max_body: causeway_pop3::DEFAULT_MAX_MESSAGE as u64,
        }
    }
}

/// How long each wait may take. Every wait on the network has one.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// Opening the TCP connection to the edge.
    pub edge_connect: Duration,
    /// From `Hello` to `Welcome` at most: the edge logs in to every server
    /// and lists it first, saying `Opening` meanwhile; a silence is cut at
    /// `request`.
    pub welcome: Duration,
    /// The longest silence while waiting for an answer from the edge (a
    /// body of any size may take as long as it keeps arriving), and for
    /// each send; also for each piece of a reply written to the mail client.
    pub request: Duration,
    /// How often to ping the edge while the mail client is idle.
    pub ping_interval: Duration,
    /// From `Quit` to `Bye` at most: the edge commits every server's work
    /// first, saying `Finishing` meanwhile; a silence is cut at `request`.
    pub quit: Duration,
    /// How long a mail client may stay silent before it is disconnected
    /// (RFC 1939 asks for at least ten minutes).
    pub client_idle: Duration,
    /// The same for an IMAP mail client (RFC 3501 asks for at least 30
    /// minutes; the POP3 session behind it is kept alive meanwhile).
    pub imap_idle: Duration,
    /// How often, at most, an IMAP client that stays connected gets the
    /// folder listed again when it asks (NOOP, CHECK, IDLE): new mail and
    /// mail gone elsewhere. Each time costs a new session with the edge
    /// (a login to every server).
    pub imap_recheck: Duration,
    /// After a cut, how long the proxy keeps reconnecting to resume its
    /// edge session while the mail client waits (zero: never; the mail
    /// client gets the error at once). The edge keeps a session for its own
    /// resume window (10 minutes by default).
    pub resume: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            edge_connect: Duration::from_secs(20),
            welcome: Duration::from_secs(120),
            request: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            quit: Duration::from_secs(120),
            client_idle: Duration::from_secs(600),
            imap_idle: Duration::from_secs(30 * 60),
            imap_recheck: Duration::from_secs(60),
            resume: Duration::from_secs(300),
        }
    }
}

impl ClientConfig {
    /// The channel to the edge: `channel`, keeping the recent plaintext
    /// that primes a resumed session's stream when sessions resume (see
    /// `causeway_wire::history`).
    pub(crate) fn edge_channel(&self) -> ChannelConfig {
        self.channel.for_resume(!self.timeouts.resume.is_zero())
    }

    /// The user information handed to the edge in `Hello`.
    pub fn user_info(&self) -> UserInfo {
        UserInfo {
            servers: self.servers.clone(),
        }
    }

    /// Checks what would otherwise fail later and less clearly; the error
    /// names the setting.
    pub fn validate(&self) -> Result<(), String> {
        for (name, listen) in [
            ("listen", Some(&self.listen)),
            ("imap_listen", self.imap_listen.as_ref()),
        ] {
            let Some(listen) = listen else { continue };
            match listen.parse::<SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => {}
                Ok(a) => {
                    return Err(format!(
                        "{name} address {a} is not a loopback address: other machines could use this proxy's mail servers"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "{name} address {listen:?} is not an IP address and port"
                    ));
                }
            }
        }
        if self.user.is_empty() || self.user.bytes().any(|b| b <= b' ') {
            return Err(
                "the local user name must be non-empty, without spaces or control characters"
                    .into(),
            );
        }
        if self.password.is_empty() {
            return Err("the local password must not be empty".into());
        }
        if self.edge.is_empty() {
            return Err("the edge address is empty".into());
        }
        self.user_info().validate()?;
        if let Some(s) = self
            .servers
            .iter()
            .find(|s| !s.folder.eq_ignore_ascii_case(INBOX) && s.name.eq_ignore_ascii_case(INBOX))
        {
            return Err(format!(
                "server {}: an entry that reads the folder {:?} is shown to IMAP mail clients \
                 as a folder of its name, and INBOX is the folder of every entry that reads an \
                 INBOX: give it another name",
                s.name, s.folder
            ));
        }
        if let Some(s) = self
            .servers
            .iter()
            .find(|s| !s.folder.eq_ignore_ascii_case(INBOX) && s.name.eq_ignore_ascii_case(TRASH))
        {
            return Err(format!(
                "server {}: an entry that reads the folder {:?} is shown to IMAP mail clients \
                 as a folder of its name, and {TRASH} is the client proxy's own folder for \
                 messages moved there: give it another name",
                s.name, s.folder
            ));
        }
        let t = &self.timeouts;
        let zero = [
            ("edge_connect", t.edge_connect),
            ("welcome", t.welcome),
            ("request", t.request),
            ("ping_interval", t.ping_interval),
            ("quit", t.quit),
            ("client_idle", t.client_idle),
            ("imap_idle", t.imap_idle),
            ("imap_recheck", t.imap_recheck),
        ]
        .into_iter()
        .find(|(_, d)| d.is_zero());
        if let Some((name, _)) = zero {
            return Err(format!("timeout {name} is zero"));
        }
        Ok(())
    }
}

impl ClientConfig {
    /// The folders the IMAP front shows: `INBOX`, the unified mailbox of
    /// every entry that reads an INBOX (every POP3 entry among them), then
    /// one folder per entry that reads another folder, named as the entry
    /// (its `name`: `[A-Za-z0-9_-]`, so it needs no quoting and holds no
    /// hierarchy delimiter).
    ///
    /// Last, [`TRASH`]: the proxy's own folder for messages the client
    /// moves there (`imap_front::trash`), which stay on their servers until
    /// expunged from it.
    pub fn imap_folders(&self) -> Vec<&str> {
        let mut folders = vec![INBOX];
        folders.extend(
            self.servers
                .iter()
                .filter(|s| !s.folder.eq_ignore_ascii_case(INBOX))
                .map(|s| s.name.as_str()),
        );
        folders.push(TRASH);
        folders
    }

    /// The entry whose server keeps what an IMAP client APPENDs to the
    /// front's `folder`: the entry that folder shows, or for `INBOX` the one
    /// IMAP entry that reads an INBOX. `Err`: why there is none, fit to
    /// show the user (`Trash` is the proxy's own; POP3 cannot store; the
    /// unified INBOX of several IMAP entries names no one server).
    pub fn imap_append_target(&self, folder: &str) -> Result<&ServerSpec, String> {
        if folder == TRASH {
            return Err(format!(
                "{TRASH} is the client proxy's own folder, on no server: it cannot keep a new \
                 message"
            ));
        }
        if folder == INBOX {
            let reading: Vec<&ServerSpec> = self
                .servers
                .iter()
                .filter(|s| s.folder.eq_ignore_ascii_case(INBOX))
                .collect();
            let imap: Vec<&ServerSpec> = reading
                .iter()
                .copied()
                .filter(|s| s.protocol == Protocol::Imap)
                .collect();
            return match imap[..] {
                [one] => Ok(one),
                [] => Err(
                    "no server behind INBOX speaks IMAP, and POP3 cannot store a message".into(),
                ),
                _ => Err(format!(
                    "INBOX shows {} IMAP servers; store the message in the folder of one \
                     (an entry with its own folder, such as folder = \"Sent\")",
                    imap.len()
                )),
            };
        }
        let s = self
            .servers
            .iter()
            .find(|s| s.name == folder && !s.folder.eq_ignore_ascii_case(INBOX))
            .ok_or_else(|| {
                format!(
                    "there is no folder {folder:?}: to keep this mail on a server, give the \
                     client proxy an entry named {folder:?} that reads the server's folder"
                )
            })?;
        Ok(s)
    }

    /// The IMAP front's folder that shows the messages of the entry named
    /// `server` ([`ClientConfig::imap_folders`]); `None` for a name no entry
    /// has.
    pub fn imap_folder_of(&self, server: &str) -> Option<&str> {
        let s = self.servers.iter().find(|s| s.name == server)?;
        Some(if s.folder.eq_ignore_ascii_case(INBOX) {
            INBOX
        } else {
            s.name.as_str()
        })
    }

    /// Whether the entry named `server` keeps flags on its server (IMAP),
    /// where the IMAP front's stored `\Flagged`, `\Answered`, `\Draft`
    /// and keywords go; a POP3 server has none, and they stay in the
    /// front's UID book.
    pub fn keeps_flags(&self, server: &str) -> bool {
        self.servers
            .iter()
            .any(|s| s.name == server && s.protocol == Protocol::Imap)
    }
}

causeway_net::broken_switch!(ClientConfig, crate::broken::Broken);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use causeway_net::EnvRng;
    use causeway_proto::user::{Protocol, Route, TlsMode};

    pub fn config() -> ClientConfig {
        let rng = EnvRng::from_seed([7; 32]);
        ClientConfig {
            listen: "127.0.0.1:1110".into(),
            imap_listen: None,
            user: "me".into(),
            password: Secret::new(b"local pw".to_vec()),
            edge: "edge.example:7000".into(),
            edge_key: Keypair::generate(&rng).public,
            keypair: Keypair::generate(&rng),
            psk: None,
            servers: vec![ServerSpec {
                name: "HOST1".into(),
                protocol: Protocol::Pop3,
                host: "mail.example".into(),
                port: 110,
                tls: TlsMode::None,
                user: "alice".into(),
                password: Secret::new(b"server pw".to_vec()),
                route: Route::Direct,
                folder: causeway_proto::user::INBOX.into(),
            }],
            channel: ChannelConfig::default(),
            timeouts: Timeouts::default(),
            prefetch: Prefetch::default(),
            journal: None,
            #[cfg(feature = "broken-variants")]
            broken: None,
        }
    }

    #[test]
    fn a_good_config_passes_and_problems_are_named() {
        assert_eq!(config().validate(), Ok(()));
        let mut c = config();
        c.listen = "0.0.0.0:110".into();
        assert!(c.validate().unwrap_err().contains("loopback"));
        let mut c = config();
        c.password = Secret::default();
        assert!(c.validate().unwrap_err().contains("local password"));
        let mut c = config();
        c.servers.clear();
        assert!(c.validate().unwrap_err().contains("no mail server"));
        let mut c = config();
        c.timeouts.ping_interval = Duration::ZERO;
        assert!(c.validate().unwrap_err().contains("ping_interval"));
    }

    #[test]
    fn an_append_goes_to_the_entry_a_folder_shows_or_the_one_imap_inbox() {
        let entry = |name: &str, protocol, folder: &str| ServerSpec {
            name: name.into(),
            protocol,
            folder: folder.into(),
            ..config().servers[0].clone()
        };
        let mut c = config();
        c.servers = vec![
            entry("HOST1", Protocol::Pop3, INBOX),
            entry("Sent", Protocol::Imap, "Sent"),
        ];
        assert_eq!(c.imap_append_target("Sent").unwrap().name, "Sent");
        assert!(c.imap_append_target(INBOX).unwrap_err().contains("POP3"));
        assert!(
            c.imap_append_target(TRASH)
                .unwrap_err()
                .contains("own folder")
        );
        assert!(
            c.imap_append_target("HOST1")
                .unwrap_err()
                .contains("no folder")
        );
        c.servers.push(entry("work", Protocol::Imap, INBOX));
        assert_eq!(c.imap_append_target(INBOX).unwrap().name, "work");
        c.servers.push(entry("home", Protocol::Imap, "inbox"));
        assert!(
            c.imap_append_target(INBOX)
                .unwrap_err()
                .contains("2 IMAP servers")
        );
    }

    #[test]
    fn each_entry_that_reads_another_folder_is_an_imap_folder_of_its_name() {
        let mut c = config();
        let first = c.servers[0].clone();
        let entry = |name: &str, folder: &str| ServerSpec {
            name: name.into(),
            protocol: Protocol::Imap,
            folder: folder.into(),
            ..first.clone()
        };
        let (archive, lists) = (
            entry("work-archive", "Archive"),
            entry("rust", "Lists/rust"),
        );
        c.servers.extend([entry("HOST2", "inbox"), archive, lists]);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.imap_folders(), ["INBOX", "work-archive", "rust", "Trash"]);
        let of = |s| c.imap_folder_of(s);
        assert_eq!(
            [of("HOST1"), of("HOST2"), of("rust"), of("none")],
            [Some("INBOX"), Some("INBOX"), Some("rust"), None]
        );
        // A folder named INBOX, or Trash, would be two folders at once.
        c.servers.push(entry("Inbox", "Archive"));
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("server Inbox") && e.contains("another name"),
            "{e}"
        );
        c.servers.pop();
        c.servers.push(entry("trash", "Archive"));
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("server trash") && e.contains("another name"),
            "{e}"
        );
        // An entry of that name that reads an INBOX shows no folder.
        c.servers.pop();
        c.servers.push(entry("Trash", "INBOX"));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", config());
        assert!(
            !shown.contains("local pw") && !shown.contains("server pw"),
            "{shown}"
        );
    }
}
