//! The Python `kubernetes` client and kopf against `kube-chaos serve`, from the virtualenv
//! `scripts/pyenv.sh` creates (PyPI). Without it each test prints SKIPPED with the reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube_chaos_harness::serve::ServeOptions;
use serde_json::{json, Value};

use super::{run_process, start, start_with};

pub(super) fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/py")
}

/// The venv's python, created once per test binary; `Err(why)` when it cannot be had.
fn python() -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pyenv.sh");
            let out = Command::new("bash")
                .arg(script)
                .output()
                .map_err(|e| format!("cannot run scripts/pyenv.sh: {e}"))?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
        .clone()
}

pub(super) fn python_or_skip() -> Option<PathBuf> {
    python()
        .map_err(|why| eprintln!("SKIPPED: no Python client venv: {why}"))
        .ok()
}

#[tokio::test]
async fn the_python_client_does_typed_crud_json_patch_and_resumes_a_watch() {
    // Proves the Python client works unmodified: the script asserts every answer and
    // prints OK only at its end.
    let Some(py) = python_or_skip() else {
        return;
    };
    let url = start().await;
    let mut cmd = Command::new(py);
    cmd.arg(here().join("crud_watch.py"))
        .env("KUBE_URL", &url)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (ok, out) = tokio::task::spawn_blocking(move || run_process(cmd, None))
        .await
        .expect("joins");
    assert!(
        ok && out.trim_end().ends_with("OK"),
        "crud_watch.py:\n{out}"
    );
}

pub(super) fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    })
}

/// Polls `f` every 200 ms for at most 30 s (a real operator process reacts in real time).
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..150 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Kills the operator when the test ends, however it ends.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kopf_operator_handles_create_update_delete_and_its_finalizer_comes_and_goes() {
    // Proves kopf runs unmodified: its finalizer is added, each handler's result lands in
    // .status through the status subresource, and the delete completes only when kopf
    // removes its finalizer after the delete handler.
    let Some(py) = python_or_skip() else {
        return;
    };
    let opts = ServeOptions {
        preload: vec![widget_crd()],
        ..Default::default()
    };
    let url = start_with(opts).await;
    let _operator = Operator(
        Command::new(py)
            .args([
                "-m",
                "kopf",
                "run",
                "--standalone",
                "-n",
                "default",
                "--quiet",
            ])
            .arg(here().join("widget_operator.py"))
            .env("KUBE_URL", &url)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kopf starts"),
    );
    let client = kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 1}
    }))
    .unwrap();
    api.create(&PostParams::default(), &w)
        .await
        .expect("create");
    let field = |o: &DynamicObject, path: &str| o.data.pointer(path).cloned();
    eventually("the create handler and kopf's finalizer", async || {
        let o = api.get("w1").await.expect("get");
        let fin = o.metadata.finalizers.clone().unwrap_or_default();
        fin.iter().any(|f| f.starts_with("kopf.zalando.org/"))
            && field(&o, "/status/created/size") == Some(json!(1))
    })
    .await;
    let grow = Patch::Merge(json!({"spec": {"size": 2}}));
    api.patch("w1", &PatchParams::default(), &grow)
        .await
        .expect("patch");
    eventually("the update handler", async || {
        let o = api.get("w1").await.expect("get");
        field(&o, "/status/updated/size") == Some(json!(2))
    })
    .await;
    api.delete("w1", &DeleteParams::default())
        .await
        .expect("delete");
    eventually(
        "kopf to remove its finalizer after the delete handler",
        async || api.get_opt("w1").await.expect("get").is_none(),
    )
    .await;
}
