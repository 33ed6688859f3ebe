//! What a checker concludes: its violations, each with the key, the simulated time, a
//! message and the trace lines around it; rendered for reports.

use std::time::Duration;

use crate::scenario::Checker;
use crate::trace::secs;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The key (or instance) it concerns.
    pub key: String,
    /// Simulated time.
    pub at: Duration,
    /// What broke.
    pub message: String,
    /// Trace lines around `at`.
    pub context: Vec<String>,
}

/// A checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The checker.
    pub checker: Checker,
    /// What it found (empty: pass).
    pub violations: Vec<Violation>,
}

/// Reports at most this many violations per checker (the rest are counted).
pub(super) const SHOWN_VIOLATIONS: usize = 5;

impl Verdict {
    /// `checker: pass` or the violations with their context.
    pub fn render(&self) -> String {
        if self.violations.is_empty() {
            return format!("  {:<22} pass\n", self.checker);
        }
        let mut out = format!(
            "  {:<22} VIOLATED ({})\n",
            self.checker.name(),
            self.violations.len()
        );
        for v in self.violations.iter().take(SHOWN_VIOLATIONS) {
            out += &format!(
                "    at {} key {}: {}\n",
                secs(v.at).trim_start(),
                v.key,
                v.message
            );
            for l in &v.context {
                out += &format!("      | {l}\n");
            }
        }
        if self.violations.len() > SHOWN_VIOLATIONS {
            out += &format!(
                "    ... and {} more\n",
                self.violations.len() - SHOWN_VIOLATIONS
            );
        }
        out
    }
}
