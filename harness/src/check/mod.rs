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
//! - `timeout`: `watch_timeout` (the server's access log of watch requests).
//! - `backoff`: `backoff_reset` (a success forgets a key's failures).
//! - [`verdict`](Verdict): violations with their trace context, rendered.
//!
//! **A new checker** is a file here (or a function in the file of its family), its
//! [`Checker`] variant in `scenario/expect.rs`, and one arm in [`check`] (plus
//! [`checkers_for`] if it applies to a kind of subject).

mod backoff;
mod cache;
mod control;
mod evidence;
mod rate;
mod stream;
#[cfg(test)]
mod testkit;
mod timeout;
mod verdict;

use std::time::Duration;

use crate::scenario::{Checker, SubjectKind};
use crate::trace::{around, Entry};

pub use evidence::{Evidence, WatchRequest};
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
            Checker::BackoffReset,
            Checker::WatchTimeout,
        ],
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
        Checker::WatchTimeout => match timeout::jitters_watch_timeouts(&ev.scenario.subject.name) {
            true => timeout::watch_timeout(ev),
            false => Vec::new(),
        },
        Checker::BackoffReset => backoff::backoff_reset(ev),
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
