//! Hand-built evidence for the checkers' unit tests: a scenario, server writes and subject
//! records at whole simulated seconds, with the final server state derived from the writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{check, ClusterEvidence, Evidence, Violation, WatchRequest};
use crate::apiserver::{EventType, ObjKey, StoreEvent};
use crate::mirror::MIRROR_LABEL;
use crate::scenario::{Catalog, Checker, Scenario, SubjectKind};
use crate::sim::EPOCH_SECS;
use crate::trace::{Entry, Held, Record};

/// One subject of each kind, for parsing the case's scenario.
struct Kinds;

impl Catalog for Kinds {
    fn kind_of(&self, name: &str) -> Option<SubjectKind> {
        match name {
            "watcher" => Some(SubjectKind::Watcher),
            "informer" => Some(SubjectKind::Informer),
            "controller" => Some(SubjectKind::Controller),
            "operator" => Some(SubjectKind::Operator),
            _ => None,
        }
    }
    fn names(&self) -> Vec<&str> {
        vec!["watcher", "informer", "controller", "operator"]
    }
}

/// A run told by hand: 60 s of workload, 60 s of settle.
pub(super) struct Case {
    scenario: Scenario,
    kind: SubjectKind,
    entries: Vec<Entry>,
    history: Vec<Arc<StoreEvent>>,
    live: BTreeMap<String, Arc<Value>>,
    objects: Vec<Arc<Value>>,
    /// Each instance's final view.
    pub finals: BTreeMap<usize, Held>,
    /// The measured watch rate.
    pub watch_rate: Option<f64>,
    /// A user controller's cluster evidence.
    pub cluster: Option<ClusterEvidence>,
    /// The watch requests the server saw.
    pub watch_requests: Vec<WatchRequest>,
    /// When the server sent in-stream 410s.
    pub expired_sent: Vec<Duration>,
}

/// A reconcile of `key` starts.
pub(super) fn start(key: &str) -> Record {
    Record::ReconcileStart { key: key.into() }
}

/// A reconcile of `key` ends with `outcome`.
pub(super) fn end(key: &str, outcome: crate::trace::Outcome) -> Record {
    Record::ReconcileEnd {
        key: key.into(),
        outcome,
    }
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Case {
    /// A case for a subject of `kind`; `extra` is more scenario JSON (`, "expect": ...`).
    pub(super) fn new(kind: SubjectKind, extra: &str) -> Self {
        Self::with_config(kind, "{}", extra)
    }

    /// A case whose subject has knobs `config` (a JSON object).
    pub(super) fn with_config(kind: SubjectKind, config: &str, extra: &str) -> Self {
        let name = match kind {
            SubjectKind::Watcher => "watcher",
            SubjectKind::Informer => "informer",
            SubjectKind::Controller => "controller",
            SubjectKind::Operator => "operator",
            SubjectKind::External => crate::scenario::EXTERNAL,
        };
        let text = format!(
            r#"{{"version": 1, "name": "t", "duration": "60s", "settle": "60s", "subject": {{"name": "{name}", "config": {config}}}{extra}}}"#
        );
        Self {
            scenario: Scenario::parse(&text, "case", &Kinds).expect("a valid case"),
            kind,
            entries: Vec::new(),
            history: Vec::new(),
            live: BTreeMap::new(),
            objects: Vec::new(),
            finals: BTreeMap::new(),
            watch_rate: None,
            cluster: None,
            watch_requests: Vec::new(),
            expired_sent: Vec::new(),
        }
    }

    /// The server writes `default/name` at `t`; returns its revision (1, 2, ...).
    pub(super) fn write(&mut self, t: u64, kind: EventType, name: &str, source: bool) -> u64 {
        self.write_uid(t, kind, name, source, &format!("uid-{name}"))
    }

    /// [`Self::write`] of an object with uid `uid` (one made again under the same name).
    pub(super) fn write_uid(
        &mut self,
        t: u64,
        kind: EventType,
        name: &str,
        source: bool,
        uid: &str,
    ) -> u64 {
        let rev = self.history.len() as u64 + 1;
        let key = format!("default/{name}");
        let labels = match source {
            true => json!({MIRROR_LABEL: "true"}),
            false => json!({}),
        };
        let object = Arc::new(json!({"metadata": {
            "name": name, "namespace": "default", "uid": uid,
            "resourceVersion": rev.to_string(), "labels": labels,
        }}));
        let prev = match kind {
            EventType::Deleted => self.live.remove(&key),
            _ => self.live.insert(key, object.clone()),
        };
        self.history.push(Arc::new(StoreEvent {
            rev,
            at: Duration::from_secs(EPOCH_SECS + t),
            key: ObjKey {
                res: 0,
                ns: "default".into(),
                name: name.into(),
            },
            kind,
            object,
            prev,
        }));
        rev
    }

    /// Instance `instance` (or the runner, `None`) recorded `record` at `t`.
    pub(super) fn record(&mut self, t: u64, instance: Option<usize>, record: Record) {
        self.entries.push(Entry {
            at: secs(t),
            seq: self.entries.len() as u64,
            instance,
            record,
        });
    }

    /// The server's objects at the end, as `Held`.
    pub(super) fn server_view(&self) -> Held {
        self.live
            .iter()
            .map(|(k, o)| {
                let rv = o["metadata"]["resourceVersion"].as_str().unwrap_or("0");
                (
                    k.clone(),
                    (rv.parse().unwrap_or(0), format!("uid-{}", &k[8..])),
                )
            })
            .collect()
    }

    fn evidence(&mut self) -> Evidence<'_> {
        self.objects = self.live.values().cloned().collect();
        self.entries.sort_by_key(|e| (e.at, e.seq));
        Evidence {
            scenario: &self.scenario,
            kind: self.kind,
            entries: &self.entries,
            history: &self.history,
            finals: &self.finals,
            objects: &self.objects,
            watch_rate: self.watch_rate,
            cluster: self.cluster.as_ref(),
            watch_requests: &self.watch_requests,
            expired_sent: &self.expired_sent,
        }
    }

    /// What `checker` finds.
    pub(super) fn violations(&mut self, checker: Checker) -> Vec<Violation> {
        check(checker, &self.evidence())
    }

    /// The messages of what `checker` finds.
    pub(super) fn messages(&mut self, checker: Checker) -> Vec<String> {
        self.violations(checker)
            .into_iter()
            .map(|v| v.message)
            .collect()
    }
}
