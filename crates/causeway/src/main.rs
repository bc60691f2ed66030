use std::path::PathBuf;
use std::process::ExitCode;

use causeway::config::{self, Role};
use causeway::logging::{self, LogFormat};
use clap::{Parser, Subcommand};

const ABOUT: &str = "Carries e-mail across bad lines: mail client -> POP3 -> client proxy \
=> [Noise XK, zstd] => edge -> mail server (directly, or => [Noise KK] => relay -> mail server).";

const AFTER_HELP: &str = "\
Examples:
  Try the whole chain on this machine, then point a mail client at it:
    causeway demo
    causeway demo --cut-line          # also cut the line at random moments

  Set up an edge:
    causeway keygen --private-key /etc/causeway/edge.key   # prints the public key
    causeway check-config /etc/causeway/edge.toml
    causeway edge --config /etc/causeway/edge.toml

  Check a client proxy's file against the edge and relay it uses:
    causeway check-config client.toml edge.toml relay.toml

Logs go to stderr; RUST_LOG sets the level (default info), e.g. RUST_LOG=debug or
RUST_LOG=info,causeway_edge=debug. See docs/configuration.md and docs/operations.md.";

#[derive(Parser)]
#[command(name = "causeway", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an edge: serves client proxies over the bad line (Noise XK) and
    /// talks to mail servers, directly or through relays.
    #[command(
        after_help = "Example:\n  causeway edge --config /etc/causeway/edge.toml\n\n\
        SIGTERM or SIGINT: stop accepting, finish acknowledged deletes and read marks, QUIT every\n\
        mail server session, exit 0; after shutdown_deadline exit 3, logging what was abandoned."
    )]
    Edge {
        /// The edge's TOML file (role = "edge"); see docs/examples/edge.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a relay beside a mail server: serves edges (Noise KK) and talks POP3
    /// to the servers on its allow list.
    #[command(after_help = "Example:\n  causeway relay --config /etc/causeway/relay.toml")]
    Relay {
        /// The relay's TOML file (role = "relay"); see docs/examples/relay.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a client proxy: a POP3 server on loopback for an unchanged mail
    /// client, carrying its sessions to the edge.
    #[command(
        after_help = "Example:\n  causeway client --config ~/.config/causeway/client.toml\n  \
        then point the mail client at the file's `listen` address (POP3, no TLS) with its `user` and `password`."
    )]
    Client {
        /// The client proxy's TOML file (role = "client"); see docs/examples/client.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write a new static private key (base64) to a file, mode 0600, and
    /// print its public key.
    #[command(
        after_help = "Example:\n  causeway keygen --private-key /etc/causeway/edge.key\n  \
        prints e.g. 3q2+7w...= : put it in the peers' allow lists (allowed_clients,\n  \
        allowed_edges) or pins (edge_public_key, [[relay]] public_key). Never overwrites a file."
    )]
    Keygen {
        /// Where to write the private key (must not exist).
        #[arg(long)]
        private_key: PathBuf,
    },
    /// Print the public key of an existing private key file.
    #[command(after_help = "Example:\n  causeway public-key --private-key /etc/causeway/edge.key")]
    PublicKey {
        #[arg(long)]
        private_key: PathBuf,
    },
    /// Check configuration files and explain every problem with its line.
    /// Given several files (e.g. a client's, its edge's and a relay's), also
    /// checks that they fit together: keys pinned and allowed, relay names,
    /// server allow lists.
    #[command(
        after_help = "Examples:\n  causeway check-config /etc/causeway/edge.toml\n  \
        causeway check-config client.toml edge.toml relay.toml\n\n\
        Exit status 0 if every file is valid, 1 otherwise. Secrets given as *_file or *_env\n\
        are read, so run it as the service's user and environment."
    )]
    CheckConfig {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the acknowledged work an edge's crash journal still owes mail
    /// servers (deletes, read marks), and drop entries that can never be
    /// done. Run it as the edge's user, with the edge stopped.
    #[command(
        after_help = "Examples:\n  causeway owed --config /etc/causeway/edge.toml\n  \
        causeway owed --config /etc/causeway/edge.toml --drop 3f2a9c0d11e4b870/0000000000000002\n\n\
        The edge redoes owed work by itself, across sessions and restarts, and never drops it;\n\
        drop an entry (ID from the listing) or a whole group only when it can never be done,\n\
        e.g. the account was closed. Exit status 1 if the journal cannot be opened."
    )]
    Owed {
        /// The edge's TOML file (role = "edge").
        #[arg(long, short)]
        config: PathBuf,
        /// Drop this entry (`GROUP/SEQ`) or group (`GROUP`); may be repeated.
        #[arg(long)]
        drop: Vec<String>,
    },
    /// Train a zstd dictionary on a sample of your own mail, to pin in every
    /// node's `[channel] dictionary` (client, edge and relay alike).
    #[command(
        after_help = "Examples:\n  causeway train-dictionary --dir ~/Maildir/cur --out mail.dict\n  \
        causeway train-dictionary --dir corpus --list corpus/train.lst --size 112640 --out mail.dict\n\n\
        One message per file (a leading mbox `From ` line is skipped). A dictionary helps short\n\
        sessions most; see docs/performance.md for its measured effect. Both ends of a channel\n\
        must pin the same file. Never overwrites --out."
    )]
    TrainDictionary {
        /// Folder of messages (one RFC 822 message per file).
        #[arg(long)]
        dir: PathBuf,
        /// Only the files named in this list (one path per line, relative to the list's folder).
        #[arg(long)]
        list: Option<PathBuf>,
        /// Largest dictionary size in bytes.
        #[arg(long, default_value_t = 112_640)]
        size: usize,
        /// Where to write the dictionary (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Start the whole chain on loopback in one process: model mail servers
    /// with generated mail, a relay, an edge and a client proxy, fresh keys.
    #[command(
        after_help = "Examples:\n  causeway demo\n  causeway demo --pop3-port 2110 --cut-line\n\n\
        Prints how to point a mail client at it and the lines `curl pop3://USER:PASSWORD@127.0.0.1:PORT/` and `curl imap://USER:PASSWORD@127.0.0.1:PORT/`.\n\
        Ctrl-C stops it cleanly (every mail server session ends with QUIT) and prints a summary."
    )]
    Demo {
        /// The client proxy's POP3 port on 127.0.0.1 (0: chosen by the OS).
        #[arg(long, default_value_t = 1110)]
        pop3_port: u16,
        /// The client proxy's IMAP port on 127.0.0.1 (0: no IMAP).
        #[arg(long, default_value_t = 1143)]
        imap_port: u16,
        /// Put a line between client proxy and edge that is cut at random
        /// moments; prints each cut and checks at the end that no mail was lost.
        #[arg(long)]
        cut_line: bool,
        /// Messages per demo mail server.
        #[arg(long, default_value_t = 30)]
        messages: usize,
    },
}

fn main() -> ExitCode {
    causeway_net::memory::return_freed_memory();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Edge { config } => service(cli.log_format, config, Role::Edge),
        Command::Relay { config } => service(cli.log_format, config, Role::Relay),
        Command::Client { config } => service(cli.log_format, config, Role::Client),
        Command::Keygen { private_key } => match causeway::keys::generate(&private_key) {
            Ok(public) => {
                println!("{public}");
                0
            }
            Err(e) => {
                eprintln!("causeway keygen: {e}");
                1
            }
        },
        Command::PublicKey { private_key } => match causeway::keys::public_of(&private_key) {
            Ok(public) => {
                println!("{public}");
                0
            }
            Err(e) => {
                eprintln!("causeway public-key: {e}");
                1
            }
        },
        Command::CheckConfig { files } => causeway::check::check(&files),
        Command::Owed { config, drop } => causeway::owed::run(&config, &drop),
        Command::TrainDictionary {
            dir,
            list,
            size,
            out,
        } => match causeway::corpus::train_dictionary(&dir, list.as_deref(), size, &out) {
            Ok((samples, bytes)) => {
                println!(
                    "wrote {} ({bytes} bytes, trained on {samples} messages)",
                    out.display()
                );
                0
            }
            Err(e) => {
                eprintln!("causeway train-dictionary: {e}");
                1
            }
        },
        Command::Demo {
            pop3_port,
            imap_port,
            cut_line,
            messages,
        } => {
            logging::init(cli.log_format, "info");
            causeway::demo::run(causeway::demo::DemoOptions {
                pop3_port,
                imap_port,
                cut_line,
                messages,
            })
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn service(format: LogFormat, path: PathBuf, role: Role) -> i32 {
    logging::init(format, "info");
    let settings = match config::load(&path) {
        Ok(s) => s,
        Err(problems) => {
            tracing::error!("invalid configuration:\n{problems}");
            eprintln!("{problems}");
            return 1;
        }
    };
    if settings.role() != role {
        let msg = format!(
            "{} configures the {} (role = \"{}\"), not the {role}: run `causeway {} --config {}`",
            path.display(),
            settings.role(),
            settings.role(),
            settings.role(),
            path.display()
        );
        tracing::error!("{msg}");
        return 1;
    }
    causeway::run::run(settings, path)
}
