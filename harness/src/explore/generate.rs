//! Generation: the proptest strategy of small scenarios for one subject (its kind decides
//! the faults and knobs), the per-case value trees seeded from `(seed, case)`, and [`fit`],
//! which keeps a scenario valid after its duration or replica count changed.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::faults::faults;
use super::profile;
use crate::mirror::MIRROR_LABEL;
use crate::scenario::{
    ClusterSpec, Dur, Expect, Fault, FirstList, ObjectSpec, ReplicaChoice, ReplicaMut, Scenario,
    SubjectConfig, SubjectKind, SubjectSpec, Workload, SCENARIO_VERSION,
};
use crate::subject::{asks_after, instance_seed, Descriptor, DELAY_S_MAX};

/// The knobs a case draws: (workers, max_retries, replica policy, keep-alive).
type Knobs = (usize, u32, ReplicaChoice, bool);

/// The proptest strategy of scenarios for `subject` (its kind decides the faults and knobs).
/// The scenario's seed is left 0: exploration sets it per case.
pub fn strategy(subject: &'static Descriptor) -> BoxedStrategy<Scenario> {
    if let Some(user) = subject.user() {
        return super::user::strategy(subject, user);
    }
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
    // A replica left behind for the whole run, in a quarter of the multi-replica cases:
    // which replica, and when the others expire their watches.
    let lagging = prop::option::weighted(0.25, (0usize..3, 0..max_s));
    (
        10u64..=max_s,
        cluster,
        0usize..=profile::MAX_OBJECTS,
        writes,
        churn,
        faults(kind, max_s, &[]),
        knobs,
        lagging,
    )
        .prop_map(
            move |(duration, cluster, objects, mut workload, churn, faults, knobs, lagging)| {
                workload.extend(churn);
                let (faults, knobs) = lagging_replica(lagging, cluster.0, duration, faults, knobs);
                let mut s = assemble(subject, duration, cluster, objects, workload, faults, knobs);
                fit(&mut s);
                s
            },
        )
        .boxed()
}

/// The three parts of k/k #59848 together, which independent draws almost never combine: a
/// replica that stays behind (its watch cache paused from the start to the end), requests
/// that land on it (one request per connection, spread over the replicas, not pinned), and
/// a 410 meanwhile (every watch expired at `expire_at`). A reflector that relists from
/// `"0"` after the 410 may get the frozen replica's old state. It takes two of the case's
/// fault slots.
fn lagging_replica(
    lagging: Option<(usize, u64)>,
    replicas: usize,
    duration: u64,
    mut faults: Vec<Fault>,
    knobs: Knobs,
) -> (Vec<Fault>, Knobs) {
    let Some((r, expire_at)) = lagging.filter(|_| replicas > 1) else {
        return (faults, knobs);
    };
    faults.truncate(profile::MAX_FAULTS - 2);
    let frozen = Fault::CachePause {
        at: Dur::secs(0),
        for_: Dur::secs(duration),
        replica: Some(r % replicas),
    };
    let expire = Fault::ExpireWatches {
        at: Dur::secs(expire_at),
        replica: None,
    };
    faults.splice(0..0, [frozen, expire]);
    let (workers, max_retries, policy, _) = knobs;
    let policy = match policy {
        ReplicaChoice::Pinned => ReplicaChoice::RoundRobin,
        p => p,
    };
    (faults, (workers, max_retries, policy, false))
}

/// A generated case's parts as a scenario (sources labelled for the mirror controller).
fn assemble(
    subject: &'static Descriptor,
    duration: u64,
    (replicas, capacity): (usize, usize),
    objects: usize,
    mut workload: Vec<Workload>,
    faults: Vec<Fault>,
    (workers, max_retries, policy, keep_alive): Knobs,
) -> Scenario {
    let mirror = subject.kind == SubjectKind::Controller;
    if mirror {
        workload.iter_mut().for_each(label_for_mirror);
    }
    Scenario {
        version: SCENARIO_VERSION,
        name: format!("explore-{}", subject.name),
        description: String::new(),
        seed: 0,
        duration: Dur::secs(duration),
        settle: Dur(settle_for(subject)),
        tick: Dur::millis(20),
        idle_tick: Some(Dur(profile::IDLE_TICK)),
        cluster: ClusterSpec {
            replicas,
            watch_cache_capacity: capacity,
            ..ClusterSpec::default()
        },
        resources: Vec::new(),
        objects: (0..objects).map(|i| object(i, mirror)).collect(),
        manifests: Vec::new(),
        workload,
        subject: SubjectSpec {
            name: subject.name.to_string(),
            clients: 1,
            hosts: 1,
            config: SubjectConfig {
                keep_alive,
                ..subject_config(subject.kind, workers, max_retries, policy)
            },
            external: None,
        },
        faults,
        expect: Expect {
            staleness_bound: Some(Dur(profile::STALENESS)),
            ..Expect::default()
        },
    }
}

/// The settle time: a subject that asks for its keys after a delay writes up to that delay
/// later, so its quiet half of the settle starts that much later too (twice the delay in all).
fn settle_for(subject: &Descriptor) -> Duration {
    match asks_after(subject.name) {
        true => profile::SETTLE + Duration::from_secs(2 * DELAY_S_MAX),
        false => profile::SETTLE,
    }
}

fn subject_config(
    kind: SubjectKind,
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
        SubjectKind::Controller => SubjectConfig {
            workers,
            max_retries,
            ..base
        },
        SubjectKind::Watcher
        | SubjectKind::Informer
        | SubjectKind::Operator
        | SubjectKind::External => base,
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
    if let Some(labels) = w.labels_mut() {
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

/// Makes a scenario valid after its duration or replica count changed: every fault and
/// write moved inside `duration`, every replica index taken modulo `replicas`.
pub fn fit(s: &mut Scenario) {
    let d = s.duration.0;
    let last = d.saturating_sub(Duration::from_secs(1));
    let replicas = s.cluster.replicas.max(1);
    for w in &mut s.workload {
        let at = w.at_mut();
        at.0 = at.0.min(last);
        let at = at.0;
        if let Some(len) = w.length_mut() {
            len.0 = len.0.min(d - at);
        }
    }
    for f in &mut s.faults {
        let at = f.at_mut();
        at.0 = at.0.min(last);
        let at = at.0;
        if let Some(len) = f.length_mut() {
            len.0 = len.0.min(d - at);
        }
        match f.replica_mut() {
            Some(ReplicaMut::Optional(r)) => *r = r.map(|r| r % replicas),
            Some(ReplicaMut::One(r)) => *r %= replicas,
            None => {}
        }
    }
}

/// The seed of case `case` of an exploration seeded `seed` (also its simulation seed).
pub fn case_seed(seed: u64, case: u32) -> u64 {
    instance_seed(seed, case as usize, 0x5eed)
}

/// Case `case`'s value tree (the same for the same `(subject, seed, case)`).
pub(super) fn case_tree(
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
