//! The edge's settings, as a plain struct (the binary parses TOML into it).

use std::time::Duration;

use causeway_upstream::{RelayAccess, RelayRef, Routes, ServerTimeouts, ServerTls};
use causeway_wire::{ChannelConfig, Keypair, Psk, PublicKey};

use crate::admission::AdmissionLimits;
use crate::journal::JournalConfig;
use crate::logins::LoginLimits;
pub use crate::registry::DetachLimits;

/// `upload_total_bytes` unless configured: eight messages of the largest
/// size APPEND takes (`MAX_APPEND`, 32 MiB) at once.
pub const DEFAULT_UPLOAD_TOTAL_BYTES: usize = 256 << 20;

#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub keypair: Keypair,
    /// Client proxies allowed in (their static keys, learned in XK).
    pub allowed_clients: Vec<PublicKey>,
    /// Mixed into the client handshake when set; clients need the same.
    pub psk: Option<Psk>,
    /// `host:port` of the mail servers this edge may reach directly. Nothing
    /// else: the edge is not an open proxy.
    pub allowed_servers: Vec<String>,
    /// Relays a user's server may be routed through, by name.
    pub relays: Vec<RelayRef>,
    /// Client sessions at once; more are refused.
    pub max_sessions: usize,
    /// Handshakes in progress, and failed handshakes per address (see
    /// `admission.rs`).
    pub admission: AdmissionLimits,
    /// Wrong mail-server passwords per account and per client key (see
    /// `logins.rs`).
    pub logins: LoginLimits,
    /// Body cache per session, in bytes (the lists are never evicted).
    pub replica_cache_bytes: usize,
    /// Body cache of all sessions together, in bytes.
    pub replica_cache_total_bytes: usize,
    /// Messages on their way up to their servers (IMAP APPEND), all
    /// sessions together, in bytes; one over it is refused, not queued.
    pub upload_total_bytes: usize,
    /// For both the client channel and relay links.
    pub channel: ChannelConfig,
    pub timeouts: EdgeTimeouts,
    /// Largest message fetched from a server.
    pub max_message: usize,
    /// The crash journal: where acknowledged work is kept until a server
    /// commits it, so that it survives a crash of the edge (see
    /// `docs/architecture.md`, "Crash safety"). `None` (the default) keeps
    /// it in memory only, which a crash loses: fine for tests, not for
    /// production, which must configure one (e.g. [`JournalConfig::redb`]).
    pub journal: Option<JournalConfig>,
    /// TLS to mail servers reached directly (through a relay, the relay's
    /// own setting applies): the system trust store, plus `ca_file` if set.
    /// The default loads the system store on first use; a binary should set
    /// `ServerTls::load(&TlsSettings { ca_file })?` at startup, so a bad
    /// `ca_file` or an empty store stops it with a clear error.
    pub tls: ServerTls,
    /// How long, and for how many sessions, a cut line leaves a session
    /// waiting for its client proxy to resume it.
    pub resume: ResumeConfig,
    /// A deliberately broken behaviour, for the simulation's bug hunts only.
    #[cfg(feature = "broken-variants")]
    pub broken: Option<crate::broken::Broken>,
}

/// Session resume (see `docs/protocol.md`, "Resume").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeConfig {
    /// How long a session whose line was cut waits, detached, with its
    /// replica and server sessions, for its client proxy to resume it;
    /// zero turns resume off (a cut ends the session at once).
    pub window: Duration,
    /// Sessions that may wait detached: per client key, and in all. One
    /// over either ends as a cut (its server sessions are not held).
    pub limits: DetachLimits,
}

impl Default for ResumeConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10 * 60),
            limits: DetachLimits {
                per_client: 4,
                total: 1024,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeTimeouts {
    /// For the client's `Hello` after the handshake, for each send, and for
    /// the relay's `Opened`. (The handshake itself: `channel.handshake_timeout`.)
    pub hello: Duration,
    /// No frame from the client (Ping included) for this long: the line is
    /// cut.
    pub client_idle: Duration,
    /// Connecting to and talking with mail servers (direct).
    pub server: ServerTimeouts,
    /// One reply through a relay (the relay's own server wait included).
    pub relay_reply: Duration,
    /// How long acknowledged work is retried after the session ended before
    /// the edge gives up (loudly).
    pub completion_deadline: Duration,
    /// An idle server session gets a NOOP this often (keep it below the
    /// server's and the relay's idle timeouts).
    pub noop_interval: Duration,
    /// First wait before retrying a server; doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for EdgeTimeouts {
    fn default() -> Self {
        Self {
            hello: Duration::from_secs(30),
            client_idle: Duration::from_secs(90),
            server: ServerTimeouts::default(),
            relay_reply: Duration::from_secs(180),
            completion_deadline: Duration::from_secs(15 * 60),
            noop_interval: Duration::from_secs(60),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

impl EdgeConfig {
    /// Defaults for everything but the identity; allow lists empty.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            allowed_clients: Vec::new(),
            psk: None,
            allowed_servers: Vec::new(),
            relays: Vec::new(),
            max_sessions: 1024,
            admission: AdmissionLimits::default(),
            logins: LoginLimits::default(),
            replica_cache_bytes: 32 << 20,
            replica_cache_total_bytes: 256 << 20,
            upload_total_bytes: DEFAULT_UPLOAD_TOTAL_BYTES,
            channel: ChannelConfig::default(),
            timeouts: EdgeTimeouts::default(),
            max_message: causeway_wire::DEFAULT_MAX_FRAME - (1 << 20),
            journal: None,
            tls: ServerTls::default(),
            resume: ResumeConfig::default(),
            #[cfg(feature = "broken-variants")]
            broken: None,
        }
    }

    pub(crate) fn relay(&self, name: &str) -> Option<&RelayRef> {
        self.relays.iter().find(|r| r.name == name)
    }

    /// The channel to client proxies: `channel`, keeping the recent
    /// plaintext that primes a resumed session's stream when sessions
    /// resume (see `causeway_wire::history`).
    pub(crate) fn client_channel(&self) -> ChannelConfig {
        self.channel.for_resume(!self.resume.window.is_zero())
    }

    /// How this edge reaches mail servers, directly or through its relays.
    pub(crate) fn routes(&self) -> Routes<'_> {
        let t = &self.timeouts;
        Routes {
            tls: &self.tls,
            timeouts: t.server,
            max_message: self.max_message,
            relays: &self.relays,
            relay_access: RelayAccess {
                keypair: &self.keypair,
                channel: &self.channel,
                connect: t.server.connect,
                open: t.hello,
                reply: t.relay_reply,
            },
        }
    }
}

causeway_net::broken_switch!(EdgeConfig, crate::broken::Broken);
