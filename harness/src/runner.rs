//! Scenario -> turmoil simulation -> report. The runner is the only driver: it steps the
//! simulation, applies due faults and workload writes between steps, and hands what was
//! recorded to the checkers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::apiserver::{ApiServer, StoreEvent};
use crate::check::{self, Evidence, Verdict};
use crate::fault::{apply_write, timeline, Controls, Interpreter, Step, World};
use crate::net::{client, ClientConfig, Kill, ReplicaPolicy};
use crate::scenario::{ReplicaChoice, Scenario};
use crate::sim::SimBuilder;
use crate::subject::{self, instance_seed, Ctx};
use crate::trace::{self, Entry, Record, Recorder};

/// Traces longer than this many lines are shown as head + tail in reports.
pub const TRACE_SHOWN_LINES: usize = 300;

/// The outcome of one scenario run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Subject name.
    pub subject: String,
    /// Seed used.
    pub seed: u64,
    /// Simulated time run.
    pub simulated: Duration,
    /// Wall-clock time taken (not part of the rendered report).
    pub wall: Duration,
    /// Counters: events, watches, 410s, relists, reconciles, retries, dead letters, ...
    pub counters: BTreeMap<String, u64>,
    /// Each checker's verdict.
    pub verdicts: Vec<Verdict>,
    /// Checkers the scenario expected to fail.
    pub expected: Vec<String>,
    /// Watch requests per second over the scenario's `watch_rate` window, if asked for.
    pub watch_rate: Option<f64>,
    /// The full trace.
    pub trace: String,
}

impl Report {
    /// Checkers that found violations.
    pub fn violated(&self) -> Vec<&str> {
        self.verdicts
            .iter()
            .filter(|v| !v.violations.is_empty())
            .map(|v| v.checker)
            .collect()
    }

    /// Whether exactly the expected checkers failed.
    pub fn met(&self) -> bool {
        let mut found: Vec<&str> = self.violated();
        let mut want: Vec<&str> = self.expected.iter().map(String::as_str).collect();
        found.sort_unstable();
        want.sort_unstable();
        want.dedup();
        found == want
    }

    /// The report as stable text (no wall clock): verdicts, counters, trace (head and tail
    /// when long, with a digest of the whole).
    pub fn render(&self) -> String {
        let mut out = format!(
            "scenario: {}\nsubject: {}\nseed: {}\nsimulated: {}\nverdict: {}\n",
            self.scenario,
            self.subject,
            self.seed,
            humantime::format_duration(self.simulated),
            if self.met() { "met" } else { "UNMET" },
        );
        if !self.expected.is_empty() {
            out += &format!("expected violations: {}\n", self.expected.join(", "));
        }
        if let Some(r) = self.watch_rate {
            out += &format!("watch requests/s: {r:.3}\n");
        }
        out += "\ncounters:\n";
        for (k, v) in &self.counters {
            out += &format!("  {k:<14} {v}\n");
        }
        out += "\ncheckers:\n";
        for v in &self.verdicts {
            out += &v.render();
        }
        out += &format!(
            "\ntrace ({} lines, digest {:016x}):\n",
            self.trace.lines().count(),
            trace::digest(&self.trace)
        );
        out += &shown_trace(&self.trace);
        out
    }
}

fn shown_trace(trace: &str) -> String {
    let lines: Vec<&str> = trace.lines().collect();
    if lines.len() <= TRACE_SHOWN_LINES {
        return trace.to_string();
    }
    let half = TRACE_SHOWN_LINES / 2;
    let mut out = lines[..half].join("\n");
    out += &format!("\n  ... {} lines omitted ...\n", lines.len() - 2 * half);
    out += &lines[lines.len() - half..].join("\n");
    out.push('\n');
    out
}

/// Why a run could not happen (the scenario passed validation but the world refused it).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cluster could not be built.
    #[error("cluster: {0}")]
    Cluster(String),
    /// An initial object was refused by the apiserver.
    #[error("objects[{index}]: {message}")]
    Object {
        /// Index in `objects`.
        index: usize,
        /// The apiserver's message.
        message: String,
    },
    /// The simulation failed (a host's software returned an error).
    #[error("simulation failed at {at:?}: {message}")]
    Simulation {
        /// Simulated time.
        at: Duration,
        /// turmoil's error.
        message: String,
    },
}

/// Runs `scenario` (with `seed` overriding its own, if given).
pub fn run(scenario: &Scenario, seed: Option<u64>) -> Result<Report, RunError> {
    let started = Instant::now();
    let mut scenario = scenario.clone();
    scenario.seed = seed.unwrap_or(scenario.seed);
    let s = &scenario;
    let builder = sim_builder(s);
    let (mut sim, server) = builder
        .build()
        .map_err(|e| RunError::Cluster(e.to_string()))?;
    put_objects(s, &server)?;
    let recorder = Recorder::new(!s.subject.config.trace_events);
    let controls = Controls::default();
    let kill = Kill::default();
    let hosts = spawn_subjects(s, &mut sim, &recorder, &controls, &kill);
    let rate = drive(s, &mut sim, &server, &recorder, &controls, &hosts, &kill)?;
    let finals = recorder.final_views();
    let objects = server.objects("v1", "ConfigMap");
    let stats = server.stats();
    drop(sim);
    let history: Vec<Arc<StoreEvent>> = server
        .history()
        .into_iter()
        .filter(|e| e.object["kind"] == "ConfigMap")
        .collect();
    recorder.add_writes(
        history
            .iter()
            .map(|e| (crate::sim::since_start(e.at), write_record(e))),
    );
    let entries = recorder.entries();
    let kind = subject::find(&s.subject.name)
        .expect("validated subject")
        .kind;
    let evidence = Evidence {
        scenario: s,
        kind,
        entries: &entries,
        history: &history,
        finals: &finals,
        objects: &objects,
        watch_rate: rate,
    };
    let verdicts = check::run_all(&evidence);
    let mut counters: BTreeMap<String, u64> = recorder
        .counters()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    counters.insert("watches".into(), stats.watches);
    counters.insert("expired_410".into(), stats.expired);
    counters.insert("requests".into(), stats.requests);
    counters.insert("writes".into(), history.len() as u64);
    for k in ["events", "relists"] {
        counters.entry(k.into()).or_default();
    }
    Ok(Report {
        scenario: s.name.clone(),
        subject: s.subject.name.clone(),
        seed: s.seed,
        simulated: s.end(),
        wall: started.elapsed(),
        counters,
        verdicts,
        expected: s.expect.violations.clone(),
        watch_rate: rate,
        trace: render_trace(&entries, recorder.is_quiet()),
    })
}

/// The trace text; a quiet run leaves deliveries out (they still reached the checkers).
fn render_trace(entries: &[Entry], quiet: bool) -> String {
    if !quiet {
        return trace::render(entries);
    }
    let shown: Vec<Entry> = entries
        .iter()
        .filter(|e| !matches!(e.record, Record::Delivered { .. }))
        .cloned()
        .collect();
    trace::render(&shown)
}

fn write_record(e: &StoreEvent) -> Record {
    Record::Write {
        kind: e.kind.as_str(),
        key: format!("{}/{}", e.key.ns, e.key.name),
        rv: e.rev,
    }
}

fn sim_builder(s: &Scenario) -> SimBuilder {
    let c = &s.cluster;
    let instances = s.subject.clients * s.subject.hosts;
    let mut b = SimBuilder::new(s.seed)
        .replicas(c.replicas)
        .duration(s.end() + Duration::from_secs(60))
        .tick(s.tick.0)
        .cluster(|k| {
            k.watch_cache_capacity = c.watch_cache_capacity;
            k.watch_cache_lag = c.watch_cache_lag.0;
            k.min_request_timeout = c.min_request_timeout.0;
            k.bookmark_interval = c.bookmark_interval.0;
            k.compaction_interval = c.compaction_interval.map(|d| d.0);
            k.record_history = true;
        });
    b.tcp_capacity = b.tcp_capacity.max(instances * 4);
    b
}

fn put_objects(s: &Scenario, server: &ApiServer) -> Result<(), RunError> {
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
    sim: &mut turmoil::Sim<'_>,
    recorder: &Recorder,
    controls: &Controls,
    kill: &Kill,
) -> Vec<String> {
    let run = subject::find(&s.subject.name)
        .expect("validated subject")
        .run;
    let mut names = Vec::new();
    for h in 0..s.subject.hosts {
        let name = format!("subject-{h}");
        names.push(name.clone());
        let incarnations = Arc::new(Mutex::new(0u32));
        let (s, recorder, controls) = (s.clone(), recorder.clone(), controls.clone());
        let kill = kill.clone();
        sim.host(name, move || {
            let incarnation = {
                let mut n = incarnations.lock().expect("incarnation lock");
                *n += 1;
                *n - 1
            };
            let ctxs: Vec<Ctx> = (0..s.subject.clients)
                .map(|c| {
                    let instance = h * s.subject.clients + c;
                    let mut config = ClientConfig::new(s.cluster.replicas)
                        .policy(policy(&s, instance, incarnation))
                        .keep_alive(s.subject.config.keep_alive);
                    config.kill = kill.clone();
                    Ctx {
                        instance,
                        incarnation,
                        client: client(&config),
                        config: s.subject.config.clone(),
                        seed: instance_seed(s.seed, instance, incarnation),
                        recorder: recorder.clone(),
                        controls: controls.clone(),
                        zoo: kube_chaos::zoo::Zoo::default(),
                    }
                })
                .collect();
            async move {
                for ctx in ctxs {
                    ctx.recorder.record(
                        Some(ctx.instance),
                        Record::Start {
                            incarnation: ctx.incarnation,
                        },
                    );
                    tokio::spawn(run(ctx));
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    names
}

/// Steps the simulation to the end, applying the timeline; returns the watch rate if the
/// scenario asked for one.
fn drive(
    s: &Scenario,
    sim: &mut turmoil::Sim<'_>,
    server: &ApiServer,
    recorder: &Recorder,
    controls: &Controls,
    hosts: &[String],
    kill: &Kill,
) -> Result<Option<f64>, RunError> {
    let steps = timeline(s);
    let mut next = 0;
    let mut interpreter = Interpreter::default();
    let rate_from = s.expect.watch_rate.as_ref().map(|r| r.from.0);
    let mut watches_at = (None, None);
    let mut serial = 0u64;
    while sim.elapsed() < s.end() {
        let now = sim.elapsed();
        recorder.set_now(now);
        server.observe_elapsed(now);
        while next < steps.len() && steps[next].0 <= now {
            let mut world = World {
                sim,
                server,
                controls,
                subject_hosts: hosts,
                subject_kill: kill,
                replicas: s.cluster.replicas,
                seed: s.seed,
            };
            match &steps[next].1 {
                Step::Begin(i) => {
                    recorder.record(None, Record::Fault(s.faults[*i].describe()));
                    interpreter.begin(&mut world, *i, &s.faults[*i]);
                }
                Step::End(i) => {
                    recorder.record(
                        None,
                        Record::Fault(format!("{} healed", s.faults[*i].tag())),
                    );
                    interpreter.end(&mut world, *i, &s.faults[*i]);
                }
                Step::Write(w) => {
                    serial += 1;
                    apply_write(server, w, serial);
                }
            }
            next += 1;
        }
        if rate_from.is_some_and(|f| now >= f) && watches_at.0.is_none() {
            watches_at.0 = Some((now, server.stats().watches));
        }
        if now >= s.duration.0 && watches_at.1.is_none() {
            watches_at.1 = Some((now, server.stats().watches));
        }
        sim.step().map_err(|e| RunError::Simulation {
            at: sim.elapsed(),
            message: e.to_string(),
        })?;
    }
    Ok(match watches_at {
        (Some((t0, w0)), Some((t1, w1))) if t1 > t0 => {
            Some((w1 - w0) as f64 / (t1 - t0).as_secs_f64())
        }
        _ => None,
    })
}

/// The entries around `at` (for violation context).
pub fn around(entries: &[Entry], at: Duration, n: usize) -> Vec<String> {
    let i = entries.partition_point(|e| e.at <= at);
    let lo = i.saturating_sub(n);
    let hi = (i + n / 2).min(entries.len());
    entries[lo..hi].iter().map(trace::line).collect()
}
