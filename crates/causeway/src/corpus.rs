//! Reading a folder of mail the way the mail server would store it.
//!
//! An operator trains a compression dictionary on a sample of their own mail
//! (`causeway train-dictionary`), and the benchmarks read the shared corpus;
//! both need the same thing: one RFC 822 message per file (an mbox `From `
//! line first is tolerated), as the bytes the channel will carry, i.e. with
//! CRLF line ends. Training on anything else would teach the dictionary the
//! wrong line ends.

use std::path::{Path, PathBuf};

/// Messages as a mail server stores them and RETR carries them.
pub type Messages = Vec<Vec<u8>>;

/// Reads every file named in `list` (paths relative to the list's own folder,
/// else to `dir`), or every file under `dir` in name order.
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

/// `causeway train-dictionary`: trains a zstd dictionary of at most `size`
/// bytes on the messages and writes it to `out` (refusing to overwrite).
/// Returns (samples, dictionary bytes).
pub fn train_dictionary(
    dir: &Path,
    list: Option<&Path>,
    size: usize,
    out: &Path,
) -> Result<(usize, usize), String> {
    let messages = load(dir, list)?;
    let dict = causeway_wire::dictionary::train(&messages, size)
        .map_err(|e| format!("training on {} messages: {e}", messages.len()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &dict))
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok((messages.len(), dict.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_from_line_is_stripped_and_line_ends_become_crlf() {
        assert_eq!(
            normalise(b"From a@b Sat Jan  1 00:00:00 2000\nSubject: x\n\nbody\n"),
            b"Subject: x\r\n\r\nbody\r\n"
        );
        assert_eq!(
            normalise(b"Subject: y\r\n\r\nz\r\n"),
            b"Subject: y\r\n\r\nz\r\n"
        );
    }

    #[test]
    fn trains_from_a_list_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("cw-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        let rng = causeway_net::EnvRng::from_seed([5; 32]);
        let mut list = String::new();
        for i in 0..300 {
            let m = causeway_mailserver::generate::message(&rng, i, 3000);
            std::fs::write(dir.join(format!("mail/{i}.eml")), m).unwrap();
            list.push_str(&format!("mail/{i}.eml\n"));
        }
        std::fs::write(dir.join("train.lst"), list).unwrap();
        let out = dir.join("dict.bin");
        let (n, bytes) =
            train_dictionary(&dir, Some(&dir.join("train.lst")), 16 * 1024, &out).unwrap();
        assert_eq!(n, 300);
        assert!(bytes > 0 && bytes <= 16 * 1024, "{bytes}");
        assert_eq!(std::fs::read(&out).unwrap().len(), bytes);
        let again = train_dictionary(&dir, Some(&dir.join("train.lst")), 16 * 1024, &out);
        assert!(
            again.unwrap_err().contains("exists"),
            "refuses to overwrite"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
