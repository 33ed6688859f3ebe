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
    for (key, (rv, uid)) in server {
        match view.get(key) {
            None => found.add(key, end, format!("{who} lacks {key} rv={rv}")),
            Some((v, _)) if v != rv => found.add(
                key,
                end,
                format!("{who} holds {key} rv={v}, server has rv={rv}"),
            ),
            Some((_, u)) if !u.is_empty() && u != uid => found.add(
                key,
                end,
                format!("{who} holds {key} with uid {u}, server has uid {uid}"),
            ),
            Some(_) => {}
        }
    }
    for (key, (rv, _)) in view {
        if !server.contains_key(key) {
            found.add(
                key,
                end,
                format!("{who} still holds {key} rv={rv}: its deletion never reached it"),
            );
        }
    }
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
