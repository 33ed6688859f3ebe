//! The fault interpreter: applies each fault of the timeline to the turmoil network, the
//! apiserver, or the controller controls when it starts, and heals it when it ends. One arm
//! per fault kind in [`Interpreter::begin`] and in [`Interpreter::end`], both exhaustive.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::apiserver::{ApiError, ApiServer, HookId, RequestInfo, Verdict};
use crate::net::{replica_host, Kill};
use crate::scenario::{Direction, Dur, Fault, ObjectRef, Requests};
use crate::subject::Controls;

use super::WriteLog;

/// turmoil's default per-message latency bound (restored after a latency fault).
const DEFAULT_MAX_LATENCY: Duration = Duration::from_millis(100);

/// The interpreter's state: hooks to remove when their fault ends, crashes waiting for a
/// write, restarts waiting for their time, objects an unobserved-state fault took away.
#[derive(Debug, Default)]
pub struct Interpreter {
    hooks: BTreeMap<usize, HookId>,
    /// (the write count that triggers it, downtime) of each armed `crash_after_write`.
    armed: Vec<(usize, Duration)>,
    /// When the crashed subject hosts come back.
    restart_at: Option<Duration>,
    /// What each `unobserved_state` fault deleted, to create again.
    taken: BTreeMap<usize, Arc<serde_json::Value>>,
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
    /// The subjects' write requests as the server counted them.
    pub subject_writes: &'a WriteLog,
    /// Replicas in the cluster.
    pub replicas: usize,
    /// The scenario seed (for rate-based faults).
    pub seed: u64,
}

impl World<'_, '_> {
    fn replicas_of(&self, replica: Option<usize>) -> Vec<usize> {
        replica.map_or_else(|| (0..self.replicas).collect(), |r| vec![r])
    }

    /// `f` on every targeted replica of the server.
    fn each_replica(&self, replica: Option<usize>, f: impl Fn(&ApiServer, usize)) {
        for r in self.replicas_of(replica) {
            f(self.server, r);
        }
    }

    /// `f` on every (subject host, replica host) link.
    fn each_link(
        &mut self,
        replica: Option<usize>,
        mut f: impl FnMut(&mut turmoil::Sim<'_>, &str, &str),
    ) {
        for r in self.replicas_of(replica) {
            for h in self.subject_hosts {
                f(self.sim, h, &replica_host(r));
            }
        }
    }
}

impl Interpreter {
    /// Acts on what is due between steps rather than at a time of the timeline (a crash
    /// after the subject's k-th write, a restart after it).
    /// Returns what it did, for the trace.
    pub fn poll(&mut self, w: &mut World<'_, '_>) -> Vec<String> {
        let mut done = Vec::new();
        let now = w.sim.elapsed();
        let writes = w.subject_writes.count();
        if let Some(k) = self.armed.iter().position(|(n, _)| writes >= *n) {
            let (n, downtime) = self.armed.remove(k);
            crash_subjects(w);
            self.restart_at = Some(now + downtime);
            done.push(format!(
                "crash_after_write: crashed after write {n} of the run"
            ));
        }
        if self.restart_at.is_some_and(|t| now >= t) {
            self.restart_at = None;
            for h in w.subject_hosts {
                w.sim.bounce(h.as_str());
            }
            done.push("subject restarted".into());
        }
        done
    }

    /// Starts fault `i`.
    pub fn begin(&mut self, w: &mut World<'_, '_>, i: usize, f: &Fault) {
        match f {
            Fault::Partition { replica, .. } => w.each_link(*replica, |s, a, b| s.partition(a, b)),
            Fault::PartitionOneway {
                replica, direction, ..
            } => w.each_link(*replica, |s, a, b| match direction {
                Direction::ToApiserver => s.partition_oneway(a, b),
                Direction::FromApiserver => s.partition_oneway(b, a),
            }),
            Fault::Hold { replica, .. } => w.each_link(*replica, |s, a, b| s.hold(a, b)),
            Fault::Latency {
                replica, latency, ..
            } => w.each_link(*replica, |s, a, b| s.set_link_latency(a, b, latency.0)),
            Fault::Loss { replica, rate, .. } => {
                w.each_link(*replica, |s, a, b| s.set_link_fail_rate(a, b, *rate))
            }
            Fault::ConnectionReset { replica, .. } => {
                w.each_replica(*replica, ApiServer::reset_connections)
            }
            Fault::CrashReplica { replica, .. } => {
                crate::sim::crash_replica(w.sim, w.server, *replica)
            }
            Fault::CacheLag { replica, lag, .. } => {
                w.each_replica(*replica, |s, r| s.set_cache_lag(r, lag.0))
            }
            Fault::CachePause { replica, .. } => w.each_replica(*replica, ApiServer::pause_cache),
            Fault::Compact { .. } => {
                w.server.compact_all();
            }
            Fault::ExpireWatches { replica, .. } => {
                w.each_replica(*replica, ApiServer::expire_watches)
            }
            Fault::DropWatches { replica, .. } => w.each_replica(*replica, ApiServer::drop_watches),
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
                let hook = delay_hook(delay.0, *requests);
                self.hooks.insert(i, w.server.add_hook(hook));
            }
            Fault::SlowReconcile { key, delay, .. } => {
                w.controls.slow_down(i, key.clone(), delay.0)
            }
            Fault::ReconcileErrors {
                key, class, times, ..
            } => w.controls.fail(key.clone(), *class, *times),
            Fault::CrashSubject { .. } => crash_subjects(w),
            Fault::CrashAfterWrite {
                writes,
                restart_after,
                ..
            } => {
                let trigger = w.subject_writes.count() + *writes as usize;
                self.armed.push((trigger, restart_after.0));
            }
            Fault::StaleRestart {
                replica,
                restart_after,
                ..
            } => {
                w.each_replica(*replica, ApiServer::pause_cache);
                crash_subjects(w);
                self.restart_at = Some(w.sim.elapsed() + restart_after.0);
            }
            Fault::UnobservedState { target, .. } => {
                (0..w.replicas).for_each(|r| w.server.pause_cache(r));
                if let Some(obj) = take(w.server, target) {
                    self.taken.insert(i, obj);
                }
            }
        }
    }

    /// Ends fault `i` (heals what `begin` broke; instant faults have nothing to heal).
    pub fn end(&mut self, w: &mut World<'_, '_>, i: usize, f: &Fault) {
        match f {
            Fault::Partition { replica, .. } => w.each_link(*replica, |s, a, b| s.repair(a, b)),
            Fault::PartitionOneway {
                replica, direction, ..
            } => w.each_link(*replica, |s, a, b| match direction {
                Direction::ToApiserver => s.repair_oneway(a, b),
                Direction::FromApiserver => s.repair_oneway(b, a),
            }),
            Fault::Hold { replica, .. } => w.each_link(*replica, |s, a, b| s.release(a, b)),
            Fault::Latency { replica, .. } => w.each_link(*replica, |s, a, b| {
                s.set_link_latency(a, b, Duration::ZERO);
                s.set_link_max_message_latency(a, b, DEFAULT_MAX_LATENCY);
            }),
            Fault::Loss { replica, .. } => w.each_link(*replica, |s, a, b| {
                s.set_link_fail_rate(a, b, 0.0);
                s.repair(a, b);
            }),
            Fault::CrashReplica { replica, .. } => w.sim.bounce(replica_host(*replica)),
            Fault::CacheLag { replica, .. } => {
                let lag = w.server.config().watch_cache_lag;
                w.each_replica(*replica, |s, r| s.set_cache_lag(r, lag))
            }
            Fault::CachePause { replica, .. } => w.each_replica(*replica, ApiServer::resume_cache),
            Fault::HttpErrors { .. } | Fault::SlowResponses { .. } => {
                if let Some(id) = self.hooks.remove(&i) {
                    w.server.remove_hook(id);
                }
            }
            Fault::SlowReconcile { .. } => w.controls.end_slow_down(i),
            Fault::CrashSubject { .. } => {
                for h in w.subject_hosts {
                    w.sim.bounce(h.as_str());
                }
            }
            Fault::StaleRestart { replica, .. } => {
                w.each_replica(*replica, ApiServer::resume_cache)
            }
            Fault::UnobservedState { .. } => {
                if let Some(obj) = self.taken.remove(&i) {
                    give_back(w.server, &obj);
                }
                w.server.compact_all();
                for r in 0..w.replicas {
                    w.server.resume_cache(r);
                    w.server.reset_cache(r);
                }
            }
            Fault::ConnectionReset { .. }
            | Fault::Compact { .. }
            | Fault::ExpireWatches { .. }
            | Fault::DropWatches { .. }
            | Fault::ReconcileErrors { .. }
            | Fault::CrashAfterWrite { .. } => {}
        }
    }
}

/// Deletes `target` and returns what it was. An object with finalizers is left alone: its
/// deletion cannot complete unobserved (whoever holds the finalizer must see it to let it
/// go), so deleting it would only be a plain deletion the fault never gives back — a
/// change of the workload's intent, which `differential` then reports against the run
/// without faults.
fn take(server: &ApiServer, target: &ObjectRef) -> Option<Arc<serde_json::Value>> {
    let ns = target.namespace.clone().unwrap_or_else(|| "default".into());
    let obj = server.get_object(&target.api_version, &target.kind, &ns, &target.name)?;
    let held = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if held {
        return None;
    }
    server
        .delete_object(&target.api_version, &target.kind, &ns, &target.name)
        .ok()?;
    Some(obj)
}

/// Creates `obj` again as a new object: same name and content, new uid, no server fields.
fn give_back(server: &ApiServer, obj: &serde_json::Value) {
    let mut new = obj.clone();
    if let Some(m) = new["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "finalizers",
        ] {
            m.remove(field);
        }
    }
    if let Some(o) = new.as_object_mut() {
        o.remove("status");
    }
    // A live object under the name (someone created it meanwhile): left as it is.
    let name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
    let ns = new["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (v, k) = (
        new["apiVersion"].as_str().unwrap_or("").to_string(),
        new["kind"].as_str().unwrap_or("").to_string(),
    );
    if server.get_object(&v, &k, &ns, &name).is_none() {
        let _ = server.put_object(new);
    }
}

/// The subjects' processes crash: their connections close first (in a fixed order), then
/// turmoil drops their tasks.
fn crash_subjects(w: &mut World<'_, '_>) {
    w.subject_kill.fire();
    let _ = w.sim.step();
    for h in w.subject_hosts {
        w.sim.crash(h.as_str());
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

fn delay_hook(delay: Duration, requests: Requests) -> impl Fn(&RequestInfo) -> Verdict {
    move |r: &RequestInfo| match matches(requests, r) {
        true => Verdict::Delay(delay),
        false => Verdict::Pass,
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
