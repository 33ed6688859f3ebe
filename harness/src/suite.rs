//! `kube-chaos run PATH...`: load every scenario first (bad input stops before anything
//! runs), run each, print its verdict as it finishes, then a summary table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::run::{check_determinism, run, Divergence, Report, StdRandomness};
use crate::scenario::{Checker, Scenario, ScenarioError};
use crate::subject::registry;

/// Files that live next to scenarios but are not scenarios.
const NOT_SCENARIOS: &[&str] = &["scenario.schema.json"];

/// The scenario files named by `paths` (directories contribute their `*.json`, sorted).
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| io_error(p, &e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .filter(|f| {
                    !f.file_name()
                        .is_some_and(|n| NOT_SCENARIOS.iter().any(|s| n == *s))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(io_error(p, &"no *.json scenario files in this directory"));
            }
            out.extend(files);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(io_error(p, &"no such file or directory"));
        }
    }
    Ok(out)
}

/// Every scenario named by `paths`, loaded and validated: the first bad file stops it.
pub fn load(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Scenario)>, ScenarioError> {
    collect(paths)?
        .into_iter()
        .map(|f| Scenario::load(&f, registry()).map(|s| (f, s)))
        .collect()
}

fn io_error(p: &Path, e: &dyn std::fmt::Display) -> ScenarioError {
    ScenarioError {
        file: p.display().to_string(),
        path: ".".into(),
        message: e.to_string(),
    }
}

/// One scenario's outcome in a suite.
#[derive(Debug)]
pub struct Outcome {
    /// The file.
    pub path: PathBuf,
    /// Its report, or why it could not run.
    pub report: Result<Report, String>,
    /// With [`Mode::CheckDeterminism`]: where its two runs first differed, if they did.
    pub divergence: Option<Divergence>,
}

impl Outcome {
    /// Whether the scenario met its expectation (and, when checked, ran deterministically).
    pub fn met(&self) -> bool {
        self.divergence.is_none() && self.report.as_ref().is_ok_and(Report::met)
    }
}

/// How each scenario of a suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Once.
    #[default]
    Once,
    /// Twice, comparing the runs (`--check-determinism`).
    CheckDeterminism,
}

/// The command that replays one scenario.
pub fn replay_command(path: &Path, seed: u64) -> String {
    format!(
        "cargo run --release --bin kube-chaos -- run {} --seed {seed}",
        path.display()
    )
}

/// Runs loaded scenarios in order, calling `progress` after each.
pub fn run_all(
    scenarios: &[(PathBuf, Scenario)],
    seed: Option<u64>,
    mode: Mode,
    mut progress: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for (path, s) in scenarios {
        let outcome = run_one(path, s, seed, mode);
        progress(&outcome);
        out.push(outcome);
    }
    out
}

/// Writes each run scenario's page into `dir` (`{name}.html`); scenarios that could not run
/// get none.
pub fn write_pages(
    dir: &Path,
    scenarios: &[(PathBuf, Scenario)],
    outcomes: &[Outcome],
) -> std::io::Result<()> {
    for ((_, s), o) in scenarios.iter().zip(outcomes) {
        if let Ok(r) = &o.report {
            crate::picture::write_page(dir, &s.name, s, r)?;
        }
    }
    Ok(())
}

fn run_one(path: &Path, s: &Scenario, seed: Option<u64>, mode: Mode) -> Outcome {
    let (report, divergence) = match mode {
        Mode::Once => (run(s, seed), None),
        Mode::CheckDeterminism => match check_determinism(s, seed, StdRandomness::Seeded) {
            Ok(d) => (Ok(d.report().clone()), d.divergence().cloned()),
            Err(e) => (Err(e), None),
        },
    };
    Outcome {
        path: path.to_path_buf(),
        report: report.map_err(|e| e.to_string()),
        divergence,
    }
}

/// The one-line verdict printed as a scenario finishes (with the replay command when unmet,
/// and where its two runs differed when they did).
pub fn verdict_line(o: &Outcome) -> String {
    match (&o.report, &o.divergence) {
        (Ok(r), Some(d)) => format!(
            "NONDET {} [{}]: two runs of seed {} differ\n{}  replay: {} --check-determinism",
            r.scenario,
            r.subject,
            r.seed,
            d.render(),
            replay_command(&o.path, r.seed)
        ),
        _ => report_line(o),
    }
}

fn report_line(o: &Outcome) -> String {
    match &o.report {
        Ok(r) if r.met() => {
            let found = r.violated();
            let note = if found.is_empty() {
                String::new()
            } else {
                format!(" (expected violations found: {})", names(&found))
            };
            format!("ok     {} [{}]{note}", r.scenario, r.subject)
        }
        Ok(r) => {
            let mut s = format!(
                "UNMET  {} [{}]: violated [{}], expected [{}]\n",
                r.scenario,
                r.subject,
                names(&r.violated()),
                names(&r.expected)
            );
            for v in r.verdicts.iter().filter(|v| !v.violations.is_empty()) {
                s += &v.render();
            }
            let _ = write!(s, "  replay: {}", replay_command(&o.path, r.seed));
            s
        }
        Err(e) => format!("ERROR  {}: {e}", o.path.display()),
    }
}

fn names(checkers: &[Checker]) -> String {
    let names: Vec<&str> = checkers.iter().map(|c| c.name()).collect();
    names.join(", ")
}

fn fmt_secs(d: Duration) -> String {
    if d.as_secs() >= 60 {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// The summary table's columns.
const COLUMNS: [&str; 11] = [
    "scenario",
    "subject",
    "seed",
    "simulated",
    "wall",
    "events",
    "watches",
    "410s",
    "relists",
    "reconciles",
    "verdict",
];

/// One outcome's row of the summary table.
fn row(o: &Outcome) -> Vec<String> {
    let Ok(r) = &o.report else {
        let mut cells = vec![o.path.display().to_string()];
        cells.extend((2..COLUMNS.len()).map(|_| "-".to_string()));
        cells.push("error".into());
        return cells;
    };
    let c = |k: &str| r.counters.get(k).copied().unwrap_or(0).to_string();
    let verdict = match (&o.divergence, r.met()) {
        (Some(_), _) => "NONDET",
        (None, true) => "met",
        (None, false) => "UNMET",
    };
    vec![
        r.scenario.clone(),
        r.subject.clone(),
        r.seed.to_string(),
        fmt_secs(r.simulated),
        fmt_secs(r.wall),
        c("events"),
        c("watches"),
        c("expired_410"),
        c("relists"),
        c("reconciles"),
        verdict.into(),
    ]
}

/// The summary table.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut rows = vec![COLUMNS.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    rows.extend(outcomes.iter().map(row));
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let met = outcomes.iter().filter(|o| o.met()).count();
    let _ = writeln!(
        out,
        "\n{met} of {} scenarios met their expectations",
        outcomes.len()
    );
    out
}
