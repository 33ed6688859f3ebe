//! Invariant checkers over a run's recorded history (DESIGN.md §6). Each reads the
//! [`Evidence`] — the server's true history, what each subject instance delivered, its final
//! view — and returns the violations it found; [`run_all`] runs those that apply to the
//! subject's kind and turns them into [`Verdict`]s.
//!
//! - [`evidence`](Evidence): what the checkers read, with the views they share (per
//!   incarnation segments, the server state, fault windows).
//! - `stream`: `watch_exact` and `no_historical_replay`.
//! - `cache`: `no_event_loss`.
//! - `control`: `queue_exclusive`, `reconcile_coverage`, `dead_letter_once`, `retry_backoff`,
//!   `convergence`.
//! - `rate`: `watch_rate`.
//! - `cluster`: what any controller gets without writing code, judged from the cluster:
//!   `eventually_stable`, `deletions_complete`, `no_duplicate_children`, `no_panic`,
//!   `write_rate` (a user's controller, [`SubjectKind::Operator`]).
//! - `differential`: the end state against the same run without faults.
//! - `stuck`: `no_stuck_reconcile`.
//! - [`served`]: the checkers of external clients (`kube-chaos serve --scenario`), from what
//!   the server saw: `no_historical_replay`, `relist_after_expired`, `watch_rate`,
//!   `list_rate`, `backoff`, and `no_event_loss` against a cache the client reports.
//! - `timeout`: `watch_timeout` (the server's access log of watch requests).
//! - `backoff`: `backoff_reset` (a success forgets a key's failures).
//! - `add_after`: `add_after_earliest` (a delayed key comes out by the earliest time asked).
//! - [`verdict`](Verdict): violations with their trace context, rendered.
//!
//! **A new checker** is a file here (or a function in the file of its family), its
//! [`Checker`] variant in `scenario/expect.rs`, and one arm in [`check`] (plus
//! [`checkers_for`] if it applies to a kind of subject).

mod add_after;
mod backoff;
pub(crate) mod cache;
mod cluster;
mod control;
mod differential;
mod evidence;
mod rate;
pub mod served;
mod stream;
mod stuck;
#[cfg(test)]
mod testkit;
mod timeout;
mod verdict;

use std::time::Duration;

use crate::scenario::{Checker, SubjectKind};
use crate::trace::{around, Entry};

pub use cluster::DEFAULT_WRITE_RATE;
pub use evidence::{ClusterEvidence, Evidence, WatchRequest};
pub use verdict::{Verdict, Violation};

/// The checkers that judge a subject of `kind` (and `watch_rate` when the scenario bounds
/// it), in report order.
pub fn checkers_for(kind: SubjectKind, watch_rate: bool) -> Vec<Checker> {
    let mut out = match kind {
        SubjectKind::Watcher => vec![Checker::WatchExact, Checker::NoHistoricalReplay],
        SubjectKind::Informer => vec![
            Checker::NoHistoricalReplay,
            Checker::NoEventLoss,
            Checker::WatchTimeout,
        ],
        SubjectKind::Controller => vec![
            Checker::QueueExclusive,
            Checker::ReconcileCoverage,
            Checker::DeadLetterOnce,
            Checker::RetryBackoff,
            Checker::Convergence,
            Checker::NoStuckReconcile,
            Checker::BackoffReset,
            Checker::AddAfterEarliest,
            Checker::WatchTimeout,
        ],
        SubjectKind::Operator => vec![
            Checker::EventuallyStable,
            Checker::Differential,
            Checker::DeletionsComplete,
            Checker::NoDuplicateChildren,
            Checker::NoPanic,
            Checker::WriteRate,
        ],
        SubjectKind::External => return served::checkers(false),
    };
    if watch_rate {
        out.push(Checker::WatchRate);
    }
    out
}

/// Runs one checker over the evidence.
pub fn check(checker: Checker, ev: &Evidence<'_>) -> Vec<Violation> {
    match checker {
        Checker::WatchExact => stream::watch_exact(ev),
        Checker::NoHistoricalReplay => stream::no_historical_replay(ev),
        Checker::NoEventLoss => cache::no_event_loss(ev),
        Checker::QueueExclusive => control::queue_exclusive(ev),
        Checker::ReconcileCoverage => control::reconcile_coverage(ev),
        Checker::DeadLetterOnce => control::dead_letter_once(ev),
        Checker::RetryBackoff => control::retry_backoff(ev),
        Checker::Convergence => control::convergence(ev),
        Checker::WatchRate => rate::watch_rate(ev),
        Checker::EventuallyStable => cluster::eventually_stable(ev),
        Checker::Differential => differential::differential(ev),
        Checker::DeletionsComplete => cluster::deletions_complete(ev),
        Checker::NoDuplicateChildren => cluster::no_duplicate_children(ev),
        Checker::NoPanic => cluster::no_panic(ev),
        Checker::WriteRate => cluster::write_rate(ev),
        Checker::NoStuckReconcile => stuck::no_stuck_reconcile(ev),
        // Judged from what a served apiserver saw (`served::check`), not from a simulation.
        Checker::RelistAfterExpired | Checker::ListRate | Checker::Backoff => Vec::new(),
        Checker::WatchTimeout => match timeout::jitters_watch_timeouts(&ev.scenario.subject.name) {
            true => timeout::watch_timeout(ev),
            false => Vec::new(),
        },
        Checker::BackoffReset => backoff::backoff_reset(ev),
        Checker::AddAfterEarliest => add_after::add_after_earliest(ev),
    }
}

/// Runs every checker that applies to the subject's kind (and `watch_rate` when asked for).
pub fn run_all(ev: &Evidence<'_>) -> Vec<Verdict> {
    checkers_for(ev.kind, ev.scenario.expect.watch_rate.is_some())
        .into_iter()
        .map(|checker| Verdict {
            checker,
            violations: check(checker, ev),
        })
        .collect()
}

/// Builds violations with trace context (the first few get the lines around them).
struct Found<'e> {
    entries: &'e [Entry],
    out: Vec<Violation>,
}

impl<'e> Found<'e> {
    fn new(ev: &Evidence<'e>) -> Self {
        Self {
            entries: ev.entries,
            out: Vec::new(),
        }
    }

    fn add(&mut self, key: impl Into<String>, at: Duration, message: impl Into<String>) {
        let context = if self.out.len() < verdict::SHOWN_VIOLATIONS {
            around(self.entries, at, 4)
        } else {
            Vec::new()
        };
        self.out.push(Violation {
            key: key.into(),
            at,
            message: message.into(),
            context,
        });
    }
}
