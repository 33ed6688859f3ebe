//! The regression directory: replay files of past failures, rerun first on every test run.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::failure::{finding, Failed, Finding};
use super::Operator;
use crate::run;
use crate::scenario::Scenario;
use crate::subject;

/// The replay files of `op` in `dir` (`{name}-*.json`), in name order; none if `dir` is
/// missing.
fn files(op: &Operator, dir: &Path) -> Result<Vec<PathBuf>, Failed> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Failed::Setup(format!("cannot read {}: {e}", dir.display()))),
    };
    let prefix = format!("{}-", op.name);
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&prefix) && name.ends_with(".json")
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Reads a replay file as a scenario of `op` (whatever subject name it was written with).
pub(super) fn load(op: &Operator, path: &Path) -> Result<Scenario, Failed> {
    let file = path.display().to_string();
    let broken = |error: String| Failed::Broken {
        what: file.clone(),
        error,
    };
    let text = std::fs::read_to_string(path).map_err(|e| broken(format!("cannot read: {e}")))?;
    let mut doc: Value = serde_json::from_str(&text).map_err(|e| broken(e.to_string()))?;
    if let Some(s) = doc.get_mut("subject").and_then(Value::as_object_mut) {
        s.insert("name".into(), op.subject().name.into());
    }
    Scenario::parse(&doc.to_string(), &file, subject::registry()).map_err(|e| broken(e.to_string()))
}

/// The report of one replay file and its findings (none: it passes now).
fn replay(op: &Operator, path: &Path) -> Result<(run::Report, Vec<Finding>), Failed> {
    let s = load(op, path)?;
    let report = run::run(&s, None).map_err(|e| Failed::Broken {
        what: path.display().to_string(),
        error: e.to_string(),
    })?;
    let origin = "a regression file, failing again".to_string();
    let findings = report
        .violated()
        .into_iter()
        .filter(|c| !s.expect.violations.contains(c))
        .map(|c| finding(c, &report, path, origin.clone()))
        .collect();
    Ok((report, findings))
}

/// Reruns every replay file of `op` in `dir`; `Err` with the findings of those that fail.
pub(super) fn rerun(op: &Operator, dir: &Path) -> Result<(), Failed> {
    let mut findings = Vec::new();
    for path in files(op, dir)? {
        findings.extend(replay(op, &path)?.1);
    }
    match findings.is_empty() {
        true => Ok(()),
        false => Err(Failed::Found(findings)),
    }
}

/// Runs one replay file alone and prints its report (`KUBE_CHAOS_REPLAY`).
pub(super) fn replay_one(op: &Operator, path: &Path) -> Result<(), Failed> {
    let (report, findings) = replay(op, path)?;
    println!("{}", report.render());
    match findings.is_empty() {
        true => Ok(()),
        false => Err(Failed::Found(findings)),
    }
}
