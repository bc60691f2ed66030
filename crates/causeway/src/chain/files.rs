//! Each node's configuration file, as an operator would write it: TOML with
//! every setting the chain chooses spelled out, private keys in files of
//! mode 0600 beside it (or inline, for a chain that never touches a disk:
//! the simulation), a dictionary in a file both ends name.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use causeway_proto::user::{INBOX, Protocol, TlsMode};
use causeway_wire::{ChannelConfig, Keypair};

use super::{ChainSpec, Keys, RELAY_NAME, TempDir};

/// A TOML string literal (quoted and escaped).
fn s(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A duration the way the configuration reads them (`"250ms"`).
fn d(t: Duration) -> String {
    s(&format!("{}ms", t.as_millis()))
}

/// A TOML list of strings.
fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(s).collect();
    format!("[{}]", items.join(", "))
}

/// Where a node's private key and the chain's dictionary go.
#[derive(Clone, Copy)]
pub enum Secrets<'a> {
    /// In files of this directory (mode 0600 for keys).
    Files(&'a TempDir),
    /// In the configuration text itself (no dictionary possible).
    Inline,
}

/// The `private_key...` line: a file (written once per directory) or inline.
fn private_key(secrets: Secrets<'_>, name: &str, keys: &Keypair) -> io::Result<String> {
    match secrets {
        Secrets::Inline => Ok(format!(
            "private_key = {}",
            s(&keys.private.expose_base64())
        )),
        Secrets::Files(dir) => {
            let p = dir.join(&format!("{name}.key"));
            if !p.exists() {
                crate::keys::write_private(&p, keys).map_err(io::Error::other)?;
            }
            Ok(format!("private_key_file = {}", path(&p)))
        }
    }
}

fn path(p: &Path) -> String {
    s(&p.display().to_string())
}

fn channel(out: &mut String, c: &ChannelConfig, secrets: Secrets<'_>) -> io::Result<()> {
    let _ = writeln!(out, "\n[channel]");
    let _ = writeln!(out, "max_frame = {}", c.max_frame);
    let _ = writeln!(out, "zstd_level = {}", c.zstd_level);
    let _ = writeln!(out, "bulk_level = {}", c.bulk_level);
    let _ = writeln!(out, "handshake_timeout = {}", d(c.handshake_timeout));
    if c.per_message {
        let _ = writeln!(out, "compression = \"per-message\"");
    }
    if let Some(dict) = &c.dictionary {
        let Secrets::Files(dir) = secrets else {
            return Err(io::Error::other("a dictionary needs the chain's directory"));
        };
        let p = dir.join("channel.dict");
        if !p.exists() {
            std::fs::write(&p, dict.as_slice())?;
        }
        let _ = writeln!(out, "dictionary = {}", path(&p));
    }
    Ok(())
}

/// The relay's file: it lets the edge in and reaches the relayed servers.
pub fn relay(spec: &ChainSpec, keys: &Keys, secrets: Secrets<'_>) -> io::Result<String> {
    let t = &spec.relay_timeouts;
    let mut out = String::new();
    let _ = writeln!(out, "role = \"relay\"");
    let _ = writeln!(out, "listen = {}", s(&spec.relay_listen));
    if let Some(m) = &spec.metrics_listen {
        let _ = writeln!(out, "metrics_listen = {}", s(m));
    }
    let _ = writeln!(out, "{}", private_key(secrets, "relay", &keys.relay)?);
    let _ = writeln!(
        out,
        "allowed_edges = {}",
        list([keys.edge.public.to_string().as_str()])
    );
    let relayed = spec.servers.iter().filter(|m| m.via_relay);
    let _ = writeln!(
        out,
        "allowed_servers = {}",
        list(relayed.map(|m| m.address.as_str()))
    );
    let _ = writeln!(out, "shutdown_deadline = {}", d(spec.shutdown_deadline));
    channel(&mut out, &spec.channel, secrets)?;
    let _ = writeln!(out, "\n[timeouts]");
    let _ = writeln!(out, "open = {}", d(t.open));
    let _ = writeln!(out, "link_idle = {}", d(t.link_idle));
    let _ = writeln!(out, "server_connect = {}", d(t.server.connect));
    let _ = writeln!(out, "server_command = {}", d(t.server.command));
    Ok(out)
}

/// The edge's file: it lets the client proxy in, reaches the direct servers
/// itself and the others through the relay at `relay` (when there is one).
pub fn edge(
    spec: &ChainSpec,
    keys: &Keys,
    relay: Option<&str>,
    secrets: Secrets<'_>,
) -> io::Result<String> {
    let t = &spec.edge_timeouts;
    let mut out = String::new();
    let _ = writeln!(out, "role = \"edge\"");
    let _ = writeln!(out, "listen = {}", s(&spec.edge_listen));
    if let Some(m) = &spec.metrics_listen {
        let _ = writeln!(out, "metrics_listen = {}", s(m));
    }
    let _ = writeln!(out, "{}", private_key(secrets, "edge", &keys.edge)?);
    let clients: Vec<String> = std::iter::once(&keys.client.public)
        .chain(&spec.more_clients)
        .map(|k| k.to_string())
        .collect();
    let _ = writeln!(
        out,
        "allowed_clients = {}",
        list(clients.iter().map(String::as_str))
    );
    let direct = spec.servers.iter().filter(|m| !m.via_relay);
    let _ = writeln!(
        out,
        "allowed_servers = {}",
        list(direct.map(|m| m.address.as_str()))
    );
    let journal = match secrets {
        Secrets::Files(dir) if spec.journal => path(&dir.join("edge.journal")),
        Secrets::Inline if spec.journal => {
            return Err(io::Error::other("a journal needs the chain's directory"));
        }
        _ => s("memory"),
    };
    let _ = writeln!(out, "journal = {journal}");
    let _ = writeln!(out, "max_sessions = {}", spec.edge_max_sessions);
    let _ = writeln!(out, "upload_total_bytes = {}", spec.edge_upload_total_bytes);
    let r = &spec.edge_resume;
    let _ = writeln!(out, "resume_window = {}", d(r.window));
    let _ = writeln!(out, "resume_per_client = {}", r.limits.per_client);
    let _ = writeln!(out, "resume_max = {}", r.limits.total);
    let _ = writeln!(out, "shutdown_deadline = {}", d(spec.shutdown_deadline));
    channel(&mut out, &spec.channel, secrets)?;
    let _ = writeln!(out, "\n[timeouts]");
    let _ = writeln!(out, "hello = {}", d(t.hello));
    let _ = writeln!(out, "client_idle = {}", d(t.client_idle));
    let _ = writeln!(out, "server_connect = {}", d(t.server.connect));
    let _ = writeln!(out, "server_command = {}", d(t.server.command));
    let _ = writeln!(out, "relay_reply = {}", d(t.relay_reply));
    let _ = writeln!(out, "completion_deadline = {}", d(t.completion_deadline));
    let _ = writeln!(out, "noop_interval = {}", d(t.noop_interval));
    let _ = writeln!(out, "retry_min = {}", d(t.retry_min));
    let _ = writeln!(out, "retry_max = {}", d(t.retry_max));
    if let Some(address) = relay {
        let _ = writeln!(out, "\n[[relay]]");
        let _ = writeln!(out, "name = {}", s(RELAY_NAME));
        let _ = writeln!(out, "address = {}", s(address));
        let _ = writeln!(out, "public_key = {}", s(&keys.relay.public.to_string()));
    }
    Ok(out)
}

/// The client proxy's file: the local login, the edge at `edge`, and the
/// user information (every server, credentials and route).
pub fn client(
    spec: &ChainSpec,
    keys: &Keys,
    edge: &str,
    secrets: Secrets<'_>,
) -> io::Result<String> {
    let t = &spec.client_timeouts;
    let mut out = String::new();
    let _ = writeln!(out, "role = \"client\"");
    let _ = writeln!(out, "listen = {}", s(&spec.client_listen));
    if let Some(imap) = &spec.client_imap_listen {
        let _ = writeln!(out, "imap_listen = {}", s(imap));
    }
    let _ = writeln!(out, "user = {}", s(&spec.local_user));
    let _ = writeln!(out, "password = {}", s(&spec.local_password));
    let _ = writeln!(out, "edge = {}", s(edge));
    let _ = writeln!(
        out,
        "edge_public_key = {}",
        s(&keys.edge.public.to_string())
    );
    let _ = writeln!(out, "{}", private_key(secrets, "client", &keys.client)?);
    if let Secrets::Files(dir) = secrets {
        if spec.client_journal {
            let _ = writeln!(out, "journal = {}", path(&dir.join("client.journal")));
        }
    }
    let _ = writeln!(out, "shutdown_deadline = {}", d(spec.shutdown_deadline));
    channel(&mut out, &spec.channel, secrets)?;
    let _ = writeln!(out, "\n[timeouts]");
    let _ = writeln!(out, "edge_connect = {}", d(t.edge_connect));
    let _ = writeln!(out, "welcome = {}", d(t.welcome));
    let _ = writeln!(out, "request = {}", d(t.request));
    let _ = writeln!(out, "ping_interval = {}", d(t.ping_interval));
    let _ = writeln!(out, "quit = {}", d(t.quit));
    let _ = writeln!(out, "client_idle = {}", d(t.client_idle));
    let _ = writeln!(out, "imap_idle = {}", d(t.imap_idle));
    let _ = writeln!(out, "imap_recheck = {}", d(t.imap_recheck));
    let _ = writeln!(out, "resume = {}", d(t.resume));
    let _ = writeln!(out, "\n[prefetch]\nenabled = {}", spec.prefetch);
    for m in &spec.servers {
        let (host, port) = m.address.rsplit_once(':').ok_or_else(|| {
            io::Error::other(format!(
                "server {}: {:?} is not host:port",
                m.name, m.address
            ))
        })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let _ = writeln!(out, "\n[[server]]");
        let _ = writeln!(out, "name = {}", s(&m.name));
        let _ = writeln!(out, "host = {}", s(host));
        let _ = writeln!(out, "port = {port}");
        if m.protocol == Protocol::Imap {
            let _ = writeln!(out, "protocol = \"imap\"");
        }
        let tls = match m.tls {
            TlsMode::None => "none",
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
        };
        let _ = writeln!(out, "tls = {}", s(tls));
        let _ = writeln!(out, "user = {}", s(&m.user));
        let _ = writeln!(out, "password = {}", s(&m.password));
        if m.via_relay {
            let _ = writeln!(out, "relay = {}", s(RELAY_NAME));
        }
        if m.folder != INBOX {
            let _ = writeln!(out, "folder = {}", s(&m.folder));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use causeway_net::EnvRng;
    use causeway_proto::user::Route;

    use super::*;
    use crate::chain::MailServer;
    use crate::config::{self, Settings};

    fn spec() -> ChainSpec {
        let mut spec = ChainSpec {
            servers: vec![
                MailServer {
                    name: "DIRECT".into(),
                    address: "mail.example:995".into(),
                    user: "alice".into(),
                    password: "p\"w with \\ quote".into(),
                    protocol: Protocol::Pop3,
                    tls: TlsMode::Implicit,
                    via_relay: false,
                    folder: INBOX.into(),
                },
                MailServer {
                    name: "BEHIND".into(),
                    address: "[2001:db8::1]:110".into(),
                    user: "bob".into(),
                    password: "pw2".into(),
                    protocol: Protocol::Imap,
                    tls: TlsMode::None,
                    via_relay: true,
                    folder: "Archive/2024 \"old\"".into(),
                },
            ],
            edge_max_sessions: 77,
            edge_upload_total_bytes: 12_345,
            ..ChainSpec::default()
        };
        spec.edge_timeouts.retry_min = Duration::from_millis(250);
        spec.client_timeouts.welcome = Duration::from_secs(7);
        spec.relay_timeouts.link_idle = Duration::from_secs(33);
        spec.edge_resume.window = Duration::from_secs(42);
        spec.edge_resume.limits.per_client = 3;
        spec.client_timeouts.resume = Duration::ZERO;
        spec
    }

    fn parse(text: io::Result<String>) -> Settings {
        config::parse(&text.unwrap(), Path::new(".")).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    #[test]
    fn the_files_parse_into_the_chain_that_was_asked_for() {
        let spec = ChainSpec {
            journal: false,
            ..spec()
        };
        let keys = Keys::generate(&EnvRng::from_seed([5; 32]));
        let Settings::Relay(r) = parse(relay(&spec, &keys, Secrets::Inline)) else {
            panic!("not a relay")
        };
        assert_eq!(r.config.keypair.public, keys.relay.public);
        assert_eq!(r.config.allowed_edges, vec![keys.edge.public]);
        assert_eq!(r.config.allowed_servers, vec!["[2001:db8::1]:110"]);
        assert_eq!(r.config.timeouts, spec.relay_timeouts);

        let edge_text = edge(&spec, &keys, Some("relay.example:7001"), Secrets::Inline);
        let Settings::Edge(e) = parse(edge_text) else {
            panic!("not an edge")
        };
        assert_eq!(e.journal, None, "no disk, no journal");
        assert_eq!(e.config.allowed_clients, vec![keys.client.public]);
        assert_eq!(e.config.allowed_servers, vec!["mail.example:995"]);
        assert_eq!(e.config.max_sessions, 77);
        assert_eq!(e.config.upload_total_bytes, 12_345);
        assert_eq!(e.config.resume, spec.edge_resume);
        assert_eq!(e.config.timeouts, spec.edge_timeouts);
        let relay = &e.config.relays[0];
        assert_eq!(
            (
                relay.name.as_str(),
                relay.address.as_str(),
                relay.public_key
            ),
            (RELAY_NAME, "relay.example:7001", keys.relay.public)
        );

        let Settings::Client(c) = parse(client(&spec, &keys, "edge.example:7000", Secrets::Inline))
        else {
            panic!("not a client")
        };
        let c = c.config;
        assert_eq!(c.edge_key, keys.edge.public);
        assert_eq!(c.keypair.public, keys.client.public);
        assert_eq!(c.timeouts.welcome, Duration::from_secs(7));
        assert_eq!(c.timeouts.resume, Duration::ZERO);
        assert_eq!(c.servers[0].password.expose(), b"p\"w with \\ quote");
        assert_eq!(c.servers[0].tls, TlsMode::Implicit);
        assert_eq!(c.servers[1].host, "2001:db8::1");
        assert_eq!(c.servers[1].route, Route::Relay(RELAY_NAME.into()));
        assert_eq!(c.servers[0].folder, INBOX);
        assert_eq!(c.servers[1].folder, "Archive/2024 \"old\"");
    }

    #[test]
    fn with_a_directory_keys_journal_and_dictionary_are_files() {
        let rng = EnvRng::from_seed([6; 32]);
        let dir = TempDir::new(&rng, "chain-files").unwrap();
        let mut spec = spec();
        spec.channel.dictionary = Some(Arc::new(b"a shared dictionary".to_vec()));
        let keys = Keys::generate(&rng);
        let text = edge(&spec, &keys, None, Secrets::Files(&dir)).unwrap();
        assert!(!text.contains(&keys.edge.private.expose_base64()));
        let Settings::Edge(e) = config::parse(&text, dir.path()).unwrap() else {
            panic!("not an edge")
        };
        assert_eq!(e.journal, Some(dir.join("edge.journal")));
        assert_eq!(e.config.keypair.public, keys.edge.public);
        assert_eq!(
            e.config.channel.dictionary.as_deref(),
            Some(&b"a shared dictionary".to_vec())
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("edge.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Without a directory there is nowhere to put them.
        assert!(edge(&spec, &keys, None, Secrets::Inline).is_err());
    }
}
