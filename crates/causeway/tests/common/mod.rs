//! What the binary's tests share: the real `causeway` binary as a child
//! process whose output is collected (and which is killed if the test
//! fails), keys made by `causeway keygen`, a model mail server in the test
//! process, and python's `poplib` / `curl` as unchanged mail clients.
//!
//! (This directory is under the seam lint: time and sockets come from
//! `TokioEnv`.)

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_mailserver::{MailStore, ServerConfig, serve};
use causeway_net::{Env, Listener, TokioEnv};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_causeway");

/// How long to wait for a child to say something or to exit.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `causeway` (or other) process; killed when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    pub stdin: Option<ChildStdin>,
    /// stdout and stderr, interleaved by line as read.
    output: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(name: &str, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Proc {
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
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (stream, tag) in [
            (
                Box::new(out) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                "out",
            ),
            (Box::new(err), "err"),
        ] {
            let o = output.clone();
            let _ = tag;
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

    pub fn causeway(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        Proc::spawn(name, BIN, args, envs)
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
            if env.now() > deadline {
                panic!(
                    "{} printed no {needle:?} within {WAIT:?}; output:\n{out}",
                    self.name
                );
            }
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
            .to_owned()
    }

    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit; its exit code.
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

/// Runs `causeway keygen` into `dir/name.key`; the public key.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.key"));
    let out = std::process::Command::new(BIN)
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

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(env: &TokioEnv, tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "causeway-{tag}-{}-{:x}",
            std::process::id(),
            env.rng().next_u64()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A model mail server on loopback in the test process.
pub async fn mail_server(env: &TokioEnv, user: &str, password: &str) -> (MailStore, String) {
    let store = MailStore::with_rng(env.rng());
    store.add_user(user, password);
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(serve(
        env.clone(),
        l,
        store.clone(),
        ServerConfig::default(),
    ));
    (store, addr)
}

/// True if `program --version` runs. If not: panics under CI (`CI=true`),
/// otherwise says what to install and returns false (the test skips).
pub async fn have(program: &str, package: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!(
            "{program} is needed by this test; install it (e.g. `apt-get install {package}`)"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}
