//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/G`, `/apis/G/V`, in the
//! legacy (unaggregated) JSON forms that kubectl and kube-rs accept.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::resource::{ResourceType, Resources};

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "gitVersion": "v1.34.0-kube-chaos",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "apiserver:6443"}]
    })
}

fn groups(resources: &Resources) -> BTreeMap<&str, Vec<&str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in resources.all().filter(|t| !t.group.is_empty()) {
        let versions = groups.entry(&t.group).or_default();
        if !versions.contains(&t.version.as_str()) {
            versions.push(&t.version);
        }
    }
    groups
}

fn group_doc(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

/// `/apis`.
pub fn group_list(resources: &Resources) -> Value {
    let groups: Vec<Value> = groups(resources)
        .iter()
        .map(|(name, versions)| group_doc(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/G`, if the group is served.
pub fn group(resources: &Resources, name: &str) -> Option<Value> {
    groups(resources).get(name).map(|v| group_doc(name, v))
}

fn resource_doc(t: &ResourceType) -> Value {
    let mut doc = json!({
        "name": t.plural,
        "singularName": t.kind.to_lowercase(),
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
    });
    if !t.short_names.is_empty() {
        doc["shortNames"] = json!(t.short_names);
    }
    doc
}

/// The `plural/status` and `plural/scale` entries of a type that has those subresources.
fn subresource_docs(t: &ResourceType) -> Vec<Value> {
    let sub = |name: &str, kind: &str| {
        json!({"name": format!("{}/{name}", t.plural), "singularName": "", "namespaced": t.namespaced,
               "kind": kind, "verbs": ["get", "patch", "update"]})
    };
    let mut out = Vec::new();
    if t.status_subresource {
        out.push(sub("status", &t.kind));
    }
    if t.scale_subresource.is_some() {
        let mut scale = sub("scale", "Scale");
        scale["group"] = json!("autoscaling");
        scale["version"] = json!("v1");
        out.push(scale);
    }
    out
}

/// `/api/v1` or `/apis/G/V`, if that group version is served.
pub fn resource_list(resources: &Resources, group: &str, version: &str) -> Option<Value> {
    let served: Vec<Value> = resources
        .all()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(|t| std::iter::once(resource_doc(t)).chain(subresource_docs(t)))
        .collect();
    if served.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": served}),
    )
}
