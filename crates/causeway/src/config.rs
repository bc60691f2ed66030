//! The configuration files: TOML, one file per node, mapped onto the node
//! crates' config structs.
//!
//! A file says which node it configures with a top-level `role = "edge"`,
//! `"relay"` or `"client"`. Every table refuses keys it does not know.
//! Secrets (private key, pre-shared key, passwords) come from exactly one of
//! `NAME = "..."`, `NAME_file = "/path"` (relative paths are relative to the
//! configuration file; one trailing line end is removed) or
//! `NAME_env = "VARIABLE"`.
//!
//! Loading collects every problem it can find, each with the line of the
//! offending key, so `causeway check-config` can list them all at once.
//! See `docs/configuration.md` for the schema, field by field.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use causeway_client::{ClientConfig, Timeouts};
use causeway_edge::{EdgeConfig, RelayRef};
use causeway_proto::Secret;
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode, UserInfo};
use causeway_relay::RelayConfig;
use causeway_upstream::{ServerTimeouts, ServerTls, TlsSettings};
use causeway_wire::{
    ChannelConfig, Keypair, MAX_FRAME_CEILING, MAX_ZSTD_LEVEL, PrivateKey, Psk, PublicKey,
};
use serde::Deserialize;
use toml::Spanned;

/// How long a node waits, after SIGTERM/SIGINT, for its sessions to finish
/// cleanly before it exits anyway (non-zero).
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every problem found in one file.
#[derive(Debug)]
pub struct Problems {
    pub path: PathBuf,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some(l) => write!(f, "{}:{l}: {}", self.path.display(), p.message)?,
                None => write!(f, "{}: {}", self.path.display(), p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Edge,
    Relay,
    Client,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Edge => "edge",
            Role::Relay => "relay",
            Role::Client => "client",
        })
    }
}

/// A loaded edge configuration.
#[derive(Debug)]
pub struct EdgeSettings {
    pub listen: String,
    /// The crash journal's file (opened at start, not when checking);
    /// `None` only when the file says `journal = "memory"`.
    pub journal: Option<PathBuf>,
    pub shutdown_deadline: Duration,
    pub config: EdgeConfig,
}

/// `journal = "memory"`: no crash journal, said explicitly (tests, demos).
const NO_JOURNAL: &str = "memory";
const EXAMPLE_JOURNAL: &str = "/var/lib/causeway-edge/journal.redb";

#[derive(Debug)]
pub struct RelaySettings {
    pub listen: String,
    pub shutdown_deadline: Duration,
    pub config: RelayConfig,
}

#[derive(Debug)]
pub struct ClientSettings {
    pub shutdown_deadline: Duration,
    pub config: ClientConfig,
}

#[derive(Debug)]
pub enum Settings {
    Edge(EdgeSettings),
    Relay(RelaySettings),
    Client(ClientSettings),
}

impl Settings {
    pub fn role(&self) -> Role {
        match self {
            Settings::Edge(_) => Role::Edge,
            Settings::Relay(_) => Role::Relay,
            Settings::Client(_) => Role::Client,
        }
    }
}

// ---------------------------------------------------------------- file shapes

#[derive(Deserialize)]
struct RoleOnly {
    role: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ChannelFile {
    max_frame: Option<Spanned<i64>>,
    zstd_level: Option<Spanned<i64>>,
    handshake_timeout: Option<Spanned<String>>,
    dictionary: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeFile {
    #[allow(dead_code)]
    role: String,
    listen: Spanned<String>,
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
    replica_cache_bytes: Option<Spanned<i64>>,
    max_message: Option<Spanned<i64>>,
    shutdown_deadline: Option<Spanned<String>>,
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
    server_per_mib: Option<Spanned<String>>,
    relay_reply: Option<Spanned<String>>,
    completion_deadline: Option<Spanned<String>>,
    noop_interval: Option<Spanned<String>>,
    retry_min: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayFile {
    #[allow(dead_code)]
    role: String,
    listen: Spanned<String>,
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
    server_per_mib: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    #[allow(dead_code)]
    role: String,
    listen: Spanned<String>,
    user: Spanned<String>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    edge: Spanned<String>,
    edge_public_key: Spanned<String>,
    private_key: Option<Spanned<String>>,
    private_key_file: Option<Spanned<String>>,
    private_key_env: Option<Spanned<String>>,
    psk: Option<Spanned<String>>,
    psk_file: Option<Spanned<String>>,
    psk_env: Option<Spanned<String>>,
    shutdown_deadline: Option<Spanned<String>>,
    #[serde(default)]
    server: Vec<ServerEntry>,
    #[serde(default)]
    channel: ChannelFile,
    #[serde(default)]
    timeouts: ClientTimeoutsFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    name: Spanned<String>,
    host: Spanned<String>,
    port: Option<Spanned<i64>>,
    tls: Option<Spanned<String>>,
    user: Spanned<String>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    relay: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClientTimeoutsFile {
    edge_connect: Option<Spanned<String>>,
    welcome: Option<Spanned<String>>,
    request: Option<Spanned<String>>,
    per_mib: Option<Spanned<String>>,
    ping_interval: Option<Spanned<String>>,
    quit: Option<Spanned<String>>,
    client_idle: Option<Spanned<String>>,
}

// ------------------------------------------------------------------- loading

/// Reads and checks `path`; every problem found, or the settings.
pub fn load(path: &Path) -> Result<Settings, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| Problems {
        path: path.to_owned(),
        list: vec![Problem {
            line: None,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    let base = path.parent().map(Path::to_owned).unwrap_or_default();
    parse(&text, &base).map_err(|list| Problems {
        path: path.to_owned(),
        list,
    })
}

/// Parses configuration `text`; `base` is where relative `*_file` paths start.
pub fn parse(text: &str, base: &Path) -> Result<Settings, Vec<Problem>> {
    let mut cx = Cx {
        text,
        base,
        problems: Vec::new(),
        owner: String::new(),
    };
    let role = match toml::from_str::<RoleOnly>(text) {
        Err(e) => {
            cx.toml_error(&e);
            return Err(cx.problems);
        }
        Ok(RoleOnly { role: None }) => {
            cx.problems.push(Problem {
                line: None,
                message: "no `role`: the file must say which node it configures, with a \
                          top-level `role = \"edge\"`, `role = \"relay\"` or `role = \"client\"`"
                    .into(),
            });
            return Err(cx.problems);
        }
        Ok(RoleOnly { role: Some(r) }) => match r.get_ref().as_str() {
            Some("edge") => Role::Edge,
            Some("relay") => Role::Relay,
            Some("client") => Role::Client,
            _ => {
                cx.at(
                    r.span(),
                    format!(
                        "role is {}; it must be \"edge\", \"relay\" or \"client\"",
                        r.get_ref()
                    ),
                );
                return Err(cx.problems);
            }
        },
    };
    let settings = match role {
        Role::Edge => cx
            .deserialize::<EdgeFile>()
            .and_then(|f| cx.edge(f).map(Settings::Edge)),
        Role::Relay => cx
            .deserialize::<RelayFile>()
            .and_then(|f| cx.relay(f).map(Settings::Relay)),
        Role::Client => cx
            .deserialize::<ClientFile>()
            .and_then(|f| cx.client(f).map(Settings::Client)),
    };
    match settings {
        Some(s) if cx.problems.is_empty() => Ok(s),
        _ => {
            if cx.problems.is_empty() {
                cx.problems.push(Problem {
                    line: None,
                    message: "the configuration is invalid".into(),
                });
            }
            cx.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(cx.problems)
        }
    }
}

struct Cx<'a> {
    text: &'a str,
    base: &'a Path,
    problems: Vec<Problem>,
    /// Prefixed to messages about secrets (`server "HOST1": `).
    owner: String,
}

/// At most this many unknown keys are reported in one pass.
const MAX_UNKNOWN_KEYS: usize = 32;

impl Cx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.problems.push(Problem {
            line: Some(line),
            message: message.into(),
        });
    }

    fn nowhere(&mut self, message: impl Into<String>) {
        self.problems.push(Problem {
            line: None,
            message: message.into(),
        });
    }

    fn toml_error(&mut self, e: &toml::de::Error) {
        let message = e.message().trim().to_owned();
        match e.span() {
            Some(span) => self.at(span, message),
            None => self.nowhere(message),
        }
    }

    /// Deserializes the whole file as `T`. An unknown key is reported and
    /// its line set aside, and the rest read again, so one pass reports
    /// every unknown key along with the other problems.
    fn deserialize<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let mut text = self.text.to_owned();
        for _ in 0..MAX_UNKNOWN_KEYS {
            match toml::from_str::<T>(&text) {
                Ok(t) => return Some(t),
                Err(e) => {
                    self.toml_error(&e);
                    let span = e.span()?;
                    if !e.message().starts_with("unknown field") {
                        return None;
                    }
                    // Comment the key's line out and try again, unless that
                    // breaks the syntax (a value over several lines).
                    let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
                    text.insert(start, '#');
                    if toml::from_str::<toml::Table>(&text).is_err() {
                        return None;
                    }
                }
            }
        }
        None
    }

    fn duration(&mut self, v: &Option<Spanned<String>>, default: Duration, what: &str) -> Duration {
        let Some(v) = v else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.at(
                    v.span(),
                    format!("{what} is zero; give a positive duration"),
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.at(v.span(), format!("{what}: {e}"));
                default
            }
        }
    }

    fn int(
        &mut self,
        v: &Option<Spanned<i64>>,
        default: i64,
        min: i64,
        max: i64,
        what: &str,
    ) -> i64 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if n < min || n > max {
            self.at(
                v.span(),
                format!("{what} is {n}; it must be between {min} and {max}"),
            );
            return default;
        }
        n
    }

    fn count(
        &mut self,
        v: &Option<Spanned<i64>>,
        default: usize,
        min: i64,
        max: i64,
        what: &str,
    ) -> usize {
        self.int(v, default as i64, min, max, what) as usize
    }

    fn address(&mut self, v: &Spanned<String>, what: &str) -> String {
        let s = v.get_ref().trim();
        if let Err(e) = check_host_port(s) {
            self.at(v.span(), format!("{what} {s:?}: {e}"));
        }
        s.to_owned()
    }

    fn public_key(&mut self, v: &Spanned<String>, what: &str) -> Option<PublicKey> {
        match v.get_ref().parse::<PublicKey>() {
            Ok(k) => Some(k),
            Err(e) => {
                self.at(v.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// Reads a secret from exactly one of its three sources.
    fn secret(
        &mut self,
        name: &str,
        inline: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
        required: bool,
    ) -> Option<Spanned<Vec<u8>>> {
        let given: Vec<&Spanned<String>> = [inline, file, env].into_iter().flatten().collect();
        match given.len() {
            0 => {
                if required {
                    let owner = self.owner.clone();
                    self.nowhere(format!(
                        "{owner}no {name}: set one of `{name}`, `{name}_file` or `{name}_env`"
                    ));
                }
                return None;
            }
            1 => {}
            _ => {
                let owner = self.owner.clone();
                self.at(
                    given[1].span(),
                    format!("{owner}{name} is given more than once: set only one of `{name}`, `{name}_file` or `{name}_env`"),
                );
                return None;
            }
        }
        if let Some(v) = inline {
            return Some(Spanned::new(v.span(), v.get_ref().clone().into_bytes()));
        }
        if let Some(f) = file {
            let path = self.base.join(f.get_ref());
            return match std::fs::read(&path) {
                Ok(mut bytes) => {
                    if bytes.ends_with(b"\n") {
                        bytes.pop();
                        if bytes.ends_with(b"\r") {
                            bytes.pop();
                        }
                    }
                    Some(Spanned::new(f.span(), bytes))
                }
                Err(e) => {
                    let owner = self.owner.clone();
                    self.at(
                        f.span(),
                        format!("{owner}{name}_file {}: {e}", path.display()),
                    );
                    None
                }
            };
        }
        let v = env.as_ref().expect("one source is set");
        match std::env::var_os(v.get_ref()) {
            Some(value) => Some(Spanned::new(v.span(), value.into_encoded_bytes())),
            None => {
                let owner = self.owner.clone();
                self.at(
                    v.span(),
                    format!(
                        "{owner}{name}_env: the environment variable {} is not set",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn keypair(
        &mut self,
        inline: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
    ) -> Option<Keypair> {
        let s = self.secret("private_key", inline, file, env, true)?;
        let text = String::from_utf8_lossy(s.get_ref()).into_owned();
        match text.parse::<PrivateKey>() {
            Ok(k) => Some(Keypair::from_private(k)),
            Err(e) => {
                // The error names lengths, never the key itself.
                self.at(s.span(), format!("private_key: {e}"));
                None
            }
        }
    }

    fn psk(
        &mut self,
        inline: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
    ) -> Option<Psk> {
        let s = self.secret("psk", inline, file, env, false)?;
        let text = String::from_utf8_lossy(s.get_ref()).into_owned();
        match text.parse::<Psk>() {
            Ok(k) => Some(k),
            Err(e) => {
                self.at(s.span(), format!("psk: {e}"));
                None
            }
        }
    }

    fn channel(&mut self, c: &ChannelFile) -> ChannelConfig {
        let d = ChannelConfig::default();
        ChannelConfig {
            max_frame: self.count(
                &c.max_frame,
                d.max_frame,
                1,
                MAX_FRAME_CEILING as i64,
                "channel.max_frame",
            ),
            zstd_level: self.int(
                &c.zstd_level,
                i64::from(d.zstd_level),
                -131_072,
                i64::from(MAX_ZSTD_LEVEL),
                "channel.zstd_level",
            ) as i32,
            dictionary: self.dictionary(&c.dictionary),
            handshake_timeout: self.duration(
                &c.handshake_timeout,
                d.handshake_timeout,
                "channel.handshake_timeout",
            ),
        }
    }

    /// A zstd dictionary (from `causeway train-dictionary`). Both ends of a
    /// channel must pin the same file: a mismatch fails every frame.
    fn dictionary(&mut self, v: &Option<Spanned<String>>) -> Option<Arc<Vec<u8>>> {
        let v = v.as_ref()?;
        let path = self.base.join(v.get_ref());
        match std::fs::read(&path) {
            Ok(bytes) if !bytes.is_empty() => Some(Arc::new(bytes)),
            Ok(_) => {
                self.at(
                    v.span(),
                    format!("channel.dictionary {} is empty", path.display()),
                );
                None
            }
            Err(e) => {
                self.at(
                    v.span(),
                    format!("channel.dictionary {}: {e}", path.display()),
                );
                None
            }
        }
    }

    /// The trust store for TLS to mail servers: the system's, plus `ca_file`.
    /// With `ca_file` the store is built now, so a bad file is a startup
    /// error with its line; without it the system store is read at the first
    /// TLS connection (a machine without CA certificates can still run a
    /// node whose servers are all plain or behind a relay).
    fn server_tls(&mut self, v: &Option<Spanned<String>>) -> ServerTls {
        let Some(v) = v else {
            return ServerTls::default();
        };
        let settings = TlsSettings {
            ca_file: Some(self.base.join(v.get_ref())),
        };
        match ServerTls::load(&settings) {
            Ok(tls) => tls,
            Err(e) => {
                self.at(v.span(), format!("ca_file: {e}"));
                ServerTls::default()
            }
        }
    }

    fn shutdown_deadline(&mut self, v: &Option<Spanned<String>>) -> Duration {
        self.duration(v, DEFAULT_SHUTDOWN_DEADLINE, "shutdown_deadline")
    }

    fn listen(&mut self, v: &Spanned<String>) -> String {
        let s = v.get_ref().trim();
        if s.parse::<SocketAddr>().is_err() {
            self.at(
                v.span(),
                format!("listen {s:?} is not an IP address and port (e.g. \"0.0.0.0:7000\", \"[::]:7000\")"),
            );
        }
        s.to_owned()
    }

    fn edge(&mut self, f: EdgeFile) -> Option<EdgeSettings> {
        let listen = self.listen(&f.listen);
        let keypair = self.keypair(&f.private_key, &f.private_key_file, &f.private_key_env);
        let psk = self.psk(&f.psk, &f.psk_file, &f.psk_env);
        let allowed_clients: Vec<PublicKey> = f
            .allowed_clients
            .iter()
            .filter_map(|k| self.public_key(k, "allowed_clients"))
            .collect();
        if f.allowed_clients.is_empty() {
            self.nowhere("allowed_clients is empty: no client proxy could connect; add each client's public key (`causeway keygen` prints it)");
        }
        let allowed_servers: Vec<String> = f
            .allowed_servers
            .iter()
            .map(|a| self.address(a, "allowed_servers entry"))
            .collect();
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
        config.replica_cache_bytes = self.count(
            &f.replica_cache_bytes,
            config.replica_cache_bytes,
            0,
            1 << 40,
            "replica_cache_bytes",
        );
        config.channel = self.channel(&f.channel);
        config.max_message = self.count(
            &f.max_message,
            config
                .max_message
                .min(config.channel.max_frame.saturating_sub(1 << 20))
                .max(1),
            1,
            config.channel.max_frame as i64,
            "max_message",
        );
        config.timeouts.hello = self.duration(&t.hello, d.hello, "timeouts.hello");
        config.timeouts.client_idle =
            self.duration(&t.client_idle, d.client_idle, "timeouts.client_idle");
        config.timeouts.server = ServerTimeouts {
            connect: self.duration(
                &t.server_connect,
                d.server.connect,
                "timeouts.server_connect",
            ),
            command: self.duration(
                &t.server_command,
                d.server.command,
                "timeouts.server_command",
            ),
            per_mib: self.duration(
                &t.server_per_mib,
                d.server.per_mib,
                "timeouts.server_per_mib",
            ),
        };
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
        let journal = journal.map(|j| {
            let path = self.base.join(j.get_ref());
            match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => self.at(
                    j.span(),
                    format!(
                        "journal {}: the directory {} does not exist",
                        path.display(),
                        dir.display()
                    ),
                ),
                _ if path.is_dir() => self.at(
                    j.span(),
                    format!("journal {} is a directory; give a file", path.display()),
                ),
                _ => {}
            }
            path
        });
        Some(EdgeSettings {
            listen,
            journal,
            shutdown_deadline: self.shutdown_deadline(&f.shutdown_deadline),
            config,
        })
    }

    fn relay(&mut self, f: RelayFile) -> Option<RelaySettings> {
        let listen = self.listen(&f.listen);
        let keypair = self.keypair(&f.private_key, &f.private_key_file, &f.private_key_env);
        let allowed_edges: Vec<PublicKey> = f
            .allowed_edges
            .iter()
            .filter_map(|k| self.public_key(k, "allowed_edges"))
            .collect();
        if f.allowed_edges.is_empty() {
            self.nowhere(
                "allowed_edges is empty: no edge could connect; add each edge's public key",
            );
        }
        let allowed_servers: Vec<String> = f
            .allowed_servers
            .iter()
            .map(|a| self.address(a, "allowed_servers entry"))
            .collect();
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
        config.max_message = self.count(
            &f.max_message,
            config
                .max_message
                .min(config.channel.max_frame.saturating_sub(1 << 20))
                .max(1),
            1,
            config.channel.max_frame as i64,
            "max_message",
        );
        config.timeouts.open = self.duration(&t.open, d.open, "timeouts.open");
        config.timeouts.link_idle = self.duration(&t.link_idle, d.link_idle, "timeouts.link_idle");
        config.timeouts.server = ServerTimeouts {
            connect: self.duration(
                &t.server_connect,
                d.server.connect,
                "timeouts.server_connect",
            ),
            command: self.duration(
                &t.server_command,
                d.server.command,
                "timeouts.server_command",
            ),
            per_mib: self.duration(
                &t.server_per_mib,
                d.server.per_mib,
                "timeouts.server_per_mib",
            ),
        };
        Some(RelaySettings {
            listen,
            shutdown_deadline: self.shutdown_deadline(&f.shutdown_deadline),
            config,
        })
    }

    fn client(&mut self, f: ClientFile) -> Option<ClientSettings> {
        let listen = f.listen.get_ref().trim().to_owned();
        match listen.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            Ok(_) => self.at(
                f.listen.span(),
                format!("listen {listen:?} is not a loopback address: other machines could read this user's mail through it"),
            ),
            Err(_) => self.at(
                f.listen.span(),
                format!("listen {listen:?} is not an IP address and port (e.g. \"127.0.0.1:1110\")"),
            ),
        }
        let user = f.user.get_ref().clone();
        if user.is_empty() || user.bytes().any(|b| b <= b' ') {
            self.at(
                f.user.span(),
                "user must be non-empty, without spaces or control characters",
            );
        }
        let password = self.secret(
            "password",
            &f.password,
            &f.password_file,
            &f.password_env,
            true,
        );
        if password.as_ref().is_some_and(|p| p.get_ref().is_empty()) {
            self.at(password.as_ref().unwrap().span(), "password is empty");
        }
        let edge = self.address(&f.edge, "edge");
        let edge_key = self.public_key(&f.edge_public_key, "edge_public_key");
        let keypair = self.keypair(&f.private_key, &f.private_key_file, &f.private_key_env);
        let psk = self.psk(&f.psk, &f.psk_file, &f.psk_env);
        let mut servers = Vec::new();
        if f.server.is_empty() {
            self.nowhere("no [[server]]: list at least one mail server");
        }
        for s in &f.server {
            if let Some(spec) = self.server(s) {
                if servers.iter().any(|o: &ServerSpec| o.name == spec.name) {
                    self.at(
                        s.name.span(),
                        format!("server name {:?} is used twice", spec.name),
                    );
                }
                servers.push(spec);
            }
        }
        if self.problems.is_empty() && !servers.is_empty() {
            if let Err(e) = (UserInfo {
                servers: servers.clone(),
            })
            .validate()
            {
                self.nowhere(e);
            }
        }
        let t = &f.timeouts;
        let d = Timeouts::default();
        let timeouts = Timeouts {
            edge_connect: self.duration(&t.edge_connect, d.edge_connect, "timeouts.edge_connect"),
            welcome: self.duration(&t.welcome, d.welcome, "timeouts.welcome"),
            request: self.duration(&t.request, d.request, "timeouts.request"),
            per_mib: self.duration(&t.per_mib, d.per_mib, "timeouts.per_mib"),
            ping_interval: self.duration(
                &t.ping_interval,
                d.ping_interval,
                "timeouts.ping_interval",
            ),
            quit: self.duration(&t.quit, d.quit, "timeouts.quit"),
            client_idle: self.duration(&t.client_idle, d.client_idle, "timeouts.client_idle"),
        };
        let channel = self.channel(&f.channel);
        let shutdown_deadline = self.shutdown_deadline(&f.shutdown_deadline);
        let config = ClientConfig {
            listen,
            user,
            password: Secret::new(password?.into_inner()),
            edge,
            edge_key: edge_key?,
            keypair: keypair?,
            psk,
            servers,
            channel,
            timeouts,
        };
        if self.problems.is_empty() {
            if let Err(e) = config.validate() {
                self.nowhere(e);
            }
        }
        Some(ClientSettings {
            shutdown_deadline,
            config,
        })
    }

    fn server(&mut self, s: &ServerEntry) -> Option<ServerSpec> {
        self.owner = format!("server {:?}: ", s.name.get_ref());
        let password = self.secret(
            "password",
            &s.password,
            &s.password_file,
            &s.password_env,
            true,
        );
        self.owner.clear();
        let port = match &s.port {
            None => 110,
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(0) | Err(_) => {
                    self.at(
                        p.span(),
                        format!(
                            "server {:?}: port {} is not a port (1 to 65535)",
                            s.name.get_ref(),
                            p.get_ref()
                        ),
                    );
                    110
                }
                Ok(p) => p,
            },
        };
        let tls = match s.tls.as_ref().map(|t| t.get_ref().as_str()) {
            None | Some("none") => TlsMode::None,
            Some("implicit") => TlsMode::Implicit,
            Some("starttls") => TlsMode::Starttls,
            Some(other) => {
                let span = s.tls.as_ref().unwrap().span();
                self.at(
                    span,
                    format!("tls {other:?}: it must be \"none\", \"implicit\" or \"starttls\""),
                );
                TlsMode::None
            }
        };
        let route = match &s.relay {
            None => Route::Direct,
            Some(r) => Route::Relay(r.get_ref().clone()),
        };
        let spec = ServerSpec {
            name: s.name.get_ref().clone(),
            protocol: Protocol::Pop3,
            host: s.host.get_ref().clone(),
            port,
            tls,
            user: s.user.get_ref().clone(),
            password: Secret::new(password?.into_inner()),
            route,
        };
        if let Err(e) = spec.validate() {
            // Point at the field the message is about, where we can tell.
            let span = if e.contains("host") {
                s.host.span()
            } else if e.contains("user name") {
                s.user.span()
            } else if e.contains("relay name") {
                s.relay.as_ref().map_or(s.name.span(), |r| r.span())
            } else if e.contains("password") {
                s.password
                    .as_ref()
                    .or(s.password_file.as_ref())
                    .or(s.password_env.as_ref())
                    .map_or(s.name.span(), |p| p.span())
            } else if e.contains("port") {
                s.port.as_ref().map_or(s.name.span(), |p| p.span())
            } else {
                s.name.span()
            };
            self.at(span, e);
        }
        Some(spec)
    }
}

/// Checks `host:port` (IPv6 in brackets) without resolving it.
fn check_host_port(s: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err("is not host:port".into());
    };
    if host.is_empty() || host.bytes().any(|b| b <= b' ') {
        return Err("has no host".into());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 address needs brackets, e.g. [2001:db8::1]:110".into());
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 is not a port".into()),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("port {port:?} is not a number from 1 to 65535")),
    }
}

/// `"90s"`, `"15m"`, `"500ms"`, `"2h"`, `"1m30s"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{s:?} is not a duration (write e.g. \"500ms\", \"30s\", \"15m\", \"2h\", \"1m30s\")"
        )
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let d = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        rest = &rest[unit..];
        total = total.saturating_add(d);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 min").is_err());
    }

    #[test]
    fn missing_role_is_explained() {
        let e = parse("listen = \"1.2.3.4:5\"\n", Path::new(".")).unwrap_err();
        assert!(e[0].message.contains("role"), "{e:?}");
    }

    #[test]
    fn dictionary_and_ca_file_are_loaded_or_reported_with_their_line() {
        let dir = std::env::temp_dir().join(format!("cw-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mail.dict"), b"a dictionary").unwrap();
        let ok = format!(
            "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nallowed_edges = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\n[channel]\ndictionary = \"mail.dict\"\n"
        );
        let Settings::Relay(r) = parse(&ok, &dir).unwrap() else {
            panic!("not a relay")
        };
        assert_eq!(
            r.config.channel.dictionary.as_deref().map(Vec::as_slice),
            Some(&b"a dictionary"[..])
        );
        let bad = format!(
            "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nallowed_edges = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\nca_file = \"missing.pem\"\n[channel]\ndictionary = \"missing.dict\"\n"
        );
        let e = parse(&bad, &dir).unwrap_err();
        let lines: Vec<_> = e.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(6), Some(8)], "{e:#?}");
        assert!(e[0].message.contains("ca_file"), "{e:#?}");
        assert!(e[1].message.contains("channel.dictionary"), "{e:#?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_unknown_key_and_bad_key_has_its_line() {
        let text = format!(
            "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nallowed_edges = [\"nope\"]\nallowd_servers = [\"a:1\"]\nallowed_servers = [\"mail:0\"]\ncolour = 1\n"
        );
        let e = parse(&text, Path::new(".")).unwrap_err();
        let lines: Vec<_> = e.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(4), Some(5), Some(6), Some(7)], "{e:#?}");
        assert!(e[1].message.contains("allowd_servers"), "{e:#?}");
    }

    #[test]
    fn an_edge_needs_a_journal_or_says_it_runs_without() {
        let edge = |journal: &str| {
            format!(
                "role = \"edge\"\nlisten = \"0.0.0.0:7000\"\nprivate_key = \"{KEY}\"\nallowed_clients = [\"{KEY}\"]\nallowed_servers = [\"mail:110\"]\n{journal}"
            )
        };
        let tmp = std::env::temp_dir();
        let e = parse(&edge(""), Path::new(".")).unwrap_err();
        assert!(e[0].message.starts_with("journal: missing"), "{e:#?}");
        let Settings::Edge(s) = parse(&edge("journal = \"memory\"\n"), Path::new(".")).unwrap()
        else {
            panic!("not an edge")
        };
        assert_eq!(s.journal, None);
        let Settings::Edge(s) = parse(&edge("journal = \"edge.redb\"\n"), &tmp).unwrap() else {
            panic!("not an edge")
        };
        assert_eq!(s.journal, Some(tmp.join("edge.redb")));
    }

    #[test]
    fn secrets_come_from_exactly_one_source() {
        let text = format!(
            "role = \"relay\"\nlisten = \"0.0.0.0:7001\"\nprivate_key = \"{KEY}\"\nprivate_key_env = \"X\"\nallowed_edges = [\"{KEY}\"]\nallowed_servers = [\"m:110\"]\n"
        );
        let e = parse(&text, Path::new(".")).unwrap_err();
        assert_eq!(e[0].line, Some(4), "{e:#?}");
        assert!(e[0].message.contains("more than once"));
    }

    #[test]
    fn server_problems_point_at_their_lines_and_never_show_passwords() {
        let text = format!(
            r#"role = "client"
listen = "127.0.0.1:1110"
user = "me"
password = "local-pw"
edge = "edge.example:7000"
edge_public_key = "{KEY}"
private_key = "{KEY}"

[[server]]
name = "A"
host = "mail.example"
port = 0
user = "alice"
password = "pw-one"

[[server]]
name = "A"
host = "mail.example"
user = "alice"
password = "pw-two"
relay = "R1"
"#
        );
        let e = parse(&text, Path::new(".")).unwrap_err();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("pw-one") && !shown.contains("local-pw"),
            "{shown}"
        );
        assert!(
            e.iter()
                .any(|p| p.line == Some(12) && p.message.contains("port")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|p| p.line == Some(17) && p.message.contains("twice")),
            "{e:#?}"
        );
    }
}
