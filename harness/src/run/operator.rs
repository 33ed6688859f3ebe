//! What a run of a user's controller adds to the loop: the cluster's resources and
//! manifests installed first, every write the controller sends counted at the server, the
//! quiet-state condition sampled once the faults healed and the workload stopped, what the
//! workload deleted, and the end state of the same scenario without faults (`differential`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::RunError;
use crate::apiserver::{ApiServer, RequestInfo, StoreEvent, Verdict};
use crate::check::ClusterEvidence;
use crate::scenario::{ObjectRef, ObjectWrite, Scenario, Write};
use crate::subject::{ClusterView, Descriptor, UserSubject};
use crate::trace::{Record, Recorder};

/// How often the condition is sampled once the system should be quiet.
pub const CONDITION_EVERY: Duration = Duration::from_millis(500);

/// When each write request the subject sent reached the server (simulated time since the
/// start), shared by the counting hook, the fault interpreter and the checkers.
#[derive(Debug, Clone, Default)]
pub struct WriteLog(Arc<Mutex<Vec<Duration>>>);

impl WriteLog {
    /// Writes counted so far.
    pub fn count(&self) -> usize {
        self.0.lock().expect("write log").len()
    }

    /// Their times.
    pub fn times(&self) -> Vec<Duration> {
        self.0.lock().expect("write log").clone()
    }

    /// A hook counting every write request (it never changes a request). Installed first, it
    /// sees every attempt, also those a fault then refuses.
    pub fn hook(&self) -> impl Fn(&RequestInfo) -> Verdict {
        let log = self.0.clone();
        move |r: &RequestInfo| {
            if !matches!(r.method.as_str(), "GET" | "HEAD") {
                let at = crate::sim::since_start(r.at);
                log.lock().expect("write log").push(at);
            }
            Verdict::Pass
        }
    }
}

/// Installs the scenario's CRDs (as an API create would: they start serving) and then its
/// manifests, before the subject starts.
pub fn install(s: &Scenario, server: &ApiServer) -> Result<(), RunError> {
    for (index, crd) in s.resources.iter().enumerate() {
        server
            .create_object(crd.clone())
            .map_err(|e| RunError::Manifest {
                field: "resources",
                index,
                message: e.message,
            })?;
    }
    for (index, m) in s.manifests.iter().enumerate() {
        let mut m = m.clone();
        let namespaced = server
            .served(
                m["apiVersion"].as_str().unwrap_or(""),
                m["kind"].as_str().unwrap_or(""),
            )
            .is_none_or(|t| t.namespaced);
        if namespaced && m["metadata"]["namespace"].is_null() {
            m["metadata"]["namespace"] = "default".into();
        }
        server.put_object(m).map_err(|e| RunError::Manifest {
            field: "manifests",
            index,
            message: e.message,
        })?;
    }
    Ok(())
}

/// The state of a user-controller run between steps.
pub struct UserRun {
    user: &'static UserSubject,
    /// What the last sample said (`None`: not sampled yet).
    last: Option<Result<(), String>>,
    next_sample: Duration,
    /// What the workload deleted: the object, its uid then, and when.
    deleted: Vec<(ObjectRef, String, Duration)>,
    /// The cluster at the end of the run, before the shutdown trigger: history, objects.
    frozen: Option<Frozen>,
}

/// The cluster's history and live objects at one moment.
type Frozen = (Vec<Arc<StoreEvent>>, Vec<Arc<Value>>);

impl UserRun {
    /// The run of `subject`'s user controller, if it is one (see [`UserRun::new`]).
    pub fn of(subject: &Descriptor, quiet_from: Duration, sampled: bool) -> Option<Self> {
        subject.user().map(|u| Self::new(u, quiet_from, sampled))
    }

    /// A run of `user` whose condition is sampled from `quiet_from` on (never unless
    /// `sampled`: a `differential` baseline only needs its end state).
    pub fn new(user: &'static UserSubject, quiet_from: Duration, sampled: bool) -> Self {
        Self {
            user,
            last: None,
            next_sample: if sampled { quiet_from } else { Duration::MAX },
            deleted: Vec::new(),
            frozen: None,
        }
    }

    /// Keeps the cluster as it is at the end of the run (what the checkers judge), before
    /// the shutdown trigger fires.
    pub fn freeze(&mut self, server: &ApiServer) {
        self.frozen = Some((server.history(), server.all_objects()));
    }

    /// When the condition is next sampled (`None`: never).
    pub fn next_due(&self) -> Option<Duration> {
        self.user.condition.as_ref().map(|_| self.next_sample)
    }

    /// Samples the condition if one is due; records it in the trace when it changed.
    pub fn sample(&mut self, now: Duration, server: &ApiServer, recorder: &Recorder) {
        let Some(condition) = &self.user.condition else {
            return;
        };
        if now < self.next_sample {
            return;
        }
        self.next_sample = now + CONDITION_EVERY;
        let result = condition(&ClusterView::new(server));
        if self.last.as_ref() != Some(&result) {
            let record = match &result {
                Ok(()) => Record::Condition {
                    holds: true,
                    detail: String::new(),
                },
                Err(why) => Record::Condition {
                    holds: false,
                    detail: why.clone(),
                },
            };
            recorder.record(None, record);
            self.last = Some(result);
        }
    }

    /// Notes what a workload delete is about to delete (its uid now).
    pub fn before_write(&mut self, w: &Write, now: Duration, server: &ApiServer) {
        let target = match w {
            Write::Delete(name) => ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("default".into()),
                name: name.clone(),
            },
            Write::Object(ObjectWrite::Delete(r)) => r.clone(),
            _ => return,
        };
        let ns = super::writes::namespace_of(server, &target);
        if let Some(o) = server.get_object(&target.api_version, &target.kind, &ns, &target.name) {
            let uid = o["metadata"]["uid"].as_str().unwrap_or("").to_string();
            self.deleted.push((target, uid, now));
        }
    }

    /// What the checkers of a user's controller read.
    pub fn evidence(
        self,
        server: &ApiServer,
        writes: &WriteLog,
        baseline: Option<Arc<Vec<Arc<Value>>>>,
    ) -> ClusterEvidence {
        let (history, objects) = self
            .frozen
            .unwrap_or_else(|| (server.history(), server.all_objects()));
        ClusterEvidence {
            history,
            objects,
            baseline,
            deleted: self.deleted,
            subject_writes: writes.times(),
            unique_children: self.user.unique_children.clone(),
            volatile: self.user.volatile.clone(),
            has_condition: self.user.condition.is_some(),
        }
    }
}

/// The trace's write records for every kind (ConfigMaps by `namespace/name`, other kinds
/// prefixed by their kind), for a user's controller.
pub fn all_writes(history: &[Arc<StoreEvent>]) -> Vec<(Duration, Record)> {
    history
        .iter()
        .map(|e| {
            let kind = e.object["kind"].as_str().unwrap_or("");
            let key = match kind {
                "ConfigMap" => format!("{}/{}", e.key.ns, e.key.name),
                _ if e.key.ns.is_empty() => format!("{kind} {}", e.key.name),
                _ => format!("{kind} {}/{}", e.key.ns, e.key.name),
            };
            let record = Record::Write {
                kind: e.kind.as_str(),
                key,
                rv: e.rev,
            };
            (crate::sim::since_start(e.at), record)
        })
        .collect()
}

/// The scenario without its faults (the `differential` baseline), as a cache key too.
pub fn faultless(s: &Scenario) -> Scenario {
    Scenario {
        faults: Vec::new(),
        expect: Default::default(),
        ..s.clone()
    }
}

type Cache = Mutex<BTreeMap<String, Arc<Vec<Arc<Value>>>>>;

/// Baseline end states already computed in this process (shrinking changes mostly faults,
/// so most of its candidates share one baseline). Bounded: cleared when full.
static BASELINES: Cache = Mutex::new(BTreeMap::new());

const MAX_CACHED_BASELINES: usize = 64;

/// The end state of `faultless` (run by `run` on a miss).
pub fn baseline(
    faultless: &Scenario,
    run: impl FnOnce() -> Result<Vec<Arc<Value>>, RunError>,
) -> Result<Arc<Vec<Arc<Value>>>, RunError> {
    let key = faultless.to_json();
    if let Some(hit) = BASELINES.lock().expect("baselines").get(&key) {
        return Ok(hit.clone());
    }
    let state = Arc::new(run()?);
    let mut cache = BASELINES.lock().expect("baselines");
    if cache.len() >= MAX_CACHED_BASELINES {
        cache.clear();
    }
    cache.insert(key, state.clone());
    Ok(state)
}
