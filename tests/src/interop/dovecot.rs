//! A throw-away Dovecot on loopback (`tests/dovecot/start-dovecot.sh`),
//! filled with generated messages, and read back the way only Dovecot can
//! tell: its mailbox over a separate IMAP connection with EXAMINE (nothing
//! changes), and its log (how each POP3 or IMAP session ended).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tokio::process::Command;

use super::{TempDir, free_port, scripts_dir, temp_dir};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";

/// How Dovecot stores the mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Maildir,
    /// mbox with `pop3_lock_session = yes`: a second POP3 session of the
    /// user waits ~10 s and gets `[IN-USE]`, so a leaked session shows.
    MboxLocked,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Maildir => "maildir",
            Format::MboxLocked => "mbox+lock_session",
        })
    }
}

/// One message as Dovecot holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    /// SHA-256 of the message as RETR/IMAP give it (CRLF).
    pub sha256: String,
    pub size: usize,
    /// See [`super::body_digest`].
    pub body_sha256: String,
    pub flags: Vec<String>,
}

impl Message {
    pub fn seen(&self) -> bool {
        self.flags.iter().any(|f| f == "\\Seen")
    }
}

/// A mailbox as Dovecot holds it.
#[derive(Clone, Debug)]
pub struct Mailbox {
    pub uidvalidity: u32,
    pub messages: Vec<Message>,
}

impl Mailbox {
    /// By content hash.
    pub fn get(&self, sha256: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.sha256 == sha256)
    }

    /// The body hashes of every message (what a mail client's copies are
    /// compared with: [`super::body_digest`]).
    pub fn body_digests(&self) -> std::collections::BTreeSet<String> {
        self.messages
            .iter()
            .map(|m| m.body_sha256.clone())
            .collect()
    }

    /// Dovecot's POP3 UIDL of a message (`%08Xu%08Xv`, lowercase hex).
    pub fn uidl(&self, m: &Message) -> String {
        format!("{:08x}{:08x}", m.uid, self.uidvalidity)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "uidvalidity {}", self.uidvalidity)?;
        for m in &self.messages {
            writeln!(
                f,
                "  uid {} {}.. {} octets {}",
                m.uid,
                &m.sha256[..12],
                m.size,
                m.flags.join(" ")
            )?;
        }
        Ok(())
    }
}

/// One POP3 or IMAP session in Dovecot's log.
#[derive(Clone, Debug)]
pub struct MailSession {
    /// `pop3` or `imap`.
    pub service: &'static str,
    pub id: String,
    pub user: String,
    /// The text after `Disconnected: ` up to the counters, e.g. `Logged
    /// out` or `Connection closed`; None while the session is open.
    pub end: Option<String>,
    /// The counters Dovecot logs at the end (`top=.. retr=.. del=..`).
    pub counters: String,
}

pub struct Dovecot {
    pub format: Format,
    pub pop3_port: u16,
    pub imap_port: u16,
    /// `imap-state.py --serve`: delivers, reads over IMAP, probes POP3
    /// logins (one python for the whole test instead of one per check).
    judge: tokio::sync::Mutex<Judge>,
    dir: TempDir,
}

struct Judge {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Judge {
    fn start(base: &std::path::Path, imap_port: u16, pop3_port: u16) -> Judge {
        use std::process::Stdio;
        use tokio::io::AsyncBufReadExt;
        let mut child = Command::new("python3")
            .arg(scripts_dir().join("imap-state.py"))
            .arg("--serve")
            .arg(base)
            .arg(imap_port.to_string())
            .arg(pop3_port.to_string())
            .arg(PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start imap-state.py --serve");
        let stdin = child.stdin.take().unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Judge {
            _child: child,
            stdin,
            lines,
        }
    }

    /// Sends one command; the lines of its answer (without `end`).
    async fn ask(&mut self, cmd: &str) -> Vec<String> {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .expect("write to imap-state.py");
        self.stdin.flush().await.expect("write to imap-state.py");
        let mut out = Vec::new();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("imap-state.py: no answer to {cmd:?} in 60 s"))
                .expect("read imap-state.py")
                .unwrap_or_else(|| panic!("imap-state.py ended; answered {out:?}"));
            if line == "end" {
                return out;
            }
            assert!(!line.starts_with("error"), "imap-state.py {cmd:?}: {line}");
            out.push(line);
        }
    }
}

impl Dovecot {
    /// Starts a fresh Dovecot (users alice/secret and bob/secret) on free
    /// loopback ports; stopped (SIGKILL) and deleted when dropped.
    pub async fn start(format: Format) -> Dovecot {
        let dir = temp_dir("dovecot");
        let mut last = String::new();
        for _ in 0..5 {
            let (pop3_port, imap_port) = (free_port(), free_port());
            let mut cmd = Command::new(scripts_dir().join("start-dovecot.sh"));
            cmd.arg(dir.join("rig"))
                .arg(pop3_port.to_string())
                .arg(imap_port.to_string())
                .env(
                    "MAIL_FORMAT",
                    if format == Format::Maildir {
                        "maildir"
                    } else {
                        "mbox"
                    },
                )
                .env(
                    "POP3_LOCK_SESSION",
                    if format == Format::MboxLocked {
                        "yes"
                    } else {
                        "no"
                    },
                )
                .stdin(std::process::Stdio::null());
            let out = cmd.output().await.expect("run start-dovecot.sh");
            if out.status.success() {
                return Dovecot {
                    format,
                    pop3_port,
                    imap_port,
                    judge: tokio::sync::Mutex::new(Judge::start(
                        &dir.join("rig"),
                        imap_port,
                        pop3_port,
                    )),
                    dir,
                };
            }
            // Another test may have taken a port in between: try others.
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            let _ = Command::new(scripts_dir().join("stop-dovecot.sh"))
                .arg(dir.join("rig"))
                .env("STOP_FAST", "1")
                .output()
                .await;
        }
        panic!("start-dovecot.sh failed 5 times; last:\n{last}");
    }

    pub fn pop3_addr(&self) -> String {
        format!("127.0.0.1:{}", self.pop3_port)
    }

    pub fn base(&self) -> std::path::PathBuf {
        self.dir.join("rig")
    }

    /// Puts `n` generated messages of about `bytes` octets into `user`'s
    /// INBOX (`deliver-messages.py`).
    pub async fn deliver(&self, user: &str, n: usize, bytes: usize) {
        let said = self
            .judge
            .lock()
            .await
            .ask(&format!("deliver {user} {n} {bytes}"))
            .await;
        assert_eq!(said.len(), n, "{said:?}");
    }

    /// The user's INBOX, read over IMAP with EXAMINE.
    pub async fn mailbox(&self, user: &str) -> Mailbox {
        self.folder(user, "INBOX").await
    }

    /// The user's IMAP folder `folder` (one word), read with EXAMINE.
    pub async fn folder(&self, user: &str, folder: &str) -> Mailbox {
        let out = self
            .judge
            .lock()
            .await
            .ask(&format!("state {user} {folder}"))
            .await;
        let mut mb = Mailbox {
            uidvalidity: 0,
            messages: Vec::new(),
        };
        for line in out {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.first() {
                Some(&"uidvalidity") => mb.uidvalidity = w[1].parse().unwrap(),
                Some(&"msg") => mb.messages.push(Message {
                    uid: w[1].parse().unwrap(),
                    sha256: w[2].into(),
                    size: w[3].parse().unwrap(),
                    body_sha256: w[4].into(),
                    flags: w[5..].iter().map(|s| s.to_string()).collect(),
                }),
                _ => panic!("imap-state.py said {line:?}"),
            }
        }
        mb
    }

    /// Moves the first `n` messages of the user's INBOX into `folder` (one
    /// word), made if missing.
    pub async fn file(&self, user: &str, folder: &str, n: usize) {
        self.judge
            .lock()
            .await
            .ask(&format!("file {user} {folder} {n}"))
            .await;
    }

    /// Empties the user's INBOX (over IMAP: flag everything deleted, expunge).
    pub async fn empty(&self, user: &str) {
        self.judge.lock().await.ask(&format!("empty {user}")).await;
    }

    /// Removes message `uid` as another mail client would (UID STORE
    /// \Deleted, UID EXPUNGE over IMAP).
    pub async fn remove(&self, user: &str, uid: u32) {
        self.judge
            .lock()
            .await
            .ask(&format!("remove {user} {uid}"))
            .await;
    }

    /// Dovecot's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.base().join("log/dovecot.log")).unwrap_or_default()
    }

    /// Bytes in the log so far: pass to [`Dovecot::sessions`] to see
    /// only later sessions.
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// The POP3 and IMAP sessions that logged in after `mark`, in login
    /// order (the judge's own IMAP sessions included: they log out).
    /// (Dovecot's log process interleaves its children's lines: a
    /// session's `Disconnected` line may come before its `Login` line, even
    /// before `mark` when its `Login` line comes after; so ends are looked
    /// up in the whole log. CI saw a judge's session that had logged out
    /// reported open that way.)
    ///
    /// Only whole lines count: a line Dovecot is still writing (CI once
    /// read a judge's session as ended `Logged `) is read next time.
    pub fn sessions(&self, mark: usize) -> Vec<MailSession> {
        let log = self.log();
        let all = whole_lines(&log);
        let lines = whole_lines(log.get(mark..).unwrap_or(""));
        let mut sessions = Vec::new();
        for service in ["pop3", "imap"] {
            // pop3(alice)<pid><session>: Info: Disconnected: Logged out top=...
            // imap(alice)<pid><session>: Info: Disconnected: Logged out in=...
            let (tag, counters) = match service {
                "pop3" => (" pop3(", " top="),
                _ => (" imap(", " in="),
            };
            let mut ends: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
            for line in &all {
                if !line.contains(tag) {
                    continue;
                }
                let Some(rest) = line.split(": Info: Disconnected: ").nth(1) else {
                    continue;
                };
                let id = line
                    .split(">: ")
                    .next()
                    .and_then(|h| h.rsplit('<').next())
                    .unwrap_or("");
                ends.insert(
                    id,
                    match rest.find(counters) {
                        Some(p) => (&rest[..p], &rest[p + 1..]),
                        None => (rest, ""),
                    },
                );
            }
            let login = format!("{service}-login: Info: Login: user=<");
            for line in &lines {
                let Some(rest) = line.split(login.as_str()).nth(1) else {
                    continue;
                };
                let Some(id) = session_id(line) else {
                    continue;
                };
                let end = ends.get(id.as_str());
                sessions.push(MailSession {
                    service,
                    user: rest.split('>').next().unwrap_or("").to_owned(),
                    end: end.map(|e| e.0.to_owned()),
                    counters: end.map(|e| e.1.to_owned()).unwrap_or_default(),
                    id,
                });
            }
        }
        sessions
    }

    /// Logs in directly (python poplib), STAT, QUIT; how long it took. A
    /// leaked session of the user shows here: with `pop3_lock_session` the
    /// login waits ~10 s and fails with `[IN-USE]`.
    pub async fn probe_login(&self, user: &str) -> Result<Duration, String> {
        let said = self.judge.lock().await.ask(&format!("probe {user}")).await;
        let line = said.first().cloned().unwrap_or_default();
        match line.strip_prefix("ok ") {
            Some(secs) => Ok(Duration::from_secs_f64(secs.parse().unwrap())),
            None => Err(line),
        }
    }
}

fn session_id(line: &str) -> Option<String> {
    let rest = line.split("session=<").nth(1)?;
    Some(rest.split('>').next()?.to_owned())
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = std::process::Command::new(scripts_dir().join("stop-dovecot.sh"))
            .arg(self.base())
            .env("STOP_FAST", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The lines of `text` that end in a line break (without it).
fn whole_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}
