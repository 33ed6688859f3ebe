//! The informer against kube-runtime's reflector on the same simulated stream (a bench binary,
//! not a test).
//!
//! Run: `cargo bench -p kube-chaos-harness --bench informer` (release profile).
//! Figures go to BENCHMARKS.md with the command that produced them.
//!
//! Three subjects read the same seeded simulation: a bare `Api::watch` (the floor: what the
//! simulated apiserver, HTTP, turmoil TCP and kube's decoder cost), our `Informer` with a
//! counting handler, and kube-runtime's `reflector(writer, watcher(api, config))` with the
//! seeded client-go backoff, consumed by a counting loop.
//!
//! (a) Throughput: once a subject has synced on an empty namespace, a writer host puts
//!     1,000 creates then 9,000 updates (round robin) straight into the store; the wall time
//!     from the first write to the 10,000th event delivered gives events/s. Each subject runs
//!     `RUNS` times, the subjects taking turns; the median counts.
//! (b) Memory: 10,000 ConfigMaps with 1 KiB of data each are stored before the subject
//!     starts; live heap bytes (a counting global allocator) after sync and a 5 s settle,
//!     minus the bytes live just before the subject's client was made, per object; then what
//!     stopping the subject frees (connections, reflector state) and what dropping its cache
//!     frees after that (the cache's own share).

use std::alloc::System;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube_chaos::backoff::Backoff;
use kube_chaos::informer::{HandlerFns, Informer, InformerConfig};
use kube_chaos_harness::apiserver::ApiServer;
use kube_chaos_harness::net::{client, ClientConfig};
use kube_chaos_harness::sim::SimBuilder;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::sync::Notify;

/// Counts live heap bytes (unsafe_code is forbidden in this workspace: the wrapper's
/// `GlobalAlloc` impl comes from `stats_alloc`).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CREATES: u32 = 1_000;
const UPDATES: u32 = 9_000;
const EVENTS: u32 = CREATES + UPDATES;
const RUNS: usize = 9;
const CACHED: u32 = 10_000;
const SEED: u64 = 11;

/// Who reads the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// A bare `Api::watch` from a list's RV.
    RawWatch,
    /// `kube_chaos::informer::Informer` with one counting handler.
    Informer,
    /// kube-runtime's `reflector(writer, watcher(api, config))`, seeded backoff.
    KubeRuntime,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::RawWatch => "bare Api::watch",
            Subject::Informer => "kube-chaos Informer",
            Subject::KubeRuntime => "kube-runtime reflector",
        }
    }
}

fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

/// ConfigMap `default/{name}`; `payload` bytes of data over four keys.
fn cm(name: &str, v: u32, payload: usize) -> serde_json::Value {
    let chunk = payload / 4;
    let mut data = serde_json::Map::new();
    data.insert("v".into(), v.to_string().into());
    for k in 0..4 {
        let fill: String = format!("{name}-{k}-{v}-")
            .chars()
            .cycle()
            .take(chunk)
            .collect();
        data.insert(format!("k{k}"), fill.into());
    }
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
        "data": data})
}

fn informer_config() -> InformerConfig {
    InformerConfig {
        seed: Some(SEED),
        ..InformerConfig::default()
    }
}

/// Runs `subject` until it has seen `EVENTS` watch events; sets `ready` once synced and
/// `done` (wall clock) when the last event arrives.
async fn consume(
    subject: Subject,
    api: Api<ConfigMap>,
    ready: Rc<Cell<bool>>,
    done: Rc<Cell<Option<Instant>>>,
) -> Result<(), Box<dyn std::error::Error>> {
    match subject {
        Subject::RawWatch => {
            let rv = api
                .list(&Default::default())
                .await?
                .metadata
                .resource_version
                .unwrap_or_default();
            let mut w = Box::pin(
                api.watch(&WatchParams::default().timeout(3000), &rv)
                    .await?,
            );
            ready.set(true);
            let mut n = 0;
            while n < EVENTS {
                match w.try_next().await? {
                    Some(WatchEvent::Added(_) | WatchEvent::Modified(_)) => n += 1,
                    Some(WatchEvent::Bookmark(_)) => {}
                    other => return Err(format!("unexpected {other:?}").into()),
                }
            }
        }
        Subject::Informer => {
            let informer = Informer::new(api, informer_config());
            let (count, all) = (Arc::new(AtomicU32::new(0)), Arc::new(Notify::new()));
            let bump = {
                let (count, all) = (count.clone(), all.clone());
                move || {
                    if count.fetch_add(1, Ordering::Relaxed) + 1 == EVENTS {
                        all.notify_one();
                    }
                }
            };
            let bump2 = bump.clone();
            informer.add_handler(
                HandlerFns::new()
                    .on_add(move |_: &Arc<ConfigMap>, _| bump())
                    .on_update(move |_, _| bump2()),
            );
            let run = tokio::spawn({
                let i = informer.clone();
                async move { i.run().await }
            });
            informer.wait_for_sync().await;
            ready.set(true);
            all.notified().await;
            informer.stop();
            run.await?;
        }
        Subject::KubeRuntime => {
            let (_reader, writer) = reflector::store::<ConfigMap>();
            let stream =
                watcher(api, watcher::Config::default()).backoff(Backoff::reflector(Some(SEED)));
            let mut stream = Box::pin(reflector(writer, stream));
            let mut n = 0;
            while n < EVENTS {
                match stream.next().await.expect("a watcher never ends")? {
                    watcher::Event::InitDone => ready.set(true),
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) => n += 1,
                    watcher::Event::Init | watcher::Event::InitApply(_) => {}
                }
            }
        }
    }
    done.set(Some(Instant::now()));
    Ok(())
}

/// Wall time from the first write to the last event for one run of `subject`.
fn throughput_run(subject: Subject) -> Duration {
    let builder = SimBuilder::new(SEED)
        .duration(Duration::from_secs(3600))
        .cluster(|c| c.watch_cache_capacity = EVENTS as usize + 16);
    let (mut sim, server) = builder.build().expect("valid cluster");
    let ready = Rc::new(Cell::new(false));
    let started: Rc<Cell<Option<Instant>>> = Rc::default();
    let done: Rc<Cell<Option<Instant>>> = Rc::default();
    let (r, d) = (ready.clone(), done.clone());
    sim.client("subject", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        consume(subject, api, r, d).await
    });
    let (r, st) = (ready.clone(), started.clone());
    let s: ApiServer = server.clone();
    sim.client("writer", async move {
        while !r.get() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        st.set(Some(Instant::now()));
        for i in 0..EVENTS {
            let (name, v) = if i < CREATES {
                (i, 0)
            } else {
                ((i - CREATES) % CREATES, i)
            };
            s.put_object(cm(&format!("cm-{name:05}"), v, 64))?;
            if i % 100 == 99 {
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    });
    sim.run().expect("simulation completes");
    let (start, end) = (started.get().expect("writes"), done.get().expect("done"));
    end - start
}

/// Live-byte deltas of one memory run, in bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// Live after sync and a settle, minus live just before the subject's client was made.
    synced: i64,
    /// Freed by stopping the subject (its connections, reflector state), cache kept.
    stopped: i64,
    /// Freed by then dropping the cache.
    dropped: i64,
}

/// Memory deltas around one subject caching `CACHED` ConfigMaps.
fn memory_run(subject: Subject) -> Memory {
    let builder = SimBuilder::new(SEED).duration(Duration::from_secs(600));
    let (mut sim, server) = builder.build().expect("valid cluster");
    for i in 0..CACHED {
        server
            .put_object(cm(&format!("cm-{i:05}"), i, 1024))
            .expect("stored");
    }
    let out: Rc<Cell<Memory>> = Rc::default();
    let o = out.clone();
    sim.client("subject", async move {
        let settle = Duration::from_secs(5);
        // Let the replica's cache take in the stored objects first: it is not the subject's.
        tokio::time::sleep(settle).await;
        let before = live_bytes();
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        let (synced, stopped, dropped) = match subject {
            Subject::Informer => {
                let informer = Informer::new(api, informer_config());
                let count = Arc::new(AtomicU32::new(0));
                let c = count.clone();
                informer.add_handler(HandlerFns::new().on_add(move |_: &Arc<ConfigMap>, _| {
                    c.fetch_add(1, Ordering::Relaxed);
                }));
                let run = tokio::spawn({
                    let i = informer.clone();
                    async move { i.run().await }
                });
                informer.wait_for_sync().await;
                tokio::time::sleep(settle).await;
                assert_eq!(informer.store().len(), CACHED as usize);
                assert_eq!(count.load(Ordering::Relaxed), CACHED);
                let synced = live_bytes();
                informer.stop();
                run.await?;
                tokio::time::sleep(settle).await;
                let stopped = live_bytes();
                drop(informer);
                (synced, stopped, live_bytes())
            }
            Subject::KubeRuntime => {
                let (reader, writer) = reflector::store::<ConfigMap>();
                let stream = watcher(api, watcher::Config::default())
                    .backoff(Backoff::reflector(Some(SEED)));
                let mut stream = Box::pin(reflector(writer, stream));
                loop {
                    let e = stream.next().await.expect("a watcher never ends")?;
                    if matches!(e, watcher::Event::InitDone) {
                        break;
                    }
                }
                tokio::time::sleep(settle).await;
                assert_eq!(reader.state().len(), CACHED as usize);
                let synced = live_bytes();
                drop(stream);
                tokio::time::sleep(settle).await;
                let stopped = live_bytes();
                drop(reader);
                (synced, stopped, live_bytes())
            }
            Subject::RawWatch => unreachable!("no cache"),
        };
        o.set(Memory {
            synced: synced - before,
            stopped: synced - stopped,
            dropped: stopped - dropped,
        });
        Ok(())
    });
    sim.run().expect("simulation completes");
    out.get()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if cfg!(debug_assertions) {
        eprintln!(
            "note: a debug build; figures for BENCHMARKS.md come from `cargo bench` (release)"
        );
    }
    // Runs interleave subjects, so that load from elsewhere on the machine hits all of them.
    let subjects = [Subject::RawWatch, Subject::Informer, Subject::KubeRuntime];
    let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); subjects.len()];
    for _ in 0..RUNS {
        for (i, subject) in subjects.iter().enumerate() {
            runs[i].push(throughput_run(*subject));
        }
    }
    let walls: Vec<Duration> = runs.into_iter().map(median).collect();
    for (subject, wall) in subjects.iter().zip(&walls) {
        println!(
            "(a) {EVENTS} events ({CREATES} creates, {UPDATES} updates), {}: median of {RUNS} {:.3} s wall, {:.0} events/s",
            subject.label(),
            wall.as_secs_f64(),
            f64::from(EVENTS) / wall.as_secs_f64()
        );
    }
    let per_event_us =
        |w: Duration| (w.as_secs_f64() - walls[0].as_secs_f64()) * 1e6 / f64::from(EVENTS);
    let (ours, theirs) = (walls[1], walls[2]);
    println!(
        "(a) events/s ratio kube-chaos / kube-runtime: {:.2}; client-side cost beyond the bare watch: kube-chaos {:.2} µs/event, kube-runtime {:.2} µs/event",
        theirs.as_secs_f64() / ours.as_secs_f64(),
        per_event_us(ours),
        per_event_us(theirs)
    );
    let sample = serde_json::to_vec(&cm("cm-00000", 0, 1024))
        .expect("json")
        .len();
    let mut per_object = Vec::new();
    for subject in [Subject::Informer, Subject::KubeRuntime] {
        let m = memory_run(subject);
        let n = i64::from(CACHED);
        println!(
            "(b) {CACHED} cached ConfigMaps (~{sample} B of JSON each, {} B struct), {}: {} B live per object after sync; of which {} B freed by stopping it and {} B by dropping its cache",
            std::mem::size_of::<ConfigMap>(),
            subject.label(),
            m.synced / n,
            m.stopped / n,
            m.dropped / n
        );
        per_object.push(m);
    }
    let ratio = |f: fn(&Memory) -> i64| f(&per_object[0]) as f64 / f(&per_object[1]) as f64;
    println!(
        "(b) memory per cached object ratio kube-chaos / kube-runtime: {:.2} live after sync, {:.2} held by the cache",
        ratio(|m| m.synced),
        ratio(|m| m.dropped)
    );
}
