//! The production journal store: one redb table in one file.
//!
//! Every commit is a redb write transaction with `Durability::Immediate`:
//! when `commit` returns, the data and redb's commit record are synced
//! (`fsync`), and redb's copy-on-write pages with checksummed roots mean a
//! crash at any instant leaves either the old or the new state, never a mix.
//! The blocking work runs on tokio's blocking pool so the edge's other
//! sessions go on meanwhile.
//!
//! After an I/O error redb refuses further write transactions until the file
//! is reopened; every later commit then fails, and the edge refuses the
//! acknowledgements that needed them, which is the safe side.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, TableDefinition};

use crate::{JournalStore, StoreFuture, Write};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("journal_v1");

#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedbStore({})", self.path.display())
    }
}

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("journal {}: {what}: {e}", path.display()))
}

impl RedbStore {
    /// Opens (or creates) the journal file at `path`. Its directory must
    /// exist. A file left by a crash is recovered by redb on open.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|e| err("cannot open", &path, e))?;
        // Create the table now, so a missing permission shows at start.
        let txn = db
            .begin_write()
            .map_err(|e| err("cannot write", &path, e))?;
        txn.open_table(TABLE)
            .map_err(|e| err("cannot create the table", &path, e))?;
        txn.commit().map_err(|e| err("cannot commit", &path, e))?;
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    fn commit_blocking(&self, batch: Vec<Write>) -> io::Result<()> {
        let p = &self.path;
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| err("cannot begin a commit", p, e))?;
        txn.set_durability(Durability::Immediate);
        {
            let mut t = txn
                .open_table(TABLE)
                .map_err(|e| err("cannot open the table", p, e))?;
            for w in &batch {
                match w {
                    Write::Put { key, value } => {
                        t.insert(key.as_slice(), value.as_slice())
                            .map_err(|e| err("cannot write", p, e))?;
                    }
                    Write::Delete { key } => {
                        t.remove(key.as_slice())
                            .map_err(|e| err("cannot delete", p, e))?;
                    }
                }
            }
        }
        txn.commit().map_err(|e| err("cannot commit", p, e))
    }

    fn scan_blocking(&self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let p = &self.path;
        let txn = self.db.begin_read().map_err(|e| err("cannot read", p, e))?;
        let t = txn
            .open_table(TABLE)
            .map_err(|e| err("cannot open the table", p, e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| err("cannot read", p, e))? {
            let (k, v) = row.map_err(|e| err("cannot read", p, e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("journal task failed: {e}")))?
}

impl JournalStore for RedbStore {
    fn commit(&self, batch: Vec<Write>) -> StoreFuture<()> {
        let me = self.clone();
        Box::pin(blocking(move || me.commit_blocking(batch)))
    }

    fn scan(&self) -> StoreFuture<Vec<(Vec<u8>, Vec<u8>)>> {
        let me = self.clone();
        Box::pin(blocking(move || me.scan_blocking()))
    }

    fn describe(&self) -> String {
        format!("redb at {}", self.path.display())
    }
}
