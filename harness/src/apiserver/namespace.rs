//! Namespace deletion as kube-apiserver and its namespace controller do it, in one
//! synchronous step: the namespace turns `Terminating` (deletionTimestamp, `status.phase`),
//! every object in it is deleted (finalizers hold an object, and with it the namespace), and
//! the namespace goes once it is empty — at once, or when its last object's finalizer goes.

use std::time::Duration;

use serde_json::{json, Value};

use super::error::ApiError;
use super::meta::{metadata_mut, timestamp};
use super::store::{check_preconditions, ObjKey, Preconditions, Store, Written};

/// Namespaces kube-apiserver refuses to delete.
const UNDELETABLE: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Deletes namespace `key`: returns it as `Terminating` (kube-apiserver returns the
/// namespace, not a `Status`), or its last state if it was already empty.
pub(super) fn delete(
    s: &mut Store,
    key: &ObjKey,
    pre: &Preconditions,
    now: Duration,
) -> Result<Written, ApiError> {
    let current = s
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::not_found("namespaces", &key.name))?;
    check_preconditions(&current, pre, "namespaces", &key.name)?;
    if UNDELETABLE.contains(&key.name.as_str()) {
        return Err(ApiError::other(
            403,
            "Forbidden",
            format!(
                "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                key.name
            ),
        ));
    }
    let marked = if current["metadata"].get("deletionTimestamp").is_some() {
        current
    } else {
        let Value::Object(mut obj) = (*current).clone() else {
            unreachable!("stored objects are JSON objects")
        };
        metadata_mut(&mut obj).insert("deletionTimestamp".into(), json!(timestamp(now)));
        metadata_mut(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(0));
        obj.insert("status".into(), json!({"phase": "Terminating"}));
        s.commit_modified(key, obj, now)
    };
    for k in s.live_keys(None, Some(&key.name)) {
        // An object already being finalized answers with itself; none of these can fail
        // but for a race we do not have (one lock).
        let _ = s.delete(&k, &Preconditions::default(), now);
    }
    finish_if_empty(s, &key.name, now);
    Ok(marked)
}

/// Removes namespace `ns` if it is terminating and empty (after any write in it).
pub(super) fn finish_if_empty(s: &mut Store, ns: &str, now: Duration) {
    if ns.is_empty() {
        return;
    }
    let key = ObjKey {
        res: s.resources().namespaces(),
        ns: String::new(),
        name: ns.to_string(),
    };
    let terminating = s
        .get(&key)
        .is_some_and(|n| n["metadata"].get("deletionTimestamp").is_some());
    if terminating && s.live_keys(None, Some(ns)).is_empty() {
        s.remove_now(&key, now);
    }
}
