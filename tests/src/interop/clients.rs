//! Real mail clients, each with its state in its own temporary directory
//! (HOME and FETCHMAILHOME point there; nothing is written to `~`).
//!
//! * `curl pop3://` (one command per invocation),
//! * `fetchmail` (rcfile mode 600, `sslproto ''` so it does not try STLS,
//!   delivering through an MDA into files),
//! * `getmail6` (SimplePOP3Retriever into a Maildir). As root it refuses
//!   to deliver unless the destination names a `user`, and then delivers in
//!   a forked child whose end it may miss (a SIGCHLD race in getmail: under
//!   load it fails "waiting child pid N timed out" after 60 s). So as root
//!   getmail itself runs as `nobody` (`setpriv`), with no `user` line.
//!
//! * `mbsync` (isync) and `offlineimap3`: two-way syncs of INBOX into a
//!   Maildir, their state kept beside it across runs;
//! * `neomutt` in a detached tmux session, driven by pushed keys.
//!
//! python `poplib` is [`crate::python`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::chain::{LOCAL_PASSWORD, LOCAL_USER};
use super::{TempDir, body_digest, temp_dir};

/// How long one client run may take before the test calls it hung: a guard
/// for the test, not a deadline of the system's (the clients keep their own
/// timeouts on silence). Long enough for the slow-line test, whose one
/// message takes about five minutes to cross.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(900);

/// What a client run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }
}

async fn run(cmd: &mut Command) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(CLIENT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not finish in {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `curl -sS pop3://PROXY/PATH -u me:pw EXTRA...`.
pub async fn curl(proxy: &str, path: &str, extra: &[&str]) -> Run {
    curl_url(&format!("pop3://{proxy}/{path}"), extra).await
}

/// `curl -sS imap://PROXY/PATH -u me:pw EXTRA...`.
pub async fn curl_imap(proxy: &str, path: &str, extra: &[&str]) -> Run {
    curl_url(&format!("imap://{proxy}/{path}"), extra).await
}

async fn curl_url(url: &str, extra: &[&str]) -> Run {
    run(Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .arg(url)
        .arg("-u")
        .arg(format!("{LOCAL_USER}:{LOCAL_PASSWORD}"))
        .args(extra))
    .await
}

/// Body digests ([`body_digest`]) of every file under `dir`, recursively.
pub fn delivered(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(delivered(&p));
        } else {
            out.push(body_digest(&std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// A fetchmail with its own home, id file and MDA output directory, kept
/// across runs (so its UIDL memory is too).
pub struct Fetchmail {
    dir: TempDir,
}

/// How fetchmail is told to poll.
#[derive(Clone, Copy, Debug)]
pub struct FetchmailOpts {
    /// `keep`: leave the mail on the server (else it DELEs what it fetched).
    pub keep: bool,
    /// `uidl`: remember UIDLs and fetch only new messages.
    pub uidl: bool,
    /// `fetchall`: fetch old (already seen) messages too.
    pub fetchall: bool,
    /// `protocol IMAP` (else POP3).
    pub imap: bool,
}

impl Fetchmail {
    pub fn new() -> Fetchmail {
        let dir = temp_dir("fetchmail");
        std::fs::create_dir_all(dir.join("out")).unwrap();
        Fetchmail { dir }
    }

    pub fn out_dir(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// The rcfile for `proxy` (written mode 600, as fetchmail demands).
    pub fn rcfile(&self, proxy: &str, o: FetchmailOpts) -> PathBuf {
        let (host, port) = proxy.rsplit_once(':').unwrap();
        let rc = format!(
            "set no syslog\nset no bouncemail\n\
             poll {host} protocol {protocol} port {port} timeout 60 {uidl}\n\
             \x20 user \"{LOCAL_USER}\" password \"{LOCAL_PASSWORD}\" is \"{LOCAL_USER}\" here\n\
             \x20 sslproto '' {keep} {fetchall}\n\
             \x20 mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n",
            protocol = if o.imap { "IMAP" } else { "POP3" },
            uidl = if o.uidl { "uidl" } else { "" },
            keep = if o.keep { "keep" } else { "nokeep" },
            fetchall = if o.fetchall { "fetchall" } else { "" },
            out = self.out_dir().display(),
        );
        let p = self.dir.join("fetchmailrc");
        std::fs::write(&p, rc).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// One `fetchmail -f RCFILE` run (exit 0: mail fetched, 1: no mail).
    pub async fn run(&self, proxy: &str, o: FetchmailOpts) -> Run {
        let rc = self.rcfile(proxy, o);
        run(Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .arg("-v")
            // As root, fetchmail's lock is /var/run/fetchmail.pid whatever
            // FETCHMAILHOME says: give each instance its own.
            .arg("--pidfile")
            .arg(self.dir.join("fetchmail.pid"))
            .arg("--idfile")
            .arg(self.dir.join("fetchids"))
            .env("HOME", self.dir.path())
            .env("FETCHMAILHOME", self.dir.path()))
        .await
    }

    pub fn delivered(&self) -> Vec<String> {
        delivered(&self.out_dir())
    }
}

impl Default for Fetchmail {
    fn default() -> Self {
        Self::new()
    }
}

/// A getmail6 with its own getmail directory (its UIDL memory, `oldmail-*`)
/// and Maildir destination, kept across runs.
pub struct Getmail {
    dir: TempDir,
}

impl Getmail {
    pub fn new() -> Getmail {
        let dir = temp_dir("getmail");
        for d in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join("maildir").join(d)).unwrap();
        }
        if is_root() {
            // getmail runs as nobody (see the module's notes).
            let _ = std::process::Command::new("chown")
                .args(["-R", "nobody"])
                .arg(dir.path())
                .status();
        }
        Getmail { dir }
    }

    /// One `getmail --getmaildir DIR --rcfile getmailrc` run.
    pub async fn run(&self, proxy: &str, delete: bool) -> Run {
        self.run_with("SimplePOP3Retriever", proxy, delete).await
    }

    /// [`Getmail::run`] over IMAP (`SimpleIMAPRetriever`, INBOX).
    pub async fn run_imap(&self, proxy: &str, delete: bool) -> Run {
        self.run_with("SimpleIMAPRetriever", proxy, delete).await
    }

    async fn run_with(&self, retriever: &str, proxy: &str, delete: bool) -> Run {
        let (host, port) = proxy.rsplit_once(':').unwrap();
        let rc = format!(
            "[retriever]\ntype = {retriever}\nserver = {host}\nport = {port}\n\
             username = {LOCAL_USER}\npassword = {LOCAL_PASSWORD}\ntimeout = 60\n\n\
             [destination]\ntype = Maildir\npath = {}/\n\n\
             [options]\nread_all = false\ndelete = {delete}\nverbose = 2\n",
            self.dir.join("maildir").display(),
        );
        std::fs::write(self.dir.join("getmailrc"), rc).unwrap();
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "getmail",
            ]);
            c
        } else {
            Command::new("getmail")
        };
        run(cmd
            .arg(format!("--getmaildir={}", self.dir.path().display()))
            .arg("--rcfile=getmailrc")
            .env("HOME", self.dir.path()))
        .await
    }

    pub fn delivered(&self) -> Vec<String> {
        delivered(&self.dir.join("maildir"))
    }
}

impl Default for Getmail {
    fn default() -> Self {
        Self::new()
    }
}

/// A mail client's copy of INBOX in a Maildir (`cur/` and `new/`).
pub struct LocalInbox(PathBuf);

impl LocalInbox {
    /// The local copies: (file, body digest).
    fn copies(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        for sub in ["cur", "new"] {
            let Ok(entries) = std::fs::read_dir(self.0.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                out.push((p.clone(), body_digest(&std::fs::read(&p).unwrap())));
            }
        }
        out.sort();
        out
    }

    /// The body digest of every local copy.
    pub fn delivered(&self) -> Vec<String> {
        self.copies().into_iter().map(|(_, d)| d).collect()
    }

    /// Gives the local copy with body `digest` the Maildir flags `flags`
    /// (`S` seen, `F` flagged: in ASCII order), as a mail reader on this
    /// machine would; false if there is no such copy.
    pub fn set_flags(&self, digest: &str, flags: &str) -> bool {
        let Some((path, _)) = self.copies().into_iter().find(|(_, d)| d == digest) else {
            return false;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let base = name.split(":2,").next().unwrap();
        std::fs::rename(&path, self.0.join("cur").join(format!("{base}:2,{flags}"))).unwrap();
        true
    }

    /// Puts new mail in the local copy (`new/`), as a mail reader on this
    /// machine saving a sent message would; `name` makes the file's name.
    pub fn add(&self, name: &str, message: &[u8]) {
        let dir = self.0.join("new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("1700000000.{name}.causeway-test")),
            message,
        )
        .unwrap();
    }

    /// Deletes the local copy with body `digest`, as a mail reader on this
    /// machine would; false if there is no such copy.
    pub fn remove(&self, digest: &str) -> bool {
        let Some((path, _)) = self.copies().into_iter().find(|(_, d)| d == digest) else {
            return false;
        };
        std::fs::remove_file(path).unwrap();
        true
    }
}

/// A mail client that keeps a copy of INBOX and syncs it both ways: new
/// mail and flags down, flags and deletions up.
pub trait TwoWaySync {
    /// One sync against the proxy's IMAP port.
    fn run(&self, proxy: &str) -> impl std::future::Future<Output = Run>;
    fn inbox(&self) -> LocalInbox;
}

/// An mbsync with its own configuration, sync state and Maildir, kept
/// across runs: `Sync All` (new messages and flags both ways) and
/// `Expunge Both` (it expunges with `CLOSE`), as its users run it.
pub struct Mbsync {
    dir: TempDir,
    /// Which far folders it syncs (`Patterns`).
    patterns: &'static str,
}

impl Mbsync {
    /// Syncs INBOX alone.
    pub fn new() -> Mbsync {
        Self::with_patterns("INBOX")
    }

    /// Syncs the far folders `patterns` names (`*`: every one), each into
    /// a Maildir of its name beside INBOX.
    pub fn with_patterns(patterns: &'static str) -> Mbsync {
        let dir = temp_dir("mbsync");
        std::fs::create_dir_all(dir.join("local")).unwrap();
        Mbsync { dir, patterns }
    }

    /// The local copy of folder `name`.
    pub fn folder(&self, name: &str) -> LocalInbox {
        LocalInbox(self.dir.join("local").join(name))
    }
}

impl TwoWaySync for Mbsync {
    /// One `mbsync -c mbsyncrc rig` run.
    async fn run(&self, proxy: &str) -> Run {
        let (host, port) = proxy.rsplit_once(':').unwrap();
        let local = self.dir.join("local");
        let rc = format!(
            "IMAPAccount rig\nHost {host}\nPort {port}\nUser {LOCAL_USER}\nPass {LOCAL_PASSWORD}\n\
             SSLType None\nAuthMechs LOGIN\nTimeout 60\n\n\
             IMAPStore rig-remote\nAccount rig\n\n\
             MaildirStore rig-local\nPath {}/\nInbox {}/INBOX\n\n\
             Channel rig\nFar :rig-remote:\nNear :rig-local:\nPatterns {}\n\
             Create Near\nSync All\nExpunge Both\nSyncState *\n",
            local.display(),
            local.display(),
            self.patterns,
        );
        let rc_path = self.dir.join("mbsyncrc");
        std::fs::write(&rc_path, rc).unwrap();
        run(Command::new("mbsync")
            .arg("-c")
            .arg(&rc_path)
            .arg("rig")
            .env("HOME", self.dir.path()))
        .await
    }

    fn inbox(&self) -> LocalInbox {
        self.folder("INBOX")
    }
}

impl Default for Mbsync {
    fn default() -> Self {
        Self::new()
    }
}

/// An offlineimap3 with its own configuration, metadata and Maildir, kept
/// across runs: one-shot (`-o`), INBOX only, one connection.
pub struct Offlineimap {
    dir: TempDir,
}

impl Offlineimap {
    pub fn new() -> Offlineimap {
        let dir = temp_dir("offlineimap");
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        Offlineimap { dir }
    }
}

impl TwoWaySync for Offlineimap {
    /// One `offlineimap -c oli.rc -o -u basic` run.
    async fn run(&self, proxy: &str) -> Run {
        let (host, port) = proxy.rsplit_once(':').unwrap();
        let rc = format!(
            "[general]\naccounts = rig\nmetadata = {}\n\n\
             [Account rig]\nlocalrepository = local\nremoterepository = remote\n\n\
             [Repository local]\ntype = Maildir\nlocalfolders = {}\n\n\
             [Repository remote]\ntype = IMAP\nremotehost = {host}\nremoteport = {port}\n\
             remoteuser = {LOCAL_USER}\nremotepass = {LOCAL_PASSWORD}\nssl = no\n\
             starttls = no\nmaxconnections = 1\ntimeout = 60\n\
             folderfilter = lambda f: f == 'INBOX'\n",
            self.dir.join("meta").display(),
            self.dir.join("mail").display(),
        );
        let rc_path = self.dir.join("oli.rc");
        std::fs::write(&rc_path, rc).unwrap();
        run(Command::new("offlineimap")
            .arg("-c")
            .arg(&rc_path)
            .args(["-o", "-u", "basic"])
            .env("HOME", self.dir.path()))
        .await
    }

    fn inbox(&self) -> LocalInbox {
        LocalInbox(self.dir.join("mail").join("INBOX"))
    }
}

impl Default for Offlineimap {
    fn default() -> Self {
        Self::new()
    }
}

/// neomutt, in a detached tmux session of its own (curses needs a
/// terminal), driven by keys it is told to `push` at start; its own home,
/// no header or body cache, `sort = mailbox-order` so the keys name
/// messages in the folder's order.
pub struct Neomutt {
    dir: TempDir,
}

/// How long a neomutt run may take before the test calls it stuck (at a
/// prompt nobody answers): the screen is then part of the failure.
const NEOMUTT_TIMEOUT: Duration = Duration::from_secs(120);

impl Neomutt {
    pub fn new() -> Neomutt {
        Neomutt {
            dir: temp_dir("neomutt"),
        }
    }

    /// Runs neomutt on the proxy's INBOX with `keys` (key functions, as
    /// `<display-message>`) pushed, until it quits. `code` is 0 if it
    /// quit by itself; `stdout` is its screen when it did not.
    pub async fn run(&self, proxy: &str, keys: &str) -> Run {
        let rc = format!(
            "set folder=\"imap://{proxy}/\"\nset spoolfile=\"+INBOX\"\n\
             set imap_user=\"{LOCAL_USER}\"\nset imap_pass=\"{LOCAL_PASSWORD}\"\n\
             set ssl_starttls=no\nset ssl_force_tls=no\nset header_cache=\"\"\n\
             set message_cachedir=\"\"\nset delete=yes\nset quit=yes\nset move=no\n\
             set wait_key=no\nset sort=mailbox-order\nset timeout=1\n"
        );
        let rc_path = self.dir.join("nm.rc");
        std::fs::write(&rc_path, rc).unwrap();
        let socket = self
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let tmux = |args: &[&str]| {
            let mut c = Command::new("tmux");
            c.arg("-L").arg(&socket).args(args);
            c.env("HOME", self.dir.path());
            c
        };
        let cmd = format!(
            "neomutt -n -F {} -e 'push {keys}' 2>{}",
            rc_path.display(),
            self.dir.join("stderr").display()
        );
        let started = run(&mut tmux(&[
            "new-session",
            "-d",
            "-s",
            "nm",
            "-x",
            "120",
            "-y",
            "40",
            &cmd,
        ]))
        .await;
        if started.code != 0 {
            return started;
        }
        let began = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if run(&mut tmux(&["has-session", "-t", "nm"])).await.code != 0 {
                let stderr = std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default();
                return Run {
                    code: 0,
                    stdout: Vec::new(),
                    stderr,
                };
            }
            if began.elapsed() > NEOMUTT_TIMEOUT {
                let screen = run(&mut tmux(&["capture-pane", "-p", "-t", "nm"])).await;
                let _ = run(&mut tmux(&["kill-server"])).await;
                return Run {
                    code: -1,
                    stdout: screen.stdout,
                    stderr: format!("neomutt did not quit in {NEOMUTT_TIMEOUT:?}"),
                };
            }
        }
    }
}

impl Default for Neomutt {
    fn default() -> Self {
        Self::new()
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
