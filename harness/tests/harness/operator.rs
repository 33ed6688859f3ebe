//! The test API for a user's own controller (`kube_chaos_harness::Operator`), end to end on a
//! small kube-rs operator of the configmapgen shape: a CRD `Echo` whose reconcile keeps a
//! ConfigMap of the same name with the Echo's content, owned by it, on kube-runtime's
//! `Controller`. The correct operator passes generated cases; each planted bug is found by
//! the checker that names its class, shrunk, written as a replay file, and rerun first next
//! time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use kube_chaos_harness::operator::Failed;
use kube_chaos_harness::scenario::Checker;
use kube_chaos_harness::subject::{ClusterView, Shutdown};
use kube_chaos_harness::Operator;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[kube(
    group = "example.kube-chaos.dev",
    version = "v1",
    kind = "Echo",
    namespaced
)]
struct EchoSpec {
    content: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    None,
    /// Unwraps every API result: the first error response panics the reconcile task.
    UnwrapErrors,
    /// Requeues after 0.5 s and rewrites its ConfigMap every time, forever.
    Hot,
    /// Its main returns after 2 s, as if it had given up.
    Quits,
}

struct Ctx {
    client: kube::Client,
    bug: Bug,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

async fn reconcile(echo: Arc<Echo>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = echo.namespace().unwrap_or_default();
    let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    let mut data = BTreeMap::from([("content".to_string(), echo.spec.content.clone())]);
    if ctx.bug == Bug::Hot {
        data.insert("at".into(), format!("{:?}", turmoil::elapsed()));
    }
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(echo.name_any()),
            owner_references: Some(vec![echo.controller_owner_ref(&()).expect("has a uid")]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    };
    let params = PatchParams::apply("echo-operator").force();
    let applied = api
        .patch(&echo.name_any(), &params, &Patch::Apply(&cm))
        .await;
    if ctx.bug == Bug::UnwrapErrors {
        applied.unwrap();
    } else {
        applied?;
    }
    Ok(match ctx.bug {
        Bug::Hot => Action::requeue(Duration::from_millis(500)),
        _ => Action::requeue(Duration::from_secs(300)),
    })
}

fn error_policy(_: Arc<Echo>, _: &Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

/// The operator's `main`, minus the config loading.
async fn run(client: kube::Client, bug: Bug, shutdown: Shutdown) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        bug,
    });
    let controller = Controller::new(Api::<Echo>::all(client.clone()), watcher::Config::default())
        .owns(Api::<ConfigMap>::all(client), watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    match bug {
        Bug::Quits => drop(tokio::time::timeout(Duration::from_secs(2), controller).await),
        _ => controller.await,
    }
}

/// Every Echo has its ConfigMap, owned by it, with its content.
fn converged(cluster: &ClusterView<'_>) -> Result<(), String> {
    let cms: BTreeMap<String, ConfigMap> = cluster
        .list::<ConfigMap>()
        .into_iter()
        .map(|c| (c.name_any(), c))
        .collect();
    for echo in cluster.list::<Echo>() {
        let name = echo.name_any();
        let Some(cm) = cms.get(&name) else {
            return Err(format!("Echo {name} has no ConfigMap"));
        };
        let content = cm.data.as_ref().and_then(|d| d.get("content"));
        if content != Some(&echo.spec.content) {
            return Err(format!(
                "ConfigMap {name} has {content:?}, Echo has {:?}",
                echo.spec.content
            ));
        }
        let owned = cm
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == echo.meta().uid.as_ref());
        if !owned {
            return Err(format!(
                "ConfigMap {name} is not owned by the current Echo {name}"
            ));
        }
    }
    Ok(())
}

fn echo(name: &str) -> Echo {
    let mut e = Echo::new(
        name,
        EchoSpec {
            content: "v1".into(),
        },
    );
    e.meta_mut().namespace = Some("default".into());
    e
}

/// The operator with `bug`, its regressions in a fresh directory of the target dir.
fn operator(name: &str, bug: Bug) -> (Operator, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "kube-chaos-regressions-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let op = Operator::new(name)
        .crd(Echo::crd())
        .start(move |client, shutdown| run(client, bug, shutdown))
        .object(echo("a"))
        .object(echo("b"))
        .patch(serde_json::json!({"spec": {"content": "v2"}}))
        .condition(converged)
        .unique_child::<ConfigMap>()
        .regressions(&dir)
        .shrink_runs(20);
    (op, dir)
}

#[test]
fn the_correct_operator_passes_generated_cases_under_faults() {
    let (op, _dir) = operator("echo-correct", Bug::None);
    let e = op.check(12, 1).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(e.cases_run, 12);
}

#[test]
fn a_hand_written_scenario_runs_the_operator_and_judges_the_cluster() {
    // No faults: the condition holds after settle, every checker of a user's controller ran.
    let (op, _dir) = operator("echo-hand", Bug::None);
    let s = op.scenario(5, serde_json::json!({})).unwrap();
    let report = op.run(&s).unwrap();
    assert!(report.met(), "{}", report.render());
    for c in [
        Checker::EventuallyStable,
        Checker::Differential,
        Checker::DeletionsComplete,
        Checker::NoDuplicateChildren,
        Checker::NoPanic,
        Checker::WriteRate,
    ] {
        assert!(report.verdict(c).is_some(), "{c} did not judge the run");
    }
    assert!(
        report.trace.contains("condition       holds"),
        "{}",
        report.trace
    );
    assert!(
        report
            .trace
            .contains("exited          after the shutdown trigger"),
        "{}",
        report.trace
    );
}

#[test]
fn a_controller_that_keeps_writing_is_caught_by_write_rate() {
    let (op, _dir) = operator("echo-hot", Bug::Hot);
    let report = op
        .run(&op.scenario(5, serde_json::json!({})).unwrap())
        .unwrap();
    let v = report.verdict(Checker::WriteRate).unwrap();
    assert_eq!(v.violations.len(), 1, "{}", report.render());
    assert!(
        v.violations[0]
            .message
            .contains("writes in the last 75.0s of settle"),
        "{}",
        v.violations[0].message
    );
    // The correct operator is quiet once settled.
    let (op, _dir) = operator("echo-quiet", Bug::None);
    let report = op
        .run(&op.scenario(5, serde_json::json!({})).unwrap())
        .unwrap();
    assert!(report
        .verdict(Checker::WriteRate)
        .unwrap()
        .violations
        .is_empty());
}

#[test]
fn an_explored_failure_is_shrunk_into_a_replay_file_that_runs_first_next_time() {
    // A main that returns after 2 s fails `no_panic` in every case.
    let (op, dir) = operator("echo-replayed", Bug::Quits);
    let op = op.shrink_runs(4);
    let Err(Failed::Found(found)) = op.check(1, 1) else {
        panic!("the main that quits was not found");
    };
    let f = found
        .iter()
        .find(|f| f.checker == Checker::NoPanic)
        .expect("no_panic");
    assert!(
        f.violation.contains("returned before the shutdown trigger"),
        "{}",
        f.violation
    );
    assert!(
        f.replay.starts_with(&dir) && f.replay.exists(),
        "{}",
        f.replay.display()
    );
    assert!(
        f.origin.starts_with("case 0 of seed 1, shrunk to"),
        "{}",
        f.origin
    );
    assert!(!f.context.is_empty(), "no trace window");
    let command = format!("KUBE_CHAOS_REPLAY={} cargo test ", f.replay.display());
    assert!(f.command.starts_with(&command), "{}", f.command);
    assert!(f
        .command
        .ends_with("an_explored_failure_is_shrunk_into_a_replay_file_that_runs_first_next_time"));
    // The next run reruns the replay files first, and they fail again.
    let Err(Failed::Found(again)) = op.check(1, 1) else {
        panic!("the regression files did not fail again");
    };
    assert!(
        again.iter().all(|g| g.origin.contains("regression")),
        "{again:?}"
    );
    assert_eq!(again.len(), found.len());
}

#[test]
fn a_reconcile_that_panics_on_an_error_response_is_caught_by_no_panic() {
    let (op, _dir) = operator("echo-unwrap", Bug::UnwrapErrors);
    // Writes fail from 2 s to 7 s; the Echo changes at 3 s, so its reconcile's write fails.
    let s = op
        .scenario(
            3,
            serde_json::json!({
                "faults": [{"http_errors": {"at": "2s", "for": "5s", "code": 500, "rate": 1.0, "requests": "write"}}],
                "workload": [{"patch_object": {"at": "3s", "patch": {"spec": {"content": "v2"}},
                    "target": {"api_version": "example.kube-chaos.dev/v1", "kind": "Echo", "name": "a"}}}],
            }),
        )
        .unwrap();
    let report = op.run(&s).unwrap();
    let v = report.verdict(Checker::NoPanic).unwrap();
    assert!(!v.violations.is_empty(), "{}", report.render());
    assert!(
        v.violations[0].message.contains("panicked"),
        "{}",
        v.violations[0].message
    );
}

#[test]
fn a_child_deleted_by_hand_is_deleted_and_the_correct_operator_makes_it_again() {
    let (op, _dir) = operator("echo-delete-owned", Bug::None);
    let s = op
        .scenario(
            4,
            serde_json::json!({"workload": [{"delete_owned": {"at": "3s", "api_version": "v1", "kind": "ConfigMap",
                "owner": {"api_version": "example.kube-chaos.dev/v1", "kind": "Echo", "name": "a"}}}]}),
        )
        .unwrap();
    let report = op.run(&s).unwrap();
    assert!(report.met(), "{}", report.render());
    let lines: Vec<&str> = report.trace.lines().collect();
    let deleted = lines
        .iter()
        .position(|l| l.contains("DELETED  default/a "))
        .expect("the child was deleted");
    assert!(
        lines[deleted..]
            .iter()
            .any(|l| l.contains("ADDED    default/a ")),
        "not made again:\n{}",
        report.trace
    );
}

/// The end state's Echo `name` of a run of `op` on seed 7 with `faults`.
fn echo_after(op: &Operator, faults: serde_json::Value, name: &str) -> serde_json::Value {
    let mut held = echo("a");
    held.meta_mut().finalizers = Some(vec!["example.kube-chaos.dev/hold".into()]);
    let s = op
        .scenario(
            7,
            serde_json::json!({"manifests": [held, echo("b")], "faults": faults}),
        )
        .unwrap();
    let report = op.run(&s).unwrap();
    assert!(report.met(), "{}", report.render());
    let found = report
        .end_state
        .iter()
        .find(|o| o["kind"] == "Echo" && o["metadata"]["name"] == name);
    (**found.unwrap_or_else(|| panic!("no Echo {name}: {}", report.render()))).clone()
}

#[test]
fn unobserved_state_leaves_an_object_its_finalizer_holds_and_recreates_one_without() {
    // Echo a has a finalizer (nobody's: it could never go away unobserved), Echo b none.
    // Deleting a would only leave it terminating, never created again: a deletion the run
    // without faults does not have (with app-operator's finalizer the operator finished
    // it, and `differential` reported the App gone).
    let (op, _dir) = operator("echo-unobserved", Bug::None);
    let target = |name: &str| {
        serde_json::json!({"api_version": "example.kube-chaos.dev/v1", "kind": "Echo",
                           "namespace": "default", "name": name})
    };
    let faults = serde_json::json!([
        {"unobserved_state": {"at": "2s", "for": "1s", "target": target("a")}},
        {"unobserved_state": {"at": "5s", "for": "1s", "target": target("b")}},
    ]);
    let uid = |o: &serde_json::Value| o["metadata"]["uid"].clone();
    let a = echo_after(&op, faults.clone(), "a");
    assert!(a["metadata"]["deletionTimestamp"].is_null(), "{a}");
    assert_eq!(uid(&a), uid(&echo_after(&op, serde_json::json!([]), "a")));
    // Without a finalizer the fault still deletes and creates again: a new uid.
    let b = echo_after(&op, faults, "b");
    assert_ne!(uid(&b), uid(&echo_after(&op, serde_json::json!([]), "b")));
}
