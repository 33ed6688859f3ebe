//! One timeline of a scenario: its faults' starts and ends and its workload's single writes,
//! in the order the runner applies them.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::scenario::{Scenario, Write};

/// One thing the runner does at a simulated time.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Start fault `i`.
    Begin(usize),
    /// End fault `i`.
    End(usize),
    /// A workload write.
    Write(Write),
}

/// The scenario's faults and workload as steps, in time order (ties: faults ending, then
/// starting, then writes, each in file order). Workload `i` draws from its own RNG, seeded
/// from the scenario seed and `i`.
pub fn timeline(s: &Scenario) -> Vec<(Duration, Step)> {
    let mut steps: Vec<(Duration, u8, usize, Step)> = Vec::new();
    for (i, f) in s.faults.iter().enumerate() {
        let (at, end) = f.window();
        steps.push((at.0, 1, i, Step::Begin(i)));
        if let Some(end) = end {
            steps.push((end.0, 0, i, Step::End(i)));
        }
    }
    let mut n = 0;
    for (i, w) in s.workload.iter().enumerate() {
        let mut rng =
            ChaCha8Rng::seed_from_u64(s.seed ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        for (at, write) in w.writes(&mut rng) {
            n += 1;
            steps.push((at, 2, n, Step::Write(write)));
        }
    }
    steps.sort_by_key(|(at, class, i, _)| (*at, *class, *i));
    steps.into_iter().map(|(at, _, _, s)| (at, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::registry;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            r#"{{"version": 1, "name": "t", "duration": "60s", "subject": {{"name": "informer"}}{extra}}}"#
        );
        Scenario::parse(&text, "t", registry()).unwrap()
    }

    #[test]
    fn a_fault_ending_when_another_starts_ends_first_and_writes_come_last() {
        // Proves the tie order: at 10 s fault 0 ends, fault 1 begins, then the write.
        let s = scenario(
            r#", "faults": [{"partition": {"at": "5s", "for": "5s"}}, {"compact": {"at": "10s"}}],
                 "workload": [{"update": {"at": "10s", "name": "a"}}, {"create": {"at": "1s", "name": "b"}}]"#,
        );
        let at = |s: u64| Duration::from_secs(s);
        assert_eq!(
            timeline(&s),
            vec![
                (
                    at(1),
                    Step::Write(Write::Create("b".into(), Default::default()))
                ),
                (at(5), Step::Begin(0)),
                (at(10), Step::End(0)),
                (at(10), Step::Begin(1)),
                (at(10), Step::Write(Write::Update("a".into()))),
            ]
        );
    }

    #[test]
    fn the_same_seed_expands_churn_into_the_same_writes() {
        let churn =
            r#", "workload": [{"churn": {"at": "0s", "for": "30s", "every": "1s", "objects": 4}}]"#;
        let (a, mut b) = (scenario(churn), scenario(churn));
        assert_eq!(timeline(&a), timeline(&b));
        b.seed = 1;
        assert_ne!(timeline(&a), timeline(&b), "the seed decides the churn");
    }
}
