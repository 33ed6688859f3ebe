//! The `kube-chaos` binary: exit 0 when every scenario met its expectation, 1 when one did
//! not (with the command that replays it), 2 for bad input (naming the field).

use std::process::{Command, Output};

use super::fixtures_dir;

fn kube_chaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_bad_scenario_file_exits_2_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("kube-chaos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"version": 1, "name": "t", "duration": "1m", "subject": {"name": "informer"}, "faults": [{"partition": {"at": "1s", "for": "abc"}}]}"#).unwrap();
    let out = kube_chaos(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(r#"faults[0].partition.for: expected a duration like "30s", got "abc""#),
        "{err}"
    );
    let out = kube_chaos(&["run", dir.join("missing.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such file"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_flag_exits_2() {
    let out = kube_chaos(&["run", "--sed", "3", "fixtures"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--sed"));
}

#[test]
fn an_unmet_expectation_exits_1_and_prints_the_replay_command() {
    // The ignoring-options fixture expects a violation; with its expectation removed, the
    // same run must fail and say how to replay it.
    let fixture = fixtures_dir().join("ignoring-options.json");
    let mut s =
        kube_chaos_harness::Scenario::load(&fixture, kube_chaos_harness::subject::registry())
            .unwrap();
    s.expect.violations.clear();
    let path = std::env::temp_dir().join(format!("kube-chaos-unmet-{}.json", std::process::id()));
    std::fs::write(&path, s.to_json()).unwrap();
    let out = kube_chaos(&["run", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("UNMET  ignoring-options"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "replay: cargo run --release --bin kube-chaos -- run {} --seed 23",
            path.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 of 1 scenarios met their expectations"),
        "{stdout}"
    );
}

#[test]
fn subjects_lists_every_subject_with_a_line_each() {
    let out = kube_chaos(&["subjects"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for d in kube_chaos_harness::subject::registry().all() {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(d.name) && l.contains(d.about)),
            "{}",
            d.name
        );
    }
}

#[test]
fn explore_finds_a_zoo_bug_writes_its_replay_file_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("kube-chaos-cli-explore-{}", std::process::id()));
    let out = kube_chaos(&[
        "explore",
        "--subject",
        "informer-late-handler",
        "--cases",
        "3",
        "--seed",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let file = dir.join("informer-late-handler-no_event_loss.json");
    let replay = format!("replay: kube-chaos run {}", file.display());
    assert!(stdout.contains(&replay), "{stdout}");
    assert!(stdout.contains("no_event_loss violated"), "{stdout}");
    // The printed command reproduces it: exit 1, the checker violated.
    let out = kube_chaos(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("no_event_loss          VIOLATED"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explore_of_a_correct_subject_exits_0_and_bad_input_exits_2() {
    let dir = std::env::temp_dir().join(format!("kube-chaos-cli-explore0-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let out = kube_chaos(&[
        "explore",
        "--subject",
        "informer",
        "--cases",
        "2",
        "--out",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("0 distinct failure(s)"));
    let out = kube_chaos(&["explore", "--subject", "nope", "--out", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(r#"unknown subject "nope""#));
    let out = kube_chaos(&[
        "explore",
        "--subject",
        "informer",
        "--cases",
        "0",
        "--out",
        d,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--cases"),
        "{}",
        text(&out.stderr)
    );
    let out = kube_chaos(&[
        "explore",
        "--subject",
        "informer",
        "--jobs",
        "0",
        "--out",
        d,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = kube_chaos(&[
        "explore",
        "--subject",
        "informer",
        "--shard",
        "3/2",
        "--out",
        d,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("shard 3/2: K must be 1 to N"),
        "{}",
        text(&out.stderr)
    );
    // The zoo is listed after the real subjects, under its own heading.
    let out = kube_chaos(&["subjects"]);
    let listed = text(&out.stdout);
    let (real, zoo) = listed.split_once("bug zoo").expect("a zoo heading");
    let names = |part: &str| -> Vec<String> {
        part.lines()
            .filter_map(|l| l.strip_prefix("  "))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    let (real, zoo) = (names(real), names(zoo));
    assert!(real.contains(&"informer".into()) && !real.contains(&"controller-drops-readd".into()));
    assert!(zoo.contains(&"controller-drops-readd".into()) && !zoo.contains(&"informer".into()));
    let _ = std::fs::remove_dir_all(&dir);
}
