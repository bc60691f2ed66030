//! The client proxy's file (`role = "client"`): the loopback listener and
//! local login, the edge and its key, and the user information (one
//! `[[server]]` per mail server, credentials included).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use causeway_client::{ClientConfig, Prefetch, Timeouts};
use causeway_proto::Secret;
use causeway_proto::user::{INBOX, Protocol, Route, ServerSpec, TlsMode, UserInfo};
use serde::Deserialize;
use toml::Spanned;

use super::common::{ChannelFile, Cx};

/// The defaults when a `[[server]]` names no port: (plain or STARTTLS,
/// implicit TLS) per protocol.
const POP3_PORTS: (u16, u16) = (110, 995);
const IMAP_PORTS: (u16, u16) = (143, 993);

#[derive(Debug)]
pub struct ClientSettings {
    /// The delete journal's file (opened at start, not when checking).
    /// Without one the proxy asks the edge for every DELE.
    pub journal: Option<PathBuf>,
    pub shutdown_deadline: Duration,
    pub config: ClientConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientFile {
    #[allow(dead_code)]
    role: String,
    listen: Spanned<String>,
    imap_listen: Option<Spanned<String>>,
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
    journal: Option<Spanned<String>>,
    #[serde(default)]
    server: Vec<ServerEntry>,
    #[serde(default)]
    channel: ChannelFile,
    #[serde(default)]
    timeouts: ClientTimeoutsFile,
    #[serde(default)]
    prefetch: PrefetchFile,
}

/// `[prefetch]`: bodies streamed before the mail client asks (bytes).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PrefetchFile {
    enabled: Option<bool>,
    budget: Option<Spanned<i64>>,
    max_message: Option<Spanned<i64>>,
    keep: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    name: Spanned<String>,
    host: Spanned<String>,
    port: Option<Spanned<i64>>,
    protocol: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    user: Spanned<String>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    relay: Option<Spanned<String>>,
    folder: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClientTimeoutsFile {
    edge_connect: Option<Spanned<String>>,
    welcome: Option<Spanned<String>>,
    request: Option<Spanned<String>>,
    ping_interval: Option<Spanned<String>>,
    quit: Option<Spanned<String>>,
    client_idle: Option<Spanned<String>>,
    imap_idle: Option<Spanned<String>>,
    imap_recheck: Option<Spanned<String>>,
    resume: Option<Spanned<String>>,
}

impl Cx<'_> {
    /// A mail client's listener: an IP address and port on loopback.
    fn loopback(&mut self, v: &Spanned<String>, name: &str, example: &str) -> String {
        let listen = v.get_ref().trim().to_owned();
        match listen.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            Ok(_) => self.at(
                v.span(),
                format!("{name} {listen:?} is not a loopback address: other machines could read this user's mail through it"),
            ),
            Err(_) => self.at(
                v.span(),
                format!("{name} {listen:?} is not an IP address and port (e.g. \"{example}\")"),
            ),
        }
        listen
    }

    pub(super) fn client(&mut self, f: ClientFile) -> Option<ClientSettings> {
        let listen = self.loopback(&f.listen, "listen", "127.0.0.1:1110");
        let imap_listen = f
            .imap_listen
            .as_ref()
            .map(|l| self.loopback(l, "imap_listen", "127.0.0.1:1143"));
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
            ping_interval: self.duration(
                &t.ping_interval,
                d.ping_interval,
                "timeouts.ping_interval",
            ),
            quit: self.duration(&t.quit, d.quit, "timeouts.quit"),
            client_idle: self.duration(&t.client_idle, d.client_idle, "timeouts.client_idle"),
            imap_idle: self.duration(&t.imap_idle, d.imap_idle, "timeouts.imap_idle"),
            imap_recheck: self.duration(&t.imap_recheck, d.imap_recheck, "timeouts.imap_recheck"),
            resume: self.duration_or_off(&t.resume, d.resume, "timeouts.resume"),
        };
        let channel = self.channel(&f.channel);
        let prefetch = self.prefetch(&f.prefetch);
        let shutdown_deadline = self.shutdown_deadline(&f.shutdown_deadline);
        let config = ClientConfig {
            listen,
            imap_listen,
            user,
            password: Secret::new(password?.into_inner()),
            edge,
            edge_key: edge_key?,
            keypair: keypair?,
            psk,
            servers,
            channel,
            timeouts,
            prefetch,
            journal: None,
            #[cfg(feature = "broken-variants")]
            broken: None,
        };
        let journal = f.journal.as_ref().map(|j| self.journal_file(j));
        if self.problems.is_empty() {
            if let Err(e) = config.validate() {
                self.nowhere(e);
            }
        }
        Some(ClientSettings {
            journal,
            shutdown_deadline,
            config,
        })
    }

    fn prefetch(&mut self, p: &PrefetchFile) -> Prefetch {
        let d = Prefetch::default();
        let gib = 1i64 << 30;
        let bytes = |cx: &mut Self, v: &Option<Spanned<i64>>, default: u64, what: &str| {
            cx.count(v, default as usize, 0, 16 * gib, what) as u64
        };
        Prefetch {
            enabled: p.enabled.unwrap_or(d.enabled),
            budget: bytes(self, &p.budget, d.budget, "prefetch.budget"),
            max_message: bytes(self, &p.max_message, d.max_message, "prefetch.max_message"),
            keep: bytes(self, &p.keep, d.keep, "prefetch.keep"),
            max_body: d.max_body,
        }
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
        let protocol = match s.protocol.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("pop3") => Protocol::Pop3,
            Some("imap") => Protocol::Imap,
            Some(other) => {
                let span = s.protocol.as_ref().unwrap().span();
                self.at(
                    span,
                    format!("protocol {other:?}: it must be \"pop3\" or \"imap\""),
                );
                Protocol::Pop3
            }
        };
        let (plain_port, tls_port) = match protocol {
            Protocol::Pop3 => POP3_PORTS,
            Protocol::Imap => IMAP_PORTS,
        };
        // TLS unless the file says `tls = "none"`: implicit TLS on the
        // protocol's TLS port (995, 993) or when the mode says so, else
        // STARTTLS, refusing a server that does not offer it (no silent
        // downgrade).
        let explicit_tls = match s.tls.as_ref().map(|t| t.get_ref().as_str()) {
            None => None,
            Some("none") => Some(TlsMode::None),
            Some("implicit") => Some(TlsMode::Implicit),
            Some("starttls") => Some(TlsMode::Starttls),
            Some(other) => {
                let span = s.tls.as_ref().unwrap().span();
                self.at(
                    span,
                    format!("tls {other:?}: it must be \"none\", \"implicit\" or \"starttls\""),
                );
                Some(TlsMode::Starttls)
            }
        };
        let port = match &s.port {
            None if explicit_tls == Some(TlsMode::Implicit) => tls_port,
            None => plain_port,
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
                    plain_port
                }
                Ok(p) => p,
            },
        };
        let tls = explicit_tls.unwrap_or(if port == tls_port {
            TlsMode::Implicit
        } else {
            TlsMode::Starttls
        });
        let route = match &s.relay {
            None => Route::Direct,
            Some(r) => Route::Relay(r.get_ref().clone()),
        };
        let spec = ServerSpec {
            name: s.name.get_ref().clone(),
            protocol,
            host: s.host.get_ref().clone(),
            port,
            tls,
            user: s.user.get_ref().clone(),
            password: Secret::new(password?.into_inner()),
            route,
            folder: s
                .folder
                .as_ref()
                .map_or_else(|| INBOX.to_owned(), |f| f.get_ref().clone()),
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
            } else if e.contains("folder") {
                s.folder.as_ref().map_or(s.name.span(), |f| f.span())
            } else {
                s.name.span()
            };
            self.at(span, e);
        }
        Some(spec)
    }
}
