//! Scenario replay files (DESIGN.md §7): versioned JSON with human durations, parsed with
//! serde and checked so that every mistake names the JSON path of the offending field.
//!
//! The format, one file per part, in the order a scenario file reads:
//! - [`Scenario`] (here): name, seed, duration, settle, tick, and the parts below;
//! - [`cluster`]: replicas, watch cache, timeouts, compaction; initial objects;
//! - [`workload`]: the writes other clients make, and their expansion into single writes;
//! - [`objects`]: resources of any kind — CRDs, manifests, object writes and churn;
//! - [`subject`]: the system under test, its knobs, its [`SubjectKind`] and the
//!   [`Catalog`] of names a scenario may use;
//! - [`fault`]: every fault kind with its exhaustive accessors (a new fault kind starts here);
//! - [`expect`]: the [`Checker`]s expected to fail, bounds;
//! - [`validate`]: the checks serde cannot make, each naming its JSON path;
//! - [`dur`]: human durations.
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

mod cluster;
mod dur;
mod expect;
mod fault;
mod kinds;
mod objects;
mod subject;
mod validate;
mod workload;

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use cluster::{ClusterSpec, ObjectSpec};
pub use dur::Dur;
pub use expect::{Checker, Expect, RateBounds};
pub use fault::{Direction, ErrorClass, Fault, ReplicaMut, Requests};
pub use objects::{template_copy, ObjectRef, ObjectWrite};
pub use subject::{
    Catalog, ClientIdentity, ExternalSpec, FirstList, ReplicaChoice, SubjectConfig, SubjectKind,
    SubjectSpec, EXTERNAL,
};
pub use validate::Invalid;
pub use workload::{Workload, Write};

/// The format version this build reads and writes.
pub const SCENARIO_VERSION: u32 = 1;

/// Longest simulated run a scenario may ask for (duration + settle).
pub const MAX_SIMULATED: Duration = Duration::from_secs(6 * 3600);

/// Most subject instances (clients × hosts) a scenario may run.
pub const MAX_INSTANCES: usize = 5_000;

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
    /// The longest step taken while no message is in flight and no fault, write or sample
    /// is due (a multiple of `tick`; default: every step is `tick`). Timers still fire at
    /// their own instants within a step; a message sent during a long step waits for its
    /// end. Exploration uses it: quiet simulated time then costs a fraction of the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_tick: Option<Dur>,
    /// The simulated cluster.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// CRDs the cluster serves besides the built-in kinds (apiextensions.k8s.io/v1
    /// `CustomResourceDefinition` manifests, e.g. from `CustomResourceExt::crd()`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<serde_json::Value>,
    /// ConfigMaps present before the subject starts (short form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectSpec>,
    /// Objects of any kind present before the subject starts (full manifests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<serde_json::Value>,
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

impl Scenario {
    /// Reads and validates a scenario file; `subjects` are the names it may use.
    pub fn load(path: &Path, subjects: &dyn Catalog) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            path: ".".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file, subjects)
    }

    /// Parses and validates scenario JSON; `file` names it in errors, `subjects` are the
    /// names it may use.
    pub fn parse(text: &str, file: &str, subjects: &dyn Catalog) -> Result<Self, ScenarioError> {
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
            .validate(subjects)
            .map_err(|Invalid { path, message }| ScenarioError {
                file: file.into(),
                path,
                message,
            })?;
        Ok(scenario)
    }

    /// Checks everything serde could not: versions, ranges, names, times, references.
    pub fn validate(&self, subjects: &dyn Catalog) -> Result<(), Invalid> {
        validate::scenario(self, subjects)
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

    /// The subject's kind, if `subjects` knows it.
    pub fn subject_kind(&self, subjects: &dyn Catalog) -> Option<SubjectKind> {
        subjects.kind_of(&self.subject.name)
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

    /// A catalog with one subject, `informer`: the scenario layer tested without the
    /// harness's registry.
    struct OnlyInformer;

    impl Catalog for OnlyInformer {
        fn kind_of(&self, name: &str) -> Option<SubjectKind> {
            (name == "informer").then_some(SubjectKind::Informer)
        }
        fn names(&self) -> Vec<&str> {
            vec!["informer"]
        }
    }

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
        let err = Scenario::parse(&text, "f.json", &OnlyInformer).unwrap_err();
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
        let err = Scenario::parse(&minimal(r#", "setle": "1s""#), "f", &OnlyInformer).unwrap_err();
        assert_eq!(err.path, "setle");
        assert!(
            err.message.contains("unknown field `setle`"),
            "{}",
            err.message
        );
        let err = Scenario::parse(
            &minimal(r#", "faults": [{"meteor": {"at": "1s"}}]"#),
            "f",
            &OnlyInformer,
        )
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
        let s = Scenario::parse(&text, "f", &OnlyInformer).unwrap();
        assert_eq!(s.settle, Dur::secs(90));
        assert_eq!(s.tick, Dur::millis(250));
        assert_eq!(
            Scenario::parse(&s.to_json(), "f", &OnlyInformer).unwrap(),
            s
        );
    }

    #[test]
    fn a_subject_the_catalog_does_not_know_is_refused_with_the_known_names() {
        let text = r#"{"version": 1, "name": "t", "duration": "10s", "subject": {"name": "nope"}}"#;
        let err = Scenario::parse(text, "f", &OnlyInformer).unwrap_err();
        assert_eq!(err.path, "subject.name");
        assert_eq!(
            err.message,
            r#"unknown subject "nope"; known subjects: informer (a replay file of your own controller runs from its test: KUBE_CHAOS_REPLAY=FILE cargo test TEST)"#
        );
    }

    #[test]
    fn a_controller_fault_on_an_informer_names_the_fault() {
        let text = minimal(
            r#", "faults": [{"reconcile_errors": {"at": "1s", "times": 1, "class": "terminal"}}]"#,
        );
        let err = Scenario::parse(&text, "f", &OnlyInformer).unwrap_err();
        assert_eq!(err.path, "faults[0].reconcile_errors");
        assert!(
            err.message.contains("controller subjects only"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_external_subject_needs_no_catalog_and_refuses_what_a_real_client_cannot_take() {
        let external = |extra: &str| {
            format!(
                r#"{{"version": 1, "name": "t", "duration": "10s", "subject": {{"name": "external", "external": {{"identify_by": "connection"}}}}{extra}}}"#
            )
        };
        let s = Scenario::parse(&external(""), "f", &OnlyInformer).unwrap();
        assert_eq!(s.subject_kind(&OnlyInformer), None, "no catalog holds it");
        assert!(s.subject.is_external());
        let err = Scenario::parse(
            &external(r#", "faults": [{"loss": {"at": "1s", "for": "1s", "rate": 0.5}}]"#),
            "f",
            &OnlyInformer,
        )
        .unwrap_err();
        assert_eq!(err.path, "faults[0].loss");
        assert!(
            err.message.contains("not emulated at a real socket"),
            "{}",
            err.message
        );
        let err = Scenario::parse(
            &external(r#", "faults": [{"crash_subject": {"at": "1s", "restart_after": "1s"}}]"#),
            "f",
            &OnlyInformer,
        )
        .unwrap_err();
        assert_eq!(err.path, "faults[0].crash_subject");
        let on_informer = r#"{"version": 1, "name": "t", "duration": "10s", "subject": {"name": "informer", "external": {}}}"#;
        let err = Scenario::parse(on_informer, "f", &OnlyInformer).unwrap_err();
        assert_eq!(err.path, "subject.external");
    }
}
