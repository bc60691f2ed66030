//! `causeway-sim`: run seeds of the fault simulation.
//!
//! ```text
//! causeway-sim --seeds 1000            # sweep seeds 0..1000
//! causeway-sim --seeds 5000..6000      # sweep a range
//! causeway-sim --seed 42 --trace       # replay one seed with full tracing
//! causeway-sim --seeds 200 --check-determinism
//! ```

use std::process::ExitCode;

use causeway_sim::sweep::{
    COVERAGE_GATE_SEEDS, SweepOptions, coverage_gate, run_checked, sweep, work,
};
use causeway_sim::{Focus, RunOptions, TraceMode, Variant, run_seed};

const USAGE: &str = "usage: causeway-sim (--seeds N | --seeds A..B | --seed S) [--trace] [--check-determinism] [--jobs J] [--quiet]
  --seeds N            sweep seeds 0..N (A..B: seeds A to B-1)
  --seed S             run one seed and print its outcome
  --trace              with --seed: every tracing event to stderr, simulated timestamps
                       (filter with CAUSEWAY_SIM_LOG, default \"trace,turmoil=info\")
  --check-determinism  run each seed twice and fail if the traces differ by one byte
  --jobs J             worker processes for a sweep (default: available cores)
  --quiet              no progress line, no failure reports as they are found
  --focus F            turn each seed's swarm towards one fault class: line, relay,
                       edge-crash, servers, proxy-and-mua, big-messages
  --baseline-direct    the mail client talks plain POP3 straight to mail1 over the bad
                       line, without Causeway: shows what the checks catch without it
  --broken NAME        (built with --features broken-variants) a deliberately broken node;
                       `--broken list` names them all";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds: Option<(u64, u64)> = None;
    let mut one: Option<u64> = None;
    let mut trace = false;
    let mut det = false;
    let mut quiet = false;
    let mut variant = Variant::Causeway;
    let mut focus = None;
    let mut worker: Option<(u64, u64)> = None;
    let mut jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| -> String {
            it.next().cloned().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--seeds" => {
                let v = val("--seeds");
                seeds = Some(match v.split_once("..") {
                    Some((a, b)) => (parse(a), parse(b)),
                    None => (0, parse(&v)),
                });
            }
            "--seed" => one = Some(parse(&val("--seed"))),
            "--jobs" => jobs = parse(&val("--jobs")) as usize,
            "--trace" => trace = true,
            "--worker" => {
                let v = val("--worker");
                let (k, j) = v.split_once('/').unwrap_or(("0", "1"));
                worker = Some((parse(k), parse(j)));
            }
            "--check-determinism" => det = true,
            "--quiet" => quiet = true,
            "--baseline-direct" => variant = Variant::DirectPop3,
            #[cfg(feature = "broken-variants")]
            "--broken" => {
                let v = val("--broken");
                if v == "list" {
                    for b in causeway_sim::world::Broken::all() {
                        println!("{}", b.name());
                    }
                    return ExitCode::SUCCESS;
                }
                variant =
                    Variant::Broken(causeway_sim::world::Broken::parse(&v).unwrap_or_else(|e| {
                        eprintln!("{e}\n{USAGE}");
                        std::process::exit(2)
                    }));
            }
            "--focus" => {
                let v = val("--focus");
                focus = Some(Focus::parse(&v).unwrap_or_else(|| {
                    eprintln!("unknown focus {v:?}\n{USAGE}");
                    std::process::exit(2)
                }));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if !causeway_sim::run::FULLY_SEEDED && (det || trace) {
        eprintln!(
            "note: built without --cfg tokio_unstable (the workspace's .cargo/config.toml sets it): \
             tokio::select! then picks among ready branches from an unseeded rng, so a run may differ \
             from its replay"
        );
    }
    if let Some(seed) = one {
        let out = if det {
            run_checked(seed, variant, focus)
        } else {
            let t = if trace {
                TraceMode::Stderr
            } else {
                TraceMode::Off
            };
            run_seed(
                seed,
                &RunOptions {
                    trace: t,
                    variant,
                    focus,
                },
            )
        };
        println!("{}", out.params);
        for l in &out.log {
            println!("  {l}");
        }
        for n in &out.notes {
            println!("  note: {n}");
        }
        let reached: Vec<&str> = out.coverage.iter().map(|c| c.name()).collect();
        println!("reached: {}", reached.join(", "));
        println!("simulated {}.{:03}s", out.sim_ms / 1000, out.sim_ms % 1000);
        if out.failed() {
            println!("{}", out.report());
            println!("seeds: 1, failures: 1");
            return ExitCode::FAILURE;
        }
        println!("seeds: 1, failures: 0");
        return ExitCode::SUCCESS;
    }
    let Some((first, end)) = seeds else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let opts = SweepOptions {
        first,
        end,
        jobs,
        check_determinism: det,
        progress: !quiet,
        print_failures: !quiet,
        variant,
        focus,
    };
    if let Some((k, j)) = worker {
        work(&opts, k, j);
        return ExitCode::SUCCESS;
    }
    let result = sweep(&opts);
    print!("{}", result.coverage);
    let missing = result.coverage.missing();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
        println!("never reached: {}", names.join(", "));
    }
    println!(
        "wall {:.1}s, {:.1} seeds/min with {jobs} jobs, {:.1} simulated hours{}",
        result.wall_secs,
        result.seeds_per_minute(),
        result.simulated_ms as f64 / 3_600_000.0,
        if det { " (each seed run twice)" } else { "" }
    );
    let ungated = coverage_gate(&opts, &result);
    if !ungated.is_empty() {
        let names: Vec<&str> = ungated.iter().map(|c| c.name()).collect();
        println!(
            "coverage gate: a plain sweep of {COVERAGE_GATE_SEEDS}+ seeds must reach every gated \
             situation; none reached: {}",
            names.join(", ")
        );
    }
    for f in &result.failures {
        println!(
            "failed seed {}: {}\n  replay: {}",
            f.seed, f.first, f.replay
        );
    }
    println!(
        "seeds: {}, failures: {}",
        result.seeds,
        result.failures.len()
    );
    if result.failures.is_empty() && ungated.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse(s: &str) -> u64 {
    s.trim().parse().unwrap_or_else(|_| {
        eprintln!("{s:?} is not a number\n{USAGE}");
        std::process::exit(2)
    })
}
