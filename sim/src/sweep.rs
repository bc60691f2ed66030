//! Many seeds: spread over worker processes, with a progress line and a
//! summary. Each worker runs its seeds one after another, so what a seed
//! does never depends on how many workers there are. The wall clock here
//! measures throughput only; nothing that runs inside a simulation sees it.

use std::io::{BufRead, Write};
use std::sync::mpsc;

use crate::coverage::{Cov, CoverageCounts};
use crate::oracle::Violation;
use crate::report::{Outcome, RunOptions, TraceMode};
use crate::run::run_seed;
use crate::swarm::Focus;
use crate::world::Variant;

/// A plain sweep (the real system, no focus) of this many seeds or more
/// fails when a gated coverage counter stayed at zero ([`Cov::gated`]): a
/// check no seed exercised proves nothing. At 1,000 seeds the rarest gated
/// counter is expected about 14 times (28 in 2,000; a read on the phone
/// shown at the IMAP front, since stop 59, 147 in 10,000), so a zero means
/// the situation stopped happening, not bad luck.
pub const COVERAGE_GATE_SEEDS: u64 = 1000;

/// Whether a sweep's coverage fails it: the situations it should have
/// reached and did not (empty when the sweep is not gated).
pub fn coverage_gate(opts: &SweepOptions, result: &SweepResult) -> Vec<Cov> {
    let plain = opts.variant == Variant::Causeway && opts.focus.is_none();
    if !plain || result.seeds < COVERAGE_GATE_SEEDS {
        return Vec::new();
    }
    result
        .coverage
        .missing()
        .into_iter()
        .filter(|c| c.gated())
        .collect()
}

#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub first: u64,
    /// One past the last seed.
    pub end: u64,
    pub jobs: usize,
    /// Run each seed twice with the trace captured, and fail it if the two
    /// traces differ by one byte.
    pub check_determinism: bool,
    /// Print a progress line now and then (to stderr).
    pub progress: bool,
    /// Print each failure's report as it is found.
    pub print_failures: bool,
    pub variant: Variant,
    pub focus: Option<Focus>,
}

#[derive(Debug, Default)]
pub struct SweepResult {
    pub seeds: u64,
    pub failures: Vec<Failure>,
    pub coverage: CoverageCounts,
    pub simulated_ms: u64,
    pub wall_secs: f64,
}

impl SweepResult {
    pub fn seeds_per_minute(&self) -> f64 {
        if self.wall_secs > 0.0 {
            self.seeds as f64 * 60.0 / self.wall_secs
        } else {
            0.0
        }
    }
}

/// Runs one seed twice with captured traces; a difference is a violation.
pub fn run_checked(seed: u64, variant: Variant, focus: Option<Focus>) -> Outcome {
    let opts = RunOptions {
        trace: TraceMode::Capture,
        variant,
        focus,
    };
    let mut a = run_seed(seed, &opts);
    let b = run_seed(seed, &opts);
    let (fa, fb) = (a.fingerprint(), b.fingerprint());
    if fa != fb {
        let la: Vec<&[u8]> = fa.split(|b| *b == b'\n').collect();
        let lb: Vec<&[u8]> = fb.split(|b| *b == b'\n').collect();
        let i = la
            .iter()
            .zip(&lb)
            .position(|(x, y)| x != y)
            .unwrap_or(la.len().min(lb.len()));
        let show = |v: &Vec<&[u8]>| {
            v.get(i).map_or("<end of trace>".to_owned(), |l| {
                String::from_utf8_lossy(l).into_owned()
            })
        };
        a.violations.push(Violation {
            invariant: 0,
            key: None,
            message: format!(
                "nondeterministic: the two runs' traces ({} and {} bytes) first differ at line {}:\n    first:  {}\n    second: {}",
                fa.len(),
                fb.len(),
                i + 1,
                show(&la),
                show(&lb)
            ),
        });
    }
    a.trace = None;
    a
}

/// One failing seed, as the summary lists it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub first: String,
    pub replay: String,
}

fn run_one(seed: u64, opts: &SweepOptions) -> Outcome {
    if opts.check_determinism {
        run_checked(seed, opts.variant, opts.focus)
    } else {
        run_seed(
            seed,
            &RunOptions {
                trace: TraceMode::Off,
                variant: opts.variant,
                focus: opts.focus,
            },
        )
    }
}

/// One seed's result as a line a worker process prints and the parent reads.
fn result_line(o: &Outcome) -> String {
    let cov: Vec<String> = o
        .coverage
        .iter()
        .map(|c| {
            Cov::ALL
                .iter()
                .position(|x| x == c)
                .unwrap_or(0)
                .to_string()
        })
        .collect();
    let mut line = format!(
        "@result {} {} {} {}",
        o.seed,
        u8::from(o.failed()),
        o.sim_ms,
        if cov.is_empty() {
            "-".to_owned()
        } else {
            cov.join(",")
        }
    );
    if let Some(v) = o.violations.first() {
        line.push_str(&format!(
            "\t{}\t{}",
            o.replay(),
            v.to_string().replace(['\n', '\t'], " ")
        ));
    }
    line
}

/// Worker mode (`--worker K/J`): runs every J-th seed from `first + K`, one
/// line per seed on stdout, failure reports on stderr.
pub fn work(opts: &SweepOptions, k: u64, j: u64) {
    let mut out = std::io::stdout().lock();
    let mut seed = opts.first + k;
    while seed < opts.end {
        let o = run_one(seed, opts);
        if o.failed() && opts.print_failures {
            eprintln!("{}", o.report());
        }
        let _ = writeln!(out, "{}", result_line(&o));
        let _ = out.flush();
        seed += j.max(1);
    }
}

/// Runs the seeds in `jobs` worker processes (one is fine).
///
/// Processes, not threads: tokio numbers tasks from one process-wide
/// counter, and a crash's teardown order depends on the numbers (see
/// `run::align_task_ids`), so two simulations must never spawn tasks at the
/// same time in one process.
pub fn sweep(opts: &SweepOptions) -> SweepResult {
    let started = std::time::Instant::now(); // seam-lint: allow (throughput only, outside any simulation)
    let total = opts.end.saturating_sub(opts.first);
    let jobs = opts.jobs.max(1) as u64;
    let (tx, rx) = mpsc::channel::<String>();
    let mut children = Vec::new();
    {
        let exe = std::env::current_exe().expect("the path of this binary");
        for k in 0..jobs {
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("--worker")
                .arg(format!("{k}/{jobs}"))
                .arg("--seeds")
                .arg(format!("{}..{}", opts.first, opts.end));
            if opts.check_determinism {
                cmd.arg("--check-determinism");
            }
            if !opts.print_failures {
                cmd.arg("--quiet");
            }
            cmd.args(opts.variant.args());
            if let Some(f) = opts.focus {
                cmd.arg("--focus").arg(f.name());
            }
            cmd.stdout(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("start a worker process");
            let stdout = child.stdout.take().expect("piped stdout");
            let tx = tx.clone();
            // Reads a worker's result lines; runs no simulation.
            let read = move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("@result ") && tx.send(line).is_err() {
                        break;
                    }
                }
            };
            std::thread::spawn(read); // seam-lint: allow (outside any simulation)
            children.push(child);
        }
        drop(tx);
    }
    let mut result = SweepResult::default();
    let every = (total / 50).clamp(1, 500);
    for line in rx {
        let (head, fail) = match line.split_once('\t') {
            Some((h, rest)) => (h.to_owned(), Some(rest.to_owned())),
            None => (line.clone(), None),
        };
        let f: Vec<&str> = head.split(' ').collect();
        if f.len() < 5 {
            continue;
        }
        let seed: u64 = f[1].parse().unwrap_or(0);
        result.seeds += 1;
        result.simulated_ms += f[3].parse::<u64>().unwrap_or(0);
        let reached: Vec<Cov> = f[4]
            .split(',')
            .filter_map(|i| i.parse::<usize>().ok())
            .filter_map(|i| Cov::ALL.get(i).copied())
            .collect();
        result.coverage.add(&reached);
        if f[2] == "1" {
            let (replay, first) = fail
                .as_deref()
                .and_then(|r| r.split_once('\t'))
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .unwrap_or_default();
            result.failures.push(Failure {
                seed,
                first,
                replay,
            });
        }
        if opts.progress && (result.seeds % every == 0 || result.seeds == total) {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "progress: {}/{} seeds, {} failures, {:.1} seeds/min",
                result.seeds,
                total,
                result.failures.len(),
                result.seeds as f64 * 60.0 / secs.max(1e-9)
            );
        }
    }
    for mut c in children {
        let _ = c.wait();
    }
    if result.seeds < total {
        result.failures.push(Failure {
            seed: opts.first + result.seeds,
            first: format!(
                "only {} of {total} seeds reported a result (a worker died?)",
                result.seeds
            ),
            replay: String::new(),
        });
    }
    result.failures.sort_by_key(|f| f.seed);
    result.wall_secs = started.elapsed().as_secs_f64();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(variant: Variant, focus: Option<Focus>) -> SweepOptions {
        SweepOptions {
            first: 0,
            end: COVERAGE_GATE_SEEDS,
            jobs: 1,
            check_determinism: false,
            progress: false,
            print_failures: false,
            variant,
            focus,
        }
    }

    fn result(seeds: u64, reached: &[Cov]) -> SweepResult {
        let mut coverage = CoverageCounts::default();
        coverage.add(reached);
        SweepResult {
            seeds,
            coverage,
            ..SweepResult::default()
        }
    }

    #[test]
    fn a_large_plain_sweep_fails_on_a_gated_situation_never_reached() {
        let all_but_one: Vec<Cov> = Cov::ALL
            .iter()
            .copied()
            .filter(|c| *c != Cov::EdgeCrash)
            .collect();
        let plain = options(Variant::Causeway, None);
        assert_eq!(
            coverage_gate(&plain, &result(COVERAGE_GATE_SEEDS, &all_but_one)),
            vec![Cov::EdgeCrash]
        );
        // Too few seeds, a focused sweep, the baseline: shown, not gated.
        assert!(coverage_gate(&plain, &result(COVERAGE_GATE_SEEDS - 1, &all_but_one)).is_empty());
        let focused = options(Variant::Causeway, Some(Focus::Relay));
        assert!(coverage_gate(&focused, &result(COVERAGE_GATE_SEEDS, &all_but_one)).is_empty());
        let baseline = options(Variant::DirectPop3, None);
        assert!(coverage_gate(&baseline, &result(COVERAGE_GATE_SEEDS, &all_but_one)).is_empty());
        // What only a focus brings about is shown, not gated.
        let all_but_rare: Vec<Cov> = Cov::ALL.iter().copied().filter(|c| c.gated()).collect();
        assert!(coverage_gate(&plain, &result(COVERAGE_GATE_SEEDS, &all_but_rare)).is_empty());
    }
}
