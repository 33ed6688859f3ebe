//! `watch_rate` and `list_rate`: each client's watch and list requests per second on each
//! collection, from `from` to the end of `duration`, within bounds (watch storms, hot
//! relists). Without bounds in the scenario: at most 2 per second over the whole run.

use super::{Found, ServedEvidence};
use crate::scenario::{Dur, RateBounds};
use crate::serve::Access;

/// The bounds when the scenario gives none.
fn default_bounds() -> RateBounds {
    RateBounds {
        from: Dur::default(),
        min: 0.0,
        max: 2.0,
    }
}

pub(super) fn watch_rate(ev: &ServedEvidence<'_>, found: &mut Found<'_>) {
    let bounds = ev.scenario.expect.watch_rate.clone();
    rate(ev, found, "watch", bounds, Access::is_watch)
}

pub(super) fn list_rate(ev: &ServedEvidence<'_>, found: &mut Found<'_>) {
    let bounds = ev.scenario.expect.list_rate.clone();
    rate(ev, found, "list", bounds, Access::is_list)
}

fn rate(
    ev: &ServedEvidence<'_>,
    found: &mut Found<'_>,
    what: &str,
    bounds: Option<RateBounds>,
    counts: fn(&Access) -> bool,
) {
    let b = bounds.unwrap_or_else(default_bounds);
    let (from, to) = (b.from.0, ev.scenario.duration.0);
    let window = (to - from).as_secs_f64();
    for ((client, key), reqs) in ev.streams() {
        let n = reqs
            .iter()
            .filter(|a| counts(a) && a.at >= from && a.at < to)
            .count();
        if n == 0 && !reqs.iter().any(|a| counts(a)) {
            continue;
        }
        let r = n as f64 / window;
        if r < b.min || r > b.max {
            found.add(
                &client,
                &key,
                to,
                format!(
                    "{n} {what} request(s) in {}: {r:.2}/s, expected {} to {}",
                    Dur(to - from),
                    b.min,
                    b.max
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Served;
    use crate::scenario::Checker;

    #[test]
    fn watch_rate_passes_a_few_watches_and_finds_a_watch_storm() {
        let mut c = Served::new("");
        c.watch("calm", 0, "0", &[]);
        c.watch("calm", 5000, "7", &[]);
        for i in 0..40 {
            c.watch("storm", 100 * i, "7", &[]);
        }
        assert_eq!(
            c.messages(Checker::WatchRate),
            ["storm: 40 watch request(s) in 10s: 4.00/s, expected 0 to 2"]
        );
    }

    #[test]
    fn list_rate_uses_the_scenario_bounds_from_their_start() {
        let bounds = r#", "expect": {"list_rate": {"from": "5s", "min": 0.0, "max": 0.5}}"#;
        let mut c = Served::new(bounds);
        for i in 0..10 {
            c.list("hot", 400 * i, 5); // all before 4 s: not counted
        }
        c.list("hot", 6000, 5);
        assert!(c.messages(Checker::ListRate).is_empty());
        for i in 0..4 {
            c.list("hot", 7000 + 100 * i, 5);
        }
        assert_eq!(
            c.messages(Checker::ListRate),
            ["hot: 5 list request(s) in 5s: 1.00/s, expected 0 to 0.5"]
        );
    }
}
