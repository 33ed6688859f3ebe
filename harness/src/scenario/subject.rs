//! The subject a scenario runs (named from a [`Catalog`]), its knobs, and what kind of
//! system it is — which decides the checkers that judge it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Dur;

/// What a subject is, which decides the checkers that judge it and the faults that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SubjectKind {
    /// Delivers a single ordered watch stream (RetryWatcher-like).
    Watcher,
    /// Keeps a cache and calls handlers (informer-like).
    Informer,
    /// Reconciles keys (controller-like).
    Controller,
    /// A user's own controller: judged only by what the cluster shows (its condition, end
    /// state, deletions, children, writes), since its internals are not recorded.
    Operator,
    /// A real client in any language, connected to `kube-chaos serve --scenario`: judged
    /// from what the server saw (the subject named [`EXTERNAL`]).
    External,
}

/// The subject name of a scenario played by `kube-chaos serve --scenario` against whatever
/// clients connect; no catalog holds it.
pub const EXTERNAL: &str = "external";

/// The subjects a scenario may name: validation asks it whether a name exists and what kind
/// of subject it is. The harness's registry (`subject::registry()`) is one; a test may bring
/// its own.
pub trait Catalog {
    /// The kind of the subject called `name`, if there is one.
    fn kind_of(&self, name: &str) -> Option<SubjectKind>;
    /// Every name, in the order they should be listed in an error.
    fn names(&self) -> Vec<&str>;
}

/// The system under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectSpec {
    /// A name from `kube-chaos subjects`, or `external` for real clients of `kube-chaos serve
    /// --scenario`.
    pub name: String,
    /// Instances per host.
    #[serde(default = "one")]
    pub clients: usize,
    /// Subject hosts.
    #[serde(default = "one")]
    pub hosts: usize,
    /// Knobs (each subject reads those that apply to it).
    #[serde(default)]
    pub config: SubjectConfig,
    /// For the `external` subject: how its clients are told apart, and where one reports
    /// its cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpec>,
}

impl SubjectSpec {
    /// Whether the subject is the [`EXTERNAL`] one (real clients of `kube-chaos serve`).
    pub fn is_external(&self) -> bool {
        self.name == EXTERNAL
    }
}

/// How `kube-chaos serve --scenario` tells its clients apart and reads a client's cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalSpec {
    /// One client per `User-Agent` (the default: it survives reconnects) or per TCP
    /// connection.
    #[serde(default)]
    pub identify_by: ClientIdentity,
    /// A file the client writes with one `namespace/name resourceVersion` line per
    /// ConfigMap it holds; when given, `no_event_loss` compares it with the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_file: Option<String>,
}

/// What makes two requests come from the same external client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientIdentity {
    /// The `User-Agent` header.
    #[default]
    UserAgent,
    /// The TCP connection (every reconnect is a new client).
    Connection,
}

fn one() -> usize {
    1
}

/// Where an informer's first list reads from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FirstList {
    /// `resourceVersion="0"`: any replica's cache (client-go's default; can time-travel).
    #[default]
    Any,
    /// A consistent read.
    Consistent,
}

/// Subject knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SubjectConfig {
    /// Informers: minimum watch timeout (client-go: 5 min).
    pub min_watch_timeout: Dur,
    /// RetryWatcher: `timeoutSeconds` per watch.
    pub watch_timeout: Dur,
    /// Informers: where the first list reads from.
    pub first_list: FirstList,
    /// Label selector of the watch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Controllers: workers.
    pub workers: usize,
    /// Controllers: retries before a dead letter.
    pub max_retries: u32,
    /// How each instance picks a replica per connection.
    pub replica_policy: ReplicaChoice,
    /// Record individual events in the trace (off for load scenarios).
    pub trace_events: bool,
    /// Reuse idle connections (HTTP keep-alive). `false`: a connection serves one request,
    /// so every request picks its replica anew, as behind a load balancer that balances
    /// requests rather than connections.
    pub keep_alive: bool,
}

impl Default for SubjectConfig {
    fn default() -> Self {
        Self {
            min_watch_timeout: Dur::secs(300),
            watch_timeout: Dur::secs(300),
            first_list: FirstList::Any,
            label_selector: None,
            workers: 2,
            max_retries: 5,
            replica_policy: ReplicaChoice::RoundRobin,
            trace_events: true,
            keep_alive: true,
        }
    }
}

/// How a client picks a replica for each new connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaChoice {
    /// In turn, starting at the instance's index.
    #[default]
    RoundRobin,
    /// Seeded random choice.
    Random,
    /// Always the instance's replica (index modulo replicas).
    Pinned,
}
