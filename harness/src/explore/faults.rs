//! The fault generators: one line per fault kind in [`fault_kinds`], each kind's values
//! drawn by a function below (at whole seconds, within the profile's duration), and the
//! swarm selection over them.

use proptest::prelude::*;

use super::profile;
use crate::scenario::{Direction, Dur, ErrorClass, Fault, ObjectRef, Requests, SubjectKind};

/// A case's faults, swarm style: the case first enables a random subset of the fault kinds
/// that apply to `kind` (each with probability 1/2), then draws up to
/// [`profile::MAX_FAULTS`] faults from those alone. Cases that concentrate on a few kinds
/// combine them far more often than a uniform draw over every kind would (Groce et al.,
/// "Swarm Testing", ISSTA 2012): a paused cache *and* an expired watch in one case, say.
pub(super) fn faults(
    kind: SubjectKind,
    max_s: u64,
    targets: &[ObjectRef],
) -> BoxedStrategy<Vec<Fault>> {
    let kinds = fault_kinds(kind, max_s, targets);
    prop::collection::vec(any::<bool>(), kinds.len())
        .prop_flat_map(move |enabled| {
            let chosen: Vec<_> = kinds
                .iter()
                .zip(&enabled)
                .filter(|(_, on)| **on)
                .map(|((w, k), _)| (*w, k.clone()))
                .collect();
            if chosen.is_empty() {
                return Just(Vec::new()).boxed();
            }
            let one = prop::strategy::Union::new_weighted(chosen);
            prop::collection::vec(one, 0..=profile::MAX_FAULTS).boxed()
        })
        .boxed()
}

/// Every fault kind that applies to `kind` with its weight. A network or apiserver kind
/// weighs 1; a controller's own faults (slow or failing reconciles, only for controllers)
/// 3 each (flaky reconciles 2), as most controller bugs need them; so do the faults aimed at a user's
/// controller (intermediate, stale and unobserved state, the last on one of `targets`, the
/// objects its workload writes). **A new fault kind** is one line here.
pub(super) fn fault_kinds(
    kind: SubjectKind,
    max_s: u64,
    targets: &[ObjectRef],
) -> Vec<(u32, BoxedStrategy<Fault>)> {
    let g = Gen { max_s };
    let mut kinds = vec![
        (1, g.partition()),
        (1, g.partition_oneway()),
        (1, g.hold()),
        (1, g.latency()),
        (1, g.loss()),
        (1, g.connection_reset()),
        (1, g.crash_replica()),
        (1, g.cache_lag()),
        (1, g.cache_pause()),
        (1, g.compact()),
        (1, g.expire_watches()),
        (1, g.drop_watches()),
        (1, g.http_errors()),
        (1, g.slow_responses()),
        (1, g.crash_subject()),
        (1, g.watch_errors()),
    ];
    // A user's controller has no handler the harness can slow down.
    if kind != SubjectKind::Operator {
        kinds.push((1, g.slow_handler()));
    }
    if kind == SubjectKind::Controller {
        kinds.push((3, g.slow_reconcile()));
        kinds.push((3, g.reconcile_errors()));
        kinds.push((2, g.flaky_reconciles()));
    }
    if kind == SubjectKind::Operator {
        kinds.push((3, g.crash_after_write()));
        kinds.push((3, g.stale_restart()));
        if !targets.is_empty() {
            kinds.push((3, g.unobserved_state(targets.to_vec())));
        }
    }
    kinds
}

/// Draws fault values at whole seconds below `max_s`.
#[derive(Clone, Copy)]
struct Gen {
    max_s: u64,
}

fn replica() -> impl Strategy<Value = Option<usize>> {
    prop::option::of(0usize..3)
}

fn requests() -> impl Strategy<Value = Requests> {
    prop_oneof![
        Just(Requests::All),
        Just(Requests::Watch),
        Just(Requests::Read),
        Just(Requests::Write)
    ]
}

/// The key a controller fault targets, or every key.
fn key() -> impl Strategy<Value = Option<String>> {
    prop::option::of((0usize..3).prop_map(|i| format!("default/o-{i}")))
}

impl Gen {
    fn at(self) -> impl Strategy<Value = Dur> {
        (0..self.max_s).prop_map(Dur::secs)
    }

    fn len(self) -> impl Strategy<Value = Dur> {
        (1..=self.max_s).prop_map(Dur::secs)
    }

    fn partition(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), replica())
            .prop_map(|(at, for_, replica)| Fault::Partition { at, for_, replica })
            .boxed()
    }

    fn partition_oneway(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), any::<bool>(), replica())
            .prop_map(|(at, for_, to, replica)| {
                let direction = match to {
                    true => Direction::ToApiserver,
                    false => Direction::FromApiserver,
                };
                Fault::PartitionOneway {
                    at,
                    for_,
                    direction,
                    replica,
                }
            })
            .boxed()
    }

    fn hold(self) -> BoxedStrategy<Fault> {
        (self.at(), 1u64..=20, replica())
            .prop_map(|(at, s, replica)| Fault::Hold {
                at,
                for_: Dur::secs(s),
                replica,
            })
            .boxed()
    }

    fn latency(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), 50u64..=2000, replica())
            .prop_map(|(at, for_, ms, replica)| Fault::Latency {
                at,
                for_,
                latency: Dur::millis(ms),
                replica,
            })
            .boxed()
    }

    fn loss(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), 1u32..=200, replica())
            .prop_map(|(at, for_, permille, replica)| Fault::Loss {
                at,
                for_,
                rate: f64::from(permille) / 1000.0,
                replica,
            })
            .boxed()
    }

    fn connection_reset(self) -> BoxedStrategy<Fault> {
        (self.at(), replica())
            .prop_map(|(at, replica)| Fault::ConnectionReset { at, replica })
            .boxed()
    }

    fn crash_replica(self) -> BoxedStrategy<Fault> {
        (self.at(), 0usize..3, 1u64..=30)
            .prop_map(|(at, replica, s)| Fault::CrashReplica {
                at,
                replica,
                restart_after: Dur::secs(s),
            })
            .boxed()
    }

    fn cache_lag(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), 1u64..=10, replica())
            .prop_map(|(at, for_, lag, replica)| Fault::CacheLag {
                at,
                for_,
                lag: Dur::secs(lag),
                replica,
            })
            .boxed()
    }

    fn cache_pause(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), replica())
            .prop_map(|(at, for_, replica)| Fault::CachePause { at, for_, replica })
            .boxed()
    }

    fn compact(self) -> BoxedStrategy<Fault> {
        self.at().prop_map(|at| Fault::Compact { at }).boxed()
    }

    fn expire_watches(self) -> BoxedStrategy<Fault> {
        (self.at(), replica())
            .prop_map(|(at, replica)| Fault::ExpireWatches { at, replica })
            .boxed()
    }

    fn drop_watches(self) -> BoxedStrategy<Fault> {
        (self.at(), replica())
            .prop_map(|(at, replica)| Fault::DropWatches { at, replica })
            .boxed()
    }

    fn http_errors(self) -> BoxedStrategy<Fault> {
        let code = prop_oneof![Just(429u16), Just(500), Just(503), Just(504)];
        let retry_after = prop::option::of((1u64..=5).prop_map(Dur::secs));
        (
            self.at(),
            self.len(),
            code,
            1u32..=10,
            retry_after,
            requests(),
        )
            .prop_map(
                |(at, for_, code, tenths, retry_after, requests)| Fault::HttpErrors {
                    at,
                    for_,
                    code,
                    rate: f64::from(tenths) / 10.0,
                    retry_after,
                    requests,
                },
            )
            .boxed()
    }

    /// In-stream `ERROR`s with a server-side code (the RV is fine: the client must resume).
    fn watch_errors(self) -> BoxedStrategy<Fault> {
        let code = prop_oneof![Just(500u16), Just(503), Just(504)];
        let retry_after = prop::option::of((1u64..=5).prop_map(Dur::secs));
        (self.at(), code, retry_after, replica())
            .prop_map(|(at, code, retry_after, replica)| Fault::WatchErrors {
                at,
                code,
                retry_after,
                replica,
            })
            .boxed()
    }

    fn slow_handler(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), 50u64..=2000)
            .prop_map(|(at, for_, ms)| Fault::SlowHandler {
                at,
                for_,
                delay: Dur::millis(ms),
            })
            .boxed()
    }

    fn slow_responses(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), 1u64..=10, requests())
            .prop_map(|(at, for_, s, requests)| Fault::SlowResponses {
                at,
                for_,
                delay: Dur::secs(s),
                requests,
            })
            .boxed()
    }

    fn crash_subject(self) -> BoxedStrategy<Fault> {
        (self.at(), 1u64..=10)
            .prop_map(|(at, s)| Fault::CrashSubject {
                at,
                restart_after: Dur::secs(s),
            })
            .boxed()
    }

    fn crash_after_write(self) -> BoxedStrategy<Fault> {
        (self.at(), 1u32..=12, 1u64..=10)
            .prop_map(|(at, writes, s)| Fault::CrashAfterWrite {
                at,
                writes,
                restart_after: Dur::secs(s),
            })
            .boxed()
    }

    fn stale_restart(self) -> BoxedStrategy<Fault> {
        (self.at(), 2..=self.max_s.max(2), replica())
            .prop_map(|(at, len, replica)| Fault::StaleRestart {
                at,
                for_: Dur::secs(len),
                restart_after: Dur::secs(1),
                replica,
            })
            .boxed()
    }

    fn unobserved_state(self, targets: Vec<ObjectRef>) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), prop::sample::select(targets))
            .prop_map(|(at, for_, target)| Fault::UnobservedState { at, for_, target })
            .boxed()
    }

    fn slow_reconcile(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), 1u64..=20, key())
            .prop_map(|(at, for_, s, key)| Fault::SlowReconcile {
                at,
                for_,
                delay: Dur::secs(s),
                key,
            })
            .boxed()
    }

    fn flaky_reconciles(self) -> BoxedStrategy<Fault> {
        (self.at(), self.len(), 1u32..=6, key())
            .prop_map(|(at, for_, tenths, key)| Fault::FlakyReconciles {
                at,
                for_,
                rate: f64::from(tenths) / 10.0,
                key,
            })
            .boxed()
    }

    fn reconcile_errors(self) -> BoxedStrategy<Fault> {
        (self.at(), 1u32..=8, any::<bool>(), key())
            .prop_map(|(at, times, terminal, key)| {
                let class = match terminal {
                    true => ErrorClass::Terminal,
                    false => ErrorClass::Retryable,
                };
                Fault::ReconcileErrors {
                    at,
                    times,
                    class,
                    key,
                }
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;
    use crate::scenario::json_schema;

    /// Every fault kind the scenario format has, read from its JSON Schema (derived from the
    /// `Fault` enum, so a new variant appears here by itself).
    fn schema_fault_tags() -> BTreeSet<String> {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
        schema["$defs"]["Fault"]["oneOf"]
            .as_array()
            .expect("Fault is a oneOf")
            .iter()
            .flat_map(|v| v["required"].as_array().cloned().unwrap_or_default())
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    fn drawn(kind: SubjectKind) -> BTreeSet<String> {
        let mut runner = TestRunner::deterministic();
        let mut tags = BTreeSet::new();
        let target = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: None,
            name: "o-0".into(),
        };
        for (_, k) in fault_kinds(kind, 60, &[target]) {
            let f = k.new_tree(&mut runner).unwrap().current();
            if kind != SubjectKind::Controller {
                assert!(!f.for_controllers_only(), "{f:?} generated for {kind:?}");
            }
            assert!(
                tags.insert(f.tag().to_string()),
                "two generators of {}",
                f.tag()
            );
        }
        tags
    }

    #[test]
    fn every_fault_kind_of_the_format_has_a_generator() {
        let mut all = drawn(SubjectKind::Controller);
        all.extend(drawn(SubjectKind::Operator));
        assert_eq!(all, schema_fault_tags());
    }

    #[test]
    fn controller_faults_are_generated_for_controllers_only() {
        let informer = drawn(SubjectKind::Informer);
        for only in ["slow_reconcile", "reconcile_errors", "flaky_reconciles"] {
            assert!(!informer.contains(only), "{only}");
        }
        // The three controller faults and the three aimed at user controllers.
        assert_eq!(informer.len() + 6, schema_fault_tags().len());
    }

    #[test]
    fn the_faults_aimed_at_user_controllers_are_drawn_for_them_only() {
        let aimed = ["crash_after_write", "stale_restart", "unobserved_state"];
        let operator = drawn(SubjectKind::Operator);
        let controller = drawn(SubjectKind::Controller);
        for tag in aimed {
            assert!(operator.contains(tag) && !controller.contains(tag), "{tag}");
        }
        assert!(!operator.contains("reconcile_errors"));
    }
}
