//! `DeleteOptions.propagationPolicy` as kube-apiserver applies it before the garbage
//! collector (`gc.rs`) takes over: an orphan delete adds the `orphan` finalizer, a
//! foreground delete the `foregroundDeletion` finalizer, a background delete neither; the
//! object then waits for the collector like for any other finalizer.
//!
//! The rules are apiserver's `deletionFinalizersForGarbageCollection` (staging
//! `k8s.io/apiserver/pkg/registry/generic/registry/store.go`): an explicit policy (or the
//! deprecated `orphanDependents`) wins; without one a GC finalizer already on the object
//! stands; else the kind's default, background for every kind but the old workload
//! versions and `v1` ReplicationControllers (orphan).

use std::time::Duration;

use serde_json::{json, Value};

use super::error::ApiError;
use super::meta::{finalizers, metadata_mut, timestamp};
use super::query::Query;
use super::resource::ResourceType;
use super::store::{check_preconditions, ObjKey, Preconditions, Store, Written};

/// The finalizer of an orphan delete (`metav1.FinalizerOrphanDependents`).
pub(super) const ORPHAN: &str = "orphan";
/// The finalizer of a foreground delete (`metav1.FinalizerDeleteDependents`).
pub(super) const FOREGROUND: &str = "foregroundDeletion";

/// `metav1.DeletionPropagation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Propagation {
    /// Dependents lose their reference to the owner, then the owner goes.
    Orphan,
    /// The owner goes at once; the collector deletes dependents left without owners.
    Background,
    /// Dependents that block their owner's deletion go first, then the owner.
    Foreground,
}

impl Propagation {
    fn parse(v: &str) -> Result<Self, ApiError> {
        match v {
            "Orphan" => Ok(Self::Orphan),
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            other => Err(invalid(
                "propagationPolicy",
                &format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""),
            )),
        }
    }

    /// The policy of a `DeleteOptions` (the body when there is one, else the query), from
    /// `propagationPolicy` or the deprecated `orphanDependents`; both set is a 422.
    pub(super) fn of_options(
        body: Option<&Value>,
        query: &Query,
    ) -> Result<Option<Self>, ApiError> {
        let (policy, orphan) = match body {
            Some(b) => (
                b["propagationPolicy"].as_str().map(str::to_string),
                b["orphanDependents"].as_bool(),
            ),
            None => (
                query.str("propagationPolicy").map(str::to_string),
                query
                    .str("orphanDependents")
                    .filter(|v| !v.is_empty())
                    .map(|_| query.bool("orphanDependents"))
                    .transpose()?,
            ),
        };
        match (policy.filter(|p| !p.is_empty()), orphan) {
            (Some(_), Some(_)) => Err(invalid(
                "propagationPolicy",
                "Invalid value: \"\": orphanDependents and deletionPropagation cannot be both set",
            )),
            (Some(p), None) => Self::parse(&p).map(Some),
            (None, Some(true)) => Ok(Some(Self::Orphan)),
            (None, Some(false)) => Ok(Some(Self::Background)),
            (None, None) => Ok(None),
        }
    }

    /// The kind's default (`DefaultGarbageCollectionPolicy` of its registry strategy).
    fn default_for(ty: &ResourceType) -> Self {
        let old_workload = matches!(
            (ty.group.as_str(), ty.version.as_str()),
            ("extensions", "v1beta1") | ("apps", "v1beta1" | "v1beta2")
        );
        let rc_v1 = ty.group.is_empty() && ty.kind == "ReplicationController";
        if old_workload || rc_v1 {
            Self::Orphan
        } else {
            Self::Background
        }
    }
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::invalid("DeleteOptions.meta.k8s.io", "", field, detail)
}

/// The finalizers `obj` should carry once deleted with `policy`.
fn finalizers_after(obj: &Value, ty: &ResourceType, policy: Option<Propagation>) -> Vec<Value> {
    let current = obj["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |f: &str| current.iter().any(|v| v == f);
    let policy = policy.unwrap_or(if has(ORPHAN) {
        Propagation::Orphan
    } else if has(FOREGROUND) {
        Propagation::Foreground
    } else {
        Propagation::default_for(ty)
    });
    let mut out: Vec<Value> = current
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    match policy {
        Propagation::Orphan => out.push(json!(ORPHAN)),
        Propagation::Foreground => out.push(json!(FOREGROUND)),
        Propagation::Background => {}
    }
    out
}

/// Deletes `key` with `policy` (`None`: the object's GC finalizer or the kind's default):
/// the object is marked with the policy's finalizer and waits for the collector, or goes at
/// once when nothing holds it. Returns its last (or marked) state.
pub(super) fn delete(
    s: &mut Store,
    key: &ObjKey,
    pre: &Preconditions,
    policy: Option<Propagation>,
    now: Duration,
) -> Result<Written, ApiError> {
    let ty = s.resources().get(key.res).clone();
    let current = s
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&ty.qualified_plural(), &key.name))?;
    check_preconditions(&current, pre, &ty.qualified_plural(), &key.name)?;
    let Value::Object(mut obj) = (*current).clone() else {
        unreachable!("stored objects are JSON objects")
    };
    let wanted = finalizers_after(&current, &ty, policy);
    let same = {
        let mut a = finalizers(&obj);
        let mut b = wanted.clone();
        a.sort_by_key(Value::to_string);
        b.sort_by_key(Value::to_string);
        a == b
    };
    if same {
        return s.delete(key, pre, now);
    }
    let meta = metadata_mut(&mut obj);
    meta.insert("finalizers".into(), Value::Array(wanted.clone()));
    if wanted.is_empty() {
        // The server's own update (a GC finalizer dropped by the new policy), then the delete.
        s.commit_modified(key, obj, now);
        return s.delete(key, &Preconditions::default(), now);
    }
    if !meta.contains_key("deletionTimestamp") {
        meta.insert("deletionTimestamp".into(), json!(timestamp(now)));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    Ok(s.commit_modified(key, obj, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn the_body_decides_when_there_is_one_and_both_fields_set_is_a_422() {
        let body = json!({"propagationPolicy": "Foreground"});
        assert_eq!(
            Propagation::of_options(Some(&body), &q("propagationPolicy=Orphan")).unwrap(),
            Some(Propagation::Foreground)
        );
        assert_eq!(
            Propagation::of_options(None, &q("propagationPolicy=Orphan")).unwrap(),
            Some(Propagation::Orphan)
        );
        assert_eq!(
            Propagation::of_options(None, &q("orphanDependents=true")).unwrap(),
            Some(Propagation::Orphan)
        );
        let both = json!({"propagationPolicy": "Orphan", "orphanDependents": true});
        assert_eq!(
            Propagation::of_options(Some(&both), &q(""))
                .unwrap_err()
                .code,
            422
        );
        let bad = json!({"propagationPolicy": "Sideways"});
        let e = Propagation::of_options(Some(&bad), &q("")).unwrap_err();
        assert!(
            e.message.contains("Unsupported value: \"Sideways\""),
            "{e:?}"
        );
    }

    #[test]
    fn without_a_policy_a_gc_finalizer_stands_else_the_kinds_default() {
        let cm = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let rc = ResourceType::new(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            true,
        );
        let plain = json!({"metadata": {"finalizers": ["x/y"]}});
        assert_eq!(finalizers_after(&plain, &cm, None), [json!("x/y")]);
        assert_eq!(
            finalizers_after(&plain, &rc, None),
            [json!("x/y"), json!(ORPHAN)]
        );
        let orphaned = json!({"metadata": {"finalizers": [ORPHAN]}});
        assert_eq!(finalizers_after(&orphaned, &cm, None), [json!(ORPHAN)]);
        assert_eq!(
            finalizers_after(&orphaned, &cm, Some(Propagation::Foreground)),
            [json!(FOREGROUND)]
        );
        assert!(finalizers_after(&orphaned, &cm, Some(Propagation::Background)).is_empty());
    }
}
