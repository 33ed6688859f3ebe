//! kube-chaos: a Kubernetes controller runtime for Rust with client-go semantics, on
//! `kube::Api`, for real clusters — and proven inside the kube-chaos harness's simulation.
//!
//! Map:
//! - [`retry_watcher`]: one logical watch that resumes from the last resourceVersion
//!   (client-go's RetryWatcher), with typed terminal errors (`Expired`, `HistoricalReplay`).
//! - [`informer`]: reflector (list then watch), shared store with indexes, handlers
//!   (client-go's SharedIndexInformer), with tombstones on relist.
//! - [`workqueue`]: client-go's workqueue, async — dedup, a key never handed to two workers,
//!   re-adds while in flight deferred to `done`, `add_after` (earliest wins), rate limiters
//!   (exponential, token bucket, max-of, fast-slow, max-wait), shutdown with or without
//!   drain, `workqueue_*` metrics.
//! - [`controller`]: a worker pool reconciling keys from a workqueue fed by informers;
//!   retryable vs terminal errors, dead letters, `requeue_after`, drain deadline,
//!   readiness/liveness, reconcile metrics, an observer hook (and with feature `axum`, a
//!   router for `/metrics`, `/healthz`, `/readyz`).
//! - [`backoff`]: client-go's seeded exponential backoff with reset after a healthy period.
//! - [`stop`]: the idempotent stop handle shared by the components.
//!
//! Start with [`controller::Controller`] and [`informer::Informer`]; each module's doc has
//! its example. In short:
//!
//! ```
//! # async fn queue() {
//! use kube_chaos::workqueue::WorkQueue;
//! let q: WorkQueue<String> = WorkQueue::new("q");
//! q.add("ns/a".into());
//! let key = q.get().await.unwrap();
//! q.done(&key);
//! # }
//! ```
//!
//! ```no_run
//! # async fn controller(informer: kube_chaos::informer::Informer<k8s_openapi::api::core::v1::ConfigMap>) {
//! use std::sync::Arc;
//! use kube_chaos::controller::{Action, Controller, ControllerConfig};
//! let c = Controller::builder(ControllerConfig::default())
//!     .build(Arc::new(()), |key, _ctx| async move {
//!         println!("{key}");
//!         Ok::<_, kube::Error>(Action::await_change())
//!     })
//!     .expect("valid config");
//! c.watch(&informer);
//! c.run().await.expect("runs once");
//! # }
//! ```
//!
//! Every delay the runtime draws comes from an RNG the caller can seed, so a run inside the
//! simulator is a pure function of its seed.
#![deny(missing_docs)]

pub mod backoff;
pub mod controller;
pub mod informer;
mod metrics;
pub mod retry_watcher;
mod rng;
pub mod stop;
pub mod workqueue;
#[doc(hidden)]
pub mod zoo;
