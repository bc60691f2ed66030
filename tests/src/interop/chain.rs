//! Our three nodes between a real mail client and a real Dovecot:
//!
//! ```text
//! client ── proxy ══[line]══ edge ─────────────────────── Dovecot   (Route::Direct)
//!                              └══[relay_line]══ relay ── Dovecot   (Route::Relay)
//! ```
//!
//! `line` and `relay_line` are cuttable forwarders ([`crate::Forwarder`]).
//! The nodes run as real processes of the `causeway` binary
//! ([`Nodes::Processes`], the default) or as tasks in the test process
//! ([`Nodes::InProcess`], `CAUSEWAY_INTEROP_NODES=inprocess`), which needs
//! no binary and gives the edge's counters for settling.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_client::{ClientConfig, Timeouts, run_client};
use causeway_edge::{EdgeConfig, EdgeState, RelayRef, run_edge};
use causeway_net::{Env, Listener, TokioEnv};
use causeway_proto::Secret;
use causeway_proto::user::{Protocol, Route as ProtoRoute, ServerSpec, TlsMode};
use causeway_relay::{RelayConfig, RelayState, run_relay};
use causeway_wire::Keypair;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::TempDir;
use crate::forwarder::Forwarder;

/// What the mail client presents to the client proxy.
pub const LOCAL_USER: &str = "me";
pub const LOCAL_PASSWORD: &str = "Local-Interop-Pw-4821";
/// The server's name in the client proxy's configuration (UIDL prefix).
pub const SERVER_NAME: &str = "DOVECOT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The edge talks to Dovecot itself.
    Direct,
    /// The edge goes through a relay beside Dovecot.
    Relay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nodes {
    /// `causeway client|edge|relay --config FILE` processes.
    Processes,
    /// `run_client`/`run_edge`/`run_relay` tasks in the test process.
    InProcess,
}

impl Nodes {
    /// `CAUSEWAY_INTEROP_NODES=inprocess|process` (default process).
    pub fn from_env() -> Nodes {
        match std::env::var("CAUSEWAY_INTEROP_NODES").as_deref() {
            Ok("inprocess") => Nodes::InProcess,
            Ok("process") | Err(_) => Nodes::Processes,
            Ok(other) => panic!("CAUSEWAY_INTEROP_NODES={other:?}: use process or inprocess"),
        }
    }
}

/// A child process whose output is kept (for failure reports); killed
/// when dropped.
struct Proc {
    name: String,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(name: &str, program: &PathBuf, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let output = Arc::new(Mutex::new(String::new()));
        let streams: [Box<dyn tokio::io::AsyncRead + Unpin + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let o = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let mut g = o.lock().unwrap();
                    g.push_str(&l);
                    g.push('\n');
                }
            });
        }
        Proc {
            name: name.into(),
            child,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The address the node logged (`listening ... address=...`).
    async fn listening(&mut self) -> String {
        for _ in 0..1500 {
            let out = self.output();
            if let Some(line) = out.lines().find(|l| l.contains("listening")) {
                return line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                    .unwrap_or_else(|| panic!("no address= in {line:?}"))
                    .trim_matches('"')
                    .to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!("{} exited ({status}):\n{}", self.name, self.output());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{} did not say where it listens:\n{}",
            self.name,
            self.output()
        );
    }
}

/// The `causeway` binary: `CAUSEWAY_BIN`, or `causeway` in the target
/// directory this test binary was built into (`cargo test --workspace`
/// builds it); built with `cargo build -p causeway` if missing.
pub fn causeway_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CAUSEWAY_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/interop_x-HASH -> target/debug/causeway
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("the test binary is in target/PROFILE/deps")
        .join("causeway");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!(
            "{} is missing: running `cargo build -p causeway`",
            bin.display()
        );
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "causeway"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p causeway");
        assert!(status.success(), "cargo build -p causeway failed");
        assert!(
            bin.exists(),
            "{} still missing after the build",
            bin.display()
        );
    }
    bin
}

enum Inner {
    Procs(Vec<Proc>),
    InProc {
        stop: watch::Sender<bool>,
        tasks: Vec<JoinHandle<()>>,
        edge: EdgeState,
        relay: RelayState,
    },
}

pub struct Chain {
    /// Where the mail client connects (no TLS), as LOCAL_USER/LOCAL_PASSWORD.
    pub proxy: String,
    /// The bad line: client proxy -> edge (`Dir::Up`) and back.
    pub line: Forwarder,
    /// Edge -> relay (`Dir::Up`) and back; carries nothing on Route::Direct.
    pub relay_line: Forwarder,
    pub nodes: Nodes,
    pub route: Route,
    inner: Inner,
    _dir: TempDir,
}

impl Chain {
    /// Starts relay, edge and client proxy for one Dovecot user at `pop3`.
    pub async fn start(
        nodes: Nodes,
        route: Route,
        pop3: &str,
        user: &str,
        password: &str,
    ) -> Chain {
        match nodes {
            Nodes::Processes => Self::processes(route, pop3, user, password).await,
            Nodes::InProcess => Self::in_process(route, pop3, user, password).await,
        }
    }

    async fn processes(route: Route, pop3: &str, user: &str, password: &str) -> Chain {
        let bin = causeway_bin();
        let dir = TempDir::new("chain");
        let keygen = |name: &str| -> (PathBuf, String) {
            let path = dir.path(&format!("{name}.key"));
            let out = std::process::Command::new(&bin)
                .args(["keygen", "--private-key"])
                .arg(&path)
                .output()
                .expect("run causeway keygen");
            assert!(
                out.status.success(),
                "keygen: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                path,
                String::from_utf8(out.stdout).unwrap().trim().to_owned(),
            )
        };
        let (edge_key, edge_pub) = keygen("edge");
        let (relay_key, relay_pub) = keygen("relay");
        let (client_key, client_pub) = keygen("client");
        let envs = [("RUST_LOG", "info")];
        let write = |name: &str, text: String| -> String {
            let p = dir.path(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };

        let relay_cfg = write(
            "relay.toml",
            format!(
                "role = \"relay\"\nlisten = \"127.0.0.1:0\"\nprivate_key_file = \"{}\"\n\
                 allowed_edges = [\"{edge_pub}\"]\nallowed_servers = [\"{pop3}\"]\n\
                 shutdown_deadline = \"10s\"\n",
                relay_key.display()
            ),
        );
        let mut relay = Proc::spawn("relay", &bin, &["relay", "--config", &relay_cfg], &envs);
        let relay_addr = relay.listening().await;
        let relay_line = Forwarder::start(relay_addr).await;

        // Short retry waits: after a cut the edge redoes owed work quickly.
        let edge_cfg = write(
            "edge.toml",
            format!(
                "role = \"edge\"\nlisten = \"127.0.0.1:0\"\nprivate_key_file = \"{}\"\n\
                 allowed_clients = [\"{client_pub}\"]\nallowed_servers = [\"{pop3}\"]\n\
                 journal = \"{}\"\nshutdown_deadline = \"10s\"\n\n[timeouts]\nretry_min = \"100ms\"\nretry_max = \"1s\"\n\n\
                 [[relay]]\nname = \"R1\"\naddress = \"{}\"\npublic_key = \"{relay_pub}\"\n",
                edge_key.display(),
                dir.path("edge.journal").display(),
                relay_line.addr()
            ),
        );
        let mut edge = Proc::spawn("edge", &bin, &["edge", "--config", &edge_cfg], &envs);
        let edge_addr = edge.listening().await;
        let line = Forwarder::start(edge_addr).await;

        let (host, port) = pop3.rsplit_once(':').unwrap();
        let relay_key_line = match route {
            Route::Direct => "",
            Route::Relay => "relay = \"R1\"\n",
        };
        let client_cfg = write(
            "client.toml",
            format!(
                "role = \"client\"\nlisten = \"127.0.0.1:0\"\nuser = \"{LOCAL_USER}\"\n\
                 password = \"{LOCAL_PASSWORD}\"\nedge = \"{}\"\nedge_public_key = \"{edge_pub}\"\n\
                 private_key_file = \"{}\"\nshutdown_deadline = \"10s\"\n\n\
                 [[server]]\nname = \"{SERVER_NAME}\"\nhost = \"{host}\"\nport = {port}\n\
                 user = \"{user}\"\npassword = \"{password}\"\n{relay_key_line}",
                line.addr(),
                client_key.display()
            ),
        );
        let mut client = Proc::spawn("client", &bin, &["client", "--config", &client_cfg], &envs);
        let proxy = client.listening().await;
        Chain {
            proxy,
            line,
            relay_line,
            nodes: Nodes::Processes,
            route,
            inner: Inner::Procs(vec![relay, edge, client]),
            _dir: dir,
        }
    }

    async fn in_process(route: Route, pop3: &str, user: &str, password: &str) -> Chain {
        let env = TokioEnv::new();
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let bind = |env: TokioEnv| async move {
            let l = env.bind("127.0.0.1:0").await.expect("bind a loopback port");
            let a = l.local_addr().unwrap().to_string();
            (l, a)
        };
        let edge_keys = Keypair::generate(env.rng());
        let relay_keys = Keypair::generate(env.rng());
        let client_keys = Keypair::generate(env.rng());

        let relay = RelayState::new();
        let (relay_l, relay_addr) = bind(env.clone()).await;
        let mut rc = RelayConfig::new(relay_keys.clone());
        rc.allowed_edges = vec![edge_keys.public];
        rc.allowed_servers = vec![pop3.to_owned()];
        let (e, st, rx) = (env.clone(), relay.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let _ = run_relay(e, relay_l, Arc::new(rc), st, rx).await;
        }));
        let relay_line = Forwarder::start(relay_addr).await;

        let edge = EdgeState::new();
        let (edge_l, edge_addr) = bind(env.clone()).await;
        let mut ec = EdgeConfig::new(edge_keys.clone());
        ec.allowed_clients = vec![client_keys.public];
        ec.allowed_servers = vec![pop3.to_owned()];
        ec.relays = vec![RelayRef {
            name: "R1".into(),
            address: relay_line.addr(),
            public_key: relay_keys.public,
        }];
        ec.timeouts.retry_min = Duration::from_millis(100);
        ec.timeouts.retry_max = Duration::from_secs(1);
        let (e, st, rx) = (env.clone(), edge.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let _ = run_edge(e, edge_l, Arc::new(ec), st, rx).await;
        }));
        let line = Forwarder::start(edge_addr).await;

        let (proxy_l, proxy) = bind(env.clone()).await;
        let (host, port) = pop3.rsplit_once(':').unwrap();
        let config = ClientConfig {
            listen: proxy.clone(),
            user: LOCAL_USER.into(),
            password: Secret::new(LOCAL_PASSWORD.as_bytes().to_vec()),
            edge: line.addr(),
            edge_key: edge_keys.public,
            keypair: client_keys,
            psk: None,
            servers: vec![ServerSpec {
                name: SERVER_NAME.into(),
                protocol: Protocol::Pop3,
                host: host.into(),
                port: port.parse().unwrap(),
                tls: TlsMode::None,
                user: user.into(),
                password: Secret::new(password.as_bytes().to_vec()),
                route: match route {
                    Route::Direct => ProtoRoute::Direct,
                    Route::Relay => ProtoRoute::Relay("R1".into()),
                },
            }],
            channel: Default::default(),
            timeouts: Timeouts::default(),
        };
        let (e, rx) = (env.clone(), stop_rx);
        tasks.push(tokio::spawn(async move {
            run_client(e, proxy_l, Arc::new(config), rx)
                .await
                .expect("the client proxy runs");
        }));
        Chain {
            proxy,
            line,
            relay_line,
            nodes: Nodes::InProcess,
            route,
            inner: Inner::InProc {
                stop,
                tasks,
                edge,
                relay,
            },
            _dir: TempDir::new("chain"),
        }
    }

    /// False while the in-process edge or relay still has sessions or owed
    /// work; always true for processes (their state is judged on Dovecot).
    pub fn quiet(&self) -> bool {
        match &self.inner {
            Inner::Procs(_) => true,
            Inner::InProc { edge, relay, .. } => {
                edge.live_sessions()
                    + edge.live_replicas()
                    + edge.pending_work()
                    + relay.live_links()
                    + relay.live_server_sessions()
                    == 0
            }
        }
    }

    /// What the nodes logged (processes), for failure reports.
    pub fn output(&self) -> String {
        match &self.inner {
            Inner::Procs(ps) => ps
                .iter()
                .map(|p| format!("---- {} ----\n{}", p.name, p.output()))
                .collect(),
            Inner::InProc { edge, .. } => format!(
                "in-process: edge sessions {} replicas {} pending {}; sessions {:?}",
                edge.live_sessions(),
                edge.live_replicas(),
                edge.pending_work(),
                edge.sessions()
            ),
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        if let Inner::InProc { stop, tasks, .. } = &self.inner {
            let _ = stop.send(true);
            for t in tasks {
                t.abort();
            }
        }
    }
}
