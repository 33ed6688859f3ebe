//! Benchmarks of the simulated apiserver (a bench binary, not a test).
//!
//! Run: `cargo bench -p kube-chaos-harness --bench apiserver` (release profile).
//! Figures go to BENCHMARKS.md with the command that produced them.
//!
//! (a) 10,000 ConfigMap updates delivered to a watching `kube::Client` through the simulated
//!     HTTP stack (JSON encode, hyper, turmoil TCP, hyper, kube's line decoder): events/s of
//!     wall-clock time, once with the writes put straight into the store and once with every
//!     write itself an HTTP PATCH through a second kube client.
//! (a0) Beside the direct-writes figure, in the same run and interleaved with it: the JSON floor
//!     for the same events — each watch line encoded as the server writes it
//!     ([`watch_event_line`]) and decoded into a typed `WatchEvent<ConfigMap>` as kube's client
//!     does (`from_str` on the line) — and the ratio streamed / floor, medians of several
//!     repetitions (the machine is shared: the ratio measured in one run is what counts).
//! (b) One idle watch (kube's default 290 s `timeoutSeconds`, re-opened when it ends) over one
//!     simulated hour: simulated seconds per wall-clock second, at turmoil's default 1 ms tick
//!     and at 10 ms.
//!
//! A word after `--` runs only the figures whose letter it names: `-- a0` (streamed and
//! floor only, e.g. under `perf record`), `-- a`, `-- b`.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;
use kube_chaos_harness::apiserver::{watch_event_line, ApiServer, Clock, ClusterConfig};
use kube_chaos_harness::net::{client, ClientConfig};
use kube_chaos_harness::sim::SimBuilder;

const UPDATES: u32 = 10_000;
/// Interleaved repetitions of the streamed run and the floor.
const REPETITIONS: usize = 7;

fn cm(name: &str, v: u32) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {"v": v.to_string()}})
}

/// What one run of [`updates`] measured.
struct Streamed {
    /// The whole run: setup, 500 simulated ms of idle steps, the updates.
    wall: Duration,
    /// From just before the first write to the last event's arrival at the watcher.
    window: Duration,
    /// The part of `window` the writes took (they all land in the writer's first tick,
    /// before the server's host runs: the rest is delivery).
    writes: Duration,
    received: u32,
}

/// Runs UPDATES updates, written directly or over HTTP, to a watching client.
fn updates(through_http: bool) -> Streamed {
    let builder = SimBuilder::new(1)
        .duration(Duration::from_secs(3600))
        .cluster(|c| c.watch_cache_capacity = UPDATES as usize + 16);
    let (mut sim, server) = builder.build().expect("valid cluster");
    let received = Rc::new(Cell::new(0u32));
    let r = received.clone();
    let s: ApiServer = server.clone();
    let first_write = Rc::new(Cell::new(None::<Instant>));
    let last_event = Rc::new(Cell::new(None::<Instant>));
    let last_write = Rc::new(Cell::new(None::<Instant>));
    let (fw, le, lw) = (first_write.clone(), last_event.clone(), last_write.clone());
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
                Some(WatchEvent::Modified(_)) => {
                    r.set(r.get() + 1);
                    le.set(Some(Instant::now()));
                }
                Some(WatchEvent::Bookmark(_)) => {}
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
        Ok(())
    });
    sim.client("writer", async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        // The direct writes' objects are built before the window opens: building them is
        // the bench's work, not the apiserver's.
        let mut objects = (1..=UPDATES).map(|i| cm("bench", i)).collect::<Vec<_>>();
        objects.reverse();
        fw.set(Some(Instant::now()));
        for i in 1..=UPDATES {
            if through_http {
                let patch = Patch::Merge(serde_json::json!({"data": {"v": i.to_string()}}));
                api.patch("bench", &PatchParams::default(), &patch).await?;
            } else {
                s.put_object(objects.pop().expect("one object per update"))?;
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        lw.set(Some(Instant::now()));
        Ok(())
    });
    let start = Instant::now();
    sim.run().expect("simulation completes");
    let wall = start.elapsed();
    let (window, writes) = match (first_write.get(), last_write.get(), last_event.get()) {
        (Some(a), Some(w), Some(b)) => (b - a, w - a),
        _ => (wall, Duration::ZERO),
    };
    Streamed {
        wall,
        window,
        writes,
        received: received.get(),
    }
}

/// The objects of the streamed run's updates, as the store keeps them (written to a server
/// outside any simulation, with the same seed and epoch: same fields, same sizes).
fn update_objects() -> Vec<Arc<serde_json::Value>> {
    let epoch = Duration::from_secs(kube_chaos_harness::sim::EPOCH_SECS);
    let config = ClusterConfig {
        seed: 1,
        ..ClusterConfig::default()
    };
    let server = ApiServer::new(config, Clock::Sim { epoch }).expect("valid cluster");
    server.put_object(cm("bench", 0)).expect("valid object");
    (1..=UPDATES)
        .map(|i| server.put_object(cm("bench", i)).expect("valid object"))
        .collect()
}

/// The JSON floor: the wall time to encode every event's line as the server does and decode
/// it into a typed `WatchEvent<ConfigMap>` as kube's client does.
fn floor(objects: &[Arc<serde_json::Value>]) -> Duration {
    let start = Instant::now();
    for obj in objects {
        let line = watch_event_line("MODIFIED", obj);
        let line = std::str::from_utf8(&line[..line.len() - 1]).expect("UTF-8 line");
        let event: WatchEvent<ConfigMap> = serde_json::from_str(line).expect("a watch event");
        assert!(matches!(black_box(event), WatchEvent::Modified(_)));
    }
    start.elapsed()
}

/// The median of some durations.
fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn micros_per_event(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / f64::from(UPDATES)
}

/// (a0): the streamed runs and the floor, interleaved; prints the medians and their ratio.
fn streamed_against_floor() {
    let objects = update_objects();
    let (mut streamed, mut walls, mut floors) = (Vec::new(), Vec::new(), Vec::new());
    let mut writes = Vec::new();
    for _ in 0..REPETITIONS {
        let run = updates(false);
        assert_eq!(run.received, UPDATES, "every update is delivered");
        streamed.push(run.window);
        writes.push(run.writes);
        walls.push(run.wall);
        floors.push(floor(&objects));
    }
    let (streamed, wall, floor) = (median(streamed), median(walls), median(floors));
    let writes = median(writes);
    println!(
        "(a) {UPDATES} updates to a watching kube::Client, direct writes: {:.2} s wall, {:.0} events/s",
        wall.as_secs_f64(),
        f64::from(UPDATES) / wall.as_secs_f64()
    );
    let end_to_end = streamed.as_secs_f64() / floor.as_secs_f64();
    println!(
        "(a0) streamed {:.2} µs/event (first write to last event; the writes {:.2}), \
         JSON floor {:.2} µs/event, end to end {end_to_end:.2}x the floor \
         (the store's commits included; the floor has none) (medians of {REPETITIONS} \
         interleaved runs)",
        micros_per_event(streamed),
        micros_per_event(writes),
        micros_per_event(floor),
    );
    let delivery = streamed.saturating_sub(writes);
    let ratio = delivery.as_secs_f64() / floor.as_secs_f64();
    println!(
        "(a0) delivery alone (streamed minus the writes) {:.2} µs/event: {ratio:.2}x the floor, target 3x {}",
        micros_per_event(delivery),
        if ratio <= 3.0 { "met" } else { "NOT met" }
    );
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
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runs = |figure: &str| only.as_deref().is_none_or(|o| figure.starts_with(o));
    if runs("a0") {
        streamed_against_floor();
    }
    if runs("a'") {
        let run = updates(true);
        assert_eq!(run.received, UPDATES, "every update is delivered");
        println!(
            "(a') {UPDATES} updates to a watching kube::Client, HTTP PATCH writes: {:.2} s wall, {:.0} events/s",
            run.wall.as_secs_f64(),
            f64::from(UPDATES) / run.wall.as_secs_f64()
        );
    }
    if !runs("b") {
        return;
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
