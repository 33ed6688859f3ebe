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
    let mut s = kube_chaos_harness::scenario::Scenario::load(&fixture).unwrap();
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
    for d in kube_chaos_harness::subject::all() {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(d.name) && l.contains(d.about)),
            "{}",
            d.name
        );
    }
}
