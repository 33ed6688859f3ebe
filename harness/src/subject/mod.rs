//! Systems under test: our runtime, kube-runtime's, and deliberately wrong ones (the bug
//! zoo). Each runs as one instance on a simulated host, talks to the cluster through a real
//! `kube::Client`, and records what it delivered in the run's [`Recorder`].
//!
//! - [`registry`]: every subject by name ([`Descriptor`]), with its kind and whether it is
//!   part of the bug zoo; the [`crate::scenario::Catalog`] scenarios are validated against.
//!   **A new subject** is a function here (or in a new file) plus one registry line.
//! - [`Ctx`] (here): what one instance gets — its client, knobs, seed, recorder, controls.
//! - [`Controls`]: the subject faults in force (slow reconciles, injected errors, slow
//!   handlers), set by the fault interpreter and consulted by the subjects.
//! - `slow_consumer`: the informer side of a slow handler (a queue with a slow reader).
//! - `watcher`, `informer`, `runtime_watcher`, `controller`: the subject families;
//!   `feed`: how the mirror controllers' informer feeds their queue (at once, or by
//!   `add_after` from the handler, recorded), slowed by a `slow_handler` fault.
//! - `hash_order`: a subject that is deliberately non-deterministic unless std's
//!   randomness is seeded (it tests the divergence finder).

mod controller;
mod controls;
mod feed;
mod hash_order;
mod informer;
mod registry;
mod runtime_watcher;
mod slow_consumer;
mod user;
mod watcher;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Resource};
use kube_chaos::zoo::{Bug, Zoo};

use crate::scenario::SubjectConfig;
use crate::trace::{Held, Record, Recorder};

pub use controls::Controls;
pub use feed::{asks_after, delay_of, DELAY_S_MAX};
pub use registry::{register, registry, Descriptor, NameTaken, Registry, Run, UnknownSubject};
pub(crate) use user::record_panics;
pub use user::{ClusterView, ConditionFn, Shutdown, StartFn, Templates, TypeRef, UserSubject};

/// Everything one subject instance gets.
#[derive(Clone)]
pub struct Ctx {
    /// Instance index (across hosts).
    pub instance: usize,
    /// Restarts of this instance so far.
    pub incarnation: u32,
    /// A client for the simulated cluster.
    pub client: kube::Client,
    /// The scenario's knobs.
    pub config: SubjectConfig,
    /// Seed for this instance and incarnation.
    pub seed: u64,
    /// Where to record what it does.
    pub recorder: Recorder,
    /// Controller faults the runner turns on and off.
    pub controls: Controls,
    /// The runtime bug this subject runs with (bug-zoo subjects only).
    pub zoo: Zoo,
}

impl Ctx {
    /// This context with `bug` turned on in the runtime components the subject builds.
    fn with(mut self, bug: Bug) -> Self {
        self.zoo = Zoo::with(bug);
        self
    }

    fn record(&self, record: Record) {
        self.recorder.record(Some(self.instance), record);
    }

    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), "default")
    }
}

pub(crate) fn key_of<K: Resource>(o: &K) -> String {
    format!(
        "{}/{}",
        o.meta().namespace.as_deref().unwrap_or(""),
        o.meta().name.as_deref().unwrap_or("")
    )
}

pub(crate) fn rv_of<K: Resource>(o: &K) -> u64 {
    o.meta()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn held<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> Held {
    objects
        .into_iter()
        .map(|o| {
            (
                key_of(o),
                (rv_of(o), o.meta().uid.clone().unwrap_or_default()),
            )
        })
        .collect()
}

/// The seed of one instance's incarnation (distinct per instance and restart).
pub fn instance_seed(seed: u64, instance: usize, incarnation: u32) -> u64 {
    seed ^ (instance as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(incarnation) << 48)
}
