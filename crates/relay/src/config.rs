//! The relay's settings, as a plain struct (the binary parses TOML into it).

use std::time::Duration;

use causeway_upstream::{ServerTimeouts, ServerTls};
use causeway_wire::{ChannelConfig, Keypair, PublicKey};

#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub keypair: Keypair,
    /// Edges allowed to open links (KK: both keys pinned).
    pub allowed_edges: Vec<PublicKey>,
    /// `host:port` of the mail servers edges may reach through us. Nothing
    /// else: the relay is not an open proxy.
    pub allowed_servers: Vec<String>,
    /// Channel limits and the handshake timeout.
    pub channel: ChannelConfig,
    pub timeouts: RelayTimeouts,
    /// Links served at once; more are refused with `[SYS/TEMP]`.
    pub max_links: usize,
    /// Largest message fetched from a server. Keep it below the channel's
    /// `max_frame`: a body travels to the edge in one frame.
    pub max_message: usize,
    /// TLS to mail servers: the system trust store, plus `ca_file` if set.
    /// The default loads the system store on first use; a binary should set
    /// `ServerTls::load(&TlsSettings { ca_file })?` at startup, so a bad
    /// `ca_file` or an empty store stops it with a clear error.
    pub tls: ServerTls,
    /// A deliberately broken behaviour, for the simulation's bug hunts only.
    #[cfg(feature = "broken-variants")]
    pub broken: Option<crate::broken::Broken>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayTimeouts {
    /// For the edge's `Open` after the handshake, and for each send.
    pub open: Duration,
    /// A link with no frame for this long is dead: the server session is
    /// ended with QUIT. The edge's NOOPs keep a working link busier than this.
    pub link_idle: Duration,
    pub server: ServerTimeouts,
}

impl Default for RelayTimeouts {
    fn default() -> Self {
        Self {
            open: Duration::from_secs(30),
            link_idle: Duration::from_secs(180),
            server: ServerTimeouts::default(),
        }
    }
}

impl RelayConfig {
    /// Defaults for everything but the identity; allow lists empty.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            allowed_edges: Vec::new(),
            allowed_servers: Vec::new(),
            channel: ChannelConfig::default(),
            timeouts: RelayTimeouts::default(),
            max_links: 256,
            max_message: causeway_wire::DEFAULT_MAX_FRAME - (1 << 20),
            tls: ServerTls::default(),
            #[cfg(feature = "broken-variants")]
            broken: None,
        }
    }
}

causeway_net::broken_switch!(RelayConfig, crate::broken::Broken);
