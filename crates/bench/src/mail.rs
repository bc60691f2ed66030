//! The mail a benchmark carries: real messages from a corpus (one file each,
//! an mbox `From ` line first), or generated ones.

use std::path::{Path, PathBuf};

use causeway_mailserver::generate;
use causeway_net::EnvRng;

/// Messages as a mail server would store them: mbox `From ` line removed,
/// CRLF line ends (what RETR carries).
pub type Messages = Vec<Vec<u8>>;

/// Reads a corpus: every file named in `list` (paths relative to the list's
/// own folder, as the shared corpus lists are), or every file under `dir`.
pub fn load(dir: &Path, list: Option<&Path>) -> Result<Messages, String> {
    let files: Vec<PathBuf> = match list {
        Some(l) => {
            let text =
                std::fs::read_to_string(l).map_err(|e| format!("reading {}: {e}", l.display()))?;
            let base = l.parent().unwrap_or(Path::new("."));
            text.lines()
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| {
                    let p = base.join(x);
                    if p.exists() { p } else { dir.join(x) }
                })
                .collect()
        }
        None => {
            let mut v = Vec::new();
            walk(dir, &mut v).map_err(|e| format!("reading {}: {e}", dir.display()))?;
            v.sort();
            v
        }
    };
    files
        .iter()
        .map(|f| {
            std::fs::read(f)
                .map(|b| normalise(&b))
                .map_err(|e| format!("reading {}: {e}", f.display()))
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Strips a leading mbox `From ` line and normalises line ends to CRLF, as
/// the model server does on delivery.
pub fn normalise(raw: &[u8]) -> Vec<u8> {
    let body = if raw.starts_with(b"From ") {
        raw.iter()
            .position(|&b| b == b'\n')
            .map_or(&raw[raw.len()..], |i| &raw[i + 1..])
    } else {
        raw
    };
    causeway_pop3::multiline::normalise(body)
}

/// `n` generated messages of about `size` octets each, from a fixed seed.
pub fn generated(seed: u8, n: usize, size: usize) -> Messages {
    let rng = EnvRng::from_seed([seed; 32]);
    (0..n)
        .map(|i| causeway_pop3::multiline::normalise(&generate::message(&rng, i as u64, size)))
        .collect()
}

pub fn total(m: &Messages) -> u64 {
    m.iter().map(|x| x.len() as u64).sum()
}
