//! CustomResourceDefinitions written through the API (`apiextensions.k8s.io/v1`): a CRD
//! created or updated starts serving its storage version (discovery, OpenAPI, its endpoints,
//! its `status`/`scale` subresources, watch) and is marked `NamesAccepted` and `Established` in
//! the same write; a CRD deleted stops serving and its custom resources are removed with it.
//!
//! Documented limits: only the storage version is served (no conversion between versions);
//! custom resources are removed when their CRD goes even if they have finalizers.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::meta::timestamp;
use super::resource::ResourceType;
use super::store::{ObjKey, Store};

/// The served type a CRD object declares (its storage version, or the first served one).
pub(super) fn resource_type(crd: &Value) -> Result<ResourceType, ApiError> {
    let spec = &crd["spec"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let (group, kind, plural) = (
        s(&spec["group"]),
        s(&spec["names"]["kind"]),
        s(&spec["names"]["plural"]),
    );
    let name = s(&crd["metadata"]["name"]);
    let invalid = |field: &str, detail: &str| {
        ApiError::invalid("CustomResourceDefinition", &name, field, detail)
    };
    if group.is_empty() || kind.is_empty() || plural.is_empty() {
        return Err(invalid(
            "spec",
            "Required value: spec.group, spec.names.kind and spec.names.plural are required",
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            "metadata.name",
            &format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .or_else(|| {
            versions
                .iter()
                .find(|v| v["served"].as_bool() != Some(false))
        })
        .ok_or_else(|| {
            invalid(
                "spec.versions",
                "Required value: must have exactly one version marked as storage version",
            )
        })?;
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut t = ResourceType::new(&group, &s(&version["name"]), &kind, &plural, namespaced);
    t.short_names = spec["names"]["shortNames"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    t.schema = version["schema"].get("openAPIV3Schema").cloned();
    t.printer_columns = version["additionalPrinterColumns"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .map(|c| (s(&c["name"]), s(&c["type"]), s(&c["jsonPath"])))
                .collect()
        })
        .unwrap_or_default();
    t.status_subresource = version["subresources"].get("status").is_some();
    let scale = &version["subresources"]["scale"];
    if scale.is_object() {
        t.scale_subresource = Some((
            s(&scale["specReplicasPath"]),
            s(&scale["statusReplicasPath"]),
        ));
    }
    Ok(t)
}

/// The status kube-apiserver's CRD controllers give an accepted CRD.
pub(super) fn accepted_status(crd: &Map<String, Value>, now: Duration) -> Value {
    let names = crd
        .get("spec")
        .and_then(|s| s.get("names"))
        .cloned()
        .unwrap_or_default();
    let stored: Vec<Value> = crd
        .get("spec")
        .and_then(|s| s["versions"].as_array())
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": "True", "lastTransitionTime": timestamp(now),
               "reason": reason, "message": message})
    };
    json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
    })
}

/// After a CRD write: serve what it declares (creates, updates), or stop serving it and
/// remove its custom resources (deletion).
pub(super) fn sync(s: &mut Store, crd: &Value, deleted: bool, now: Duration) {
    let Ok(t) = resource_type(crd) else { return };
    let served = s.resources().find(&t.group, &t.version, &t.plural);
    if deleted {
        if let Some(res) = served {
            for key in s.live_keys(Some(res), None) {
                s.remove_now(&key, now);
            }
            s.resources_mut().retire(res);
        }
        return;
    }
    s.resources_mut().serve(t);
}

/// Whether `key` names a CRD object.
pub(super) fn is_crd(s: &Store, key: &ObjKey) -> bool {
    key.res == s.resources().crds()
}
