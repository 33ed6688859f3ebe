//! Determinism (DESIGN.md §8): a simulation is a pure function of its seed. One busy
//! scenario runs twice; the logs of every request (with its body), response and streamed
//! watch line must be byte-identical, and a different seed must give a different log.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube_chaos::backoff::Backoff;
use kube_chaos_harness::net::{replica_host, ReplicaPolicy};
use kube_chaos_harness::sim::crash_replica;
use rand::{Rng, SeedableRng};

use super::*;

/// Three replicas (one lagging, small caches), a writer with seeded think times, two
/// kube-runtime watchers (one on random replicas, one pinned to the lagging replica), a
/// partition, a crash and a restart.
fn busy(seed: u64) -> Vec<String> {
    let builder = SimBuilder::new(seed).replicas(3).cluster(|c| {
        c.access_log = true;
        c.watch_cache_capacity = 16;
        c.seed = seed;
    });
    let (mut sim, server) = builder.build().expect("valid");
    server.set_cache_lag(2, secs(3));
    sim.client("writer", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(3)));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for i in 0..60u32 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..2000))).await;
            let name = format!("c{}", i % 7);
            // Errors (conflicts, refused connections during the crash) are part of the log.
            let _ = match rng.random_range(0..3) {
                0 => api
                    .create(&PostParams::default(), &cm(&name, &i.to_string()))
                    .await
                    .map(drop),
                1 => api
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(serde_json::json!({"data": {"k": i.to_string()}})),
                    )
                    .await
                    .map(drop),
                _ => api.delete(&name, &DeleteParams::default()).await.map(drop),
            };
        }
        let _ = api.list(&ListParams::default().limit(3)).await;
        Ok(())
    });
    for w in 0..2u64 {
        sim.client(format!("watcher-{w}"), async move {
            let policy = if w == 0 {
                ReplicaPolicy::Random { seed }
            } else {
                ReplicaPolicy::Pinned(2)
            };
            let api: Api<ConfigMap> =
                Api::default_namespaced(client(&ClientConfig::new(3).policy(policy)));
            let mut s = watcher(api, watcher::Config::default().timeout(20))
                .backoff(Backoff::reflector(Some(seed + w)))
                .boxed();
            let until = tokio::time::Instant::now() + secs(90);
            while tokio::time::timeout_at(until, s.next()).await.is_ok() {}
            Ok(())
        });
    }
    while sim.elapsed() < secs(20) {
        sim.step().expect("steps");
    }
    sim.partition("watcher-1", replica_host(2));
    crash_replica(&mut sim, &server, 0);
    while sim.elapsed() < secs(40) {
        sim.step().expect("steps");
    }
    sim.repair("watcher-1", replica_host(2));
    sim.bounce(replica_host(0));
    sim.run().expect("ran");
    server.access_log()
}

/// Runs `f` while another thread keeps taking tokio task ids (process-wide), as the other
/// simulations of a parallel test run do.
fn with_busy_neighbour<T>(f: impl FnOnce() -> T) -> T {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let neighbour = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::spawn(async {}).await.expect("runs");
            }
        });
    });
    let out = f();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    neighbour.join().expect("the neighbour ends");
    out
}

#[test]
fn the_log_does_not_depend_on_what_else_runs_in_the_process() {
    // Task ids are process-wide; anything ordered by them (turmoil's crash drops a host's
    // tasks in that order) makes a run depend on its neighbours. CI caught exactly that
    // between parallel tests; here a neighbour thread provokes it on purpose.
    let a = busy(7);
    for round in 0..3 {
        let b = with_busy_neighbour(|| busy(7));
        if let Some(i) = a.iter().zip(&b).position(|(x, y)| x != y) {
            panic!(
                "with a busy neighbour (round {round}) the runs diverge at line {i}:\n  {}\n  {}",
                a[i], b[i]
            );
        }
        assert_eq!(a.len(), b.len());
    }
}

#[test]
fn the_same_seed_gives_a_byte_identical_log_of_every_request_and_response() {
    let a = busy(7);
    let b = busy(7);
    assert!(a.len() > 100, "a busy log: {} lines", a.len());
    assert!(
        a.iter().any(|l| l.contains("watch#")),
        "watch lines are logged"
    );
    assert!(
        a.iter()
            .any(|l| l.contains("-> 409") || l.contains("-> 404")),
        "errors are logged"
    );
    assert!(
        a.iter()
            .any(|l| l.contains("PATCH") && l.contains(r#"<- {"data":{"k":"#)),
        "request bodies are logged"
    );
    if let Some(i) = a.iter().zip(&b).position(|(x, y)| x != y) {
        panic!("runs diverge at line {i}:\n  {}\n  {}", a[i], b[i]);
    }
    assert_eq!(a.len(), b.len());
    assert_ne!(a, busy(8), "another seed, another history");
}

/// The kube-runtime-controller fixture's trace (20 sources, many keys pending at once).
fn kube_runtime_fixture() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/kube-runtime-controller-partition-410.json");
    let registry = kube_chaos_harness::subject::registry();
    let s = kube_chaos_harness::Scenario::load(&path, registry).expect("the fixture loads");
    kube_chaos_harness::run::run(&s, None).expect("runs").trace
}

#[test]
fn kube_runtimes_controller_with_many_pending_keys_does_not_depend_on_its_neighbours() {
    // kube-runtime keeps pending keys in a std HashSet; the run seeds std's randomness on a
    // fresh thread, so neither an earlier run in this process nor a busy neighbour thread
    // changes the order its 20 keys are reconciled in.
    let a = kube_runtime_fixture();
    let b = with_busy_neighbour(kube_runtime_fixture);
    let d = kube_chaos_harness::run::first_divergence("trace", &a, &b, 8);
    assert!(d.is_none(), "{}", d.unwrap().render());
    assert!(a.matches(" reconcile ").count() >= 100, "a busy controller");
}
