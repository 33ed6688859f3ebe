//! The divergence finder: a scenario runs twice with one seed; if the two runs differ, the
//! first differing line of each is shown with the lines before it (the trace first, then
//! the rendered report — counters and verdicts).

use std::fmt::Write as _;

use super::report::Report;
use super::runner::{run_with, StdRandomness};
use super::RunError;
use crate::scenario::Scenario;

/// Lines shown before the first differing one.
pub const DIVERGENCE_CONTEXT_LINES: usize = 8;

/// Where two runs of one seed first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// What differs: `"trace"` or `"report"`.
    pub part: &'static str,
    /// 1-based number of the first differing line.
    pub line: usize,
    /// The lines before it, which both runs share (at most [`DIVERGENCE_CONTEXT_LINES`]).
    pub before: Vec<String>,
    /// The first run's line there (`None`: its text ended).
    pub first: Option<String>,
    /// The second run's line there.
    pub second: Option<String>,
    /// Sources the harness does not seed that the runs used, named (e.g. "run 1 started
    /// 2 thread(s)"): the likely causes.
    pub suspects: Vec<String>,
}

impl Divergence {
    /// The divergence as text: the shared lines, then each run's line.
    pub fn render(&self) -> String {
        let mut out = format!(
            "the two runs' {} first differ at line {}:\n",
            self.part, self.line
        );
        for l in &self.before {
            let _ = writeln!(out, "    {l}");
        }
        let end = "<end of output>".to_string();
        let _ = writeln!(out, "  1 {}", self.first.as_ref().unwrap_or(&end));
        let _ = writeln!(out, "  2 {}", self.second.as_ref().unwrap_or(&end));
        for s in &self.suspects {
            let _ = writeln!(out, "not seeded by the harness: {s}");
        }
        out
    }
}

/// The first line where `a` and `b` differ, with up to `context` lines before it.
pub fn first_divergence(
    part: &'static str,
    a: &str,
    b: &str,
    context: usize,
) -> Option<Divergence> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    Some(Divergence {
        part,
        line: at + 1,
        before: a[at.saturating_sub(context)..at]
            .iter()
            .map(|l| l.to_string())
            .collect(),
        first: a.get(at).map(|l| l.to_string()),
        second: b.get(at).map(|l| l.to_string()),
        suspects: Vec::new(),
    })
}

/// What two runs of one seed showed.
#[derive(Debug, Clone)]
pub enum Determinism {
    /// Identical traces and reports: the first run's report.
    Same(Box<Report>),
    /// They differ: both reports and where.
    Diverged {
        /// The first run.
        first: Box<Report>,
        /// The second run.
        second: Box<Report>,
        /// Where they first differ.
        divergence: Divergence,
    },
}

impl Determinism {
    /// The first run's report.
    pub fn report(&self) -> &Report {
        match self {
            Determinism::Same(r) => r,
            Determinism::Diverged { first, .. } => first,
        }
    }

    /// Where the runs differ, if they do.
    pub fn divergence(&self) -> Option<&Divergence> {
        match self {
            Determinism::Same(_) => None,
            Determinism::Diverged { divergence, .. } => Some(divergence),
        }
    }
}

/// Where two reports first differ: the trace, else the rendered report; with the
/// uncontrolled sources either run used.
pub fn compare(first: &Report, second: &Report) -> Option<Divergence> {
    let n = DIVERGENCE_CONTEXT_LINES;
    let mut d = first_divergence("trace", &first.trace, &second.trace, n)
        .or_else(|| first_divergence("report", &first.render(), &second.render(), n))?;
    for (i, r) in [first, second].into_iter().enumerate() {
        if let Some(used) = r.uncontrolled.describe() {
            d.suspects.push(format!("run {} {used}", i + 1));
        }
    }
    Some(d)
}

/// Runs `scenario` twice (seed `seed` or its own) and compares the runs.
pub fn check_determinism(
    scenario: &Scenario,
    seed: Option<u64>,
    randomness: StdRandomness,
) -> Result<Determinism, RunError> {
    let first = run_with(scenario, seed, randomness)?;
    let second = run_with(scenario, seed, randomness)?;
    Ok(match compare(&first, &second) {
        None => Determinism::Same(Box::new(first)),
        Some(divergence) => Determinism::Diverged {
            first: Box::new(first),
            second: Box::new(second),
            divergence,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_line_comes_with_the_lines_before_it() {
        // Line 4 differs; two lines of context asked for, so lines 2 and 3 are shown.
        let a = "l1\nl2\nl3\nx\nl5";
        let b = "l1\nl2\nl3\ny\nl5";
        let d = first_divergence("trace", a, b, 2).unwrap();
        assert_eq!(d.line, 4);
        assert_eq!(d.before, ["l2", "l3"]);
        assert_eq!(
            (d.first.as_deref(), d.second.as_deref()),
            (Some("x"), Some("y"))
        );
        assert_eq!(
            d.render(),
            "the two runs' trace first differ at line 4:\n    l2\n    l3\n  1 x\n  2 y\n"
        );
    }

    #[test]
    fn a_run_that_stops_early_differs_where_it_ends_and_equal_texts_do_not_differ() {
        // The shorter text's missing line is shown as its end.
        let d = first_divergence("trace", "a\nb", "a", 5).unwrap();
        assert_eq!((d.line, d.second.as_deref()), (2, None));
        assert!(d.render().contains("2 <end of output>"));
        assert_eq!(first_divergence("trace", "a\nb", "a\nb", 5), None);
    }
}
