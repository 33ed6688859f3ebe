//! `run::play_served` in-process against a kube-rs client: the server-side faults of a
//! scenario reach a real HTTP client on the wall clock (slow responses, a 429 storm with
//! `Retry-After`, latency at the socket, a paused watch cache), and the report's `backoff`
//! judges a client that retries in a tight loop — and passes kube-rs, which waits for
//! `Retry-After` by itself. Assertions allow for scheduling jitter:
//! only lower bounds on times, and each probe well inside its fault's window.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kube_chaos_harness::run::{play_served, served_cluster, PlayOptions};
use kube_chaos_harness::serve::{serve, ServeOptions};
use kube_chaos_harness::{subject, Scenario};
use serde_json::json;
use tokio::time::Instant;

use super::chaos::verdict;

const SCENARIO: &str = r#"{"version": 1, "name": "server-faults", "duration": "5s", "settle": "200ms",
    "subject": {"name": "external"}, "objects": [{"name": "a"}],
    "faults": [
      {"slow_responses": {"at": "500ms", "for": "600ms", "delay": "400ms", "requests": "read"}},
      {"http_errors": {"at": "1300ms", "for": "500ms", "code": 429, "rate": 1.0, "retry_after": "1s", "requests": "read"}},
      {"latency": {"at": "2800ms", "for": "600ms", "latency": "300ms"}},
      {"cache_pause": {"at": "3500ms", "for": "1s"}}
    ]}"#;

/// One GET on a fresh connection, as a client that never waits: its status.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> u16 {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "tight-loop/1")
        .body(Empty::<bytes::Bytes>::new())
        .expect("a request");
    send.send_request(req)
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_faults_reach_a_real_client_on_the_wall_clock_and_a_tight_retry_loop_is_judged()
{
    let s = Scenario::parse(SCENARIO, "server-faults", subject::registry()).expect("valid");
    let served = serve(
        ([127, 0, 0, 1], 0).into(),
        served_cluster(&s),
        ServeOptions::default(),
    )
    .await
    .expect("serves");
    let zero = served.access.started();
    let (_live, rx) = tokio::sync::mpsc::channel(1);
    let handles = served.clone_handles();
    let play =
        tokio::spawn(async move { play_served(&s, &handles, rx, &PlayOptions::default()).await });
    let config = kube::Config::new(format!("http://{}", served.addr).parse().unwrap());
    let api: Api<ConfigMap> = Api::default_namespaced(kube::Client::try_from(config).unwrap());
    let at = |ms: u64| tokio::time::sleep_until(zero + Duration::from_millis(ms));
    let timed = async |api: &Api<ConfigMap>| {
        let t = Instant::now();
        api.get("a").await.expect("get");
        t.elapsed()
    };
    at(700).await;
    assert!(
        timed(&api).await >= Duration::from_millis(400),
        "slow_responses"
    );
    at(1400).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(raw_get(served.addr, "/api/v1/namespaces/default/configmaps/a").await);
    }
    at(1500).await;
    // kube-rs retries a 429 itself, after its Retry-After: the GET succeeds once the storm ends.
    let kube_retry = timed(&api).await;
    at(2900).await;
    let latency = timed(&api).await;
    at(3600).await;
    at(2900).await;
    served
        .server
        .put_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "default"}}))
        .expect("a write");
    let names = |l: kube::api::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect()
    };
    let cached = api
        .list(&ListParams::default().match_any())
        .await
        .expect("list from the cache");
    assert_eq!(names(cached), ["a"], "the paused cache serves old state");
    let fresh = api
        .list(&ListParams::default())
        .await
        .expect("a consistent list");
    assert_eq!(names(fresh), ["a", "new"]);
    let report = play.await.expect("joins").expect("plays").render();
    assert_eq!(codes, [429; 5], "{report}");
    assert!(
        kube_retry >= Duration::from_millis(900),
        "kube-rs waited: {kube_retry:?}\n{report}"
    );
    assert!(
        latency >= Duration::from_millis(300),
        "latency at the socket: {latency:?}\n{report}"
    );
    assert!(report.contains("-> 429 Retry-After: 1"), "{report}");
    // Four retries before Retry-After and one tight loop, all the raw client's; kube-rs's
    // retry waited, so it is not named.
    assert_eq!(verdict(&report, "backoff"), "VIOLATED (5)", "{report}");
    let backoff: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("Retry-After: 1") && l.contains("retried"))
        .collect();
    assert_eq!(backoff.len(), 4, "{report}");
    assert!(
        backoff.iter().all(|l| l.contains("tight-loop/1: retried")),
        "{report}"
    );
    assert!(
        report.contains(
            "tight-loop/1: 4 retries in a row less than 100ms after a failure: a tight loop"
        ),
        "{report}"
    );
}
