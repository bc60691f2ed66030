//! Python's `poplib` (and `imaplib`, for the IMAP front) as the mail
//! client: an unchanged, independent client, so the tests check what a real
//! mail client sees rather than what our own codec believes.
//!
//! A test passes a script body; a prelude connects to the proxy and gives
//! it `out(key, value)` (one "key<TAB>value" line on stdout), `pause(tag)`
//! (prints `pause<TAB>tag` and waits for [`Py::resume`], so the test can cut
//! the line at an exact point of the conversation), `attempt(key, f, *args)`
//! (runs a poplib call, printing its reply as `key` or its error as
//! `key.err`) and `digest(lines)` (SHA-256 and length of a RETR body rebuilt
//! from poplib's lines, comparable with the store's record).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long a whole script may run, and how long to wait for one line.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// What both preludes share: `out`, `pause`, `text`.
const COMMON: &str = r#"
import hashlib, sys
HOST, PORT = sys.argv[1], int(sys.argv[2])
def out(key, value=""):
    print("%s\t%s" % (key, value), flush=True)
def pause(tag):
    out("pause", tag)
    sys.stdin.readline()
def text(r):
    return r.decode("utf-8", "replace") if isinstance(r, bytes) else str(r)
"#;

const PRELUDE: &str = r#"
import poplib
def attempt(key, f, *args):
    try:
        r = f(*args)
    except poplib.error_proto as e:
        out(key + ".err", text(e.args[0]))
        return None
    except (OSError, EOFError) as e:
        out(key + ".err", "connection: %s" % e)
        return None
    out(key, text(r[0] if isinstance(r, tuple) else r))
    return r
def digest(lines):
    data = b"".join(l + b"\r\n" for l in lines)
    return "%s %d" % (hashlib.sha256(data).hexdigest(), len(data))
p = poplib.POP3(HOST, PORT, timeout=60)
out("welcome", text(p.getwelcome()))
"#;

/// The IMAP prelude: `attempt(key, f, *args)` prints `key` with the
/// response type and first datum, or `key.err` for a NO/BAD, an abort or a
/// lost connection; `body(data)` is the first literal of a FETCH response;
/// `digest(data)` its SHA-256 and length.
const IMAP_PRELUDE: &str = r#"
import imaplib
def attempt(key, f, *args):
    try:
        typ, data = f(*args)
    except imaplib.IMAP4.abort as e:
        out(key + ".err", "abort: %s" % e)
        return None
    except imaplib.IMAP4.error as e:
        out(key + ".err", text(e.args[0]))
        return None
    except (OSError, EOFError) as e:
        out(key + ".err", "connection: %s" % e)
        return None
    first = data[0] if data else b""
    if typ not in ("OK", "BYE"):
        out(key + ".err", "%s %s" % (typ, text(first)))
        return None
    out(key, "%s %s" % (typ, text(first[0] if isinstance(first, tuple) else first)))
    return data
def body(data):
    return next(d[1] for d in data if isinstance(d, tuple))
def digest(data):
    b = body(data)
    return "%s %d" % (hashlib.sha256(b).hexdigest(), len(b))
p = imaplib.IMAP4(HOST, PORT, timeout=60)
out("welcome", text(p.welcome))
"#;

/// IMAP script lines: log in as the rig's local user and select `folder`
/// (`login` and `select` printed).
pub fn imap_login_select(folder: &str) -> String {
    use crate::rig::{LOCAL_PASSWORD, LOCAL_USER};
    format!(
        "attempt(\"login\", p.login, \"{LOCAL_USER}\", \"{LOCAL_PASSWORD}\")\nattempt(\"select\", p.select, \"{folder}\")\n"
    )
}

/// IMAP script lines printing the UIDs, flags and UIDVALIDITY of each
/// message as `imaplib` sees them after SELECT: `validity` and `flags`
/// (`uid:flags;...`).
pub fn imap_folder_script() -> String {
    r#"out("validity", text(p.response("UIDVALIDITY")[1][0]))
d = attempt("fetched", p.fetch, "1:*", "(UID FLAGS)")
import re
out("flags", ";".join("%s:%s" % re.search(r"UID (\d+) FLAGS \(([^)]*)\)", text(x)).groups() for x in d if x))
"#
    .into()
}

/// True if `python3` with `poplib` can run. If not: panics under CI
/// (`CI=true`), otherwise says what to install and returns false (skip).
pub async fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import poplib, hashlib"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = "python3 (with its standard library's poplib) is needed as the mail client \
                   of the end-to-end tests; install python3 (e.g. `apt-get install python3`)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

/// A running script.
pub struct Py {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<(String, String)>,
}

/// What a script printed, in order.
#[derive(Debug)]
pub struct PyOut(pub Vec<(String, String)>);

impl PyOut {
    /// The first value printed under `key`; panics showing everything if none.
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the script printed no {key:?}; it printed {:#?}", self.0))
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

impl Py {
    /// Runs `script` (after the prelude) against the POP3 server at `addr`.
    pub fn start(addr: &str, script: &str) -> Py {
        Py::start_with(PRELUDE, addr, script)
    }

    /// Runs `script` (after the IMAP prelude) against the IMAP server at
    /// `addr`.
    pub fn start_imap(addr: &str, script: &str) -> Py {
        Py::start_with(IMAP_PRELUDE, addr, script)
    }

    fn start_with(prelude: &str, addr: &str, script: &str) -> Py {
        let (host, port) = addr.rsplit_once(':').expect("addr is host:port");
        let mut child = Command::new("python3")
            .arg("-u")
            .arg("-c")
            .arg(format!("{COMMON}\n{prelude}\n{script}"))
            .args([host, port])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python3");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Py {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output until `key` is printed; returns its value.
    pub async fn expect(&mut self, key: &str) -> String {
        loop {
            let line = tokio::time::timeout(SCRIPT_TIMEOUT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!("python printed no {key:?} in time; so far {:#?}", self.seen)
                })
                .expect("read python's output");
            let Some(line) = line else {
                let err = self.stderr().await;
                panic!(
                    "python ended before printing {key:?}; printed {:#?}\nstderr:\n{err}",
                    self.seen
                );
            };
            let (k, v) = line.split_once('\t').unwrap_or((line.as_str(), ""));
            self.seen.push((k.to_owned(), v.to_owned()));
            if k == key {
                return v.to_owned();
            }
        }
    }

    /// Lets a script waiting in `pause()` go on.
    pub async fn resume(&mut self) {
        self.stdin.write_all(b"\n").await.expect("write to python");
        self.stdin.flush().await.expect("write to python");
    }

    /// Waits for the script to end successfully; everything it printed.
    pub async fn finish(mut self) -> PyOut {
        while let Some(line) = tokio::time::timeout(SCRIPT_TIMEOUT, self.lines.next_line())
            .await
            .expect("python to finish in time")
            .expect("read python's output")
        {
            let (k, v) = line.split_once('\t').unwrap_or((line.as_str(), ""));
            self.seen.push((k.to_owned(), v.to_owned()));
        }
        let status = tokio::time::timeout(SCRIPT_TIMEOUT, self.child.wait())
            .await
            .expect("python to exit in time")
            .expect("wait for python");
        if !status.success() {
            let err = self.stderr().await;
            panic!(
                "python failed ({status}); printed {:#?}\nstderr:\n{err}",
                self.seen
            );
        }
        PyOut(self.seen)
    }

    async fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err),
            )
            .await;
        }
        err
    }
}

/// Runs a script that needs no pauses and returns its output.
pub async fn run(addr: &str, script: &str) -> PyOut {
    Py::start(addr, script).finish().await
}

/// [`run`] with `imaplib`.
pub async fn run_imap(addr: &str, script: &str) -> PyOut {
    Py::start_imap(addr, script).finish().await
}
