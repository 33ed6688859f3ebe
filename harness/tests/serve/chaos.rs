//! `kube-chaos serve --scenario`: real clients through faults played on the wall clock,
//! judged from what the server saw (`--report`). Each test runs the real binary with a
//! scenario of a few seconds and the real client beside it, then asserts the report's
//! verdicts — including, plainly, the checkers a real client fails (those are findings).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `kube-chaos serve --scenario` process: its URL, its report file; killed when dropped.
pub struct Chaos {
    child: Child,
    /// The apiserver URL it printed.
    pub url: String,
    /// The admin URL it printed, if `--admin-port` was given.
    pub admin: Option<String>,
    dir: PathBuf,
}

impl Drop for Chaos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Chaos {
    /// Writes `scenario` (JSON) to a fresh directory and starts serving it with `args`.
    pub fn start(name: &str, scenario: &str, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("kube-chaos-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("scenario.json"), scenario).expect("scenario file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-chaos"))
            .args(["serve", "--port", "0", "--scenario"])
            .arg(dir.join("scenario.json"))
            .arg("--report")
            .arg(dir.join("report.txt"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kube-chaos serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        let mut admin = None;
        for line in lines.by_ref() {
            let line = line.expect("utf-8");
            let found = line.split_whitespace().find(|w| w.starts_with("http://"));
            match (line.trim_start().starts_with("admin:"), found) {
                (true, Some(u)) => admin = Some(u.to_string()),
                (false, Some(u)) if url.is_none() => url = Some(u.to_string()),
                _ => {}
            }
            if line.contains("scenario ") {
                break;
            }
        }
        if args.contains(&"--admin-port") {
            for line in lines.by_ref() {
                let line = line.expect("utf-8");
                if let Some(u) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                    admin = Some(u.to_string());
                    break;
                }
            }
        }
        // Keep reading what the server prints, so that it never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            url: url.expect("the server printed its URL"),
            admin,
            dir,
        }
    }

    /// The directory of the scenario and the report (for a client's cache file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits (at most 30 s) for the scenario to end; returns the report.
    pub fn report(&mut self) -> String {
        let started = Instant::now();
        while self.child.try_wait().expect("wait").is_none() {
            assert!(started.elapsed() < Duration::from_secs(30), "the scenario never ended");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(self.dir.join("report.txt")).expect("the report was written")
    }
}

/// A client process, killed when dropped; its output collected.
pub struct ClientProcess(Child);

impl ClientProcess {
    /// Starts `cmd` with its stdout and stderr piped.
    pub fn start(mut cmd: Command) -> Self {
        Self(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the client starts"),
        )
    }

    /// Kills it (if still running) and returns everything it printed.
    pub fn output(mut self) -> String {
        let _ = self.0.kill();
        let mut out = String::new();
        for pipe in [
            self.0.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read>),
            self.0.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read>),
        ]
        .into_iter()
        .flatten()
        {
            let mut p = pipe;
            let _ = p.read_to_string(&mut out);
        }
        let _ = self.0.wait();
        out
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use std::io::Read as _;

/// The verdict line of `checker` in a report (`pass` or `VIOLATED (n)`).
pub fn verdict<'r>(report: &'r str, checker: &str) -> &'r str {
    report
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(checker)).then(|| l.trim_start()[checker.len()..].trim())
        })
        .unwrap_or_else(|| panic!("no verdict for {checker} in\n{report}"))
}

#[test]
fn kubectl_get_watch_stops_watching_after_an_in_stream_410_instead_of_relisting() {
    // A finding, asserted: kubectl get -w prints the in-stream 410 as a Status row and never
    // asks again (the report's relist_after_expired names kubectl), while the other
    // checkers pass. Proves the scenario's objects, workload and expire_watches reached a
    // real client on the wall clock and the report judged it from the access log alone.
    if Command::new("kubectl").arg("version").arg("--client").output().is_err() {
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let scenario = r#"{"version": 1, "name": "kubectl-expire", "duration": "4s", "settle": "1s",
        "subject": {"name": "external"}, "objects": [{"name": "a"}],
        "workload": [{"update": {"at": "1500ms", "name": "a"}}, {"update": {"at": "3500ms", "name": "a"}}],
        "faults": [{"expire_watches": {"at": "2500ms"}}]}"#;
    let mut chaos = Chaos::start("kubectl", scenario, &[]);
    let mut cmd = Command::new("kubectl");
    cmd.args(["--server", &chaos.url, "get", "configmaps", "-n", "default", "-w"]);
    let kubectl = ClientProcess::start(cmd);
    let report = chaos.report();
    let out = kubectl.output();
    assert!(out.contains("Expired"), "kubectl printed the 410:\n{out}");
    assert!(report.contains("expired_410    1"), "{report}");
    assert_eq!(verdict(&report, "relist_after_expired"), "VIOLATED (1)", "{report}");
    assert!(
        report.contains("kubectl/") && report.contains("never asked for it again after the 410"),
        "{report}"
    );
    for c in ["no_historical_replay", "watch_rate", "list_rate", "backoff"] {
        assert_eq!(verdict(&report, c), "pass", "{c}:\n{report}");
    }
    assert!(report.contains("verdict: UNMET"), "{report}");
}
