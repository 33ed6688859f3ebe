//! The controller subjects: the `mirror` controller on our runtime, and the same reconcile
//! run by kube-runtime's `Controller`. Both consult the runner's [`Controls`] (slow
//! reconciles, injected errors) and record every reconcile's start and end.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{watcher, Controller as RuntimeController};
use kube::Api;
use kube_chaos::backoff::Backoff;
use kube_chaos::controller::{
    Action, Classify, Controller, ControllerConfig, ControllerObserver, DeadLetter, ErrorClass,
    Outcome,
};
use kube_chaos::informer::{Informer, InformerConfig};

use super::feed::{feed_handler, Feed};
use super::Controls;
use super::{key_of, Ctx};
use crate::mirror::{reconcile_mirror, MirrorError, MIRROR_LABEL};
use crate::scenario;
use crate::trace::{self, Record, Recorder};

/// A reconcile failure: injected by a fault, or the mirror's own.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// Injected by a `reconcile_errors` fault (its text is `ErrorClass::injected_message`).
    #[error("{}", .0.injected_message())]
    Injected(scenario::ErrorClass),
    /// The mirror reconcile failed.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
}

impl Classify for SubjectError {
    fn class(&self) -> ErrorClass {
        match self {
            SubjectError::Injected(scenario::ErrorClass::Retryable) => ErrorClass::Retryable,
            SubjectError::Injected(scenario::ErrorClass::Terminal) => ErrorClass::Terminal,
            SubjectError::Mirror(e) => e.class(),
        }
    }
}

/// Applies the runner's controller faults to one reconcile of `key`.
async fn faults(controls: &Controls, key: &str) -> Result<(), SubjectError> {
    let delay = controls.reconcile_delay(key);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match controls.take_error(key) {
        Some(class) => Err(SubjectError::Injected(class)),
        None => Ok(()),
    }
}

/// The text of the subject's terminal error (what the runtime reports it by).
fn terminal_message() -> String {
    SubjectError::Injected(scenario::ErrorClass::Terminal).to_string()
}

/// Records reconciles into the run's trace.
struct Observer {
    recorder: Recorder,
    instance: usize,
}

impl Observer {
    fn end(&self, key: &str, outcome: trace::Outcome) {
        let name = match outcome {
            trace::Outcome::Retry(_) | trace::Outcome::RetriedTerminal(_) => "retries",
            trace::Outcome::DeadLetter(_) => "dead_letters",
            _ => "",
        };
        if !name.is_empty() {
            self.recorder.count(name, 1);
        }
        let key = key.to_string();
        self.recorder
            .record(Some(self.instance), Record::ReconcileEnd { key, outcome });
    }
}

impl ControllerObserver for Observer {
    fn reconcile_started(&self, key: &str) {
        self.recorder.count("reconciles", 1);
        self.recorder.record(
            Some(self.instance),
            Record::ReconcileStart {
                key: key.to_string(),
            },
        );
    }

    fn reconcile_finished(&self, key: &str, outcome: &Outcome) {
        let outcome = match outcome {
            Outcome::Ok => trace::Outcome::Ok,
            Outcome::RequeueAfter(d) => trace::Outcome::Requeue(*d),
            // The subject knows its own terminal errors: the runtime must not retry them.
            Outcome::RetryableError { error, .. } if *error == terminal_message() => {
                trace::Outcome::RetriedTerminal(error.clone())
            }
            Outcome::RetryableError { error, .. } => trace::Outcome::Retry(error.clone()),
            Outcome::TerminalError { error } | Outcome::DeadLettered { error, .. } => {
                trace::Outcome::DeadLetter(error.clone())
            }
        };
        self.end(key, outcome);
    }

    fn dead_lettered(&self, _key: &str, _letter: &DeadLetter) {}
}

struct MirrorCtx {
    api: Api<ConfigMap>,
    informer: Informer<ConfigMap>,
    controls: Controls,
}

/// `controller` (and `delayed-controller`): an informer on ConfigMaps feeding the mirror
/// controller.
pub(super) async fn ours(ctx: Ctx, feed: Feed) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "default");
    let informer = Informer::new(
        api.clone(),
        InformerConfig {
            min_watch_timeout: ctx.config.min_watch_timeout.0,
            seed: Some(ctx.seed),
            ..InformerConfig::default()
        },
    );
    let config = ControllerConfig {
        name: "mirror".into(),
        concurrency: ctx.config.workers,
        max_retries: ctx.config.max_retries,
        reconcile_timeout: Duration::from_secs(30),
        zoo: ctx.zoo,
        ..ControllerConfig::default()
    };
    let observer = Arc::new(Observer {
        recorder: ctx.recorder.clone(),
        instance: ctx.instance,
    });
    let mctx = Arc::new(MirrorCtx {
        api,
        informer: informer.clone(),
        controls: ctx.controls.clone(),
    });
    let controller = Controller::builder(config)
        .observer(observer)
        .build(mctx, |key: String, c: Arc<MirrorCtx>| async move {
            faults(&c.controls, &key).await?;
            let cached = c.informer.store().get(&key);
            Ok::<_, SubjectError>(reconcile_mirror(&c.api, &key, cached.as_deref()).await?)
        })
        .expect("validated controller config");
    // What the controller's informer delivers goes into the trace too: the checkers tell a
    // legitimate re-reconcile (an event arrived) from a broken one by it.
    informer.add_handler(super::informer::recording_handler(&ctx));
    // `Immediate` is the runtime's `watch_mapped(mirror_keys)`, but its work goes through
    // the slow lane of a `slow_handler` fault.
    informer.add_handler(feed_handler(&ctx, controller.queue(), feed));
    let i = informer.clone();
    tokio::spawn(async move { i.run().await });
    let _ = controller.run().await;
    std::future::pending::<()>().await;
}

struct RuntimeCtx {
    api: Api<ConfigMap>,
    controls: Controls,
    observer: Observer,
}

fn api_of(c: &RuntimeCtx) -> Api<ConfigMap> {
    c.api.clone()
}

async fn runtime_reconcile(
    cm: Arc<ConfigMap>,
    c: Arc<RuntimeCtx>,
) -> Result<kube::runtime::controller::Action, SubjectError> {
    let key = key_of(cm.as_ref());
    c.observer.reconcile_started(&key);
    let result = async {
        faults(&c.controls, &key).await?;
        Ok::<_, SubjectError>(reconcile_mirror(&c.api, &key, Some(&cm)).await?)
    }
    .await;
    match &result {
        Ok(_) => c.observer.end(&key, trace::Outcome::Ok),
        Err(e) => c.observer.end(&key, trace::Outcome::Retry(e.to_string())),
    }
    result.map(|_: Action| kube::runtime::controller::Action::await_change())
}

/// `kube-runtime-controller`: kube-runtime's Controller (seeded backoffs) running the mirror
/// reconcile; errors requeue after 5 s (its error policy), there is no dead letter.
pub(super) async fn kube_runtime(ctx: Ctx) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "default");
    let timeout = u32::try_from(ctx.config.watch_timeout.0.as_secs()).unwrap_or(u32::MAX);
    let observer = Observer {
        recorder: ctx.recorder.clone(),
        instance: ctx.instance,
    };
    let rctx = Arc::new(RuntimeCtx {
        api,
        controls: ctx.controls.clone(),
        observer,
    });
    let config =
        kube::runtime::controller::Config::default().concurrency(ctx.config.workers as u16);
    // The trigger backoff replaces kube-runtime's default, whose jitter reads the wall clock.
    // kube-runtime's scheduler keeps pending keys in a std hash set: its order comes from
    // std's RandomState, which the runner seeds from the scenario (kube-chaos-norandom), so
    // many keys may be pending at once (the fixture has 20).
    let wc = watcher::Config::default()
        .timeout(timeout)
        .labels(&format!("{MIRROR_LABEL}=true"));
    RuntimeController::new(api_of(&rctx), wc)
        .with_config(config)
        .trigger_backoff(Backoff::reflector(Some(ctx.seed)))
        .run(
            runtime_reconcile,
            |_, _, _| kube::runtime::controller::Action::requeue(Duration::from_secs(5)),
            rctx,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
    std::future::pending::<()>().await;
}
