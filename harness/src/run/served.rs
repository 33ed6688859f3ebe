//! A scenario played on the wall clock against `kube-chaos serve` and whatever real clients
//! connect to it (the subject [`EXTERNAL`](crate::scenario::EXTERNAL)): the same timeline
//! and the same [`Interpreter`] as a simulated run, acting on the served sockets instead of
//! turmoil's network ([`ServedTarget`]); faults can also arrive live (the admin endpoint).
//! At the end the checkers of external clients judge what the server saw, in the same
//! [`Report`] as `kube-chaos run`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::interpreter::{replicas_of, Interpreter, Link, Target};
use super::report::{Report, Uncontrolled};
use super::runner::{apply, put_objects};
use super::timeline::{timeline, Step};
use super::RunError;
use crate::apiserver::{ApiServer, ClusterConfig, StoreEvent};
use crate::check::served::{self, request_lines, Line, ServedEvidence};
use crate::scenario::{Fault, Scenario};
use crate::serve::{Access, Connections, Served};
use crate::subject::Controls;
use crate::trace::{self, Entry, Held, Record, Recorder};

/// The served apiserver as the interpreter's [`Target`]: network faults and crashes act on
/// its real sockets.
pub struct ServedTarget {
    server: ApiServer,
    connections: Connections,
    controls: Controls,
    seed: u64,
    /// When the scenario started playing (the wall clock: `serve` runs on it).
    started: std::time::Instant,
}

impl ServedTarget {
    /// The target for `served`, rate-based faults seeded with `seed`.
    pub fn new(served: &Served, seed: u64) -> Self {
        Self {
            server: served.server.clone(),
            connections: served.connections.clone(),
            controls: Controls::default(),
            seed,
            started: std::time::Instant::now(),
        }
    }
}

impl Target for ServedTarget {
    fn server(&self) -> &ApiServer {
        &self.server
    }
    fn replicas(&self) -> usize {
        self.server.config().replicas
    }
    fn seed(&self) -> u64 {
        self.seed
    }
    fn controls(&self) -> &Controls {
        &self.controls
    }
    fn cut(&mut self, replica: Option<usize>, link: Link) {
        for r in replicas_of(self.replicas(), replica) {
            self.connections.cut(r, link);
        }
    }
    fn heal(&mut self, replica: Option<usize>, _link: Link) {
        for r in replicas_of(self.replicas(), replica) {
            self.connections.heal(r);
        }
    }
    fn reset_connections(&mut self, replica: usize) {
        self.connections.reset(replica);
    }
    fn crash_replica(&mut self, replica: usize) {
        self.connections.set_down(replica, true);
    }
    fn restart_replica(&mut self, replica: usize) {
        self.server.reset_cache(replica);
        self.connections.set_down(replica, false);
    }
    fn crash_subjects(&mut self) {
        tracing::warn!("an external subject cannot be crashed (validation refuses it)");
    }
    fn restart_subjects(&mut self) {}
    fn now(&self) -> Duration {
        self.started.elapsed()
    }
    fn subject_writes(&self) -> usize {
        0 // an external subject's writes are not counted (validation refuses crash_after_write)
    }
}

/// The cluster configuration a scenario asks `serve` for.
pub fn served_cluster(s: &Scenario) -> ClusterConfig {
    let mut k = ClusterConfig {
        seed: s.seed,
        ..ClusterConfig::default()
    };
    super::runner::configure(&mut k, s);
    k
}

/// Where the external client's reported cache is read from, if anywhere.
#[derive(Debug, Clone, Default)]
pub struct PlayOptions {
    /// A file of `namespace/name resourceVersion` lines the client writes (overrides the
    /// scenario's `subject.external.cache_file`).
    pub cache_file: Option<std::path::PathBuf>,
}

/// Plays `s` against `served` on the wall clock from the served log's time zero: initial
/// objects at once, then the timeline (and any `live` faults, each from the moment it
/// arrives); after `duration + settle`, judges what the server saw.
pub async fn play_served(
    s: &Scenario,
    served: &Served,
    mut live: mpsc::Receiver<Fault>,
    opts: &PlayOptions,
) -> Result<Report, RunError> {
    let wall = Instant::now();
    put_objects(s, &served.server)?;
    let recorder = Recorder::new(false);
    let mut target = ServedTarget::new(served, s.seed);
    let mut interpreter = Interpreter::default();
    let mut steps: Vec<(Duration, Step)> = timeline(s);
    let mut live_faults: Vec<Fault> = s.faults.clone();
    let mut serial = 0u64;
    let zero = served.access.started();
    let end = s.end();
    let mut next = 0;
    loop {
        let due = steps.get(next).map_or(end, |(at, _)| (*at).min(end));
        tokio::select! {
            biased;
            f = live.recv(), if !live.is_closed() => {
                let Some(f) = f else { continue };
                let now = served.access.elapsed();
                schedule_live(&mut steps, next, &mut live_faults, f, now);
                continue;
            }
            _ = tokio::time::sleep_until(zero + due) => {}
        }
        if next >= steps.len() || steps[next].0 >= end {
            break;
        }
        recorder.set_now(steps[next].0);
        let scenario = Scenario {
            faults: live_faults.clone(),
            ..s.clone()
        };
        let step = steps[next].1.clone();
        apply(
            &scenario,
            &mut interpreter,
            &mut target,
            &recorder,
            None,
            &step,
            &mut serial,
        );
        next += 1;
    }
    Ok(report(s, served, &recorder, opts, wall.elapsed()))
}

/// A live fault: starts now (its `at` is ignored), ends after its length; its steps are
/// put among those still to come.
fn schedule_live(
    steps: &mut Vec<(Duration, Step)>,
    next: usize,
    faults: &mut Vec<Fault>,
    mut f: Fault,
    now: Duration,
) {
    let i = faults.len();
    *f.at_mut() = crate::scenario::Dur(now);
    let (_, ends) = f.window();
    faults.push(f);
    steps.insert(next, (now, Step::Begin(i)));
    if let Some(e) = ends {
        let pos = next + 1 + steps[next + 1..].partition_point(|(at, _)| *at <= e.0);
        steps.insert(pos, (e.0, Step::End(i)));
    }
}

/// Judges what the server saw and builds the report.
fn report(
    s: &Scenario,
    served: &Served,
    recorder: &Recorder,
    opts: &PlayOptions,
    wall: Duration,
) -> Report {
    let requests = served.access.requests();
    let history = writes_into(served, recorder);
    let entries = recorder.entries();
    let lines = trace_lines(s, &entries, &requests);
    let (cache, cache_error) = reported_cache(s, opts);
    let objects = served.server.objects("v1", "ConfigMap");
    let evidence = ServedEvidence {
        scenario: s,
        requests: &requests,
        objects: &objects,
        cache: cache.as_ref(),
        trace: &lines,
    };
    let mut verdicts = served::run_all(&evidence);
    if let Some(message) = cache_error {
        verdicts.push(crate::check::Verdict {
            checker: crate::scenario::Checker::NoEventLoss,
            violations: vec![crate::check::Violation {
                key: "client".into(),
                at: s.end(),
                message,
                context: Vec::new(),
            }],
        });
    }
    let mut text = String::new();
    for l in &lines {
        text += &l.text;
        text.push('\n');
    }
    Report {
        end_state: Vec::new(),
        scenario: s.name.clone(),
        subject: s.subject.name.clone(),
        seed: s.seed,
        simulated: s.end(),
        wall,
        counters: counters(served, &requests, history.len(), &evidence),
        verdicts,
        expected: s.expect.violations.clone(),
        watch_rate: None,
        trace: text,
        entries,
        watch_requests: Vec::new(),
        client_watches: Vec::new(),
        client_lists: Vec::new(),
        uncontrolled: Uncontrolled::default(),
    }
}

/// Every ConfigMap write, also merged into the recorder's trace at its time since the start.
fn writes_into(served: &Served, recorder: &Recorder) -> Vec<Arc<StoreEvent>> {
    let history: Vec<Arc<StoreEvent>> = served
        .server
        .history()
        .into_iter()
        .filter(|e| e.object["kind"] == "ConfigMap")
        .collect();
    recorder.add_writes(history.iter().map(|e| {
        let key = format!("{}/{}", e.key.ns, e.key.name);
        let rv = e.rev;
        let write = Record::Write {
            kind: e.kind.as_str(),
            key,
            rv,
        };
        (served.access.since_start(e.at), write)
    }));
    history
}

/// The runner's and server's records and the clients' requests, in time order.
fn trace_lines(s: &Scenario, entries: &[Entry], requests: &[Access]) -> Vec<Line> {
    let by = s
        .subject
        .external
        .as_ref()
        .map(|e| e.identify_by)
        .unwrap_or_default();
    let mut lines: Vec<Line> = entries
        .iter()
        .map(|e| Line {
            at: e.at,
            client: None,
            text: trace::line(e),
        })
        .chain(request_lines(by, requests))
        .collect();
    lines.sort_by_key(|l| l.at);
    lines
}

/// The client's reported cache, or why it could not be read (a `no_event_loss` violation).
fn reported_cache(s: &Scenario, opts: &PlayOptions) -> (Option<Held>, Option<String>) {
    let from_scenario = s
        .subject
        .external
        .as_ref()
        .and_then(|e| e.cache_file.as_ref())
        .map(std::path::PathBuf::from);
    let Some(path) = opts.cache_file.clone().or(from_scenario) else {
        return (None, None);
    };
    match served::parse_cache(&path) {
        Ok(held) => (Some(held), None),
        Err(e) => (
            None,
            Some(format!("the client reported no readable cache: {e}")),
        ),
    }
}

fn counters(
    served: &Served,
    requests: &[Access],
    writes: usize,
    ev: &ServedEvidence<'_>,
) -> std::collections::BTreeMap<String, u64> {
    let stats = served.server.stats();
    let clients: std::collections::BTreeSet<String> =
        requests.iter().map(|a| ev.client(a)).collect();
    let conns: std::collections::BTreeSet<u64> = requests.iter().map(|a| a.conn).collect();
    let events: usize = requests.iter().map(|a| a.sent.len()).sum();
    [
        ("requests", stats.requests),
        ("watches", stats.watches),
        (
            "lists",
            requests.iter().filter(|a| a.is_list()).count() as u64,
        ),
        ("expired_410", stats.expired),
        ("writes", writes as u64),
        ("clients", clients.len() as u64),
        ("connections", conns.len() as u64),
        ("events", events as u64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
