//! What every role's file shares: problems reported with their line, and
//! the readers of durations, counts, addresses, keys, secrets (inline, from a
//! file or from the environment), the `[channel]` table and the trust store.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelFile {
    max_frame: Option<Spanned<i64>>,
    zstd_level: Option<Spanned<i64>>,
    bulk_level: Option<Spanned<i64>>,
    handshake_timeout: Option<Spanned<String>>,
    dictionary: Option<Spanned<String>>,
    compression: Option<Spanned<String>>,
}

pub(super) struct Cx<'a> {
    text: &'a str,
    pub(super) base: &'a Path,
    pub(super) problems: Vec<Problem>,
    /// Prefixed to messages about secrets (`server "HOST1": `).
    pub(super) owner: String,
}

/// At most this many unknown keys are reported in one pass.
const MAX_UNKNOWN_KEYS: usize = 32;

impl<'a> Cx<'a> {
    pub(super) fn new(text: &'a str, base: &'a Path) -> Self {
        Cx {
            text,
            base,
            problems: Vec::new(),
            owner: String::new(),
        }
    }
}

impl Cx<'_> {
    /// A journal's file, relative to the configuration's directory: its
    /// directory must exist, and it must not be a directory itself (the
    /// file is created at start when missing).
    pub(super) fn journal_file(&mut self, j: &Spanned<String>) -> PathBuf {
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
    }

    pub(super) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.problems.push(Problem {
            line: Some(line),
            message: message.into(),
        });
    }

    pub(super) fn nowhere(&mut self, message: impl Into<String>) {
        self.problems.push(Problem {
            line: None,
            message: message.into(),
        });
    }

    pub(super) fn toml_error(&mut self, e: &toml::de::Error) {
        let message = e.message().trim().to_owned();
        match e.span() {
            Some(span) => self.at(span, message),
            None => self.nowhere(message),
        }
    }

    /// Deserializes the whole file as `T`. An unknown key is reported and
    /// its line set aside, and the rest read again, so one pass reports
    /// every unknown key along with the other problems.
    pub(super) fn deserialize<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
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

    pub(super) fn duration(
        &mut self,
        v: &Option<Spanned<String>>,
        default: Duration,
        what: &str,
    ) -> Duration {
        let d = self.duration_or_off(v, default, what);
        match v {
            Some(v) if d.is_zero() => {
                self.at(
                    v.span(),
                    format!("{what} is zero; give a positive duration"),
                );
                default
            }
            _ => d,
        }
    }

    /// A duration where zero is allowed and means "off".
    pub(super) fn duration_or_off(
        &mut self,
        v: &Option<Spanned<String>>,
        default: Duration,
        what: &str,
    ) -> Duration {
        let Some(v) = v else { return default };
        parse_duration(v.get_ref()).unwrap_or_else(|e| {
            self.at(v.span(), format!("{what}: {e}"));
            default
        })
    }

    pub(super) fn int(
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

    pub(super) fn count(
        &mut self,
        v: &Option<Spanned<i64>>,
        default: usize,
        min: i64,
        max: i64,
        what: &str,
    ) -> usize {
        self.int(v, default as i64, min, max, what) as usize
    }

    pub(super) fn address(&mut self, v: &Spanned<String>, what: &str) -> String {
        let s = v.get_ref().trim();
        if let Err(e) = check_host_port(s) {
            self.at(v.span(), format!("{what} {s:?}: {e}"));
        }
        s.to_owned()
    }

    pub(super) fn public_key(&mut self, v: &Spanned<String>, what: &str) -> Option<PublicKey> {
        match v.get_ref().parse::<PublicKey>() {
            Ok(k) => Some(k),
            Err(e) => {
                self.at(v.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// Reads a secret from exactly one of its three sources.
    pub(super) fn secret(
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

    pub(super) fn keypair(
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

    pub(super) fn psk(
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

    pub(super) fn channel(&mut self, c: &ChannelFile) -> ChannelConfig {
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
            bulk_level: self.int(
                &c.bulk_level,
                i64::from(d.bulk_level),
                -131_072,
                i64::from(MAX_ZSTD_LEVEL),
                "channel.bulk_level",
            ) as i32,
            dictionary: self.dictionary(&c.dictionary),
            handshake_timeout: self.duration(
                &c.handshake_timeout,
                d.handshake_timeout,
                "channel.handshake_timeout",
            ),
            // Set per channel by the node (only where sessions resume).
            history: d.history,
            first_whole: d.first_whole,
            per_message: self.per_message(&c.compression),
            // The node's own: every channel made from this configuration
            // shares it.
            contexts: d.contexts,
        }
    }

    /// `compression`: `"stream"` (the default: one window across messages)
    /// or `"per-message"` (a frame per message; docs/protocol.md,
    /// "Compression side channel").
    fn per_message(&mut self, v: &Option<Spanned<String>>) -> bool {
        match v.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
            None | Some(("stream", _)) => false,
            Some(("per-message", _)) => true,
            Some((other, span)) => {
                self.at(
                    span,
                    format!(
                        "channel.compression {other:?}: it must be \"stream\" or \"per-message\""
                    ),
                );
                false
            }
        }
    }

    /// A zstd dictionary (from `causeway train-dictionary`). Both ends of a
    /// channel must pin the same file: a mismatch fails every frame.
    pub(super) fn dictionary(&mut self, v: &Option<Spanned<String>>) -> Option<Arc<Vec<u8>>> {
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
    pub(super) fn server_tls(&mut self, v: &Option<Spanned<String>>) -> ServerTls {
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

    /// `timeouts.server_connect`, `server_command`: the edge's and the
    /// relay's waits on a mail server.
    pub(super) fn server_timeouts(
        &mut self,
        connect: &Option<Spanned<String>>,
        command: &Option<Spanned<String>>,
        d: ServerTimeouts,
    ) -> ServerTimeouts {
        ServerTimeouts {
            connect: self.duration(connect, d.connect, "timeouts.server_connect"),
            command: self.duration(command, d.command, "timeouts.server_command"),
        }
    }

    /// An allow list of public keys; `empty` is reported when it is empty.
    pub(super) fn allowed_keys(
        &mut self,
        list: &[Spanned<String>],
        what: &str,
        empty: &str,
    ) -> Vec<PublicKey> {
        if list.is_empty() {
            self.nowhere(empty);
        }
        list.iter()
            .filter_map(|k| self.public_key(k, what))
            .collect()
    }

    /// `allowed_servers`: the `host:port`s a node may reach.
    pub(super) fn allowed_servers(&mut self, list: &[Spanned<String>]) -> Vec<String> {
        list.iter()
            .map(|a| self.address(a, "allowed_servers entry"))
            .collect()
    }

    /// `max_message`: below the channel's frame (a body crosses in one).
    pub(super) fn max_message(
        &mut self,
        v: &Option<Spanned<i64>>,
        default: usize,
        channel: &ChannelConfig,
    ) -> usize {
        let fits = default
            .min(channel.max_frame.saturating_sub(1 << 20))
            .max(1);
        self.count(v, fits, 1, channel.max_frame as i64, "max_message")
    }

    pub(super) fn shutdown_deadline(&mut self, v: &Option<Spanned<String>>) -> Duration {
        self.duration(v, DEFAULT_SHUTDOWN_DEADLINE, "shutdown_deadline")
    }

    pub(super) fn listen(&mut self, v: &Spanned<String>) -> String {
        let s = v.get_ref().trim();
        if s.parse::<SocketAddr>().is_err() {
            self.at(
                v.span(),
                format!("listen {s:?} is not an IP address and port (e.g. \"0.0.0.0:7000\", \"[::]:7000\")"),
            );
        }
        s.to_owned()
    }
}

/// Checks `host:port` (IPv6 in brackets) without resolving it.
pub(super) fn check_host_port(s: &str) -> Result<(), String> {
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
