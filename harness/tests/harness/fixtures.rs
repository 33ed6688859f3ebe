//! Every fixture runs twice: the two traces must be byte-identical (determinism), the
//! report must meet the fixture's expectation, and it must match its reviewed snapshot in
//! `snapshots/`.

use std::path::Path;
use std::sync::Mutex;

use kube_chaos_harness::run::{run, Report};
use kube_chaos_harness::subject::registry;
use kube_chaos_harness::suite::collect;
use kube_chaos_harness::Scenario;

use super::fixtures_dir;

/// Runs the fixture twice (determinism of the trace, the report and the page) and checks
/// its page's picture.
fn run_fixture(path: &Path) -> (String, Report) {
    let scenario = Scenario::load(path, registry()).unwrap_or_else(|e| panic!("{e}"));
    let first = run(&scenario, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let second = run(&scenario, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        first.trace == second.trace,
        "{}: two runs of seed {} produced different traces (determinism)",
        path.display(),
        scenario.seed
    );
    assert_eq!(
        first.render(),
        second.render(),
        "{}: reports differ",
        path.display()
    );
    assert!(
        kube_chaos_harness::picture::page(&scenario, &first)
            == kube_chaos_harness::picture::page(&scenario, &second),
        "{}: pages differ",
        path.display()
    );
    super::pictures::check_page(&scenario.name, &scenario, &first);
    (scenario.name, first)
}

#[test]
fn every_fixture_meets_its_expectation_deterministically_and_matches_its_snapshot() {
    // Runs fixtures on two threads (each simulation stays on its own thread), then checks
    // them in file order so snapshot failures read in a stable order.
    let files = collect(&[fixtures_dir()]).expect("fixtures exist");
    assert!(
        files.len() >= 12,
        "expected at least 12 fixtures, found {}",
        files.len()
    );
    let queue = Mutex::new(files.clone());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some(path) = queue.lock().unwrap().pop() else {
                    break;
                };
                let out = run_fixture(&path);
                results.lock().unwrap().push((path, out));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(results.len(), files.len(), "a fixture run panicked");
    let mut unmet = Vec::new();
    for (path, (name, report)) in &results {
        if !report.met() {
            unmet.push(format!("{}:\n{}", path.display(), report.render()));
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../../../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(format!(
            "fixtures/{}",
            path.file_name().unwrap().to_string_lossy()
        ));
        settings.bind(|| insta::assert_snapshot!(name.as_str(), report.render()));
    }
    assert!(
        unmet.is_empty(),
        "fixtures that did not meet their expectation:\n{}",
        unmet.join("\n")
    );
}

#[test]
fn a_quiet_run_leaves_deliveries_out_of_the_trace_but_not_out_of_the_checks() {
    // steady-churn with `trace_events: false`: the checkers must still see every delivery
    // (else no_event_loss would report the handlers empty), only the rendered trace drops them.
    let mut s = Scenario::load(&fixtures_dir().join("steady-churn.json"), registry()).unwrap();
    s.subject.config.trace_events = false;
    let report = run(&s, None).unwrap();
    assert!(report.met(), "{}", report.render());
    assert!(report.counters["events"] > 100, "{:?}", report.counters);
    assert!(!report.trace.contains("on_add") && !report.trace.contains("on_update"));
    assert!(
        report.trace.contains("write "),
        "server writes stay in the trace"
    );
}
