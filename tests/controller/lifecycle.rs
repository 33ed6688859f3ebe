//! Shutdown within and past the drain deadline, health, bad configuration, run-once.

use kube_chaos::controller::{Action, ConfigError, RunError};

use super::*;

fn sleeper(c: ControllerConfig, rec: Arc<Recorder>, took: Duration) -> Controller {
    Controller::builder(c)
        .observer(rec)
        .build(Arc::new(()), move |_key, _| async move {
            tokio::time::sleep(took).await;
            Ok::<_, TestError>(Action::await_change())
        })
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_in_flight_and_queued_work_within_the_deadline() {
    // One worker, reconciles of 2 s, a and b queued; shutdown at 1 s with a 10 s deadline:
    // a finishes at 2 s, b at 4 s, and run returns then; adds after shutdown are dropped.
    let rec = Recorder::new();
    let cfg = ControllerConfig {
        drain_deadline: Duration::from_secs(10),
        ..config(1, 0)
    };
    let c = sleeper(cfg, rec.clone(), Duration::from_secs(2));
    let run = start(&c);
    c.queue().add("ns/a".into());
    c.queue().add("ns/b".into());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    c.shutdown();
    settle().await;
    c.queue().add("ns/late".into());
    let report = run.await.unwrap();
    assert_eq!(Instant::now() - t0, Duration::from_secs(3));
    assert_eq!(
        report,
        ShutdownReport {
            drained: true,
            abandoned: vec![],
            never_started: 0
        }
    );
    assert_eq!(
        rec.lines(),
        [
            "0 ns/a started",
            "2000 ns/a ok",
            "2000 ns/b started",
            "4000 ns/b ok"
        ]
    );
    assert_eq!(c.workers_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_in_flight_work_at_the_deadline() {
    // Reconciles of 100 s, a 5 s deadline: run returns 5 s after shutdown, reporting the
    // abandoned key and the one never started; the observer is told.
    let rec = Recorder::new();
    let cfg = ControllerConfig {
        drain_deadline: Duration::from_secs(5),
        ..config(1, 0)
    };
    let c = sleeper(cfg, rec.clone(), Duration::from_secs(100));
    let run = start(&c);
    c.queue().add("ns/a".into());
    c.queue().add("ns/b".into());
    settle().await;
    let t0 = Instant::now();
    c.shutdown();
    let report = run.await.unwrap();
    assert_eq!(Instant::now() - t0, Duration::from_secs(5));
    assert_eq!(
        report,
        ShutdownReport {
            drained: false,
            abandoned: vec!["ns/a".into()],
            never_started: 1
        }
    );
    assert_eq!(rec.lines(), ["0 ns/a started", "5000 ns/a abandoned"]);
    assert_eq!(c.workers_alive(), 0, "aborted workers are gone");
}

#[tokio::test(start_paused = true)]
async fn health_follows_the_lifecycle_and_a_controller_runs_once() {
    // Not started: neither ready nor live; running: both; stopped: neither; second run refused.
    let c = sleeper(config(3, 0), Recorder::new(), ms(1));
    assert_eq!(c.liveness(), Err(vec!["workers not started".to_string()]));
    assert!(c.readiness().is_err());
    let run = start(&c);
    settle().await;
    assert_eq!((c.liveness(), c.readiness()), (Ok(()), Ok(())));
    assert_eq!(c.workers_alive(), 3);
    c.shutdown();
    run.await.unwrap();
    assert_eq!(c.liveness(), Err(vec!["stopped".to_string()]));
    assert_eq!(c.readiness(), Err(vec!["shutting down".to_string()]));
    assert_eq!(c.run().await, Err(RunError::AlreadyRun("test".into())));
}

#[test]
fn a_bad_configuration_is_an_error_not_a_panic() {
    // concurrency 0 and too many retries are refused by build.
    let build = |cfg| {
        Controller::builder(cfg)
            .build(Arc::new(()), |_k, _| async {
                Ok::<_, TestError>(Action::await_change())
            })
            .map(drop)
    };
    assert_eq!(build(config(0, 1)), Err(ConfigError::ZeroConcurrency));
    assert!(matches!(
        build(config(1, 1_000_000)),
        Err(ConfigError::TooManyRetries { .. })
    ));
}
