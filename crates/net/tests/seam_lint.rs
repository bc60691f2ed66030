//! Fails the build when code that runs in simulation reaches around the seam.
//!
//! Sockets, clocks, randomness, OS threads and hash-ordered maps taken straight
//! from the OS make a simulation run differ from its replay. Only `crates/net`
//! may touch them; everything else goes through `causeway_net::Env`.
//! Integration tests over real sockets (`tests/`) and benchmarks are exempt:
//! they never run under turmoil.

use std::fs;
use std::path::{Path, PathBuf};

/// (pattern, why it is forbidden)
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio::net", "use Env::connect / Env::bind"),
    ("std::net::TcpStream", "use Env::connect"),
    ("std::net::TcpListener", "use Env::bind"),
    ("Instant::now", "use Env::now"),
    ("SystemTime::now", "use Env::unix_millis"),
    ("rand::rng(", "use Env::rng"),
    ("thread_rng", "use Env::rng"),
    ("OsRng", "use Env::rng"),
    ("from_os_rng", "use Env::rng"),
    ("getrandom", "use Env::rng"),
    (
        "std::thread::spawn",
        "OS threads are not simulated; use tokio tasks",
    ),
    (
        "thread::spawn(",
        "OS threads are not simulated; use tokio tasks",
    ),
    (
        "HashMap",
        "iteration order is random per process; use BTreeMap",
    ),
    (
        "HashSet",
        "iteration order is random per process; use BTreeSet",
    ),
];

/// Directories (relative to the workspace root) whose code never runs in
/// simulation, or is the seam itself.
const EXEMPT: &[&str] = &[
    "crates/net",
    "tests",
    "target",
    "fuzz",
    "crates/bench",
    ".git",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if EXEMPT.iter().any(|x| rel == *x) {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn nothing_outside_the_seam_touches_the_os() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    files.sort();
    assert!(
        files.len() > 5,
        "lint found only {} files under {}",
        files.len(),
        root.display()
    );
    let mut problems = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if line.contains("seam-lint: allow") {
                continue;
            }
            for (pat, why) in FORBIDDEN {
                if code.contains(pat) {
                    problems.push(format!(
                        "{}:{}: `{}` ({why})",
                        f.strip_prefix(&root).unwrap().display(),
                        n + 1,
                        pat
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "code reaches around causeway_net::Env:\n{}",
        problems.join("\n")
    );
}
