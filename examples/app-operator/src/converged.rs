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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{AppSpec, AppStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    fn app(name: &str, generation: i64) -> App {
        let mut a = App::new(
            name,
            AppSpec {
                data: BTreeMap::from([("k".into(), "v".into())]),
                secret: BTreeMap::from([("s".into(), "p".into())]),
            },
        );
        a.metadata.namespace = Some("default".into());
        a.metadata.uid = Some(format!("uid-{name}"));
        a.metadata.generation = Some(generation);
        a.status = Some(AppStatus {
            ready: true,
            observed_generation: Some(generation),
        });
        a
    }

    fn meta(name: &str, owner: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    api_version: "example.kube-chaos.dev/v1".into(),
                    kind: "App".into(),
                    name: o.into(),
                    uid: format!("uid-{o}"),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]
            }),
            ..ObjectMeta::default()
        }
    }

    fn cm(name: &str, owner: Option<&str>, data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: meta(name, owner),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    fn secret(name: &str, owner: &str, value: &str) -> Secret {
        Secret {
            metadata: meta(name, Some(owner)),
            data: Some(BTreeMap::from([("s".into(), ByteString(value.into()))])),
            ..Secret::default()
        }
    }

    type World = (Vec<App>, Vec<ConfigMap>, Vec<Secret>);
    type Edit<'a> = &'a dyn Fn(&mut Vec<App>, &mut Vec<ConfigMap>, &mut Vec<Secret>);

    /// App `a` done right: its children and the registry.
    fn world() -> World {
        let cms = vec![
            cm("app-a", Some("a"), &[("k", "v")]),
            cm(REGISTRY, None, &[("a", "uid-a")]),
        ];
        (vec![app("a", 2)], cms, vec![secret("app-a", "a", "p")])
    }

    #[test]
    fn a_finished_app_is_converged_and_each_break_is_named() {
        // The good world passes; each edit of it breaks one clause, named in the message.
        let (apps, cms, secrets) = world();
        assert_eq!(converged(&apps, &cms, &secrets), Ok(()));
        let broken = |edit: Edit| {
            let (mut apps, mut cms, mut secrets) = world();
            edit(&mut apps, &mut cms, &mut secrets);
            converged(&apps, &cms, &secrets).unwrap_err()
        };
        let two = broken(&|_, c, _| c.push(cm("app-a-x1", Some("a"), &[("k", "v")])));
        assert_eq!(
            two,
            "App default/a: 2 ConfigMaps controlled by it (app-a, app-a-x1), want exactly 1"
        );
        let none = broken(&|_, _, s| s.clear());
        assert_eq!(none, "App default/a: no Secret controlled by it");
        let data = broken(&|_, c, _| c[0] = cm("app-a", Some("a"), &[("k", "old")]));
        assert!(
            data.starts_with("App default/a: ConfigMap app-a has data"),
            "{data}"
        );
        let secret_data = broken(&|_, _, s| s[0] = secret("app-a", "a", "old"));
        assert!(
            secret_data.contains("Secret app-a has data {\"s\": \"old\"}"),
            "{secret_data}"
        );
        let stale = broken(&|a, _, _| a[0].metadata.generation = Some(3));
        assert!(stale.contains("observedGeneration=Some(2), want ready at generation Some(3)"));
        let missing = broken(&|_, c, _| c[1] = cm(REGISTRY, None, &[]));
        assert_eq!(
            missing,
            "registry default/app-registry: no key for live App a"
        );
        let extra = broken(&|_, c, _| c[1] = cm(REGISTRY, None, &[("a", "uid-a"), ("z", "u")]));
        assert_eq!(
            extra,
            "registry default/app-registry: key z names no live App"
        );
        let uid = broken(&|_, c, _| c[1] = cm(REGISTRY, None, &[("a", "uid-old")]));
        assert!(uid.contains("key a holds uid uid-old"), "{uid}");
    }

    #[test]
    fn an_app_being_deleted_is_not_judged_but_its_registry_key_is() {
        // A terminating App needs no children or status; its key must already be gone.
        let (mut apps, mut cms, secrets) = world();
        let mut gone = app("b", 1);
        gone.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        gone.status = None;
        apps.push(gone);
        assert_eq!(converged(&apps, &cms, &secrets), Ok(()));
        cms[1] = cm(REGISTRY, None, &[("a", "uid-a"), ("b", "uid-b")]);
        assert_eq!(
            converged(&apps, &cms, &secrets),
            Err("registry default/app-registry: key b names no live App".into())
        );
    }

    #[test]
    fn unique_children_are_the_configmap_and_the_secret() {
        // The kinds a duplicate-children checker looks at, as (apiVersion, kind).
        assert_eq!(unique_children(), &[("v1", "ConfigMap"), ("v1", "Secret")]);
    }
}
