//! Controller checkers: `queue_exclusive` (no key reconciled twice at once),
//! `reconcile_coverage` (every change of a source is followed by a reconcile of it),
//! `dead_letter_once` (no key dead-lettered again without a change in between) and
//! `convergence` (the desired state holds at the end and has stopped changing).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Evidence, Found, Violation};
use crate::mirror::{mirror_converged, MIRROR_LABEL};
use crate::trace::{Outcome, Record};

pub(super) fn queue_exclusive(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    for (instance, segments) in ev.incarnations() {
        for seg in segments {
            let mut in_flight: BTreeMap<&str, Duration> = BTreeMap::new();
            for e in seg {
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
        if released {
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
            let mut lettered: BTreeMap<&str, Duration> = BTreeMap::new();
            for e in seg {
                let Record::ReconcileEnd {
                    key,
                    outcome: Outcome::DeadLetter(_),
                } = &e.record
                else {
                    continue;
                };
                if let Some(prev) = lettered.insert(key, e.at) {
                    if !changed_between(ev, key, prev, e.at) {
                        let msg = format!(
                            "s{instance} dead-lettered {key} again with no change since {}",
                            humantime::format_duration(prev)
                        );
                        found.add(key.clone(), e.at, msg);
                    }
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

pub(super) fn convergence(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let end = ev.scenario.end();
    if let Err(problems) = mirror_converged(ev.objects) {
        for why in problems {
            let key = why.split_whitespace().next().unwrap_or("-").to_string();
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
