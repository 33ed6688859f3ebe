//! The axum router (feature `axum`): probes and metrics over HTTP.

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use kube_chaos::controller::{router, Action};
use tower::ServiceExt;

use super::*;

async fn fetch(c: &Controller, path: &str) -> (StatusCode, String) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let res = router(c.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn the_router_serves_probes_and_metrics() {
    // Before run: 503 with the reason; running: 200; /metrics has both metric families.
    let c = Controller::builder(config(1, 0))
        .build(Arc::new(()), |_k, _| async {
            Ok::<_, TestError>(Action::await_change())
        })
        .unwrap();
    assert_eq!(
        fetch(&c, "/healthz").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "workers not started\n".to_string()
        )
    );
    let run = start(&c);
    c.queue().add("ns/a".into());
    settle().await;
    assert_eq!(
        fetch(&c, "/healthz").await,
        (StatusCode::OK, "ok\n".to_string())
    );
    assert_eq!(
        fetch(&c, "/readyz").await,
        (StatusCode::OK, "ok\n".to_string())
    );
    let (status, text) = fetch(&c, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("kube_chaos_reconcile_total{controller=\"test\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_adds_total{name=\"test\"} 1"),
        "{text}"
    );
    c.shutdown();
    run.await.unwrap();
}
