//! Before a failure is shrunk its case runs again and the two runs are compared with the
//! divergence finder: shrinking keeps only candidates that still fail, which means
//! nothing if the case does not fail the same way twice. Such a case is reported as
//! [`Unreproduced`], with where the runs differ, instead of being shrunk.

use super::{run_case, Ran};
use crate::run::{self, Divergence, Report, StdRandomness};
use crate::scenario::{Checker, Scenario};

/// A failing case whose second run differed from its first: the run is not deterministic,
/// so the failure is not shrunk (nor written as a replay file).
#[derive(Debug, Clone)]
pub struct Unreproduced {
    /// Case index.
    pub case: u32,
    /// The case as generated.
    pub scenario: Scenario,
    /// The checkers its first run violated.
    pub checkers: Vec<Checker>,
    /// Where the two runs first differ (`None`: the second run could not run).
    pub divergence: Option<Divergence>,
    /// The second run's error, when it could not run.
    pub error: Option<String>,
}

impl Unreproduced {
    /// The case, its checkers and where its runs differ, as text.
    pub fn render(&self) -> String {
        let names: Vec<&str> = self.checkers.iter().map(|c| c.name()).collect();
        let mut out = format!(
            "case {} violated {} but did not reproduce (the run is not deterministic; not shrunk)\n",
            self.case,
            names.join(", ")
        );
        if let Some(d) = &self.divergence {
            out += &d.render();
        }
        if let Some(e) = &self.error {
            out += &format!("the second run could not run: {e}\n");
        }
        out
    }
}

/// Runs case `case` again; `Err` if the rerun differs from `first`.
pub(super) fn reproduce(
    case: u32,
    scenario: &Scenario,
    first: &Report,
    randomness: StdRandomness,
) -> Result<(), Box<Unreproduced>> {
    let (divergence, error) = match run_case(scenario, randomness) {
        Ran::Report(second) => match run::compare(first, &second) {
            None => return Ok(()),
            Some(d) => (Some(d), None),
        },
        Ran::Broken(e) => (None, Some(e)),
    };
    Err(Box::new(Unreproduced {
        case,
        scenario: scenario.clone(),
        checkers: first.violated(),
        divergence,
        error,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::registry;

    /// `hash-order` over 12 ConfigMaps: its trace is the order of a std `HashSet`.
    fn hash_order() -> Scenario {
        let objects: Vec<String> = (0..12).map(|i| format!(r#"{{"name": "c{i}"}}"#)).collect();
        let text = format!(
            r#"{{"version": 1, "name": "h", "duration": "6s", "settle": "1s",
                "subject": {{"name": "hash-order"}}, "objects": [{}]}}"#,
            objects.join(", ")
        );
        Scenario::parse(&text, "h", registry()).expect("valid")
    }

    fn report(s: &Scenario, randomness: StdRandomness) -> Report {
        match run_case(s, randomness) {
            Ran::Report(r) => *r,
            Ran::Broken(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_case_whose_rerun_differs_is_unreproduced_with_the_divergence() {
        // OS-seeded HashSet order: the rerun's reconciles come in another of 12! orders.
        let s = hash_order();
        let first = report(&s, StdRandomness::Os);
        let u = reproduce(3, &s, &first, StdRandomness::Os).expect_err("the runs differ");
        assert_eq!(u.case, 3);
        let d = u.divergence.as_ref().expect("a divergence");
        assert_eq!(d.part, "trace");
        assert!(d.first.as_deref().unwrap().contains("reconcile"), "{d:?}");
        assert!(u.render().contains("did not reproduce"), "{}", u.render());
    }

    #[test]
    fn a_seeded_case_reproduces() {
        // The same subject with std's randomness from the seed runs the same way twice.
        let s = hash_order();
        let first = report(&s, StdRandomness::Seeded);
        assert!(reproduce(3, &s, &first, StdRandomness::Seeded).is_ok());
    }
}
