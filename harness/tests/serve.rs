//! `kube-chaos serve`: the simulated apiserver on a real loopback port, reached by a stock
//! `kube::Client` built from a `kube::Config`, and by kubectl when it is installed.

use std::io::Write;
use std::process::{Command, Stdio};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;
use kube_chaos_harness::apiserver::ClusterConfig;
use kube_chaos_harness::serve::serve;

async fn start() -> String {
    let served = serve(([127, 0, 0, 1], 0).into(), ClusterConfig::default())
        .await
        .expect("serves");
    format!("http://{}", served.addr)
}

#[tokio::test]
async fn a_stock_kube_client_talks_to_the_served_apiserver_over_real_tcp() {
    // Proves the server is transport-agnostic: the same code on tokio's TcpListener.
    let url = start().await;
    let config = kube::Config::new(url.parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "a"}, "data": {"k": "v"}}))
            .unwrap();
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let mut w = Box::pin(
        api.watch(
            &WatchParams::default().timeout(5),
            &created.resource_version().unwrap(),
        )
        .await
        .expect("watch"),
    );
    let mut next = cm.clone();
    next.metadata.name = Some("b".into());
    api.create(&PostParams::default(), &next)
        .await
        .expect("create b");
    match w.try_next().await.expect("stream") {
        Some(WatchEvent::Added(o)) => assert_eq!(o.name_any(), "b"),
        other => panic!("expected ADDED b, got {other:?}"),
    }
    let names: Vec<_> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

/// Runs kubectl against `url` with an empty kubeconfig; returns (success, stdout + stderr).
fn kubectl(url: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", "/dev/null")
        .arg("--server")
        .arg(url)
        .arg("--request-timeout=20s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("kubectl finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn kubectl_discovers_creates_lists_labels_and_deletes_against_the_served_apiserver() {
    // Proves discovery and CRUD are real enough for kubectl (the reference client).
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: kubectl is not on PATH (.ci/run installs it where the package exists)");
        return;
    }
    let url = start().await;
    let run = move |args: Vec<&'static str>, stdin: Option<&'static str>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || kubectl(&url, &args, stdin))
                .await
                .expect("joins")
        }
    };
    let manifest = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"demo","namespace":"default"},"data":{"a":"b"}}"#;
    let steps: Vec<(Vec<&'static str>, Option<&'static str>, &str)> = vec![
        (vec!["api-resources", "--no-headers"], None, "cm"),
        (
            vec!["create", "-f", "-", "--validate=false"],
            Some(manifest),
            "configmap/demo created",
        ),
        (
            vec![
                "get",
                "cm",
                "demo",
                "-n",
                "default",
                "-o",
                "jsonpath={.data.a}",
            ],
            None,
            "b",
        ),
        (
            vec!["label", "cm", "demo", "tier=web", "-n", "default"],
            None,
            "labeled",
        ),
        (
            vec![
                "get",
                "configmaps",
                "-l",
                "tier=web",
                "-n",
                "default",
                "-o",
                "name",
            ],
            None,
            "configmap/demo",
        ),
        (
            vec!["delete", "cm", "demo", "-n", "default"],
            None,
            "deleted",
        ),
        (
            vec!["get", "namespaces", "-o", "name"],
            None,
            "namespace/kube-system",
        ),
    ];
    for (args, stdin, want) in steps {
        let what = args.join(" ");
        let (ok, out) = run(args, stdin).await;
        assert!(
            ok && out.contains(want),
            "kubectl {what}: expected {want:?}, got:\n{out}"
        );
    }
    let (ok, out) = run(vec!["get", "cm", "demo", "-n", "default"], None).await;
    assert!(
        !ok && out.contains("NotFound") || out.contains("not found"),
        "{out}"
    );
}
