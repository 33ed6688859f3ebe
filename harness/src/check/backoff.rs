//! `backoff_reset`: a success resets a key's backoff (the workqueue's `forget`). The n-th
//! retryable failure of a key since its last success (or since the instance started, or
//! its last dead letter) is retried within `base × 2^(n-1)` of its end, plus one tick — the
//! per-item exponential limiter's delay for a key whose count started again at the success
//! — and an injected retryable error is dead-lettered only after `max_retries` retries in a
//! row since then. A runtime that does not forget retries the key after the grown delay of
//! the failures before the success, and gives up on it early.
//! While every worker is busy the retry cannot start, so the deadline waits for one to be
//! free. Judged for our runtime (kube-runtime's Controller requeues errors after a fixed
//! delay of its error policy).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::timeout::jitters_watch_timeouts;
use super::{Evidence, Found, Violation};
use crate::scenario::ErrorClass;
use crate::trace::{Entry, Outcome, Record};

/// The per-item limiter's base delay (the controller's default rate limiter).
pub(super) const RETRY_BASE: Duration = Duration::from_millis(5);

pub(super) fn backoff_reset(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    if !jitters_watch_timeouts(&ev.scenario.subject.name) {
        return found.out;
    }
    let workers = ev.scenario.subject.config.workers.max(1);
    let max = ev.scenario.subject.config.max_retries;
    let retryable = ErrorClass::Retryable.injected_message();
    let tick = ev.scenario.tick.0;
    for (instance, segments) in ev.incarnations() {
        for seg in segments {
            // key -> retryable failures since its last success
            let mut streak: BTreeMap<&str, u32> = BTreeMap::new();
            let mut in_flight: BTreeSet<&str> = BTreeSet::new();
            for (i, e) in seg.iter().enumerate() {
                let (key, outcome) = match &e.record {
                    Record::ReconcileStart { key } => {
                        in_flight.insert(key);
                        continue;
                    }
                    Record::ReconcileEnd { key, outcome } => (key, outcome),
                    _ => continue,
                };
                in_flight.remove(key.as_str());
                if !matches!(outcome, Outcome::Retry(_)) {
                    let n = streak.remove(key.as_str()).unwrap_or(0);
                    if matches!(outcome, Outcome::DeadLetter(m) if *m == retryable) && n < max {
                        let msg = format!(
                            "s{instance} dead-lettered {key} after {n} retries since its last success, below max_retries={max} (the backoff count was not reset)"
                        );
                        found.add(key.clone(), e.at, msg);
                    }
                    continue;
                }
                let n = streak.entry(key).or_default();
                *n += 1;
                let allowed = RETRY_BASE * 2u32.saturating_pow(*n - 1) + tick;
                let due = e.at + allowed;
                if let Some(late) = retried_late(&seg[i + 1..], key, due, &in_flight, workers) {
                    let msg = format!(
                        "s{instance} retried {key} {} after its failure #{} since a success, expected within {} (the backoff was not reset)",
                        humantime::format_duration(late.saturating_sub(e.at)),
                        *n,
                        humantime::format_duration(allowed)
                    );
                    found.add(key.clone(), e.at, msg);
                }
            }
        }
    }
    found.out
}

/// When `key` was next started if that was after `deadline` with a worker free; `None` when
/// it started in time (or the segment ended first). `busy` are the keys in flight when it
/// failed; the deadline moves while every worker is busy.
fn retried_late<'a>(
    rest: &[&'a Entry],
    key: &str,
    deadline: Duration,
    busy: &BTreeSet<&'a str>,
    workers: usize,
) -> Option<Duration> {
    let mut deadline = deadline;
    let mut busy = busy.clone();
    let mut late = false;
    for e in rest {
        if e.at > deadline {
            match busy.len() >= workers {
                true => deadline = e.at,
                false => late = true,
            }
        }
        match &e.record {
            Record::ReconcileStart { key: k } if k == key => {
                return late.then_some(e.at);
            }
            Record::ReconcileStart { key: k } => {
                busy.insert(k);
            }
            Record::ReconcileEnd { key: k, .. } => {
                busy.remove(k.as_str());
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{end, start, Case};
    use crate::scenario::{Checker, SubjectKind};
    use crate::trace::Outcome;

    fn fail() -> Outcome {
        Outcome::Retry("boom".into())
    }

    fn controller() -> Case {
        Case::with_config(SubjectKind::Controller, r#"{"workers": 1}"#, "")
    }

    #[test]
    fn backoff_reset_passes_a_retry_at_the_base_delay_after_a_success() {
        let mut c = controller();
        for (t, r) in [(1, start("default/a")), (1, end("default/a", fail()))] {
            c.record(t, Some(0), r);
        }
        c.record(1, Some(0), start("default/a"));
        c.record(2, Some(0), end("default/a", Outcome::Ok));
        c.record(5, Some(0), start("default/a"));
        c.record(5, Some(0), end("default/a", fail()));
        c.record(5, Some(0), start("default/a"));
        c.record(5, Some(0), end("default/a", Outcome::Ok));
        assert!(c.violations(Checker::BackoffReset).is_empty());
    }

    #[test]
    fn backoff_reset_finds_a_retry_after_a_grown_delay_following_a_success() {
        let mut c = controller();
        c.record(5, Some(0), start("default/a"));
        c.record(5, Some(0), end("default/a", Outcome::Ok));
        c.record(6, Some(0), start("default/a"));
        c.record(6, Some(0), end("default/a", fail()));
        c.record(8, Some(0), start("default/a"));
        assert_eq!(
            c.messages(Checker::BackoffReset),
            ["s0 retried default/a 2s after its failure #1 since a success, expected within 15ms (the backoff was not reset)"]
        );
    }

    #[test]
    fn backoff_reset_finds_a_retryable_error_dead_lettered_early_after_a_success() {
        // max_retries=2: a, a retry, success, then failures: two retries are due before
        // the dead letter; one is too few.
        let mut c = Case::with_config(SubjectKind::Controller, r#"{"max_retries": 2}"#, "");
        let injected = || crate::scenario::ErrorClass::Retryable.injected_message();
        c.record(1, Some(0), start("default/a"));
        c.record(1, Some(0), end("default/a", Outcome::Retry(injected())));
        c.record(1, Some(0), start("default/a"));
        c.record(1, Some(0), end("default/a", Outcome::Ok));
        for _ in 0..2 {
            c.record(3, Some(0), start("default/a"));
            c.record(3, Some(0), end("default/a", Outcome::Retry(injected())));
        }
        c.record(3, Some(0), start("default/a"));
        c.record(
            3,
            Some(0),
            end("default/a", Outcome::DeadLetter(injected())),
        );
        assert!(c.violations(Checker::BackoffReset).is_empty());
        c.record(9, Some(0), start("default/a"));
        c.record(9, Some(0), end("default/a", Outcome::Ok));
        c.record(10, Some(0), start("default/a"));
        c.record(10, Some(0), end("default/a", Outcome::Retry(injected())));
        c.record(10, Some(0), start("default/a"));
        c.record(
            10,
            Some(0),
            end("default/a", Outcome::DeadLetter(injected())),
        );
        assert_eq!(
            c.messages(Checker::BackoffReset),
            ["s0 dead-lettered default/a after 1 retries since its last success, below max_retries=2 (the backoff count was not reset)"]
        );
    }

    #[test]
    fn backoff_reset_waits_for_a_busy_worker() {
        // One worker, busy with b from 6 s to 9 s: a's retry at 9 s is in time.
        let mut c = controller();
        c.record(6, Some(0), start("default/a"));
        c.record(6, Some(0), end("default/a", fail()));
        c.record(6, Some(0), start("default/b"));
        c.record(9, Some(0), end("default/b", Outcome::Ok));
        c.record(9, Some(0), start("default/a"));
        assert!(c.violations(Checker::BackoffReset).is_empty());
    }

    #[test]
    fn backoff_reset_counts_a_worker_busy_since_before_the_failure() {
        // Two workers: b (from 5 s) and c (from 6 s) hold both until 8 s.
        let mut c = Case::with_config(SubjectKind::Controller, r#"{"workers": 2}"#, "");
        c.record(5, Some(0), start("default/b"));
        c.record(6, Some(0), start("default/a"));
        c.record(6, Some(0), end("default/a", fail()));
        c.record(6, Some(0), start("default/c"));
        c.record(8, Some(0), end("default/b", Outcome::Ok));
        c.record(8, Some(0), start("default/a"));
        assert!(c.violations(Checker::BackoffReset).is_empty());
    }
}
