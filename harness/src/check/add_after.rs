//! `add_after_earliest`: a key asked for after a delay is handed to a worker by the earliest
//! time asked (the workqueue's `add_after` / `requeue_after` keep the earliest time).
//!
//! A request is what a subject recorded as `Enqueued { key, after }` (its handler called
//! `add_after`) or a reconcile that ended `requeue_after=d`: made at `t`, due at
//! `D = t + after`. Any reconcile start of the key by the same incarnation at or after `t`
//! satisfies it (handing the key out cancels its wait). It is violated when no such start
//! happens by `D' + grace`, where `D'` is the first time from `D` on at which the instance
//! has no reconcile in flight at all (once that instant's records are applied) — busy workers, slow reconciles and the key itself in
//! flight excuse lateness — and `grace` covers the scenario's tick. Not judged when the
//! instance may have crashed between `t` and the deadline (its queue is lost), or when the
//! run (or the incarnation) ends first.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Evidence, Found, Violation};
use crate::scenario::Fault;
use crate::trace::{Entry, Outcome, Record};

/// Lateness allowed past `D'` (timers fire on the scenario's tick).
pub(super) const GRACE: Duration = Duration::from_secs(1);

/// One request: when made, for which key, when due.
struct Request<'a> {
    at: Duration,
    key: &'a str,
    due: Duration,
}

fn requests<'a>(seg: &[&'a Entry]) -> Vec<Request<'a>> {
    seg.iter()
        .filter_map(|e| {
            let (key, after) = match &e.record {
                Record::Enqueued { key, after } => (key, *after),
                Record::ReconcileEnd {
                    key,
                    outcome: Outcome::Requeue(d),
                } => (key, *d),
                _ => return None,
            };
            Some(Request {
                at: e.at,
                key,
                due: e.at + after,
            })
        })
        .collect()
}

/// The first time from `due` on at which nothing is in flight in `seg` once that instant's
/// records are applied (a key started at the very instant it came due keeps the instance
/// busy); `None`: never.
fn first_idle(seg: &[&Entry], due: Duration) -> Option<Duration> {
    let mut in_flight: BTreeSet<&str> = BTreeSet::new();
    let mut i = 0;
    while i < seg.len() && seg[i].at < due {
        apply(&mut in_flight, seg[i]);
        i += 1;
    }
    if in_flight.is_empty() && seg.get(i).is_none_or(|e| e.at > due) {
        return Some(due);
    }
    while i < seg.len() {
        let t = seg[i].at;
        while i < seg.len() && seg[i].at == t {
            apply(&mut in_flight, seg[i]);
            i += 1;
        }
        if in_flight.is_empty() {
            return Some(t);
        }
    }
    None
}

fn apply<'a>(in_flight: &mut BTreeSet<&'a str>, e: &'a Entry) {
    match &e.record {
        Record::ReconcileStart { key } => {
            in_flight.insert(key);
        }
        Record::ReconcileEnd { key, .. } => {
            in_flight.remove(key.as_str());
        }
        _ => {}
    }
}

/// Windows in which the instance may be down: from each crash fault's start to the
/// instance's next start (or the end of the run); a `crash_after_write` fires some time
/// in that window.
fn crash_windows(ev: &Evidence<'_>, starts: &[Duration]) -> Vec<(Duration, Duration)> {
    ev.scenario
        .faults
        .iter()
        .filter(|f| {
            matches!(
                f,
                Fault::CrashSubject { .. }
                    | Fault::CrashAfterWrite { .. }
                    | Fault::StaleRestart { .. }
            )
        })
        .map(|f| {
            let at = f.window().0 .0;
            let back = starts.iter().copied().find(|s| *s > at);
            (at, back.unwrap_or_else(|| ev.scenario.end()))
        })
        .collect()
}

pub(super) fn add_after_earliest(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    for (instance, segments) in ev.incarnations() {
        let starts: Vec<Duration> = segments.iter().map(|s| s[0].at).collect();
        let crashes = crash_windows(ev, &starts);
        let ends = starts.iter().skip(1).copied().chain([ev.scenario.end()]);
        for (seg, until) in segments.iter().zip(ends) {
            for r in requests(seg) {
                let Some(idle) = first_idle(seg, r.due) else {
                    continue;
                };
                let deadline = idle + GRACE;
                let crashed = crashes.iter().any(|(a, b)| *a <= deadline && *b >= r.at);
                if deadline > until || crashed {
                    continue;
                }
                let started = seg.iter().find(|e| {
                    e.at >= r.at
                        && matches!(&e.record, Record::ReconcileStart { key } if key == r.key)
                });
                if started.is_some_and(|e| e.at <= deadline) {
                    continue;
                }
                let then = started.map_or("never".to_string(), |e| fmt(e.at).to_string());
                let msg = format!(
                    "s{instance} asked for {} at {} due at {}, idle from {}: not handed to a worker by {} (reconciled: {then})",
                    r.key,
                    fmt(r.at),
                    fmt(r.due),
                    fmt(idle),
                    fmt(deadline)
                );
                found.add(r.key, r.due, msg);
            }
        }
    }
    found.out
}

fn fmt(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testkit::Case;
    use crate::scenario::{Checker, SubjectKind};
    use crate::trace::{Outcome, Record};

    fn start(key: &str) -> Record {
        Record::ReconcileStart { key: key.into() }
    }

    fn end(key: &str) -> Record {
        Record::ReconcileEnd {
            key: key.into(),
            outcome: Outcome::Ok,
        }
    }

    fn ask(key: &str, after_s: u64) -> Record {
        Record::Enqueued {
            key: key.into(),
            after: Duration::from_secs(after_s),
        }
    }

    /// `a` asked for after 10 s at 1 s and after 30 s at 3 s, reconciled at `at`.
    fn two_requests(at: u64) -> Vec<String> {
        let mut c = Case::new(SubjectKind::Controller, "");
        c.record(0, Some(0), Record::Start { incarnation: 0 });
        c.record(1, Some(0), ask("default/a", 10));
        c.record(3, Some(0), ask("default/a", 30));
        c.record(at, Some(0), start("default/a"));
        c.record(at + 1, Some(0), end("default/a"));
        c.messages(Checker::AddAfterEarliest)
    }

    #[test]
    fn the_earliest_due_time_satisfies_both_requests() {
        // Handed out at 11 s, the first request's due time: both are met by that start.
        assert!(two_requests(11).is_empty());
        assert!(two_requests(12).is_empty(), "within the grace");
    }

    #[test]
    fn a_key_handed_out_at_the_later_time_violates_the_earlier_request() {
        // The latest-wins bug: reconciled at 33 s, the second request's due time.
        assert_eq!(
            two_requests(33),
            ["s0 asked for default/a at 1s due at 11s, idle from 11s: not handed to a worker by 12s (reconciled: 33s)"]
        );
    }

    #[test]
    fn a_busy_instance_moves_the_deadline_to_when_it_is_idle() {
        // b is in flight from 5 s to 20 s: a, due at 6 s, may wait for it.
        let case = |at: u64| {
            let mut c = Case::new(SubjectKind::Controller, "");
            c.record(1, Some(0), ask("default/a", 5));
            c.record(5, Some(0), start("default/b"));
            c.record(20, Some(0), end("default/b"));
            c.record(at, Some(0), start("default/a"));
            c.violations(Checker::AddAfterEarliest).len()
        };
        assert_eq!(case(20), 0);
        assert_eq!(case(21), 0);
        assert_eq!(case(25), 1);
    }

    #[test]
    fn keys_due_together_on_one_busy_worker_wait_for_each_other() {
        // a, b and c are all due at 2 s; one worker takes a at 2 s (busy from that instant),
        // then b and c in turn: c's start at 5 s is in time, the instance was never idle.
        let mut c = Case::new(SubjectKind::Controller, "");
        for key in ["default/a", "default/b", "default/c"] {
            c.record(1, Some(0), ask(key, 1));
        }
        for (t, key) in [(2, "default/a"), (3, "default/b"), (5, "default/c")] {
            c.record(t, Some(0), start(key));
            c.record(t + 1, Some(0), end(key));
        }
        assert!(c.messages(Checker::AddAfterEarliest).is_empty());
    }

    #[test]
    fn a_crash_before_the_deadline_excuses_the_lost_request() {
        // The process crashes at 5 s (its queue lost) and restarts at 15 s; a never comes.
        let case = |faults: &str| {
            let mut c = Case::new(SubjectKind::Controller, faults);
            c.record(0, Some(0), Record::Start { incarnation: 0 });
            c.record(1, Some(0), ask("default/a", 10));
            c.record(15, Some(0), Record::Start { incarnation: 1 });
            c.violations(Checker::AddAfterEarliest).len()
        };
        let crash = r#", "faults": [{"crash_subject": {"at": "5s", "restart_after": "10s"}}]"#;
        assert_eq!(case(crash), 0);
        // Without the crash fault the restart alone ends the incarnation at 15 s, after the
        // deadline (12 s): the request is judged and violated.
        assert_eq!(case(""), 1);
    }

    #[test]
    fn a_requeue_after_is_a_request_too_and_the_end_of_the_run_is_not_judged() {
        let mut c = Case::new(SubjectKind::Controller, "");
        c.record(1, Some(0), start("default/a"));
        let requeue = Outcome::Requeue(Duration::from_secs(5));
        c.record(
            2,
            Some(0),
            Record::ReconcileEnd {
                key: "default/a".into(),
                outcome: requeue,
            },
        );
        c.record(2, Some(0), ask("default/b", 200));
        assert_eq!(c.violations(Checker::AddAfterEarliest).len(), 1);
        c.record(7, Some(0), start("default/a"));
        assert!(c.violations(Checker::AddAfterEarliest).is_empty());
    }
}
