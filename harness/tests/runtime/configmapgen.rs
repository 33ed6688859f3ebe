//! kube-runtime as operators configure it: kube-rs's `configmapgen_controller` example
//! shape — a CRD, `Controller::new(..).owns(..)`, concurrency 2, kube-runtime's default
//! watcher backoff, a `reconcile_all_on` reload — untouched, twice with one seed. Three
//! sources of order come from code we do not control: the pending keys' std `HashSet`
//! (20 generators at once), the default backoff's fastrand jitter (a partition makes the
//! watchers back off) and the reflector store's ahash map (walked by the reload).
//! `kube_chaos_harness::seeded` makes all three a function of the seed (leaving out the
//! ahash source or the fastrand reseed makes the seeded test fail at the reload or at the
//! reconnect).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::{watcher, Controller};
use kube::{CustomResource, Resource, ResourceExt};
use kube_chaos_harness::apiserver::ResourceType;
use serde::{Deserialize, Serialize};

use super::*;

/// The example's CRD.
#[derive(CustomResource, Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[kube(
    group = "nullable.se",
    version = "v1",
    kind = "ConfigMapGenerator",
    namespaced
)]
struct ConfigMapGeneratorSpec {
    content: String,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

/// What the controller did, one line each with the simulated time.
type Log = Arc<Mutex<Vec<String>>>;

struct Data {
    client: kube::Client,
    log: Log,
}

fn note(log: &Log, line: String) {
    let at = turmoil::elapsed().as_secs_f64();
    log.lock().unwrap().push(format!("{at:>9.3}s {line}"));
}

/// The example's reconcile: the generator's ConfigMap, owned by it (merge patch, or create:
/// the simulated apiserver has no server-side apply).
async fn reconcile(g: Arc<ConfigMapGenerator>, ctx: Arc<Data>) -> Result<Action, Error> {
    note(&ctx.log, format!("reconcile {}", g.name_any()));
    let ns = g.namespace().unwrap_or_default();
    let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(g.name_any()),
            owner_references: Some(vec![g.controller_owner_ref(&()).unwrap()]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("content".into(), g.spec.content.clone())])),
        ..ConfigMap::default()
    };
    let patch = Patch::Merge(&cm);
    match api
        .patch(&g.name_any(), &PatchParams::default(), &patch)
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            api.create(&PostParams::default(), &cm).await?;
        }
        other => drop(other?),
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn error_policy(g: Arc<ConfigMapGenerator>, e: &Error, ctx: Arc<Data>) -> Action {
    note(&ctx.log, format!("error {}: {e}", g.name_any()));
    Action::requeue(Duration::from_secs(1))
}

fn generator(i: usize, content: &str) -> ConfigMapGenerator {
    let mut g = ConfigMapGenerator::new(
        &format!("gen-{i}"),
        ConfigMapGeneratorSpec {
            content: content.into(),
        },
    );
    g.meta_mut().namespace = Some("default".into());
    g
}

/// The writer: 20 generators, then one update a second; the operator's reload at the 100th update.
async fn writer(mut reload: mpsc::Sender<()>) -> TestResult {
    let api: Api<ConfigMapGenerator> = Api::default_namespaced(client(&ClientConfig::new(1)));
    for i in 0..20 {
        api.create(&PostParams::default(), &generator(i, "v0"))
            .await?;
    }
    for t in 1..110u32 {
        tokio::time::sleep(secs(1)).await;
        let content = serde_json::json!({"spec": {"content": format!("v{t}")}});
        let name = format!("gen-{}", (t * 7) % 20);
        let _ = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(content))
            .await;
        if t == 100 {
            reload.send(()).await?;
        }
    }
    Ok(())
}

/// One run of the example, its lists and watches failing from 5 s to 40 s: its log.
fn configmapgen(seed: u64) -> Vec<String> {
    let crd = ResourceType::new(
        "nullable.se",
        "v1",
        "ConfigMapGenerator",
        "configmapgenerators",
        true,
    );
    let builder = SimBuilder::new(seed).duration(secs(150)).cluster(|c| {
        c.crds.push(crd);
        c.access_log = true;
    });
    let (mut sim, server) = builder.build().expect("a valid cluster");
    let log = Log::default();
    let (tx, rx) = mpsc::channel(1);
    sim.client("writer", writer(tx));
    let l = log.clone();
    let rx = Arc::new(Mutex::new(Some(rx)));
    sim.client("controller", async move {
        let client = client(&ClientConfig::new(1));
        let reload = rx.lock().unwrap().take().expect("runs once");
        let data = Arc::new(Data {
            client: client.clone(),
            log: l,
        });
        Controller::new(
            Api::<ConfigMapGenerator>::all(client.clone()),
            watcher::Config::default(),
        )
        .owns(Api::<ConfigMap>::all(client), watcher::Config::default())
        .with_config(Config::default().concurrency(2))
        .reconcile_all_on(reload)
        .run(reconcile, error_policy, data)
        .for_each(|_| futures::future::ready(()))
        .await;
        Ok(())
    });
    while sim.elapsed() < secs(5) {
        sim.step().expect("steps");
    }
    // 35 s of failing lists and watches: the watchers back off, jittered, up to 30 s.
    let refuse = server.add_hook(|r: &RequestInfo| match r.method == http::Method::GET {
        true => Verdict::Respond(ApiError::other(500, "InternalError", "injected")),
        false => Verdict::Pass,
    });
    server.drop_watches(0);
    while sim.elapsed() < secs(40) {
        sim.step().expect("steps");
    }
    server.remove_hook(refuse);
    while sim.elapsed() < secs(125) {
        sim.step().expect("steps");
    }
    let out = log.lock().unwrap().clone();
    out
}

fn first_difference(a: &[String], b: &[String]) -> Option<String> {
    let at = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    Some(format!(
        "line {}: {:?} vs {:?}",
        at + 1,
        a.get(at),
        b.get(at)
    ))
}

#[test]
fn the_configmapgen_example_shape_is_deterministic_when_seeded() {
    // Two seeded runs of one seed must log the same reconciles at the same simulated times:
    // the 20-key bursts (HashSet), the reconnects after the errors (fastrand jitter) and the
    // reload's walk of the store (ahash).
    let run = |seed| kube_chaos_harness::seeded(seed, || configmapgen(seed));
    let a = run(3);
    let between = |from: f64, to: f64| {
        let at = |l: &&String| l.trim_start().split('s').next().unwrap().parse::<f64>();
        a.iter()
            .filter(|l| at(l).is_ok_and(|t| (from..to).contains(&t)))
            .count()
    };
    // The relist when the jittered backoff (up to twice 30 s) lets the watchers back in,
    // and the reload (about 105 s), each reconcile all 20 generators.
    assert!(between(40.0, 100.0) >= 20, "{a:#?}");
    assert!(between(100.0, 125.0) >= 20, "{a:#?}");
    let b = run(3);
    if let Some(d) = first_difference(&a, &b) {
        panic!("two seeded runs differ at {d}");
    }
}

#[test]
fn unseeded_the_configmapgen_example_shape_diverges() {
    // The control: the same runs on plain fresh threads (OS-seeded std hashing, fastrand
    // from the clock) do not repeat themselves.
    let run = |seed| std::thread::scope(|s| s.spawn(|| configmapgen(seed)).join().unwrap());
    let (a, b) = (run(3), run(3));
    assert!(
        first_difference(&a, &b).is_some(),
        "two unseeded runs were identical"
    );
}
