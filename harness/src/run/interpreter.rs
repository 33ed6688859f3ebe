//! The fault interpreter: applies each fault of the timeline when it starts and heals it when
//! it ends. One arm per fault kind in [`Interpreter::begin`] and in [`Interpreter::end`], both
//! exhaustive. What a fault does to the server (compaction, watch faults, cache lag and
//! pause, HTTP hooks) is the same everywhere; what it does to the links and processes around
//! the server is the [`Target`]'s: turmoil's network in a simulated run ([`World`]), the real
//! sockets of `kube-chaos serve` when a scenario is played on the wall clock.

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

/// The interpreter's state: hooks to remove when their fault ends.
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

/// A network fault on the links between the subject and the apiserver replicas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// Nothing gets through either way, silently.
    Partition,
    /// Nothing gets through in one direction.
    Oneway(Direction),
    /// Everything is held, then delivered in order when healed.
    Hold,
    /// Every message takes this long.
    Latency(Duration),
    /// The link breaks with this probability per step.
    Loss(f64),
}

/// What the interpreter acts on besides the server: the links and processes around it.
pub trait Target {
    /// The apiserver.
    fn server(&self) -> &ApiServer;
    /// Replicas in the cluster.
    fn replicas(&self) -> usize;
    /// The scenario seed (for rate-based faults).
    fn seed(&self) -> u64;
    /// Controller fault controls.
    fn controls(&self) -> &Controls;
    /// Starts a network fault on the links to `replica` (every replica when `None`).
    fn cut(&mut self, replica: Option<usize>, link: Link);
    /// Heals a network fault [`Self::cut`] started.
    fn heal(&mut self, replica: Option<usize>, link: Link);
    /// Closes every open connection to `replica`.
    fn reset_connections(&mut self, replica: usize);
    /// Replica `replica` crashes: its connections close, it stops serving.
    fn crash_replica(&mut self, replica: usize);
    /// Replica `replica` comes back with a fresh watch cache.
    fn restart_replica(&mut self, replica: usize);
    /// The subjects' processes crash.
    fn crash_subjects(&mut self);
    /// The subjects' processes start again.
    fn restart_subjects(&mut self);
    /// Time since the start.
    fn now(&self) -> Duration;
    /// The subjects' write requests the server counted so far.
    fn subject_writes(&self) -> usize;
}

/// What the interpreter acts on in a simulated run.
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
    /// The subjects' write requests as the server counted them.
    pub subject_writes: &'a WriteLog,
}

impl World<'_, '_> {
    fn replicas_of(&self, replica: Option<usize>) -> Vec<usize> {
        replicas_of(self.replicas, replica)
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

/// The replicas a fault targets: `replica`, or all `n`.
pub fn replicas_of(n: usize, replica: Option<usize>) -> Vec<usize> {
    replica.map_or_else(|| (0..n).collect(), |r| vec![r])
}

impl Target for World<'_, '_> {
    fn server(&self) -> &ApiServer {
        self.server
    }
    fn replicas(&self) -> usize {
        self.replicas
    }
    fn seed(&self) -> u64 {
        self.seed
    }
    fn controls(&self) -> &Controls {
        self.controls
    }
    fn cut(&mut self, replica: Option<usize>, link: Link) {
        self.each_link(replica, |s, a, b| match link {
            Link::Partition => s.partition(a, b),
            Link::Oneway(Direction::ToApiserver) => s.partition_oneway(a, b),
            Link::Oneway(Direction::FromApiserver) => s.partition_oneway(b, a),
            Link::Hold => s.hold(a, b),
            Link::Latency(d) => s.set_link_latency(a, b, d),
            Link::Loss(rate) => s.set_link_fail_rate(a, b, rate),
        })
    }
    fn heal(&mut self, replica: Option<usize>, link: Link) {
        self.each_link(replica, |s, a, b| match link {
            Link::Partition => s.repair(a, b),
            Link::Oneway(Direction::ToApiserver) => s.repair_oneway(a, b),
            Link::Oneway(Direction::FromApiserver) => s.repair_oneway(b, a),
            Link::Hold => s.release(a, b),
            Link::Latency(_) => {
                s.set_link_latency(a, b, Duration::ZERO);
                s.set_link_max_message_latency(a, b, DEFAULT_MAX_LATENCY);
            }
            Link::Loss(_) => {
                s.set_link_fail_rate(a, b, 0.0);
                s.repair(a, b);
            }
        })
    }
    fn reset_connections(&mut self, replica: usize) {
        self.server.reset_connections(replica);
    }
    fn crash_replica(&mut self, replica: usize) {
        crate::sim::crash_replica(self.sim, self.server, replica)
    }
    fn restart_replica(&mut self, replica: usize) {
        self.sim.bounce(replica_host(replica))
    }
    fn crash_subjects(&mut self) {
        crash_subjects(self)
    }
    fn restart_subjects(&mut self) {
        for h in self.subject_hosts {
            self.sim.bounce(h.as_str());
        }
    }
    fn now(&self) -> Duration {
        self.sim.elapsed()
    }
    fn subject_writes(&self) -> usize {
        self.subject_writes.count()
    }
}

/// The network fault a fault is, if it is one.
fn link_of(f: &Fault) -> Option<(Option<usize>, Link)> {
    match f {
        Fault::Partition { replica, .. } => Some((*replica, Link::Partition)),
        Fault::PartitionOneway {
            replica, direction, ..
        } => Some((*replica, Link::Oneway(*direction))),
        Fault::Hold { replica, .. } => Some((*replica, Link::Hold)),
        Fault::Latency {
            replica, latency, ..
        } => Some((*replica, Link::Latency(latency.0))),
        Fault::Loss { replica, rate, .. } => Some((*replica, Link::Loss(*rate))),
        _ => None,
    }
}

/// `f` on every targeted replica of the server.
fn each_replica(w: &impl Target, replica: Option<usize>, f: impl Fn(&ApiServer, usize)) {
    for r in replicas_of(w.replicas(), replica) {
        f(w.server(), r);
    }
}

impl Interpreter {
    /// Acts on what is due between steps rather than at a time of the timeline (a crash
    /// after the subject's k-th write, a restart after it). Returns what it did, for the
    /// trace.
    pub fn poll(&mut self, w: &mut impl Target) -> Vec<String> {
        let mut done = Vec::new();
        let now = w.now();
        let writes = w.subject_writes();
        if let Some(k) = self.armed.iter().position(|(n, _)| writes >= *n) {
            let (n, downtime) = self.armed.remove(k);
            w.crash_subjects();
            self.restart_at = Some(now + downtime);
            done.push(format!(
                "crash_after_write: crashed after write {n} of the run"
            ));
        }
        if self.restart_at.is_some_and(|t| now >= t) {
            self.restart_at = None;
            w.restart_subjects();
            done.push("subject restarted".into());
        }
        done
    }

    /// When `poll` next acts on its own (a crashed subject's restart); a crash after the
    /// k-th write waits on a write, which a message brings.
    pub fn next_due(&self) -> Option<Duration> {
        self.restart_at
    }

    /// Starts fault `i`.
    pub fn begin(&mut self, w: &mut impl Target, i: usize, f: &Fault) {
        match f {
            Fault::Partition { .. }
            | Fault::PartitionOneway { .. }
            | Fault::Hold { .. }
            | Fault::Latency { .. }
            | Fault::Loss { .. } => {
                let (replica, link) = link_of(f).expect("a network fault");
                w.cut(replica, link)
            }
            Fault::ConnectionReset { replica, .. } => {
                for r in replicas_of(w.replicas(), *replica) {
                    w.reset_connections(r);
                }
            }
            Fault::CrashReplica { replica, .. } => w.crash_replica(*replica),
            Fault::CacheLag { replica, lag, .. } => {
                each_replica(w, *replica, |s, r| s.set_cache_lag(r, lag.0))
            }
            Fault::CachePause { replica, .. } => each_replica(w, *replica, ApiServer::pause_cache),
            Fault::Compact { .. } => {
                w.server().compact_all();
            }
            Fault::ExpireWatches { replica, .. } => {
                each_replica(w, *replica, ApiServer::expire_watches)
            }
            Fault::DropWatches { replica, .. } => {
                each_replica(w, *replica, ApiServer::drop_watches)
            }
            Fault::HttpErrors { .. } | Fault::SlowResponses { .. } => {
                let hook = request_hook(w.seed() ^ i as u64, f).expect("an HTTP fault");
                self.hooks.insert(i, w.server().add_hook(hook));
            }
            Fault::SlowReconcile { key, delay, .. } => {
                w.controls().slow_down(i, key.clone(), delay.0)
            }
            Fault::ReconcileErrors {
                key, class, times, ..
            } => w.controls().fail(key.clone(), *class, *times),
            Fault::CrashSubject { .. } => w.crash_subjects(),
            Fault::CrashAfterWrite {
                writes,
                restart_after,
                ..
            } => self.arm_crash(w, *writes, restart_after.0),
            Fault::StaleRestart {
                replica,
                restart_after,
                ..
            } => self.stale_restart(w, *replica, restart_after.0),
            Fault::UnobservedState { target, .. } => self.hold_and_take(w, i, target),
            Fault::WatchErrors {
                replica,
                code,
                retry_after,
                ..
            } => error_watches(w, *replica, *code, *retry_after),
            Fault::SlowHandler { delay, .. } => w.controls().slow_handler(i, delay.0),
            Fault::FlakyReconciles { key, rate, .. } => {
                let seed = w.seed() ^ i as u64;
                w.controls().flaky(i, key.clone(), *rate, seed)
            }
        }
    }

    /// `crash_after_write`: the subject crashes once `writes` more write requests arrived.
    fn arm_crash(&mut self, w: &impl Target, writes: u32, downtime: Duration) {
        let trigger = w.subject_writes() + writes as usize;
        self.armed.push((trigger, downtime));
    }

    /// `stale_restart`: the cache freezes and the subject restarts `downtime` later.
    fn stale_restart(&mut self, w: &mut impl Target, replica: Option<usize>, downtime: Duration) {
        each_replica(w, replica, ApiServer::pause_cache);
        w.crash_subjects();
        self.restart_at = Some(w.now() + downtime);
    }

    /// `unobserved_state`: every cache is held and `target` taken away (to give back).
    fn hold_and_take(&mut self, w: &impl Target, i: usize, target: &ObjectRef) {
        each_replica(w, None, ApiServer::pause_cache);
        if let Some(obj) = take(w.server(), target) {
            self.taken.insert(i, obj);
        }
    }

    /// Ends fault `i` (heals what `begin` broke; instant faults have nothing to heal).
    pub fn end(&mut self, w: &mut impl Target, i: usize, f: &Fault) {
        match f {
            Fault::Partition { .. }
            | Fault::PartitionOneway { .. }
            | Fault::Hold { .. }
            | Fault::Latency { .. }
            | Fault::Loss { .. } => {
                let (replica, link) = link_of(f).expect("a network fault");
                w.heal(replica, link)
            }
            Fault::CrashReplica { replica, .. } => w.restart_replica(*replica),
            Fault::CacheLag { replica, .. } => {
                let lag = w.server().config().watch_cache_lag;
                each_replica(w, *replica, |s, r| s.set_cache_lag(r, lag))
            }
            Fault::CachePause { replica, .. } => each_replica(w, *replica, ApiServer::resume_cache),
            Fault::HttpErrors { .. } | Fault::SlowResponses { .. } => {
                if let Some(id) = self.hooks.remove(&i) {
                    w.server().remove_hook(id);
                }
            }
            Fault::SlowReconcile { .. } => w.controls().end_slow_down(i),
            Fault::CrashSubject { .. } => w.restart_subjects(),
            Fault::StaleRestart { replica, .. } => {
                each_replica(w, *replica, ApiServer::resume_cache)
            }
            Fault::UnobservedState { .. } => {
                if let Some(obj) = self.taken.remove(&i) {
                    give_back(w.server(), &obj);
                }
                w.server().compact_all();
                for r in 0..w.replicas() {
                    w.server().resume_cache(r);
                    w.server().reset_cache(r);
                }
            }
            Fault::SlowHandler { .. } => w.controls().end_slow_handler(i),
            Fault::FlakyReconciles { .. } => w.controls().end_flaky(i),
            Fault::ConnectionReset { .. }
            | Fault::Compact { .. }
            | Fault::ExpireWatches { .. }
            | Fault::DropWatches { .. }
            | Fault::ReconcileErrors { .. }
            | Fault::CrashAfterWrite { .. }
            | Fault::WatchErrors { .. } => {}
        }
    }
}

/// Every open watch on the targeted replicas gets an in-stream `ERROR` with `code`.
fn error_watches(w: &impl Target, replica: Option<usize>, code: u16, retry: Option<Dur>) {
    let retry = retry.map(retry_after_seconds);
    each_replica(w, replica, |s, r| s.error_watches(r, code, retry));
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

/// Deletes `target` and returns what it was. An object with finalizers is left alone: its
/// deletion cannot complete unobserved (whoever holds the finalizer must see it to let it
/// go), so deleting it would only be a plain deletion the fault never gives back — a
/// change of the workload's intent, which `differential` then reports against the run
/// without faults.
fn take(server: &ApiServer, target: &ObjectRef) -> Option<Arc<serde_json::Value>> {
    let ns = super::writes::namespace_of(server, target);
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

/// A request hook as a closure.
type HookFn = dyn Fn(&RequestInfo) -> Verdict + Send + Sync;

/// The request hook an HTTP fault installs, if `f` is one (`seed` for rate-based faults).
fn request_hook(seed: u64, f: &Fault) -> Option<Box<HookFn>> {
    match f {
        Fault::HttpErrors {
            code,
            rate,
            retry_after,
            requests,
            ..
        } => Some(Box::new(error_hook(
            seed,
            *code,
            *rate,
            *retry_after,
            *requests,
        ))),
        Fault::SlowResponses {
            delay, requests, ..
        } => Some(Box::new(delay_hook(delay.0, *requests))),
        _ => None,
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
        let mut e = ApiError::injected(code);
        e.retry_after_seconds = retry_after.map(retry_after_seconds);
        Verdict::Respond(e)
    }
}

/// A `Retry-After` as whole seconds (at least one).
fn retry_after_seconds(d: Dur) -> u32 {
    u32::try_from(d.0.as_secs().max(1)).unwrap_or(u32::MAX)
}
