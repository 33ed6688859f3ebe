//! Scenario replay files (DESIGN.md §7): versioned JSON with human durations, parsed with
//! serde and checked so that every mistake names the JSON path of the offending field.
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "stream-drop",
//!   "description": "The apiserver drops the watch stream; the watcher resumes.",
//!   "seed": 7,
//!   "duration": "2m",
//!   "subject": { "name": "retry-watcher" },
//!   "workload": [ { "churn": { "at": "1s", "for": "100s", "every": "2s", "objects": 5 } } ],
//!   "faults": [ { "drop_watches": { "at": "30s" } } ]
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format version this build reads and writes.
pub const SCENARIO_VERSION: u32 = 1;

/// Longest simulated run a scenario may ask for (duration + settle).
pub const MAX_SIMULATED: Duration = Duration::from_secs(6 * 3600);

/// Most subject instances (clients × hosts) a scenario may run.
pub const MAX_INSTANCES: usize = 5_000;

/// A duration written as a human string (`"250ms"`, `"30s"`, `"5m"`, `"1h 30m"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    /// Whole seconds.
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }

    /// Milliseconds.
    pub const fn millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration like "30s""#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                humantime::parse_duration(v)
                    .map(Dur)
                    .map_err(|_| E::custom(format!(r#"expected a duration like "30s", got {v:?}"#)))
            }
        }
        d.deserialize_str(V)
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit (ms, s, m, h), e.g. \"250ms\", \"30s\", \"5m\", \"1h 30m\".",
            "pattern": "^\\s*[0-9]+\\s*[a-zµ]+(\\s*[0-9]+\\s*[a-zµ]+)*\\s*$"
        })
    }
}

/// One scenario: a cluster, a subject, a workload, faults, and what the checkers should find.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Format version; must be 1.
    pub version: u32,
    /// Short name (used in reports and snapshot names).
    pub name: String,
    /// The story the scenario tells: what goes wrong and what must hold anyway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Seed of every random choice in the run.
    #[serde(default)]
    pub seed: u64,
    /// Simulated time during which workload and faults happen.
    pub duration: Dur,
    /// Simulated time after `duration` for the subject to catch up before the checks.
    #[serde(default = "default_settle")]
    pub settle: Dur,
    /// turmoil's step: smaller is finer-grained, larger is faster.
    #[serde(default = "default_tick")]
    pub tick: Dur,
    /// The simulated cluster.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// ConfigMaps present before the subject starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectSpec>,
    /// Writes made during the run (by "other clients", straight to the store).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workload: Vec<Workload>,
    /// The system under test.
    pub subject: SubjectSpec,
    /// Faults, each applied at its simulated time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// What the checkers should find.
    #[serde(default)]
    pub expect: Expect,
}

fn default_settle() -> Dur {
    Dur::secs(60)
}

fn default_tick() -> Dur {
    Dur::millis(10)
}

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

/// A write (or a generator of writes) on ConfigMaps in namespace `default`.
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
}

fn default_prefix() -> String {
    "cm".into()
}

/// Which requests an HTTP fault applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Requests {
    /// Every request.
    #[default]
    All,
    /// Watch requests.
    Watch,
    /// Non-watch reads (get, list).
    Read,
    /// Writes (create, update, patch, delete).
    Write,
}

/// Whose packets a one-way partition drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Subject -> apiserver packets are lost (requests vanish).
    ToApiserver,
    /// Apiserver -> subject packets are lost (responses and watch events vanish).
    FromApiserver,
}

/// How a reconcile error is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Requeued with backoff until `max_retries`, then dead-lettered.
    Retryable,
    /// Dead-lettered at once.
    Terminal,
}

/// One fault (DESIGN.md §5). `replica` absent means every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Silent partition between the subject hosts and the apiserver: packets are dropped.
    Partition {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Packets in one direction only are dropped.
    PartitionOneway {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Which direction is cut.
        direction: Direction,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Packets are held, then delivered in order at the end.
    Hold {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Every packet takes exactly `latency`.
    Latency {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Per-packet latency.
        latency: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// The link flaps: each step it breaks with probability `rate` (turmoil's fail rate).
    Loss {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Probability per step, in [0, 1].
        rate: f64,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// The apiserver closes every open connection.
    ConnectionReset {
        /// When.
        at: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// A replica crashes (its watch cache is lost) and restarts.
    CrashReplica {
        /// When.
        at: Dur,
        /// Which replica.
        replica: usize,
        /// Downtime.
        restart_after: Dur,
    },
    /// A replica's watch cache trails the store by `lag`.
    CacheLag {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// How far behind.
        lag: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// A replica's watch cache freezes (it serves old state: time travel).
    CachePause {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// The store compacts all history: older resourceVersions answer 410.
    Compact {
        /// When.
        at: Dur,
    },
    /// Every open watch gets an in-stream 410 Expired.
    ExpireWatches {
        /// When.
        at: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// Every open watch stream ends cleanly mid-way.
    DropWatches {
        /// When.
        at: Dur,
        /// Only this replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<usize>,
    },
    /// A fraction of requests fail with `code` (429, 500, 503 or 504).
    HttpErrors {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// HTTP status.
        code: u16,
        /// Fraction of matching requests that fail, in [0, 1].
        rate: f64,
        /// `Retry-After` (and `retryAfterSeconds`) sent with the error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<Dur>,
        /// Which requests.
        #[serde(default)]
        requests: Requests,
    },
    /// Matching requests are answered after `delay`.
    SlowResponses {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Added delay.
        delay: Dur,
        /// Which requests.
        #[serde(default)]
        requests: Requests,
    },
    /// Reconciles (of `key`, or all) take `delay` longer.
    SlowReconcile {
        /// Start.
        at: Dur,
        /// How long.
        #[serde(rename = "for")]
        for_: Dur,
        /// Added time per reconcile.
        delay: Dur,
        /// Only this key (`namespace/name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// The next `times` reconciles (of `key`, or any) fail with a `class` error.
    ReconcileErrors {
        /// From when.
        at: Dur,
        /// How many failures.
        times: u32,
        /// Retryable or terminal.
        class: ErrorClass,
        /// Only this key (`namespace/name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// The subject's process crashes (caches and queue lost) and restarts.
    CrashSubject {
        /// When.
        at: Dur,
        /// Downtime.
        restart_after: Dur,
    },
}

/// The system under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectSpec {
    /// A name from `kube-chaos subjects`.
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

/// What the checkers should find.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Checkers expected to report a violation (the scenario demonstrates a bug); every
    /// other checker must pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
    /// Longest a version may live unobserved outside fault windows (default 60s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staleness_bound: Option<Dur>,
    /// Bounds on the watch requests per second measured over `rate_window`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_rate: Option<RateBounds>,
}

/// Expected watch-request rate at the apiserver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBounds {
    /// Measure from this time to the end of `duration` (skips the start-up herd).
    pub from: Dur,
    /// Lowest acceptable watch requests per second.
    pub min: f64,
    /// Highest acceptable watch requests per second.
    pub max: f64,
}

/// A scenario file that could not be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct ScenarioError {
    /// The file (or `<input>`).
    pub file: String,
    /// JSON path of the offending field (`.` for the document).
    pub path: String,
    /// What was expected.
    pub message: String,
}

/// Every checker name a scenario may expect.
pub const CHECKERS: &[&str] = &[
    "watch_exact",
    "no_historical_replay",
    "no_event_loss",
    "queue_exclusive",
    "reconcile_coverage",
    "dead_letter_once",
    "retry_backoff",
    "convergence",
    "watch_rate",
];

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            path: ".".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates scenario JSON; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            // serde_path_to_error says "?" before it entered any field (syntax errors).
            let path = match e.path().to_string() {
                p if p == "?" => ".".to_string(),
                p => p,
            };
            ScenarioError {
                file: file.into(),
                path,
                message: e.into_inner().to_string(),
            }
        })?;
        scenario
            .validate()
            .map_err(|(path, message)| ScenarioError {
                file: file.into(),
                path,
                message,
            })?;
        Ok(scenario)
    }

    /// The scenario as pretty JSON (a replay file).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a scenario serialises");
        s.push('\n');
        s
    }

    /// End of the run: `duration + settle`.
    pub fn end(&self) -> Duration {
        self.duration.0 + self.settle.0
    }

    fn validate(&self) -> Result<(), (String, String)> {
        crate::validate::scenario(self)
    }
}

/// The JSON Schema of scenario files (checked in at `fixtures/scenario.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &str) -> String {
        format!(
            r#"{{"version": 1, "name": "t", "duration": "10s", "subject": {{"name": "informer"}}{extra}}}"#
        )
    }

    #[test]
    fn a_bad_duration_names_its_path_and_the_expected_form() {
        let text = minimal(
            r#", "faults": [{"compact": {"at": "1s"}}, {"partition": {"at": "2s", "for": "abc"}}]"#,
        );
        let err = Scenario::parse(&text, "f.json").unwrap_err();
        assert_eq!(err.path, "faults[1].partition.for");
        assert!(
            err.message
                .starts_with(r#"expected a duration like "30s", got "abc""#),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_fields_and_fault_kinds_are_refused_with_their_path() {
        let err = Scenario::parse(&minimal(r#", "setle": "1s""#), "f").unwrap_err();
        assert_eq!(err.path, "setle");
        assert!(
            err.message.contains("unknown field `setle`"),
            "{}",
            err.message
        );
        let err = Scenario::parse(&minimal(r#", "faults": [{"meteor": {"at": "1s"}}]"#), "f")
            .unwrap_err();
        assert_eq!(err.path, "faults[0]");
        assert!(
            err.message.contains("unknown variant `meteor`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn durations_round_trip_through_their_human_form() {
        let text = minimal(r#", "settle": "1m 30s", "tick": "250ms""#);
        let s = Scenario::parse(&text, "f").unwrap();
        assert_eq!(s.settle, Dur::secs(90));
        assert_eq!(s.tick, Dur::millis(250));
        assert_eq!(Scenario::parse(&s.to_json(), "f").unwrap(), s);
    }
}
