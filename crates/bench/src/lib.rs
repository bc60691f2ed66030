//! Causeway's benchmarks: what the line costs, how fast the edge runs and how
//! far it scales, each beside its alternatives, measured in one run.
//!
//! Every figure is a [`Figure`]: a name, Causeway's value, the alternatives'
//! values and the ratio of Causeway's value to the first alternative. The
//! binary prints them as a table or as JSON lines; `docs/performance.md`
//! explains each one and what limits it.
//!
//! - [`line`]: figures 1-3, bytes and round trips on the client's line for a
//!   whole mailbox download, and the download time they imply on slow lines.
//! - [`cpu`]: figure 4, CPU per megabyte in the edge, relay and client proxy,
//!   against a plain TCP forward.
//! - [`scale`]: figure 5, edge memory per session and sessions held at once
//!   (the edge runs in a child process so its memory is its own).
//! - [`latency`]: figure 6, time added per command on loopback.
//! - [`imap`]: figure 7, figures 1-3 for a mail client that syncs the
//!   folder over IMAP (W1 over IMAP), against direct IMAP with and without
//!   COMPRESS=DEFLATE.
//! - [`load`]: figure 8, a thousand mail users fetching and deleting for
//!   ten minutes, then SIGTERM to the edge: errors, lost mail and server
//!   sessions without QUIT, from the model server's record.
//! - [`ssh`] and [`tls`]: what operators use today, beside Causeway in
//!   figures 1-4: `ssh -C -L` (OpenSSH on loopback) and a stunnel-style TLS
//!   forward.
//!
//! This crate never runs under simulation, so it uses OS time, threads and
//! sockets directly (it is exempt from the seam lint).

pub mod cpu;
pub mod imap;
pub mod latency;
pub mod line;
pub mod load;
pub mod mail;
pub mod nodes;
pub mod scale;
pub mod ssh;
pub mod sys;
pub mod tls;

use std::fmt::Write as _;
use std::path::PathBuf;

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Stable identifier (`line_bytes`, `round_trips`, ...).
    pub name: String,
    pub unit: String,
    pub causeway: f64,
    /// (alternative, value), the first being what `ratio` divides by.
    pub alternatives: Vec<(String, f64)>,
    /// `causeway / alternatives[0]`.
    pub ratio: Option<f64>,
    /// What was measured, briefly (sizes, counts, errors).
    pub note: String,
}

impl Figure {
    pub fn new(name: &str, unit: &str, causeway: f64, alternatives: Vec<(&str, f64)>) -> Self {
        let ratio = alternatives
            .first()
            .filter(|(_, v)| *v != 0.0)
            .map(|(_, v)| causeway / v);
        Figure {
            name: name.into(),
            unit: unit.into(),
            causeway,
            alternatives: alternatives
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            ratio,
            note: String::new(),
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    pub fn alternative(&self, name: &str) -> Option<f64> {
        self.alternatives
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// One JSON object, on one line.
    pub fn to_json(&self) -> String {
        let mut s = format!(
            "{{\"name\":{},\"unit\":{},\"causeway\":{},\"alternatives\":{{",
            json_str(&self.name),
            json_str(&self.unit),
            json_num(self.causeway)
        );
        for (i, (n, v)) in self.alternatives.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{}:{}", json_str(n), json_num(*v));
        }
        let ratio = self.ratio.map_or("null".to_string(), json_num);
        let _ = write!(
            s,
            "}},\"ratio\":{ratio},\"note\":{}}}",
            json_str(&self.note)
        );
        s
    }
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number as the table shows it: three significant digits or so.
pub fn show(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The figures as a Markdown table.
pub fn table(figures: &[Figure]) -> String {
    let mut s = String::from(
        "| figure | unit | causeway | alternatives | ratio | notes |\n|---|---|---:|---|---:|---|\n",
    );
    for f in figures {
        let alts = f
            .alternatives
            .iter()
            .map(|(n, v)| format!("{n} {}", show(*v)))
            .collect::<Vec<_>>()
            .join("; ");
        let ratio = f.ratio.map_or("-".into(), |r| format!("{r:.3}"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            f.name,
            f.unit,
            show(f.causeway),
            alts,
            ratio,
            f.note
        );
    }
    s
}

/// What to measure, and on what.
#[derive(Clone, Debug)]
pub struct Options {
    /// Real mail (one message per file); generated mail when `None`.
    pub corpus: Option<PathBuf>,
    /// Which files of the corpus to carry (paths relative to the list).
    pub list: Option<PathBuf>,
    /// What to train the dictionary on (default: `train.lst` beside `list`).
    pub train_list: Option<PathBuf>,
    /// Generated mail: how many messages, and about how large.
    pub messages: usize,
    pub message_size: usize,
    /// Dictionary size in bytes (zero: no dictionary figures).
    pub dict_size: usize,
    /// Figure 4: carry at least this many megabytes of mail each way.
    pub cpu_mb: f64,
    /// Figure 5: sessions held at once, and how many of them are made active.
    pub sessions: usize,
    pub active: usize,
    /// Figure 6: commands timed per kind.
    pub iterations: usize,
    /// Figure 8: mail users (each with a client proxy), and how long they
    /// fetch and delete before the edge gets SIGTERM.
    pub load_sessions: usize,
    pub load_seconds: u64,
    /// Which figures (1..=8) to run.
    pub figures: Vec<u8>,
    /// This binary, which figure 5 starts again as the edge process.
    pub exe: PathBuf,
}

impl Options {
    pub fn new(exe: PathBuf) -> Self {
        Options {
            corpus: None,
            list: None,
            train_list: None,
            messages: 300,
            message_size: 4096,
            dict_size: 112_640,
            cpu_mb: 50.0,
            sessions: 10_000,
            active: 1_000,
            iterations: 500,
            load_sessions: 1_000,
            load_seconds: 600,
            figures: vec![1, 2, 3, 4, 5, 6, 7, 8],
            exe,
        }
    }

    fn wants(&self, n: u8) -> bool {
        self.figures.contains(&n)
    }
}

fn progress(what: &str) {
    eprintln!("[bench] {what}");
}

/// Runs the chosen figures; each failure to measure is an error (a figure's
/// own error counts are in its values and notes).
pub async fn run(opts: &Options) -> Result<Vec<Figure>, String> {
    let mut out = Vec::new();
    let messages = match &opts.corpus {
        Some(dir) => mail::load(dir, opts.list.as_deref())?,
        None => mail::generated(1, opts.messages, opts.message_size),
    };
    if messages.is_empty() {
        return Err("no messages to carry".into());
    }
    progress(&format!(
        "{} messages, {} bytes",
        messages.len(),
        mail::total(&messages)
    ));
    if opts.wants(1) || opts.wants(2) || opts.wants(3) {
        let dictionary = if opts.dict_size > 0 {
            line::dictionary(opts)?
        } else {
            None
        };
        progress("figures 1-3: one mailbox download through Causeway and direct");
        out.extend(line::figures(opts, &messages, dictionary).await?);
    }
    if opts.wants(4) {
        progress("figure 4: CPU per megabyte, edge and relay against a plain forward");
        out.extend(cpu::figures(opts, &messages).await?);
    }
    if opts.wants(5) {
        progress(&format!(
            "figure 5: {} sessions held on the edge",
            opts.sessions
        ));
        out.extend(scale::figures(opts).await?);
    }
    if opts.wants(6) {
        progress("figure 6: latency added per command");
        out.extend(latency::figures(opts).await?);
    }
    if opts.wants(7) {
        progress("figure 7: the mailbox synced over IMAP through Causeway and direct");
        out.extend(imap::figures(&messages).await?);
    }
    if opts.wants(8) {
        progress("figure 8: a load run, then SIGTERM to the edge");
        out.extend(load::figures(opts).await?);
    }
    Ok(out)
}
