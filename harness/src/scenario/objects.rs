//! Objects of any kind in scenarios: the CRDs a cluster serves, initial manifests, and the
//! workload writes on any resource (create, update, merge patch, delete, churn over a
//! template), expanded into single [`ObjectWrite`]s.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Dur;

/// One object, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// apiVersion, e.g. `v1` or `example.com/v1`.
    pub api_version: String,
    /// kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Namespace (absent: `default` for namespaced kinds; cluster-scoped kinds have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// metadata.name.
    pub name: String,
}

impl ObjectRef {
    /// The reference to a manifest (its apiVersion, kind, namespace and name).
    pub fn of(obj: &Value) -> Self {
        let m = &obj["metadata"];
        Self {
            api_version: obj["apiVersion"].as_str().unwrap_or("").to_string(),
            kind: obj["kind"].as_str().unwrap_or("").to_string(),
            namespace: m["namespace"].as_str().map(str::to_string),
            name: m["name"].as_str().unwrap_or("").to_string(),
        }
    }

    /// `Kind ns/name` (`Kind name` when cluster-scoped), as traces and messages show it.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// A single write on an object of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectWrite {
    /// Create this manifest (nothing happens if it exists: a create would be refused).
    Create(Value),
    /// Replace the object's content with this manifest's, keeping its metadata (created if
    /// absent).
    Update(Value),
    /// Merge-patch (RFC 7386) the object; absent objects are left alone.
    Patch(ObjectRef, Value),
    /// Delete the object (finalizers honoured).
    Delete(ObjectRef),
    /// Delete every object of kind (apiVersion, kind) the object owns (someone deleting an
    /// operator's children by hand).
    DeleteOwned(ObjectRef, String, String),
}

impl ObjectWrite {
    /// The object written.
    pub fn target(&self) -> ObjectRef {
        match self {
            ObjectWrite::Create(o) | ObjectWrite::Update(o) => ObjectRef::of(o),
            ObjectWrite::Patch(r, _)
            | ObjectWrite::Delete(r)
            | ObjectWrite::DeleteOwned(r, _, _) => r.clone(),
        }
    }
}

/// The copy `i` of a churn template: its name suffixed `-{i}`.
pub fn template_copy(template: &Value, i: u32) -> Value {
    let mut obj = template.clone();
    let name = template["metadata"]["name"].as_str().unwrap_or("obj");
    obj["metadata"]["name"] = json!(format!("{name}-{i}"));
    obj
}

/// The patch a churn update applies when the scenario gives none: a changing annotation.
fn serial_patch(serial: usize) -> Value {
    json!({"metadata": {"annotations": {"kube-chaos/churn": serial.to_string()}}})
}

/// Every `every` in `[at, at + for_)`: create a random copy of `template` if absent, else
/// patch it (70 %, with one of `patches` or a changing annotation) or delete it.
pub fn churn_objects(
    (at, for_, every): (Dur, Dur, Dur),
    objects: u32,
    template: &Value,
    patches: &[Value],
    rng: &mut impl Rng,
) -> Vec<(Duration, ObjectWrite)> {
    let mut live = BTreeSet::new();
    let mut out = Vec::new();
    let mut t = at.0;
    while t < at.0 + for_.0 && !every.0.is_zero() {
        let i = rng.random_range(0..objects.max(1));
        let obj = template_copy(template, i);
        let target = ObjectRef::of(&obj);
        let write = if !live.contains(&i) {
            live.insert(i);
            ObjectWrite::Create(obj)
        } else if rng.random_bool(0.7) {
            let patch = match patches.len() {
                0 => serial_patch(out.len()),
                n => patches[rng.random_range(0..n)].clone(),
            };
            ObjectWrite::Patch(target, patch)
        } else {
            live.remove(&i);
            ObjectWrite::Delete(target)
        };
        out.push((t, write));
        t += every.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn app() -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "App",
               "metadata": {"name": "web", "namespace": "default"}, "spec": {"n": 1}})
    }

    #[test]
    fn object_churn_creates_a_copy_before_it_patches_or_deletes_it() {
        let writes = churn_objects(
            (Dur::secs(1), Dur::secs(10), Dur::secs(1)),
            2,
            &app(),
            &[json!({"spec": {"n": 2}})],
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        assert_eq!(writes.len(), 10);
        let mut live = BTreeSet::new();
        for (at, w) in &writes {
            assert!(*at >= Duration::from_secs(1) && *at < Duration::from_secs(11));
            let name = w.target().name;
            assert!(name == "web-0" || name == "web-1", "{name}");
            match w {
                ObjectWrite::Create(o) => {
                    assert_eq!(o["spec"]["n"], 1);
                    assert!(live.insert(name.clone()), "{name} created twice")
                }
                ObjectWrite::Patch(_, p) => {
                    assert_eq!(p, &json!({"spec": {"n": 2}}));
                    assert!(live.contains(&name), "{name} patched while absent")
                }
                ObjectWrite::Delete(_) => {
                    assert!(live.remove(&name), "{name} deleted while absent")
                }
                ObjectWrite::Update(_) | ObjectWrite::DeleteOwned(..) => {
                    panic!("churn does not replace or delete children")
                }
            }
        }
    }

    #[test]
    fn a_reference_describes_namespaced_and_cluster_scoped_objects() {
        assert_eq!(ObjectRef::of(&app()).describe(), "App default/web");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}});
        assert_eq!(ObjectRef::of(&ns).describe(), "Namespace prod");
    }
}
