//! Helpers for tests that drive a simulated cluster (ours, and a user's own): run a client
//! host to completion, step to a time, write ConfigMaps straight into the store, read the
//! access log, and the stories several tests tell (a partition that outlasts the window).

use std::future::Future;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchParams};
use kube_chaos::retry_watcher::{WatchFuture, WatchOptions};

use crate::apiserver::ApiServer;
use crate::net::{client, replica_host, ClientConfig};
use crate::sim::SimBuilder;

/// Result of a client host's body.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Builds the simulation, runs `body` on a client host named `client` with a kube client for
/// the cluster (round robin over the replicas), runs the simulation to completion, and
/// returns the server for after-the-fact assertions. Panics (with the simulation's error) if
/// the body fails or the simulation does not finish in its duration.
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

/// Steps `sim` until its simulated clock reaches `at` (a driver between faults).
pub fn step_until(sim: &mut turmoil::Sim<'_>, at: Duration) -> turmoil::Result {
    while sim.elapsed() < at {
        sim.step()?;
    }
    Ok(())
}

/// A ConfigMap `name` with `data.k = value` (no namespace: `Api` sets it).
pub fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"k": value}}))
        .expect("valid ConfigMap")
}

/// Writes ConfigMap `default/{name}` straight into the store, as a write through another
/// replica would (works while the client's replica is down or partitioned away). Returns
/// its new resourceVersion.
pub fn put_configmap(server: &ApiServer, name: &str, value: &str) -> u64 {
    let mut v = serde_json::to_value(configmap(name, value)).expect("serialises");
    v["metadata"]["namespace"] = "default".into();
    let stored = server.put_object(v).expect("stored");
    stored["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("numeric RV")
}

/// One request from the access log.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLog {
    /// Simulated seconds since the start of the simulation.
    pub at_secs: f64,
    /// The replica that served it.
    pub replica: usize,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Whether it was a watch.
    pub watch: bool,
    /// Its `resourceVersion` parameter (empty when absent).
    pub resource_version: String,
    /// The status code it got.
    pub code: u16,
}

/// Every request in the server's access log, in order (`ClusterConfig::access_log` must be
/// on).
pub fn requests(server: &ApiServer) -> Vec<RequestLog> {
    let epoch = crate::sim::EPOCH_SECS as f64;
    server
        .access_log()
        .iter()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let at: f64 = parts.next()?.parse().ok()?;
            let replica = parts.next()?.strip_prefix('r')?.parse().ok()?;
            let (method, uri, arrow, code) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if arrow != "->" {
                return None;
            }
            let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
            let param = |name: &str| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            Some(RequestLog {
                at_secs: at - epoch,
                replica,
                method: method.to_string(),
                path: path.to_string(),
                watch: matches!(param("watch").as_deref(), Some("true" | "1")),
                resource_version: param("resourceVersion").unwrap_or_default(),
                code: code.parse().ok()?,
            })
        })
        .collect()
}

/// One watch request from the access log.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRequestLog {
    /// Simulated seconds since the start of the simulation.
    pub at_secs: f64,
    /// The replica that served it.
    pub replica: usize,
    /// Its `resourceVersion` parameter (empty when absent).
    pub resource_version: String,
    /// The status code it got.
    pub code: u16,
}

/// The watch requests in the server's access log (`ClusterConfig::access_log` must be on).
pub fn watch_requests(server: &ApiServer) -> Vec<WatchRequestLog> {
    requests(server)
        .into_iter()
        .filter(|r| r.watch)
        .map(|r| WatchRequestLog {
            at_secs: r.at_secs,
            replica: r.replica,
            resource_version: r.resource_version,
            code: r.code,
        })
        .collect()
}

/// Whole seconds.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The resourceVersion a ConfigMap list reports now (a RetryWatcher's starting point).
pub async fn list_rv(api: &Api<ConfigMap>) -> kube::Result<String> {
    Ok(api
        .list_metadata(&Default::default())
        .await?
        .metadata
        .resource_version
        .expect("a list carries its resourceVersion"))
}

/// The documented pitfall: a watch function that builds fresh options, dropping the
/// resourceVersion (and bookmarks) it was asked for; only the selector and timeout survive.
pub fn ignoring_options(api: Api<ConfigMap>) -> impl FnMut(WatchOptions) -> WatchFuture<ConfigMap> {
    move |options: WatchOptions| {
        let api = api.clone();
        async move {
            let params = WatchParams {
                label_selector: options.label_selector,
                timeout: options.timeout_seconds,
                ..WatchParams::default()
            };
            Ok(api.watch(&params, "").await?.boxed())
        }
        .boxed()
    }
}

/// What [`partitioned_past_the_window`] did, for the assertions after it.
#[derive(Debug)]
pub struct PastTheWindow {
    /// The server, after the run.
    pub server: ApiServer,
    /// The store's revision when the partition began (where the client's watch resumes).
    pub resumed_from: u64,
    /// The store's revision after the writes and the deletion.
    pub latest: u64,
}

/// The tombstone story (seed 203, an 8-event watch cache): on host `client`, ConfigMaps
/// `gone` and `stays` are created and `body` runs; at 10 s the client is partitioned, 20
/// writes of `stays` push its resume RV out of the window and `gone` is deleted; the
/// partition heals at `repair_at` and the simulation runs to its end.
pub fn partitioned_past_the_window<F, Fut>(repair_at: Duration, body: F) -> PastTheWindow
where
    F: FnOnce(Api<ConfigMap>) -> Fut + 'static,
    Fut: Future<Output = TestResult> + 'static,
{
    let (mut sim, server) = SimBuilder::new(203)
        .cluster(|c| c.watch_cache_capacity = 8)
        .build()
        .expect("valid cluster");
    let mut body = Some(body);
    sim.client("client", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        api.create(&PostParams::default(), &configmap("gone", "v"))
            .await?;
        api.create(&PostParams::default(), &configmap("stays", "v"))
            .await?;
        (body.take().expect("runs once"))(api).await
    });
    step_until(&mut sim, secs(10)).expect("ran to the partition");
    let resumed_from = server.revision();
    sim.partition("client", replica_host(0));
    for i in 0..20 {
        put_configmap(&server, "stays", &i.to_string());
    }
    server
        .delete_object("v1", "ConfigMap", "default", "gone")
        .expect("deleted");
    let latest = server.revision();
    step_until(&mut sim, repair_at).expect("ran to the repair");
    sim.repair("client", replica_host(0));
    sim.run().expect("ran to the end");
    PastTheWindow {
        server,
        resumed_from,
        latest,
    }
}
