//! The reconcile both runtimes run: the finalizer first (`kube_runtime::finalizer`), then
//! for a live App its registry key, its ConfigMap and Secret (server-side apply under fixed
//! names, owned by the App) and its status; for a deleted App the registry key's removal.
//! The variants' branches are marked `Variant::` and kept next to the code they change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::app::App;
use crate::error::Error;
use crate::registry;
use crate::variant::Variant;

/// The finalizer that holds a deleted App until its registry key is gone.
pub const FINALIZER: &str = "example.kube-chaos.dev/cleanup";
/// The field manager of the operator's server-side applies.
pub const MANAGER: &str = "app-operator";
/// The label naming a child's App.
pub const APP_LABEL: &str = "example.kube-chaos.dev/app";
/// A reconciled App is reconciled again after this even if nothing changes.
///
/// Not only a safety net: exploring this operator found a child deleted at the instant the
/// apiserver expired every watch that stayed gone for the whole 150 s settle with a 300 s
/// resync, while kube-runtime's watchers relisted (a relist reports the children that exist,
/// no delete for the one that went). The exact path is not pinned down yet: a smaller
/// operator with one owned kind recovers from the same schedule at once.
pub const RESYNC: Duration = Duration::from_secs(60);
/// The first retry after an error; it doubles per consecutive error of the same App.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// The longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The name of an App's ConfigMap and Secret.
pub fn child_name(app: &str) -> String {
    format!("app-{app}")
}

/// What every reconcile shares: the client, the variant, and per-App memory.
pub struct Ctx {
    pub(crate) client: Client,
    pub(crate) variant: Variant,
    /// `Variant::InMemoryState`: the generation last applied, by App uid.
    applied: Mutex<BTreeMap<String, i64>>,
    /// Consecutive errors by App key, for the error policy's backoff.
    failures: Mutex<BTreeMap<String, u32>>,
}

impl Ctx {
    /// A context for `variant` with nothing remembered.
    pub fn new(client: Client, variant: Variant) -> Self {
        Self {
            client,
            variant,
            applied: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// The delay before the next attempt of `key` after one more error (doubling, capped).
    pub(crate) fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("failures lock");
        let n = failures.entry(key.to_string()).or_default();
        *n = n.saturating_add(1);
        BACKOFF_BASE
            .saturating_mul(1 << (*n - 1).min(16))
            .min(BACKOFF_MAX)
    }

    /// Forgets `key`'s errors after a successful reconcile.
    pub(crate) fn succeeded(&self, key: &str) {
        self.failures.lock().expect("failures lock").remove(key);
    }
}

/// `namespace/name` of an App.
pub(crate) fn key_of(app: &App) -> String {
    format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any())
}

/// Reconciles one App: the finalizer's bookkeeping, then (live) its registry key, children
/// and status, or (deleted) the removal of its registry key.
pub async fn reconcile(app: Arc<App>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = app
        .namespace()
        .ok_or_else(|| Error::Unidentified(key_of(&app)))?;
    let apps: Api<App> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&apps, FINALIZER, app, |event| async {
        match event {
            Event::Apply(app) => apply(&app, &ctx).await,
            Event::Cleanup(app) => cleanup(&app, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// A live App: its registry key, its children, its status.
async fn apply(app: &App, ctx: &Ctx) -> Result<Action, Error> {
    registry::register(app, ctx).await?;
    let uid = app.uid().unwrap_or_default();
    let generation = app.metadata.generation.unwrap_or_default();
    let remembered = ctx.applied.lock().expect("applied lock").get(&uid) == Some(&generation);
    if ctx.variant == Variant::InMemoryState && remembered {
        tracing::debug!(app = %key_of(app), generation, "children already applied (remembered)");
    } else {
        configmap(app, ctx).await?;
        secret(app, ctx).await?;
        ctx.applied
            .lock()
            .expect("applied lock")
            .insert(uid, generation);
    }
    let apps: Api<App> = Api::namespaced(ctx.client.clone(), &namespace(app)?);
    let status = json!({"status": {"ready": true, "observedGeneration": generation}});
    apps.patch_status(
        &app.name_any(),
        &PatchParams::default(),
        &Patch::Merge(status),
    )
    .await?;
    Ok(Action::requeue(RESYNC))
}

/// A deleted App: its registry key goes, then (in `reconcile`) the finalizer.
async fn cleanup(app: &App, ctx: &Ctx) -> Result<Action, Error> {
    if ctx.variant == Variant::FinalizerBeforeCleanup {
        // The bug: the App may vanish right here, before its key is gone.
        let apps: Api<App> = Api::namespaced(ctx.client.clone(), &namespace(app)?);
        let rest: Vec<&String> = app
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .collect();
        let patch = json!({"metadata": {"finalizers": rest}});
        apps.patch(
            &app.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    }
    registry::deregister(app, ctx).await?;
    Ok(Action::await_change())
}

fn namespace(app: &App) -> Result<String, Error> {
    app.namespace()
        .ok_or_else(|| Error::Unidentified(key_of(app)))
}

/// Metadata of a child named `name`: labelled with the App, controlled by it.
fn child_meta(app: &App, name: Option<String>) -> Result<ObjectMeta, Error> {
    let owner = app
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Unidentified(key_of(app)))?;
    Ok(ObjectMeta {
        name,
        namespace: app.namespace(),
        labels: Some(BTreeMap::from([(APP_LABEL.into(), app.name_any())])),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    })
}

/// The App's ConfigMap, `app-<name>`, by server-side apply.
async fn configmap(app: &App, ctx: &Ctx) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace(app)?);
    let mut name = child_name(&app.name_any());
    if ctx.variant == Variant::DuplicateChild {
        // The bug: a cached list decides whether the child exists.
        let selector = format!("{APP_LABEL}={}", app.name_any());
        let cached = api
            .list(&ListParams::default().labels(&selector).match_any())
            .await?;
        let mine = cached.items.into_iter().find(|c| {
            c.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == app.uid().as_ref())
        });
        match mine {
            Some(existing) => name = existing.name_any(),
            None => {
                let mut cm = desired_configmap(app, None)?;
                cm.metadata.generate_name = Some(format!("{name}-"));
                api.create(&PostParams::default(), &cm).await?;
                return Ok(());
            }
        }
    }
    let cm = desired_configmap(app, Some(name.clone()))?;
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

fn desired_configmap(app: &App, name: Option<String>) -> Result<ConfigMap, Error> {
    Ok(ConfigMap {
        metadata: child_meta(app, name)?,
        data: Some(app.spec.data.clone()),
        ..ConfigMap::default()
    })
}

/// The App's Secret, `app-<name>`, by server-side apply (`data`, base64 on the wire).
async fn secret(app: &App, ctx: &Ctx) -> Result<(), Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace(app)?);
    let name = child_name(&app.name_any());
    let data = app
        .spec
        .secret
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
        .collect();
    let secret = Secret {
        metadata: child_meta(app, Some(name.clone()))?,
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Secret::default()
    };
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&secret),
    )
    .await?;
    Ok(())
}
