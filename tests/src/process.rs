//! Child processes in tests: the `causeway` binary in each role (or python,
//! curl...), their output kept for failure reports, killed when dropped.
//! [`Processes`] is the chain builder's launcher for real processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway::chain::Launcher;
use causeway::config::Role;
use causeway_net::{Env, TokioEnv};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// How long to wait for a child to say something or to exit.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running process; killed when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// stdout and stderr, interleaved by line as read.
    output: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(name: &str, program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
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
        let stdin = child.stdin.take();
        Proc {
            name: name.to_owned(),
            child,
            stdin,
            output,
        }
    }

    /// The `causeway` binary with `args`.
    pub fn causeway(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        Proc::spawn(name, &causeway_bin(), args, envs)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// Waits until the output contains `needle`; the output so far.
    pub async fn wait_for(&mut self, env: &TokioEnv, needle: &str) -> String {
        let deadline = env.now() + WAIT;
        loop {
            let out = self.output();
            if out.contains(needle) {
                return out;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                env.sleep(Duration::from_millis(100)).await;
                panic!(
                    "{} exited ({status}) before printing {needle:?}; output:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                env.now() < deadline,
                "{} printed no {needle:?} within {WAIT:?}; output:\n{out}",
                self.name
            );
            env.sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address a node logged it listens on (`listening ... address=...`).
    pub async fn listening(&mut self, env: &TokioEnv) -> String {
        let out = self.wait_for(env, "listening").await;
        let line = out.lines().find(|l| l.contains("listening")).unwrap();
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .unwrap_or_else(|| panic!("no address= in {line:?}"))
            .trim_matches('"')
            .to_owned()
    }

    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit; its exit code (-1 for a signal).
    pub async fn exit_code(&mut self, env: &TokioEnv) -> i32 {
        let status = env
            .timeout(WAIT, "the process to exit", self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit; output:\n{}", self.name, self.output()))
            .expect("wait");
        // Let the readers drain the last lines.
        env.sleep(Duration::from_millis(100)).await;
        status.code().unwrap_or(-1)
    }

    pub async fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }
}

/// The `causeway` binary: `CAUSEWAY_BIN`, or `causeway` in the target
/// directory this test binary was built into (`cargo test --workspace`
/// builds it); built with `cargo build -p causeway` if missing.
pub fn causeway_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CAUSEWAY_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/test-HASH -> target/debug/causeway
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

/// Runs `causeway keygen` into `dir/name.key`; the key file and public key.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.key"));
    let out = std::process::Command::new(causeway_bin())
        .args(["keygen", "--private-key"])
        .arg(&path)
        .output()
        .expect("run causeway keygen");
    assert!(
        out.status.success(),
        "keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(public.len(), 44, "{public:?}");
    (path, public)
}

/// The chain builder's launcher for `causeway ROLE --config FILE` processes.
pub struct Processes {
    env: TokioEnv,
    /// Environment for every node (e.g. `RUST_LOG`).
    envs: Vec<(String, String)>,
    pub procs: Vec<(Role, Proc)>,
}

impl Processes {
    pub fn new(envs: &[(&str, &str)]) -> Processes {
        Processes {
            env: TokioEnv::new(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            procs: Vec::new(),
        }
    }

    /// The process in `role`.
    pub fn get(&mut self, role: Role) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("no {role} process"))
    }

    /// Every node's output, for failure reports.
    pub fn output(&self) -> String {
        self.procs
            .iter()
            .map(|(_, p)| format!("---- {} ----\n{}", p.name, p.output()))
            .collect()
    }
}

impl Launcher for Processes {
    async fn start(&mut self, role: Role, file: &Path) -> std::io::Result<String> {
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let role_arg = role.to_string();
        let file = file.display().to_string();
        let mut p = Proc::causeway(&role_arg, &[&role_arg, "--config", &file], &envs);
        let addr = p.listening(&self.env).await;
        self.procs.push((role, p));
        Ok(addr)
    }
}
