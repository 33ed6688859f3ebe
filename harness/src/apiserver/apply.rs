//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): create-or-update owned by a
//! field manager, with `metadata.managedFields` recorded as `FieldsV1` sets.
//!
//! Each apply computes the set of fields its configuration names (lists with a merge key are
//! associative, keyed `k:{"name":...}`; other lists are atomic). A field another manager owns
//! with a different value is a 409 `Conflict` naming the field and manager, unless `force=true`,
//! which takes it over. Fields this manager applied before and no longer names are removed
//! unless another manager still owns them. A write that names its `fieldManager` (every kubectl
//! command does) is recorded as an `Update` that takes the fields it changed; documented
//! limit: a write without one (kube-apiserver would name it after the User-Agent) leaves
//! `managedFields` as they are.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::meta::timestamp;
use super::patch::{merge_key, Patch};

/// A field path: `f:<field>`, `k:<key JSON>` or `.` (a list item itself) elements.
type FieldPath = Vec<String>;
type FieldSet = BTreeSet<FieldPath>;

/// One apply request.
pub(super) struct Apply<'a> {
    /// The applied configuration (a JSON object).
    pub(super) config: Value,
    /// `fieldManager` (required).
    pub(super) manager: &'a str,
    /// `force`.
    pub(super) force: bool,
    /// `apiVersion` of the served type.
    pub(super) api_version: String,
    /// Now, for the managed-fields entry.
    pub(super) now: Duration,
}

/// Parses an apply body (YAML, of which JSON is a subset).
pub(super) fn parse_config(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut v: Value = serde_norway::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("the apply configuration is not valid YAML: {e}"))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "an apply configuration must be an object",
        ));
    }
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    Ok(v)
}

impl Apply<'_> {
    /// The object after the apply, from the `current` object if there is one.
    pub(super) fn result(&self, current: Option<&Value>) -> Result<Value, ApiError> {
        let applied = field_set(&self.config);
        let empty = json!({});
        let base = current.unwrap_or(&empty);
        let mut entries = managed(base);
        let own_before = entries
            .iter()
            .find(|(m, _, _)| m == self.manager)
            .map(|(_, _, s)| s.clone())
            .unwrap_or_default();
        self.conflicts(base, &applied, &mut entries)?;
        let mut out = Patch::Strategic(self.config.clone()).apply(base)?;
        for gone in own_before.difference(&applied) {
            let still_owned = entries
                .iter()
                .any(|(m, _, s)| m != self.manager && s.contains(gone));
            if !still_owned {
                remove_path(&mut out, gone);
            }
        }
        let own_entry = entries
            .iter()
            .find(|(m, _, s)| m == self.manager && *s == applied)
            .map(|(_, e, _)| e.clone());
        // A no-op apply (kube-apiserver 1.20+) keeps the manager's entry, time included,
        // so the store sees no change and writes nothing: no new resourceVersion, no event.
        let unchanged = current.is_some_and(|c| without_managed(c) == without_managed(&out));
        let kept = own_entry.filter(|_| unchanged);
        entries.retain(|(m, _, _)| m != self.manager);
        entries.push((self.manager.to_string(), json!({}), applied));
        out["metadata"]["managedFields"] = self.render(entries, kept);
        Ok(out)
    }

    /// 409 for fields other managers own with another value (unless forced: then theirs no more).
    fn conflicts(
        &self,
        current: &Value,
        applied: &FieldSet,
        entries: &mut [(String, Value, FieldSet)],
    ) -> Result<(), ApiError> {
        let mut found = Vec::new();
        for (manager, _, owned) in entries.iter_mut() {
            if manager == self.manager {
                continue;
            }
            let clash: Vec<FieldPath> = applied
                .iter()
                .filter(|p| owned.contains(*p) && get(current, p) != get(&self.config, p))
                .cloned()
                .collect();
            if self.force {
                clash.iter().for_each(|p| {
                    owned.remove(p);
                });
            } else {
                found.extend(clash.into_iter().map(|p| (manager.clone(), p)));
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        let mut e = ApiError::other(
            409,
            "Conflict",
            format!(
                "Apply failed with {} conflict{}: {}",
                found.len(),
                if found.len() == 1 { "" } else { "s" },
                found
                    .iter()
                    .map(|(m, p)| format!("conflict with \"{m}\": {}", dotted(p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        e.causes = found
            .iter()
            .map(|(m, p)| {
                let msg = format!("conflict with \"{m}\"");
                ("FieldManagerConflict".to_string(), msg, dotted(p))
            })
            .collect();
        Err(e)
    }

    /// The managed fields; the applying manager's entry is `kept` as it was (a no-op apply)
    /// or written anew with the time of this apply.
    fn render(&self, entries: Vec<(String, Value, FieldSet)>, kept: Option<Value>) -> Value {
        let list: Vec<Value> = entries
            .into_iter()
            .filter(|(_, _, s)| !s.is_empty())
            .map(|(manager, old, set)| {
                if manager == self.manager && kept.is_some() {
                    kept.clone().unwrap_or_default()
                } else if manager == self.manager {
                    json!({"manager": manager, "operation": "Apply", "apiVersion": self.api_version,
                           "time": timestamp(self.now), "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&set)})
                } else {
                    let mut e = old;
                    e["fieldsV1"] = to_fields_v1(&set);
                    e
                }
            })
            .collect();
        Value::Array(list)
    }
}

/// `obj` without `metadata.managedFields`.
fn without_managed(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    o
}

/// Records a write that named its `fieldManager` (an `Update`, as kubectl's commands send):
/// the manager takes the fields it changed from whoever owned them (updates never conflict).
pub(super) fn record_update(
    current: Option<&Value>,
    next: Map<String, Value>,
    manager: &str,
    api_version: &str,
    now: Duration,
) -> Map<String, Value> {
    let mut next = Value::Object(next);
    let empty = json!({});
    let base = current.unwrap_or(&empty);
    let changed: FieldSet = update_fields(&next)
        .into_iter()
        .filter(|p| get(base, p) != get(&next, p))
        .collect();
    let mut entries = managed(base);
    let is_mine = |m: &str, e: &Value| m == manager && e["operation"] == "Update";
    for (m, e, set) in entries.iter_mut() {
        if !is_mine(m, e) {
            set.retain(|p| !changed.contains(p));
        }
    }
    match entries.iter_mut().find(|(m, e, _)| is_mine(m, e)) {
        Some((_, e, set)) => {
            set.extend(changed);
            e["time"] = json!(timestamp(now));
        }
        None if !changed.is_empty() => {
            let e = json!({"manager": manager, "operation": "Update", "apiVersion": api_version,
                           "time": timestamp(now), "fieldsType": "FieldsV1"});
            entries.push((manager.to_string(), e, changed));
        }
        None => {}
    }
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|(_, _, set)| !set.is_empty())
        .map(|(_, mut e, set)| {
            e["fieldsV1"] = to_fields_v1(&set);
            e
        })
        .collect();
    if !list.is_empty() {
        next["metadata"]["managedFields"] = Value::Array(list);
    }
    match next {
        Value::Object(m) => m,
        _ => unreachable!("built from a map"),
    }
}

/// The fields an update can own: everything but identity and server-owned metadata.
fn update_fields(obj: &Value) -> FieldSet {
    let owned_meta = [
        "f:labels",
        "f:annotations",
        "f:finalizers",
        "f:ownerReferences",
    ];
    field_set(obj)
        .into_iter()
        .filter(|p| {
            p[0] != "f:metadata" || p.get(1).is_some_and(|f| owned_meta.contains(&f.as_str()))
        })
        .collect()
}

/// `.data.k`, `.spec.containers[name="c"].image` (kube-apiserver's conflict wording).
fn dotted(p: &FieldPath) -> String {
    p.iter()
        .map(|e| match e.split_once(':') {
            Some(("f", f)) => format!(".{f}"),
            Some(("k", k)) => format!("[{k}]"),
            _ => String::new(),
        })
        .collect()
}

/// The managed-fields entries of an object: (manager, entry, field set).
fn managed(obj: &Value) -> Vec<(String, Value, FieldSet)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    let mut set = FieldSet::new();
                    from_fields_v1(&e["fieldsV1"], &mut Vec::new(), &mut set);
                    (
                        e["manager"].as_str().unwrap_or("").to_string(),
                        e.clone(),
                        set,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The leaf fields a configuration names (identity fields excluded).
fn field_set(config: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    collect(config, "", &mut Vec::new(), &mut set);
    for id in ["apiVersion", "kind"] {
        set.remove(&vec![format!("f:{id}")]);
    }
    for id in ["name", "namespace"] {
        set.remove(&vec!["f:metadata".to_string(), format!("f:{id}")]);
    }
    set
}

fn collect(v: &Value, field: &str, at: &mut FieldPath, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                at.push(format!("f:{k}"));
                collect(child, k, at, out);
                at.pop();
            }
        }
        Value::Array(items) => match merge_key(field, items) {
            Some(key) if items.iter().all(|i| i.get(key).is_some()) => {
                for item in items {
                    at.push(format!("k:{}", json!({ key: item[key] })));
                    at.push(".".into());
                    out.insert(at.clone());
                    at.pop();
                    collect(item, "", at, out);
                    at.pop();
                }
            }
            _ => {
                out.insert(at.clone());
            }
        },
        _ => {
            out.insert(at.clone());
        }
    }
}

fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for e in path {
            node = node
                .entry(e.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

fn from_fields_v1(v: &Value, at: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, child) in m {
        at.push(k.clone());
        if child.as_object().is_some_and(Map::is_empty) {
            out.insert(at.clone());
        } else {
            from_fields_v1(child, at, out);
        }
        at.pop();
    }
}

/// The value at a field path (`.` is the list item itself).
fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(v);
    };
    match head.split_once(':') {
        Some(("f", f)) => get(v.get(f)?, rest),
        Some(("k", k)) => {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            let item = v
                .as_array()?
                .iter()
                .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))?;
            get(item, rest)
        }
        _ => Some(v),
    }
}

/// Removes the field at a path (a `.` path removes the list item).
fn remove_path(v: &mut Value, path: &[String]) {
    match path {
        [] => {}
        [last] if last.starts_with("f:") => {
            if let Some(m) = v.as_object_mut() {
                m.remove(&last[2..]);
            }
        }
        [item, dot] if item.starts_with("k:") && dot == "." => {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(&item[2..]) else {
                return;
            };
            if let Some(a) = v.as_array_mut() {
                a.retain(|i| !key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
            }
        }
        [head, rest @ ..] => {
            let next = match head.split_once(':') {
                Some(("f", f)) => v.get_mut(f),
                Some(("k", k)) => {
                    let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                    v.as_array_mut().and_then(|a| {
                        a.iter_mut()
                            .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))
                    })
                }
                _ => None,
            };
            if let Some(next) = next {
                remove_path(next, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply<'a>(config: Value, manager: &'a str, force: bool) -> Apply<'a> {
        Apply {
            config,
            manager,
            force,
            api_version: "v1".into(),
            now: Duration::ZERO,
        }
    }

    #[test]
    fn a_no_op_apply_keeps_the_managers_entry_and_its_time_so_nothing_is_written() {
        let cm = json!({"metadata": {"name": "a"}, "data": {"k": "1"}});
        let first = apply(cm.clone(), "op", false).result(None).unwrap();
        let mut later = apply(cm, "op", false);
        later.now = Duration::from_secs(30);
        assert_eq!(later.result(Some(&first)).unwrap(), first);
        // A change does take the new time.
        let mut changed = apply(
            json!({"metadata": {"name": "a"}, "data": {"k": "2"}}),
            "op",
            false,
        );
        changed.now = Duration::from_secs(30);
        let next = changed.result(Some(&first)).unwrap();
        assert_ne!(
            next["metadata"]["managedFields"][0]["time"],
            first["metadata"]["managedFields"][0]["time"]
        );
    }

    #[test]
    fn a_second_manager_conflicts_on_a_changed_field_until_forced() {
        let cm = |v: &str| json!({"metadata": {"name": "a"}, "data": {"k": v}});
        let first = apply(cm("1"), "alice", false).result(None).unwrap();
        assert_eq!(
            first["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:k": {}}})
        );
        let e = apply(cm("2"), "bob", false)
            .result(Some(&first))
            .unwrap_err();
        assert_eq!(e.code, 409);
        assert!(
            e.message.contains("conflict with \"alice\": .data.k"),
            "{}",
            e.message
        );
        // The same value is shared ownership, not a conflict.
        assert!(apply(cm("1"), "bob", false).result(Some(&first)).is_ok());
        let forced = apply(cm("2"), "bob", true).result(Some(&first)).unwrap();
        assert_eq!(forced["data"]["k"], "2");
        let managers: Vec<_> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].clone())
            .collect();
        assert_eq!(managers, [json!("bob")], "alice lost her only field");
    }

    #[test]
    fn an_update_takes_the_fields_it_changed_and_then_an_apply_conflicts_with_it() {
        let cm = |v: &str| json!({"metadata": {"name": "a"}, "data": {"k": v, "j": "x"}});
        let first = apply(cm("1"), "alice", false).result(None).unwrap();
        let Value::Object(edited) = cm("2") else {
            unreachable!()
        };
        let edited = Value::Object(record_update(
            Some(&first),
            edited,
            "editor",
            "v1",
            Duration::ZERO,
        ));
        let owners: Vec<_> = managed(&edited)
            .into_iter()
            .map(|(m, _, set)| (m, set.into_iter().map(|p| dotted(&p)).collect::<Vec<_>>()))
            .collect();
        assert_eq!(
            owners,
            [
                ("alice".to_string(), vec![".data.j".to_string()]),
                ("editor".to_string(), vec![".data.k".to_string()])
            ]
        );
        let e = apply(cm("1"), "alice", false)
            .result(Some(&edited))
            .unwrap_err();
        assert!(
            e.message.contains("conflict with \"editor\": .data.k"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_field_no_longer_applied_is_removed_and_containers_merge_by_name() {
        let v1 = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "1"}]}, "data": {"x": "1"}});
        let first = apply(v1, "m", false).result(None).unwrap();
        let v2 = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "2"}]}});
        let second = apply(v2, "m", false).result(Some(&first)).unwrap();
        assert!(second["data"].get("x").is_none(), "{second}");
        assert_eq!(
            second["spec"]["containers"],
            json!([{"name": "a", "image": "2"}])
        );
        let fields = &second["metadata"]["managedFields"][0]["fieldsV1"];
        assert!(fields["f:spec"]["f:containers"]["k:{\"name\":\"a\"}"]["f:image"].is_object());
    }
}
