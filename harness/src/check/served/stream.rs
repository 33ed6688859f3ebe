//! `no_historical_replay` and `relist_after_expired` from what each watch stream sent.

use super::{Found, ServedEvidence};
use crate::serve::Access;

/// A watch that names a resourceVersion to resume from (not `""`, `"0"`, nor a streaming
/// list with `sendInitialEvents`): its revision.
fn resumes_from(a: &Access) -> Option<u64> {
    if !a.is_watch() || a.param("sendInitialEvents").as_deref() == Some("true") {
        return None;
    }
    a.rv_param().parse().ok().filter(|rv| *rv > 0)
}

/// A watch resumed from a resourceVersion older than one that client was already sent for
/// that collection (a list's, or an event's or bookmark's): it will see old events again.
pub(super) fn no_historical_replay(ev: &ServedEvidence<'_>, found: &mut Found<'_>) {
    for ((client, key), reqs) in ev.streams() {
        // Everything sent on this collection to this client: (when, rv).
        let mut sent: Vec<_> = reqs
            .iter()
            .filter(|a| a.status == 200)
            .flat_map(|a| {
                let list = a.list_rv.map(|rv| (a.at, rv));
                list.into_iter().chain(a.sent.iter().map(|e| (e.at, e.rv)))
            })
            .collect();
        sent.sort();
        for a in &reqs {
            let Some(from) = resumes_from(a) else {
                continue;
            };
            let newest = sent
                .iter()
                .take_while(|(at, _)| *at < a.at)
                .map(|(_, rv)| *rv)
                .max();
            if let Some(newest) = newest.filter(|n| *n > from) {
                found.add(
                    &client,
                    &key,
                    a.at,
                    format!(
                        "watch resumed from rv={from}, older than rv={newest} it was already sent: \
                         the events in between are sent again"
                    ),
                );
            }
        }
    }
}

/// After a 410 (an HTTP 410, or a watch stream's in-stream `ERROR` 410) the client's next
/// request for that collection is a list, or a watch from `""`/`"0"` or with
/// `sendInitialEvents`; not a watch from a resourceVersion again. A client that never asks
/// again after a 410 during the scenario's `duration` has stopped watching.
pub(super) fn relist_after_expired(ev: &ServedEvidence<'_>, found: &mut Found<'_>) {
    let duration = ev.scenario.duration.0;
    for ((client, key), reqs) in ev.streams() {
        for (i, a) in reqs.iter().enumerate() {
            if !a.expired() {
                continue;
            }
            let at = a
                .sent
                .iter()
                .find(|e| e.code == Some(410))
                .map_or(a.at, |e| e.at);
            let next = reqs[i + 1..].iter().find(|n| n.at >= a.at);
            match next {
                None if at < duration => found.add(
                    &client,
                    &key,
                    at,
                    "never asked for it again after the 410: it stopped watching".into(),
                ),
                None => {}
                Some(n) => {
                    if let Some(rv) = resumes_from(n) {
                        found.add(
                            &client,
                            &key,
                            n.at,
                            format!(
                                "after the 410 it watched from rv={rv} again instead of relisting"
                            ),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Served;
    use crate::scenario::Checker;

    #[test]
    fn no_historical_replay_passes_a_client_that_resumes_from_the_newest_rv_it_was_sent() {
        let mut c = Served::new("");
        c.list("go", 0, 5);
        c.watch("go", 100, "5", &[6, 7]);
        c.watch("go", 1000, "7", &[8]);
        assert!(c.messages(Checker::NoHistoricalReplay).is_empty());
    }

    #[test]
    fn no_historical_replay_finds_a_watch_resumed_from_an_older_rv() {
        let mut c = Served::new("");
        c.list("py", 0, 5);
        c.watch("py", 100, "5", &[6, 7]);
        c.watch("py", 1000, "5", &[6, 7]);
        // Another client's history does not count against this one.
        c.watch("other", 2000, "3", &[]);
        assert_eq!(
            c.messages(Checker::NoHistoricalReplay),
            ["py: watch resumed from rv=5, older than rv=7 it was already sent: the events in between are sent again"]
        );
    }

    #[test]
    fn relist_after_expired_passes_a_relist_after_an_in_stream_410() {
        let mut c = Served::new("");
        c.list("go", 0, 5);
        c.watch("go", 100, "5", &[6, 0]);
        c.list("go", 500, 9);
        c.watch("go", 600, "9", &[]);
        assert!(c.messages(Checker::RelistAfterExpired).is_empty());
    }

    #[test]
    fn relist_after_expired_finds_the_same_stale_rv_again_and_a_client_that_gave_up() {
        let mut c = Served::new("");
        c.watch("stale", 100, "5", &[0]);
        c.watch("stale", 300, "5", &[]);
        c.watch("quitter", 100, "0", &[6, 0]);
        assert_eq!(
            c.messages(Checker::RelistAfterExpired),
            [
                "quitter: never asked for it again after the 410: it stopped watching",
                "stale: after the 410 it watched from rv=5 again instead of relisting",
            ]
        );
    }
}
