//! kube-chaos: a Kubernetes controller runtime for Rust with client-go semantics, on
//! `kube::Api`, for real clusters — and proven inside the kube-chaos harness's simulation.
//!
//! Map:
//! - [`retry_watcher`]: one logical watch that resumes from the last resourceVersion
//!   (client-go's RetryWatcher), with typed terminal errors (`Expired`, `HistoricalReplay`).
//! - [`informer`]: reflector (list then watch), shared store with indexes, handlers
//!   (client-go's SharedIndexInformer), with tombstones on relist.
//! - [`backoff`]: client-go's seeded exponential backoff with reset after a healthy period.
//! - [`stop`]: the idempotent stop handle shared by the components.
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
