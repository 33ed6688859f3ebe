//! The app-operator in the kube-chaos simulation: the correct operator converges on both
//! runtimes, and each bug variant fails `converged` under a hand-made fault schedule that
//! the correct operator survives. Shared helpers here; one module per story.

mod runs;
mod variants;
mod workload;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use app_operator::{converged, run, run_ours, App, AppSpec, Variant};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::CustomResourceExt;
use kube_chaos_harness::apiserver::ApiServer;
use kube_chaos_harness::net::{client, ClientConfig, Kill};
use kube_chaos_harness::sim::since_start;
use kube_chaos_harness::testing::{step_until, TestResult};
use kube_chaos_harness::SimBuilder;
use serde::de::DeserializeOwned;

/// Which controller runtime runs the reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// kube-runtime's `Controller` ([`run`]).
    KubeRuntime,
    /// kube-chaos's controller ([`run_ours`]).
    Ours,
}

pub const RUNTIMES: [Runtime; 2] = [Runtime::KubeRuntime, Runtime::Ours];

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A simulated cluster with the App CRD installed (through the API, from `App::crd()`), the
/// operator running `variant` on `runtime` on host `operator`, and `writer` on its own host.
pub fn world<W, Fut>(
    seed: u64,
    variant: Variant,
    runtime: Runtime,
    writer: W,
) -> (turmoil::Sim<'static>, ApiServer)
where
    W: FnOnce(Api<App>) -> Fut + 'static,
    Fut: Future<Output = TestResult> + 'static,
{
    let (sim, server, _) = world_with_kill(seed, variant, runtime, writer);
    (sim, server)
}

/// [`world`], and the operator client's [`Kill`] for crashing its host deterministically.
pub fn world_with_kill<W, Fut>(
    seed: u64,
    variant: Variant,
    runtime: Runtime,
    writer: W,
) -> (turmoil::Sim<'static>, ApiServer, Kill)
where
    W: FnOnce(Api<App>) -> Fut + 'static,
    Fut: Future<Output = TestResult> + 'static,
{
    // `RUST_LOG=app_operator=debug cargo test -p app-operator` shows what the operator did.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (mut sim, server) = SimBuilder::new(seed)
        .duration(secs(600.0))
        .cluster(|c| c.record_history = true)
        .build()
        .expect("a valid cluster");
    let crd = serde_json::to_value(App::crd()).expect("the CRD serialises");
    server.create_object(crd).expect("the CRD is accepted");
    let config = ClientConfig::new(1);
    let kill = config.kill.clone();
    sim.host("operator", move || {
        let config = config.clone();
        async move {
            // Inside the host: the client spawns its buffer worker on the host's runtime.
            let client = client(&config);
            let never = std::future::pending();
            match runtime {
                Runtime::KubeRuntime => run(client, variant, never).await,
                Runtime::Ours => run_ours(client, variant, never).await,
            }
            Ok(())
        }
    });
    let mut writer = Some(writer);
    sim.client("writer", async move {
        let apps = Api::default_namespaced(client(&ClientConfig::new(1)));
        (writer.take().expect("runs once"))(apps).await
    });
    (sim, server, kill)
}

/// Seconds without a write before the end state is judged.
pub const QUIET: f64 = 10.0;

/// Steps the simulation to `at` (simulated seconds).
pub fn step_to(sim: &mut turmoil::Sim<'_>, at: f64) {
    step_until(sim, secs(at)).expect("the simulation steps");
}

fn objects<T: DeserializeOwned>(server: &ApiServer, api_version: &str, kind: &str) -> Vec<T> {
    server
        .objects(api_version, kind)
        .iter()
        .map(|v| serde_json::from_value((**v).clone()).expect("a stored object decodes"))
        .collect()
}

/// The server's Apps.
pub fn apps(server: &ApiServer) -> Vec<App> {
    objects(server, "example.kube-chaos.dev/v1", "App")
}

/// `converged` over the server's objects, once the system is quiet: no write in the last
/// [`QUIET`] seconds (a controller still writing is not judged).
pub fn judge(sim: &turmoil::Sim<'_>, server: &ApiServer) -> Result<(), String> {
    let now = sim.elapsed();
    let last = server.history().last().map(|e| since_start(e.at));
    let last = last.expect("the history is recorded");
    if now.saturating_sub(last) < secs(QUIET) {
        return Err(format!(
            "not quiet: the last write was at {:.3} s, judged at {:.3} s",
            last.as_secs_f64(),
            now.as_secs_f64()
        ));
    }
    let configmaps: Vec<ConfigMap> = objects(server, "v1", "ConfigMap");
    let secrets: Vec<Secret> = objects(server, "v1", "Secret");
    converged(&apps(server), &configmaps, &secrets)
}

/// App `name` in `default` with `data.k = value` and `secret.s = "p-" + value` (the
/// operator adds its finalizer itself).
pub fn app(name: &str, value: &str) -> App {
    let mut a = App::new(
        name,
        AppSpec {
            data: BTreeMap::from([("k".into(), value.into())]),
            secret: BTreeMap::from([("s".into(), format!("p-{value}"))]),
        },
    );
    a.metadata.namespace = Some("default".into());
    a
}

pub async fn create(api: &Api<App>, name: &str, value: &str) -> TestResult {
    api.create(&PostParams::default(), &app(name, value))
        .await?;
    Ok(())
}

/// Changes App `name`'s spec (a new generation).
pub async fn update(api: &Api<App>, name: &str, value: &str) -> TestResult {
    let spec = serde_json::to_value(&app(name, value).spec)?;
    let patch = Patch::Merge(serde_json::json!({ "spec": spec }));
    api.patch(name, &PatchParams::default(), &patch).await?;
    Ok(())
}

pub async fn delete(api: &Api<App>, name: &str) -> TestResult {
    api.delete(name, &DeleteParams::default()).await?;
    Ok(())
}

/// Sleeps until simulated second `at`.
pub async fn until(at: f64) {
    let now = turmoil::elapsed();
    tokio::time::sleep(secs(at).saturating_sub(now)).await;
}
