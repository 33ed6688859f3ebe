//! The simulated apiserver's contract (DESIGN.md §3), checked only through real kube clients
//! over simulated HTTP: `kube::Api`, raw `kube::Client` requests, kube-runtime's `watcher`.

mod bad_input;
mod crud;
mod determinism;
mod discovery;
mod hooks;
mod list;
mod replicas;
mod runtime_watcher;
mod turmoil_tcp;
mod watch;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube_chaos_harness::apiserver::ApiServer;
use kube_chaos_harness::net::{client, ClientConfig};
use kube_chaos_harness::sim::SimBuilder;

/// Result of a client host's body.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Builds the simulation, runs `body` on a client host named `client` with a kube client for
/// the cluster, and returns the server for after-the-fact assertions.
pub fn run<F, Fut>(builder: SimBuilder, body: F) -> ApiServer
where
    F: FnOnce(kube::Client, ApiServer) -> Fut + 'static,
    Fut: Future<Output = TestResult> + 'static,
{
    let (mut sim, server) = builder.build().expect("valid cluster");
    let replicas = builder.cluster.replicas;
    let s = server.clone();
    let mut body = Some(body);
    sim.client("client", async move {
        let kube = client(&ClientConfig::new(replicas));
        (body.take().expect("runs once"))(kube, s).await
    });
    sim.run().expect("simulation ran to completion");
    server
}

/// A ConfigMap with one data entry.
pub fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"k": value}
    }))
    .expect("valid ConfigMap")
}

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

/// Simulated seconds.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Writes ConfigMap `default/{name}` straight into the store, as a write through another
/// replica would (works while the client's replica is down or partitioned away).
pub fn put(server: &ApiServer, name: &str) {
    let mut v = serde_json::to_value(cm(name, "v")).expect("serialises");
    v["metadata"]["namespace"] = "default".into();
    server.put_object(v).expect("stored");
}
