//! kube-chaos-harness: a deterministic world for testing Kubernetes clients and controllers.
//!
//! Map:
//! - [`apiserver`]: the simulated kube-apiserver (MVCC store, replica watch caches, HTTP).
//! - [`net`]: turmoil <-> hyper glue — the replica listener and a `kube::Client` whose
//!   connections are simulated TCP streams.
//! - [`serve`]: the same server on a real loopback port (`kube-chaos serve`), for kubectl.
//! - [`sim`]: a seeded `turmoil::Sim` with N replicas ([`sim::SimBuilder`]).
//! - [`testing`]: helpers for tests that drive a simulated cluster.
//! - [`mirror`]: the sample controller (a mirror ConfigMap per labelled source, with a
//!   finalizer) and its convergence condition over the server's objects.
//! - [`demo`]: the `kube-chaos demo` timeline (a watch through a partition and a 410).
//!
//! Start with [`sim::SimBuilder`], add a client host that calls [`net::client`], and talk to
//! the cluster with `kube::Api` as usual. kube-runtime subjects take
//! `kube_chaos::backoff::Backoff::reflector(Some(seed))`: the same 800 ms → 30 s backoff as
//! kube-runtime's default, whose jitter and reset read the wall clock.
//!
//! Scenarios and checks: [`scenario`] (replay files), [`fault`] (the interpreter),
//! [`subject`] (systems under test), [`check`] (invariants), [`trace`] (stable text),
//! [`runner`] (scenario -> report), [`suite`] (`kube-chaos run`), [`explore`] (generated
//! scenarios, shrinking, replay files: `kube-chaos explore`).
//!
//! Running a scenario from Rust (what `kube-chaos run` does for each file):
//!
//! ```
//! use kube_chaos_harness::{runner, scenario::Scenario};
//!
//! let scenario = Scenario::parse(
//!     r#"{"version": 1, "name": "drop", "duration": "30s", "settle": "10s",
//!         "subject": {"name": "retry-watcher"},
//!         "workload": [{"churn": {"at": "1s", "for": "25s", "every": "1s", "objects": 3}}],
//!         "faults": [{"drop_watches": {"at": "10s"}}]}"#,
//!     "inline",
//! )?;
//! let report = runner::run(&scenario, None)?;
//! assert!(report.met(), "{}", report.render());
//! assert!(report.counters["watches"] >= 2); // the dropped stream was resumed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Testing your own kube-rs controller: build a world with [`sim::SimBuilder`], run your
//! controller on a host with a client from [`net::client`], drive faults with the `turmoil`
//! `Sim` and the [`apiserver::ApiServer`] handle (`compact_all`, `expire_watches`,
//! `pause_cache`, hooks for HTTP errors), then judge the server's objects — the way
//! `harness/tests/runtime/controller.rs` does for the mirror controller with
//! [`mirror::mirror_converged`]:
//!
//! ```
//! use std::time::Duration;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//! use kube_chaos_harness::{net, sim::SimBuilder};
//!
//! let (mut sim, server) = SimBuilder::new(7).duration(Duration::from_secs(60)).build()?;
//! sim.client("my-controller", async {
//!     let client = net::client(&net::ClientConfig::new(1));
//!     let api: Api<ConfigMap> = Api::default_namespaced(client);
//!     // ... start your controller here; this one just writes.
//!     let cm = serde_json::from_value(serde_json::json!({"metadata": {"name": "a"}}))?;
//!     api.create(&PostParams::default(), &cm).await?;
//!     Ok(())
//! });
//! sim.run().map_err(|e| e.to_string())?;
//! assert_eq!(server.objects("v1", "ConfigMap").len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod apiserver;
pub mod check;
pub mod demo;
pub mod explore;
pub mod fault;
pub mod mirror;
pub mod net;
pub mod runner;
pub mod scenario;
pub mod serve;
pub mod sim;
pub mod subject;
mod subject_controller;
pub mod suite;
pub mod testing;
pub mod trace;
mod validate;
