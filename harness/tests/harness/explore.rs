//! Exploration as CI runs it (bounded, fixed seed): every bug-zoo subject is found within 300
//! cases and shrunk to a replay file of at most 3 faults that `kube-chaos run` reproduces
//! exactly; the correct subjects survive 300 cases; the cases do not depend on `--jobs`.

use std::path::PathBuf;

use kube_chaos_harness::explore::{self, Exploration, Options, Shard};
use kube_chaos_harness::scenario::Checker;
use kube_chaos_harness::subject::registry;
use kube_chaos_harness::{run as run_scenario, Scenario};

const SEED: u64 = 1;
const CASES: u32 = 300;

fn run(subject: &str, stop_at_first: bool) -> Exploration {
    let opts = Options {
        jobs: 2,
        stop_at_first,
        ..Options::new(subject, CASES, SEED)
    };
    explore::explore(&opts, &|_| {}).expect("a known subject")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("kube-chaos-explore-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The checker that names each zoo subject's bug (the guarantee the subject breaks).
fn expected_checker(zoo: &str) -> Option<Checker> {
    Some(match zoo {
        "retry-watcher-5xx-as-expired" => Checker::WatchExact,
        "informer-relist-from-cache" => Checker::NoHistoricalReplay,
        "informer-short-watch-timeout" => Checker::WatchTimeout,
        "controller-no-forget" => Checker::BackoffReset,
        "controller-retries-terminal" => Checker::DeadLetterOnce,
        "delayed-controller-latest-wins" => Checker::AddAfterEarliest,
        _ => return None,
    })
}

#[test]
fn every_bug_zoo_subject_is_found_and_shrunk_to_a_replay_file_that_reproduces_it() {
    let zoo: Vec<&str> = registry()
        .all()
        .iter()
        .filter(|d| d.zoo)
        .map(|d| d.name)
        .collect();
    assert!(zoo.len() >= 15, "the zoo has {} subjects", zoo.len());
    let dir = temp_dir("zoo");
    for name in zoo {
        let e = run(name, true);
        assert!(
            e.broken.is_empty(),
            "{name}: harness failures {:?}",
            e.broken
        );
        let f = e
            .failures
            .first()
            .unwrap_or_else(|| panic!("{name}: no violation in {} cases", e.cases_run));
        assert!(e.cases_run <= CASES);
        if let Some(want) = expected_checker(name) {
            let got: Vec<_> = e.failures.iter().map(|f| f.checker).collect();
            assert!(got.contains(&want), "{name}: found {got:?}, not {want}");
        }
        let s = &f.scenario;
        assert!(
            s.faults.len() <= 3,
            "{name}: shrunk to {} faults:\n{}",
            s.faults.len(),
            s.to_json()
        );
        assert!(
            s.faults.len() <= f.original.faults.len()
                && s.workload.len() <= f.original.workload.len()
                && s.objects.len() <= f.original.objects.len()
                && s.duration <= f.original.duration,
            "{name}: the shrunk scenario is not smaller than case {}",
            f.case
        );
        // The replay file, loaded and run as `kube-chaos run` does: the same violation and
        // the very same trace.
        let paths = explore::write_replays(&dir, &e).unwrap();
        let loaded =
            Scenario::load(&paths[0], registry()).expect("a replay file is a valid scenario");
        assert_eq!(&loaded, s, "{name}: the file round-trips");
        let replayed = run_scenario(&loaded, None).unwrap();
        assert!(
            replayed.violated().contains(&f.checker),
            "{name}: the replay does not violate {}:\n{}",
            f.checker,
            replayed.render()
        );
        assert_eq!(
            replayed.trace, f.report.trace,
            "{name}: the replay's trace differs"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_correct_subjects_pass_300_generated_cases() {
    for name in [
        "retry-watcher",
        "informer",
        "controller",
        "delayed-controller",
    ] {
        let e = run(name, false);
        assert_eq!(e.cases_run, CASES);
        assert!(
            e.broken.is_empty(),
            "{name}: harness failures {:?}",
            e.broken
        );
        let found: Vec<String> = e
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{}:\n{}\n{}",
                    f.checker,
                    f.scenario.to_json(),
                    f.report.render()
                )
            })
            .collect();
        assert!(found.is_empty(), "{name} failed:\n{}", found.join("\n"));
    }
}

#[test]
fn cases_and_replay_files_depend_on_the_seed_only_not_on_jobs() {
    let d = registry().find("informer-late-handler").unwrap();
    assert_eq!(explore::generate(d, 7, 3), explore::generate(d, 7, 3));
    assert_ne!(explore::generate(d, 7, 3), explore::generate(d, 8, 3));
    let with = |jobs| {
        let opts = Options {
            jobs,
            ..Options::new(d.name, 4, 7)
        };
        explore::explore(&opts, &|_| {}).unwrap()
    };
    let (one, two) = (with(1), with(2));
    assert!(
        !one.failures.is_empty(),
        "the zoo subject is found in 4 cases"
    );
    let files = |e: &Exploration| -> Vec<String> {
        e.failures.iter().map(|f| f.scenario.to_json()).collect()
    };
    assert_eq!(files(&one), files(&two));
}

#[test]
fn the_union_of_three_shards_is_the_unsharded_run() {
    // The zoo subject fails in several cases with several checkers: each shard shrinks its
    // own first failures, and merging keeps the earliest case per checker, exactly the
    // failures (cases, replay files, traces) of one run over all the cases.
    let opts = |shard| Options {
        shard,
        ..Options::new("controller-no-processing-set", 14, 5)
    };
    let whole = explore::explore(&opts(Shard::WHOLE), &|_| {}).unwrap();
    assert!(
        whole.failures.len() >= 2,
        "{} failures",
        whole.failures.len()
    );
    let shards = (1..=3)
        .map(|k| explore::explore(&opts(Shard::new(k, 3).unwrap()), &|_| {}).unwrap())
        .collect();
    let merged = explore::merge(shards).unwrap();
    assert_eq!(merged.cases_run, whole.cases_run);
    let summary = |e: &Exploration| -> Vec<(u32, String, String, String)> {
        e.failures
            .iter()
            .map(|f| {
                let name = explore::replay_file_name(&e.subject, f.checker);
                (f.case, name, f.scenario.to_json(), f.report.trace.clone())
            })
            .collect()
    };
    assert_eq!(summary(&merged), summary(&whole));
}

#[test]
fn generated_scenarios_are_valid_scenario_files() {
    // What the strategy draws always passes the same validation as a file on disk, for
    // every subject (controller faults only for controllers, replicas in range, ...).
    for d in registry().all() {
        for case in 0..20 {
            let s = explore::generate(d, 11, case);
            let text = s.to_json();
            let parsed = Scenario::parse(&text, "generated", registry())
                .unwrap_or_else(|e| panic!("{} case {case}: {e}\n{text}", d.name));
            assert_eq!(parsed, s);
            assert!(s.faults.len() <= explore::profile::MAX_FAULTS);
        }
    }
}
