//! Exploration (DESIGN.md §7): proptest generates small scenarios for one subject from a
//! seed, the runner runs them, and every distinct failure — a checker the subject violated —
//! is shrunk to a minimal scenario (fewest faults, fewest objects and writes, shortest
//! duration) and written as a replay file that `kube-chaos run` reproduces exactly.
//!
//! Everything is a function of `(subject, seed)`: case `i` is drawn from its own RNG seeded
//! from `(seed, i)`, so `--jobs` changes the wall time, never the cases, the failures or the
//! replay files.
//!
//! Shrinking runs in two passes, each candidate a full simulated run that must still violate
//! the same checker: proptest's own value-tree shrinking of the generated case (bounded),
//! then a greedy pass over the scenario itself (drop each fault, write and object; fewer
//! replicas; shorter duration; halve a fault's length; keep-alive back on) until nothing
//! more can go.
//!
//! - `generate`: the strategy of small scenarios, per-case value trees, [`fit`].
//! - `user`: the strategy for a user's controller (its CRDs, template objects, patches).
//! - `faults`: one generator per fault kind and the swarm selection (**a new fault kind**
//!   adds one line there).
//! - `shrink`: the two passes and the candidate list.
//! - `replay`: replay files.
//! - `shard`: a CI matrix's slice of the cases ([`Shard`]) and [`merge`] of the results.
//! - `reproduce`: every failing case runs again before it is shrunk; one whose two runs
//!   differ is reported as [`Unreproduced`] (with the divergence) instead.

mod faults;
mod generate;
pub mod profile;
mod replay;
mod reproduce;
mod shard;
mod shrink;
mod user;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::run::{self, Report, StdRandomness};
use crate::scenario::{Checker, Scenario};
use crate::subject::{registry, Descriptor, UnknownSubject};

pub use generate::{case_seed, fit, generate, strategy};
pub use replay::{replay_file_name, write_replays};
pub use reproduce::Unreproduced;
pub use shard::{merge, MergeError, Shard, ShardError};
use shrink::shrink;

/// What to explore.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subject name (see `kube-chaos subjects`).
    pub subject: String,
    /// Cases to generate.
    pub cases: u32,
    /// Seed of the whole exploration.
    pub seed: u64,
    /// Cases run in parallel (threads).
    pub jobs: usize,
    /// Stop generating once a case fails (the earliest failing case is still the same for
    /// any `jobs`).
    pub stop_at_first: bool,
    /// Most simulated runs spent shrinking one failure.
    pub shrink_runs: u32,
    /// Which of the cases `0..cases` this run explores ([`Shard::WHOLE`]: all).
    pub shard: Shard,
    /// Where the runs' std randomness comes from (seeded: the runs are deterministic even
    /// when the subject iterates a std `HashMap`).
    pub std_randomness: StdRandomness,
}

impl Options {
    /// `cases` cases of `subject` from `seed`, one job, shrinking with the default budget.
    pub fn new(subject: &str, cases: u32, seed: u64) -> Self {
        Self {
            subject: subject.to_string(),
            cases,
            seed,
            jobs: 1,
            stop_at_first: false,
            shrink_runs: 200,
            shard: Shard::WHOLE,
            std_randomness: StdRandomness::Seeded,
        }
    }
}

/// Why exploration could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExploreError {
    /// No such subject.
    #[error(transparent)]
    UnknownSubject(#[from] UnknownSubject),
    /// A count that must be positive was zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

/// What exploration reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A case finished; `failures` distinct failures so far.
    Case {
        /// Cases finished.
        done: u32,
        /// Distinct failures found so far.
        failures: usize,
    },
    /// Shrinking a failure of `checker`: `runs` simulated runs so far, `faults` left.
    Shrinking {
        /// The checker whose violation is being kept.
        checker: Checker,
        /// Runs spent.
        runs: u32,
        /// Faults in the smallest failing scenario so far.
        faults: usize,
    },
}

/// One distinct failure, shrunk.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The violated checker (with the subject, the failure's identity).
    pub checker: Checker,
    /// Index of the first case that showed it.
    pub case: u32,
    /// That case as generated.
    pub original: Scenario,
    /// The shrunk scenario (the replay file's content).
    pub scenario: Scenario,
    /// The report of the shrunk scenario's run.
    pub report: Report,
    /// Simulated runs spent shrinking.
    pub shrink_runs: u32,
    /// Wall time spent shrinking.
    pub shrink_wall: Duration,
}

/// A case the harness itself could not run (a bug in the harness, not in the subject).
#[derive(Debug, Clone)]
pub struct Broken {
    /// Case index.
    pub case: u32,
    /// The scenario.
    pub scenario: Scenario,
    /// What went wrong.
    pub error: String,
}

/// The result of one exploration.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// Subject explored.
    pub subject: String,
    /// Seed.
    pub seed: u64,
    /// Cases run.
    pub cases_run: u32,
    /// Distinct failures, shrunk, in the order first found.
    pub failures: Vec<Failure>,
    /// Cases the harness could not run.
    pub broken: Vec<Broken>,
    /// Failing cases that did not fail the same way when run again (not shrunk).
    pub unreproduced: Vec<Unreproduced>,
    /// Wall time running cases (not shrinking).
    pub cases_wall: Duration,
}

impl Exploration {
    /// Explored cases per wall second.
    pub fn cases_per_sec(&self) -> f64 {
        f64::from(self.cases_run) / self.cases_wall.as_secs_f64().max(1e-9)
    }
}

/// What one run of a case showed.
enum Ran {
    /// The report (violated checkers in it).
    Report(Box<Report>),
    /// The harness failed to run it.
    Broken(String),
}

/// Runs `s`, turning a run error or a panic into [`Ran::Broken`].
fn run_case(s: &Scenario, randomness: StdRandomness) -> Ran {
    if let Err(e) = s.validate(registry()) {
        return Ran::Broken(format!("generated an invalid scenario: {e}"));
    }
    match catch_unwind(AssertUnwindSafe(|| run::run_with(s, None, randomness))) {
        Ok(Ok(report)) => Ran::Report(Box::new(report)),
        Ok(Err(e)) => Ran::Broken(e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".into());
            Ran::Broken(format!("the run panicked: {what}"))
        }
    }
}

/// The report of `s` if its run violates `checker`.
fn violates(s: &Scenario, checker: Checker, randomness: StdRandomness) -> Option<Report> {
    match run_case(s, randomness) {
        Ran::Report(r) if r.violated().contains(&checker) => Some(*r),
        _ => None,
    }
}

/// Explores: runs the cases (in parallel with `jobs`), then shrinks each distinct failure.
pub fn explore(
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Exploration, ExploreError> {
    let subject = registry().get(&opts.subject)?;
    if opts.cases == 0 {
        return Err(ExploreError::Zero("cases"));
    }
    if opts.jobs == 0 {
        return Err(ExploreError::Zero("jobs"));
    }
    let started = Instant::now();
    let outcomes = run_cases(subject, opts, progress);
    let cases_wall = started.elapsed();
    let cases_run = outcomes.len() as u32;
    let found = shrink_all(subject, opts, outcomes, progress);
    Ok(Exploration {
        subject: subject.name.to_string(),
        seed: opts.seed,
        cases_run,
        failures: found.failures,
        broken: found.broken,
        unreproduced: found.unreproduced,
        cases_wall,
    })
}

/// What shrinking the cases' outcomes found.
#[derive(Default)]
struct Found {
    failures: Vec<Failure>,
    broken: Vec<Broken>,
    unreproduced: Vec<Unreproduced>,
}

/// Each distinct failure (a checker not yet seen) reproduced and shrunk, in case order; the
/// broken cases; the failing cases that did not reproduce.
fn shrink_all(
    subject: &'static Descriptor,
    opts: &Options,
    outcomes: Vec<(u32, CaseOutcome)>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Found {
    let mut found = Found::default();
    for (case, outcome) in outcomes {
        let (scenario, report) = match outcome {
            CaseOutcome::Pass => continue,
            CaseOutcome::Broken(scenario, error) => {
                let broken = Broken {
                    case,
                    scenario,
                    error,
                };
                found.broken.push(broken);
                continue;
            }
            CaseOutcome::Violated(scenario, report) => (scenario, report),
        };
        let new: Vec<Checker> = report
            .violated()
            .into_iter()
            .filter(|c| !found.failures.iter().any(|f| f.checker == *c))
            .filter(|c| !found.unreproduced.iter().any(|u| u.checkers.contains(c)))
            .collect();
        if new.is_empty() {
            continue;
        }
        if let Err(u) = reproduce::reproduce(case, &scenario, &report, opts.std_randomness) {
            found.unreproduced.push(*u);
            continue;
        }
        for checker in new {
            match shrink(subject, opts, case, &scenario, checker, progress) {
                Ok(f) => found.failures.push(f),
                Err(u) => found.unreproduced.push(*u),
            }
        }
    }
    found
}

/// What running one case showed.
enum CaseOutcome {
    Pass,
    Violated(Scenario, Box<Report>),
    Broken(Scenario, String),
}

/// Runs the shard's cases of `0..cases` on `jobs` threads; with `stop_at_first`, cases after
/// the earliest failing one are not run (all before it are, so the result does not depend on
/// `jobs`).
fn run_cases(
    subject: &'static Descriptor,
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Vec<(u32, CaseOutcome)> {
    let cases = opts.shard.cases(opts.cases);
    let next = AtomicUsize::new(0);
    let limit = AtomicU32::new(opts.cases);
    let done = AtomicU32::new(0);
    let failing = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<u32, CaseOutcome>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.min(cases.len()) {
            scope.spawn(|| {
                while let Some(&case) = cases.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if case >= limit.load(Ordering::SeqCst) {
                        break;
                    }
                    let scenario = generate(subject, opts.seed, case);
                    let outcome = match run_case(&scenario, opts.std_randomness) {
                        Ran::Report(r) if r.violated().is_empty() => CaseOutcome::Pass,
                        Ran::Report(r) => CaseOutcome::Violated(scenario, r),
                        Ran::Broken(e) => CaseOutcome::Broken(scenario, e),
                    };
                    if !matches!(outcome, CaseOutcome::Pass) {
                        failing.fetch_add(1, Ordering::SeqCst);
                        if opts.stop_at_first {
                            limit.fetch_min(case + 1, Ordering::SeqCst);
                        }
                    }
                    results.lock().expect("results lock").insert(case, outcome);
                    let done = done.fetch_add(1, Ordering::SeqCst) + 1;
                    progress(Progress::Case {
                        done,
                        failures: failing.load(Ordering::SeqCst),
                    });
                }
            });
        }
    });
    let limit = limit.load(Ordering::SeqCst);
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .filter(|(case, _)| *case < limit)
        .collect()
}
