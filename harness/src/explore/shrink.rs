//! Shrinking: a failing case to a minimal scenario that still violates the same checker,
//! in two passes, every candidate a full simulated run — proptest's own value-tree
//! shrinking of the generated case (at most half the budget), then a greedy pass over the
//! scenario itself ([`smaller`]) until a round changes nothing.

use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;

use super::generate::{case_tree, fit};
use super::profile;
use super::{violates, Failure, Options, Progress, Unreproduced};
use crate::run::StdRandomness;
use crate::scenario::{Checker, Dur, Scenario};
use crate::subject::Descriptor;

/// One failure being shrunk: the smallest failing scenario so far and the runs spent.
struct Shrinking<'a> {
    checker: Checker,
    best: Scenario,
    runs: u32,
    budget: u32,
    randomness: StdRandomness,
    progress: &'a (dyn Fn(Progress) + Sync),
}

impl Shrinking<'_> {
    /// Runs `candidate`; keeps it as the best if it still violates the checker.
    fn try_candidate(&mut self, candidate: Scenario) -> bool {
        self.runs += 1;
        let still = violates(&candidate, self.checker, self.randomness).is_some();
        if still {
            self.best = candidate;
        }
        still
    }

    fn tick(&self) {
        (self.progress)(Progress::Shrinking {
            checker: self.checker,
            runs: self.runs,
            faults: self.best.faults.len(),
        })
    }

    /// Pass 1: proptest's value tree of the case, within half the budget.
    fn value_tree(&mut self, mut tree: Box<dyn ValueTree<Value = Scenario>>) {
        if !tree.simplify() {
            return;
        }
        while self.runs < self.budget / 2 {
            let still = self.try_candidate(tree.current());
            self.tick();
            let moved = match still {
                true => tree.simplify(),
                false => tree.complicate(),
            };
            if !moved {
                break;
            }
        }
    }

    /// Pass 2: the first smaller candidate that still fails, again, until none does.
    fn greedy(&mut self) {
        loop {
            let mut changed = false;
            for candidate in smaller(&self.best) {
                if self.runs >= self.budget {
                    break;
                }
                changed = self.try_candidate(candidate);
                self.tick();
                if changed {
                    break;
                }
            }
            if !changed || self.runs >= self.budget {
                break;
            }
        }
    }
}

/// Shrinks case `case` (which violated `checker`) to a minimal scenario that still does;
/// `Err` if neither the shrunk scenario nor the case itself violates it any more (a run
/// that is not deterministic).
pub(super) fn shrink(
    subject: &'static Descriptor,
    opts: &Options,
    case: u32,
    original: &Scenario,
    checker: Checker,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Failure, Box<Unreproduced>> {
    let started = Instant::now();
    let mut s = Shrinking {
        checker,
        best: original.clone(),
        runs: 0,
        budget: opts.shrink_runs,
        randomness: opts.std_randomness,
        progress,
    };
    s.value_tree(case_tree(subject, opts.seed, case));
    s.greedy();
    let mut best = s.best;
    let mut report = violates(&best, checker, opts.std_randomness);
    if report.is_none() {
        // Only for a run that is not deterministic (the case was reproduced before
        // shrinking): fall back to the original, which failed.
        best = original.clone();
        report = violates(&best, checker, opts.std_randomness);
    }
    best.name = format!("explore-{}-{}", subject.name, checker);
    best.description = describe(subject, opts, case, original, checker);
    let Some(report) = report else {
        return Err(Box::new(Unreproduced {
            case,
            scenario: original.clone(),
            checkers: vec![checker],
            divergence: None,
            error: Some(format!("no longer violates {checker} after shrinking")),
        }));
    };
    Ok(Failure {
        checker,
        case,
        original: original.clone(),
        scenario: best,
        report,
        shrink_runs: s.runs,
        shrink_wall: started.elapsed(),
    })
}

/// The replay file's description: where it came from and what it shows.
fn describe(
    subject: &Descriptor,
    opts: &Options,
    case: u32,
    original: &Scenario,
    checker: Checker,
) -> String {
    format!(
        "Found by `kube-chaos explore --subject {} --seed {}` (case {case}), shrunk from {} \
         fault(s), {} object(s) and {} write(s) over {} to this; violates {checker}.",
        subject.name,
        opts.seed,
        original.faults.len(),
        original.objects.len(),
        original.workload.len(),
        original.duration,
    )
}

/// Candidates one step smaller than `s`, most reducing first: drop a fault, drop a write,
/// drop an object or manifest, fewer replicas, a shorter duration, a fault half as long, keep-alive
/// back on.
pub(super) fn smaller(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    for i in (0..s.faults.len()).rev() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push(c);
    }
    for i in (0..s.workload.len()).rev() {
        let mut c = s.clone();
        c.workload.remove(i);
        out.push(c);
    }
    for i in (0..s.objects.len()).rev() {
        let mut c = s.clone();
        c.objects.remove(i);
        out.push(c);
    }
    for i in (0..s.manifests.len()).rev() {
        let mut c = s.clone();
        c.manifests.remove(i);
        out.push(c);
    }
    if s.cluster.replicas > 1 {
        let mut c = s.clone();
        c.cluster.replicas -= 1;
        fit(&mut c);
        out.push(c);
    }
    let d = s.duration.0.as_secs();
    let min = profile::MIN_DURATION.as_secs();
    let mut shorter: Vec<u64> = vec![min, d / 4, d / 2, d * 3 / 4, d.saturating_sub(5)];
    shorter.retain(|&x| x >= min && x < d);
    shorter.sort_unstable();
    shorter.dedup();
    for secs in shorter {
        let mut c = s.clone();
        c.duration = Dur::secs(secs);
        fit(&mut c);
        out.push(c);
    }
    for i in 0..s.faults.len() {
        let mut c = s.clone();
        if let Some(len) = c.faults[i]
            .length_mut()
            .filter(|l| l.0 > Duration::from_secs(1))
        {
            *len = Dur::secs((len.0.as_secs() / 2).max(1));
            out.push(c);
        }
    }
    if !s.subject.config.keep_alive {
        let mut c = s.clone();
        c.subject.config.keep_alive = true;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::registry;

    fn scenario() -> Scenario {
        let text = r#"{"version": 1, "name": "t", "duration": "40s", "subject": {"name": "informer", "config": {"keep_alive": false}},
            "cluster": {"replicas": 2},
            "objects": [{"name": "a"}],
            "workload": [{"update": {"at": "30s", "name": "a"}}],
            "faults": [{"partition": {"at": "10s", "for": "20s", "replica": 1}}, {"compact": {"at": "35s"}}]}"#;
        Scenario::parse(text, "t", registry()).unwrap()
    }

    #[test]
    fn candidates_drop_faults_writes_and_objects_first_then_shorten() {
        let s = scenario();
        let c = smaller(&s);
        let faults: Vec<usize> = c.iter().map(|c| c.faults.len()).collect();
        // Two fault drops (last first), one write drop, one object drop, one replica fewer,
        // durations 5, 10, 20, 30, 35 s, the partition halved, keep-alive back on.
        assert_eq!(c.len(), 2 + 1 + 1 + 1 + 5 + 1 + 1);
        assert_eq!(faults[..2], [1, 1]);
        assert_eq!(c[0].faults[0].tag(), "partition");
        assert_eq!(c[1].faults[0].tag(), "compact");
        assert!(c[2].workload.is_empty() && c[3].objects.is_empty());
        assert_eq!(c[4].cluster.replicas, 1);
        assert_eq!(
            c[4].faults[0].replica(),
            Some(0),
            "fit keeps the replica in range"
        );
        let durations: Vec<u64> = c[5..10].iter().map(|c| c.duration.0.as_secs()).collect();
        assert_eq!(durations, [5, 10, 20, 30, 35]);
        assert_eq!(c[10].faults[0].window().1, Some(Dur::secs(20)));
        assert!(c[11].subject.config.keep_alive);
    }

    #[test]
    fn every_candidate_stays_a_valid_scenario() {
        for c in smaller(&scenario()) {
            c.validate(registry())
                .unwrap_or_else(|e| panic!("{e}: {}", c.to_json()));
        }
    }
}
