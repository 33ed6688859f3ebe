//! The divergence finder and seeded std randomness (DESIGN.md §8): a subject that iterates a
//! std `HashSet` diverges between two runs of one seed when std's randomness comes from the
//! OS, and the finder names the first differing line; with it seeded (the default) the same
//! subject is byte-identical twice in one process and across two `kube-chaos` processes.

use std::path::{Path, PathBuf};
use std::process::Command;

use kube_chaos_harness::run::{check_determinism, Determinism, StdRandomness};
use kube_chaos_harness::subject::registry;
use kube_chaos_harness::Scenario;

use super::fixtures_dir;

/// `hash-order` over 12 ConfigMaps: three listings, each reconciled in `HashSet` order.
fn hash_order() -> Scenario {
    let objects: Vec<String> = (0..12)
        .map(|i| format!(r#"{{"name": "cm-{i}"}}"#))
        .collect();
    let text = format!(
        r#"{{"version": 1, "name": "hash-order", "duration": "12s", "settle": "1s",
            "subject": {{"name": "hash-order"}}, "objects": [{}]}}"#,
        objects.join(", ")
    );
    Scenario::parse(&text, "hash-order", registry()).expect("a valid scenario")
}

#[test]
fn the_finder_names_the_first_differing_line_of_a_subject_iterating_an_os_seeded_hash_set() {
    // Std randomness from the OS: each run's HashSet order is one of 12! — the two runs
    // differ at the first listing's reconciles, and the lines before it are shared.
    let d = check_determinism(&hash_order(), None, StdRandomness::Os).expect("runs");
    let Determinism::Diverged { divergence, .. } = &d else {
        panic!("two OS-seeded runs of hash-order were identical");
    };
    assert_eq!(divergence.part, "trace");
    let (first, second) = (divergence.first.clone(), divergence.second.clone());
    assert!(first.as_deref().unwrap().contains("reconcile"), "{first:?}");
    assert!(
        second.as_deref().unwrap().contains("reconcile"),
        "{second:?}"
    );
    assert_ne!(first, second);
    assert!(!divergence.before.is_empty());
    let shown = divergence.render();
    assert!(shown.starts_with(&format!(
        "the two runs' trace first differ at line {}:",
        divergence.line
    )));
    assert!(
        shown.contains(&format!("  1 {}", first.unwrap())),
        "{shown}"
    );
}

#[test]
fn with_std_randomness_seeded_the_hash_set_subject_runs_identically_twice() {
    // The default: the runs happen on fresh threads whose HashMap keys come from the seed.
    assert!(
        kube_chaos_harness::norandom::active(),
        "the getrandom override is linked"
    );
    let d = check_determinism(&hash_order(), None, StdRandomness::Seeded).expect("runs");
    assert!(
        d.divergence().is_none(),
        "{}",
        d.divergence().unwrap().render()
    );
    assert!(d.report().trace.matches("reconcile ").count() >= 24);
    let other = check_determinism(&hash_order(), Some(1), StdRandomness::Seeded).expect("runs");
    assert_ne!(
        other.report().trace,
        d.report().trace,
        "another seed, another order"
    );
}

/// `kube-chaos run --trace FILE` in a new process: the rendered report (no wall clock), the
/// summary table (which has one) left out.
fn cli_report(path: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
        .args(["run", "--trace", path.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let table = stdout.find("\nscenario  ").expect("the summary table");
    stdout[..table].to_string()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kube-chaos-det-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_kube_chaos_processes_print_identical_traces_for_hash_order_and_kube_runtime() {
    // Per-process OS randomness is what differs between processes; the CLI seeds it.
    let hash = temp_file("hash-order.json", &hash_order().to_json());
    let runtime = fixtures_dir().join("kube-runtime-controller-partition-410.json");
    for path in [hash.as_path(), runtime.as_path()] {
        let (a, b) = (cli_report(path), cli_report(path));
        assert!(a.contains("trace ("), "{a}");
        if let Some(d) = kube_chaos_harness::run::first_divergence("output", &a, &b, 8) {
            panic!("{}: {}", path.display(), d.render());
        }
    }
}

#[test]
fn run_check_determinism_passes_a_deterministic_fixture() {
    // The flag runs each scenario twice; identical runs print the usual verdict.
    let path = fixtures_dir().join("stream-drop.json");
    let out = Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
        .args(["run", "--check-determinism", path.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("ok "), "{stdout}");
}

/// `kube-chaos explore` in a new process: its summary without wall times, and the replay
/// files it wrote.
fn cli_explore(args: &[&str], out: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let run = Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
        .arg("explore")
        .args(args)
        .args(["--out", out.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let lines = stdout
        .lines()
        .filter(|l| !l.contains(" s ("))
        .map(|l| l.split("; shrunk in").next().unwrap_or_default())
        .map(|l| l.replace(out.to_str().unwrap(), "OUT"))
        .collect();
    let mut files: Vec<(String, String)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    (lines, files)
}

#[test]
fn exploring_kube_runtime_controller_finds_the_same_failure_at_the_same_case_in_two_processes() {
    // Seed 1 fails at case 2 (reconcile_coverage, convergence and no_stuck_reconcile: a
    // request a fault swallowed never returns, so the source is never mirrored) and case 16
    // (retry_backoff); before std's randomness was seeded one process in two panicked
    // shrinking such failures ("the run is not deterministic").
    let args = [
        "--subject",
        "kube-runtime-controller",
        "--cases",
        "25",
        "--seed",
        "1",
        "--jobs",
        "2",
        "--shrink-runs",
        "30",
    ];
    let base = std::env::temp_dir().join(format!("kube-chaos-det-explore-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    let (first, second) = (cli_explore(&args, &a), cli_explore(&args, &b));
    assert_eq!(first, second);
    let shown = first.0.join("\n");
    assert!(
        shown.contains("retry_backoff violated (case 16)"),
        "{shown}"
    );
    assert!(shown.contains("convergence violated (case 2)"), "{shown}");
    assert!(
        shown.contains("no_stuck_reconcile violated (case 2)"),
        "{shown}"
    );
    assert!(!shown.contains("did not reproduce"), "{shown}");
    let count = |ext: &str| first.1.iter().filter(|(n, _)| n.ends_with(ext)).count();
    assert_eq!(
        (count(".json"), count(".html")),
        (4, 4),
        "four replay files, each with its page (the same bytes in both processes)"
    );
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn the_kube_runtime_fixture_diverges_without_seeded_std_randomness() {
    // The control experiment: 20 sources pending at once in kube-runtime's HashSet make two
    // OS-seeded runs differ, so the fixture's byte-identical runs are the seeding's doing.
    let path = fixtures_dir().join("kube-runtime-controller-partition-410.json");
    let s = Scenario::load(&path, registry()).expect("the fixture loads");
    let d = check_determinism(&s, None, StdRandomness::Os).expect("runs");
    let divergence = d.divergence().expect("OS-seeded runs differ");
    assert!(
        divergence
            .first
            .as_deref()
            .unwrap_or("")
            .contains("reconcile"),
        "{}",
        divergence.render()
    );
}

#[test]
fn a_subject_reading_the_wall_clock_on_its_own_thread_diverges_and_the_finder_names_both() {
    // Neither is seeded, both are counted: the divergence report names them per run.
    let text = r#"{"version": 1, "name": "wall", "duration": "12s", "settle": "1s",
        "subject": {"name": "wall-clock"}}"#;
    let s = Scenario::parse(text, "wall", registry()).expect("valid");
    let d = check_determinism(&s, None, StdRandomness::Seeded).expect("runs");
    let divergence = d.divergence().expect("the wall clock differs between runs");
    assert!(divergence.first.as_deref().unwrap().contains("default/t-"));
    assert_eq!(
        divergence.suspects,
        [
            "run 1 started 3 thread(s) and read the wall clock 3 time(s)",
            "run 2 started 3 thread(s) and read the wall clock 3 time(s)"
        ]
    );
    assert!(divergence
        .render()
        .contains("not seeded by the harness: run 1 started 3 thread(s)"));
    // hash-order starts no thread. (Its wall-clock count is not zero: something in the
    // client or server stack reads `SystemTime::now` a few times per run, unattributed.)
    let quiet = check_determinism(&hash_order(), None, StdRandomness::Seeded).expect("runs");
    assert_eq!(quiet.report().uncontrolled.threads_spawned, 0);
}

#[test]
fn exploration_reports_a_failure_that_does_not_reproduce_instead_of_shrinking_it() {
    // wall-clock's traces differ run to run: its first failing case is run again, differs,
    // and is printed with the divergence and its named suspects; nothing is shrunk or
    // written, later cases failing the same checkers are not reported again, exit 1.
    let out = std::env::temp_dir().join(format!("kube-chaos-det-wall-{}", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
        .args([
            "explore",
            "--subject",
            "wall-clock",
            "--cases",
            "2",
            "--seed",
            "1",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.matches("did not reproduce").count(), 1, "{stdout}");
    assert!(stdout.contains("case 0 violated"), "{stdout}");
    assert!(stdout.contains("first differ at line"), "{stdout}");
    assert!(
        stdout.contains("not seeded by the harness: run 1 started"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "no replay file"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn run_check_determinism_prints_nondet_with_the_first_differing_lines_and_exits_1() {
    // wall-clock differs run to run even seeded: the CLI names the scenario NONDET, shows
    // both runs' first differing line and the suspects, and prints the replay command.
    let path = temp_file(
        "wall-clock.json",
        r#"{"version": 1, "name": "wall", "duration": "6s", "settle": "1s", "subject": {"name": "wall-clock"}}"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
        .args(["run", "--check-determinism", path.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("NONDET wall [wall-clock]: two runs of seed 0 differ\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the two runs' trace first differ at line"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  1 ") && stdout.contains("\n  2 "),
        "{stdout}"
    );
    assert!(
        stdout.contains("not seeded by the harness: run 2"),
        "{stdout}"
    );
    assert!(stdout.contains("--check-determinism\n"), "{stdout}");
}
