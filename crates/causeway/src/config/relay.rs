//! The relay's file (`role = "relay"`): listener, identity, which edges may
//! connect, which servers they may reach through it, limits, timeouts.

use std::time::Duration;

use causeway_relay::RelayConfig;
use serde::Deserialize;
use toml::Spanned;

use super::common::{ChannelFile, Cx};

#[derive(Debug)]
pub struct RelaySettings {
    pub listen: String,
    pub shutdown_deadline: Duration,
    /// Where the Prometheus scrape endpoint listens; None: none.
    pub metrics_listen: Option<String>,
    pub config: RelayConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RelayFile {
    #[allow(dead_code)]
    role: String,
    listen: Spanned<String>,
    metrics_listen: Option<Spanned<String>>,
    private_key: Option<Spanned<String>>,
    private_key_file: Option<Spanned<String>>,
    private_key_env: Option<Spanned<String>>,
    #[serde(default)]
    allowed_edges: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_servers: Vec<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    max_links: Option<Spanned<i64>>,
    max_message: Option<Spanned<i64>>,
    shutdown_deadline: Option<Spanned<String>>,
    #[serde(default)]
    channel: ChannelFile,
    #[serde(default)]
    timeouts: RelayTimeoutsFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RelayTimeoutsFile {
    open: Option<Spanned<String>>,
    link_idle: Option<Spanned<String>>,
    server_connect: Option<Spanned<String>>,
    server_command: Option<Spanned<String>>,
}

impl Cx<'_> {
    pub(super) fn relay(&mut self, f: RelayFile) -> Option<RelaySettings> {
        let listen = self.listen(&f.listen);
        let keypair = self.keypair(&f.private_key, &f.private_key_file, &f.private_key_env);
        let allowed_edges = self.allowed_keys(
            &f.allowed_edges,
            "allowed_edges",
            "allowed_edges is empty: no edge could connect; add each edge's public key",
        );
        let allowed_servers = self.allowed_servers(&f.allowed_servers);
        if allowed_servers.is_empty() {
            self.nowhere("allowed_servers is empty: this relay could reach no mail server");
        }
        let mut config = RelayConfig::new(keypair?);
        let t = &f.timeouts;
        let d = config.timeouts;
        config.allowed_edges = allowed_edges;
        config.allowed_servers = allowed_servers;
        config.tls = self.server_tls(&f.ca_file);
        config.max_links = self.count(&f.max_links, config.max_links, 1, 1 << 20, "max_links");
        config.channel = self.channel(&f.channel);
        config.max_message = self.max_message(&f.max_message, config.max_message, &config.channel);
        config.timeouts.open = self.duration(&t.open, d.open, "timeouts.open");
        config.timeouts.link_idle = self.duration(&t.link_idle, d.link_idle, "timeouts.link_idle");
        config.timeouts.server =
            self.server_timeouts(&t.server_connect, &t.server_command, d.server);
        Some(RelaySettings {
            listen,
            shutdown_deadline: self.shutdown_deadline(&f.shutdown_deadline),
            metrics_listen: f.metrics_listen.as_ref().map(|m| self.listen(m)),
            config,
        })
    }
}
