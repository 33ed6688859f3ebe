//! app-operator: a kube-rs operator shaped like kube-rs's own `configmapgen_controller`
//! example, with the bugs real operators ship as switchable [`Variant`]s, for testing in the
//! kube-chaos harness (and running on a real cluster: `src/main.rs`).
//!
//! An [`App`] (`example.kube-chaos.dev/v1`, namespaced, status subresource) asks for a
//! ConfigMap and a Secret. The operator:
//!
//! - keeps a finalizer, [`FINALIZER`], on every App (kube-runtime's `finalizer` helper);
//! - registers each live App in the namespace's ConfigMap [`REGISTRY`] (one key per App,
//!   its uid as value, a conflict-checked update retried on 409);
//! - owns ConfigMap and Secret `app-<name>` (server-side apply, a controller
//!   ownerReference to the App), with the App's `spec.data` and `spec.secret`;
//! - sets `status.ready` and `status.observedGeneration`;
//! - on deletion removes the App's registry key, then the finalizer;
//! - retries errors after 500 ms doubling to 30 s, and reconciles every App every 5 min.
//!
//! # The map
//!
//! | module | what it holds |
//! |---|---|
//! | `app.rs` | the CRD: [`App`], [`AppSpec`], [`AppStatus`] |
//! | `variant.rs` | [`Variant`]: `Correct` and one variant per bug class, each with the real bug it mirrors |
//! | `reconcile.rs` | the reconcile both runtimes run: finalizer, children, status, cleanup |
//! | `registry.rs` | the registry's conflict-checked read-modify-write |
//! | `runtimes.rs` | [`run`] on kube-runtime's `Controller`, [`run_ours`] on kube-chaos's controller |
//! | `converged.rs` | [`converged`], the condition of a quiet system, and [`unique_children`] |
//! | `error.rs` | [`Error`], classified for kube-chaos's controller |
//!
//! # In the simulation
//!
//! `tests/sim/` runs both runtimes in the kube-chaos harness: the correct operator converges
//! for a small workload, and each bug variant has a hand-made fault schedule under which
//! [`converged`] fails while `Correct` passes the same schedule.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube::Error> {
//! let client = kube::Client::try_default().await?;
//! app_operator::run(client, app_operator::Variant::Correct, std::future::pending()).await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod app;
mod converged;
mod error;
mod reconcile;
mod registry;
mod runtimes;
mod variant;

pub use app::{App, AppSpec, AppStatus, GROUP};

/// The read timeout the operator's client is configured with (`kube::Config::read_timeout`):
/// kube's default is none, so a response lost on a connection that stays open is waited for
/// forever and the reconcile waiting for it never ends. Longer than the apiserver's bookmark
/// interval (about a minute), so an idle watch is not cut by it.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(65);
pub use converged::{converged, unique_children, UNIQUE_CHILDREN};
pub use error::Error;
pub use reconcile::{
    child_name, reconcile, Ctx, APP_LABEL, BACKOFF_BASE, BACKOFF_MAX, FINALIZER, MANAGER, RESYNC,
};
pub use registry::{CONFLICT_ATTEMPTS, REGISTRY};
pub use runtimes::{run, run_ours};
pub use variant::{UnknownVariant, Variant};
