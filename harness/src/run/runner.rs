//! The runner: scenario -> turmoil simulation -> report. It is the only driver: it steps the
//! simulation, applies due faults and workload writes between steps (through the
//! [`Interpreter`] and [`apply_write`]), and hands what was recorded to the checkers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::interpreter::{Interpreter, Target, World};
use super::operator::{self, UserRun, WriteLog};
use super::pace::Pace;
use super::report::{Report, Uncontrolled, WatchRequest};
use super::timeline::{timeline, Step};
use super::writes::apply_write;
use super::RunError;
use crate::apiserver::{ApiServer, ClusterConfig, RequestInfo, Stats, StoreEvent, Verdict};
use crate::check::{self, Evidence};
use crate::net::{client, ClientConfig, Kill, ReplicaPolicy};
use crate::scenario::{ReplicaChoice, Scenario};
use crate::sim::{since_start, SimBuilder};
use crate::subject::{instance_seed, record_panics, registry, Controls, Ctx, Descriptor};
use crate::trace::{self, Record, Recorder};
use crate::watch_log::WatchLog;

/// What every subject instance shares with the runner.
struct Subjects<'a> {
    recorder: &'a Recorder,
    controls: &'a Controls,
    kill: &'a Kill,
    watch_log: &'a WatchLog,
}

/// Where the run's "OS randomness" (std's `HashMap` keys, `getrandom`) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdRandomness {
    /// From the scenario seed: the run happens inside [`crate::seeded()`] (a fresh thread
    /// whose std, fastrand and ahash randomness comes from the seed), so code under test
    /// that iterates a `HashMap` is deterministic too (the default; what `kube-chaos` does).
    #[default]
    Seeded,
    /// From the OS, fresh per run (to show what the code under test does without it).
    Os,
}

/// The seed std's randomness is drawn from in a run of `seed` (distinct from the
/// subjects' own seeds).
pub fn std_seed(seed: u64) -> u64 {
    seed ^ 0x5eed_0f57_d0a5_b17e
}

/// Runs `scenario` (with `seed` overriding its own, if given), std's randomness seeded.
pub fn run(scenario: &Scenario, seed: Option<u64>) -> Result<Report, RunError> {
    run_with(scenario, seed, StdRandomness::Seeded)
}

/// Runs `scenario` on a fresh thread, std's randomness from `randomness`. A user's
/// controller with faults is first run without them (the `differential` baseline).
pub fn run_with(
    scenario: &Scenario,
    seed: Option<u64>,
    randomness: StdRandomness,
) -> Result<Report, RunError> {
    if scenario.subject.is_external() {
        return Err(RunError::External);
    }
    let mut scenario = scenario.clone();
    scenario.seed = seed.unwrap_or(scenario.seed);
    let subject = registry().get(&scenario.subject.name)?;
    let baseline = match subject.user() {
        Some(_) if !scenario.faults.is_empty() => {
            let faultless = operator::faultless(&scenario);
            // Only its end state is read: its condition is not sampled.
            let run = || Ok(on_thread(&faultless, randomness, None, false)?.end_state);
            Some(operator::baseline(&faultless, run)?)
        }
        _ => None,
    };
    on_thread(&scenario, randomness, baseline, true)
}

/// Runs `s` on a fresh thread, std's randomness from `randomness`.
fn on_thread(
    s: &Scenario,
    randomness: StdRandomness,
    baseline: Option<Baseline>,
    sampled: bool,
) -> Result<Report, RunError> {
    match randomness {
        StdRandomness::Seeded => crate::seeded(std_seed(s.seed), || run_here(s, baseline, sampled)),
        StdRandomness::Os => std::thread::scope(|scope| {
            let thread = std::thread::Builder::new().stack_size(8 << 20);
            let handle = thread.spawn_scoped(scope, || run_here(s, baseline, sampled));
            match handle.expect("a thread for the run").join() {
                Ok(out) => out,
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }),
    }
}

/// A `differential` baseline: the end state of the run without faults.
type Baseline = Arc<Vec<Arc<Value>>>;

/// Runs `s` on the calling thread (a user controller's condition sampled when `sampled`).
fn run_here(s: &Scenario, baseline: Option<Baseline>, sampled: bool) -> Result<Report, RunError> {
    let started = Instant::now();
    let subject = registry().get(&s.subject.name)?;
    let (mut sim, server) = sim_builder(s).build()?;
    // turmoil's builder reads the wall clock for a default epoch (then replaced).
    let ours = Uncontrolled::so_far();
    let (writes, watch_requests) = prepare(s, &server)?;
    let recorder = Recorder::new(!s.subject.config.trace_events);
    let _panics = subject.user().map(|_| record_panics(&recorder, 0));
    let (controls, kill) = (Controls::default(), Kill::default());
    let client_watches = WatchLog::default();
    let world = Subjects {
        recorder: &recorder,
        controls: &controls,
        kill: &kill,
        watch_log: &client_watches,
    };
    let hosts = spawn_subjects(s, subject, &mut sim, &world);
    let driven = Driven {
        server: &server,
        recorder: &recorder,
        controls: &controls,
        hosts: &hosts,
        kill: &kill,
        writes: &writes,
    };
    let mut user = UserRun::of(subject, s.duration.0, sampled);
    let rate = drive(s, &mut sim, &driven, &mut user)?;
    let (finals, objects) = (recorder.final_views(), server.objects("v1", "ConfigMap"));
    let stats = server.stats();
    // Before the hosts' tasks go: dropping them would end every open watch "now".
    let (client_lists, client_watches) = (client_watches.lists(), client_watches.watches());
    drop(sim);
    let history = configmap_history(&server, &recorder, user.is_some());
    let cluster = user.map(|u| u.evidence(&server, &writes, baseline));
    let entries = recorder.entries();
    let watch_requests = watch_requests.lock().expect("watch log").clone();
    let evidence = Evidence {
        scenario: s,
        kind: subject.kind,
        entries: &entries,
        history: &history,
        finals: &finals,
        objects: &objects,
        watch_rate: rate,
        cluster: cluster.as_ref(),
        watch_requests: &watch_requests,
        expired_sent: &expired_sent(&server),
    };
    let verdicts = check::run_all(&evidence);
    Ok(Report {
        scenario: s.name.clone(),
        subject: s.subject.name.clone(),
        seed: s.seed,
        simulated: s.end(),
        wall: started.elapsed(),
        counters: counters(&recorder, &stats, history.len()),
        verdicts,
        expected: s.expect.violations.clone(),
        watch_rate: rate,
        trace: trace::render_shown(&entries, recorder.is_quiet()),
        entries,
        watch_requests,
        client_watches,
        client_lists,
        uncontrolled: Uncontrolled::so_far().since(ours),
        end_state: cluster.map(|c| c.objects).unwrap_or_default(),
    })
}

/// When the server sent each in-stream 410, since the start.
fn expired_sent(server: &ApiServer) -> Vec<Duration> {
    server.expired_sent().into_iter().map(since_start).collect()
}

/// The watch requests the server saw, shared with its hook.
type WatchRequests = Arc<Mutex<Vec<WatchRequest>>>;

/// The server made ready before the subject starts: the hook counting the subject's writes
/// first (it sees every attempt), the scenario's CRDs, manifests and objects, the watch log.
fn prepare(s: &Scenario, server: &ApiServer) -> Result<(WriteLog, WatchRequests), RunError> {
    let writes = WriteLog::default();
    server.add_hook(writes.hook());
    operator::install(s, server)?;
    put_objects(s, server)?;
    let watch_requests: Arc<Mutex<Vec<WatchRequest>>> = Arc::default();
    server.add_hook(watch_log(watch_requests.clone()));
    Ok((writes, watch_requests))
}

/// A request hook that only records watch requests (it never changes a request).
fn watch_log(log: Arc<Mutex<Vec<WatchRequest>>>) -> impl Fn(&RequestInfo) -> Verdict {
    move |r: &RequestInfo| {
        if r.is_watch {
            let timeout_seconds = form_urlencoded::parse(r.query.as_bytes())
                .find(|(k, _)| k == "timeoutSeconds")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            log.lock().expect("watch log").push(WatchRequest {
                at: crate::sim::since_start(r.at),
                replica: r.replica,
                timeout_seconds,
            });
        }
        Verdict::Pass
    }
}

/// Every ConfigMap write of the run, also merged into the recorder's trace (with the writes
/// of every other kind too for a user's controller, whose children can be of any kind).
fn configmap_history(
    server: &ApiServer,
    recorder: &Recorder,
    every_kind: bool,
) -> Vec<Arc<StoreEvent>> {
    let all = server.history();
    let history: Vec<Arc<StoreEvent>> = all
        .iter()
        .filter(|e| e.object["kind"] == "ConfigMap")
        .cloned()
        .collect();
    recorder.add_writes(operator::all_writes(if every_kind {
        &all
    } else {
        &history
    }));
    history
}

/// The subjects' counters and the server's.
fn counters(recorder: &Recorder, stats: &Stats, writes: usize) -> BTreeMap<String, u64> {
    let mut counters: BTreeMap<String, u64> = recorder
        .counters()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    counters.insert("watches".into(), stats.watches);
    counters.insert("expired_410".into(), stats.expired);
    counters.insert("requests".into(), stats.requests);
    counters.insert("writes".into(), writes as u64);
    for k in ["events", "relists"] {
        counters.entry(k.into()).or_default();
    }
    counters
}

fn sim_builder(s: &Scenario) -> SimBuilder {
    let instances = s.subject.clients * s.subject.hosts;
    let mut b = SimBuilder::new(s.seed)
        .replicas(s.cluster.replicas)
        .duration(s.end() + Duration::from_secs(60))
        .tick(s.tick.0)
        .cluster(|k| configure(k, s));
    b.tcp_capacity = b.tcp_capacity.max(instances * 4);
    b
}

/// The scenario's cluster knobs on a server configuration (history recorded).
pub(super) fn configure(k: &mut ClusterConfig, s: &Scenario) {
    let c = &s.cluster;
    k.replicas = c.replicas;
    k.watch_cache_capacity = c.watch_cache_capacity;
    k.watch_cache_lag = c.watch_cache_lag.0;
    k.min_request_timeout = c.min_request_timeout.0;
    k.bookmark_interval = c.bookmark_interval.0;
    k.compaction_interval = c.compaction_interval.map(|d| d.0);
    k.record_history = true;
}

/// Creates the scenario's initial ConfigMaps.
pub(super) fn put_objects(s: &Scenario, server: &ApiServer) -> Result<(), RunError> {
    for (index, o) in s.objects.iter().enumerate() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": o.name, "namespace": o.namespace, "labels": o.labels},
            "data": o.data,
        });
        server.put_object(obj).map_err(|e| RunError::Object {
            index,
            message: e.message,
        })?;
    }
    Ok(())
}

fn policy(s: &Scenario, instance: usize, incarnation: u32) -> ReplicaPolicy {
    match s.subject.config.replica_policy {
        ReplicaChoice::RoundRobin => ReplicaPolicy::RoundRobin,
        ReplicaChoice::Pinned => ReplicaPolicy::Pinned(instance % s.cluster.replicas),
        ReplicaChoice::Random => ReplicaPolicy::Random {
            seed: instance_seed(s.seed, instance, incarnation) ^ 1,
        },
    }
}

/// Registers one turmoil host per subject host; each (re)start runs fresh instances.
fn spawn_subjects(
    s: &Scenario,
    subject: &'static Descriptor,
    sim: &mut turmoil::Sim<'_>,
    world: &Subjects<'_>,
) -> Vec<String> {
    let run = subject.run;
    let mut names = Vec::new();
    for h in 0..s.subject.hosts {
        let name = format!("subject-{h}");
        names.push(name.clone());
        let incarnations = Arc::new(Mutex::new(0u32));
        let s = s.clone();
        let shared = Shared {
            read_timeout: subject.user().and_then(|u| u.read_timeout),
            ..world.owned()
        };
        sim.host(name, move || {
            let incarnation = {
                let mut n = incarnations.lock().expect("incarnation lock");
                *n += 1;
                *n - 1
            };
            let ctxs: Vec<Ctx> = (0..s.subject.clients)
                .map(|c| shared.ctx(&s, h * s.subject.clients + c, incarnation))
                .collect();
            async move {
                for ctx in ctxs {
                    ctx.recorder.record(
                        Some(ctx.instance),
                        Record::Start {
                            incarnation: ctx.incarnation,
                        },
                    );
                    tokio::spawn(run.start(ctx));
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    names
}

/// [`Subjects`], owned, for a host's closure.
#[derive(Clone)]
struct Shared {
    recorder: Recorder,
    controls: Controls,
    kill: Kill,
    watch_log: WatchLog,
    /// The read timeout a user's controller configures its client with (kube's default:
    /// none).
    read_timeout: Option<Duration>,
}

impl Subjects<'_> {
    fn owned(&self) -> Shared {
        Shared {
            recorder: self.recorder.clone(),
            controls: self.controls.clone(),
            kill: self.kill.clone(),
            watch_log: self.watch_log.clone(),
            read_timeout: None,
        }
    }
}

impl Shared {
    /// The context of one instance's incarnation: its own client and seed.
    fn ctx(&self, s: &Scenario, instance: usize, incarnation: u32) -> Ctx {
        let mut config = ClientConfig::new(s.cluster.replicas)
            .policy(policy(s, instance, incarnation))
            .keep_alive(s.subject.config.keep_alive);
        config.kill = self.kill.clone();
        if self.read_timeout.is_some() {
            config.read_timeout = self.read_timeout;
        }
        config.watch_log = Some((self.watch_log.clone(), instance));
        Ctx {
            instance,
            incarnation,
            client: client(&config),
            config: s.subject.config.clone(),
            seed: instance_seed(s.seed, instance, incarnation),
            recorder: self.recorder.clone(),
            controls: self.controls.clone(),
            zoo: kube_chaos::zoo::Zoo::default(),
        }
    }
}

/// What the loop acts on besides the simulation.
struct Driven<'a> {
    server: &'a ApiServer,
    recorder: &'a Recorder,
    controls: &'a Controls,
    hosts: &'a [String],
    kill: &'a Kill,
    writes: &'a WriteLog,
}

/// How long a user's controller is given to stop after the shutdown trigger fires.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Steps the simulation to the end, applying the timeline; returns the watch rate if the
/// scenario asked for one. A user's controller then gets its shutdown trigger.
fn drive(
    s: &Scenario,
    sim: &mut turmoil::Sim<'_>,
    d: &Driven<'_>,
    user: &mut Option<UserRun>,
) -> Result<Option<f64>, RunError> {
    let steps = timeline(s);
    let mut next = 0;
    let mut interpreter = Interpreter::default();
    let rate_from = s.expect.watch_rate.as_ref().map(|r| r.from.0);
    let mut watches_at = (None, None);
    let mut serial = 0u64;
    let pace = Pace::new(s.tick.0, s.idle_tick.map(|d| d.0));
    while sim.elapsed() < s.end() {
        let now = sim.elapsed();
        d.recorder.set_now(now);
        d.server.observe_elapsed(now);
        while next < steps.len() && steps[next].0 <= now {
            let step = &steps[next].1;
            let mut w = world(s, sim, d);
            apply(
                s,
                &mut interpreter,
                &mut w,
                d.recorder,
                user.as_mut(),
                step,
                &mut serial,
            );
            next += 1;
        }
        for done in interpreter.poll(&mut world(s, sim, d)) {
            d.recorder.record(None, Record::Fault(done));
        }
        if let Some(user) = user.as_mut() {
            user.sample(now, d.server, d.recorder);
        }
        if rate_from.is_some_and(|f| now >= f) && watches_at.0.is_none() {
            watches_at.0 = Some((now, d.server.stats().watches));
        }
        if now >= s.duration.0 && watches_at.1.is_none() {
            watches_at.1 = Some((now, d.server.stats().watches));
        }
        let due = [
            steps.get(next).map(|(at, _)| *at),
            interpreter.next_due(),
            user.as_ref().and_then(UserRun::next_due),
            rate_from.filter(|_| watches_at.0.is_none()),
            rate_from
                .map(|_| s.duration.0)
                .filter(|_| watches_at.1.is_none()),
        ];
        let due = due.into_iter().flatten().fold(s.end(), Duration::min);
        pace.set(sim, now, due);
        step(sim)?;
    }
    pace.set(sim, sim.elapsed(), sim.elapsed());
    if let Some(user) = user.as_mut() {
        user.freeze(d.server);
        shut_down(sim, d)?;
    }
    Ok(match watches_at {
        (Some((t0, w0)), Some((t1, w1))) if t1 > t0 => {
            Some((w1 - w0) as f64 / (t1 - t0).as_secs_f64())
        }
        _ => None,
    })
}

fn step(sim: &mut turmoil::Sim<'_>) -> Result<(), RunError> {
    sim.step().map(drop).map_err(|e| RunError::Simulation {
        at: sim.elapsed(),
        message: e.to_string(),
    })
}

/// Fires the shutdown trigger and steps until the controller's main returned (it records
/// `exited`) or [`SHUTDOWN_GRACE`] passed.
fn shut_down(sim: &mut turmoil::Sim<'_>, d: &Driven<'_>) -> Result<(), RunError> {
    d.controls.fire_shutdown();
    let until = sim.elapsed() + SHUTDOWN_GRACE;
    let exited = |d: &Driven<'_>| {
        d.recorder
            .entries()
            .iter()
            .rev()
            .any(|e| matches!(e.record, Record::Exited { .. }))
    };
    while sim.elapsed() < until && !exited(d) {
        d.recorder.set_now(sim.elapsed());
        step(sim)?;
    }
    Ok(())
}

/// The interpreter's view of the world.
fn world<'a, 'b>(s: &Scenario, sim: &'a mut turmoil::Sim<'b>, d: &'a Driven<'a>) -> World<'a, 'b> {
    World {
        sim,
        server: d.server,
        controls: d.controls,
        subject_hosts: d.hosts,
        subject_kill: d.kill,
        subject_writes: d.writes,
        replicas: s.cluster.replicas,
        seed: s.seed,
    }
}

/// Applies one due step: a fault's start or end (traced), or a workload write (a refused
/// one is traced too; a user controller's run notes what a delete takes away).
pub(super) fn apply(
    s: &Scenario,
    interpreter: &mut Interpreter,
    world: &mut impl Target,
    recorder: &Recorder,
    user: Option<&mut UserRun>,
    step: &Step,
    serial: &mut u64,
) {
    match step {
        Step::Begin(i) => {
            recorder.record(None, Record::Fault(s.faults[*i].describe()));
            interpreter.begin(world, *i, &s.faults[*i]);
        }
        Step::End(i) => {
            let healed = format!("{} healed", s.faults[*i].tag());
            recorder.record(None, Record::Fault(healed));
            interpreter.end(world, *i, &s.faults[*i]);
        }
        Step::Write(w) => {
            *serial += 1;
            if let Some(user) = user {
                user.before_write(w, world.now(), world.server());
            }
            if let Err(refused) = apply_write(world.server(), w, *serial) {
                recorder.record(None, Record::Workload(refused));
            }
        }
    }
}
