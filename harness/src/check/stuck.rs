//! `no_stuck_reconcile`: no reconcile stays in flight past a bound, and no key whose object
//! changed goes unreconciled for the settle time after the change — judged from the
//! controller subjects' reconcile records, for any controller.
//!
//! The first is what a request that never answers does to a controller (kube's client has
//! no read timeout, so a request whose segment a partition swallowed waits forever, and
//! kube-runtime's `Controller` never runs that key again); the bound is
//! `expect.stuck_after`, by default the scenario's `settle` (a reconcile longer than the
//! time the system has to settle cannot let it settle). The second catches a key a
//! controller stopped working on without a reconcile left hanging: for every key the
//! subject reconciled, its last write (unless a deletion, outside the subject's label
//! selector, too close to the end, or of an object made since its last reconcile) must be
//! followed by a reconcile of it within `settle`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Evidence, Found, Violation};
use crate::trace::Record;

/// How long a reconcile may be in flight.
fn bound(ev: &Evidence<'_>) -> Duration {
    ev.scenario
        .expect
        .stuck_after
        .map_or(ev.scenario.settle.0, |d| d.0)
}

fn fmt(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

pub(super) fn no_stuck_reconcile(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    in_flight_past_the_bound(ev, &mut found);
    changes_left_unreconciled(ev, &mut found);
    found.out
}

/// Reconciles that ran longer than the bound, or were still running when their
/// incarnation ended (the next start, or the end of the run) past it.
fn in_flight_past_the_bound(ev: &Evidence<'_>, found: &mut Found<'_>) {
    let limit = bound(ev);
    for (instance, segments) in ev.incarnations() {
        let ends: Vec<Duration> = segments
            .iter()
            .skip(1)
            .map(|s| s[0].at)
            .chain([ev.scenario.end()])
            .collect();
        for (seg, until) in segments.iter().zip(ends) {
            let mut started: BTreeMap<&str, Duration> = BTreeMap::new();
            for e in seg {
                match &e.record {
                    Record::ReconcileStart { key } => {
                        started.insert(key, e.at);
                    }
                    Record::ReconcileEnd { key, .. } => {
                        let Some(began) = started.remove(key.as_str()) else {
                            continue;
                        };
                        if e.at - began > limit {
                            let msg = format!("s{instance} reconcile of {key} begun at {} took {}: longer than {}", fmt(began), fmt(e.at - began), fmt(limit));
                            found.add(key.clone(), began, msg);
                        }
                    }
                    _ => {}
                }
            }
            for (key, began) in started {
                if until.saturating_sub(began) > limit {
                    let msg = format!("s{instance} reconcile of {key} begun at {} was still in flight at {}: stuck for more than {}", fmt(began), fmt(until), fmt(limit));
                    found.add(key, began, msg);
                }
            }
        }
    }
}

/// Keys whose last change was not followed by a reconcile within `settle`. Only a change of
/// the object the subject last reconciled counts (same uid): one deleted and made again
/// since may be outside the controller's domain (relabelled, say).
fn changes_left_unreconciled(ev: &Evidence<'_>, found: &mut Found<'_>) {
    let settle = ev.scenario.settle.0;
    let end = ev.scenario.end();
    let mut starts: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for e in ev.entries {
        if let Record::ReconcileStart { key } = &e.record {
            starts.entry(key).or_default().push(e.at);
        }
    }
    // key -> its writes: (when, rv, uid, counts as a change)
    let mut writes: BTreeMap<String, Vec<(Duration, u64, String, bool)>> = BTreeMap::new();
    for h in ev.history {
        let key = format!("{}/{}", h.key.ns, h.key.name);
        if starts.contains_key(key.as_str()) {
            let relevant = h.kind.as_str() != "DELETED" && ev.selects(&h.object);
            let uid = h.object["metadata"]["uid"]
                .as_str()
                .unwrap_or("")
                .to_string();
            writes
                .entry(key)
                .or_default()
                .push((ev.since_start(h.at), h.rev, uid, relevant));
        }
    }
    for (key, writes) in writes {
        let Some((at, rev, uid, true)) = writes.last().cloned() else {
            continue;
        };
        let starts = &starts[key.as_str()];
        let Some(reconciled) = starts.iter().filter(|s| **s <= at).max() else {
            continue;
        };
        let same_object = writes
            .iter()
            .rfind(|w| w.0 <= *reconciled)
            .is_some_and(|w| w.2 == uid);
        if !same_object || at + settle > end {
            continue;
        }
        if !starts.iter().any(|s| *s >= at && *s <= at + settle) {
            let msg = format!(
                "change of {key} at rv={rev} was not reconciled within {} (settle)",
                fmt(settle)
            );
            found.add(key, at, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{end, start, Case};
    use crate::apiserver::EventType::{Added, Modified};
    use crate::scenario::{Checker, SubjectKind};
    use crate::trace::{Outcome, Record};

    fn ok(key: &str) -> Record {
        end(key, Outcome::Ok)
    }

    fn controller() -> Case {
        Case::new(SubjectKind::Controller, "")
    }

    #[test]
    fn reconciles_that_end_and_follow_every_change_pass() {
        let mut c = controller();
        c.write(1, Added, "a", true);
        c.record(2, Some(0), start("default/a"));
        c.record(3, Some(0), ok("default/a"));
        c.write(10, Modified, "a", true);
        c.record(11, Some(0), start("default/a"));
        c.record(70, Some(0), ok("default/a")); // 59 s: within the 60 s settle
        assert!(c.violations(Checker::NoStuckReconcile).is_empty());
    }

    #[test]
    fn a_reconcile_still_in_flight_at_the_end_is_stuck_and_its_key_left_behind() {
        // The kube-runtime finding told by hand: the reconcile of `a` that began at 2 s never
        // ends, so the change at 10 s is never reconciled.
        let mut c = controller();
        c.write(1, Added, "a", true);
        c.record(2, Some(0), start("default/a"));
        c.write(10, Modified, "a", true);
        assert_eq!(
            c.messages(Checker::NoStuckReconcile),
            [
                "s0 reconcile of default/a begun at 2s was still in flight at 2m: stuck for more than 1m",
                "change of default/a at rv=2 was not reconciled within 1m (settle)",
            ]
        );
    }

    #[test]
    fn a_reconcile_longer_than_the_bound_is_reported_even_when_it_ends() {
        let mut c = controller();
        c.record(2, Some(0), start("default/a"));
        c.record(65, Some(0), ok("default/a"));
        assert_eq!(
            c.messages(Checker::NoStuckReconcile),
            ["s0 reconcile of default/a begun at 2s took 1m 3s: longer than 1m"]
        );
    }

    #[test]
    fn a_crash_ends_what_was_in_flight_and_a_deletion_needs_no_reconcile() {
        let mut c = controller();
        c.write(1, Added, "a", true);
        c.record(2, Some(0), start("default/a"));
        c.record(3, Some(0), Record::Start { incarnation: 1 });
        c.record(4, Some(0), start("default/a"));
        c.record(5, Some(0), ok("default/a"));
        c.write(10, crate::apiserver::EventType::Deleted, "a", true);
        assert!(c.violations(Checker::NoStuckReconcile).is_empty());
    }

    #[test]
    fn an_object_made_again_since_its_last_reconcile_is_not_held_against_the_key() {
        // The mirror fixture's case: a source deleted and made again without its label is
        // outside the controller's domain, so its later changes need no reconcile.
        let mut c = controller();
        c.write(1, Added, "a", true);
        c.record(2, Some(0), start("default/a"));
        c.record(3, Some(0), ok("default/a"));
        c.write(5, crate::apiserver::EventType::Deleted, "a", true);
        c.write_uid(6, Added, "a", false, "uid-a2");
        c.write_uid(7, Modified, "a", false, "uid-a2");
        assert!(c.violations(Checker::NoStuckReconcile).is_empty());
    }
}
