//! A directory for one chain's (or one test's) files, removed when dropped.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use causeway_net::EnvRng;

/// A fresh directory under the system's temporary directory, readable by
/// other users (mode 0755: a Dovecot run as root drops privileges and must
/// still reach its files), removed when dropped unless `CAUSEWAY_KEEP_DIRS=1`.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(rng: &EnvRng, tag: &str) -> io::Result<TempDir> {
        use std::os::unix::fs::PermissionsExt;
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "causeway-{tag}-{}-{}-{:08x}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rng.next_u32()
        ));
        std::fs::create_dir_all(&p)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(TempDir(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` inside the directory; its path.
    pub fn write(&self, name: &str, text: &str) -> io::Result<PathBuf> {
        let p = self.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var("CAUSEWAY_KEEP_DIRS").is_ok_and(|v| v == "1") {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
