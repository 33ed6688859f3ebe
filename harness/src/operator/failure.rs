//! What a failed exploration or regression run tells the user: per violated checker, the
//! shrunk replay file, the violation, the trace around it and the command that replays it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Operator;
use crate::explore::{write_replays, Exploration};
use crate::run::Report;
use crate::scenario::Checker;

/// One violated checker, with everything needed to see and replay it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The violated checker.
    pub checker: Checker,
    /// The replay file (in the regression directory).
    pub replay: PathBuf,
    /// Where it came from: `case 17 of seed 1, shrunk to 1 fault(s)` or `regression file`.
    pub origin: String,
    /// The first violation's message, with its key and time.
    pub violation: String,
    /// The trace lines around it.
    pub context: Vec<String>,
    /// The command that replays it alone.
    pub command: String,
}

/// Why [`Operator::check`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failed {
    /// Checkers were violated.
    #[error("{}", render(.0))]
    Found(Vec<Finding>),
    /// The harness could not run a case (a bug in the harness or a bad replay file).
    #[error("kube-chaos could not run {what}: {error}")]
    Broken {
        /// The case or file.
        what: String,
        /// Why.
        error: String,
    },
    /// Exploration could not start, or a file could not be written.
    #[error("kube-chaos: {0}")]
    Setup(String),
}

fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out += &format!(
            "kube-chaos: {} violated ({})\n  replay file: {}\n  violation: {}\n",
            f.checker,
            f.origin,
            f.replay.display(),
            f.violation
        );
        if !f.context.is_empty() {
            out += "  trace around it:\n";
            for line in &f.context {
                out += &format!("    {line}\n");
            }
        }
        out += &format!("  replay: {}\n", f.command);
    }
    out +=
        "The replay files stay in the regression directory and run first on every `cargo test`; \
            keep them in version control.";
    out
}

/// The test's name (libtest names its threads after tests), for the replay command.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "<your test>".into(),
    }
}

/// The finding of `checker` in `report`, replayed from `replay`.
pub(super) fn finding(checker: Checker, report: &Report, replay: &Path, origin: String) -> Finding {
    let first = report.verdict(checker).and_then(|v| v.violations.first());
    let violation = first.map_or_else(
        || "(no violation recorded)".to_string(),
        |v| {
            format!(
                "{} at {}: {}",
                v.key,
                crate::trace::secs(v.at).trim(),
                v.message
            )
        },
    );
    Finding {
        checker,
        replay: replay.to_path_buf(),
        origin,
        violation,
        context: first.map(|v| v.context.clone()).unwrap_or_default(),
        command: format!(
            "KUBE_CHAOS_REPLAY={} cargo test {}",
            replay.display(),
            test_name()
        ),
    }
}

/// `Ok` if the exploration found nothing; otherwise its failures written as replay files
/// into `dir`, and the findings.
pub(super) fn judge(op: &Operator, dir: &Path, mut e: Exploration) -> Result<Exploration, Failed> {
    if let Some(b) = e.broken.first() {
        return Err(Failed::Broken {
            what: format!("case {} of seed {}", b.case, e.seed),
            error: b.error.clone(),
        });
    }
    if let Some(u) = e.unreproduced.first() {
        return Err(Failed::Broken {
            what: format!(
                "case {} of seed {} (it did not fail the same way twice)",
                u.case, e.seed
            ),
            error: u.error.clone().unwrap_or_else(|| "the runs differ".into()),
        });
    }
    if e.failures.is_empty() {
        return Ok(e);
    }
    let test = test_name();
    for f in &mut e.failures {
        f.scenario.description = format!(
            "Found by {test} exploring {} cases of {} from seed {} (case {}); shrunk from {} fault(s) to {}; violates {}.",
            e.cases_run,
            op.name,
            e.seed,
            f.case,
            f.original.faults.len(),
            f.scenario.faults.len(),
            f.checker
        );
    }
    let paths = write_replays(dir, &e).map_err(|err| {
        Failed::Setup(format!(
            "cannot write replay files into {}: {err}",
            dir.display()
        ))
    })?;
    let findings = e
        .failures
        .iter()
        .zip(&paths)
        .map(|(f, path)| {
            let origin = format!(
                "case {} of seed {}, shrunk to {} fault(s) in {} runs",
                f.case,
                e.seed,
                f.scenario.faults.len(),
                f.shrink_runs
            );
            finding(f.checker, &f.report, path, origin)
        })
        .collect();
    Err(Failed::Found(findings))
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(std::slice::from_ref(self)))
    }
}
