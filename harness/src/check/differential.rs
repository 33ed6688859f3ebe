//! `differential` (Sieve's oracle, made exact by determinism): the end state of a run with
//! faults equals the end state of the same seed and workload without them, modulo what is
//! volatile in any cluster — resourceVersion, uid, timestamps, managedFields, generated
//! names, owner uids — and the fields the user declares volatile.
//!
//! The state compared is the desired state and what the controller made of it: the objects
//! of the kinds the scenario's manifests and workload write, and every object they own,
//! transitively. Side objects nothing owns (a registry, leases, events) are left out: when
//! they exist can legitimately depend on timing (an object deleted before the controller
//! first saw it never got its registry entry), and their effects show in the condition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::cluster::describe;
use super::{Evidence, Found, Violation};
use crate::scenario::{Scenario, Workload};

/// Metadata every object has that differs between two equal clusters.
const VOLATILE_METADATA: [&str; 6] = [
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
];

pub(super) fn differential(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let Some(c) = ev.cluster else {
        return found.out;
    };
    let Some(baseline) = &c.baseline else {
        return found.out;
    };
    let kinds = desired_kinds(ev.scenario);
    let with = state(&owned_closure(&c.objects, &kinds), &c.volatile);
    let without = state(&owned_closure(baseline, &kinds), &c.volatile);
    let end = ev.scenario.end();
    for (key, (a, b)) in pair(&with, &without) {
        let message = match (a, b) {
            (Some(_), None) => "exists with faults but not without them".to_string(),
            (None, Some(_)) => "exists without faults but not with them".to_string(),
            (Some(a), Some(b)) => match first_difference(a, b, String::new()) {
                Some((path, x, y)) => format!("{path}: {x} with faults, {y} without"),
                None => continue,
            },
            (None, None) => continue,
        };
        found.add(key, end, message);
    }
    found.out
}

/// (apiVersion, kind) of every object the scenario's manifests and workload write.
fn desired_kinds(s: &Scenario) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut add = |v: &str, k: &str| out.insert((v.to_string(), k.to_string()));
    for m in &s.manifests {
        add(
            m["apiVersion"].as_str().unwrap_or(""),
            m["kind"].as_str().unwrap_or(""),
        );
    }
    for w in &s.workload {
        match w {
            Workload::CreateObject { object, .. } | Workload::UpdateObject { object, .. } => {
                add(
                    object["apiVersion"].as_str().unwrap_or(""),
                    object["kind"].as_str().unwrap_or(""),
                );
            }
            Workload::ChurnObjects { template, .. } => {
                add(
                    template["apiVersion"].as_str().unwrap_or(""),
                    template["kind"].as_str().unwrap_or(""),
                );
            }
            Workload::PatchObject { target, .. } | Workload::DeleteObject { target, .. } => {
                add(&target.api_version, &target.kind);
            }
            Workload::DeleteOwned { owner, .. } => {
                add(&owner.api_version, &owner.kind);
            }
            Workload::Create { .. }
            | Workload::Update { .. }
            | Workload::Delete { .. }
            | Workload::Burst { .. }
            | Workload::Churn { .. } => {
                add("v1", "ConfigMap");
            }
        }
    }
    out
}

/// The objects of `kinds` and everything they own, transitively.
fn owned_closure(objects: &[Arc<Value>], kinds: &BTreeSet<(String, String)>) -> Vec<Arc<Value>> {
    let kind_of = |o: &Value| {
        let s = |f: &str| o[f].as_str().unwrap_or("").to_string();
        (s("apiVersion"), s("kind"))
    };
    let mut inside: Vec<bool> = objects
        .iter()
        .map(|o| kinds.contains(&kind_of(o)))
        .collect();
    let mut uids: BTreeSet<String> = BTreeSet::new();
    loop {
        for (o, _) in objects.iter().zip(&inside).filter(|(_, i)| **i) {
            uids.insert(o["metadata"]["uid"].as_str().unwrap_or("").to_string());
        }
        let mut grew = false;
        for (o, i) in objects.iter().zip(inside.iter_mut()).filter(|(_, i)| !**i) {
            let owners = o["metadata"]["ownerReferences"].as_array();
            if owners
                .into_iter()
                .flatten()
                .any(|r| r["uid"].as_str().is_some_and(|u| uids.contains(u)))
            {
                *i = true;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    objects
        .iter()
        .zip(inside)
        .filter(|(_, i)| *i)
        .map(|(o, _)| o.clone())
        .collect()
}

/// Normalised objects by `Kind ns/name` (generated names end in `*`, with a counter when
/// several share a prefix).
fn state(objects: &[Arc<Value>], volatile: &[String]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut generated: Vec<(String, Value)> = Vec::new();
    for o in objects {
        let n = normalised(o, volatile);
        match o["metadata"]["generateName"].as_str() {
            Some(_) => generated.push((describe(&n), n)),
            None => {
                out.insert(describe(o), n);
            }
        }
    }
    // Generated names differ between runs: order such objects by content instead.
    generated.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
    for (i, (key, v)) in generated.into_iter().enumerate() {
        out.insert(format!("{key}#{i}"), v);
    }
    out
}

fn normalised(o: &Value, volatile: &[String]) -> Value {
    let mut n = o.clone();
    if let Some(m) = n["metadata"].as_object_mut() {
        for field in VOLATILE_METADATA {
            m.remove(field);
        }
        if let Some(prefix) = m.get("generateName").and_then(Value::as_str) {
            let name = format!("{prefix}*");
            m.insert("name".into(), Value::String(name));
        }
        if let Some(owners) = m.get_mut("ownerReferences").and_then(Value::as_array_mut) {
            for r in owners.iter_mut().filter_map(Value::as_object_mut) {
                r.remove("uid");
            }
        }
    }
    for pointer in volatile {
        remove_pointer(&mut n, pointer);
    }
    n
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(&last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        _ => {}
    }
}

type Pair<'a> = (Option<&'a Value>, Option<&'a Value>);

fn pair<'a>(
    a: &'a BTreeMap<String, Value>,
    b: &'a BTreeMap<String, Value>,
) -> BTreeMap<String, Pair<'a>> {
    let mut out: BTreeMap<String, Pair<'a>> = BTreeMap::new();
    for (k, v) in a {
        out.entry(k.clone()).or_default().0 = Some(v);
    }
    for (k, v) in b {
        out.entry(k.clone()).or_default().1 = Some(v);
    }
    out
}

/// The first JSON pointer where `a` and `b` differ, with both values there.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, p),
                    (u, v) => Some((p, shown(u), shown(v))),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, format!("{path}/{i}"))),
        _ if a == b => None,
        _ => Some((path, a.to_string(), b.to_string())),
    }
}

fn shown(v: Option<&Value>) -> String {
    v.map_or_else(|| "absent".into(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testkit::Case;
    use super::super::ClusterEvidence;
    use super::*;
    use crate::scenario::{Checker, SubjectKind};

    fn app(uid: &str, rv: &str, replicas: u32, generated: Option<&str>) -> Arc<Value> {
        let mut meta = json!({"name": "a", "namespace": "default", "uid": uid,
            "resourceVersion": rv, "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "x"}],
            "ownerReferences": [{"apiVersion": "v1", "kind": "O", "name": "o", "uid": uid}]});
        if let Some(prefix) = generated {
            meta["name"] = json!(format!("{prefix}{uid}"));
            meta["generateName"] = json!(prefix);
        }
        Arc::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "spec": {"replicas": replicas}, "status": {"lastSync": rv}}),
        )
    }

    const WRITES_CONFIGMAPS: &str = r#", "workload": [{"create": {"at": "1s", "name": "a"}}]"#;

    fn verdict(with: Vec<Arc<Value>>, without: Vec<Arc<Value>>, volatile: &[&str]) -> Vec<String> {
        // The workload writes ConfigMaps: they are the desired state.
        let mut c = Case::new(SubjectKind::Operator, WRITES_CONFIGMAPS);
        c.cluster = Some(ClusterEvidence {
            objects: with,
            baseline: Some(Arc::new(without)),
            volatile: volatile.iter().map(|s| s.to_string()).collect(),
            ..ClusterEvidence::default()
        });
        c.messages(Checker::Differential)
    }

    #[test]
    fn volatile_metadata_generated_names_and_declared_fields_do_not_count() {
        let with = vec![app("u1", "10", 2, None), app("g1", "11", 1, Some("job-"))];
        let without = vec![app("u2", "20", 2, None), app("g2", "21", 1, Some("job-"))];
        assert!(verdict(with, without, &["/status/lastSync"]).is_empty());
    }

    #[test]
    fn a_different_field_or_a_missing_object_is_reported_with_its_path() {
        let m = verdict(
            vec![app("u1", "1", 3, None)],
            vec![app("u2", "1", 2, None)],
            &["/status/lastSync"],
        );
        assert_eq!(m, ["/spec/replicas: 3 with faults, 2 without"]);
        let m = verdict(vec![], vec![app("u2", "1", 2, None)], &[]);
        assert_eq!(m, ["exists without faults but not with them"]);
        // An undeclared volatile field is a difference.
        let m = verdict(
            vec![app("u1", "1", 2, None)],
            vec![app("u2", "2", 2, None)],
            &[],
        );
        assert_eq!(m, [r#"/status/lastSync: "1" with faults, "2" without"#]);
    }

    fn other(name: &str, owner: Option<&str>, n: u32) -> Arc<Value> {
        let owners = owner.map_or(
            json!([]),
            |u| json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": u}]),
        );
        Arc::new(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "default", "ownerReferences": owners},
            "data": {"n": n}}))
    }

    #[test]
    fn children_of_the_desired_state_are_compared_and_side_objects_nothing_owns_are_not() {
        // A Secret owned by the workload's ConfigMap differs: reported.
        let m = verdict(
            vec![app("u1", "1", 2, None), other("child", Some("u1"), 1)],
            vec![app("u2", "1", 2, None), other("child", Some("u2"), 2)],
            &["/status/lastSync"],
        );
        assert_eq!(m, ["/data/n: 1 with faults, 2 without"]);
        // A registry Secret nothing owns exists in one run only: not part of the state.
        let m = verdict(
            vec![app("u1", "1", 2, None), other("registry", None, 1)],
            vec![app("u2", "1", 2, None)],
            &["/status/lastSync"],
        );
        assert!(m.is_empty(), "{m:?}");
    }
}
