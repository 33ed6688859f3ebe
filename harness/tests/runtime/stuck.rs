//! The finding of issue 13, item 7, reproduced with one key and a delay: kube 5's client has
//! no read timeout, so a request whose segment a partition swallowed never returns, the
//! reconcile waiting on it never ends, and kube-runtime's `Controller` never reconciles
//! that key again — not after the partition heals, not after the object changes. The same
//! run with a read timeout set recovers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::ResourceExt;
use kube_chaos::backoff::Backoff;

use super::*;

/// `(start, end)` of each reconcile, in simulated seconds.
type Spans = Arc<Mutex<Vec<(f64, Option<f64>)>>>;

struct Data {
    api: Api<ConfigMap>,
    spans: Spans,
}

fn now() -> f64 {
    turmoil::elapsed().as_secs_f64()
}

/// Reads the object, works for 2 s, then writes an annotation.
async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Data>) -> Result<Action, kube::Error> {
    let i = {
        let mut spans = ctx.spans.lock().unwrap();
        spans.push((now(), None));
        spans.len() - 1
    };
    ctx.api.get(&cm.name_any()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = serde_json::json!({"metadata": {"annotations": {"seen": cm.resource_version()}}});
    let out = ctx
        .api
        .patch(
            &cm.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&seen),
        )
        .await;
    ctx.spans.lock().unwrap()[i].1 = Some(now());
    out.map(|_| Action::await_change())
}

/// The story: `a` exists; its first reconcile starts at about 1 s; the controller's host is
/// partitioned from 2 s to 5 s, when the reconcile's PATCH goes out on the pooled
/// connection its GET used; `a` changes at 10 s; the run lasts 10 minutes.
fn story(config: ClientConfig) -> Vec<(f64, Option<f64>)> {
    let (mut sim, server) = SimBuilder::new(61).build().expect("valid cluster");
    let spans: Spans = Arc::default();
    let out = spans.clone();
    sim.client("controller", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&config));
        let data = Arc::new(Data {
            api: api.clone(),
            spans,
        });
        Controller::new(api, watcher::Config::default())
            .trigger_backoff(Backoff::reflector(Some(61)))
            .run(reconcile, |_, _, _| Action::requeue(secs(5)), data)
            .for_each(|_| futures::future::ready(()))
            .await;
        Ok(())
    });
    step_until(&mut sim, Duration::from_millis(500)).unwrap();
    put_configmap(&server, "a", "1");
    step_until(&mut sim, secs(2)).unwrap();
    sim.partition("controller", replica_host(0));
    step_until(&mut sim, secs(5)).unwrap();
    sim.repair("controller", replica_host(0));
    step_until(&mut sim, secs(10)).unwrap();
    put_configmap(&server, "a", "2");
    step_until(&mut sim, secs(600)).unwrap();
    let spans = out.lock().unwrap().clone();
    spans
}

#[test]
fn kube_runtime_never_reconciles_a_key_again_after_a_request_a_partition_swallowed() {
    // Proves the finding: with kube's default timeouts (no read timeout) the one reconcile
    // that began before the partition is still in flight 10 minutes later, and the change
    // at 10 s was never reconciled.
    let spans = story(ClientConfig::new(1));
    assert_eq!(spans.len(), 1, "{spans:?}");
    let (start, end) = spans[0];
    assert!((0.5..2.0).contains(&start), "{spans:?}");
    assert_eq!(end, None, "the reconcile never returned: {spans:?}");
}

#[test]
fn with_a_read_timeout_the_stuck_request_fails_and_the_key_is_reconciled_again() {
    // Proves the cause: the same story with a 30 s read timeout ends the hung PATCH with an
    // error, the error policy requeues, and the key is reconciled again after the change.
    let config = ClientConfig {
        read_timeout: Some(secs(30)),
        ..ClientConfig::new(1)
    };
    let spans = story(config);
    assert!(spans.len() >= 2, "{spans:?}");
    let first_end = spans[0].1.expect("the first reconcile ended");
    assert!((30.0..40.0).contains(&first_end), "{spans:?}");
    assert!(spans[1].0 > 10.0 && spans[1].1.is_some(), "{spans:?}");
}

#[test]
fn a_connect_to_a_crashed_replica_gives_up_after_kubes_30_s_connect_timeout() {
    // Proves the connect timeout is kube's (30 s), not shorter: a connect to a crashed host
    // hangs in turmoil until the host restarts, so only the timeout ends it.
    let (mut sim, _server) = SimBuilder::new(63).build().expect("valid cluster");
    let took: Arc<Mutex<Option<f64>>> = Arc::default();
    let out = took.clone();
    sim.client("client", async move {
        let config = ClientConfig::new(1).keep_alive(false);
        let api: Api<ConfigMap> = Api::default_namespaced(client(&config));
        tokio::time::sleep(secs(2)).await;
        let started = now();
        let failed = api.get("a").await.is_err();
        assert!(failed, "no replica to answer");
        *took.lock().unwrap() = Some(now() - started);
        Ok(())
    });
    step_until(&mut sim, secs(1)).unwrap();
    sim.crash(replica_host(0));
    step_until(&mut sim, secs(60)).unwrap();
    let took = out.lock().unwrap().expect("the request ended");
    assert!((30.0..30.5).contains(&took), "gave up after {took} s");
}
