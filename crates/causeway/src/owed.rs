//! `causeway owed`: the acknowledged work an edge's crash journal still
//! holds, listed for an operator, and dropped by hand when it can never be
//! done (see `causeway_edge::journal::inspect` for why the edge itself
//! never drops it).
//!
//! It opens the journal file the edge's configuration names, with the key
//! derived from the edge's private key, so it must run as the edge's user,
//! with the edge stopped (the journal file is locked while the edge runs).

use std::path::Path;

use causeway_edge::JournalConfig;
use causeway_edge::journal::inspect::{self, OwedListing};
use causeway_proto::user::INBOX;

use crate::config::{self, Settings};

/// Lists the owed work (and drops `drop` first, if any); the exit code.
pub fn run(path: &Path, drop: &[String]) -> i32 {
    match owed(path, drop) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("causeway owed: {e}");
            1
        }
    }
}

fn owed(path: &Path, drop: &[String]) -> Result<(), String> {
    let settings = match config::load(path) {
        Ok(Settings::Edge(s)) => s,
        Ok(other) => {
            return Err(format!(
                "{} configures the {}, not an edge: only an edge keeps a journal",
                path.display(),
                other.role()
            ));
        }
        Err(problems) => return Err(problems.to_string()),
    };
    let Some(file) = &settings.journal else {
        return Err(format!(
            "{} says journal = \"memory\": nothing outlives the edge, so nothing is owed",
            path.display()
        ));
    };
    let key = causeway_edge::journal::edge_key(&settings.config.keypair.private);
    let journal = JournalConfig::redb(file, key).map_err(|e| {
        format!(
            "cannot open the journal {}: {e} (stop the edge first: it holds the file while it runs)",
            file.display()
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        if !drop.is_empty() {
            let dropped = inspect::drop_work(&journal, drop)
                .await
                .map_err(|e| e.to_string())?;
            for i in &dropped {
                println!(
                    "dropped {} {} of {} ({} octets)",
                    i.id,
                    i.what,
                    i.uidl,
                    size(i.size)
                );
            }
        }
        let listing = inspect::list(&journal).await.map_err(|e| e.to_string())?;
        print!("{}", render(&listing));
        Ok(())
    })
}

fn size(s: Option<u64>) -> String {
    s.map_or_else(|| "size unknown".to_owned(), |s| s.to_string())
}

/// The listing as the operator reads it.
pub fn render(l: &OwedListing) -> String {
    let mut out = String::new();
    let items: usize = l.groups.iter().map(|g| g.items.len()).sum();
    if items == 0 {
        out.push_str("nothing owed: the journal holds no acknowledged work\n");
    }
    for g in &l.groups {
        let folder = if g.folder == INBOX || g.folder.is_empty() {
            String::new()
        } else {
            format!(", folder {}", g.folder)
        };
        out.push_str(&format!(
            "{}  server {} ({}, user {}{folder}), acknowledged in session {}\n",
            g.id, g.server, g.address, g.user, g.session
        ));
        for i in &g.items {
            out.push_str(&format!(
                "  {}  {} of {} ({} octets)\n",
                i.id,
                i.what,
                i.uidl,
                size(i.size)
            ));
        }
    }
    if l.unreadable > 0 {
        out.push_str(&format!(
            "{} entries do not open with this edge's key (another key, or damage); left alone\n",
            l.unreadable
        ));
    }
    if items > 0 {
        out.push_str(
            "The edge does this work at its next start, or as soon as the server lets it. \
             Drop an entry only if it can never be done: causeway owed --config FILE --drop ID\n",
        );
    }
    out
}
