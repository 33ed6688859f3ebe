//! The kube-chaos runtime (RetryWatcher, informer) inside the simulation, reached only through
//! real kube clients over simulated HTTP.

mod configmapgen;
mod controller;
mod informer;
mod load;
mod reflector;
mod retry_watcher;
mod shared_backoff;
mod stuck;

use std::time::Duration;

pub use kube_chaos_harness::apiserver::{ApiError, ApiServer, RequestInfo, Verdict};
pub use kube_chaos_harness::net::{client, replica_host, ClientConfig};
pub use kube_chaos_harness::sim::SimBuilder;
pub use kube_chaos_harness::testing::{
    configmap, ignoring_options, list_rv, partitioned_past_the_window, put_configmap, run, secs,
    step_until, watch_requests, TestResult,
};
