//! `mirror`: the sample controller. For every ConfigMap labelled `kube-chaos.io/mirror=true`
//! it keeps a ConfigMap `<name>-mirror` in the same namespace with the same data, owned by
//! the source (`controller: true`). A finalizer on the source lets it delete the mirror when
//! the source is deleted, then release the source.
//!
//! - [`reconcile_mirror`]: the reconcile logic, runtime-agnostic (our controller or
//!   kube-runtime's can call it with the cached source).
//! - [`mirror_converged`]: the convergence condition, a pure function of the server's objects.
//! - [`mirror_controller`]: the logic wired into our runtime's controller and informer.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::ResourceExt;
use kube_chaos::controller::{
    owner_keys, Action, Classify, ConfigError, Controller, ControllerBuilder, ErrorClass,
};
use kube_chaos::informer::{object_key, Informer};
use serde_json::Value;

/// The label that makes a ConfigMap a source.
pub const MIRROR_LABEL: &str = "kube-chaos.io/mirror";
/// The finalizer the controller keeps on sources.
pub const MIRROR_FINALIZER: &str = "kube-chaos.io/mirror";

/// Why a mirror reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The key is not `namespace/name`.
    #[error("bad key {0:?}: expected namespace/name")]
    BadKey(String),
    /// An API call failed.
    #[error("api call failed")]
    Api(#[from] kube::Error),
}

impl Classify for MirrorError {
    fn class(&self) -> ErrorClass {
        match self {
            MirrorError::BadKey(_) => ErrorClass::Terminal,
            MirrorError::Api(e) => e.class(),
        }
    }
}

/// A mirror's name is its source's plus this.
pub const MIRROR_SUFFIX: &str = "-mirror";

/// The mirror's name for source `name`.
pub fn mirror_name(source: &str) -> String {
    format!("{source}{MIRROR_SUFFIX}")
}

/// Whether `cm` carries `kube-chaos.io/mirror=true`.
pub fn is_source(cm: &ConfigMap) -> bool {
    cm.labels().get(MIRROR_LABEL).is_some_and(|v| v == "true")
}

fn has_finalizer(cm: &ConfigMap) -> bool {
    cm.finalizers().iter().any(|f| f == MIRROR_FINALIZER)
}

/// The keys a ConfigMap event concerns: its own if it is (or was) a source, its owner's if
/// it is a mirror.
pub fn mirror_keys(cm: &ConfigMap) -> Vec<String> {
    let mut keys = owner_keys(cm, "ConfigMap");
    if is_source(cm) || has_finalizer(cm) {
        keys.push(object_key(cm));
    }
    keys
}

/// Reconciles source `source_key` (`namespace/name`) given its cached state (`None`: gone).
/// `api` may have any scope: the calls address the key's namespace. Every write carries the
/// resourceVersion it was computed from, so a stale cache ends in a retryable 409.
pub async fn reconcile_mirror(
    api: &Api<ConfigMap>,
    source_key: &str,
    cached: Option<&ConfigMap>,
) -> Result<Action, MirrorError> {
    let (ns, name) = source_key
        .split_once('/')
        .ok_or_else(|| MirrorError::BadKey(source_key.to_string()))?;
    let api: Api<ConfigMap> = Api::namespaced(api.clone().into_client(), ns);
    match cached {
        None => delete_mirror(&api, name, None).await?,
        Some(src) if src.metadata.deletion_timestamp.is_some() || !is_source(src) => {
            delete_mirror(&api, name, src.metadata.uid.as_deref()).await?;
            remove_finalizer(&api, src).await?;
        }
        Some(src) => {
            let src = add_finalizer(&api, src).await?;
            ensure_mirror(&api, &src).await?;
        }
    }
    Ok(Action::await_change())
}

/// Deletes `<source>-mirror` if its controller owner is `source` (with `uid`, when known).
async fn delete_mirror(
    api: &Api<ConfigMap>,
    source: &str,
    uid: Option<&str>,
) -> Result<(), kube::Error> {
    let name = mirror_name(source);
    let Some(mirror) = api.get_opt(&name).await? else {
        return Ok(());
    };
    let owned =
        controller_ref(&mirror).is_some_and(|r| r.name == source && uid.is_none_or(|u| r.uid == u));
    if owned {
        match api.delete(&name, &DeleteParams::default()).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }
    Ok(())
}

async fn remove_finalizer(api: &Api<ConfigMap>, src: &ConfigMap) -> Result<(), kube::Error> {
    if !has_finalizer(src) {
        return Ok(());
    }
    let mut next = src.clone();
    next.finalizers_mut().retain(|f| f != MIRROR_FINALIZER);
    match api
        .replace(&src.name_any(), &PostParams::default(), &next)
        .await
    {
        // Already gone (the cache was behind): nothing holds it any more.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(drop),
    }
}

/// The source with the finalizer (added if missing).
async fn add_finalizer(api: &Api<ConfigMap>, src: &ConfigMap) -> Result<ConfigMap, kube::Error> {
    if has_finalizer(src) {
        return Ok(src.clone());
    }
    let mut next = src.clone();
    next.finalizers_mut().push(MIRROR_FINALIZER.to_string());
    api.replace(&src.name_any(), &PostParams::default(), &next)
        .await
}

fn owner_ref(src: &ConfigMap) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: src.name_any(),
        uid: src.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn controller_ref(cm: &ConfigMap) -> Option<&OwnerReference> {
    cm.owner_references()
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == "ConfigMap")
}

/// Creates the mirror, or brings its data and owner reference in line.
async fn ensure_mirror(api: &Api<ConfigMap>, src: &ConfigMap) -> Result<(), kube::Error> {
    let owner = owner_ref(src);
    let name = mirror_name(&src.name_any());
    match api.get_opt(&name).await? {
        None => {
            let mirror = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name),
                    owner_references: Some(vec![owner]),
                    ..Default::default()
                },
                data: src.data.clone(),
                ..Default::default()
            };
            api.create(&PostParams::default(), &mirror).await?;
        }
        Some(m) if m.data != src.data || controller_ref(&m) != Some(&owner) => {
            let mut next = m.clone();
            next.data = src.data.clone();
            next.metadata.owner_references = Some(vec![owner]);
            api.replace(&name, &PostParams::default(), &next).await?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// The controller's context: where to write, and the informer's cache to read sources from.
struct Context {
    api: Api<ConfigMap>,
    informer: Informer<ConfigMap>,
}

/// The mirror controller on our runtime: reconciles read sources from `informer`'s cache
/// (which should cover every ConfigMap the sources and mirrors live among), write through
/// `api`. Call `run` on the informer and the controller.
pub fn mirror_controller(
    builder: ControllerBuilder,
    api: Api<ConfigMap>,
    informer: &Informer<ConfigMap>,
) -> Result<Controller, ConfigError> {
    let ctx = Arc::new(Context {
        api,
        informer: informer.clone(),
    });
    let controller = builder.build(ctx, |key: String, ctx: Arc<Context>| async move {
        let cached = ctx.informer.store().get(&key);
        reconcile_mirror(&ctx.api, &key, cached.as_deref()).await
    })?;
    controller.watch_mapped(informer, mirror_keys);
    Ok(controller)
}

/// One ConfigMap as the checker sees it.
struct Cm<'a> {
    key: String,
    v: &'a Value,
}

impl Cm<'_> {
    fn meta(&self, field: &str) -> &Value {
        &self.v["metadata"][field]
    }
    fn labelled(&self) -> bool {
        self.meta("labels")[MIRROR_LABEL] == "true"
    }
    fn deleting(&self) -> bool {
        !self.meta("deletionTimestamp").is_null()
    }
    fn finalized(&self) -> bool {
        let f = self.meta("finalizers").as_array();
        f.is_some_and(|f| f.iter().any(|x| x == MIRROR_FINALIZER))
    }
    fn data(&self) -> Value {
        match &self.v["data"] {
            Value::Null => Value::Object(Default::default()),
            d => d.clone(),
        }
    }
    /// The uid of its controller owner of kind ConfigMap.
    fn owner_uid(&self) -> Option<&str> {
        let refs = self.meta("ownerReferences").as_array()?;
        refs.iter()
            .find(|r| r["controller"] == true && r["kind"] == "ConfigMap")
            .and_then(|r| r["uid"].as_str())
    }
}

/// Whether the server's ConfigMaps satisfy the mirror contract; else each unmet condition,
/// sorted: a live source without finalizer, mirror, equal data or ownership; a deleted
/// source still held by the finalizer; a finalizer on an unlabelled ConfigMap; a mirror
/// whose source is gone, unlabelled or being deleted.
pub fn mirror_converged<V: Borrow<Value>>(objects: &[V]) -> Result<(), Vec<String>> {
    let cms: BTreeMap<String, Cm> = objects
        .iter()
        .map(|o| {
            let v = o.borrow();
            let m = &v["metadata"];
            let ns = m["namespace"].as_str().unwrap_or_default();
            let key = format!("{ns}/{}", m["name"].as_str().unwrap_or_default());
            (key.clone(), Cm { key, v })
        })
        .collect();
    let mut problems: Vec<String> = cms.values().flat_map(|cm| check(cm, &cms)).collect();
    problems.sort();
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems),
    }
}

fn check(cm: &Cm, all: &BTreeMap<String, Cm>) -> Vec<String> {
    let k = &cm.key;
    let mut out = Vec::new();
    match (cm.labelled(), cm.deleting(), cm.finalized()) {
        (_, true, true) => out.push(format!("{k}: deleted but its finalizer was not removed")),
        (false, false, true) => out.push(format!("{k}: finalizer on an unlabelled ConfigMap")),
        (true, false, fin) => {
            if !fin {
                out.push(format!("{k}: live source without the finalizer"));
            }
            out.extend(check_mirror(cm, all));
        }
        _ => {}
    }
    if let Some(uid) = cm.owner_uid() {
        let source = all.values().find(|s| s.meta("uid") == uid);
        if !source.is_some_and(|s| s.labelled() && !s.deleting()) {
            out.push(format!(
                "{k}: orphan mirror (its source is gone or no longer mirrored)"
            ));
        }
    }
    out
}

fn check_mirror(src: &Cm, all: &BTreeMap<String, Cm>) -> Vec<String> {
    let k = &src.key;
    let mirror_key = mirror_name(k);
    let Some(m) = all.get(&mirror_key) else {
        return vec![format!("{k}: missing mirror {mirror_key}")];
    };
    let mut out = Vec::new();
    if m.data() != src.data() {
        out.push(format!("{k}: mirror data differs"));
    }
    if m.owner_uid() != src.meta("uid").as_str() {
        out.push(format!("{k}: mirror not owned by the source"));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cm(name: &str, uid: &str, extra: Value) -> Value {
        let mut v =
            json!({"metadata": {"name": name, "namespace": "ns", "uid": uid}, "data": {"k": "v"}});
        json_merge(&mut v, extra);
        v
    }

    fn json_merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    json_merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn source(name: &str, uid: &str) -> Value {
        cm(
            name,
            uid,
            json!({"metadata": {"labels": {MIRROR_LABEL: "true"}, "finalizers": [MIRROR_FINALIZER]}}),
        )
    }

    fn mirror(name: &str, owner_uid: &str) -> Value {
        cm(
            name,
            "m",
            json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": owner_uid, "controller": true}]}}),
        )
    }

    #[test]
    fn converged_state_passes_and_each_broken_condition_is_named() {
        // A good pair passes; then one defect at a time yields exactly its message.
        let good = [
            source("a", "1"),
            mirror("a-mirror", "1"),
            cm("plain", "2", json!({})),
        ];
        assert_eq!(mirror_converged(&good), Ok(()));
        let stale = {
            let mut m = mirror("a-mirror", "1");
            m["data"]["k"] = "old".into();
            m
        };
        let cases: [(Vec<Value>, &str); 5] = [
            (vec![source("a", "1")], "ns/a: missing mirror ns/a-mirror"),
            (vec![source("a", "1"), stale], "ns/a: mirror data differs"),
            (
                vec![mirror("a-mirror", "1")],
                "ns/a-mirror: orphan mirror (its source is gone or no longer mirrored)",
            ),
            (
                vec![cm(
                    "a",
                    "1",
                    json!({"metadata": {"finalizers": [MIRROR_FINALIZER]}}),
                )],
                "ns/a: finalizer on an unlabelled ConfigMap",
            ),
            (
                vec![
                    cm(
                        "a",
                        "1",
                        json!({"metadata": {"labels": {MIRROR_LABEL: "true"}}}),
                    ),
                    mirror("a-mirror", "1"),
                ],
                "ns/a: live source without the finalizer",
            ),
        ];
        for (objects, want) in cases {
            assert_eq!(mirror_converged(&objects), Err(vec![want.to_string()]));
        }
        let mut deleting = source("a", "1");
        deleting["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z".into();
        let got = mirror_converged(&[deleting, mirror("a-mirror", "1")]).unwrap_err();
        assert_eq!(
            got,
            [
                "ns/a-mirror: orphan mirror (its source is gone or no longer mirrored)",
                "ns/a: deleted but its finalizer was not removed"
            ]
        );
    }

    #[test]
    fn events_map_to_the_source_key() {
        // A source maps to itself, a mirror to its owner, anything else to nothing.
        let parse = |v: Value| serde_json::from_value::<ConfigMap>(v).unwrap();
        assert_eq!(mirror_keys(&parse(source("a", "1"))), ["ns/a"]);
        assert_eq!(mirror_keys(&parse(mirror("a-mirror", "1"))), ["ns/x"]);
        assert!(mirror_keys(&parse(cm("plain", "2", json!({})))).is_empty());
    }
}
