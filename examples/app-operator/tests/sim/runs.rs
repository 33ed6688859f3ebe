//! Properties of a run the exploration API relies on: one seed, one history (on both
//! runtimes); `shutdown` stops the operator.

use std::sync::{Arc, Mutex};

use super::*;

/// Creates `a` and `b`, updates `a`, deletes `b` (as in `workload.rs`).
async fn small_workload(api: Api<App>) -> TestResult {
    until(1.0).await;
    create(&api, "a", "v1").await?;
    create(&api, "b", "v1").await?;
    until(15.0).await;
    update(&api, "a", "v2").await?;
    until(25.0).await;
    delete(&api, "b").await
}

/// Every write the server committed, one line each: revision, time, type, object.
fn history(seed: u64, runtime: Runtime) -> Vec<String> {
    kube_chaos_harness::seeded(seed, || {
        let (mut sim, server) = world(seed, Variant::Correct, runtime, small_workload);
        step_to(&mut sim, 40.0);
        let history = server.history();
        let line = |e: &Arc<kube_chaos_harness::apiserver::StoreEvent>| {
            format!("{} {:?} {:?} {}", e.rev, e.at, e.kind, e.object)
        };
        history.iter().map(line).collect()
    })
}

#[test]
fn one_seed_gives_one_history_on_both_runtimes() {
    // Two runs of a seed commit byte-identical writes (uids, times, managed fields); the
    // history is long enough to mean something.
    for runtime in RUNTIMES {
        let (a, b) = (history(11, runtime), history(11, runtime));
        assert!(a.len() >= 15, "{runtime:?}: only {} writes", a.len());
        if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            panic!(
                "{runtime:?}: runs differ at write {i}: {:?} vs {:?}",
                a.get(i),
                b.get(i)
            );
        }
    }
}

/// When the operator on `runtime` returned, with shutdown at 10 s; `a` is created at 1 s.
fn stopped_at(runtime: Runtime) -> (Option<f64>, Result<(), String>) {
    kube_chaos_harness::seeded(12, || {
        let (mut sim, server) = world(12, Variant::Correct, runtime, |api| async move {
            until(1.0).await;
            create(&api, "a", "v1").await
        });
        let stopped = Arc::new(Mutex::new(None));
        let s = stopped.clone();
        sim.host("stoppable", move || {
            let s = s.clone();
            async move {
                let c = client(&ClientConfig::new(1));
                let shutdown = tokio::time::sleep(secs(10.0));
                match runtime {
                    Runtime::KubeRuntime => run(c, Variant::Correct, shutdown).await,
                    Runtime::Ours => run_ours(c, Variant::Correct, shutdown).await,
                }
                *s.lock().unwrap() = Some(turmoil::elapsed().as_secs_f64());
                Ok(())
            }
        });
        step_to(&mut sim, 30.0);
        let at = *stopped.lock().unwrap();
        (at, judge(&sim, &server))
    })
}

#[test]
fn the_operator_returns_once_shutdown_completes() {
    // A second operator stopped at 10 s returns at once (nothing in flight), while the
    // first one keeps the App converged.
    for runtime in RUNTIMES {
        let (at, judged) = stopped_at(runtime);
        let at = at.unwrap_or_else(|| panic!("{runtime:?}: never returned"));
        assert!((10.0..10.5).contains(&at), "{runtime:?} returned at {at} s");
        assert_eq!(judged, Ok(()), "{runtime:?}");
    }
}
