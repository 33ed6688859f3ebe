//! The `kube-chaos serve` command line: preloading from files, loopback by default, token.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;

/// Stops the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_preloads_crds_and_objects_from_yaml_binds_loopback_and_requires_the_token() {
    // Proves the flags end to end through the real binary: a multi-document CRD file and a
    // List of objects are served at once, the printed URL is 127.0.0.1, and a request
    // without the token is a 401.
    let dir = std::env::temp_dir().join(format!("kube-chaos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let crd = dir.join("crd.yaml");
    std::fs::write(&crd, "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions: [{name: v1, served: true, storage: true}]\n---\n").unwrap();
    let objects = dir.join("objects.yaml");
    std::fs::write(&objects, "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: example.com/v1, kind: Widget, metadata: {name: w1, namespace: default}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: team}}\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
        .args(["serve", "--port", "0", "--token", "t0k"])
        .arg("--crd")
        .arg(&crd)
        .arg("--objects")
        .arg(&objects)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kube-chaos serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let _server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    // Keep reading what the server prints, so that it never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let anonymous = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(anonymous, "default", &ar);
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let mut config = kube::Config::new(url.parse().unwrap());
    config.auth_info.token = Some("t0k".to_string().into());
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let names: Vec<_> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    assert_eq!(names, ["w1"]);
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert!(nss.get_opt("team").await.expect("get").is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
