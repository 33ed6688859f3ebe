//! Helpers over an object's JSON: its `metadata` map, resourceVersion, finalizers, name rules,
//! timestamps, and the comparisons an update needs (what changed, what the server owns).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// `metadata` of an object, created if absent or not an object.
pub fn metadata_mut(obj: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("metadata is an object")
}

pub(super) fn meta_str<'a>(obj: &'a Map<String, Value>, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The object's resourceVersion string.
pub fn rv_of(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

/// RFC 3339 timestamp (seconds) of a duration since the UNIX epoch; never reads the clock.
pub fn timestamp(since_epoch: Duration) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + since_epoch).to_string()
}

/// Why a name is not a DNS-1123 subdomain, if it is not.
pub fn invalid_name(name: &str) -> Option<&'static str> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > 253 {
        return Some("must be no more than 253 characters");
    }
    if !name.chars().all(ok_char) || !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
    }
    None
}

pub(super) fn finalizers(obj: &Map<String, Value>) -> Vec<Value> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Fields the server owns are carried over from the stored object on update.
pub(super) fn carry_server_fields(current: &Value, obj: &mut Map<String, Value>) {
    let meta = metadata_mut(obj);
    let current = &current["metadata"];
    for field in [
        "uid",
        "creationTimestamp",
        "namespace",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match current.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    meta.insert("resourceVersion".into(), current["resourceVersion"].clone());
    meta.remove("generateName");
    // kube-apiserver keeps the managed fields of an update that does not send them.
    if let Some(managed) = current.get("managedFields") {
        meta.entry("managedFields")
            .or_insert_with(|| managed.clone());
    }
}

/// Whether `current` is an object equal to `new` once the top-level `skip` fields are left
/// out of both (compared in place: a write is not a copy of the object it replaces).
fn equal_except(current: &Value, new: &Map<String, Value>, skip: &[&str]) -> bool {
    let Value::Object(current) = current else {
        return false;
    };
    let kept = |k: &&String| !skip.contains(&k.as_str());
    current.keys().filter(kept).count() == new.keys().filter(kept).count()
        && current
            .iter()
            .filter(|(k, _)| kept(k))
            .all(|(k, v)| new.get(k) == Some(v))
}

pub(super) fn same_content(current: &Value, new: &Map<String, Value>) -> bool {
    equal_except(current, new, &["apiVersion", "kind"])
}

/// Generation moves when anything but metadata and status changes (kube-apiserver's rule for
/// resources with a status subresource).
pub(super) fn spec_changed(current: &Value, new: &Map<String, Value>) -> bool {
    !equal_except(current, new, &["apiVersion", "kind", "metadata", "status"])
}

/// A core `Secret`'s `stringData` merged into `data` (base64), as kube-apiserver does on
/// every write: `stringData` is write-only and wins over `data` for the same key. Objects
/// of any other type `t` are left as they are.
pub(super) fn merge_string_data(t: &super::ResourceType, obj: &mut Map<String, Value>) {
    if !(t.group.is_empty() && t.kind == "Secret") {
        return;
    }
    let Some(Value::Object(strings)) = obj.remove("stringData") else {
        return;
    };
    let data = obj
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let data = data.as_object_mut().expect("made an object above");
    for (k, v) in strings {
        let bytes = v.as_str().unwrap_or("").as_bytes().to_vec();
        let encoded = serde_json::to_value(k8s_openapi::ByteString(bytes)).expect("bytes encode");
        data.insert(k, encoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_and_spec_changes_are_told_apart_field_by_field() {
        let map = |v: Value| v.as_object().unwrap().clone();
        let current = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "a"},
            "data": {"v": "1"}});
        let relabelled = map(serde_json::json!({"metadata": {"name": "a", "labels": {}},
            "data": {"v": "1"}}));
        assert!(same_content(
            &current,
            &map(serde_json::json!({"metadata": {"name": "a"}, "data": {"v": "1"}}))
        ));
        assert!(!same_content(&current, &relabelled));
        assert!(!spec_changed(&current, &relabelled), "metadata is not spec");
        assert!(spec_changed(
            &current,
            &map(serde_json::json!({"metadata": {"name": "a"}}))
        ));
        assert!(spec_changed(
            &current,
            &map(serde_json::json!({"data": {"v": "1"}, "spec": 1}))
        ));
        assert!(!same_content(
            &serde_json::json!("not an object"),
            &relabelled
        ));
    }

    #[test]
    fn timestamps_derive_from_the_given_time_not_the_clock() {
        assert_eq!(
            timestamp(Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
    }
}
