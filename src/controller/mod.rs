//! Controller: a pool of workers reconciling keys from a [`WorkQueue`], fed by informers.
//!
//! - [`Controller`] (this file): build with [`Controller::builder`], feed with
//!   [`Controller::watch`] / [`Controller::watch_owned`] / [`Controller::watch_mapped`]
//!   (`wiring.rs`), run with [`Controller::run`], stop with [`Controller::shutdown`].
//! - `reconcile(key, ctx) -> Result<`[`Action`]`, E>`; `E:` [`Classify`] says
//!   [`ErrorClass::Retryable`] (rate-limited requeue until `max_retries`, then a
//!   [`DeadLetter`]) or [`ErrorClass::Terminal`] (dead letter at once). A panic is terminal.
//! - [`ControllerConfig`] (`config.rs`): concurrency, `max_retries`, drain deadline, ...;
//!   bad values are a [`ConfigError`].
//! - [`ControllerObserver`] (`observer.rs`): sees each reconcile start and end with its
//!   [`Outcome`], and each dead letter — the harness records reconciles through it.
//! - Health (`health.rs`): [`Controller::readiness`] (caches synced) and
//!   [`Controller::liveness`] (workers alive, watches not failing beyond a grace period).
//! - Metrics (`metrics.rs`): reconcile count, duration, errors by class, dead letters, and the
//!   queue's `workqueue_*` series, in the controller's own registry ([`Controller::metrics_text`]);
//!   with the `axum` feature, [`router`] serves `/metrics`, `/healthz`, `/readyz`.
//!
//! Shutdown stops intake, lets workers finish what is queued and in flight until the drain
//! deadline, then abandons the rest (reported in [`ShutdownReport`]).
//!
//! ```no_run
//! # async fn demo(api: kube::Api<k8s_openapi::api::core::v1::ConfigMap>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use kube_chaos::controller::{Action, Controller, ControllerConfig};
//! use kube_chaos::informer::{Informer, InformerConfig};
//!
//! let informer = Informer::new(api, InformerConfig::default());
//! let config = ControllerConfig { name: "demo".into(), concurrency: 4, ..Default::default() };
//! let controller = Controller::builder(config).build(Arc::new(()), |key, _ctx| async move {
//!     println!("reconcile {key}");
//!     Ok::<_, kube::Error>(Action::await_change())
//! })?;
//! controller.watch(&informer);
//! tokio::spawn({ let i = informer.clone(); async move { i.run().await } });
//! let run = tokio::spawn({ let c = controller.clone(); async move { c.run().await } });
//! // ... later:
//! controller.shutdown();
//! let report = run.await??;
//! println!("drained: {}", report.drained);
//! informer.stop();
//! # Ok(()) }
//! ```

mod action;
mod config;
mod dead_letter;
mod error;
mod health;
#[cfg(feature = "axum")]
mod http;
mod metrics;
mod observer;
mod wiring;
mod worker;

use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use futures::FutureExt;
use prometheus_client::registry::Registry;
use tokio::task::JoinSet;

pub use action::Action;
pub use config::{ConfigError, ControllerConfig, MAX_CONCURRENCY, MAX_RETRIES};
pub use dead_letter::DeadLetter;
pub use error::{Classify, ErrorClass};
#[cfg(feature = "axum")]
pub use http::router;
pub use observer::{ControllerObserver, Outcome};
pub use wiring::owner_keys;

use crate::stop::StopHandle;
use crate::workqueue::{RateLimiter, WorkQueue, WorkQueueMetrics};
use dead_letter::DeadLetters;
use error::Failure;
use health::{Phase, Source};
use metrics::ControllerMetrics;

type ReconcileFn = Arc<dyn Fn(String) -> BoxFuture<'static, Result<Action, Failure>> + Send + Sync>;

pub(crate) struct Shared {
    config: ControllerConfig,
    queue: WorkQueue<String>,
    reconcile: ReconcileFn,
    observer: Option<Arc<dyn ControllerObserver>>,
    dead_letters: Mutex<DeadLetters>,
    metrics: ControllerMetrics,
    registry: Registry,
    sources: Mutex<Vec<Source>>,
    workers_alive: AtomicUsize,
    phase: AtomicU8,
    stop: StopHandle,
}

impl Shared {
    fn dead_letters(&self) -> MutexGuard<'_, DeadLetters> {
        self.dead_letters.lock().expect("dead letters lock")
    }
}

/// A controller (cheap to clone; clones share everything).
#[derive(Clone)]
pub struct Controller {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.shared.config.name)
            .finish()
    }
}

/// How a controller's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Everything queued and in flight finished within the drain deadline.
    pub drained: bool,
    /// Keys in flight when the deadline passed (their reconciles were dropped).
    pub abandoned: Vec<String>,
    /// Keys still queued, never started, when the deadline passed.
    pub never_started: usize,
}

/// Why `run` refused to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// A controller runs once; build a new one to run again.
    #[error("controller {0:?} has already been run")]
    AlreadyRun(String),
}

/// Builds a [`Controller`]: configuration, rate limiter, observer, then the reconcile function.
pub struct ControllerBuilder {
    config: ControllerConfig,
    limiter: Option<Box<dyn RateLimiter<String>>>,
    observer: Option<Arc<dyn ControllerObserver>>,
}

impl ControllerBuilder {
    /// The queue's rate limiter for retries (default: client-go's controller limiter).
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<String>) -> Self {
        self.limiter = Some(Box::new(limiter));
        self
    }

    /// Tells `observer` about every reconcile.
    pub fn observer(mut self, observer: Arc<dyn ControllerObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The controller, reconciling with `reconcile(key, ctx)`; fails on a bad configuration.
    pub fn build<C, E, F, Fut>(self, ctx: Arc<C>, reconcile: F) -> Result<Controller, ConfigError>
    where
        C: Send + Sync + 'static,
        E: Classify + std::error::Error + Send + 'static,
        F: Fn(String, Arc<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        self.config.validate()?;
        let reconcile: ReconcileFn = Arc::new(move |key| {
            let fut = reconcile(key, ctx.clone());
            async move { fut.await.map_err(|e| Failure::from_error(&e)) }.boxed()
        });
        let mut registry = Registry::default();
        let queue_metrics = WorkQueueMetrics::register(&mut registry);
        let metrics = ControllerMetrics::register(&mut registry, &self.config.name);
        let mut queue = WorkQueue::builder(self.config.name.clone())
            .metrics(&queue_metrics)
            .zoo(self.config.zoo);
        if let Some(l) = self.limiter {
            queue = queue.rate_limiter(l);
        }
        Ok(Controller {
            shared: Arc::new(Shared {
                dead_letters: Mutex::new(DeadLetters::new(self.config.dead_letter_capacity)),
                config: self.config,
                queue: queue.build(),
                reconcile,
                observer: self.observer,
                metrics,
                registry,
                sources: Mutex::default(),
                workers_alive: AtomicUsize::new(0),
                phase: AtomicU8::new(Phase::NotStarted as u8),
                stop: StopHandle::default(),
            }),
        })
    }
}

impl Controller {
    /// A builder with `config`.
    pub fn builder(config: ControllerConfig) -> ControllerBuilder {
        ControllerBuilder {
            config,
            limiter: None,
            observer: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.shared.config
    }

    /// The queue of keys (add keys by hand, or inspect it).
    pub fn queue(&self) -> &WorkQueue<String> {
        &self.shared.queue
    }

    /// Runs `concurrency` workers until [`shutdown`](Self::shutdown), then drains within the
    /// drain deadline and abandons what is left. Runs once.
    pub async fn run(&self) -> Result<ShutdownReport, RunError> {
        let s = &self.shared;
        let (from, to) = (Phase::NotStarted as u8, Phase::Running as u8);
        if s.phase
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(RunError::AlreadyRun(s.config.name.clone()));
        }
        let mut workers = JoinSet::new();
        for _ in 0..s.config.concurrency {
            workers.spawn(worker::run(s.clone()));
        }
        tracing::info!(controller = %s.config.name, workers = s.config.concurrency, "controller started");
        s.stop.stopped().await;
        s.phase.store(Phase::ShuttingDown as u8, Ordering::SeqCst);
        let report = self.drain(&mut workers).await;
        s.phase.store(Phase::Stopped as u8, Ordering::SeqCst);
        Ok(report)
    }

    async fn drain(&self, workers: &mut JoinSet<()>) -> ShutdownReport {
        let s = &self.shared;
        let deadline = s.config.drain_deadline;
        let drained = tokio::time::timeout(deadline, s.queue.shut_down_with_drain())
            .await
            .is_ok();
        let (abandoned, never_started) = match drained {
            true => (Vec::new(), 0),
            false => (s.queue.in_flight(), s.queue.len()),
        };
        for key in &abandoned {
            tracing::warn!(controller = %s.config.name, key, "drain deadline passed: reconcile abandoned");
            if let Some(o) = &s.observer {
                o.reconcile_abandoned(key);
            }
        }
        workers.abort_all();
        while workers.join_next().await.is_some() {}
        tracing::info!(controller = %s.config.name, drained, "controller stopped");
        ShutdownReport {
            drained,
            abandoned,
            never_started,
        }
    }

    /// Starts a graceful shutdown (idempotent): intake stops, `run` drains and returns.
    pub fn shutdown(&self) {
        self.shared.stop.stop();
    }

    /// A handle that shuts the controller down from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.shared.stop.clone()
    }

    /// The dead letters, by key. A later successful reconcile of a key removes its letter.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.dead_letters().list()
    }

    /// `Ok` when running and every watched informer's handler has its initial list; else
    /// the problems.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        health::readiness(&self.shared)
    }

    /// `Ok` when every worker is alive and no watched informer has been failing for longer
    /// than `watch_failure_grace`; else the problems.
    pub fn liveness(&self) -> Result<(), Vec<String>> {
        health::liveness(&self.shared)
    }

    /// Workers currently running.
    pub fn workers_alive(&self) -> usize {
        self.shared.workers_alive.load(Ordering::SeqCst)
    }

    /// The controller's metrics (reconcile and workqueue series) in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.shared.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
