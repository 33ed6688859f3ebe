//! The checkers any controller gets without writing code, judged from the cluster rather
//! than the controller's internals: `eventually_stable` (the user's condition, sampled from
//! the end of `duration`), `deletions_complete`, `no_duplicate_children`, `no_panic` and
//! `write_rate`. (`differential` has its own file.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::{ClusterEvidence, Evidence, Found, Violation};
use crate::apiserver::EventType;
use crate::trace::Record;

/// Default bound of `write_rate`: writes per second once quiet (one every 5 s; a quiet
/// controller writes nothing, a periodic status refresh far less).
pub const DEFAULT_WRITE_RATE: f64 = 0.2;

fn cluster<'a>(ev: &Evidence<'a>) -> Option<&'a ClusterEvidence> {
    ev.cluster
}

/// `Kind ns/name` of an object.
pub(super) fn describe(o: &Value) -> String {
    let m = &o["metadata"];
    let kind = o["kind"].as_str().unwrap_or("?");
    let name = m["name"].as_str().unwrap_or("?");
    match m["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

/// The condition, from its samples in the trace: it must hold at the end, and never fail
/// again after it first held.
pub(super) fn eventually_stable(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    if !cluster(ev).is_some_and(|c| c.has_condition) {
        return found.out;
    }
    let samples: Vec<(Duration, bool, &str)> = ev
        .entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Condition { holds, detail } => Some((e.at, *holds, detail.as_str())),
            _ => None,
        })
        .collect();
    let settle = ev.scenario.settle;
    match samples.last() {
        None => found.add(
            "condition",
            ev.scenario.end(),
            "the condition was never sampled",
        ),
        Some((at, false, why)) => found.add(
            "condition",
            *at,
            format!("does not hold at the end of settle ({settle} after the faults healed): {why}"),
        ),
        Some(_) => {}
    }
    let first_held = samples.iter().position(|(_, holds, _)| *holds);
    if let Some(first) = first_held {
        let held_at = samples[first].0;
        for (at, _, why) in samples[first..].iter().filter(|(_, holds, _)| !holds) {
            let after = trace_secs(held_at);
            found.add(
                "condition",
                *at,
                format!("held at {after}, then failed (flapping): {why}"),
            );
        }
    }
    found.out
}

fn trace_secs(d: Duration) -> String {
    crate::trace::secs(d).trim().to_string()
}

/// Everything the workload deleted is gone (same uid) at the end, and so is everything that
/// was owned only by what it deleted (the garbage collector's share).
pub(super) fn deletions_complete(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let Some(c) = cluster(ev) else {
        return found.out;
    };
    let end = ev.scenario.end();
    let live: BTreeMap<&str, &Value> = c.objects.iter().map(|o| (uid(o), &**o)).collect();
    for (target, gone_uid, at) in &c.deleted {
        if let Some(o) = live.get(gone_uid.as_str()) {
            let finalizers = &o["metadata"]["finalizers"];
            found.add(
                target.describe(),
                end,
                format!(
                    "deleted by the workload at {} and still there at the end (finalizers {finalizers})",
                    trace_secs(*at)
                ),
            );
        }
    }
    let deleted: BTreeSet<&str> = c.deleted.iter().map(|(_, u, _)| u.as_str()).collect();
    for o in &c.objects {
        let owners = o["metadata"]["ownerReferences"].as_array();
        let owners: Vec<&str> = owners
            .into_iter()
            .flatten()
            .filter_map(|r| r["uid"].as_str())
            .collect();
        let orphaned = !owners.is_empty()
            && owners
                .iter()
                .all(|u| deleted.contains(u) && !live.contains_key(u));
        if orphaned {
            found.add(
                describe(o),
                end,
                "every owner was deleted by the workload, yet it is still there (not garbage-collected)",
            );
        }
    }
    found.out
}

/// Live children of each (owner uid, child kind), replayed over the whole history: an owner
/// with two live children of a unique kind at any moment is a violation (once per owner and
/// kind).
pub(super) fn no_duplicate_children(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let Some(c) = cluster(ev) else {
        return found.out;
    };
    let mut children: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for e in &c.history {
        let o = &e.object;
        let Some(t) = c.unique_children.iter().find(|t| t.matches(o)) else {
            continue;
        };
        let alive = e.kind != EventType::Deleted && o["metadata"]["deletionTimestamp"].is_null();
        let key = describe(o);
        for owner in owner_uids(o) {
            let set = children.entry((owner.clone(), t.kind.clone())).or_default();
            match alive {
                true => set.insert(key.clone()),
                false => set.remove(&key),
            };
            if set.len() > 1 && reported.insert((owner.clone(), t.kind.clone())) {
                let names: Vec<&str> = set.iter().map(String::as_str).collect();
                let message = format!(
                    "owner uid {owner} has {} live {}s: {}",
                    set.len(),
                    t.kind,
                    names.join(", ")
                );
                found.add(key.clone(), ev.since_start(e.at), message);
            }
        }
    }
    found.out
}

fn owner_uids(o: &Value) -> Vec<String> {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(str::to_string))
        .collect()
}

/// No task on the controller's host panicked, and its main did not return on its own.
pub(super) fn no_panic(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    for e in ev.entries {
        let instance = format!("s{}", e.instance.unwrap_or(0));
        match &e.record {
            Record::Panic(message) => found.add(instance, e.at, format!("panicked: {message}")),
            Record::Exited { early: true } => found.add(
                instance,
                e.at,
                "the controller's main returned before the shutdown trigger (it stopped by itself)",
            ),
            _ => {}
        }
    }
    found.out
}

/// Changes per second in the second half of `settle`, when the system should be quiet:
/// every store write in that window (no workload writes any more, so they are the
/// controller's and what they caused). A no-op write (an apply or patch that changes
/// nothing) is not a change: a periodic resync that finds everything in order is quiet.
pub(super) fn write_rate(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let Some(c) = cluster(ev) else {
        return found.out;
    };
    let bound = ev.scenario.expect.write_rate.unwrap_or(DEFAULT_WRITE_RATE);
    let (from, to) = (
        ev.scenario.duration.0 + ev.scenario.settle.0 / 2,
        ev.scenario.end(),
    );
    let window = (to - from).as_secs_f64();
    let writes = c
        .history
        .iter()
        .map(|e| ev.since_start(e.at))
        .filter(|t| *t >= from && *t < to)
        .count();
    if window > 0.0 && writes as f64 / window > bound {
        found.add(
            "apiserver",
            from,
            format!(
                "{writes} writes in the last {window:.1}s of settle ({:.2}/s, bound {bound}/s): the controller keeps writing once quiet",
                writes as f64 / window
            ),
        );
    }
    found.out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::testkit::{secs, Case};
    use super::*;
    use crate::apiserver::{ObjKey, StoreEvent};
    use crate::scenario::{Checker, ObjectRef, SubjectKind};
    use crate::subject::TypeRef;

    /// A user controller's case (60 s of workload, 60 s of settle) with `cluster` evidence.
    fn case(cluster: ClusterEvidence) -> Case {
        let mut c = Case::new(SubjectKind::Operator, "");
        c.cluster = Some(cluster);
        c
    }

    fn condition(c: &mut Case, t: u64, holds: bool) {
        let detail = if holds { "" } else { "App a has no ConfigMap" };
        c.record(
            t,
            None,
            Record::Condition {
                holds,
                detail: detail.into(),
            },
        );
    }

    fn with_condition() -> ClusterEvidence {
        ClusterEvidence {
            has_condition: true,
            ..ClusterEvidence::default()
        }
    }

    #[test]
    fn eventually_stable_passes_when_the_condition_holds_from_some_point_on() {
        let mut c = case(with_condition());
        condition(&mut c, 60, false);
        condition(&mut c, 70, true);
        assert!(c.messages(Checker::EventuallyStable).is_empty());
    }

    #[test]
    fn eventually_stable_flags_a_condition_that_never_holds_and_one_that_flaps() {
        let mut never = case(with_condition());
        condition(&mut never, 60, false);
        let m = never.messages(Checker::EventuallyStable);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with("does not hold at the end of settle"),
            "{m:?}"
        );
        let mut flaps = case(with_condition());
        condition(&mut flaps, 60, true);
        condition(&mut flaps, 80, false);
        condition(&mut flaps, 90, true);
        let m = flaps.messages(Checker::EventuallyStable);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("then failed (flapping)"), "{m:?}");
    }

    fn cm(name: &str, uid: &str, owner: Option<&str>) -> Arc<Value> {
        let owners =
            owner.map(|o| json!([{"apiVersion": "v1", "kind": "App", "name": "a", "uid": o}]));
        Arc::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "uid": uid,
                         "ownerReferences": owners.unwrap_or(json!([]))}}))
    }

    fn deleted(name: &str, uid: &str) -> (ObjectRef, String, Duration) {
        let r = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("default".into()),
            name: name.into(),
        };
        (r, uid.into(), secs(10))
    }

    #[test]
    fn deletions_complete_flags_a_stuck_object_and_an_uncollected_child_not_a_recreated_one() {
        let mut ok = case(ClusterEvidence {
            deleted: vec![deleted("x", "u1")],
            objects: vec![cm("x", "u2", None)], // created again: another uid
            ..ClusterEvidence::default()
        });
        assert!(ok.messages(Checker::DeletionsComplete).is_empty());
        let mut stuck = case(ClusterEvidence {
            deleted: vec![deleted("x", "u1"), deleted("owner", "o1")],
            objects: vec![cm("x", "u1", None), cm("child", "c1", Some("o1"))],
            ..ClusterEvidence::default()
        });
        let m = stuck.messages(Checker::DeletionsComplete);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("still there at the end"), "{m:?}");
        assert!(m[1].contains("not garbage-collected"), "{m:?}");
    }

    /// A store event at simulated millisecond `ms` (also its revision).
    fn event(ms: u64, kind: EventType, object: Arc<Value>) -> Arc<StoreEvent> {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        Arc::new(StoreEvent {
            rev: ms,
            at: Duration::from_secs(crate::sim::EPOCH_SECS) + Duration::from_millis(ms),
            key: ObjKey {
                res: 0,
                ns: "default".into(),
                name,
            },
            kind,
            object,
            prev: None,
        })
    }

    #[test]
    fn no_duplicate_children_flags_two_live_children_of_one_owner_at_once() {
        let unique = vec![TypeRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
        }];
        // One child replaced by another (delete, then create): never two at once.
        let mut ok = case(ClusterEvidence {
            history: vec![
                event(1, EventType::Added, cm("c1", "1", Some("o"))),
                event(2, EventType::Deleted, cm("c1", "1", Some("o"))),
                event(3, EventType::Added, cm("c2", "2", Some("o"))),
            ],
            unique_children: unique.clone(),
            ..ClusterEvidence::default()
        });
        assert!(ok.messages(Checker::NoDuplicateChildren).is_empty());
        let mut twice = case(ClusterEvidence {
            history: vec![
                event(1, EventType::Added, cm("c1", "1", Some("o"))),
                event(2, EventType::Added, cm("c2", "2", Some("o"))),
            ],
            unique_children: unique,
            ..ClusterEvidence::default()
        });
        let m = twice.messages(Checker::NoDuplicateChildren);
        assert_eq!(
            m,
            ["owner uid o has 2 live ConfigMaps: ConfigMap default/c1, ConfigMap default/c2"]
        );
    }

    #[test]
    fn no_panic_flags_a_panic_and_a_main_that_returned_on_its_own() {
        let mut ok = case(ClusterEvidence::default());
        ok.record(130, Some(0), Record::Exited { early: false });
        assert!(ok.messages(Checker::NoPanic).is_empty());
        let mut bad = case(ClusterEvidence::default());
        bad.record(
            5,
            Some(0),
            Record::Panic("called `unwrap()` at src/lib.rs:9".into()),
        );
        bad.record(6, Some(0), Record::Exited { early: true });
        let m = bad.messages(Checker::NoPanic);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("panicked: called `unwrap()`"), "{m:?}");
    }

    #[test]
    fn write_rate_counts_only_the_changes_of_the_second_half_of_settle() {
        // Settle is 60 s..120 s: 100 writes before 90 s are the catching up; 3 after are quiet.
        let at = |ms: u64| event(ms, EventType::Modified, cm("c", "1", None));
        let mut history: Vec<_> = (0..100).map(|i| at(60_000 + i * 100)).collect();
        history.extend([at(95_000), at(100_000), at(110_000)]);
        let mut ok = case(ClusterEvidence {
            history: history.clone(),
            ..ClusterEvidence::default()
        });
        assert!(ok.messages(Checker::WriteRate).is_empty());
        history.extend((0..10).map(|i| at(100_000 + i * 1000)));
        let mut hot = case(ClusterEvidence {
            history,
            ..ClusterEvidence::default()
        });
        let m = hot.messages(Checker::WriteRate);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with("13 writes in the last 30.0s of settle (0.43/s"),
            "{m:?}"
        );
    }
}
