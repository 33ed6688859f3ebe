//! Workload: the writes "other clients" make during a run, each kind with its accessors and
//! its expansion into single [`Write`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::objects::{churn_objects, ObjectRef, ObjectWrite};
use super::Dur;

/// A write (or a generator of writes): the short forms on ConfigMaps in namespace
/// `default`, the `*_object` forms on any resource (built-in or a scenario's CRD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Workload {
    /// Create (or replace) one ConfigMap.
    Create {
        /// When.
        at: Dur,
        /// Its name.
        name: String,
        /// Its labels.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// Change one ConfigMap's data (created if absent).
    Update {
        /// When.
        at: Dur,
        /// Its name.
        name: String,
    },
    /// Delete one ConfigMap (finalizers honoured).
    Delete {
        /// When.
        at: Dur,
        /// Its name.
        name: String,
    },
    /// Write `count` ConfigMaps `{prefix}-0..` at the same instant.
    Burst {
        /// When.
        at: Dur,
        /// How many writes.
        count: u32,
        /// Name prefix.
        #[serde(default = "default_prefix")]
        prefix: String,
        /// Labels of created objects.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// Every `every`, create, update or delete one of `objects` ConfigMaps at random.
    Churn {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Interval between writes.
        every: Dur,
        /// Size of the name pool `{prefix}-0..`.
        objects: u32,
        /// Name prefix.
        #[serde(default = "default_prefix")]
        prefix: String,
        /// Labels of created objects.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// Create an object of any kind from its manifest (nothing happens if it exists, as a
    /// create would be refused).
    CreateObject {
        /// When.
        at: Dur,
        /// The manifest (apiVersion, kind, metadata.name, ...).
        object: serde_json::Value,
    },
    /// Replace an object's content with this manifest's, keeping its metadata (finalizers,
    /// owners); created if absent.
    UpdateObject {
        /// When.
        at: Dur,
        /// The manifest.
        object: serde_json::Value,
    },
    /// Merge-patch (RFC 7386) one object of any kind.
    PatchObject {
        /// When.
        at: Dur,
        /// The object.
        target: ObjectRef,
        /// The merge patch.
        patch: serde_json::Value,
    },
    /// Delete one object of any kind (finalizers honoured).
    DeleteObject {
        /// When.
        at: Dur,
        /// The object.
        target: ObjectRef,
    },
    /// Delete every object of one kind that `owner` owns (its children, by hand).
    DeleteOwned {
        /// When.
        at: Dur,
        /// The owner.
        owner: ObjectRef,
        /// The children's apiVersion.
        api_version: String,
        /// The children's kind.
        kind: String,
    },
    /// Every `every`, create, patch or delete one of `objects` copies of `template` (named
    /// `{its name}-0..`) at random.
    ChurnObjects {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Interval between writes.
        every: Dur,
        /// Copies of the template.
        objects: u32,
        /// The manifest each copy is made from.
        template: serde_json::Value,
        /// Merge patches an update picks from (none: a changing annotation).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        patches: Vec<serde_json::Value>,
    },
}

fn default_prefix() -> String {
    "cm".into()
}

/// A single workload write on ConfigMap `default/name`.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create (or replace) with these labels.
    Create(String, BTreeMap<String, String>),
    /// Change the data (create if absent).
    Update(String),
    /// Delete.
    Delete(String),
    /// A write on an object of any kind.
    Object(ObjectWrite),
}

impl Workload {
    /// The variant's name as written in scenario files.
    pub fn tag(&self) -> &'static str {
        match self {
            Workload::Create { .. } => "create",
            Workload::Update { .. } => "update",
            Workload::Delete { .. } => "delete",
            Workload::Burst { .. } => "burst",
            Workload::Churn { .. } => "churn",
            Workload::CreateObject { .. } => "create_object",
            Workload::UpdateObject { .. } => "update_object",
            Workload::PatchObject { .. } => "patch_object",
            Workload::DeleteObject { .. } => "delete_object",
            Workload::DeleteOwned { .. } => "delete_owned",
            Workload::ChurnObjects { .. } => "churn_objects",
        }
    }

    /// When it starts.
    pub fn at(&self) -> Dur {
        match self {
            Workload::Create { at, .. }
            | Workload::Update { at, .. }
            | Workload::Delete { at, .. }
            | Workload::Burst { at, .. }
            | Workload::Churn { at, .. }
            | Workload::CreateObject { at, .. }
            | Workload::UpdateObject { at, .. }
            | Workload::PatchObject { at, .. }
            | Workload::DeleteObject { at, .. }
            | Workload::DeleteOwned { at, .. }
            | Workload::ChurnObjects { at, .. } => *at,
        }
    }

    /// When it starts, to edit.
    pub fn at_mut(&mut self) -> &mut Dur {
        match self {
            Workload::Create { at, .. }
            | Workload::Update { at, .. }
            | Workload::Delete { at, .. }
            | Workload::Burst { at, .. }
            | Workload::Churn { at, .. }
            | Workload::CreateObject { at, .. }
            | Workload::UpdateObject { at, .. }
            | Workload::PatchObject { at, .. }
            | Workload::DeleteObject { at, .. }
            | Workload::DeleteOwned { at, .. }
            | Workload::ChurnObjects { at, .. } => at,
        }
    }

    /// How long it goes on (`for`), to edit; `None` for single writes and bursts.
    pub fn length_mut(&mut self) -> Option<&mut Dur> {
        match self {
            Workload::Churn { for_, .. } | Workload::ChurnObjects { for_, .. } => Some(for_),
            Workload::Create { .. }
            | Workload::Update { .. }
            | Workload::Delete { .. }
            | Workload::Burst { .. }
            | Workload::CreateObject { .. }
            | Workload::UpdateObject { .. }
            | Workload::PatchObject { .. }
            | Workload::DeleteObject { .. }
            | Workload::DeleteOwned { .. } => None,
        }
    }

    /// Its labels, to edit (creates, bursts and churn label what they create).
    pub fn labels_mut(&mut self) -> Option<&mut BTreeMap<String, String>> {
        match self {
            Workload::Create { labels, .. }
            | Workload::Burst { labels, .. }
            | Workload::Churn { labels, .. } => Some(labels),
            Workload::Update { .. }
            | Workload::Delete { .. }
            | Workload::CreateObject { .. }
            | Workload::UpdateObject { .. }
            | Workload::PatchObject { .. }
            | Workload::DeleteObject { .. }
            | Workload::DeleteOwned { .. }
            | Workload::ChurnObjects { .. } => None,
        }
    }

    /// The single writes it makes, with their times; churn draws from `rng`.
    pub fn writes(&self, rng: &mut impl Rng) -> Vec<(Duration, Write)> {
        match self {
            Workload::Create { at, name, labels } => {
                vec![(at.0, Write::Create(name.clone(), labels.clone()))]
            }
            Workload::Update { at, name } => vec![(at.0, Write::Update(name.clone()))],
            Workload::Delete { at, name } => vec![(at.0, Write::Delete(name.clone()))],
            Workload::Burst {
                at,
                count,
                prefix,
                labels,
            } => (0..*count)
                .map(|i| (at.0, Write::Create(format!("{prefix}-{i}"), labels.clone())))
                .collect(),
            Workload::Churn {
                at,
                for_,
                every,
                objects,
                prefix,
                labels,
            } => churn(*at, *for_, *every, *objects, prefix, labels, rng),
            Workload::CreateObject { at, object } => {
                vec![(at.0, Write::Object(ObjectWrite::Create(object.clone())))]
            }
            Workload::UpdateObject { at, object } => {
                vec![(at.0, Write::Object(ObjectWrite::Update(object.clone())))]
            }
            Workload::PatchObject { at, target, patch } => vec![(
                at.0,
                Write::Object(ObjectWrite::Patch(target.clone(), patch.clone())),
            )],
            Workload::DeleteObject { at, target } => {
                vec![(at.0, Write::Object(ObjectWrite::Delete(target.clone())))]
            }
            Workload::DeleteOwned {
                at,
                owner,
                api_version,
                kind,
            } => {
                let w = ObjectWrite::DeleteOwned(owner.clone(), api_version.clone(), kind.clone());
                vec![(at.0, Write::Object(w))]
            }
            Workload::ChurnObjects {
                at,
                for_,
                every,
                objects,
                template,
                patches,
            } => churn_objects((*at, *for_, *every), *objects, template, patches, rng)
                .into_iter()
                .map(|(t, w)| (t, Write::Object(w)))
                .collect(),
        }
    }
}

/// Every `every` in `[at, at + for_)`: create a random name of the pool if absent, else
/// update it (70 %) or delete it.
fn churn(
    at: Dur,
    for_: Dur,
    every: Dur,
    objects: u32,
    prefix: &str,
    labels: &BTreeMap<String, String>,
    rng: &mut impl Rng,
) -> Vec<(Duration, Write)> {
    let mut live = BTreeSet::new();
    let mut out = Vec::new();
    let mut t = at.0;
    while t < at.0 + for_.0 {
        let name = format!("{prefix}-{}", rng.random_range(0..objects));
        let write = if !live.contains(&name) {
            live.insert(name.clone());
            Write::Create(name, labels.clone())
        } else if rng.random_bool(0.7) {
            Write::Update(name)
        } else {
            live.remove(&name);
            Write::Delete(name)
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

    #[test]
    fn churn_creates_before_it_updates_or_deletes_and_stays_in_its_window() {
        // Proves the churn generator's contract on one seed: a name's first write is a create,
        // a delete is followed by a create again, and every write lies in [at, at + for).
        let w = Workload::Churn {
            at: Dur::secs(2),
            for_: Dur::secs(10),
            every: Dur::millis(500),
            objects: 3,
            prefix: "c".into(),
            labels: BTreeMap::new(),
        };
        let writes = w.writes(&mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(writes.len(), 20);
        let mut live = BTreeSet::new();
        for (at, write) in &writes {
            assert!(*at >= Duration::from_secs(2) && *at < Duration::from_secs(12));
            match write {
                Write::Create(n, _) => assert!(live.insert(n.clone()), "{n} created twice"),
                Write::Update(n) => assert!(live.contains(n), "{n} updated while absent"),
                Write::Delete(n) => assert!(live.remove(n), "{n} deleted while absent"),
                Write::Object(w) => panic!("a ConfigMap churn wrote {w:?}"),
            }
        }
    }

    #[test]
    fn a_burst_writes_every_name_at_the_same_instant() {
        let w = Workload::Burst {
            at: Dur::secs(1),
            count: 3,
            prefix: "b".into(),
            labels: BTreeMap::new(),
        };
        let names: Vec<_> = w
            .writes(&mut ChaCha8Rng::seed_from_u64(0))
            .into_iter()
            .map(|(at, w)| (at.as_secs(), w))
            .collect();
        assert_eq!(
            names,
            (0..3)
                .map(|i| (1, Write::Create(format!("b-{i}"), BTreeMap::new())))
                .collect::<Vec<_>>()
        );
    }
}
