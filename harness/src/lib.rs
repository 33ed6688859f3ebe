//! kube-chaos-harness: a deterministic world for testing Kubernetes clients and controllers.
//!
//! # The map, in the order data flows
//!
//! A scenario file is parsed and validated, turned into one timeline of faults and writes,
//! played against a subject running in a simulated cluster, judged by the checkers and
//! reported; exploration generates scenarios, runs them and shrinks the failures.
//!
//! | step | module | what it holds |
//! |---|---|---|
//! | the world | [`apiserver`], [`net`], [`sim`], [`serve`], [`watch_log`], [`mod@seeded`] | the simulated kube-apiserver (MVCC store, replica watch caches, HTTP), turmoil <-> hyper glue and `kube::Client`s, a seeded `turmoil::Sim` ([`SimBuilder`]), the same server on a real port (with what it saw of each request, network faults at its sockets, an admin endpoint for live faults), each client's watch connections, std/fastrand/ahash randomness from the seed for code we do not control ([`seeded()`]) |
//! | the format | [`scenario`] | replay files: cluster, objects, workload, subject, faults (every fault kind and its accessors: `scenario/fault.rs`), expected [`scenario::Checker`]s, validation with JSON paths |
//! | the record | [`trace`] | what happened, as stable text |
//! | the subjects | [`subject`], [`mirror`] | systems under test by name (ours — the mirror controller fed at once, or by `add_after` from its handler: `delayed-controller` — kube-runtime's, the bug zoo), their `Ctx` and the controller `Controls`; the sample mirror controller |
//! | the run | [`mod@run`] | the timeline, the fault interpreter (one arm per fault kind, acting through a [`run::Target`]: turmoil's network, or the served sockets), the runner, [`run::play_served`] (a scenario on the wall clock against real clients), the [`run::Report`] |
//! | the judgement | [`check`] | one checker per invariant over the recorded evidence (`add_after_earliest`: a delayed key comes out by the earliest time asked); [`check::served`]: those of external clients, from what the server saw |
//! | the pictures | [`picture`], [`study`] | a run's page (SVG timeline and trace); the minWatchTimeout study and its chart |
//! | exploration | [`explore`] | generated scenarios (one generator per fault kind), shrinking, replay files |
//! | your controller | [`operator`] | [`Operator`]: a user's controller and CRDs under generated faults from a 10-line `cargo test`, findings shrunk into a regression directory rerun first |
//! | the command line | [`suite`], [`demo`], `main.rs`, `serve_cmd.rs` | `kube-chaos run`, `demo`, `explore`, `serve`, `fault` |
//!
//! Where new things go: **a new fault kind** is its variant and accessor arms in
//! `scenario/fault.rs`, one arm each in `run/interpreter.rs`'s `begin` and `end`, and one
//! line in `explore/faults.rs` (every match is exhaustive: the compiler lists what is
//! missing, and a test fails if a kind has no generator). **A new checker** is a function in
//! `check/` plus its [`scenario::Checker`] variant and one arm in [`check::check`]. **A new
//! subject** is a function in `subject/` plus one line in its registry; a bug-zoo subject is
//! one of ours with a `kube_chaos::zoo::Bug` turned on.
//!
//! Arrows point down only: the command line and [`operator`] use explore, which uses run,
//! which uses subject, check and scenario, which use the world; [`testing`] holds helpers for
//! tests, [`retry`] writes of any kind that ride out faults (create, replace, patch, delete)
//! and [`ApiServer::put_typed`] and its siblings typed reads and writes that bypass HTTP.
//!
//! # Running a scenario from Rust
//!
//! What `kube-chaos run` does for each file:
//!
//! ```
//! use kube_chaos_harness::{run, subject, Scenario};
//!
//! let scenario = Scenario::parse(
//!     r#"{"version": 1, "name": "drop", "duration": "30s", "settle": "10s",
//!         "subject": {"name": "retry-watcher"},
//!         "workload": [{"churn": {"at": "1s", "for": "25s", "every": "1s", "objects": 3}}],
//!         "faults": [{"drop_watches": {"at": "10s"}}]}"#,
//!     "inline",
//!     subject::registry(),
//! )?;
//! let report = run(&scenario, None)?;
//! assert!(report.met(), "{}", report.render());
//! assert!(report.counters["watches"] >= 2); // the dropped stream was resumed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Testing your own kube-rs controller
//!
//! The short way is [`Operator`] (its module doc has the ten lines): your CRDs, your `main`,
//! your objects and a condition, explored under generated faults and shrunk to replay files.
//! The long way, for a hand-made story: build a world with [`SimBuilder`], run your controller on a host with a client from
//! [`client`], drive faults with the `turmoil` `Sim` and the [`ApiServer`] handle
//! (`compact_all`, `expire_watches`, `pause_cache`, hooks for HTTP errors), then judge the
//! server's objects — the way `harness/tests/runtime/controller.rs` does for the mirror
//! controller with [`mirror::mirror_converged`]:
//!
//! ```
//! use std::time::Duration;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//! use kube_chaos_harness::{client, net::ClientConfig, SimBuilder};
//!
//! let (mut sim, server) = SimBuilder::new(7).duration(Duration::from_secs(60)).build()?;
//! sim.client("my-controller", async {
//!     let client = client(&ClientConfig::new(1));
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
//!
//! The cluster behaves like one for operators: a garbage collector deletes the dependents
//! of deleted owners (`ownerReferences`, with background, foreground and orphan
//! propagation), metadata-only requests (`Controller::owns`) get `PartialObjectMetadata`,
//! and the client has exactly the timeouts of a production `kube::Client` (see [`net`]: no
//! read timeout, so a request a partition swallowed never returns — the
//! `no_stuck_reconcile` checker reports what that does to a controller). [`retry`] has the
//! writes a test needs for any kind; [`ApiServer::put_typed`] and its siblings read and
//! write the store directly.
//!
//! kube-runtime subjects take `kube_chaos::backoff::Backoff::reflector(Some(seed))`: the
//! same 800 ms → 30 s backoff as kube-runtime's default. Code you do not control — std
//! `HashMap`s, kube-runtime's default backoff jitter (fastrand), its reflector store
//! (ahash) — is made a function of the seed by wrapping the run in [`seeded()`], the one
//! line a test of your own adds; every [`run()`] does it (see the README for what it does
//! not cover).
#![deny(missing_docs)]

pub mod apiserver;
pub mod check;
pub mod demo;
pub mod explore;
pub mod mirror;
pub mod net;
pub mod operator;
pub mod picture;
pub mod retry;
pub mod run;
pub mod scenario;
pub mod seeded;
pub mod serve;
pub mod sim;
pub mod study;
pub mod subject;
pub mod suite;
pub mod testing;
pub mod trace;
pub mod watch_log;

/// Seeded OS randomness: std's `HashMap` keys (and `getrandom`) from a seed on a fresh thread.
pub use kube_chaos_norandom as norandom;

pub use apiserver::ApiServer;
pub use net::client;
pub use operator::Operator;
pub use run::run;
pub use scenario::Scenario;
pub use seeded::seeded;
pub use sim::SimBuilder;
