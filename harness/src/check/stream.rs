//! Stream checkers: `watch_exact` (a RetryWatcher delivers exactly the true history after its
//! start RV) and `no_historical_replay` (nothing older than what was already delivered).

use std::collections::BTreeMap;

use super::{Evidence, Found, Violation};
use crate::trace::{Delivery, Entry, ErrorKind, Record};

/// One delivered watch event: (type, key, rv).
type Seen = (&'static str, String, u64);

/// The true events a watcher started after `start` sees, in order (selector transitions
/// turn into ADDED / DELETED as the apiserver sends them).
fn expected_after(ev: &Evidence<'_>, start: u64) -> Vec<Seen> {
    ev.history
        .iter()
        .filter(|e| e.rev > start && e.key.ns == "default")
        .filter_map(|e| {
            let now_in = ev.selects(&e.object);
            let was_in = e.prev.as_ref().is_some_and(|p| ev.selects(p));
            let kind = match (was_in, now_in, e.kind.as_str()) {
                (_, true, "DELETED") | (true, false, _) => "DELETED",
                (false, true, _) => "ADDED",
                (true, true, k) => k,
                (false, false, _) => return None,
            };
            Some((kind, format!("default/{}", e.key.name), e.rev))
        })
        .collect()
}

/// Every instance's stream, per incarnation: delivered events == true history after its
/// start RV, in order, no gaps, no duplicates — a prefix when the stream stopped on a
/// terminal error or the process crashed, all of it otherwise. The only terminal errors a
/// correct watcher may stop on here are `Expired`, each answering a 410 the server really
/// sent (its RV left the window), and `HistoricalReplay`: stopping on anything else — a
/// 5xx taken for `Expired`, an in-stream error given up on — is a violation.
pub(super) fn watch_exact(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    unjustified_stops(ev, &mut found);
    for (instance, segments) in ev.incarnations() {
        let last = segments.len() - 1;
        for (n, seg) in segments.iter().enumerate() {
            check_segment(ev, &mut found, instance, seg, n == last);
        }
    }
    found.out
}

/// Terminal errors after the start list that no server answer justifies: an `Expired` with
/// no 410 sent before it that another `Expired` has not already claimed (matched in time
/// order, earliest 410 first), and any error other than `Expired` or `HistoricalReplay`.
fn unjustified_stops(ev: &Evidence<'_>, found: &mut Found<'_>) {
    let mut stops: Vec<(usize, &Entry)> = Vec::new();
    for (instance, segments) in ev.incarnations() {
        for seg in segments {
            let mut listed = false;
            for e in seg {
                match &e.record {
                    Record::Listed { .. } => listed = true,
                    Record::Error { kind, .. }
                        if listed && *kind != ErrorKind::HistoricalReplay =>
                    {
                        stops.push((instance, e));
                    }
                    _ => {}
                }
            }
        }
    }
    stops.sort_by_key(|(_, e)| (e.at, e.seq));
    let mut sent = ev.expired_sent.iter().peekable();
    for (instance, e) in stops {
        let Record::Error { kind, message } = &e.record else {
            continue;
        };
        if *kind == ErrorKind::Expired && sent.next_if(|t| **t <= e.at).is_some() {
            continue;
        }
        let why = match kind {
            ErrorKind::Expired => {
                "but the server sent it no 410: the resourceVersion was still in the window"
            }
            _ => "a RetryWatcher stops only on 410 or a broken stream",
        };
        let msg = format!("s{instance} stopped on {message:?}, {why}");
        found.add(format!("s{instance}"), e.at, msg);
    }
}

fn check_segment(
    ev: &Evidence<'_>,
    found: &mut Found<'_>,
    instance: usize,
    seg: &[&Entry],
    last: bool,
) {
    let Some(start) = seg.iter().find_map(|e| match e.record {
        Record::Listed { rv, .. } => Some(rv),
        _ => None,
    }) else {
        return;
    };
    let mut delivered: Vec<(Seen, &Entry)> = Vec::new();
    let mut stopped = !last;
    for e in seg {
        match &e.record {
            Record::Delivered {
                how: Delivery::Event(kind),
                key,
                rv,
            } => delivered.push(((kind, key.clone(), *rv), e)),
            Record::Error { kind, .. } if *kind != ErrorKind::Other => stopped = true,
            _ => {}
        }
    }
    let expected = expected_after(ev, start);
    for (i, (seen, e)) in delivered.iter().enumerate() {
        match expected.get(i) {
            Some(want) if want == seen => {}
            Some(want) => {
                let msg = format!(
                    "s{instance} delivered {} {} rv={}, expected {} {} rv={}",
                    seen.0, seen.1, seen.2, want.0, want.1, want.2
                );
                return found.add(seen.1.clone(), e.at, msg);
            }
            None => {
                let msg = format!(
                    "s{instance} delivered {} {} rv={} beyond the true history",
                    seen.0, seen.1, seen.2
                );
                return found.add(seen.1.clone(), e.at, msg);
            }
        }
    }
    if !stopped && delivered.len() < expected.len() {
        let (kind, key, rv) = &expected[delivered.len()];
        let at = ev
            .history
            .iter()
            .find(|h| h.rev == *rv)
            .map_or(ev.scenario.end(), |h| ev.since_start(h.at));
        let msg = format!(
            "s{instance} never delivered {kind} {key} rv={rv} ({} of {} events missing)",
            expected.len() - delivered.len(),
            expected.len()
        );
        found.add(key.clone(), at, msg);
    }
}

/// Per stream, no delivered event is older than one already delivered; a RetryWatcher's
/// `HistoricalReplay` error is the same finding. For caches: per key the view never moves
/// back in RV (across restarts too: what a process acted on stays acted on), and no
/// `on_add` for a key already held.
pub(super) fn no_historical_replay(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    for (instance, segments) in ev.incarnations() {
        let mut newest: BTreeMap<String, u64> = BTreeMap::new();
        for seg in segments {
            let mut held: BTreeMap<&str, u64> = BTreeMap::new();
            let mut last_rv = 0;
            for e in seg {
                match &e.record {
                    Record::Error {
                        kind: ErrorKind::HistoricalReplay,
                        message,
                    } => {
                        found.add(
                            format!("s{instance}"),
                            e.at,
                            format!("s{instance}: {message}"),
                        );
                    }
                    Record::Delivered {
                        how: Delivery::Event(kind),
                        key,
                        rv,
                    } => {
                        if *rv <= last_rv {
                            found.add(
                                key.clone(),
                                e.at,
                                format!(
                                    "s{instance} delivered {kind} {key} rv={rv} after rv={last_rv}"
                                ),
                            );
                        }
                        last_rv = last_rv.max(*rv);
                    }
                    Record::Delivered { how, key, rv } => {
                        cache_step(
                            &mut found,
                            instance,
                            e,
                            how,
                            key,
                            *rv,
                            &mut held,
                            &mut newest,
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    found.out
}

#[allow(clippy::too_many_arguments)]
fn cache_step<'a>(
    found: &mut Found<'_>,
    instance: usize,
    e: &Entry,
    how: &Delivery,
    key: &'a str,
    rv: u64,
    held: &mut BTreeMap<&'a str, u64>,
    newest: &mut BTreeMap<String, u64>,
) {
    if let Some(&seen) = newest.get(key) {
        if rv < seen {
            found.add(
                key,
                e.at,
                format!("s{instance} moved {key} back from rv={seen} to rv={rv}"),
            );
        }
    }
    newest.insert(
        key.to_string(),
        rv.max(newest.get(key).copied().unwrap_or(0)),
    );
    match how {
        Delivery::Add { .. } => {
            if let Some(old) = held.insert(key, rv) {
                found.add(
                    key,
                    e.at,
                    format!("s{instance} on_add {key} rv={rv} while holding rv={old}"),
                );
            }
        }
        Delivery::Update { .. } => {
            held.insert(key, rv);
        }
        Delivery::Delete { .. } => {
            held.remove(key);
        }
        Delivery::Event(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Case;
    use crate::apiserver::EventType::{Added, Modified};
    use crate::scenario::{Checker, SubjectKind};
    use crate::trace::{Delivery, ErrorKind, Record};

    fn listed(rv: u64) -> Record {
        Record::Listed { rv, count: 0 }
    }

    fn event(kind: &'static str, name: &str, rv: u64) -> Record {
        Record::Delivered {
            how: Delivery::Event(kind),
            key: format!("default/{name}"),
            rv,
        }
    }

    /// A watcher listed at rv 0, then the server wrote a (rv 1) and changed it (rv 2).
    fn two_writes() -> Case {
        let mut c = Case::new(SubjectKind::Watcher, "");
        c.record(0, Some(0), Record::Start { incarnation: 0 });
        c.record(0, Some(0), listed(0));
        c.write(1, Added, "a", false);
        c.write(2, Modified, "a", false);
        c
    }

    #[test]
    fn watch_exact_passes_a_stream_equal_to_the_history() {
        let mut c = two_writes();
        c.record(1, Some(0), event("ADDED", "a", 1));
        c.record(2, Some(0), event("MODIFIED", "a", 2));
        assert!(c.violations(Checker::WatchExact).is_empty());
        assert!(c.violations(Checker::NoHistoricalReplay).is_empty());
    }

    #[test]
    fn watch_exact_finds_a_gap_in_a_stream_that_did_not_stop() {
        let mut c = two_writes();
        c.record(1, Some(0), event("ADDED", "a", 1));
        assert_eq!(
            c.messages(Checker::WatchExact),
            ["s0 never delivered MODIFIED default/a rv=2 (1 of 2 events missing)"]
        );
    }

    fn stopped(kind: ErrorKind, message: &str) -> Record {
        Record::Error {
            message: message.into(),
            kind,
        }
    }

    #[test]
    fn watch_exact_accepts_a_prefix_when_the_watcher_stopped_on_a_410_the_server_sent() {
        let mut c = two_writes();
        c.record(1, Some(0), event("ADDED", "a", 1));
        c.expired_sent = vec![super::super::testkit::secs(2)];
        c.record(2, Some(0), stopped(ErrorKind::Expired, "410"));
        assert!(c.violations(Checker::WatchExact).is_empty());
    }

    #[test]
    fn watch_exact_finds_an_expired_stop_without_a_410_from_the_server() {
        // The watcher took a 503 for a 410: the server sent no 410 before it stopped (the
        // one it sent later, or one another expiry already answered, does not count).
        let mut c = two_writes();
        c.record(1, Some(0), event("ADDED", "a", 1));
        c.expired_sent = vec![super::super::testkit::secs(3)];
        c.record(2, Some(0), stopped(ErrorKind::Expired, "injected 503"));
        assert_eq!(
            c.messages(Checker::WatchExact),
            ["s0 stopped on \"injected 503\", but the server sent it no 410: the resourceVersion was still in the window"]
        );
    }

    #[test]
    fn watch_exact_finds_a_stop_on_any_other_terminal_error_after_the_start() {
        let mut c = Case::new(SubjectKind::Watcher, "");
        c.record(0, Some(0), Record::Start { incarnation: 0 });
        c.record(
            0,
            Some(0),
            stopped(ErrorKind::Other, "list failed, retried"),
        );
        c.record(1, Some(0), listed(0));
        c.record(
            2,
            Some(0),
            stopped(ErrorKind::Other, "watch failed with 500"),
        );
        assert_eq!(
            c.messages(Checker::WatchExact),
            ["s0 stopped on \"watch failed with 500\", a RetryWatcher stops only on 410 or a broken stream"]
        );
    }

    #[test]
    fn watch_exact_finds_an_event_out_of_order() {
        let mut c = two_writes();
        c.record(2, Some(0), event("MODIFIED", "a", 2));
        assert_eq!(
            c.messages(Checker::WatchExact),
            ["s0 delivered MODIFIED default/a rv=2, expected ADDED default/a rv=1"]
        );
    }

    #[test]
    fn no_historical_replay_finds_a_stream_going_back() {
        let mut c = two_writes();
        c.record(2, Some(0), event("MODIFIED", "a", 2));
        c.record(3, Some(0), event("ADDED", "a", 1));
        assert_eq!(
            c.messages(Checker::NoHistoricalReplay),
            ["s0 delivered ADDED default/a rv=1 after rv=2"]
        );
    }

    #[test]
    fn no_historical_replay_finds_a_second_add_of_a_held_key() {
        let mut c = Case::new(SubjectKind::Informer, "");
        let add = |rv| Record::Delivered {
            how: Delivery::Add { initial: false },
            key: "default/a".into(),
            rv,
        };
        c.record(1, Some(0), add(1));
        c.record(2, Some(0), add(2));
        assert_eq!(
            c.messages(Checker::NoHistoricalReplay),
            ["s0 on_add default/a rv=2 while holding rv=1"]
        );
    }
}
