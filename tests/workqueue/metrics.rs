//! The workqueue metrics under client-go's names, encoded by prometheus-client.

use kube_chaos::workqueue::{WorkQueue, WorkQueueMetrics};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

use super::*;

fn scrape(r: &Registry) -> String {
    let mut s = String::new();
    encode(&mut s, r).expect("encodes");
    s
}

/// The value of the sample line starting with `series`.
fn sample(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(series))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn metrics_follow_adds_gets_retries_and_in_flight_time() {
    // Two adds (one collapsed), one retry, one item in flight for 2 s: the series say so.
    let mut registry = Registry::default();
    let metrics = WorkQueueMetrics::register(&mut registry);
    let q: WorkQueue<&str> = WorkQueue::builder("q1").metrics(&metrics).build();
    q.add("a");
    q.add("a");
    q.add("b");
    let text = scrape(&registry);
    assert_eq!(sample(&text, "workqueue_depth{name=\"q1\"}"), 2.0);
    assert_eq!(sample(&text, "workqueue_adds_total{name=\"q1\"}"), 2.0);
    tokio::time::sleep(ms(250)).await;
    let a = q.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = scrape(&registry);
    assert_eq!(sample(&text, "workqueue_depth{name=\"q1\"}"), 1.0);
    assert_eq!(
        sample(&text, "workqueue_unfinished_work_seconds{name=\"q1\"}"),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "workqueue_longest_running_processor_seconds{name=\"q1\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(&text, "workqueue_queue_duration_seconds_sum{name=\"q1\"}"),
        0.25
    );
    q.add_rate_limited(a);
    q.done(&a);
    let text = scrape(&registry);
    assert_eq!(sample(&text, "workqueue_retries_total{name=\"q1\"}"), 1.0);
    assert_eq!(
        sample(&text, "workqueue_work_duration_seconds_count{name=\"q1\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "workqueue_unfinished_work_seconds{name=\"q1\"}"),
        0.0
    );
    for name in [
        "# TYPE workqueue_depth gauge",
        "# TYPE workqueue_adds counter",
        "# TYPE workqueue_queue_duration_seconds histogram",
        "# TYPE workqueue_work_duration_seconds histogram",
        "# TYPE workqueue_unfinished_work_seconds gauge",
        "# TYPE workqueue_longest_running_processor_seconds gauge",
        "# TYPE workqueue_retries counter",
    ] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }
}
