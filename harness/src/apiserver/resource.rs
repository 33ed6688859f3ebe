//! The resource types a simulated cluster serves: built-ins and CRDs.

use serde::{Deserialize, Serialize};

use super::error::ClusterError;

/// One served resource: group / version / kind / plural / scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceType {
    /// API group; `""` is the core group (`/api/v1`).
    #[serde(default)]
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Plural resource name in URLs, e.g. `configmaps`.
    pub plural: String,
    /// Namespaced (`true`) or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl (`cm` for configmaps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_names: Vec<String>,
    /// Served with a `/status` subresource: the main endpoint ignores `.status` changes and
    /// `/status` writes only `.status`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub status_subresource: bool,
    /// Served with a `/scale` subresource: `(specReplicasPath, statusReplicasPath)`, as JSON
    /// paths like `.spec.replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_subresource: Option<(String, String)>,
    /// `metadata.generation` is maintained (CRDs and workload kinds; not ConfigMaps).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generation: bool,
    /// A CRD version's `additionalPrinterColumns`: (name, type, jsonPath).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub printer_columns: Vec<(String, String, String)>,
    /// The OpenAPI v3 schema of a CRD version (`openAPIV3Schema`), if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}

impl ResourceType {
    /// The type a CRD manifest (apiextensions.k8s.io/v1) declares, as the apiserver would
    /// serve it; the apiserver's 422 `Invalid` error when the CRD is malformed.
    pub fn from_crd(crd: &serde_json::Value) -> Result<Self, super::ApiError> {
        super::crd::resource_type(crd)
    }

    /// A resource type from its parts.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            short_names: Vec::new(),
            status_subresource: false,
            scale_subresource: None,
            generation: !group.is_empty(),
            printer_columns: Vec::new(),
            schema: None,
        }
    }

    /// The same type with a `/status` subresource.
    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// The same type with `metadata.generation` maintained.
    pub fn with_generation(mut self) -> Self {
        self.generation = true;
        self
    }

    /// The same type with kubectl short names.
    pub fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps` for core, `widgets.example.com` otherwise (kube-apiserver's naming in messages).
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The built-in resources every simulated cluster serves.
    pub fn builtins() -> Vec<ResourceType> {
        vec![
            Self::new("", "v1", "Namespace", "namespaces", false)
                .with_short_names(&["ns"])
                .with_status(),
            Self::new("", "v1", "Node", "nodes", false)
                .with_short_names(&["no"])
                .with_status(),
            Self::new("", "v1", "Pod", "pods", true)
                .with_short_names(&["po"])
                .with_status()
                .with_generation(),
            Self::new("", "v1", "ConfigMap", "configmaps", true).with_short_names(&["cm"]),
            Self::new("", "v1", "Secret", "secrets", true),
            Self::new("", "v1", "Service", "services", true)
                .with_short_names(&["svc"])
                .with_status(),
            Self::new("", "v1", "ServiceAccount", "serviceaccounts", true)
                .with_short_names(&["sa"]),
            Self::new("", "v1", "Event", "events", true).with_short_names(&["ev"]),
            Self::new(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            )
            .with_short_names(&["crd", "crds"])
            .with_status(),
        ]
    }
}

/// The resource types of one cluster, indexed by position (the store keys objects by index).
#[derive(Debug, Clone, Default)]
pub struct Resources {
    types: Vec<ResourceType>,
    /// Indexes of CRD types deleted through the API (kept so that indexes stay stable).
    retired: std::collections::BTreeSet<usize>,
}

impl Resources {
    /// Built-ins plus the given CRDs; a CRD that repeats a group/plural replaces nothing and is
    /// reported as an error.
    pub fn with_crds(crds: &[ResourceType]) -> Result<Self, ClusterError> {
        let mut types = ResourceType::builtins();
        for crd in crds {
            if types
                .iter()
                .any(|t| t.group == crd.group && t.plural == crd.plural)
            {
                return Err(ClusterError::Crd {
                    plural: crd.qualified_plural(),
                });
            }
            types.push(crd.clone());
        }
        Ok(Self {
            types,
            retired: Default::default(),
        })
    }

    /// Serves `t` (a CRD created or updated through the API): replaces the served type of the
    /// same group and plural, or adds it. Returns its index.
    pub fn serve(&mut self, t: ResourceType) -> usize {
        let same = |u: &ResourceType| u.group == t.group && u.plural == t.plural;
        let existing =
            (0..self.types.len()).find(|i| !self.retired.contains(i) && same(&self.types[*i]));
        match existing {
            Some(i) if self.types[i].version == t.version => {
                self.types[i] = t;
                i
            }
            other => {
                if let Some(i) = other {
                    self.retired.insert(i);
                }
                self.types.push(t);
                self.types.len() - 1
            }
        }
    }

    /// Stops serving the type at `id` (its CRD was deleted).
    pub fn retire(&mut self, id: usize) {
        self.retired.insert(id);
    }

    /// The resource at an index.
    pub fn get(&self, id: usize) -> &ResourceType {
        &self.types[id]
    }

    /// Finds a resource by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        (0..self.types.len()).find(|i| {
            let t = &self.types[*i];
            !self.retired.contains(i)
                && t.group == group
                && t.version == version
                && t.plural == plural
        })
    }

    /// Finds a resource by apiVersion and kind.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        (0..self.types.len()).find(|i| {
            let t = &self.types[*i];
            !self.retired.contains(i) && t.api_version() == api_version && t.kind == kind
        })
    }

    /// The indices of all served resource types.
    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.types.len()).filter(|i| !self.retired.contains(i))
    }

    /// Finds a served resource by group and kind, in any version (how the garbage collector
    /// resolves an ownerReference).
    pub fn find_group_kind(&self, group: &str, kind: &str) -> Option<usize> {
        (0..self.types.len()).find(|i| {
            let t = &self.types[*i];
            !self.retired.contains(i) && t.group == group && t.kind == kind
        })
    }

    /// All served resource types.
    pub fn all(&self) -> impl Iterator<Item = &ResourceType> + '_ {
        self.types
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.retired.contains(i))
            .map(|(_, t)| t)
    }

    /// The index of `customresourcedefinitions`.
    pub fn crds(&self) -> usize {
        self.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("CRDs are a built-in")
    }

    /// The index of `namespaces`.
    pub fn namespaces(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crd_repeating_a_builtin_plural_is_refused_by_name() {
        let dup = ResourceType::new("", "v2", "Pod", "pods", true);
        assert_eq!(
            Resources::with_crds(&[dup]).unwrap_err(),
            ClusterError::Crd {
                plural: "pods".into()
            }
        );
    }
}
