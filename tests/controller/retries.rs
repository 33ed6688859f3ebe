//! Retryable errors back off through the rate limiter then dead-letter; terminal errors and
//! panics dead-letter at once; requeue_after comes back on time.

use std::sync::atomic::{AtomicU32, Ordering};

use kube_chaos::controller::Action;

use super::*;

#[tokio::test(start_paused = true)]
async fn a_retryable_error_is_retried_after_5_10_20_ms_then_dead_lettered() {
    // max_retries 3: attempts at 0, 5, 15, 35 ms (the default limiter), the 4th failure is
    // dead-lettered with 4 attempts; nothing runs afterwards; metrics count it.
    let rec = Recorder::new();
    let c = Controller::builder(config(2, 3))
        .observer(rec.clone())
        .build(Arc::new(()), |_key, _| async {
            Err::<Action, _>(TestError::Flaky)
        })
        .unwrap();
    let run = start(&c);
    c.queue().add("ns/a".into());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        rec.lines(),
        [
            "0 ns/a started",
            "0 ns/a retryable attempt=1 retry_in=5ms",
            "5 ns/a started",
            "5 ns/a retryable attempt=2 retry_in=10ms",
            "15 ns/a started",
            "15 ns/a retryable attempt=3 retry_in=20ms",
            "35 ns/a started",
            "35 ns/a dead_lettered attempts=4",
            "35 ns/a letter retryable 4",
        ]
    );
    let letters = c.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (
            letters[0].key.as_str(),
            letters[0].error.as_str(),
            letters[0].attempts
        ),
        ("ns/a", "flaky dependency", 4)
    );
    assert_eq!(c.queue().num_requeues(&"ns/a".to_string()), 0, "forgotten");
    let m = c.metrics_text();
    assert!(
        m.contains("kube_chaos_dead_letters_total{controller=\"test\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("kube_chaos_reconcile_errors_total{controller=\"test\",class=\"retryable\"} 4"),
        "{m}"
    );
    assert!(
        m.contains("kube_chaos_reconcile_total{controller=\"test\"} 4"),
        "{m}"
    );
    assert!(
        m.contains("workqueue_retries_total{name=\"test\"} 3"),
        "{m}"
    );
    c.shutdown();
    run.await.unwrap();
}

#[tokio::test(start_paused = true)]
#[tracing_test::traced_test]
async fn a_terminal_error_is_dead_lettered_at_once_and_logged() {
    // One attempt only, even with max_retries 5; the dead letter is logged at error level.
    let rec = Recorder::new();
    let c = Controller::builder(config(1, 5))
        .observer(rec.clone())
        .build(Arc::new(()), |_key, _| async {
            Err::<Action, _>(TestError::Invalid)
        })
        .unwrap();
    let run = start(&c);
    c.queue().add("ns/bad".into());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        rec.lines(),
        [
            "0 ns/bad started",
            "0 ns/bad terminal_error",
            "0 ns/bad letter terminal 1"
        ]
    );
    assert_eq!(c.dead_letters()[0].error, "invalid spec");
    assert!(logs_contain("terminal reconcile error: dead-lettered"));
    assert!(logs_contain("ERROR"));
    c.shutdown();
    run.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reconcile_is_a_terminal_dead_letter_and_the_worker_survives() {
    // The first key panics; the single worker then still reconciles the second key.
    let rec = Recorder::new();
    let c = Controller::builder(config(1, 5))
        .observer(rec.clone())
        .build(Arc::new(()), |key: String, _| async move {
            if key == "ns/boom" {
                panic!("bad state in {key}");
            }
            Ok::<_, TestError>(Action::await_change())
        })
        .unwrap();
    let run = start(&c);
    c.queue().add("ns/boom".into());
    c.queue().add("ns/fine".into());
    settle().await;
    assert_eq!(
        c.dead_letters()[0].error,
        "reconcile panicked: bad state in ns/boom"
    );
    assert!(
        rec.lines().contains(&"0 ns/fine ok".to_string()),
        "{:?}",
        rec.lines()
    );
    assert_eq!(c.workers_alive(), 1);
    c.shutdown();
    run.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_success_after_a_dead_letter_clears_it() {
    // Terminal on the first call, fine on the second (a later change of the object).
    let calls = Arc::new(AtomicU32::new(0));
    let c = Controller::builder(config(1, 0))
        .build(calls.clone(), |_key, calls: Arc<AtomicU32>| async move {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(TestError::Invalid),
                _ => Ok(Action::await_change()),
            }
        })
        .unwrap();
    let run = start(&c);
    c.queue().add("ns/a".into());
    settle().await;
    assert_eq!(c.dead_letters().len(), 1);
    c.queue().add("ns/a".into());
    settle().await;
    assert_eq!(c.dead_letters(), []);
    c.shutdown();
    run.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn requeue_after_brings_the_key_back_at_exactly_that_time() {
    // requeue_after(7 s): reconciles at 0, 7, 14 s.
    let rec = Recorder::new();
    let c = Controller::builder(config(2, 0))
        .observer(rec.clone())
        .build(Arc::new(()), |_key, _| async {
            Ok::<_, TestError>(Action::requeue_after(Duration::from_secs(7)))
        })
        .unwrap();
    let run = start(&c);
    c.queue().add("ns/a".into());
    tokio::time::sleep(Duration::from_millis(14_500)).await;
    let starts: Vec<String> = rec
        .lines()
        .into_iter()
        .filter(|l| l.ends_with("started"))
        .collect();
    assert_eq!(
        starts,
        ["0 ns/a started", "7000 ns/a started", "14000 ns/a started"]
    );
    assert!(rec
        .lines()
        .contains(&"7000 ns/a requeue_after 7s".to_string()));
    c.shutdown();
    run.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_that_hangs_times_out_as_a_retryable_error() {
    // The first reconcile never ends; at the 10 s timeout it is a retryable error and the
    // retry (5 ms later) succeeds.
    let calls = Arc::new(AtomicU32::new(0));
    let rec = Recorder::new();
    let cfg = ControllerConfig {
        reconcile_timeout: Duration::from_secs(10),
        ..config(1, 3)
    };
    let c = Controller::builder(cfg)
        .observer(rec.clone())
        .build(calls, |_key, calls: Arc<AtomicU32>| async move {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, TestError>(Action::await_change())
        })
        .unwrap();
    let run = start(&c);
    c.queue().add("ns/a".into());
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        rec.lines(),
        [
            "0 ns/a started",
            "10000 ns/a retryable attempt=1 retry_in=5ms",
            "10005 ns/a started",
            "10005 ns/a ok"
        ]
    );
    c.shutdown();
    run.await.unwrap();
}
