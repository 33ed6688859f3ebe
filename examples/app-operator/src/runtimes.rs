//! The same reconcile on two runtimes: kube-runtime's `Controller` ([`run`]) and
//! kube-chaos's informer, workqueue and controller ([`run_ours`]). Both watch Apps and the
//! ConfigMaps and Secrets they own, retry errors after 500 ms doubling to 30 s, reconcile
//! every App again after [`RESYNC`], and stop when `shutdown` completes.

use std::future::Future;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};
use kube_chaos::controller as ours;
use kube_chaos::informer::{Informer, InformerConfig};
use kube_chaos::workqueue::ExponentialFailure;

use crate::app::App;
use crate::error::Error;
use crate::reconcile::{key_of, reconcile, Ctx, BACKOFF_BASE, BACKOFF_MAX, RESYNC};
use crate::variant::Variant;

/// Runs the operator on kube-runtime's `Controller` until `shutdown` completes (then lets
/// the reconciles in flight finish).
pub async fn run(
    client: Client,
    variant: Variant,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let ctx = Arc::new(Ctx::new(client.clone(), variant));
    // `graceful_shutdown_on` wants a `Sync` future; a shared one is.
    let shutdown = shutdown.boxed().shared();
    Controller::new(Api::<App>::all(client.clone()), watcher::Config::default())
        .owns(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
        )
        .owns(Api::<Secret>::all(client), watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile_counted, error_policy, ctx)
        .for_each(|res| {
            match res {
                Ok((app, _)) => tracing::debug!(%app, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile did not succeed"),
            }
            futures::future::ready(())
        })
        .await;
    tracing::info!(variant = variant.name(), "app-operator stopped");
}

/// [`reconcile`], resetting the App's backoff when it succeeds.
async fn reconcile_counted(app: Arc<App>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let key = key_of(&app);
    let res = reconcile(app, ctx.clone()).await;
    if res.is_ok() {
        ctx.succeeded(&key);
    }
    res
}

/// Every error is retried, 500 ms doubling to 30 s per App.
fn error_policy(app: Arc<App>, error: &Error, ctx: Arc<Ctx>) -> Action {
    let key = key_of(&app);
    let delay = ctx.failed(&key);
    tracing::warn!(app = %key, %error, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// Runs the operator on kube-chaos's runtime until `shutdown` completes (then drains the
/// queue within the controller's deadline).
pub async fn run_ours(
    client: Client,
    variant: Variant,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let ctx = Arc::new(Ctx::new(client.clone(), variant));
    let apps = Informer::new(Api::<App>::all(client.clone()), InformerConfig::default());
    let configmaps = Informer::new(
        Api::<ConfigMap>::all(client.clone()),
        InformerConfig::default(),
    );
    let secrets = Informer::new(Api::<Secret>::all(client), InformerConfig::default());
    let config = ours::ControllerConfig {
        name: "app-operator".into(),
        max_retries: ours::MAX_RETRIES,
        ..ours::ControllerConfig::default()
    };
    let limiter = ExponentialFailure::new(BACKOFF_BASE, BACKOFF_MAX).expect("a valid backoff");
    let store = apps.store();
    let controller = ours::Controller::builder(config)
        .rate_limiter(limiter)
        .build(ctx, move |key, ctx| {
            let app = store.get(&key);
            async move {
                match app {
                    // Deleted: its finalizer has already run.
                    None => Ok(ours::Action::await_change()),
                    Some(app) => reconcile(app, ctx)
                        .await
                        .map(|_| ours::Action::requeue_after(RESYNC)),
                }
            }
        })
        .expect("a valid controller configuration");
    controller.watch(&apps);
    controller.watch_owned(&configmaps, "App");
    controller.watch_owned(&secrets, "App");
    let stop = async {
        shutdown.await;
        controller.shutdown();
    };
    let work = async {
        let (report, ()) = futures::join!(controller.run(), stop);
        tracing::info!(variant = variant.name(), ?report, "app-operator stopped");
        apps.stop();
        configmaps.stop();
        secrets.stop();
    };
    futures::join!(apps.run(), configmaps.run(), secrets.run(), work);
}
