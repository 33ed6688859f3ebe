//! Exploration (DESIGN.md §7): proptest generates small scenarios for one subject from a
//! seed, the runner runs them, and every distinct failure — a checker the subject violated —
//! is shrunk to a minimal scenario (fewest faults, fewest objects and writes, shortest
//! duration) and written as a replay file that `kube-chaos run` reproduces exactly.
//!
//! Everything is a function of `(subject, seed)`: case `i` is drawn from its own RNG seeded
//! from `(seed, i)`, so `--jobs` changes the wall time, never the cases, the failures or the
//! replay files.
//!
//! Shrinking runs in two passes, each candidate a full simulated run that must still violate
//! the same checker: proptest's own value-tree shrinking of the generated case (bounded),
//! then a greedy pass over the scenario itself (drop each fault, write and object; fewer
//! replicas; shorter duration; halve a fault's length; keep-alive back on) until nothing
//! more can go.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::mirror::MIRROR_LABEL;
use crate::runner::{self, Report};
use crate::scenario::{
    ClusterSpec, Direction, Dur, ErrorClass, Expect, FirstList, ObjectSpec, ReplicaChoice,
    Requests, Scenario, SubjectConfig, SubjectSpec, Workload, SCENARIO_VERSION,
};
use crate::subject::{self, Descriptor, Kind};

/// The small-scenario profile: bounds of what exploration generates.
pub mod profile {
    use std::time::Duration;

    /// Longest generated `duration` (workload and faults happen within it).
    pub const MAX_DURATION: Duration = Duration::from_secs(60);
    /// Shortest `duration` the shrinker goes down to.
    pub const MIN_DURATION: Duration = Duration::from_secs(5);
    /// Settle time after `duration`: a correct subject notices a silently dead watch within
    /// 60 s (15 s minimum watch timeout, doubled at most, plus 30 s grace), backs off and
    /// relists; a controller then settles, and the last half of this must be quiet.
    pub const SETTLE: Duration = Duration::from_secs(180);
    /// The staleness bound the checkers get (a version may go unobserved this long while a
    /// correct subject is still recovering from a fault that ended).
    pub const STALENESS: Duration = Duration::from_secs(180);
    /// At most this many faults per case.
    pub const MAX_FAULTS: usize = 3;
    /// At most this many initial objects.
    pub const MAX_OBJECTS: usize = 4;
    /// At most this many single writes.
    pub const MAX_WRITES: usize = 8;
}

/// What to explore.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subject name (see `kube-chaos subjects`).
    pub subject: String,
    /// Cases to generate.
    pub cases: u32,
    /// Seed of the whole exploration.
    pub seed: u64,
    /// Cases run in parallel (threads).
    pub jobs: usize,
    /// Stop generating once a case fails (the earliest failing case is still the same for
    /// any `jobs`).
    pub stop_at_first: bool,
    /// Most simulated runs spent shrinking one failure.
    pub shrink_runs: u32,
}

impl Options {
    /// `cases` cases of `subject` from `seed`, one job, shrinking with the default budget.
    pub fn new(subject: &str, cases: u32, seed: u64) -> Self {
        Self {
            subject: subject.to_string(),
            cases,
            seed,
            jobs: 1,
            stop_at_first: false,
            shrink_runs: 200,
        }
    }
}

/// Why exploration could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExploreError {
    /// No such subject.
    #[error("unknown subject {name:?}; subjects: {known}")]
    UnknownSubject {
        /// Asked for.
        name: String,
        /// The registry's names.
        known: String,
    },
    /// A count that must be positive was zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

/// What exploration reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A case finished; `failures` distinct failures so far.
    Case {
        /// Cases finished.
        done: u32,
        /// Distinct failures found so far.
        failures: usize,
    },
    /// Shrinking a failure of `checker`: `runs` simulated runs so far, `faults` left.
    Shrinking {
        /// The checker whose violation is being kept.
        checker: String,
        /// Runs spent.
        runs: u32,
        /// Faults in the smallest failing scenario so far.
        faults: usize,
    },
}

/// One distinct failure, shrunk.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The violated checker (with the subject, the failure's identity).
    pub checker: String,
    /// Index of the first case that showed it.
    pub case: u32,
    /// That case as generated.
    pub original: Scenario,
    /// The shrunk scenario (the replay file's content).
    pub scenario: Scenario,
    /// The report of the shrunk scenario's run.
    pub report: Report,
    /// Simulated runs spent shrinking.
    pub shrink_runs: u32,
    /// Wall time spent shrinking.
    pub shrink_wall: Duration,
}

/// A case the harness itself could not run (a bug in the harness, not in the subject).
#[derive(Debug, Clone)]
pub struct Broken {
    /// Case index.
    pub case: u32,
    /// The scenario.
    pub scenario: Scenario,
    /// What went wrong.
    pub error: String,
}

/// The result of one exploration.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// Subject explored.
    pub subject: String,
    /// Seed.
    pub seed: u64,
    /// Cases run.
    pub cases_run: u32,
    /// Distinct failures, shrunk, in the order first found.
    pub failures: Vec<Failure>,
    /// Cases the harness could not run.
    pub broken: Vec<Broken>,
    /// Wall time running cases (not shrinking).
    pub cases_wall: Duration,
}

impl Exploration {
    /// Explored cases per wall second.
    pub fn cases_per_sec(&self) -> f64 {
        f64::from(self.cases_run) / self.cases_wall.as_secs_f64().max(1e-9)
    }
}

/// The proptest strategy of scenarios for `subject` (its kind decides the faults and knobs).
/// The scenario's seed is left 0: exploration sets it per case.
pub fn strategy(subject: &'static Descriptor) -> BoxedStrategy<Scenario> {
    let kind = subject.kind;
    let max_s = profile::MAX_DURATION.as_secs();
    let cluster = (
        prop_oneof![3 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)],
        prop_oneof![Just(8usize), Just(64usize), Just(1024usize)],
    );
    let knobs = (
        1usize..=3,
        1u32..=4,
        prop_oneof![
            Just(ReplicaChoice::RoundRobin),
            Just(ReplicaChoice::Random),
            Just(ReplicaChoice::Pinned)
        ],
        // One request per connection (each request picks its replica) in 30% of cases.
        prop::bool::weighted(0.7),
    );
    let writes = prop::collection::vec(write(max_s), 0..=profile::MAX_WRITES);
    let churn = prop::option::weighted(0.3, churn(max_s));
    let faults = faults(kind, max_s);
    (
        10u64..=max_s,
        cluster,
        0usize..=profile::MAX_OBJECTS,
        writes,
        churn,
        faults,
        knobs,
    )
        .prop_map(
            move |(
                duration,
                (replicas, capacity),
                objects,
                writes,
                churn,
                faults,
                (workers, max_retries, policy, keep_alive),
            )| {
                let mirror = kind == Kind::Controller;
                let mut workload = writes;
                workload.extend(churn);
                if mirror {
                    workload.iter_mut().for_each(label_for_mirror);
                }
                let mut s = Scenario {
                    version: SCENARIO_VERSION,
                    name: format!("explore-{}", subject.name),
                    description: String::new(),
                    seed: 0,
                    duration: Dur::secs(duration),
                    settle: Dur(profile::SETTLE),
                    tick: Dur::millis(20),
                    cluster: ClusterSpec {
                        replicas,
                        watch_cache_capacity: capacity,
                        ..ClusterSpec::default()
                    },
                    objects: (0..objects).map(|i| object(i, mirror)).collect(),
                    workload,
                    subject: SubjectSpec {
                        name: subject.name.to_string(),
                        clients: 1,
                        hosts: 1,
                        config: SubjectConfig {
                            keep_alive,
                            ..subject_config(kind, workers, max_retries, policy)
                        },
                    },
                    faults,
                    expect: Expect {
                        staleness_bound: Some(Dur(profile::STALENESS)),
                        ..Expect::default()
                    },
                };
                fit(&mut s);
                s
            },
        )
        .boxed()
}

fn subject_config(
    kind: Kind,
    workers: usize,
    max_retries: u32,
    policy: ReplicaChoice,
) -> SubjectConfig {
    let base = SubjectConfig {
        min_watch_timeout: Dur::secs(15),
        watch_timeout: Dur::secs(30),
        // The consistent first list: RV "0" after a restart time-travels on a lagging
        // replica (a known client-go hazard with its own fixture), not what is explored.
        first_list: FirstList::Consistent,
        replica_policy: policy,
        ..SubjectConfig::default()
    };
    match kind {
        Kind::Controller => SubjectConfig {
            workers,
            max_retries,
            ..base
        },
        Kind::Watcher | Kind::Informer => base,
    }
}

/// Initial object `o-{i}` (a mirror source for controllers).
fn object(i: usize, mirror: bool) -> ObjectSpec {
    ObjectSpec {
        name: format!("o-{i}"),
        namespace: "default".into(),
        labels: mirror_labels(mirror),
        data: BTreeMap::new(),
    }
}

fn mirror_labels(mirror: bool) -> BTreeMap<String, String> {
    match mirror {
        true => BTreeMap::from([(MIRROR_LABEL.to_string(), "true".to_string())]),
        false => BTreeMap::new(),
    }
}

fn label_for_mirror(w: &mut Workload) {
    if let Workload::Create { labels, .. } | Workload::Churn { labels, .. } = w {
        *labels = mirror_labels(true);
    }
}

/// A single write on one of six names (`o-0..o-5`: the first ones may exist initially).
fn write(max_s: u64) -> impl Strategy<Value = Workload> {
    let name = (0usize..6).prop_map(|i| format!("o-{i}"));
    (0u8..3, 0..max_s, name).prop_map(|(op, at, name)| {
        let at = Dur::secs(at);
        match op {
            0 => Workload::Create {
                at,
                name,
                labels: BTreeMap::new(),
            },
            1 => Workload::Update { at, name },
            _ => Workload::Delete { at, name },
        }
    })
}

fn churn(max_s: u64) -> impl Strategy<Value = Workload> {
    (0..max_s, 5..=max_s, 1u64..=5, 1u32..=4).prop_map(|(at, len, every, objects)| {
        Workload::Churn {
            at: Dur::secs(at),
            for_: Dur::secs(len),
            every: Dur::secs(every),
            objects,
            prefix: "c".into(),
            labels: BTreeMap::new(),
        }
    })
}

/// A case's faults, swarm style: the case first enables a random subset of the fault kinds
/// that apply to `kind` (each with probability 1/2), then draws up to
/// [`profile::MAX_FAULTS`] faults from those alone. Cases that concentrate on a few kinds
/// combine them far more often than a uniform draw over every kind would (Groce et al.,
/// "Swarm Testing", ISSTA 2012): a paused cache *and* an expired watch in one case, say.
fn faults(kind: Kind, max_s: u64) -> BoxedStrategy<Vec<crate::scenario::Fault>> {
    let kinds = fault_kinds(kind, max_s);
    prop::collection::vec(any::<bool>(), kinds.len())
        .prop_flat_map(move |enabled| {
            let chosen: Vec<_> = kinds
                .iter()
                .zip(&enabled)
                .filter(|(_, on)| **on)
                .map(|((w, k), _)| (*w, k.clone()))
                .collect();
            if chosen.is_empty() {
                return Just(Vec::new()).boxed();
            }
            let one = prop::strategy::Union::new_weighted(chosen);
            prop::collection::vec(one, 0..=profile::MAX_FAULTS).boxed()
        })
        .boxed()
}

/// Every fault kind that applies to `kind` with its weight, at whole seconds.
fn fault_kinds(kind: Kind, max_s: u64) -> Vec<(u32, BoxedStrategy<crate::scenario::Fault>)> {
    use crate::scenario::Fault as F;
    let at = move || (0..max_s).prop_map(Dur::secs);
    let len = move || (1..=max_s).prop_map(Dur::secs);
    let replica = || prop::option::of(0usize..3);
    let requests = || {
        prop_oneof![
            Just(Requests::All),
            Just(Requests::Watch),
            Just(Requests::Read),
            Just(Requests::Write)
        ]
    };
    let kinds: Vec<BoxedStrategy<F>> = vec![
        (at(), len(), replica())
            .prop_map(|(at, for_, replica)| F::Partition { at, for_, replica })
            .boxed(),
        (at(), len(), any::<bool>(), replica())
            .prop_map(|(at, for_, to, replica)| {
                let direction = match to {
                    true => Direction::ToApiserver,
                    false => Direction::FromApiserver,
                };
                F::PartitionOneway {
                    at,
                    for_,
                    direction,
                    replica,
                }
            })
            .boxed(),
        (at(), 1u64..=20, replica())
            .prop_map(|(at, s, replica)| F::Hold {
                at,
                for_: Dur::secs(s),
                replica,
            })
            .boxed(),
        (at(), len(), 50u64..=2000, replica())
            .prop_map(|(at, for_, ms, replica)| F::Latency {
                at,
                for_,
                latency: Dur::millis(ms),
                replica,
            })
            .boxed(),
        (at(), len(), 1u32..=200, replica())
            .prop_map(|(at, for_, permille, replica)| F::Loss {
                at,
                for_,
                rate: f64::from(permille) / 1000.0,
                replica,
            })
            .boxed(),
        (at(), replica())
            .prop_map(|(at, replica)| F::ConnectionReset { at, replica })
            .boxed(),
        (at(), 0usize..3, 1u64..=30)
            .prop_map(|(at, replica, s)| F::CrashReplica {
                at,
                replica,
                restart_after: Dur::secs(s),
            })
            .boxed(),
        (at(), len(), 1u64..=10, replica())
            .prop_map(|(at, for_, lag, replica)| F::CacheLag {
                at,
                for_,
                lag: Dur::secs(lag),
                replica,
            })
            .boxed(),
        (at(), len(), replica())
            .prop_map(|(at, for_, replica)| F::CachePause { at, for_, replica })
            .boxed(),
        at().prop_map(|at| F::Compact { at }).boxed(),
        (at(), replica())
            .prop_map(|(at, replica)| F::ExpireWatches { at, replica })
            .boxed(),
        (at(), replica())
            .prop_map(|(at, replica)| F::DropWatches { at, replica })
            .boxed(),
        (
            at(),
            len(),
            prop_oneof![Just(429u16), Just(500), Just(503), Just(504)],
            1u32..=10,
            prop::option::of((1u64..=5).prop_map(Dur::secs)),
            requests(),
        )
            .prop_map(
                |(at, for_, code, tenths, retry_after, requests)| F::HttpErrors {
                    at,
                    for_,
                    code,
                    rate: f64::from(tenths) / 10.0,
                    retry_after,
                    requests,
                },
            )
            .boxed(),
        (at(), len(), 1u64..=10, requests())
            .prop_map(|(at, for_, s, requests)| F::SlowResponses {
                at,
                for_,
                delay: Dur::secs(s),
                requests,
            })
            .boxed(),
        (at(), 1u64..=10)
            .prop_map(|(at, s)| F::CrashSubject {
                at,
                restart_after: Dur::secs(s),
            })
            .boxed(),
    ];
    // Weights: a network or apiserver kind 1 each; a controller's own faults (slow or
    // failing reconciles) 3 each, as most controller bugs need them.
    let mut weighted: Vec<(u32, BoxedStrategy<F>)> = kinds.into_iter().map(|k| (1, k)).collect();
    if kind == Kind::Controller {
        let key = || prop::option::of((0usize..3).prop_map(|i| format!("default/o-{i}")));
        weighted.push((
            3,
            (at(), len(), 1u64..=20, key())
                .prop_map(|(at, for_, s, key)| F::SlowReconcile {
                    at,
                    for_,
                    delay: Dur::secs(s),
                    key,
                })
                .boxed(),
        ));
        weighted.push((
            3,
            (at(), 1u32..=8, any::<bool>(), key())
                .prop_map(|(at, times, terminal, key)| {
                    let class = match terminal {
                        true => ErrorClass::Terminal,
                        false => ErrorClass::Retryable,
                    };
                    F::ReconcileErrors {
                        at,
                        times,
                        class,
                        key,
                    }
                })
                .boxed(),
        ));
    }
    weighted
}

/// Makes a scenario valid after its duration or replica count changed: every fault and
/// write moved inside `duration`, every replica index taken modulo `replicas`.
pub fn fit(s: &mut Scenario) {
    use crate::scenario::Fault as F;
    let d = s.duration.0;
    let last = d.saturating_sub(Duration::from_secs(1));
    let replicas = s.cluster.replicas.max(1);
    let clamp_at = |at: &mut Dur| at.0 = at.0.min(last);
    for w in &mut s.workload {
        match w {
            Workload::Create { at, .. }
            | Workload::Update { at, .. }
            | Workload::Delete { at, .. }
            | Workload::Burst { at, .. } => clamp_at(at),
            Workload::Churn { at, for_, .. } => {
                clamp_at(at);
                for_.0 = for_.0.min(d - at.0);
            }
        }
    }
    for f in &mut s.faults {
        match f {
            F::Partition {
                at, for_, replica, ..
            }
            | F::PartitionOneway {
                at, for_, replica, ..
            }
            | F::Hold { at, for_, replica }
            | F::Latency {
                at, for_, replica, ..
            }
            | F::Loss {
                at, for_, replica, ..
            }
            | F::CacheLag {
                at, for_, replica, ..
            }
            | F::CachePause { at, for_, replica } => {
                clamp_at(at);
                for_.0 = for_.0.min(d - at.0);
                *replica = replica.map(|r| r % replicas);
            }
            F::HttpErrors { at, for_, .. }
            | F::SlowResponses { at, for_, .. }
            | F::SlowReconcile { at, for_, .. } => {
                clamp_at(at);
                for_.0 = for_.0.min(d - at.0);
            }
            F::CrashReplica {
                at,
                replica,
                restart_after,
            } => {
                clamp_at(at);
                restart_after.0 = restart_after.0.min(d - at.0);
                *replica %= replicas;
            }
            F::CrashSubject { at, restart_after } => {
                clamp_at(at);
                restart_after.0 = restart_after.0.min(d - at.0);
            }
            F::ConnectionReset { at, replica }
            | F::ExpireWatches { at, replica }
            | F::DropWatches { at, replica } => {
                clamp_at(at);
                *replica = replica.map(|r| r % replicas);
            }
            F::Compact { at } | F::ReconcileErrors { at, .. } => clamp_at(at),
        }
    }
}

/// The seed of case `case` of an exploration seeded `seed` (also its simulation seed).
pub fn case_seed(seed: u64, case: u32) -> u64 {
    crate::subject::instance_seed(seed, case as usize, 0x5eed)
}

/// Case `case`'s value tree (the same for the same `(subject, seed, case)`).
fn case_tree(
    subject: &'static Descriptor,
    seed: u64,
    case: u32,
) -> Box<dyn ValueTree<Value = Scenario>> {
    let s = case_seed(seed, case);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&s.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed.to_le_bytes());
    bytes[16..20].copy_from_slice(&case.to_le_bytes());
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let tree = strategy(subject)
        .new_tree(&mut runner)
        .expect("the scenario strategy has no filters, so it never rejects");
    Box::new(SeededTree {
        inner: tree,
        seed: s,
    })
}

/// A case's value tree: proptest's, with the case's seed put into every scenario.
struct SeededTree<T> {
    inner: T,
    seed: u64,
}

impl<T: ValueTree<Value = Scenario>> ValueTree for SeededTree<T> {
    type Value = Scenario;

    fn current(&self) -> Scenario {
        Scenario {
            seed: self.seed,
            ..self.inner.current()
        }
    }

    fn simplify(&mut self) -> bool {
        self.inner.simplify()
    }

    fn complicate(&mut self) -> bool {
        self.inner.complicate()
    }
}

/// Case `case` of an exploration of `subject` seeded `seed`.
pub fn generate(subject: &'static Descriptor, seed: u64, case: u32) -> Scenario {
    case_tree(subject, seed, case).current()
}

/// What one run of a case showed.
enum Ran {
    /// The report (violated checkers in it).
    Report(Box<Report>),
    /// The harness failed to run it.
    Broken(String),
}

/// Runs `s`, turning a run error or a panic into [`Ran::Broken`].
fn run_case(s: &Scenario) -> Ran {
    if let Err((path, message)) = crate::validate::scenario(s) {
        return Ran::Broken(format!("generated an invalid scenario: {path}: {message}"));
    }
    match catch_unwind(AssertUnwindSafe(|| runner::run(s, None))) {
        Ok(Ok(report)) => Ran::Report(Box::new(report)),
        Ok(Err(e)) => Ran::Broken(e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".into());
            Ran::Broken(format!("the run panicked: {what}"))
        }
    }
}

fn violates(s: &Scenario, checker: &str) -> Option<Report> {
    match run_case(s) {
        Ran::Report(r) if r.violated().contains(&checker) => Some(*r),
        _ => None,
    }
}

/// The subject called `name`, or an error listing the known ones.
pub fn find_subject(name: &str) -> Result<&'static Descriptor, ExploreError> {
    subject::find(name).ok_or_else(|| ExploreError::UnknownSubject {
        name: name.to_string(),
        known: subject::all()
            .iter()
            .map(|d| d.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Explores: runs the cases (in parallel with `jobs`), then shrinks each distinct failure.
pub fn explore(
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Exploration, ExploreError> {
    let subject = find_subject(&opts.subject)?;
    if opts.cases == 0 {
        return Err(ExploreError::Zero("cases"));
    }
    if opts.jobs == 0 {
        return Err(ExploreError::Zero("jobs"));
    }
    let started = Instant::now();
    let outcomes = run_cases(subject, opts, progress);
    let cases_wall = started.elapsed();
    let mut failures: Vec<Failure> = Vec::new();
    let mut broken = Vec::new();
    let cases_run = outcomes.len() as u32;
    for (case, outcome) in outcomes.into_iter().enumerate() {
        let case = case as u32;
        match outcome {
            CaseOutcome::Pass => {}
            CaseOutcome::Broken(scenario, error) => broken.push(Broken {
                case,
                scenario,
                error,
            }),
            CaseOutcome::Violated(scenario, checkers) => {
                for checker in checkers {
                    if failures.iter().any(|f| f.checker == checker) {
                        continue;
                    }
                    let f = shrink(subject, opts, case, &scenario, &checker, progress);
                    failures.push(f);
                }
            }
        }
    }
    Ok(Exploration {
        subject: subject.name.to_string(),
        seed: opts.seed,
        cases_run,
        failures,
        broken,
        cases_wall,
    })
}

enum CaseOutcome {
    Pass,
    Violated(Scenario, Vec<String>),
    Broken(Scenario, String),
}

/// Runs cases `0..cases` on `jobs` threads; with `stop_at_first`, cases after the earliest
/// failing one are not run (all before it are, so the result does not depend on `jobs`).
fn run_cases(
    subject: &'static Descriptor,
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Vec<CaseOutcome> {
    let next = AtomicU32::new(0);
    let limit = AtomicU32::new(opts.cases);
    let done = AtomicU32::new(0);
    let failing = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<u32, CaseOutcome>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.min(opts.cases as usize) {
            scope.spawn(|| loop {
                let case = next.fetch_add(1, Ordering::SeqCst);
                if case >= limit.load(Ordering::SeqCst) {
                    break;
                }
                let scenario = generate(subject, opts.seed, case);
                let outcome = match run_case(&scenario) {
                    Ran::Report(r) if r.violated().is_empty() => CaseOutcome::Pass,
                    Ran::Report(r) => {
                        let checkers = r.violated().iter().map(|c| c.to_string()).collect();
                        CaseOutcome::Violated(scenario, checkers)
                    }
                    Ran::Broken(e) => CaseOutcome::Broken(scenario, e),
                };
                if !matches!(outcome, CaseOutcome::Pass) {
                    failing.fetch_add(1, Ordering::SeqCst);
                    if opts.stop_at_first {
                        limit.fetch_min(case + 1, Ordering::SeqCst);
                    }
                }
                results.lock().expect("results lock").insert(case, outcome);
                let done = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(Progress::Case {
                    done,
                    failures: failing.load(Ordering::SeqCst),
                });
            });
        }
    });
    let limit = limit.load(Ordering::SeqCst);
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .filter(|(case, _)| *case < limit)
        .map(|(_, o)| o)
        .collect()
}

/// Shrinks case `case` (which violated `checker`) to a minimal scenario that still does.
fn shrink(
    subject: &'static Descriptor,
    opts: &Options,
    case: u32,
    original: &Scenario,
    checker: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Failure {
    let started = Instant::now();
    let mut runs = 0u32;
    let budget = opts.shrink_runs;
    let mut best = original.clone();
    let tick = |runs: u32, best: &Scenario| {
        progress(Progress::Shrinking {
            checker: checker.to_string(),
            runs,
            faults: best.faults.len(),
        })
    };
    // Pass 1: proptest's value tree (half the budget at most).
    let mut tree = case_tree(subject, opts.seed, case);
    if tree.simplify() {
        while runs < budget / 2 {
            let candidate = tree.current();
            runs += 1;
            let still = violates(&candidate, checker).is_some();
            if still {
                best = candidate;
            }
            tick(runs, &best);
            let moved = match still {
                true => tree.simplify(),
                false => tree.complicate(),
            };
            if !moved {
                break;
            }
        }
    }
    // Pass 2: greedy removal over the scenario, until a round changes nothing.
    loop {
        let mut changed = false;
        for candidate in smaller(&best) {
            if runs >= budget {
                break;
            }
            runs += 1;
            if violates(&candidate, checker).is_some() {
                best = candidate;
                changed = true;
                tick(runs, &best);
                break;
            }
            tick(runs, &best);
        }
        if !changed || runs >= budget {
            break;
        }
    }
    let mut report = violates(&best, checker);
    if report.is_none() {
        // Cannot happen for a deterministic run; fall back to the original, which failed.
        best = original.clone();
        report = violates(&best, checker);
    }
    best.name = format!("explore-{}-{}", subject.name, checker);
    best.description = format!(
        "Found by `kube-chaos explore --subject {} --seed {}` (case {case}), shrunk from {} \
         fault(s), {} object(s) and {} write(s) over {} to this; violates {checker}.",
        subject.name,
        opts.seed,
        original.faults.len(),
        original.objects.len(),
        original.workload.len(),
        original.duration,
    );
    let report = report.unwrap_or_else(|| {
        panic!("case {case} no longer violates {checker}: the run is not deterministic")
    });
    Failure {
        checker: checker.to_string(),
        case,
        original: original.clone(),
        scenario: best,
        report,
        shrink_runs: runs,
        shrink_wall: started.elapsed(),
    }
}

/// Candidates one step smaller than `s`, most reducing first: drop a fault, drop a write,
/// drop an object, fewer replicas, a shorter duration, a fault half as long, keep-alive
/// back on.
fn smaller(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    for i in (0..s.faults.len()).rev() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push(c);
    }
    for i in (0..s.workload.len()).rev() {
        let mut c = s.clone();
        c.workload.remove(i);
        out.push(c);
    }
    for i in (0..s.objects.len()).rev() {
        let mut c = s.clone();
        c.objects.remove(i);
        out.push(c);
    }
    if s.cluster.replicas > 1 {
        let mut c = s.clone();
        c.cluster.replicas -= 1;
        fit(&mut c);
        out.push(c);
    }
    let d = s.duration.0.as_secs();
    let min = profile::MIN_DURATION.as_secs();
    let mut shorter: Vec<u64> = vec![min, d / 4, d / 2, d * 3 / 4, d.saturating_sub(5)];
    shorter.retain(|&x| x >= min && x < d);
    shorter.sort_unstable();
    shorter.dedup();
    for secs in shorter {
        let mut c = s.clone();
        c.duration = Dur::secs(secs);
        fit(&mut c);
        out.push(c);
    }
    for i in 0..s.faults.len() {
        let mut c = s.clone();
        if let Some(len) = c.faults[i]
            .length_mut()
            .filter(|l| l.0 > Duration::from_secs(1))
        {
            *len = Dur::secs((len.0.as_secs() / 2).max(1));
            out.push(c);
        }
    }
    if !s.subject.config.keep_alive {
        let mut c = s.clone();
        c.subject.config.keep_alive = true;
        out.push(c);
    }
    out
}

/// The replay file's name for a failure: `{subject}-{checker}.json`.
pub fn replay_file_name(subject: &str, checker: &str) -> String {
    format!("{subject}-{checker}.json")
}

/// Writes every failure's scenario into `dir` (created if missing); returns the paths.
pub fn write_replays(dir: &Path, e: &Exploration) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for f in &e.failures {
        let path = dir.join(replay_file_name(&e.subject, &f.checker));
        std::fs::write(&path, f.scenario.to_json())?;
        paths.push(path);
    }
    Ok(paths)
}
