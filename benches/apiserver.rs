//! Benchmarks of the simulated apiserver (a bench binary, not a test).
//!
//! Run: `cargo bench -p kube-chaos-harness --bench apiserver` (release profile).
//! Figures go to BENCHMARKS.md with the command that produced them.
//!
//! (a) 10,000 ConfigMap updates delivered to a watching `kube::Client` through the simulated
//!     HTTP stack (JSON encode, hyper, turmoil TCP, hyper, kube's line decoder): events/s of
//!     wall-clock time, once with the writes put straight into the store and once with every
//!     write itself an HTTP PATCH through a second kube client.
//! (b) One idle watch (kube's default 290 s `timeoutSeconds`, re-opened when it ends) over one
//!     simulated hour: simulated seconds per wall-clock second, at turmoil's default 1 ms tick
//!     and at 10 ms.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;
use kube_chaos_harness::apiserver::ApiServer;
use kube_chaos_harness::net::{client, ClientConfig};
use kube_chaos_harness::sim::SimBuilder;

const UPDATES: u32 = 10_000;

fn cm(name: &str, v: u32) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {"v": v.to_string()}})
}

/// Returns (wall time, events received) for UPDATES updates, written directly or over HTTP.
fn updates(through_http: bool) -> (Duration, u32) {
    let builder = SimBuilder::new(1)
        .duration(Duration::from_secs(3600))
        .cluster(|c| c.watch_cache_capacity = UPDATES as usize + 16);
    let (mut sim, server) = builder.build().expect("valid cluster");
    let received = Rc::new(Cell::new(0u32));
    let r = received.clone();
    let s: ApiServer = server.clone();
    sim.client("watcher", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        let first = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(cm("bench", 0))?,
            )
            .await?;
        let mut w = Box::pin(
            api.watch(
                &WatchParams::default().timeout(3000),
                &first.resource_version().unwrap(),
            )
            .await?,
        );
        while r.get() < UPDATES {
            match w.try_next().await? {
                Some(WatchEvent::Modified(_)) => r.set(r.get() + 1),
                Some(WatchEvent::Bookmark(_)) => {}
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
        Ok(())
    });
    sim.client("writer", async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        for i in 1..=UPDATES {
            if through_http {
                let patch = Patch::Merge(serde_json::json!({"data": {"v": i.to_string()}}));
                api.patch("bench", &PatchParams::default(), &patch).await?;
            } else {
                s.put_object(cm("bench", i))?;
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        Ok(())
    });
    let start = Instant::now();
    sim.run().expect("simulation completes");
    (start.elapsed(), received.get())
}

/// Returns (simulated, wall) for one idle watch over an hour at the given tick (the last
/// watch opened before the hour runs to its end, so slightly more than an hour is simulated).
fn idle_watch(tick: Duration) -> (Duration, Duration) {
    let hour = Duration::from_secs(3600);
    let builder = SimBuilder::new(2)
        .tick(tick)
        .duration(hour + Duration::from_secs(400));
    let (mut sim, _server) = builder.build().expect("valid cluster");
    sim.client("watcher", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        let start = tokio::time::Instant::now();
        while start.elapsed() < hour {
            let mut w = Box::pin(api.watch(&WatchParams::default(), "0").await?);
            while w.try_next().await?.is_some() {}
        }
        Ok(())
    });
    let start = Instant::now();
    sim.run().expect("simulation completes");
    (sim.elapsed(), start.elapsed())
}

fn main() {
    if cfg!(debug_assertions) {
        eprintln!(
            "note: a debug build; figures for BENCHMARKS.md come from `cargo bench` (release)"
        );
    }
    for (label, http) in [("direct writes", false), ("HTTP PATCH writes", true)] {
        let (wall, n) = updates(http);
        assert_eq!(n, UPDATES, "every update is delivered");
        println!(
            "(a) {UPDATES} updates to a watching kube::Client, {label}: {:.2} s wall, {:.0} events/s",
            wall.as_secs_f64(),
            f64::from(n) / wall.as_secs_f64()
        );
    }
    for tick in [Duration::from_millis(1), Duration::from_millis(10)] {
        let (sim, wall) = idle_watch(tick);
        println!(
            "(b) one idle watch for 1 simulated hour, tick {tick:?}: {:.1} s wall, {:.0} simulated s per wall s",
            wall.as_secs_f64(),
            sim.as_secs_f64() / wall.as_secs_f64()
        );
    }
}
