//! The edge's file (`role = "edge"`): listener, identity, who may connect,
//! which servers and relays it may reach, the crash journal, limits, timeouts.

use std::path::PathBuf;
use std::time::Duration;

use causeway_edge::{EdgeConfig, RelayRef};
use serde::Deserialize;
use toml::Spanned;

use super::common::{ChannelFile, Cx};

/// A loaded edge configuration.
#[derive(Debug)]
pub struct EdgeSettings {
    pub listen: String,
    /// The crash journal's file (opened at start, not when checking);
    /// `None` only when the file says `journal = "memory"`.
    pub journal: Option<PathBuf>,
    pub shutdown_deadline: Duration,
    /// Where the Prometheus scrape endpoint listens (`metrics_listen`);
    /// None: no endpoint (the default).
    pub metrics_listen: Option<String>,
    pub config: EdgeConfig,
}

/// `journal = "memory"`: no crash journal, said explicitly (tests, demos).
const NO_JOURNAL: &str = "memory";
const EXAMPLE_JOURNAL: &str = "/var/lib/causeway-edge/journal.redb";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EdgeFile {
    #[allow(dead_code)]
    role: String,
    listen: Spanned<String>,
    metrics_listen: Option<Spanned<String>>,
    private_key: Option<Spanned<String>>,
    private_key_file: Option<Spanned<String>>,
    private_key_env: Option<Spanned<String>>,
    psk: Option<Spanned<String>>,
    psk_file: Option<Spanned<String>>,
    psk_env: Option<Spanned<String>>,
    #[serde(default)]
    allowed_clients: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_servers: Vec<Spanned<String>>,
    #[serde(default)]
    relay: Vec<RelayEntry>,
    journal: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    max_sessions: Option<Spanned<i64>>,
    max_handshakes: Option<Spanned<i64>>,
    handshake_failures_burst: Option<Spanned<i64>>,
    handshake_failures_per_minute: Option<Spanned<i64>>,
    account_login_failures_burst: Option<Spanned<i64>>,
    account_login_failures_per_minute: Option<Spanned<i64>>,
    client_login_failures_burst: Option<Spanned<i64>>,
    client_login_failures_per_minute: Option<Spanned<i64>>,
    replica_cache_bytes: Option<Spanned<i64>>,
    replica_cache_total_bytes: Option<Spanned<i64>>,
    upload_total_bytes: Option<Spanned<i64>>,
    max_message: Option<Spanned<i64>>,
    shutdown_deadline: Option<Spanned<String>>,
    resume_window: Option<Spanned<String>>,
    resume_per_client: Option<Spanned<i64>>,
    resume_max: Option<Spanned<i64>>,
    #[serde(default)]
    channel: ChannelFile,
    #[serde(default)]
    timeouts: EdgeTimeoutsFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayEntry {
    name: Spanned<String>,
    address: Spanned<String>,
    public_key: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EdgeTimeoutsFile {
    hello: Option<Spanned<String>>,
    client_idle: Option<Spanned<String>>,
    server_connect: Option<Spanned<String>>,
    server_command: Option<Spanned<String>>,
    relay_reply: Option<Spanned<String>>,
    completion_deadline: Option<Spanned<String>>,
    noop_interval: Option<Spanned<String>>,
    retry_min: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
}

impl Cx<'_> {
    pub(super) fn edge(&mut self, f: EdgeFile) -> Option<EdgeSettings> {
        let listen = self.listen(&f.listen);
        let keypair = self.keypair(&f.private_key, &f.private_key_file, &f.private_key_env);
        let psk = self.psk(&f.psk, &f.psk_file, &f.psk_env);
        let allowed_clients = self.allowed_keys(
            &f.allowed_clients,
            "allowed_clients",
            "allowed_clients is empty: no client proxy could connect; add each client's public key (`causeway keygen` prints it)",
        );
        let allowed_servers = self.allowed_servers(&f.allowed_servers);
        let mut relays: Vec<RelayRef> = Vec::new();
        for r in &f.relay {
            let name = r.name.get_ref().trim().to_owned();
            if name.is_empty() || name.len() > 64 {
                self.at(
                    r.name.span(),
                    format!("relay name {name:?} must be 1 to 64 characters"),
                );
            } else if relays.iter().any(|o| o.name == name) {
                self.at(r.name.span(), format!("relay name {name:?} is used twice"));
            }
            let address = self.address(&r.address, "relay address");
            if let Some(public_key) = self.public_key(&r.public_key, "relay public_key") {
                relays.push(RelayRef {
                    name,
                    address,
                    public_key,
                });
            }
        }
        if allowed_servers.is_empty() && relays.is_empty() {
            self.nowhere("neither allowed_servers nor any [[relay]] is set: this edge could reach no mail server");
        }
        let mut config = EdgeConfig::new(keypair?);
        let t = &f.timeouts;
        let d = config.timeouts;
        config.allowed_clients = allowed_clients;
        config.psk = psk;
        config.allowed_servers = allowed_servers;
        config.relays = relays;
        config.tls = self.server_tls(&f.ca_file);
        config.max_sessions = self.count(
            &f.max_sessions,
            config.max_sessions,
            1,
            1 << 20,
            "max_sessions",
        );
        let a = config.admission;
        config.admission.max_handshakes = self.count(
            &f.max_handshakes,
            a.max_handshakes,
            1,
            1 << 20,
            "max_handshakes",
        );
        config.admission.failures_burst = self.count(
            &f.handshake_failures_burst,
            a.failures_burst as usize,
            1,
            1 << 20,
            "handshake_failures_burst",
        ) as u32;
        config.admission.failures_per_minute = self.count(
            &f.handshake_failures_per_minute,
            a.failures_per_minute as usize,
            1,
            60_000,
            "handshake_failures_per_minute",
        ) as u32;
        let l = config.logins;
        config.logins.account_burst = self.count(
            &f.account_login_failures_burst,
            l.account_burst as usize,
            1,
            1 << 20,
            "account_login_failures_burst",
        ) as u32;
        config.logins.account_per_minute = self.count(
            &f.account_login_failures_per_minute,
            l.account_per_minute as usize,
            1,
            60_000,
            "account_login_failures_per_minute",
        ) as u32;
        config.logins.client_burst = self.count(
            &f.client_login_failures_burst,
            l.client_burst as usize,
            1,
            1 << 20,
            "client_login_failures_burst",
        ) as u32;
        config.logins.client_per_minute = self.count(
            &f.client_login_failures_per_minute,
            l.client_per_minute as usize,
            1,
            60_000,
            "client_login_failures_per_minute",
        ) as u32;
        config.replica_cache_bytes = self.count(
            &f.replica_cache_bytes,
            config.replica_cache_bytes,
            0,
            1 << 40,
            "replica_cache_bytes",
        );
        config.replica_cache_total_bytes = self.count(
            &f.replica_cache_total_bytes,
            config.replica_cache_total_bytes,
            0,
            1 << 40,
            "replica_cache_total_bytes",
        );
        config.upload_total_bytes = self.count(
            &f.upload_total_bytes,
            config.upload_total_bytes,
            0,
            1 << 40,
            "upload_total_bytes",
        );
        let r = config.resume;
        config.resume.window = self.duration_or_off(&f.resume_window, r.window, "resume_window");
        config.resume.limits.per_client = self.count(
            &f.resume_per_client,
            r.limits.per_client,
            0,
            1 << 20,
            "resume_per_client",
        );
        config.resume.limits.total =
            self.count(&f.resume_max, r.limits.total, 0, 1 << 20, "resume_max");
        config.channel = self.channel(&f.channel);
        config.max_message = self.max_message(&f.max_message, config.max_message, &config.channel);
        config.timeouts.hello = self.duration(&t.hello, d.hello, "timeouts.hello");
        config.timeouts.client_idle =
            self.duration(&t.client_idle, d.client_idle, "timeouts.client_idle");
        config.timeouts.server =
            self.server_timeouts(&t.server_connect, &t.server_command, d.server);
        config.timeouts.relay_reply =
            self.duration(&t.relay_reply, d.relay_reply, "timeouts.relay_reply");
        config.timeouts.completion_deadline = self.duration(
            &t.completion_deadline,
            d.completion_deadline,
            "timeouts.completion_deadline",
        );
        config.timeouts.noop_interval =
            self.duration(&t.noop_interval, d.noop_interval, "timeouts.noop_interval");
        config.timeouts.retry_min = self.duration(&t.retry_min, d.retry_min, "timeouts.retry_min");
        config.timeouts.retry_max = self.duration(&t.retry_max, d.retry_max, "timeouts.retry_max");
        if config.timeouts.retry_min > config.timeouts.retry_max {
            if let Some(v) = &t.retry_min {
                self.at(
                    v.span(),
                    "timeouts.retry_min is longer than timeouts.retry_max",
                );
            } else {
                self.nowhere("timeouts.retry_max is shorter than timeouts.retry_min");
            }
        }
        let journal = match &f.journal {
            None => {
                self.nowhere(format!(
                    "journal: missing. Give the crash journal's file, e.g. journal = \"{EXAMPLE_JOURNAL}\": \
                     without one, deletes the edge acknowledged are lost if it crashes. \
                     To run without one anyway (a test), write journal = \"{NO_JOURNAL}\""
                ));
                None
            }
            Some(j) if j.get_ref() == NO_JOURNAL => None,
            Some(j) => Some(j),
        };
        let journal = journal.map(|j| self.journal_file(j));
        Some(EdgeSettings {
            listen,
            journal,
            shutdown_deadline: self.shutdown_deadline(&f.shutdown_deadline),
            metrics_listen: f.metrics_listen.as_ref().map(|m| self.listen(m)),
            config,
        })
    }
}
