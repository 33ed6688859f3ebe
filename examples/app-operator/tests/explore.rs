//! The app-operator explored by kube-chaos as a user would run it: the `Operator` test API
//! with the operator's real `main` (its `run`), generated workloads over two Apps, generated
//! faults, the generic checkers plus the operator's own `converged` condition. The correct
//! operator passes the budget; every bug variant is found within it, shrunk, and its replay
//! file reproduces it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use app_operator::{converged, run, run_ours, App, AppSpec, Variant, READ_TIMEOUT};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::CustomResourceExt;
use kube_chaos_harness::operator::{Failed, Finding};
use kube_chaos_harness::scenario::Checker;
use kube_chaos_harness::subject::Shutdown;
use kube_chaos_harness::Operator;
use serde_json::json;

/// Cases per variant, from seed 1.
const BUDGET: u32 = 150;

fn app(name: &str) -> App {
    let spec = AppSpec {
        data: BTreeMap::from([("k".into(), "v1".into())]),
        secret: BTreeMap::from([("s".into(), "p-v1".into())]),
    };
    let mut a = App::new(name, spec);
    a.metadata.namespace = Some("default".into());
    a
}

/// A fresh regression directory for `name` (these tests check finding, not keeping).
fn regressions(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("app-operator-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The ≤ 10 lines an operator team writes (here with the variant to run).
fn operator(variant: Variant) -> Operator {
    named(&format!("app-operator-{}", variant.name()), variant)
}

/// [`operator`] under another name (names are unique in a test process).
fn named(name: &str, variant: Variant) -> Operator {
    starting(name, move |client, shutdown| run(client, variant, shutdown))
}

/// The operator as `start` starts it (kube-runtime's `Controller` or ours).
fn starting<F, Fut>(name: &str, start: F) -> Operator
where
    F: Fn(kube::Client, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Operator::new(name)
        .crd(App::crd())
        .start(start)
        .object(app("a"))
        .object(app("b"))
        .patch(json!({"spec": {"data": {"k": "v2"}, "secret": {"s": "p-v2"}}}))
        .condition(|c| converged(&c.list(), &c.list::<ConfigMap>(), &c.list::<Secret>()))
        .unique_child::<ConfigMap>()
        .unique_child::<Secret>()
        .read_timeout(READ_TIMEOUT)
        .regressions(regressions(name))
}

#[test]
fn the_correct_operator_passes_the_budget() {
    let e = operator(Variant::Correct).explore(BUDGET, 1);
    // `KUBE_CHAOS_REPLAY=FILE` runs that file instead of the cases.
    if std::env::var_os("KUBE_CHAOS_REPLAY").is_none() {
        assert_eq!(e.cases_run, BUDGET);
    }
}

#[test]
fn the_correct_operator_on_our_runtime_passes_the_budget_too() {
    let op = starting("app-operator-ours", |client, shutdown| {
        run_ours(client, Variant::Correct, shutdown)
    });
    assert_eq!(op.explore(BUDGET, 1).cases_run, BUDGET);
}

/// Explores `variant`: a finding of one of `expected` within the budget (the correct
/// operator passes the same budget, so any finding is the variant's bug), and every checker
/// found is found again when the replay files rerun first.
fn found(variant: Variant, expected: &[Checker]) {
    let op = operator(variant).shrink_runs(60);
    let Err(Failed::Found(found)) = op.check(BUDGET, 1) else {
        panic!("{} was not found in {BUDGET} cases", variant.name());
    };
    for f in &found {
        eprintln!(
            "{}: {} ({}): {}",
            variant.name(),
            f.checker,
            f.origin,
            f.violation
        );
    }
    let checkers = |v: &[Finding]| v.iter().map(|f| f.checker).collect::<BTreeSet<_>>();
    assert!(
        expected.iter().any(|c| checkers(&found).contains(c)),
        "{}: none of {expected:?} found:\n{}",
        variant.name(),
        Failed::Found(found.clone())
    );
    // The replay files reproduce: rerunning them first fails the same checkers again.
    let Err(Failed::Found(again)) = op.check(BUDGET, 1) else {
        panic!("{}: the replay files pass", variant.name());
    };
    assert!(
        checkers(&found).is_subset(&checkers(&again)),
        "{}: {:?} found, {:?} on replay",
        variant.name(),
        checkers(&found),
        checkers(&again)
    );
}

#[test]
fn a_child_created_twice_from_a_stale_cache_is_found() {
    // A second child shows as two children of one owner, or as a child the faultless run does
    // not have.
    found(
        Variant::DuplicateChild,
        &[Checker::NoDuplicateChildren, Checker::Differential],
    );
}

#[test]
fn in_memory_state_across_reconciles_is_found() {
    found(Variant::InMemoryState, &[Checker::EventuallyStable]);
}

#[test]
fn a_read_modify_write_from_a_stale_cache_is_found() {
    found(Variant::StaleCache, &[Checker::EventuallyStable]);
}

#[test]
fn a_finalizer_removed_before_cleanup_is_found() {
    found(
        Variant::FinalizerBeforeCleanup,
        &[Checker::EventuallyStable],
    );
}

#[test]
fn a_conflict_treated_as_done_is_found() {
    found(Variant::NoConflictRetry, &[Checker::EventuallyStable]);
}

/// The case of `app-operator-correct-eventually_stable.json` (exploration from seed 1, case
/// 21): App b changes at 4 s, the instant the only apiserver replica crashes for 1 s. The
/// operator is right; kube-runtime's `Controller` takes 75 s to see the change, because
/// all its watchers share one trigger backoff (`harness/tests/runtime/shared_backoff.rs`
/// has the minimal reproduction and the mechanism): three failed reconnects and three
/// `410 Expired` from the rebuilt watch cache go out one per backoff period, 0.97 s
/// doubling to 29.5 s, and no watcher relists before 74.9 s. The 60 s settle of the
/// exploration is too short for that; a 2 min one is not.
#[test]
fn after_a_replica_restart_kube_runtime_reconciles_only_after_its_shared_backoff() {
    let op = named("app-operator-correct-restart", Variant::Correct);
    let case = |settle: &str| {
        let extra = json!({
            "duration": "5s",
            "settle": settle,
            "cluster": {"replicas": 1, "bookmark_interval": "1m", "min_request_timeout": "30m"},
            "subject": {"name": op.subject().name, "config": {
                "min_watch_timeout": "5m", "watch_timeout": "5m", "workers": 2,
                "trace_events": true, "keep_alive": true}},
            "manifests": [app("b")],
            "workload": [{"patch_object": {"at": "4s",
                "target": {"api_version": "example.kube-chaos.dev/v1", "kind": "App",
                           "namespace": "default", "name": "b"},
                "patch": {"spec": {"data": {"k": "v2"}, "secret": {"s": "p-v2"}}}}}],
            "faults": [{"crash_replica": {"at": "4s", "replica": 0, "restart_after": "1s"}}],
        });
        let s = op
            .scenario(11845025810012188088, extra)
            .expect("a valid scenario");
        op.run(&s).expect("a run")
    };
    let short = case("1m");
    assert!(
        short.violated().contains(&Checker::EventuallyStable),
        "{}",
        short.render()
    );
    let long = case("2m");
    assert!(long.violated().is_empty(), "{}", long.render());
}

/// kube 5's client has no read timeout: without [`READ_TIMEOUT`] the correct operator meets a
/// response lost on a connection that stays open (a partition or loss swallowed it), the
/// reconcile waiting for it never ends, and the change it was making never lands — a finding
/// about the operator's client configuration, which exploration reports.
#[test]
fn without_a_read_timeout_a_lost_response_stops_the_operator_for_good() {
    let op = Operator::new("app-operator-no-read-timeout")
        .crd(App::crd())
        .start(|client, shutdown| run(client, Variant::Correct, shutdown))
        .object(app("a"))
        .object(app("b"))
        .patch(json!({"spec": {"data": {"k": "v2"}, "secret": {"s": "p-v2"}}}))
        .condition(|c| converged(&c.list(), &c.list::<ConfigMap>(), &c.list::<Secret>()))
        .regressions(regressions("no-read-timeout"))
        .shrink_runs(30);
    let Err(Failed::Found(found)) = op.check(BUDGET, 1) else {
        panic!("the hang was not found in {BUDGET} cases");
    };
    assert!(
        found.iter().any(|f| f.checker == Checker::EventuallyStable),
        "{}",
        Failed::Found(found.clone())
    );
}
