//! The simulated cluster a scenario runs on, and the objects present before it starts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Dur;

/// Knobs of the simulated cluster (kube-apiserver's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    /// apiserver replicas.
    pub replicas: usize,
    /// Events kept per replica watch cache.
    pub watch_cache_capacity: usize,
    /// How far every replica's watch cache trails the store.
    pub watch_cache_lag: Dur,
    /// `--min-request-timeout`: watches without `timeoutSeconds` live 1–2× this.
    pub min_request_timeout: Dur,
    /// Bookmark cadence on idle watches.
    pub bookmark_interval: Dur,
    /// Periodic compaction (none when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction_interval: Option<Dur>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            replicas: 1,
            watch_cache_capacity: 1024,
            watch_cache_lag: Dur::default(),
            min_request_timeout: Dur::secs(1800),
            bookmark_interval: Dur::secs(60),
            compaction_interval: None,
        }
    }
}

/// A ConfigMap: `namespace/name` with labels and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// metadata.name.
    pub name: String,
    /// metadata.namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// metadata.labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

fn default_namespace() -> String {
    "default".into()
}
