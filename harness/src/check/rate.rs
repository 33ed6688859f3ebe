//! `watch_rate`: the watch requests per second the apiserver saw over the scenario's window
//! lie within its bounds (the minWatchTimeout load figure).

use super::{Evidence, Found, Violation};

pub(super) fn watch_rate(ev: &Evidence<'_>) -> Vec<Violation> {
    let bounds = ev.scenario.expect.watch_rate.as_ref().expect("asked for");
    let mut found = Found::new(ev);
    match ev.watch_rate {
        Some(r) if r >= bounds.min && r <= bounds.max => {}
        Some(r) => found.add(
            "apiserver",
            ev.scenario.duration.0,
            format!(
                "{r:.3} watch requests/s, expected {} to {}",
                bounds.min, bounds.max
            ),
        ),
        None => found.add(
            "apiserver",
            ev.scenario.duration.0,
            "no watch rate measured",
        ),
    }
    found.out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Case;
    use crate::scenario::{Checker, SubjectKind};

    fn bounded(rate: Option<f64>) -> Vec<String> {
        let bounds = r#", "expect": {"watch_rate": {"from": "10s", "min": 1.0, "max": 2.0}}"#;
        let mut c = Case::new(SubjectKind::Informer, bounds);
        c.watch_rate = rate;
        c.messages(Checker::WatchRate)
    }

    #[test]
    fn watch_rate_passes_within_its_bounds_and_names_the_rate_outside() {
        assert!(bounded(Some(1.5)).is_empty());
        assert_eq!(
            bounded(Some(2.5)),
            ["2.500 watch requests/s, expected 1 to 2"]
        );
        assert_eq!(bounded(None), ["no watch rate measured"]);
    }
}
