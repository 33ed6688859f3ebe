//! The mirror controller on our runtime, in the simulation: it converges through a partition,
//! a 410 after compaction and an apiserver restart, deletes the mirrors of deleted sources,
//! and never reconciles one key twice at once.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube_chaos::controller::{
    Controller, ControllerConfig, ControllerObserver, Outcome, ShutdownReport,
};
use kube_chaos::informer::{Informer, InformerConfig};
use kube_chaos::workqueue::{ExponentialFailure, MaxWait};
use kube_chaos_harness::mirror::{mirror_controller, mirror_converged, MIRROR_LABEL};
use kube_chaos_harness::sim::crash_replica;

use super::*;

/// Counts outcomes and records any key reconciled twice at once.
#[derive(Default)]
struct Observed {
    in_flight: BTreeSet<String>,
    overlaps: Vec<String>,
    outcomes: BTreeMap<&'static str, u32>,
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Observed>>);

impl ControllerObserver for Recorder {
    fn reconcile_started(&self, key: &str) {
        let mut o = self.0.lock().unwrap();
        if !o.in_flight.insert(key.to_string()) {
            o.overlaps.push(key.to_string());
        }
    }
    fn reconcile_finished(&self, key: &str, outcome: &Outcome) {
        let mut o = self.0.lock().unwrap();
        o.in_flight.remove(key);
        *o.outcomes.entry(outcome.label()).or_default() += 1;
    }
}

fn source(name: &str, value: &str) -> ConfigMap {
    let mut cm = configmap(name, value);
    cm.metadata.labels = Some([(MIRROR_LABEL.to_string(), "true".to_string())].into());
    cm
}

/// Retries an API write until it succeeds (a 404 or 409 counts as done: the write is moot).
async fn retry<T>(what: &str, mut f: impl AsyncFnMut() -> kube::Result<T>) {
    for _ in 0..60 {
        match f().await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return,
            Err(_) => tokio::time::sleep(secs(1)).await,
        }
    }
    panic!("{what} kept failing");
}

async fn create(api: &Api<ConfigMap>, cm: ConfigMap) {
    retry("create", async || {
        api.create(&PostParams::default(), &cm).await
    })
    .await;
}

async fn patch(api: &Api<ConfigMap>, name: &str, p: serde_json::Value) {
    let p = Patch::Merge(p);
    retry(name, async || {
        api.patch(name, &PatchParams::default(), &p).await
    })
    .await;
}

async fn delete(api: &Api<ConfigMap>, name: &str) {
    retry(name, async || {
        api.delete(name, &DeleteParams::default()).await
    })
    .await;
}

fn data(v: &str) -> serde_json::Value {
    serde_json::json!({"data": {"k": v}})
}

fn label(v: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"metadata": {"labels": {MIRROR_LABEL: v}}})
}

/// The writer's script: sources and plain ConfigMaps created, changed, relabelled, deleted.
async fn writer(api: Api<ConfigMap>) -> TestResult {
    tokio::time::sleep(secs(1)).await;
    for i in 0..6 {
        create(&api, source(&format!("s{i}"), "v0")).await;
    }
    create(&api, configmap("u0", "v0")).await;
    create(&api, configmap("noise", "v0")).await;
    tokio::time::sleep(secs(19)).await; // t = 20
    patch(&api, "s0", data("v1")).await;
    tokio::time::sleep(secs(25)).await; // t = 45: the controller is partitioned away
    patch(&api, "s1", data("v2")).await;
    delete(&api, "s2").await;
    create(&api, source("s6", "v0")).await;
    for i in 0..30 {
        patch(&api, "noise", data(&i.to_string())).await;
    }
    tokio::time::sleep(secs(55)).await; // t = 100
    patch(&api, "u0", label("true".into())).await;
    patch(&api, "s3", label(serde_json::Value::Null)).await;
    tokio::time::sleep(secs(30)).await; // t = 130: replica 1 is down
    delete(&api, "s4").await;
    patch(&api, "s5", data("v3")).await;
    tokio::time::sleep(secs(70)).await; // t = 200
    delete(&api, "s0").await;
    patch(&api, "s1", data("v4")).await;
    Ok(())
}

type Out = Rc<RefCell<Option<(Informer<ConfigMap>, Controller, ShutdownReport)>>>;

/// The controller host: informer + mirror controller until t = 400, then a graceful stop.
async fn controller_host(rec: Recorder, out: Out) -> TestResult {
    let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(2)));
    let informer = Informer::new(
        api.clone(),
        InformerConfig {
            min_watch_timeout: secs(20),
            deadline_grace: secs(5),
            seed: Some(31),
            ..Default::default()
        },
    );
    let config = ControllerConfig {
        name: "mirror".into(),
        concurrency: 3,
        max_retries: 60,
        reconcile_timeout: secs(10),
        ..Default::default()
    };
    let limiter = MaxWait::new(Box::new(ExponentialFailure::controller_default()), secs(5));
    let builder = Controller::builder(config)
        .rate_limiter(limiter)
        .observer(Arc::new(rec));
    let controller = mirror_controller(builder, api, &informer)?;
    let i = informer.clone();
    tokio::spawn(async move { i.run().await });
    let c = controller.clone();
    let run = tokio::spawn(async move { c.run().await });
    tokio::time::sleep(secs(400)).await;
    controller.shutdown();
    let report = run.await??;
    informer.stop();
    *out.borrow_mut() = Some((informer, controller, report));
    Ok(())
}

#[test]
fn mirror_converges_through_a_partition_a_410_and_an_apiserver_restart() {
    // The writer churns sources while the controller is partitioned (40-80 s; 30 writes push
    // its resume RV out of a 16-event window and history is compacted: 410, relist) and while
    // replica 1 is down (120-140 s). After settling, `mirror_converged` holds on the server's
    // objects, deleted sources and their mirrors are gone, no key ran twice at once.
    let builder = SimBuilder::new(300)
        .replicas(2)
        .cluster(|c| c.watch_cache_capacity = 16);
    let (mut sim, server) = builder.build().expect("valid");
    let rec = Recorder::default();
    let out: Out = Rc::default();
    let (r, o) = (rec.clone(), out.clone());
    sim.client("controller", controller_host(r, o));
    sim.client("writer", async move {
        writer(Api::default_namespaced(client(&ClientConfig::new(2)))).await
    });
    type Fault<'a> = &'a dyn Fn(&mut turmoil::Sim);
    let cluster = server.clone();
    let faults: [(u64, Fault); 7] = [
        (40, &|s| s.partition("controller", replica_host(0))),
        (40, &|s| s.partition("controller", replica_host(1))),
        (60, &|_| {
            cluster.compact_all();
        }),
        (80, &|s| s.repair("controller", replica_host(0))),
        (80, &|s| s.repair("controller", replica_host(1))),
        (120, &|s| crash_replica(s, &cluster, 1)),
        (140, &|s| s.bounce(replica_host(1))),
    ];
    for (at, fault) in faults {
        step_until(&mut sim, secs(at)).unwrap();
        fault(&mut sim);
    }
    sim.run().expect("ran");
    let objects = server.objects("v1", "ConfigMap");
    assert_eq!(mirror_converged(&objects), Ok(()));
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "noise",
            "s1",
            "s1-mirror",
            "s3",
            "s5",
            "s5-mirror",
            "s6",
            "s6-mirror",
            "u0",
            "u0-mirror"
        ]
    );
    let (informer, controller, report) = out.borrow_mut().take().expect("controller ran");
    assert!(report.drained, "{report:?}");
    assert_eq!(controller.dead_letters(), []);
    let stats = informer.stats();
    assert!(stats.expired >= 1 && stats.relists >= 1, "{stats:?}");
    let observed = rec.0.lock().unwrap();
    assert_eq!(observed.overlaps, Vec::<String>::new());
    assert!(observed.outcomes["ok"] >= 10, "{:?}", observed.outcomes);
}
