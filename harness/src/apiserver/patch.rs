//! The patch types of `PATCH`: JSON merge patch (RFC 7386) and JSON patch (RFC 6902) through
//! the `json-patch` crate, and strategic merge patch for the list-merge keys of the served
//! kinds (server-side apply is `apply.rs`).
//!
//! Strategic merge patch, the documented subset: maps merge as in a merge patch; a list whose
//! field has a merge key below ([`merge_key`]) merges item by item on that key (`$patch: delete`
//! in an item removes it); `finalizers` merges as a set; any other list is replaced. The
//! directives `$patch: replace` (on a map), `$retainKeys`, `$deleteFromPrimitiveList/<f>` and
//! `$setElementOrder/<f>` are honoured (the last one orders the merged list).

use serde_json::{Map, Value};

use super::error::ApiError;

/// A `PATCH` body, by its content type.
#[derive(Debug, Clone)]
pub(super) enum Patch {
    /// `application/merge-patch+json`.
    Merge(Value),
    /// `application/json-patch+json`.
    Json(json_patch::Patch),
    /// `application/strategic-merge-patch+json`.
    Strategic(Value),
}

impl Patch {
    /// Applies the patch to a copy of `current`.
    pub(super) fn apply(&self, current: &Value) -> Result<Value, ApiError> {
        let mut out = current.clone();
        match self {
            Patch::Merge(p) => json_patch::merge(&mut out, p),
            Patch::Json(p) => json_patch_lenient(&mut out, &p.0)?,
            Patch::Strategic(p) => strategic_merge(&mut out, p),
        }
        Ok(out)
    }
}

/// Applies a JSON patch as kube-apiserver's json-patch library does, in one respect more
/// lenient than RFC 6902: a `test` that a path is `null` succeeds when the path is absent
/// (kube-runtime's `finalizer` adds the first finalizer behind such a test). Atomic: on a
/// failure `doc` is left as it was.
fn json_patch_lenient(doc: &mut Value, ops: &[json_patch::PatchOperation]) -> Result<(), ApiError> {
    let mut out = doc.clone();
    for op in ops {
        if let json_patch::PatchOperation::Test(t) = op {
            if t.value.is_null() && out.pointer(t.path.as_str()).is_none() {
                continue;
            }
        }
        json_patch::patch(&mut out, std::slice::from_ref(op))
            .map_err(|e| ApiError::other(422, "Invalid", format!("the JSON patch failed: {e}")))?;
    }
    *doc = out;
    Ok(())
}

/// The merge key of a list field, when strategic merge patch merges it item by item. `ports`
/// merges on `containerPort` in a container and on `port` in a Service (decided by the items).
pub(super) fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "secrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Applies a strategic merge patch to `target` in place.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") || !target.is_object() {
        let mut p = patch.clone();
        p.remove("$patch");
        *target = Value::Object(Map::new());
        strategic_merge(target, &Value::Object(p));
        return;
    }
    let map = target.as_object_mut().expect("checked above");
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        match (v, map.get_mut(k)) {
            (Value::Null, _) => {
                map.remove(k);
            }
            (Value::Array(items), Some(Value::Array(current))) => {
                *current = merge_list(k, current, items);
            }
            (Value::Object(_), Some(existing)) => strategic_merge(existing, v),
            _ => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, v);
                map.insert(k.clone(), strip_directives(fresh));
            }
        }
    }
    apply_list_directives(map, patch);
}

/// `$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>` and `$retainKeys` of one map.
fn apply_list_directives(map: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        let Some(list) = v.as_array() else { continue };
        if let Some(f) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let Some(Value::Array(current)) = map.get_mut(f) {
                current.retain(|x| !list.contains(x));
            }
        } else if let Some(f) = k.strip_prefix("$setElementOrder/") {
            if let Some(Value::Array(current)) = map.get_mut(f) {
                order_like(f, current, list);
            }
        } else if k == "$retainKeys" {
            map.retain(|key, _| list.iter().any(|l| l == key));
        }
    }
}

/// Reorders `current` so that the items named in `order` come first, in that order.
fn order_like(field: &str, current: &mut [Value], order: &[Value]) {
    let key = merge_key(field, current);
    let id = |v: &Value| match key {
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    };
    let rank = |v: &Value| {
        let id = id(v);
        order
            .iter()
            .position(|o| {
                id == (if key.is_some() {
                    id_of(o, key)
                } else {
                    o.clone()
                })
            })
            .unwrap_or(usize::MAX)
    };
    current.sort_by_key(rank);
}

fn id_of(v: &Value, key: Option<&str>) -> Value {
    key.and_then(|k| v.get(k)).cloned().unwrap_or(Value::Null)
}

/// Merges a patch list into the current one, by merge key if the field has one.
fn merge_list(field: &str, current: &[Value], patch: &[Value]) -> Vec<Value> {
    if field == "finalizers" {
        let mut out = current.to_vec();
        out.extend(patch.iter().filter(|p| !current.contains(p)).cloned());
        return out;
    }
    let Some(key) = merge_key(field, current) else {
        return patch.iter().cloned().map(strip_directives).collect();
    };
    let mut out = current.to_vec();
    for item in patch {
        let id = item.get(key);
        let pos = out.iter().position(|c| c.get(key) == id && id.is_some());
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut out[i], item),
            (None, false) => out.push(strip_directives(item.clone())),
        }
    }
    out
}

/// A value with every `$` directive key removed (new content has nothing to merge into).
fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

/// Reads a `PATCH` body of media type `media` (415 for others; server-side apply is handled
/// before this).
pub(super) fn parse(media: Option<&str>, bytes: &[u8]) -> Result<Patch, ApiError> {
    let json = || -> Result<Value, ApiError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    };
    let object = |v: Value| {
        if v.is_object() {
            Ok(v)
        } else {
            Err(ApiError::bad_request("a merge patch must be a JSON object"))
        }
    };
    match media {
        Some("application/merge-patch+json") => Ok(Patch::Merge(object(json()?)?)),
        Some("application/strategic-merge-patch+json") => Ok(Patch::Strategic(object(json()?)?)),
        Some("application/json-patch+json") => serde_json::from_slice(bytes)
            .map(Patch::Json)
            .map_err(|e| ApiError::bad_request(format!("the JSON patch is not valid: {e}"))),
        other => Err(ApiError::unsupported_media_type(other.unwrap_or("none"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_examples() {
        let t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1]});
        let p = Patch::Merge(json!({"a": "z", "c": {"f": null}, "l": [2, 3]}));
        assert_eq!(
            p.apply(&t).unwrap(),
            json!({"a": "z", "c": {"d": "e"}, "l": [2, 3]})
        );
    }

    #[test]
    fn json_patch_adds_removes_and_fails_a_test_with_422() {
        let t = json!({"metadata": {"finalizers": ["a", "b"]}});
        let p: json_patch::Patch = serde_json::from_value(json!([
            {"op": "remove", "path": "/metadata/finalizers/0"},
            {"op": "add", "path": "/data", "value": {"k": "v"}}
        ]))
        .unwrap();
        let out = Patch::Json(p).apply(&t).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["b"]}, "data": {"k": "v"}})
        );
        let test: json_patch::Patch =
            serde_json::from_value(json!([{"op": "test", "path": "/data", "value": 1}])).unwrap();
        assert_eq!(Patch::Json(test).apply(&out).unwrap_err().code, 422);
    }

    #[test]
    fn a_test_that_an_absent_path_is_null_passes_as_kube_runtimes_finalizer_needs() {
        // kube-runtime's `finalizer` adds the first finalizer behind this test.
        let p: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x/cleanup"]}
        ]))
        .unwrap();
        let out = Patch::Json(p.clone())
            .apply(&json!({"metadata": {"name": "a"}}))
            .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["x/cleanup"]));
        // Present and not null: the test fails, and nothing is applied.
        assert_eq!(Patch::Json(p).apply(&out).unwrap_err().code, 422);
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_honours_delete() {
        let t = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
                                "tolerations": [{"key": "x"}]},
                       "metadata": {"finalizers": ["f1"]}});
        let p = Patch::Strategic(json!({
            "metadata": {"finalizers": ["f2"]},
            "spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"},
                                    {"name": "c", "image": "3"}],
                     "tolerations": [{"key": "y"}]}}));
        let out = p.apply(&t).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "2"}, {"name": "c", "image": "3"}])
        );
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "y"}]));
        assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
    }

    #[test]
    fn strategic_merge_orders_by_set_element_order_and_deletes_primitives() {
        let t = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "metadata": {"finalizers": ["x", "y"]}});
        let p = Patch::Strategic(json!({
            "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]},
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}));
        let out = p.apply(&t).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b"}, {"name": "a"}])
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
    }
}
