//! kubectl, the reference client, against `kube-chaos serve`: every command runs the real
//! binary with an empty kubeconfig. Without kubectl on PATH each test prints SKIPPED.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{run_process, start};

/// kubectl pointed at one served apiserver.
struct Kubectl {
    url: String,
}

impl Kubectl {
    /// A server and kubectl, or `None` after printing SKIPPED when kubectl is missing.
    async fn start() -> Option<Self> {
        Self::installed()?;
        Some(Self { url: start().await })
    }

    fn installed() -> Option<()> {
        let found = Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .is_ok();
        if !found {
            eprintln!(
                "SKIPPED: kubectl is not on PATH (.ci/run installs it where the package exists)"
            );
        }
        found.then_some(())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", "/dev/null")
            .arg("--server")
            .arg(&self.url)
            .arg("--request-timeout=20s")
            .args(args);
        cmd
    }

    /// Runs kubectl; (success, stdout + stderr).
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        let cmd = self.command(args);
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || run_process(cmd, stdin.as_deref()))
            .await
            .expect("joins")
    }

    /// Runs kubectl and asserts it succeeded; its output.
    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out) = self.run(args, stdin).await;
        assert!(ok, "kubectl {} failed:\n{out}", args.join(" "));
        out
    }

    /// Runs kubectl and asserts it failed; its output.
    async fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out) = self.run(args, stdin).await;
        assert!(!ok, "kubectl {} should have failed:\n{out}", args.join(" "));
        out
    }

    /// `.data.<key>` of a ConfigMap in `default`.
    async fn cm_value(&self, name: &str, key: &str) -> String {
        let path = format!("jsonpath={{.data.{key}}}");
        self.ok(&["get", "cm", name, "-n", "default", "-o", &path], None)
            .await
    }
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  namespace: default\ndata:\n  a: b\n";

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              replicas: {type: integer}
          status:
            type: object
            properties:
              ready: {type: boolean}
"#;

const WIDGET: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 3\n";

#[tokio::test]
async fn kubectl_discovers_creates_lists_labels_and_deletes_against_the_served_apiserver() {
    // Proves discovery and CRUD are real enough for kubectl.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    assert!(k
        .ok(&["api-resources", "--no-headers"], None)
        .await
        .contains("cm"));
    k.ok(&["create", "-f", "-"], Some(CM)).await;
    assert_eq!(k.cm_value("demo", "a").await, "b");
    k.ok(&["label", "cm", "demo", "tier=web", "-n", "default"], None)
        .await;
    let labelled = k
        .ok(
            &["get", "cm", "-l", "tier=web", "-n", "default", "-o", "name"],
            None,
        )
        .await;
    assert!(labelled.contains("configmap/demo"), "{labelled}");
    k.ok(&["delete", "cm", "demo", "-n", "default"], None).await;
    let out = k.fails(&["get", "cm", "demo", "-n", "default"], None).await;
    assert!(out.contains("not found"), "{out}");
}

#[tokio::test]
async fn kubectl_apply_validates_against_the_openapi_schema_and_refuses_unknown_fields() {
    // Proves /openapi/v3 is good enough for kubectl's validation: it finds fieldValidation
    // there, asks for Strict, and the server names the unknown field.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    assert!(k
        .ok(&["apply", "-f", "-"], Some(CM))
        .await
        .contains("created"));
    assert!(k
        .ok(&["apply", "-f", "-"], Some(CM))
        .await
        .contains("unchanged"));
    let typo = CM.replace("\ndata:", "\ndta:");
    let out = k.fails(&["apply", "-f", "-"], Some(&typo)).await;
    assert!(out.contains("unknown field \"dta\""), "{out}");
    let out = k
        .fails(&["create", "-f", "-"], Some(&typo.replace("demo", "other")))
        .await;
    assert!(out.contains("unknown field \"dta\""), "{out}");
    let explained = k.ok(&["explain", "configmap.data"], None).await;
    assert!(
        explained.contains("Data contains the configuration data"),
        "{explained}"
    );
    k.ok(
        &["create", "-f", "-", "--validate=false"],
        Some(&typo.replace("demo", "other")),
    )
    .await;
}

#[tokio::test]
async fn kubectl_create_configmap_secret_and_namespace_send_protobuf_and_are_stored() {
    // Proves the protobuf bodies of kubectl's generators decode (they were 415 before).
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(
        &[
            "create",
            "configmap",
            "gen",
            "-n",
            "default",
            "--from-literal=a=b",
        ],
        None,
    )
    .await;
    assert_eq!(k.cm_value("gen", "a").await, "b");
    k.ok(
        &[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "default",
            "--from-literal=p=q",
        ],
        None,
    )
    .await;
    let secret = k
        .ok(
            &[
                "get",
                "secret",
                "s",
                "-n",
                "default",
                "-o",
                "jsonpath={.data.p}",
            ],
            None,
        )
        .await;
    assert_eq!(secret, "cQ==", "base64 of q");
    k.ok(&["create", "namespace", "team"], None).await;
    k.ok(&["create", "serviceaccount", "bot", "-n", "team"], None)
        .await;
    let out = k.ok(&["get", "sa", "-n", "team", "-o", "name"], None).await;
    assert!(out.contains("serviceaccount/bot"), "{out}");
}

#[tokio::test]
async fn kubectl_patch_type_json_applies_rfc_6902_operations() {
    // Proves JSON patch: an add and a test-guarded replace; a failing test changes nothing.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["apply", "-f", "-"], Some(CM)).await;
    let patch = r#"[{"op":"add","path":"/data/c","value":"d"},{"op":"test","path":"/data/a","value":"b"},{"op":"replace","path":"/data/a","value":"z"}]"#;
    k.ok(
        &[
            "patch", "cm", "demo", "-n", "default", "--type", "json", "-p", patch,
        ],
        None,
    )
    .await;
    assert_eq!(k.cm_value("demo", "c").await, "d");
    assert_eq!(k.cm_value("demo", "a").await, "z");
    let guarded =
        r#"[{"op":"test","path":"/data/a","value":"b"},{"op":"remove","path":"/data/c"}]"#;
    k.fails(
        &[
            "patch", "cm", "demo", "-n", "default", "--type", "json", "-p", guarded,
        ],
        None,
    )
    .await;
    assert_eq!(k.cm_value("demo", "c").await, "d");
}

#[tokio::test]
async fn kubectl_apply_server_side_records_managers_and_conflicts_until_forced() {
    // Proves server-side apply: create, managedFields, a 409 for another manager, --force-conflicts.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["apply", "--server-side", "-f", "-"], Some(CM)).await;
    let managers = k
        .ok(
            &[
                "get",
                "cm",
                "demo",
                "-n",
                "default",
                "-o",
                "jsonpath={.metadata.managedFields[*].manager}",
            ],
            None,
        )
        .await;
    assert_eq!(managers, "kubectl");
    let theirs = CM.replace("a: b", "a: z");
    let args = ["apply", "--server-side", "--field-manager=other", "-f", "-"];
    let out = k.fails(&args, Some(&theirs)).await;
    assert!(out.contains("conflict with \"kubectl\": .data.a"), "{out}");
    assert_eq!(k.cm_value("demo", "a").await, "b");
    let forced = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
    ];
    k.ok(&forced, Some(&theirs)).await;
    assert_eq!(k.cm_value("demo", "a").await, "z");
}

#[tokio::test]
async fn kubectl_apply_server_side_conflicts_with_the_kubectl_command_that_last_set_a_field() {
    // Proves Update managers are recorded: `kubectl create` owns .data.a as
    // "kubectl-create", so a server-side apply changing it conflicts with that manager.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["create", "-f", "-"], Some(CM)).await;
    let theirs = CM.replace("a: b", "a: z");
    let out = k
        .fails(&["apply", "--server-side", "-f", "-"], Some(&theirs))
        .await;
    assert!(out.contains("conflict with \"kubectl-create\""), "{out}");
}

#[tokio::test]
async fn kubectl_diff_and_dry_run_server_show_the_change_without_writing_it() {
    // Proves dryRun=All: `kubectl diff` (exit 1 = differences) and --dry-run=server report
    // the change; the stored object stays as it was.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["apply", "-f", "-"], Some(CM)).await;
    let changed = CM.replace("a: b", "a: new");
    let (ok, out) = k.run(&["diff", "-f", "-"], Some(&changed)).await;
    assert!(
        !ok && out.contains("+  a: new") && out.contains("-  a: b"),
        "{out}"
    );
    let out = k
        .ok(&["apply", "--dry-run=server", "-f", "-"], Some(&changed))
        .await;
    assert!(out.contains("(server dry run)"), "{out}");
    assert_eq!(k.cm_value("demo", "a").await, "b");
    k.ok(
        &["delete", "cm", "demo", "-n", "default", "--dry-run=server"],
        None,
    )
    .await;
    assert_eq!(k.cm_value("demo", "a").await, "b");
}

#[tokio::test]
async fn kubectl_delete_namespace_terminates_it_deletes_its_objects_then_the_namespace() {
    // Proves the namespace cascade: a finalizer on one object holds the namespace in
    // Terminating; removing it lets the namespace go.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["create", "namespace", "team"], None).await;
    k.ok(&["create", "configmap", "plain", "-n", "team"], None)
        .await;
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: team\n  finalizers: [example.com/hold]\n";
    k.ok(&["create", "-f", "-"], Some(held)).await;
    k.ok(&["delete", "namespace", "team", "--wait=false"], None)
        .await;
    let phase = k
        .ok(
            &["get", "ns", "team", "-o", "jsonpath={.status.phase}"],
            None,
        )
        .await;
    assert_eq!(phase, "Terminating");
    let left = k.ok(&["get", "cm", "-n", "team", "-o", "name"], None).await;
    assert_eq!(left.trim(), "configmap/held", "plain is gone, held lingers");
    let unhold = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;
    k.ok(
        &[
            "patch", "cm", "held", "-n", "team", "--type", "json", "-p", unhold,
        ],
        None,
    )
    .await;
    let out = k.fails(&["get", "ns", "team"], None).await;
    assert!(out.contains("not found"), "{out}");
    let out = k.fails(&["delete", "namespace", "default"], None).await;
    assert!(out.contains("may not be deleted"), "{out}");
}

#[tokio::test]
async fn kubectl_applies_a_crd_waits_for_it_then_serves_its_custom_resources() {
    // Proves CRDs through the API: established, discovered (short name), validated by their
    // openAPIV3Schema, with a status subresource the main endpoint cannot write, a scale
    // subresource, printer columns, and gone with their resources when deleted.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["apply", "-f", "-"], Some(CRD)).await;
    k.ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    k.ok(&["apply", "-f", "-"], Some(WIDGET)).await;
    let size = k
        .ok(
            &[
                "get",
                "wd",
                "w1",
                "-n",
                "default",
                "-o",
                "jsonpath={.spec.size}",
            ],
            None,
        )
        .await;
    assert_eq!(size, "3");
    let out = k
        .fails(&["apply", "-f", "-"], Some(&WIDGET.replace("size", "sise")))
        .await;
    assert!(out.contains("unknown field \"spec.sise\""), "{out}");
    let status = r#"{"status":{"ready":true}}"#;
    k.ok(
        &[
            "patch", "wd", "w1", "-n", "default", "--type", "merge", "-p", status,
        ],
        None,
    )
    .await;
    let ready = "jsonpath={.status.ready}";
    let get = ["get", "wd", "w1", "-n", "default", "-o", ready];
    assert_eq!(
        k.ok(&get, None).await,
        "",
        "the main endpoint ignores .status"
    );
    k.ok(
        &[
            "patch",
            "wd",
            "w1",
            "-n",
            "default",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            status,
        ],
        None,
    )
    .await;
    assert_eq!(k.ok(&get, None).await, "true");
    k.ok(
        &["scale", "wd", "w1", "-n", "default", "--replicas=4"],
        None,
    )
    .await;
    let replicas = [
        "get",
        "wd",
        "w1",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.replicas}",
    ];
    assert_eq!(k.ok(&replicas, None).await, "4", "through /scale");
    let out = k.ok(&["get", "wd", "-n", "default"], None).await;
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "SIZE", "AGE"],
        "additionalPrinterColumns: {out}"
    );
    k.ok(&["delete", "crd", "widgets.example.com"], None).await;
    let out = k.fails(&["get", "widgets", "-n", "default"], None).await;
    assert!(
        out.contains("could not find the requested resource"),
        "{out}"
    );
}

#[tokio::test]
async fn kubectl_get_watch_prints_a_change_and_wait_for_delete_returns() {
    // Proves watch through kubectl: `get -w` prints the server's Table row (name, data count)
    // of the object created after it started (bounded polling of its output), and
    // `wait --for=delete` ends when the object goes.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    let mut child = k
        .command(&["get", "cm", "-n", "default", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl starts");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    k.ok(&["create", "configmap", "watched", "-n", "default"], None)
        .await;
    let seen = tokio::task::spawn_blocking(move || {
        (0..100).find_map(|_| {
            rx.recv_timeout(Duration::from_millis(200))
                .ok()
                .filter(|l| {
                    l.split_whitespace().collect::<Vec<_>>().get(..2) == Some(&["watched", "0"][..])
                })
        })
    })
    .await
    .expect("joins");
    child.kill().expect("kill kubectl get -w");
    let _ = child.wait();
    assert!(
        seen.is_some(),
        "kubectl get -w never printed the Table row of watched (NAME DATA AGE)"
    );
    let waiter = k.command(&[
        "wait",
        "--for=delete",
        "cm/watched",
        "-n",
        "default",
        "--timeout=20s",
    ]);
    let waiting = tokio::task::spawn_blocking(move || run_process(waiter, None));
    k.ok(&["delete", "cm", "watched", "-n", "default"], None)
        .await;
    let (ok, out) = waiting.await.expect("joins");
    assert!(ok, "kubectl wait --for=delete: {out}");
}

#[tokio::test]
async fn kubectl_describe_finds_events_by_their_involved_object() {
    // Proves the events field selectors: describe lists the events about the object.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["apply", "-f", "-"], Some(CM)).await;
    let uid = k
        .ok(
            &[
                "get",
                "cm",
                "demo",
                "-n",
                "default",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
            None,
        )
        .await;
    let event = format!("apiVersion: v1\nkind: Event\nmetadata:\n  name: demo.1\n  namespace: default\ninvolvedObject:\n  kind: ConfigMap\n  name: demo\n  namespace: default\n  uid: {uid}\nreason: Tested\nmessage: hello from the test\ntype: Normal\n");
    let event = event.as_str();
    k.ok(&["create", "-f", "-"], Some(event)).await;
    let out = k
        .ok(&["describe", "cm", "demo", "-n", "default"], None)
        .await;
    assert!(
        out.contains("Tested") && out.contains("hello from the test"),
        "{out}"
    );
    let out = k
        .ok(
            &[
                "get",
                "events",
                "-n",
                "default",
                "--field-selector",
                "involvedObject.name=other",
                "-o",
                "name",
            ],
            None,
        )
        .await;
    assert!(!out.contains("demo.1"), "{out}");
}

#[tokio::test]
async fn kubectl_get_prints_the_servers_table_columns() {
    // Proves as=Table: the DATA, TYPE and STATUS columns come from the server's Table (kubectl
    // prints only NAME and AGE for a plain list).
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(
        &[
            "create",
            "configmap",
            "two",
            "-n",
            "default",
            "--from-literal=a=1",
            "--from-literal=b=2",
        ],
        None,
    )
    .await;
    let out = k.ok(&["get", "cm", "two", "-n", "default"], None).await;
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "DATA", "AGE"], "{out}");
    assert_eq!(lines[1][..2], ["two", "2"], "{out}");
    k.ok(
        &[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "default",
            "--from-literal=p=q",
        ],
        None,
    )
    .await;
    let out = k
        .ok(&["get", "secrets", "-n", "default", "--no-headers"], None)
        .await;
    assert!(out.starts_with("s") && out.contains("Opaque"), "{out}");
    let out = k.ok(&["get", "ns", "default", "--no-headers"], None).await;
    assert!(out.contains("Active"), "{out}");
}

#[tokio::test]
async fn kubectl_edit_validates_and_patches_the_object() {
    // Proves `kubectl edit` end to end, with sed standing in for the editor.
    let Some(k) = Kubectl::start().await else {
        return;
    };
    k.ok(&["apply", "-f", "-"], Some(CM)).await;
    let mut cmd = k.command(&["edit", "cm", "demo", "-n", "default"]);
    cmd.env("KUBE_EDITOR", "sed -i s/a:\\ b/a:\\ edited/");
    let (ok, out) = tokio::task::spawn_blocking(move || run_process(cmd, None))
        .await
        .expect("joins");
    assert!(ok && out.contains("edited"), "kubectl edit: {out}");
    assert_eq!(k.cm_value("demo", "a").await, "edited");
}
