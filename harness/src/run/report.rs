//! A run's outcome: each checker's verdict, counters, the trace, rendered as stable text
//! (no wall clock) for snapshots and the command line.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use crate::check::WatchRequest;

use crate::check::Verdict;
use crate::scenario::Checker;
use crate::trace::{self, Entry};
use crate::watch_log::{ClientList, ClientWatch};

/// Traces longer than this many lines are shown as head + tail in reports.
pub const TRACE_SHOWN_LINES: usize = 300;

/// The outcome of one scenario run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Subject name.
    pub subject: String,
    /// Seed used.
    pub seed: u64,
    /// Simulated time run.
    pub simulated: Duration,
    /// Wall-clock time taken (not part of the rendered report).
    pub wall: Duration,
    /// Counters: events, watches, 410s, relists, reconciles, retries, dead letters, ...
    pub counters: BTreeMap<String, u64>,
    /// Each checker's verdict.
    pub verdicts: Vec<Verdict>,
    /// Checkers the scenario expected to fail.
    pub expected: Vec<Checker>,
    /// Watch requests per second over the scenario's `watch_rate` window, if asked for.
    pub watch_rate: Option<f64>,
    /// The full trace.
    pub trace: String,
    /// Every record of the run, in time order (what the trace shows, deliveries included).
    pub entries: Vec<Entry>,
    /// Every watch request the apiserver saw: when, which replica, `timeoutSeconds`.
    pub watch_requests: Vec<WatchRequest>,
    /// Every watch connection as the subjects' clients saw it.
    pub client_watches: Vec<ClientWatch>,
    /// Every list request the subjects' clients made.
    pub client_lists: Vec<ClientList>,
    /// What the run did that the harness does not make deterministic (not rendered).
    pub uncontrolled: Uncontrolled,
    /// Every live object at the end (runs of a user's controller only; not rendered).
    pub end_state: Vec<Arc<serde_json::Value>>,
}

/// Sources of non-determinism a run used that are counted, not seeded (see
/// `kube_chaos_norandom`): the divergence finder names them when two runs differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uncontrolled {
    /// Threads started from the simulation's thread (their randomness is the kernel's).
    pub threads_spawned: u64,
    /// `SystemTime::now` (`CLOCK_REALTIME`) reads on the simulation's thread.
    pub wall_clock_reads: u64,
}

impl Uncontrolled {
    /// What this run's thread did so far (zero outside a seeded run).
    pub fn so_far() -> Self {
        Self {
            threads_spawned: kube_chaos_norandom::threads_spawned(),
            wall_clock_reads: kube_chaos_norandom::wall_clock_reads(),
        }
    }

    /// What happened after `earlier` (the harness's own uses, such as turmoil's builder
    /// reading the wall clock for a default epoch, left out).
    pub fn since(self, earlier: Self) -> Self {
        Self {
            threads_spawned: self.threads_spawned - earlier.threads_spawned,
            wall_clock_reads: self.wall_clock_reads - earlier.wall_clock_reads,
        }
    }

    /// One line naming each source used, if any.
    pub fn describe(&self) -> Option<String> {
        let mut used = Vec::new();
        if self.threads_spawned > 0 {
            used.push(format!("started {} thread(s)", self.threads_spawned));
        }
        if self.wall_clock_reads > 0 {
            used.push(format!(
                "read the wall clock {} time(s)",
                self.wall_clock_reads
            ));
        }
        (!used.is_empty()).then(|| used.join(" and "))
    }
}

impl Report {
    /// Checkers that found violations.
    pub fn violated(&self) -> Vec<Checker> {
        self.verdicts
            .iter()
            .filter(|v| !v.violations.is_empty())
            .map(|v| v.checker)
            .collect()
    }

    /// The verdict of `checker`, if it judged the run.
    pub fn verdict(&self, checker: Checker) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.checker == checker)
    }

    /// Whether exactly the expected checkers failed.
    pub fn met(&self) -> bool {
        let mut found = self.violated();
        let mut want = self.expected.clone();
        found.sort_unstable();
        want.sort_unstable();
        want.dedup();
        found == want
    }

    /// The report as stable text (no wall clock): verdicts, counters, trace (head and tail
    /// when long, with a digest of the whole).
    pub fn render(&self) -> String {
        let mut out = format!(
            "scenario: {}\nsubject: {}\nseed: {}\nsimulated: {}\nverdict: {}\n",
            self.scenario,
            self.subject,
            self.seed,
            humantime::format_duration(self.simulated),
            if self.met() { "met" } else { "UNMET" },
        );
        if !self.expected.is_empty() {
            let names: Vec<&str> = self.expected.iter().map(|c| c.name()).collect();
            out += &format!("expected violations: {}\n", names.join(", "));
        }
        if let Some(r) = self.watch_rate {
            out += &format!("watch requests/s: {r:.3}\n");
        }
        out += "\ncounters:\n";
        for (k, v) in &self.counters {
            out += &format!("  {k:<14} {v}\n");
        }
        out += "\ncheckers:\n";
        for v in &self.verdicts {
            out += &v.render();
        }
        out += &format!(
            "\ntrace ({} lines, digest {:016x}):\n",
            self.trace.lines().count(),
            trace::digest(&self.trace)
        );
        out += &shown_trace(&self.trace);
        out
    }
}

fn shown_trace(trace: &str) -> String {
    let lines: Vec<&str> = trace.lines().collect();
    if lines.len() <= TRACE_SHOWN_LINES {
        return trace.to_string();
    }
    let half = TRACE_SHOWN_LINES / 2;
    let mut out = lines[..half].join("\n");
    out += &format!("\n  ... {} lines omitted ...\n", lines.len() - 2 * half);
    out += &lines[lines.len() - half..].join("\n");
    out.push('\n');
    out
}
