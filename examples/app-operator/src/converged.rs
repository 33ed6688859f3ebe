//! What must hold once the system is quiet ([`converged`]), and which children must be
//! unique per owner ([`unique_children`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Resource, ResourceExt};

use crate::app::App;
use crate::registry::REGISTRY;

/// The child kinds (`apiVersion`, `kind`) of which each App controls exactly one.
pub const UNIQUE_CHILDREN: [(&str, &str); 2] = [("v1", "ConfigMap"), ("v1", "Secret")];

/// The child kinds (`apiVersion`, `kind`) that must be unique per owning App: two live
/// ones controlled by the same App are a duplicate (see [`UNIQUE_CHILDREN`]).
pub fn unique_children() -> &'static [(&'static str, &'static str)] {
    &UNIQUE_CHILDREN
}

/// `Ok` when the operator's work is done: every live App (no `deletionTimestamp`) controls
/// exactly one ConfigMap and one Secret whose data equal its spec, its status is ready at
/// its generation, and each namespace's registry holds exactly its live Apps (with their
/// uids). Otherwise every problem, each naming its object, joined by `"; "`.
pub fn converged(apps: &[App], configmaps: &[ConfigMap], secrets: &[Secret]) -> Result<(), String> {
    let live: Vec<&App> = apps
        .iter()
        .filter(|a| a.meta().deletion_timestamp.is_none())
        .collect();
    let mut problems = Vec::new();
    for app in &live {
        check_children(app, configmaps, secrets, &mut problems);
        check_status(app, &mut problems);
    }
    check_registries(&live, configmaps, &mut problems);
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("; ")),
    }
}

fn key<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

/// The objects `uid` controls (a controller ownerReference to it).
fn controlled_by<'a, K: Resource>(objects: &'a [K], uid: &str) -> Vec<&'a K> {
    objects
        .iter()
        .filter(|o| {
            o.owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && r.uid == uid)
        })
        .collect()
}

/// The one object of `kind` the App controls, or a problem saying how many there are.
fn only_one<'a, K: Resource>(
    app: &App,
    kind: &str,
    owned: Vec<&'a K>,
    problems: &mut Vec<String>,
) -> Option<&'a K> {
    match owned.as_slice() {
        [one] => Some(one),
        [] => {
            problems.push(format!("App {}: no {kind} controlled by it", key(app)));
            None
        }
        many => {
            let names: Vec<String> = many.iter().map(|o| o.name_any()).collect();
            problems.push(format!(
                "App {}: {} {kind}s controlled by it ({}), want exactly 1",
                key(app),
                many.len(),
                names.join(", ")
            ));
            None
        }
    }
}

fn check_children(
    app: &App,
    configmaps: &[ConfigMap],
    secrets: &[Secret],
    problems: &mut Vec<String>,
) {
    let uid = app.uid().unwrap_or_default();
    if let Some(cm) = only_one(app, "ConfigMap", controlled_by(configmaps, &uid), problems) {
        let data = cm.data.clone().unwrap_or_default();
        if data != app.spec.data {
            problems.push(format!(
                "App {}: ConfigMap {} has data {data:?}, want {:?}",
                key(app),
                cm.name_any(),
                app.spec.data
            ));
        }
    }
    if let Some(s) = only_one(app, "Secret", controlled_by(secrets, &uid), problems) {
        let data: BTreeMap<String, String> = s
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        if data != app.spec.secret {
            problems.push(format!(
                "App {}: Secret {} has data {data:?}, want {:?}",
                key(app),
                s.name_any(),
                app.spec.secret
            ));
        }
    }
}

fn check_status(app: &App, problems: &mut Vec<String>) {
    let status = app.status.clone().unwrap_or_default();
    let generation = app.metadata.generation;
    if !status.ready || status.observed_generation != generation {
        problems.push(format!(
            "App {}: status ready={} observedGeneration={:?}, want ready at generation {:?}",
            key(app),
            status.ready,
            status.observed_generation,
            generation
        ));
    }
}

/// Each namespace's registry (one with live Apps or a registry) against its live Apps.
fn check_registries(live: &[&App], configmaps: &[ConfigMap], problems: &mut Vec<String>) {
    let mut want: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for app in live {
        want.entry(app.namespace().unwrap_or_default())
            .or_default()
            .insert(app.name_any(), app.uid().unwrap_or_default());
    }
    let mut have: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for cm in configmaps.iter().filter(|c| c.name_any() == REGISTRY) {
        have.insert(
            cm.namespace().unwrap_or_default(),
            cm.data.clone().unwrap_or_default(),
        );
    }
    let namespaces: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    let empty = BTreeMap::new();
    for ns in namespaces {
        let (want, have) = (
            want.get(ns).unwrap_or(&empty),
            have.get(ns).unwrap_or(&empty),
        );
        for (name, uid) in want {
            match have.get(name) {
                None => problems.push(format!("registry {ns}/{REGISTRY}: no key for live App {name}")),
                Some(got) if got != uid => problems.push(format!(
                    "registry {ns}/{REGISTRY}: key {name} holds uid {got}, but App {ns}/{name} is {uid}"
                )),
                Some(_) => {}
            }
        }
        for name in have.keys().filter(|n| !want.contains_key(*n)) {
            problems.push(format!(
                "registry {ns}/{REGISTRY}: key {name} names no live App"
            ));
        }
    }
}
