//! `no_event_loss` for caches (informers, reflectors): the store ends equal to the server;
//! what handlers were told adds up to the server state too (so every deletion of a held
//! object reached them, tombstones allowed); and every version that lived longer than the
//! staleness bound outside fault windows was observed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Evidence, Found, Violation};
use crate::trace::{Delivery, Entry, Held, Record};

pub(super) fn no_event_loss(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let server = ev.server_state();
    let end = ev.scenario.end();
    let incarnations = ev.incarnations();
    for (instance, segments) in &incarnations {
        if let Some(view) = ev.finals.get(instance) {
            compare(
                &mut found,
                &format!("s{instance} store"),
                view,
                &server,
                end,
            );
        }
        let told = handler_view(segments.last().expect("a segment"));
        compare(
            &mut found,
            &format!("s{instance} handlers"),
            &told,
            &server,
            end,
        );
    }
    unobserved_versions(ev, &mut found, &incarnations);
    found.out
}

/// What the handlers were told, replayed: key -> (rv, uid unknown).
fn handler_view(seg: &[&Entry]) -> Held {
    let mut view = Held::new();
    for e in seg {
        if let Record::Delivered { how, key, rv } = &e.record {
            match how {
                Delivery::Delete { .. } => {
                    view.remove(key);
                }
                _ => {
                    view.insert(key.clone(), (*rv, String::new()));
                }
            }
        }
    }
    view
}

fn compare(found: &mut Found<'_>, who: &str, view: &Held, server: &Held, end: Duration) {
    for (key, message) in differences(who, view, server) {
        found.add(key, end, message);
    }
}

/// How a cache `view` differs from the `server` state: (key, message) per difference
/// (shared with the external clients' `no_event_loss`).
pub(super) fn differences(who: &str, view: &Held, server: &Held) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, (rv, uid)) in server {
        let message = match view.get(key) {
            None => format!("{who} lacks {key} rv={rv}"),
            Some((v, _)) if v != rv => format!("{who} holds {key} rv={v}, server has rv={rv}"),
            Some((_, u)) if !u.is_empty() && u != uid => {
                format!("{who} holds {key} with uid {u}, server has uid {uid}")
            }
            Some(_) => continue,
        };
        out.push((key.clone(), message));
    }
    for (key, (rv, _)) in view {
        if !server.contains_key(key) {
            let message = format!("{who} still holds {key} rv={rv}: its deletion never reached it");
            out.push((key.clone(), message));
        }
    }
    out
}

/// Versions (key, rv) that lived longer than the staleness bound outside the fault windows
/// (each extended by the bound, the time to recover) must have been delivered.
fn unobserved_versions(
    ev: &Evidence<'_>,
    found: &mut Found<'_>,
    incarnations: &BTreeMap<usize, Vec<Vec<&Entry>>>,
) {
    let bound = ev.staleness_bound();
    let windows: Vec<(Duration, Duration)> = ev
        .fault_windows()
        .into_iter()
        .map(|(a, b)| (a, b + bound))
        .collect();
    for (instance, segments) in incarnations {
        let seen: BTreeSet<(&str, u64)> = segments
            .iter()
            .flatten()
            .filter_map(|e| match &e.record {
                Record::Delivered { key, rv, .. } => Some((key.as_str(), *rv)),
                _ => None,
            })
            .collect();
        for (key, rv, from, to) in lifetimes(ev) {
            if outside(from, to, &windows) > bound && !seen.contains(&(key.as_str(), rv)) {
                let msg = format!(
                    "s{instance} never observed {key} rv={rv}, which lived {} outside faults",
                    humantime::format_duration(to - from)
                );
                found.add(key.clone(), from, msg);
            }
        }
    }
}

/// Each visible version's lifetime: (key, rv, from, to) in simulated time.
fn lifetimes(ev: &Evidence<'_>) -> Vec<(String, u64, Duration, Duration)> {
    let mut open: BTreeMap<String, (u64, Duration)> = BTreeMap::new();
    let mut out = Vec::new();
    for e in ev.history {
        let key = format!("{}/{}", e.key.ns, e.key.name);
        let at = ev.since_start(e.at);
        if let Some((rv, from)) = open.remove(&key) {
            out.push((key.clone(), rv, from, at));
        }
        if e.kind.as_str() != "DELETED" && ev.selects(&e.object) {
            open.insert(key, (e.rev, at));
        }
    }
    let end = ev.scenario.end();
    out.extend(open.into_iter().map(|(k, (rv, from))| (k, rv, from, end)));
    out
}

/// How much of [from, to) lies outside every window.
fn outside(from: Duration, to: Duration, windows: &[(Duration, Duration)]) -> Duration {
    let mut covered = Duration::ZERO;
    let mut cursor = from;
    let mut sorted = windows.to_vec();
    sorted.sort();
    for (a, b) in sorted {
        let (a, b) = (a.max(cursor), b.min(to));
        if b > a {
            covered += b - a;
            cursor = b;
        }
    }
    (to - from).saturating_sub(covered)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{secs, Case};
    use crate::apiserver::EventType::{Added, Deleted};
    use crate::scenario::{Checker, SubjectKind};
    use crate::trace::{Delivery, Record};

    fn add(name: &str, rv: u64) -> Record {
        Record::Delivered {
            how: Delivery::Add { initial: false },
            key: format!("default/{name}"),
            rv,
        }
    }

    /// An informer that saw a (rv 1) created at 1 s; b (rv 2) lives from 2 s to 59 s.
    fn informer() -> Case {
        let mut c = Case::new(
            SubjectKind::Informer,
            r#", "expect": {"staleness_bound": "30s"}"#,
        );
        c.write(1, Added, "a", false);
        c.record(1, Some(0), add("a", 1));
        c
    }

    #[test]
    fn no_event_loss_passes_a_store_and_handlers_equal_to_the_server() {
        let mut c = informer();
        c.finals.insert(0, c.server_view());
        assert!(c.violations(Checker::NoEventLoss).is_empty());
    }

    #[test]
    fn no_event_loss_finds_a_deletion_that_never_reached_the_handlers() {
        let mut c = informer();
        c.write(10, Deleted, "a", false);
        c.finals.insert(0, c.server_view());
        assert_eq!(
            c.messages(Checker::NoEventLoss),
            ["s0 handlers still holds default/a rv=1: its deletion never reached it"]
        );
    }

    #[test]
    fn no_event_loss_finds_a_long_lived_version_never_observed() {
        let mut c = informer();
        c.write(2, Added, "b", false);
        c.write(59, Deleted, "b", false);
        c.finals.insert(0, c.server_view());
        let found = c.violations(Checker::NoEventLoss);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].at, secs(2));
        assert!(
            found[0]
                .message
                .starts_with("s0 never observed default/b rv=2"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn outside_counts_only_the_time_no_window_covers() {
        let w = [(secs(10), secs(20)), (secs(15), secs(30))];
        assert_eq!(super::outside(secs(0), secs(40), &w), secs(20));
        assert_eq!(super::outside(secs(12), secs(18), &w), secs(0));
    }
}
