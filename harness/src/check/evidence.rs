//! What the checkers read: the scenario, the server's true history, what each subject
//! instance recorded, its final view and the server's final objects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::apiserver::{LabelSelector, StoreEvent};
use crate::scenario::{ObjectRef, Scenario, SubjectKind};
use crate::subject::TypeRef;
use crate::trace::{Entry, Held, Record};

/// What the checkers read.
pub struct Evidence<'a> {
    /// The scenario run.
    pub scenario: &'a Scenario,
    /// The subject's kind.
    pub kind: SubjectKind,
    /// The merged trace (subjects, runner, server writes), in time order.
    pub entries: &'a [Entry],
    /// Every ConfigMap write, oldest first.
    pub history: &'a [Arc<StoreEvent>],
    /// Each instance's final view (store contents).
    pub finals: &'a BTreeMap<usize, Held>,
    /// The live ConfigMaps at the end.
    pub objects: &'a [Arc<Value>],
    /// Measured watch requests per second, if asked for.
    pub watch_rate: Option<f64>,
    /// What the checkers of a user's controller read (none for the harness's subjects).
    pub cluster: Option<&'a ClusterEvidence>,
    /// Every watch request the apiserver saw (its access log), oldest first.
    pub watch_requests: &'a [WatchRequest],
    /// When the apiserver sent each in-stream 410 (simulated time since the start), oldest
    /// first.
    pub expired_sent: &'a [Duration],
}

/// What the checkers of a user's controller read besides the trace: the whole cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterEvidence {
    /// Every write of every kind, oldest first.
    pub history: Vec<Arc<StoreEvent>>,
    /// Every live object of every kind at the end.
    pub objects: Vec<Arc<Value>>,
    /// The end state of the same scenario without faults (`differential`), if it ran.
    pub baseline: Option<Arc<Vec<Arc<Value>>>>,
    /// What the workload deleted: the object, its uid then, and when.
    pub deleted: Vec<(ObjectRef, String, Duration)>,
    /// When each write request of the subject reached the server.
    pub subject_writes: Vec<Duration>,
    /// Child kinds of which an owner may have at most one live object.
    pub unique_children: Vec<TypeRef>,
    /// JSON pointers `differential` ignores, besides volatile metadata.
    pub volatile: Vec<String>,
    /// Whether the user gave a quiet-state condition.
    pub has_condition: bool,
}

/// A watch request as the apiserver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchRequest {
    /// Simulated time since the start.
    pub at: Duration,
    /// The replica that served it.
    pub replica: usize,
    /// The `timeoutSeconds` it asked for (0 when none).
    pub timeout_seconds: u64,
}

impl Evidence<'_> {
    /// Simulated time since the start for a server timestamp.
    pub(super) fn since_start(&self, at: Duration) -> Duration {
        crate::sim::since_start(at)
    }

    /// Whether the subject's selector selects `obj`.
    pub(super) fn selects(&self, obj: &Value) -> bool {
        self.scenario
            .subject
            .config
            .label_selector
            .as_deref()
            .is_none_or(|s| {
                LabelSelector::parse(s)
                    .expect("validated selector")
                    .matches_object(obj)
            })
    }

    /// The visible server state at the end: key -> (rv, uid).
    pub(super) fn server_state(&self) -> Held {
        self.objects
            .iter()
            .filter(|o| self.selects(o))
            .map(|o| {
                let m = &o["metadata"];
                let key = format!(
                    "{}/{}",
                    m["namespace"].as_str().unwrap_or(""),
                    m["name"].as_str().unwrap_or("")
                );
                let rv = m["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                (key, (rv, m["uid"].as_str().unwrap_or("").to_string()))
            })
            .collect()
    }

    /// Each instance's entries, split per incarnation.
    pub(super) fn incarnations(&self) -> BTreeMap<usize, Vec<Vec<&Entry>>> {
        let mut out: BTreeMap<usize, Vec<Vec<&Entry>>> = BTreeMap::new();
        for e in self.entries {
            let Some(i) = e.instance else { continue };
            let segments = out.entry(i).or_default();
            if matches!(e.record, Record::Start { .. }) || segments.is_empty() {
                segments.push(Vec::new());
            }
            segments.last_mut().expect("a segment").push(e);
        }
        out
    }

    /// Fault windows (start, end) in simulated time, instant faults as zero-length.
    pub(super) fn fault_windows(&self) -> Vec<(Duration, Duration)> {
        self.scenario
            .faults
            .iter()
            .map(|f| {
                let (at, end) = f.window();
                (at.0, end.map_or(at.0, |e| e.0))
            })
            .collect()
    }

    /// Longest a version may live unobserved outside fault windows.
    pub(super) fn staleness_bound(&self) -> Duration {
        self.scenario
            .expect
            .staleness_bound
            .map_or(Duration::from_secs(60), |d| d.0)
    }
}
