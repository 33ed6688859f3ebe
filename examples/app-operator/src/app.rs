//! The `App` custom resource: what the user asks for (`spec`) and what the operator reports
//! (`status`, a subresource).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of [`App`].
pub const GROUP: &str = "example.kube-chaos.dev";

/// An application's configuration: its ConfigMap's data and its Secret's data.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "example.kube-chaos.dev",
    version = "v1",
    kind = "App",
    namespaced,
    status = "AppStatus",
    shortname = "app"
)]
pub struct AppSpec {
    /// Becomes the data of ConfigMap `app-<name>`.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Becomes the data of Secret `app-<name>`.
    #[serde(default)]
    pub secret: BTreeMap<String, String>,
}

/// What the operator last did for an [`App`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// The children match the spec of `observed_generation`.
    pub ready: bool,
    /// The `metadata.generation` the children were last made from.
    pub observed_generation: Option<i64>,
}
