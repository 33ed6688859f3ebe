//! The runtime guarantees of the README's table that need a fault of their own: each
//! scenario is run with the correct subject (it must pass) and with the bug-zoo subject
//! that breaks the guarantee (the checker must fail), so a checker that stopped judging, or
//! a fault that stopped firing, fails here.

use kube_chaos_harness::run::{run, Report};
use kube_chaos_harness::scenario::Checker;
use kube_chaos_harness::subject::registry;
use kube_chaos_harness::trace::{Delivery, Record};
use kube_chaos_harness::Scenario;

/// `body` (workload, faults, ...) for subject `subject`, run with its seed.
fn run_with(subject: &str, config: &str, body: &str) -> Report {
    let text = format!(
        r#"{{"version": 1, "name": "g", "seed": 5, "duration": "60s", "settle": "1m",
            "subject": {{"name": "{subject}", "config": {config}}}, {body}}}"#
    );
    let s = Scenario::parse(&text, "inline", registry()).unwrap_or_else(|e| panic!("{e}"));
    run(&s, None).unwrap()
}

fn violated(r: &Report) -> Vec<Checker> {
    r.violated()
}

const CHURN: &str =
    r#""workload": [{"churn": {"at": "1s", "for": "50s", "every": "1s", "objects": 4}}]"#;

#[test]
fn a_watcher_resumes_after_in_stream_5xx_errors_and_one_that_takes_them_for_410_fails_watch_exact()
{
    // In-stream ERRORs with 500, 503 and 504 and a 504 at watch start: the RV never left
    // the window, so the RetryWatcher must deliver the whole history.
    let body = format!(
        r#"{CHURN}, "faults": [
            {{"watch_errors": {{"at": "10s", "code": 503, "retry_after": "2s"}}}},
            {{"watch_errors": {{"at": "20s", "code": 500}}}},
            {{"watch_errors": {{"at": "30s", "code": 504}}}},
            {{"http_errors": {{"at": "40s", "for": "3s", "code": 504, "rate": 1.0, "requests": "watch"}}}}]"#
    );
    let ok = run_with("retry-watcher", "{}", &body);
    assert!(ok.met(), "{}", ok.render());
    assert!(ok.counters["watches"] >= 4, "{}", ok.render());
    let bug = run_with("retry-watcher-5xx-as-expired", "{}", &body);
    assert_eq!(violated(&bug), [Checker::WatchExact], "{}", bug.render());
    assert!(bug.render().contains("but the server sent it no 410"));
}

#[test]
fn a_real_410_still_justifies_an_expired_stop() {
    let body = format!(r#"{CHURN}, "faults": [{{"expire_watches": {{"at": "10s"}}}}]"#);
    let r = run_with("retry-watcher", "{}", &body);
    assert!(r.met(), "{}", r.render());
    // The watcher stopped on the 410 (a prefix of the history, judged exact).
    let stopped = r.entries.iter().any(|e| {
        matches!(&e.record, Record::Error { kind, .. } if *kind == kube_chaos_harness::trace::ErrorKind::Expired)
    });
    assert!(stopped && r.counters["expired_410"] >= 1, "{}", r.render());
}

/// The largest time between a write of a key and the delivery of that version to the
/// subject's handler.
fn slowest_delivery(r: &Report) -> std::time::Duration {
    let writes: Vec<_> = r
        .entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Write { rv, .. } => Some((*rv, e.at)),
            _ => None,
        })
        .collect();
    r.entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Delivered { rv, how, .. }
                if !matches!(how, Delivery::Add { initial: true }) =>
            {
                let written = writes.iter().find(|(w, _)| w == rv)?.1;
                Some(e.at.saturating_sub(written))
            }
            _ => None,
        })
        .max()
        .unwrap_or_default()
}

const SLOW: &str = r#"{"slow_handler": {"at": "5s", "for": "30s", "delay": "2s"}}"#;

#[test]
fn under_a_slow_handler_deliveries_lag_yet_the_correct_subjects_pass() {
    let body = format!(r#"{CHURN}, "faults": [{SLOW}]"#);
    for subject in ["retry-watcher", "informer", "controller"] {
        let r = run_with(subject, "{}", &body);
        assert!(r.met(), "{subject}: {}", r.render());
        let lag = slowest_delivery(&r);
        assert!(
            lag >= std::time::Duration::from_secs(4),
            "{subject}: the slow handler did not hold deliveries back ({lag:?})"
        );
    }
}

#[test]
fn under_a_slow_handler_the_checkers_still_find_lost_and_replayed_events() {
    // A partition with deletions meanwhile: the informer that drops tombstones loses them,
    // the RetryWatcher that reconnects from "" replays history — slow handler or not.
    let body = format!(
        r#""objects": [{{"name": "a"}}, {{"name": "b"}}],
           "workload": [{{"delete": {{"at": "20s", "name": "a"}}}}, {{"update": {{"at": "21s", "name": "b"}}}}],
           "faults": [{SLOW}, {{"partition": {{"at": "15s", "for": "20s"}}}}, {{"compact": {{"at": "25s"}}}}]"#
    );
    let lost = run_with("informer-relist-without-tombstones", "{}", &body);
    assert!(
        violated(&lost).contains(&Checker::NoEventLoss),
        "{}",
        lost.render()
    );
    let replayed = run_with("retry-watcher-reconnect-from-empty", "{}", &body);
    assert!(!replayed.met(), "{}", replayed.render());
}

#[test]
fn watch_timeouts_are_judged_on_every_run_from_the_servers_access_log() {
    // No `expect.watch_rate`: the informer whose timeouts fall below min_watch_timeout is
    // caught by the timeoutSeconds the server saw.
    let config = r#"{"min_watch_timeout": "20s"}"#;
    let ok = run_with("informer", config, CHURN);
    assert!(ok.met(), "{}", ok.render());
    assert!(ok
        .watch_requests
        .iter()
        .all(|w| (20..40).contains(&w.timeout_seconds)));
    let bug = run_with("informer-short-watch-timeout", config, CHURN);
    assert_eq!(violated(&bug), [Checker::WatchTimeout], "{}", bug.render());
}
