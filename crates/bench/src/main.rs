//! `causeway-bench`: every figure in one run, as a table or JSON lines.
//! See `docs/performance.md`.

use std::path::PathBuf;

use causeway_bench::{Options, load, run, scale, table};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "causeway-bench",
    about = "What the line costs, how fast the edge runs and how far it scales, beside the alternatives"
)]
struct Args {
    /// Real mail, one message per file (mbox `From ` line first is stripped).
    /// Without it: generated mail.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Which corpus files to carry (paths relative to the list's folder).
    #[arg(long)]
    list: Option<PathBuf>,
    /// Files to train the dictionary on [default: train.lst beside --list].
    #[arg(long)]
    train_list: Option<PathBuf>,
    /// Generated mail: number of messages.
    #[arg(long, default_value_t = 300)]
    messages: usize,
    /// Generated mail: approximate message size in bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Dictionary size in bytes (0: no dictionary figures).
    #[arg(long, default_value_t = 112_640)]
    dict_size: usize,
    /// Figure 4: megabytes of mail to carry per path.
    #[arg(long, default_value_t = 50.0)]
    cpu_mb: f64,
    /// Figure 5: sessions to hold at once on the edge.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Figure 5: how many of them fetch their mail (active sessions).
    #[arg(long, default_value_t = 1_000)]
    active: usize,
    /// Figure 6: commands timed per kind.
    #[arg(long, default_value_t = 500)]
    iterations: usize,
    /// Figure 8: mail users, each with a client proxy, fetching and deleting.
    #[arg(long, default_value_t = 1_000)]
    load_sessions: usize,
    /// Figure 8: how long they go on before the edge gets SIGTERM.
    #[arg(long, default_value_t = 600)]
    load_seconds: u64,
    /// Figures to run, e.g. `1,2,3` [default: all].
    #[arg(long, value_delimiter = ',')]
    figures: Vec<u8>,
    /// One JSON object per figure per line instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() {
    // The nodes' children run as the shipped binary does.
    causeway_net::memory::return_freed_memory();
    if let Some(mode) = std::env::args().nth(1).filter(|a| a.starts_with("__")) {
        let ran = match mode.as_str() {
            "__load-run" => load::child_main(),
            _ => scale::child_main(&mode),
        };
        if let Err(e) = ran {
            eprintln!("causeway-bench {mode}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let a = Args::parse();
    let exe = std::env::current_exe().expect("the path of this program");
    let mut opts = Options::new(exe);
    opts.corpus = a.corpus;
    opts.list = a.list;
    opts.train_list = a.train_list;
    opts.messages = a.messages;
    opts.message_size = a.size;
    opts.dict_size = a.dict_size;
    opts.cpu_mb = a.cpu_mb;
    opts.sessions = a.sessions;
    opts.active = a.active;
    opts.iterations = a.iterations;
    opts.load_sessions = a.load_sessions;
    opts.load_seconds = a.load_seconds;
    if !a.figures.is_empty() {
        opts.figures = a.figures;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(&opts)) {
        Ok(figures) => {
            if a.json {
                for f in &figures {
                    println!("{}", f.to_json());
                }
            } else {
                print!("{}", table(&figures));
            }
        }
        Err(e) => {
            eprintln!("causeway-bench: {e}");
            std::process::exit(1);
        }
    }
}
