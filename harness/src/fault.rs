//! The fault interpreter: turns a scenario's faults and workload into one timeline of steps
//! and applies each to the turmoil network, the apiserver, or the controller controls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::apiserver::{ApiError, ApiServer, HookId, RequestInfo, Verdict};
use crate::net::{replica_host, Kill};
use crate::scenario::{Direction, Dur, ErrorClass, Fault, Requests, Scenario, Workload};

/// turmoil's default per-message latency bound (restored after a latency fault).
const DEFAULT_MAX_LATENCY: Duration = Duration::from_millis(100);

impl Fault {
    /// The variant's name as written in scenario files.
    pub fn tag(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::PartitionOneway { .. } => "partition_oneway",
            Fault::Hold { .. } => "hold",
            Fault::Latency { .. } => "latency",
            Fault::Loss { .. } => "loss",
            Fault::ConnectionReset { .. } => "connection_reset",
            Fault::CrashReplica { .. } => "crash_replica",
            Fault::CacheLag { .. } => "cache_lag",
            Fault::CachePause { .. } => "cache_pause",
            Fault::Compact { .. } => "compact",
            Fault::ExpireWatches { .. } => "expire_watches",
            Fault::DropWatches { .. } => "drop_watches",
            Fault::HttpErrors { .. } => "http_errors",
            Fault::SlowResponses { .. } => "slow_responses",
            Fault::SlowReconcile { .. } => "slow_reconcile",
            Fault::ReconcileErrors { .. } => "reconcile_errors",
            Fault::CrashSubject { .. } => "crash_subject",
        }
    }

    /// When it starts, and when it ends (`None` for instant faults).
    pub fn window(&self) -> (Dur, Option<Dur>) {
        let end = |at: &Dur, d: &Dur| Some(Dur(at.0 + d.0));
        match self {
            Fault::Partition { at, for_, .. }
            | Fault::PartitionOneway { at, for_, .. }
            | Fault::Hold { at, for_, .. }
            | Fault::Latency { at, for_, .. }
            | Fault::Loss { at, for_, .. }
            | Fault::CacheLag { at, for_, .. }
            | Fault::CachePause { at, for_, .. }
            | Fault::HttpErrors { at, for_, .. }
            | Fault::SlowResponses { at, for_, .. }
            | Fault::SlowReconcile { at, for_, .. } => (*at, end(at, for_)),
            Fault::CrashReplica {
                at, restart_after, ..
            }
            | Fault::CrashSubject { at, restart_after } => (*at, end(at, restart_after)),
            Fault::ConnectionReset { at, .. }
            | Fault::Compact { at }
            | Fault::ExpireWatches { at, .. }
            | Fault::DropWatches { at, .. }
            | Fault::ReconcileErrors { at, .. } => (*at, None),
        }
    }

    /// How long it lasts (`for`, or `restart_after` for crashes), to edit; `None` for
    /// instant faults.
    pub fn length_mut(&mut self) -> Option<&mut Dur> {
        match self {
            Fault::Partition { for_, .. }
            | Fault::PartitionOneway { for_, .. }
            | Fault::Hold { for_, .. }
            | Fault::Latency { for_, .. }
            | Fault::Loss { for_, .. }
            | Fault::CacheLag { for_, .. }
            | Fault::CachePause { for_, .. }
            | Fault::HttpErrors { for_, .. }
            | Fault::SlowResponses { for_, .. }
            | Fault::SlowReconcile { for_, .. } => Some(for_),
            Fault::CrashReplica { restart_after, .. }
            | Fault::CrashSubject { restart_after, .. } => Some(restart_after),
            Fault::ConnectionReset { .. }
            | Fault::Compact { .. }
            | Fault::ExpireWatches { .. }
            | Fault::DropWatches { .. }
            | Fault::ReconcileErrors { .. } => None,
        }
    }

    /// The replica it targets, if one.
    pub fn replica(&self) -> Option<usize> {
        match self {
            Fault::Partition { replica, .. }
            | Fault::PartitionOneway { replica, .. }
            | Fault::Hold { replica, .. }
            | Fault::Latency { replica, .. }
            | Fault::Loss { replica, .. }
            | Fault::ConnectionReset { replica, .. }
            | Fault::CacheLag { replica, .. }
            | Fault::CachePause { replica, .. }
            | Fault::ExpireWatches { replica, .. }
            | Fault::DropWatches { replica, .. } => *replica,
            Fault::CrashReplica { replica, .. } => Some(*replica),
            _ => None,
        }
    }

    /// A one-line description for traces.
    pub fn describe(&self) -> String {
        let mut s = serde_json::to_value(self).expect("a fault serialises")[self.tag()].clone();
        if let Some(m) = s.as_object_mut() {
            m.remove("at");
        }
        let fields = s.as_object().map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        format!("{} {}", self.tag(), fields.unwrap_or_default())
            .trim_end()
            .to_string()
    }
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
        }
    }

    /// When it starts.
    pub fn at(&self) -> Dur {
        match self {
            Workload::Create { at, .. }
            | Workload::Update { at, .. }
            | Workload::Delete { at, .. }
            | Workload::Burst { at, .. }
            | Workload::Churn { at, .. } => *at,
        }
    }
}

/// A reconcile fault the controller subjects consult (set by the runner).
#[derive(Debug, Default)]
struct ControlState {
    slow: Vec<(usize, Option<String>, Duration)>,
    errors: Vec<(Option<String>, ErrorClass, u32)>,
}

/// Controller faults in force, shared between the runner and the controller subjects.
#[derive(Debug, Clone, Default)]
pub struct Controls(Arc<Mutex<ControlState>>);

impl Controls {
    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.0.lock().expect("controls lock")
    }

    /// Extra time a reconcile of `key` takes now.
    pub fn reconcile_delay(&self, key: &str) -> Duration {
        self.lock()
            .slow
            .iter()
            .filter(|(_, k, _)| k.as_deref().is_none_or(|k| k == key))
            .map(|(_, _, d)| *d)
            .max()
            .unwrap_or_default()
    }

    /// Whether this reconcile of `key` must fail, and how (consumes one failure).
    pub fn take_error(&self, key: &str) -> Option<ErrorClass> {
        let mut st = self.lock();
        let slot = st
            .errors
            .iter_mut()
            .find(|(k, _, n)| *n > 0 && k.as_deref().is_none_or(|k| k == key))?;
        slot.2 -= 1;
        Some(slot.1)
    }
}

/// One thing the runner does at a simulated time.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Start fault `i`.
    Begin(usize),
    /// End fault `i`.
    End(usize),
    /// A workload write.
    Write(Write),
}

/// A workload write on ConfigMap `default/name`.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create (or replace) with these labels.
    Create(String, BTreeMap<String, String>),
    /// Change the data (create if absent).
    Update(String),
    /// Delete.
    Delete(String),
}

/// The scenario's faults and workload as steps, in time order (ties: faults ending, then
/// starting, then writes, each in file order).
pub fn timeline(s: &Scenario) -> Vec<(Duration, Step)> {
    let mut steps: Vec<(Duration, u8, usize, Step)> = Vec::new();
    for (i, f) in s.faults.iter().enumerate() {
        let (at, end) = f.window();
        steps.push((at.0, 1, i, Step::Begin(i)));
        if let Some(end) = end {
            steps.push((end.0, 0, i, Step::End(i)));
        }
    }
    let mut n = 0;
    for (i, w) in s.workload.iter().enumerate() {
        let mut rng =
            ChaCha8Rng::seed_from_u64(s.seed ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        for (at, write) in expand(w, &mut rng) {
            n += 1;
            steps.push((at, 2, n, Step::Write(write)));
        }
    }
    steps.sort_by_key(|(at, class, i, _)| (*at, *class, *i));
    steps.into_iter().map(|(at, _, _, s)| (at, s)).collect()
}

fn expand(w: &Workload, rng: &mut ChaCha8Rng) -> Vec<(Duration, Write)> {
    match w {
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
        } => {
            let mut live = std::collections::BTreeSet::new();
            let mut out = Vec::new();
            let mut t = at.0;
            while t < at.0 + for_.0 {
                let name = format!("{prefix}-{}", rng.random_range(0..*objects));
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
    }
}

/// Applies workload writes straight to the store (as other clients would).
pub fn apply_write(server: &ApiServer, w: &Write, serial: u64) {
    let result = match w {
        Write::Create(name, labels) => write(server, name, Some(labels), serial),
        Write::Update(name) => write(server, name, None, serial),
        Write::Delete(name) => server
            .delete_object("v1", "ConfigMap", "default", name)
            .map(drop),
    };
    match result {
        Ok(()) => {}
        Err(e) if e.code == 404 => {}
        Err(e) => panic!("workload write {w:?} refused by the store: {}", e.message),
    }
}

/// Writes ConfigMap `default/name` with fresh data (and `labels`, when given), keeping the
/// rest of its metadata if it exists (e.g. a finalizer holding it), as a client would;
/// creates it otherwise.
fn write(
    server: &ApiServer,
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
    serial: u64,
) -> Result<(), ApiError> {
    let mut obj = match server.get_object("v1", "ConfigMap", "default", name) {
        Some(o) => (*o).clone(),
        None => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
        }
    };
    if let Some(labels) = labels {
        obj["metadata"]["labels"] = json!(labels);
    }
    obj["data"] = json!({"v": serial.to_string()});
    server.put_object(obj).map(drop)
}

/// The interpreter's state: hooks to remove when their fault ends.
#[derive(Debug, Default)]
pub struct Interpreter {
    hooks: BTreeMap<usize, HookId>,
}

/// What the interpreter acts on.
pub struct World<'a, 'b> {
    /// The network.
    pub sim: &'a mut turmoil::Sim<'b>,
    /// The apiserver.
    pub server: &'a ApiServer,
    /// Controller fault controls.
    pub controls: &'a Controls,
    /// Subject host names.
    pub subject_hosts: &'a [String],
    /// Closes the subjects' connections before a crash.
    pub subject_kill: &'a Kill,
    /// Replicas in the cluster.
    pub replicas: usize,
    /// The scenario seed (for rate-based faults).
    pub seed: u64,
}

impl World<'_, '_> {
    fn replicas_of(&self, replica: Option<usize>) -> Vec<usize> {
        replica.map_or_else(|| (0..self.replicas).collect(), |r| vec![r])
    }

    fn links(&self, replica: Option<usize>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for r in self.replicas_of(replica) {
            for h in self.subject_hosts {
                out.push((h.clone(), replica_host(r)));
            }
        }
        out
    }
}

impl Interpreter {
    /// Starts fault `i`.
    pub fn begin(&mut self, w: &mut World<'_, '_>, i: usize, f: &Fault) {
        match f {
            Fault::Partition { replica, .. } => {
                each_link(w, *replica, |sim, a, b| sim.partition(a, b))
            }
            Fault::PartitionOneway {
                replica, direction, ..
            } => each_link(w, *replica, |sim, a, b| match direction {
                Direction::ToApiserver => sim.partition_oneway(a, b),
                Direction::FromApiserver => sim.partition_oneway(b, a),
            }),
            Fault::Hold { replica, .. } => each_link(w, *replica, |sim, a, b| sim.hold(a, b)),
            Fault::Latency {
                replica, latency, ..
            } => each_link(w, *replica, |sim, a, b| {
                sim.set_link_latency(a, b, latency.0)
            }),
            Fault::Loss { replica, rate, .. } => {
                each_link(w, *replica, |sim, a, b| sim.set_link_fail_rate(a, b, *rate))
            }
            Fault::CrashReplica { replica, .. } => {
                crate::sim::crash_replica(w.sim, w.server, *replica);
            }
            Fault::CrashSubject { .. } => {
                w.subject_kill.fire();
                let _ = w.sim.step();
                for h in w.subject_hosts {
                    w.sim.crash(h.as_str());
                }
            }
            _ => self.begin_server(w, i, f),
        }
    }

    fn begin_server(&mut self, w: &mut World<'_, '_>, i: usize, f: &Fault) {
        match f {
            Fault::ConnectionReset { replica, .. } => w
                .replicas_of(*replica)
                .into_iter()
                .for_each(|r| w.server.reset_connections(r)),
            Fault::CacheLag { replica, lag, .. } => w
                .replicas_of(*replica)
                .into_iter()
                .for_each(|r| w.server.set_cache_lag(r, lag.0)),
            Fault::CachePause { replica, .. } => w
                .replicas_of(*replica)
                .into_iter()
                .for_each(|r| w.server.pause_cache(r)),
            Fault::Compact { .. } => {
                w.server.compact_all();
            }
            Fault::ExpireWatches { replica, .. } => w
                .replicas_of(*replica)
                .into_iter()
                .for_each(|r| w.server.expire_watches(r)),
            Fault::DropWatches { replica, .. } => w
                .replicas_of(*replica)
                .into_iter()
                .for_each(|r| w.server.drop_watches(r)),
            Fault::HttpErrors {
                code,
                rate,
                retry_after,
                requests,
                ..
            } => {
                let hook = error_hook(w.seed ^ i as u64, *code, *rate, *retry_after, *requests);
                self.hooks.insert(i, w.server.add_hook(hook));
            }
            Fault::SlowResponses {
                delay, requests, ..
            } => {
                let (delay, requests) = (delay.0, *requests);
                let hook = move |r: &RequestInfo| {
                    if matches(requests, r) {
                        Verdict::Delay(delay)
                    } else {
                        Verdict::Pass
                    }
                };
                self.hooks.insert(i, w.server.add_hook(hook));
            }
            Fault::SlowReconcile { key, delay, .. } => {
                w.controls.lock().slow.push((i, key.clone(), delay.0))
            }
            Fault::ReconcileErrors {
                key, class, times, ..
            } => w.controls.lock().errors.push((key.clone(), *class, *times)),
            _ => unreachable!("network faults are handled by Interpreter::begin"),
        }
    }

    /// Ends fault `i` (heals what `begin` broke).
    pub fn end(&mut self, w: &mut World<'_, '_>, i: usize, f: &Fault) {
        match f {
            Fault::Partition { replica, .. } => {
                each_link(w, *replica, |sim, a, b| sim.repair(a, b))
            }
            Fault::PartitionOneway {
                replica, direction, ..
            } => each_link(w, *replica, |sim, a, b| match direction {
                Direction::ToApiserver => sim.repair_oneway(a, b),
                Direction::FromApiserver => sim.repair_oneway(b, a),
            }),
            Fault::Hold { replica, .. } => each_link(w, *replica, |sim, a, b| sim.release(a, b)),
            Fault::Latency { replica, .. } => each_link(w, *replica, |sim, a, b| {
                sim.set_link_latency(a, b, Duration::ZERO);
                sim.set_link_max_message_latency(a, b, DEFAULT_MAX_LATENCY);
            }),
            Fault::Loss { replica, .. } => each_link(w, *replica, |sim, a, b| {
                sim.set_link_fail_rate(a, b, 0.0);
                sim.repair(a, b);
            }),
            Fault::CrashReplica { replica, .. } => w.sim.bounce(replica_host(*replica)),
            Fault::CrashSubject { .. } => {
                for h in w.subject_hosts {
                    w.sim.bounce(h.as_str());
                }
            }
            Fault::CacheLag { replica, .. } => w
                .replicas_of(*replica)
                .into_iter()
                .for_each(|r| w.server.set_cache_lag(r, w.server.config().watch_cache_lag)),
            Fault::CachePause { replica, .. } => w
                .replicas_of(*replica)
                .into_iter()
                .for_each(|r| w.server.resume_cache(r)),
            Fault::HttpErrors { .. } | Fault::SlowResponses { .. } => {
                if let Some(id) = self.hooks.remove(&i) {
                    w.server.remove_hook(id);
                }
            }
            Fault::SlowReconcile { .. } => w.controls.lock().slow.retain(|(j, _, _)| *j != i),
            _ => {}
        }
    }
}

fn each_link(
    w: &mut World<'_, '_>,
    replica: Option<usize>,
    mut f: impl FnMut(&mut turmoil::Sim<'_>, &str, &str),
) {
    for (a, b) in w.links(replica) {
        f(w.sim, &a, &b);
    }
}

fn matches(requests: Requests, r: &RequestInfo) -> bool {
    let write = !matches!(r.method.as_str(), "GET" | "HEAD");
    match requests {
        Requests::All => true,
        Requests::Watch => r.is_watch,
        Requests::Read => !r.is_watch && !write,
        Requests::Write => write,
    }
}

fn error_hook(
    seed: u64,
    code: u16,
    rate: f64,
    retry_after: Option<Dur>,
    requests: Requests,
) -> impl Fn(&RequestInfo) -> Verdict {
    let rng = Mutex::new(ChaCha8Rng::seed_from_u64(seed));
    move |r: &RequestInfo| {
        if !matches(requests, r) || !rng.lock().expect("rng lock").random_bool(rate) {
            return Verdict::Pass;
        }
        let reason = match code {
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            _ => "Timeout",
        };
        let mut e = ApiError::other(code, reason, format!("injected {code} {reason}"));
        e.retry_after_seconds =
            retry_after.map(|d| u32::try_from(d.0.as_secs().max(1)).unwrap_or(u32::MAX));
        Verdict::Respond(e)
    }
}
