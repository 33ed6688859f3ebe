//! `differential` (Sieve's oracle, made exact by determinism): the end state of a run with
//! faults equals the end state of the same seed and workload without them, modulo what is
//! volatile in any cluster — resourceVersion, uid, timestamps, managedFields, generated
//! names, owner uids — and the fields the user declares volatile. Events and Leases are
//! not compared.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::cluster::describe;
use super::{Evidence, Found, Violation};

/// Kinds whose objects are records of what happened, not state.
const NOT_STATE: [&str; 2] = ["Event", "Lease"];

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
    let with = state(&c.objects, &c.volatile);
    let without = state(baseline, &c.volatile);
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

/// Normalised objects by `Kind ns/name` (generated names end in `*`, with a counter when
/// several share a prefix).
fn state(objects: &[Arc<Value>], volatile: &[String]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut generated: Vec<(String, Value)> = Vec::new();
    for o in objects {
        if NOT_STATE.contains(&o["kind"].as_str().unwrap_or("")) {
            continue;
        }
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
            json!({"apiVersion": "x/v1", "kind": "App", "metadata": meta,
            "spec": {"replicas": replicas}, "status": {"lastSync": rv}}),
        )
    }

    fn verdict(with: Vec<Arc<Value>>, without: Vec<Arc<Value>>, volatile: &[&str]) -> Vec<String> {
        let mut c = Case::new(SubjectKind::Operator, "");
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
}
