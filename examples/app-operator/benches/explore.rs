//! Exploration speed of a user's controller: generated cases of the correct app-operator (on
//! kube-runtime's `Controller`, as its tests configure it; each case run twice: with its
//! faults and without, for `differential`) per wall second on one thread, beside the harness's own `controller`
//! subject (the mirror controller on our runtime, one run per case) measured in the same
//! process, so the ratio holds on a noisy machine.
//!
//! `cargo bench -p app-operator --bench explore [-- CASES]` (default 200 cases each).

use std::collections::BTreeMap;
use std::time::Instant;

use app_operator::{converged, run, App, AppSpec, Variant};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::CustomResourceExt;
use kube_chaos_harness::explore::{explore, Options};
use kube_chaos_harness::Operator;

fn app(name: &str) -> App {
    let spec = AppSpec {
        data: BTreeMap::from([("k".into(), "v1".into())]),
        secret: BTreeMap::from([("s".into(), "p-v1".into())]),
    };
    let mut a = App::new(name, spec);
    a.metadata.namespace = Some("default".into());
    a
}

/// Cases per second of `subject` over `cases` cases from seed 1, one job, barely shrinking.
fn rate(subject: &str, cases: u32) -> (f64, usize) {
    let mut opts = Options::new(subject, cases, 1);
    opts.shrink_runs = 1;
    let started = Instant::now();
    let e = explore(&opts, &|_| {}).expect("the subject exists");
    eprintln!(
        "{subject}: {cases} cases in {:.1} s of cases ({:.1} s with shrinking)",
        e.cases_wall.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    (e.cases_per_sec(), e.failures.len())
}

fn main() {
    let cases: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let op = Operator::new("app-operator-bench")
        .crd(App::crd())
        .start(|client, shutdown| run(client, Variant::Correct, shutdown))
        .object(app("a"))
        .object(app("b"))
        .patch(serde_json::json!({"spec": {"data": {"k": "v2"}}}))
        .condition(|c| converged(&c.list(), &c.list::<ConfigMap>(), &c.list::<Secret>()))
        .unique_child::<ConfigMap>()
        .unique_child::<Secret>()
        .read_timeout(app_operator::READ_TIMEOUT);
    let (operator, failures) = rate(op.subject().name, cases);
    let (peer, _) = rate("controller", cases);
    println!("app-operator (kube-runtime Controller, 2 runs per case): {operator:.1} cases/s, {failures} distinct failures");
    println!("controller subject (our runtime, 1 run per case):       {peer:.1} cases/s");
    println!("ratio app-operator / controller: {:.2}", operator / peer);
    println!(
        "target >= 20 cases/s: {}",
        if operator >= 20.0 { "met" } else { "NOT met" }
    );
}
