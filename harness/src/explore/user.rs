//! Generation for a user's controller: its CRDs, some of its template objects present at the
//! start, creates, merge patches and deletes of the templates (and deletes of their children
//! of the kinds declared unique) during the run, and the faults
//! aimed at controllers as well as the network and apiserver ones.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::faults::faults;
use super::profile;
use crate::scenario::{
    ClusterSpec, Dur, Expect, ObjectRef, Scenario, SubjectConfig, SubjectKind, SubjectSpec,
    Workload, SCENARIO_VERSION,
};
use crate::subject::{Descriptor, UserSubject};

/// The strategy of scenarios for the user's controller `subject`.
pub(super) fn strategy(
    subject: &'static Descriptor,
    user: &'static UserSubject,
) -> BoxedStrategy<Scenario> {
    let max_s = profile::OPERATOR_DURATION.as_secs();
    let templates = &user.templates.objects;
    let targets: Vec<ObjectRef> = templates.iter().map(ObjectRef::of).collect();
    let initial = prop::collection::vec(prop::bool::weighted(0.6), templates.len());
    let writes = match templates.is_empty() {
        true => Just(Vec::new()).boxed(),
        false => prop::collection::vec(write(user, max_s), 0..=profile::MAX_WRITES).boxed(),
    };
    (
        10u64..=max_s,
        prop_oneof![3 => Just(1usize), 2 => Just(2usize)],
        initial,
        writes,
        faults(SubjectKind::Operator, max_s, &targets),
        prop::bool::weighted(0.7),
    )
        .prop_map(
            move |(duration, replicas, initial, workload, faults, keep_alive)| {
                let manifests = templates
                    .iter()
                    .zip(initial)
                    .filter(|(_, on)| *on)
                    .map(|(t, _)| t.clone())
                    .collect();
                let mut s = Scenario {
                    version: SCENARIO_VERSION,
                    name: format!("explore-{}", subject.name),
                    description: String::new(),
                    seed: 0,
                    duration: Dur::secs(duration),
                    settle: Dur(profile::OPERATOR_SETTLE),
                    tick: Dur(profile::OPERATOR_TICK),
                    idle_tick: None,
                    cluster: ClusterSpec {
                        replicas,
                        ..ClusterSpec::default()
                    },
                    resources: user.crds.clone(),
                    objects: Vec::new(),
                    manifests,
                    workload,
                    subject: SubjectSpec {
                        name: subject.name.to_string(),
                        clients: 1,
                        hosts: 1,
                        external: None,
                        config: SubjectConfig {
                            keep_alive,
                            ..SubjectConfig::default()
                        },
                    },
                    faults,
                    expect: Expect::default(),
                };
                super::fit(&mut s);
                s
            },
        )
        .boxed()
}

/// A create, merge patch or delete of one template object (there is one) at a whole second,
/// or a delete of its children of a kind declared unique (someone deleting them by hand).
fn write(user: &'static UserSubject, max_s: u64) -> BoxedStrategy<Workload> {
    let templates = &user.templates.objects;
    let patches = user.templates.patches.len();
    let children = &user.unique_children;
    let ops = if children.is_empty() { 3u8 } else { 4 };
    let child = 0..children.len().max(1);
    (
        0..ops,
        0..max_s,
        0..templates.len(),
        0..patches.max(1),
        child,
    )
        .prop_map(move |(op, at, i, p, c)| {
            let at = Dur::secs(at);
            let object = templates[i].clone();
            match op {
                3 => Workload::DeleteOwned {
                    at,
                    owner: ObjectRef::of(&object),
                    api_version: children[c].api_version.clone(),
                    kind: children[c].kind.clone(),
                },
                0 => Workload::CreateObject { at, object },
                1 => Workload::PatchObject {
                    at,
                    target: ObjectRef::of(&object),
                    patch: patch(user, p, at),
                },
                _ => Workload::DeleteObject {
                    at,
                    target: ObjectRef::of(&object),
                },
            }
        })
        .boxed()
}

/// The user's patch `p`, or (with none given) a changing annotation.
fn patch(user: &UserSubject, p: usize, at: Dur) -> Value {
    match user.templates.patches.get(p) {
        Some(patch) => patch.clone(),
        None => json!({"metadata": {"annotations": {"kube-chaos/touched": at.to_string()}}}),
    }
}
