//! What a scenario expects the checkers to find, and the closed set of checkers it may name.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Dur;

/// A checker (DESIGN.md §6). Which ones judge a run depends on the subject's kind
/// (`check::checkers_for`); a scenario names them in `expect.violations`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Checker {
    /// A RetryWatcher delivers exactly the true history after its start RV.
    WatchExact,
    /// Nothing delivered is older than what was already delivered.
    NoHistoricalReplay,
    /// A cache ends equal to the server and observed every long-lived version.
    NoEventLoss,
    /// No key is reconciled by two workers at once.
    QueueExclusive,
    /// Every observed change is followed by a reconcile of its key.
    ReconcileCoverage,
    /// No key is dead-lettered twice without a change in between.
    DeadLetterOnce,
    /// Retries back off and stop at `max_retries`.
    RetryBackoff,
    /// The desired state holds at the end and has stopped changing.
    Convergence,
    /// The watch-request rate at the apiserver is within `expect.watch_rate`.
    WatchRate,
    /// A user's condition holds within `settle` after faults healed and the workload
    /// stopped, and keeps holding (Anvil's eventually stable reconciliation).
    EventuallyStable,
    /// The end state equals the same run's without faults, modulo volatile fields (Sieve's
    /// differential oracle, exact here because runs are deterministic).
    Differential,
    /// Everything the workload deleted is gone at the end (no stuck finalizer).
    DeletionsComplete,
    /// No owner ever had two live children of a kind declared unique.
    NoDuplicateChildren,
    /// The controller did not panic and its main did not return before the shutdown trigger.
    NoPanic,
    /// Once quiet, the controller's writes per second stay under `expect.write_rate`.
    WriteRate,
    /// No reconcile is in flight past `expect.stuck_after`, and every change of a reconciled
    /// key is reconciled within `settle`.
    NoStuckReconcile,
    /// External clients: after a 410 the next request for that resource is a relist.
    RelistAfterExpired,
    /// External clients: each client's list rate per resource is within `expect.list_rate`.
    ListRate,
    /// External clients: failed requests are retried no sooner than `Retry-After` and not
    /// in a tight loop.
    Backoff,
    /// Every watch asks for a `timeoutSeconds` in `[min_watch_timeout, 2 × min_watch_timeout)`.
    WatchTimeout,
    /// A success resets a key's backoff: its next failure is retried after the base delay.
    BackoffReset,
    /// A key asked for after a delay (`add_after`, `requeue_after`) is handed to a worker by
    /// the earliest time asked.
    AddAfterEarliest,
}

impl Checker {
    /// Every checker, in the order reports list them.
    pub const ALL: [Checker; 22] = [
        Checker::WatchExact,
        Checker::NoHistoricalReplay,
        Checker::NoEventLoss,
        Checker::QueueExclusive,
        Checker::ReconcileCoverage,
        Checker::DeadLetterOnce,
        Checker::RetryBackoff,
        Checker::Convergence,
        Checker::WatchRate,
        Checker::EventuallyStable,
        Checker::Differential,
        Checker::DeletionsComplete,
        Checker::NoDuplicateChildren,
        Checker::NoPanic,
        Checker::WriteRate,
        Checker::NoStuckReconcile,
        Checker::RelistAfterExpired,
        Checker::ListRate,
        Checker::Backoff,
        Checker::WatchTimeout,
        Checker::BackoffReset,
        Checker::AddAfterEarliest,
    ];

    /// The name scenario files and reports use (`watch_exact`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Checker::WatchExact => "watch_exact",
            Checker::NoHistoricalReplay => "no_historical_replay",
            Checker::NoEventLoss => "no_event_loss",
            Checker::QueueExclusive => "queue_exclusive",
            Checker::ReconcileCoverage => "reconcile_coverage",
            Checker::DeadLetterOnce => "dead_letter_once",
            Checker::RetryBackoff => "retry_backoff",
            Checker::Convergence => "convergence",
            Checker::WatchRate => "watch_rate",
            Checker::EventuallyStable => "eventually_stable",
            Checker::Differential => "differential",
            Checker::DeletionsComplete => "deletions_complete",
            Checker::NoDuplicateChildren => "no_duplicate_children",
            Checker::NoPanic => "no_panic",
            Checker::WriteRate => "write_rate",
            Checker::NoStuckReconcile => "no_stuck_reconcile",
            Checker::RelistAfterExpired => "relist_after_expired",
            Checker::ListRate => "list_rate",
            Checker::Backoff => "backoff",
            Checker::WatchTimeout => "watch_timeout",
            Checker::BackoffReset => "backoff_reset",
            Checker::AddAfterEarliest => "add_after_earliest",
        }
    }
}

impl fmt::Display for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What the checkers should find.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Checkers expected to report a violation (the scenario demonstrates a bug); every
    /// other checker must pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Checker>,
    /// Longest a version may live unobserved outside fault windows (default 60s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staleness_bound: Option<Dur>,
    /// Bounds on the watch requests per second measured from `watch_rate.from` (external
    /// clients: per client and resource; default at most 2/s over the whole run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_rate: Option<RateBounds>,
    /// Most writes per second a user's controller may send once quiet (the second half of
    /// `settle`; default 0.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_rate: Option<f64>,
    /// Longest a reconcile may be in flight before `no_stuck_reconcile` calls it stuck
    /// (default: `settle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_after: Option<Dur>,
    /// External clients: bounds on each client's list requests per second per resource,
    /// measured from `list_rate.from` (default: at most 2/s over the whole run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_rate: Option<RateBounds>,
}

/// Expected watch-request rate at the apiserver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBounds {
    /// Measure from this time to the end of `duration` (skips the start-up herd).
    pub from: Dur,
    /// Lowest acceptable watch requests per second.
    pub min: f64,
    /// Highest acceptable watch requests per second.
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_checker_is_named_as_serde_writes_it() {
        for c in Checker::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
            let back: Checker = serde_json::from_value(c.name().into()).unwrap();
            assert_eq!(back, c);
        }
    }
}
