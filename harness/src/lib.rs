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
#![deny(missing_docs)]

pub mod apiserver;
pub mod check;
pub mod demo;
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
