//! The simulated apiserver's contract (DESIGN.md §3), checked only through real kube clients
//! over simulated HTTP: `kube::Api`, raw `kube::Client` requests, kube-runtime's `watcher`.

mod bad_input;
mod crud;
mod determinism;
mod discovery;
mod gc;
mod hooks;
mod list;
mod metadata;
mod replicas;
mod retry;
mod runtime_watcher;
mod turmoil_tcp;
mod watch;
mod write_path;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
pub use kube_chaos_harness::apiserver::ApiServer;
pub use kube_chaos_harness::net::{client, ClientConfig};
pub use kube_chaos_harness::sim::SimBuilder;
pub use kube_chaos_harness::testing::{configmap as cm, run, secs, TestResult};

/// Creates `n` ConfigMaps `c0..c{n-1}` in `default`.
pub async fn create_many(api: &Api<ConfigMap>, n: usize) -> kube::Result<()> {
    for i in 0..n {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), "v"))
            .await?;
    }
    Ok(())
}

/// The `code` of a kube API error, or a panic naming what came instead.
pub fn api_code<T: std::fmt::Debug>(r: kube::Result<T>) -> u16 {
    match r {
        Err(kube::Error::Api(s)) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Writes ConfigMap `default/{name}` straight into the store (see `put_configmap`).
pub fn put(server: &ApiServer, name: &str) {
    kube_chaos_harness::testing::put_configmap(server, name, "v");
}
