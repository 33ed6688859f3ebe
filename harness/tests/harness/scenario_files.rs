//! Scenario files: every mistake is reported with the JSON path of the field and what was
//! expected; the checked-in JSON Schema is current; a scenario round-trips through JSON.

use kube_chaos_harness::scenario::{json_schema, Scenario};
use kube_chaos_harness::subject::registry;

use super::fixtures_dir;

fn error_of(json: &str) -> (String, String) {
    let e = Scenario::parse(json, "bad.json", registry()).expect_err("the scenario is invalid");
    (e.path, e.message)
}

fn with(extra: &str) -> String {
    format!(
        r#"{{"version": 1, "name": "t", "duration": "1m", "subject": {{"name": "informer"}}{extra}}}"#
    )
}

#[test]
fn semantic_mistakes_name_their_field() {
    // Each case is valid JSON and valid serde, so only validation can catch it.
    let cases = [
        (with(r#", "faults": [{"partition": {"at": "50s", "for": "20s"}}]"#), "faults[0].partition.for", "after the scenario's duration"),
        (with(r#", "faults": [{"crash_replica": {"at": "1s", "replica": 2, "restart_after": "1s"}}]"#), "faults[0].crash_replica.replica", "does not exist"),
        (with(r#", "faults": [{"http_errors": {"at": "1s", "for": "1s", "code": 418, "rate": 0.5}}]"#), "faults[0].http_errors.code", "429, 500, 503 or 504"),
        (with(r#", "faults": [{"loss": {"at": "1s", "for": "1s", "rate": 1.5}}]"#), "faults[0].loss.rate", "between 0 and 1"),
        (with(r#", "faults": [{"slow_reconcile": {"at": "1s", "for": "1s", "delay": "1s"}}]"#), "faults[0].slow_reconcile", "controller subjects only"),
        (with(r#", "workload": [{"create": {"at": "1s", "name": "Bad_Name"}}]"#), "workload[0].create.name", "RFC 1123"),
        (with(r#", "expect": {"violations": ["no_such_checker"]}"#), "expect.violations[0]", "unknown variant `no_such_checker`, expected one of `watch_exact`"),
        (with(r#", "cluster": {"replicas": 0}"#), "cluster.replicas", "must be 1 to 16"),
        (with(r#", "objects": [{"name": "a", "namespace": "nope"}]"#), "objects[0].namespace", "does not exist"),
        (r#"{"version": 2, "name": "t", "duration": "1m", "subject": {"name": "informer"}}"#.into(), "version", "unsupported version 2"),
        (r#"{"version": 1, "name": "t", "duration": "1m", "subject": {"name": "nope"}}"#.into(), "subject.name", "unknown subject \"nope\""),
        (r#"{"version": 1, "name": "t", "duration": "1m", "subject": {"name": "informer", "config": {"label_selector": "a in ("}}}"#.into(), "subject.config.label_selector", "invalid label selector"),
    ];
    for (json, path, message) in cases {
        let (p, m) = error_of(&json);
        assert_eq!(p, path, "{json}");
        assert!(
            m.contains(message),
            "{path}: {m:?} should mention {message:?}"
        );
    }
}

#[test]
fn type_mistakes_name_their_field() {
    let (p, m) = error_of(&with(
        r#", "workload": [{"churn": {"at": "1s", "for": "5s", "every": "soon", "objects": 3}}]"#,
    ));
    assert_eq!(p, "workload[0].churn.every");
    assert!(
        m.starts_with(r#"expected a duration like "30s", got "soon""#),
        "{m}"
    );
    let (p, m) = error_of(r#"{"version": 1, "name": "t", "duration": "1m"}"#);
    assert_eq!(p, ".");
    assert!(m.contains("missing field `subject`"), "{m}");
    let (p, _) = error_of(&with(r#", "seed": -1"#));
    assert_eq!(p, "seed");
    let (p, m) = error_of("{not json");
    assert_eq!(p, ".");
    assert!(m.contains("key must be a string"), "{m}");
}

#[test]
fn the_checked_in_json_schema_is_current() {
    // Regenerate with: cargo run --bin kube-chaos -- schema > fixtures/scenario.schema.json
    let path = fixtures_dir().join("scenario.schema.json");
    let checked_in = std::fs::read_to_string(&path).expect("fixtures/scenario.schema.json exists");
    assert!(checked_in == json_schema(), "fixtures/scenario.schema.json is stale: run `cargo run --bin kube-chaos -- schema > fixtures/scenario.schema.json`");
}

#[test]
fn every_fixture_round_trips_through_its_json_form() {
    for path in kube_chaos_harness::suite::collect(&[fixtures_dir()]).unwrap() {
        let s = Scenario::load(&path, registry()).unwrap();
        assert_eq!(
            Scenario::parse(&s.to_json(), "again", registry()).unwrap(),
            s,
            "{}",
            path.display()
        );
        assert!(
            !s.description.is_empty(),
            "{} tells no story",
            path.display()
        );
    }
}
