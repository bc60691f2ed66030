//! The alternative operators reach for today: `ssh -C -L`, a compressing,
//! encrypted port forward from the user's machine to one near the server.
//!
//! A real OpenSSH pair on loopback: `sshd` in debug mode (`-d`: it serves
//! one connection and exits, so the CPU of everything it ran is known when
//! it is reaped) with a host key, an authorised key and a configuration of
//! its own in a temporary directory; `ssh -C -N -L` with the matching key.
//! Between them the same counting [`Forwarder`] that measures Causeway's
//! line counts the ssh connection's bytes and turns, paced like Causeway's
//! line when a figure emulates a slow one. The mail client speaks POP3 to
//! ssh's forwarded port, as a user of such a tunnel does.
//!
//! Both programs come from Debian's `openssh-client` and `openssh-server`.
//! Without them the ssh rows are left out (and under `CI=true` that is a
//! failure, as for the interop suite).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use causeway_tests::{Dir, Forwarder, Pace};

use crate::nodes::Node;
use crate::{progress, sys};

const SSHD: &str = "/usr/sbin/sshd";

/// How long the tunnel may take to come up on loopback (a slow emulated line
/// carries its handshake in a few seconds).
const START: Duration = Duration::from_secs(60);

/// A running `ssh -C -L` tunnel to one target.
pub struct SshTunnel {
    /// The ssh connection's line (ssh -> sshd is `Up`).
    pub line: Forwarder,
    /// Where the mail client connects: ssh's forwarded port.
    pub local: String,
    /// Bytes and turns the ssh handshake and login cost, before any mail.
    pub handshake_bytes: u64,
    pub handshake_turns: u64,
    /// From starting ssh to its forwarded port listening (handshake, login).
    pub setup_seconds: f64,
    /// `ssh` and `sshd`, until [`SshTunnel::stop`] reaps them.
    children: Option<(Child, Child)>,
    _dir: causeway_tests::interop::TempDir,
    _line_node: Node,
}

/// CPU time each end of a tunnel used.
#[derive(Clone, Copy, Debug)]
pub struct TunnelCpu {
    /// The end on the user's machine (where the client proxy runs): `ssh`.
    pub client: Duration,
    /// The end near the server (where the edge runs): `sshd` and the
    /// processes it ran.
    pub server: Duration,
}

/// True if OpenSSH's client, server and key generator are installed.
pub fn available() -> bool {
    use causeway_tests::interop::require;
    require("ssh", &["-V"], "openssh-client")
        && require("sh", &["-c", "command -v ssh-keygen"], "openssh-client")
        && require("test", &["-x", SSHD], "openssh-server")
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a loopback address with a port")
}

impl SshTunnel {
    /// Starts sshd, the counting (and, with `pace`, slow) line in front of
    /// it, and `ssh -C` forwarding a local port to `target`; returns once
    /// the forwarded port listens.
    pub async fn start(target: &str, pace: Option<Pace>) -> Result<SshTunnel, String> {
        let dir = causeway_tests::interop::temp_dir("bench-ssh");
        let path = |name: &str| dir.join(name).display().to_string();
        for key in ["host", "client"] {
            run(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(path(key)),
                "ssh-keygen",
            )?;
        }
        std::fs::copy(path("client.pub"), path("authorized_keys"))
            .map_err(|e| format!("authorized_keys: {e}"))?;
        // sshd run by root checks that its privilege separation directory
        // exists (Debian's service creates it at start).
        if sys::is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let sshd_addr = causeway_tests::unused_address();
        let config = format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             AllowTcpForwarding yes\nCompression yes\n",
            port_of(&sshd_addr),
            path("host"),
            path("authorized_keys"),
        );
        std::fs::write(path("sshd_config"), config).map_err(|e| format!("sshd_config: {e}"))?;
        let log = |name: &str| {
            std::fs::File::create(path(name))
                .map(Stdio::from)
                .map_err(|e| format!("{name}: {e}"))
        };
        let mut sshd = Command::new(SSHD)
            .args(["-D", "-d", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log("sshd.log")?)
            .spawn()
            .map_err(|e| format!("starting sshd: {e}"))?;
        if let Err(e) = wait_listening(&sshd_addr, &mut [&mut sshd]).await {
            end(&mut [&mut sshd]);
            return Err(format!("sshd {e}: {}", log_tail(&dir, "sshd.log")));
        }
        let line_node = Node::start("ssh line");
        let line = line_node.run(Forwarder::start_paced(sshd_addr, pace)).await;
        let local = causeway_tests::unused_address();
        let user = sys::user_name().ok_or("this user has no name")?;
        let started = std::time::Instant::now();
        let mut ssh = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-C",
                "-N",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "LogLevel=ERROR",
                "-i",
            ])
            .arg(path("client"))
            .args(["-p", &port_of(&line.addr()).to_string()])
            .args([
                "-L",
                &format!("{local}:{target}"),
                &format!("{user}@127.0.0.1"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log("ssh.log")?)
            .spawn()
            .map_err(|e| format!("starting ssh: {e}"))?;
        if let Err(e) = wait_listening(&local, &mut [&mut ssh, &mut sshd]).await {
            end(&mut [&mut ssh, &mut sshd]);
            return Err(format!(
                "ssh -L {e}: ssh says {}; sshd says {}",
                log_tail(&dir, "ssh.log"),
                log_tail(&dir, "sshd.log")
            ));
        }
        let mut tunnel = SshTunnel {
            local,
            handshake_bytes: 0,
            handshake_turns: line.round_trips(),
            setup_seconds: started.elapsed().as_secs_f64(),
            line,
            children: Some((ssh, sshd)),
            _dir: dir,
            _line_node: line_node,
        };
        tunnel.handshake_bytes = tunnel.bytes();
        progress(&format!(
            "ssh -C tunnel up: handshake and login {} bytes, {} turns",
            tunnel.handshake_bytes, tunnel.handshake_turns
        ));
        Ok(tunnel)
    }

    /// Bytes the ssh connection carried so far, both ways.
    pub fn bytes(&self) -> u64 {
        self.line.bytes(Dir::Up) + self.line.bytes(Dir::Down)
    }

    /// Ends ssh (sshd then ends with its one connection) and reaps both:
    /// the CPU each end used.
    pub async fn stop(mut self) -> Result<TunnelCpu, String> {
        let (ssh, sshd) = self.children.take().expect("a running tunnel");
        let _ = sys::terminate(ssh.id());
        let client = reap(ssh.id(), "ssh").await?;
        let server = reap(sshd.id(), "sshd").await?;
        Ok(TunnelCpu { client, server })
    }
}

impl Drop for SshTunnel {
    /// A figure that failed half way leaves no ssh behind.
    fn drop(&mut self) {
        if let Some((mut ssh, mut sshd)) = self.children.take() {
            end(&mut [&mut ssh, &mut sshd]);
        }
    }
}

/// Kills and reaps `children`.
fn end(children: &mut [&mut Child]) {
    for c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Waits until something listens on `addr`; an error if one of `children`
/// exits first or [`START`] passes.
async fn wait_listening(addr: &str, children: &mut [&mut Child]) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + START;
    while !sys::listening(port_of(addr)) {
        if children
            .iter_mut()
            .any(|c| c.try_wait().ok().flatten().is_some())
        {
            return Err("exited before it listened".into());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("did not listen within {} s", START.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The last lines a program logged, for an error.
fn log_tail(dir: &causeway_tests::interop::TempDir, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Waits (polling) for child `pid` to end, then SIGKILL after 10 s; its CPU.
async fn reap(pid: u32, what: &str) -> Result<Duration, String> {
    for _ in 0..1000 {
        match sys::try_wait_cpu(pid) {
            Ok(Some(cpu)) => return Ok(cpu),
            Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    }
    sys::kill(pid);
    Err(format!(
        "{what} did not exit within 10 s of its connection's end"
    ))
}
