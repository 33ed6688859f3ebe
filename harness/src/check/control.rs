//! Controller checkers: `queue_exclusive` (no key reconciled twice at once),
//! `reconcile_coverage` (every change of a source is followed by a reconcile of it),
//! `dead_letter_once` (no key dead-lettered again without a change in between),
//! `retry_backoff` (retries back off and stop at `max_retries`) and
//! `convergence` (the desired state holds at the end and has stopped changing).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Evidence, Found, Violation};
use crate::mirror::{mirror_converged, MIRROR_LABEL, MIRROR_SUFFIX};
use crate::trace::{Entry, Outcome, Record};

pub(super) fn queue_exclusive(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    for (instance, segments) in ev.incarnations() {
        for seg in segments {
            let mut in_flight: BTreeMap<&str, Duration> = BTreeMap::new();
            for e in &seg {
                match &e.record {
                    Record::ReconcileStart { key } => {
                        if let Some(since) = in_flight.insert(key, e.at) {
                            let msg = format!("s{instance} started reconciling {key} while a reconcile begun at {} was running", humantime::format_duration(since));
                            found.add(key.clone(), e.at, msg);
                        }
                    }
                    Record::ReconcileEnd { key, .. } => {
                        in_flight.remove(key.as_str());
                    }
                    _ => {}
                }
            }
        }
    }
    found.out
}

pub(super) fn reconcile_coverage(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let mut last_start: BTreeMap<&str, Duration> = BTreeMap::new();
    for e in ev.entries {
        if let Record::ReconcileStart { key } = &e.record {
            last_start.insert(key, e.at);
        }
    }
    let mut last_change: BTreeMap<String, (Duration, u64)> = BTreeMap::new();
    for h in ev.history {
        // The final removal of an object whose deletion was already a change (its
        // deletionTimestamp) is the finalizer being released: nothing left to reconcile.
        let released = h.kind.as_str() == "DELETED"
            && h.prev
                .as_ref()
                .is_some_and(|p| !p["metadata"]["deletionTimestamp"].is_null());
        // Deleting a source that carries no finalizer: the controller never got to it
        // (the finalizer comes before the mirror), so there is nothing to undo.
        let unclaimed = h.kind.as_str() == "DELETED"
            && h.prev.as_ref().is_some_and(|p| {
                p["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(|f| f.is_empty())
            });
        if released {
            continue;
        }
        if unclaimed {
            // Gone before the controller claimed it: neither this nor earlier changes of
            // it leave anything to reconcile.
            last_change.remove(&format!("{}/{}", h.key.ns, h.key.name));
            continue;
        }
        if labelled(&h.object) || h.prev.as_deref().is_some_and(labelled) {
            last_change.insert(
                format!("{}/{}", h.key.ns, h.key.name),
                (ev.since_start(h.at), h.rev),
            );
        }
    }
    for (key, (at, rv)) in last_change {
        if last_start.get(key.as_str()).is_none_or(|s| *s < at) {
            found.add(
                key.clone(),
                at,
                format!("change of {key} at rv={rv} was never followed by a reconcile"),
            );
        }
    }
    found.out
}

pub(super) fn dead_letter_once(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    for (instance, segments) in ev.incarnations() {
        for seg in segments {
            let mut started: BTreeMap<&str, Duration> = BTreeMap::new();
            // key -> (when the dead-lettered reconcile started, when it ended)
            let mut lettered: BTreeMap<&str, (Duration, Duration)> = BTreeMap::new();
            for e in &seg {
                let (key, at) = match &e.record {
                    Record::ReconcileStart { key } => {
                        started.insert(key, e.at);
                        continue;
                    }
                    Record::ReconcileEnd {
                        key,
                        outcome: Outcome::DeadLetter(_),
                    } => (key, e.at),
                    _ => continue,
                };
                let began = started.get(key.as_str()).copied().unwrap_or(at);
                if let Some((prev_began, prev)) = lettered.insert(key, (began, at)) {
                    // A change written, or seen by the controller, since the previous dead
                    // letter's reconcile began revives the key.
                    let revived =
                        changed_between(ev, key, prev, at) || observed(&seg, key, prev_began, at);
                    if !revived {
                        let msg = format!(
                            "s{instance} dead-lettered {key} again with no change since {}",
                            humantime::format_duration(prev)
                        );
                        found.add(key.clone(), at, msg);
                    }
                }
            }
        }
    }
    found.out
}

/// Whether the instance saw an event of source `key` or of its mirror in `[from, to]`.
fn observed(seg: &[&Entry], key: &str, from: Duration, to: Duration) -> bool {
    seg.iter().any(|e| match &e.record {
        Record::Delivered { key: k, .. } => {
            (k == key || k.strip_suffix(MIRROR_SUFFIX) == Some(key)) && e.at >= from && e.at <= to
        }
        _ => false,
    })
}

/// A key that failed with a retryable error is retried after a back-off (not in the instant
/// it failed, unless an event of it arrived meanwhile; judged only for subjects that record
/// their events), and at most `max_retries` times in a row before it is dead-lettered.
pub(super) fn retry_backoff(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let max = ev.scenario.subject.config.max_retries;
    for (instance, segments) in ev.incarnations() {
        for seg in segments {
            // key -> (retries in a row, when the failed reconcile began, when it ended)
            let mut streaks: BTreeMap<&str, (u32, Duration, Duration)> = BTreeMap::new();
            let mut started: BTreeMap<&str, Duration> = BTreeMap::new();
            // Without the events the instance saw (kube-runtime's Controller does not show
            // them), an early retry cannot be told from a legitimate re-trigger.
            let sees = seg
                .iter()
                .any(|e| matches!(e.record, Record::Delivered { .. }));
            for e in &seg {
                match &e.record {
                    Record::ReconcileStart { key } => {
                        started.insert(key, e.at);
                        let Some((n, began, failed)) = streaks.get(key.as_str()) else {
                            continue;
                        };
                        if sees && *failed == e.at && !observed(&seg, key, *began, e.at) {
                            let msg = format!(
                                "s{instance} retried {key} in the instant its failure #{n} ended: no back-off"
                            );
                            found.add(key.clone(), e.at, msg);
                        }
                    }
                    Record::ReconcileEnd {
                        key,
                        outcome: Outcome::Retry(_),
                    } => {
                        let n = streaks.get(key.as_str()).map_or(0, |s| s.0) + 1;
                        let began = started.get(key.as_str()).copied().unwrap_or(e.at);
                        streaks.insert(key, (n, began, e.at));
                        if n == max + 1 {
                            let msg = format!(
                                "s{instance} retried {key} {n} times in a row: more than max_retries={max}, and no dead letter"
                            );
                            found.add(key.clone(), e.at, msg);
                        }
                    }
                    Record::ReconcileEnd { key, .. } => {
                        streaks.remove(key.as_str());
                    }
                    _ => {}
                }
            }
        }
    }
    found.out
}

fn changed_between(ev: &Evidence<'_>, key: &str, from: Duration, to: Duration) -> bool {
    ev.history.iter().any(|h| {
        let at = ev.since_start(h.at);
        format!("{}/{}", h.key.ns, h.key.name) == key && at > from && at <= to
    })
}

/// How long before the end the server state must have stopped changing.
fn quiet_period(ev: &Evidence<'_>) -> Duration {
    ev.scenario.settle.0 / 2
}

/// Keys whose last reconcile (in any instance) dead-lettered them: the controller gave up
/// on them, which `dead_letter_once` and `retry_backoff` judge, so they need not converge.
fn given_up<'a>(ev: &Evidence<'a>) -> BTreeSet<&'a str> {
    let mut last: BTreeMap<&str, bool> = BTreeMap::new();
    for e in ev.entries {
        if let Record::ReconcileEnd { key, outcome } = &e.record {
            last.insert(key, matches!(outcome, Outcome::DeadLetter(_)));
        }
    }
    last.into_iter()
        .filter(|(_, d)| *d)
        .map(|(k, _)| k)
        .collect()
}

pub(super) fn convergence(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let end = ev.scenario.end();
    let excused = given_up(ev);
    if let Err(problems) = mirror_converged(ev.objects) {
        for why in problems {
            let key = why.split(": ").next().unwrap_or("-").to_string();
            let source = key.strip_suffix(MIRROR_SUFFIX).unwrap_or(&key);
            if excused.contains(key.as_str()) || excused.contains(source) {
                continue;
            }
            found.add(key, end, why);
        }
    }
    let quiet_from = end.saturating_sub(quiet_period(ev));
    if let Some(h) = ev
        .history
        .iter()
        .find(|h| ev.since_start(h.at) >= quiet_from)
    {
        let key = format!("{}/{}", h.key.ns, h.key.name);
        let msg = format!(
            "still changing during the last {} of the run: {} {key} rv={}",
            humantime::format_duration(quiet_period(ev)),
            h.kind.as_str(),
            h.rev
        );
        found.add(key, ev.since_start(h.at), msg);
    }
    found.out
}

fn labelled(obj: &serde_json::Value) -> bool {
    obj["metadata"]["labels"][MIRROR_LABEL] == "true"
}
