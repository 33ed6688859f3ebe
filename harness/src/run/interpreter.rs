//! The fault interpreter: applies each fault of the timeline to the turmoil network, the
//! apiserver, or the controller controls when it starts, and heals it when it ends. One arm
//! per fault kind in [`Interpreter::begin`] and in [`Interpreter::end`], both exhaustive.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::apiserver::{ApiError, ApiServer, HookId, RequestInfo, Verdict};
use crate::net::{replica_host, Kill};
use crate::scenario::{Direction, Dur, Fault, Requests};
use crate::subject::Controls;

/// turmoil's default per-message latency bound (restored after a latency fault).
const DEFAULT_MAX_LATENCY: Duration = Duration::from_millis(100);

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
            Fault::WatchErrors {
                replica,
                code,
                retry_after,
                ..
            } => error_watches(w, *replica, *code, *retry_after),
            Fault::SlowHandler { delay, .. } => w.controls.slow_handler(i, delay.0),
            Fault::FlakyReconciles { key, rate, .. } => {
                w.controls.flaky(i, key.clone(), *rate, w.seed ^ i as u64)
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
            Fault::SlowHandler { .. } => w.controls.end_slow_handler(i),
            Fault::FlakyReconciles { .. } => w.controls.end_flaky(i),
            Fault::CrashSubject { .. } => {
                for h in w.subject_hosts {
                    w.sim.bounce(h.as_str());
                }
            }
            Fault::ConnectionReset { .. }
            | Fault::Compact { .. }
            | Fault::ExpireWatches { .. }
            | Fault::DropWatches { .. }
            | Fault::ReconcileErrors { .. }
            | Fault::WatchErrors { .. } => {}
        }
    }
}

/// Every open watch on the targeted replicas gets an in-stream `ERROR` with `code`.
fn error_watches(w: &World<'_, '_>, replica: Option<usize>, code: u16, retry: Option<Dur>) {
    let retry = retry.map(retry_after_seconds);
    w.each_replica(replica, |s, r| s.error_watches(r, code, retry));
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
        let mut e = ApiError::injected(code);
        e.retry_after_seconds = retry_after.map(retry_after_seconds);
        Verdict::Respond(e)
    }
}

/// A `Retry-After` as whole seconds (at least one).
fn retry_after_seconds(d: Dur) -> u32 {
    u32::try_from(d.0.as_secs().max(1)).unwrap_or(u32::MAX)
}
