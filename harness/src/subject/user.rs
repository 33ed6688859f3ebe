//! A user's own controller as a subject: how to start it (their `main` minus the config
//! loading), the condition that must hold once the system is quiet, and what the generic
//! checkers need to know about it (which children are unique per owner, which fields are
//! volatile, what a generated workload may create and change).
//!
//! The harness knows nothing of the controller's internals: it gives each incarnation a real
//! `kube::Client` and a [`Shutdown`] trigger, records a panic of any task on the controller's
//! host (a panic hook scoped to the run's thread) and an exit before the trigger, and judges
//! the rest from what the server saw.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use super::Ctx;
use crate::apiserver::ApiServer;
use crate::trace::{Record, Recorder};

/// Starts one incarnation of the controller.
pub type StartFn = Arc<dyn Fn(kube::Client, Shutdown) -> BoxFuture<'static, ()> + Send + Sync>;

/// The condition that must hold once the system is quiet: `Err` says what is wrong.
pub type ConditionFn = Arc<dyn Fn(&ClusterView<'_>) -> Result<(), String> + Send + Sync>;

/// A kind, by apiVersion and kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeRef {
    /// e.g. `v1`, `example.com/v1`.
    pub api_version: String,
    /// e.g. `ConfigMap`.
    pub kind: String,
}

impl TypeRef {
    /// The kind of `K`.
    pub fn of<K: Resource<DynamicType = ()>>() -> Self {
        Self {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
        }
    }

    /// Whether `obj` is of this kind.
    pub fn matches(&self, obj: &Value) -> bool {
        obj["apiVersion"] == self.api_version.as_str() && obj["kind"] == self.kind.as_str()
    }
}

/// What a generated workload may do with the user's objects.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// Objects the workload creates (and later changes or deletes).
    pub objects: Vec<Value>,
    /// Merge patches a workload applies to one of them.
    pub patches: Vec<Value>,
}

/// A user's controller, as the runner and the checkers see it.
pub struct UserSubject {
    /// Starts one incarnation.
    pub start: StartFn,
    /// Holds once the system is quiet (`eventually_stable`); none: no such checker.
    pub condition: Option<ConditionFn>,
    /// Child kinds of which an owner may have at most one live object.
    pub unique_children: Vec<TypeRef>,
    /// JSON pointers (`/status/lastSync`) ignored by `differential`, besides the volatile
    /// metadata every object has.
    pub volatile: Vec<String>,
    /// What generated workloads create and change.
    pub templates: Templates,
    /// CRDs (apiextensions.k8s.io/v1 manifests) the cluster serves.
    pub crds: Vec<Value>,
    /// The read timeout its production client is configured with (`kube::Config::
    /// read_timeout`; kube's default is none).
    pub read_timeout: Option<std::time::Duration>,
}

impl std::fmt::Debug for UserSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSubject")
            .field("unique_children", &self.unique_children)
            .field("volatile", &self.volatile)
            .finish_non_exhaustive()
    }
}

/// The cluster's objects, read consistently from the store, for a user's condition.
pub struct ClusterView<'a> {
    server: &'a ApiServer,
}

impl<'a> ClusterView<'a> {
    /// A view of `server`'s store.
    pub fn new(server: &'a ApiServer) -> Self {
        Self { server }
    }

    /// Every live object of kind `K`, in every namespace, in store order.
    ///
    /// # Panics
    /// If a stored object does not decode as `K` (the condition's type does not match the
    /// CRD it installed): the run stops with that message rather than judging a partial list.
    pub fn list<K: Resource<DynamicType = ()> + DeserializeOwned>(&self) -> Vec<K> {
        let t = TypeRef::of::<K>();
        self.objects(&t.api_version, &t.kind)
            .iter()
            .map(|o| match serde_json::from_value((**o).clone()) {
                Ok(k) => k,
                Err(e) => panic!(
                    "{} {}/{} does not decode as {}: {e}",
                    t.kind,
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or(""),
                    std::any::type_name::<K>()
                ),
            })
            .collect()
    }

    /// Every live object of a kind, as JSON.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Arc<Value>> {
        self.server.objects(api_version, kind)
    }
}

/// The shutdown trigger a controller's `main` waits on instead of `tokio::signal` (which a
/// simulated host cannot receive): it resolves when the run ends, so a graceful shutdown
/// path runs too. Pass it to kube-runtime's `Controller::graceful_shutdown_on`.
pub struct Shutdown {
    fut: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
}

impl Shutdown {
    /// A trigger and the sender that fires it.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, mut rx) = watch::channel(false);
        let fut = Box::pin(async move {
            let _ = rx.wait_for(|fired| *fired).await;
        });
        (tx, Shutdown { fut })
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shutdown")
    }
}

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.fut.as_mut().poll(cx)
    }
}

/// Runs one incarnation of the user's controller: records a panic of its main task and an
/// exit before the shutdown trigger fired.
pub(crate) async fn run(ctx: Ctx, user: &'static UserSubject, shutdown: Shutdown) {
    let task = tokio::spawn((user.start)(ctx.client.clone(), shutdown));
    let record = match task.await {
        Err(e) if e.is_panic() => None, // the panic hook recorded it, with its message
        Err(_) => return,
        Ok(()) => Some(Record::Exited {
            early: !ctx.controls.shutdown_requested(),
        }),
    };
    if let Some(r) = record {
        ctx.recorder.record(Some(ctx.instance), r);
    }
}

thread_local! {
    /// Where a panic on this thread is recorded (set for the length of a user subject's run).
    static PANICS: RefCell<Option<(Recorder, usize)>> = const { RefCell::new(None) };
}

/// Records every panic on this thread in `recorder` (as instance `instance`) until the guard
/// is dropped; the previous panic hook still runs.
pub(crate) fn record_panics(recorder: &Recorder, instance: usize) -> PanicGuard {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let sink = PANICS.with(|p| p.borrow().clone());
            if let Some((recorder, instance)) = sink {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".into());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                recorder.record(Some(instance), Record::Panic(format!("{message}{at}")));
            }
            previous(info)
        }));
    });
    PANICS.with(|p| *p.borrow_mut() = Some((recorder.clone(), instance)));
    PanicGuard(())
}

/// Stops recording panics on this thread when dropped.
pub(crate) struct PanicGuard(());

impl Drop for PanicGuard {
    fn drop(&mut self) {
        PANICS.with(|p| *p.borrow_mut() = None);
    }
}
