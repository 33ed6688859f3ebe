//! `watch_timeout`: every watch request the apiserver saw asked for a `timeoutSeconds` in
//! `[min_watch_timeout, 2 × min_watch_timeout)` — client-go's reflector spreads its watches
//! over that range so that a fleet of clients does not reconnect in step. Judged on the
//! server's access log, for the subjects that make this promise (ours; kube-runtime's
//! watcher asks for one fixed timeout).

use super::{Evidence, Found, Violation};

/// Whether subject `name` promises client-go's jittered watch timeouts.
pub(super) fn jitters_watch_timeouts(name: &str) -> bool {
    !name.starts_with("kube-runtime")
}

pub(super) fn watch_timeout(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found = Found::new(ev);
    let min = ev.scenario.subject.config.min_watch_timeout.0.as_secs();
    for w in ev.watch_requests {
        let t = w.timeout_seconds;
        if t < min || t >= 2 * min {
            let asked = match t {
                0 => "no timeoutSeconds".to_string(),
                t => format!("timeoutSeconds={t}"),
            };
            let msg = format!(
                "a watch on replica {} asked for {asked}, outside [{min}, {}) (min_watch_timeout={min}s)",
                w.replica,
                2 * min
            );
            found.add("apiserver", w.at, msg);
        }
    }
    found.out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{secs, Case};
    use super::super::WatchRequest;
    use crate::scenario::{Checker, SubjectKind};

    fn watches(timeouts: &[u64]) -> Vec<String> {
        let mut c = Case::with_config(SubjectKind::Informer, r#"{"min_watch_timeout": "15s"}"#, "");
        c.watch_requests = timeouts
            .iter()
            .enumerate()
            .map(|(i, &t)| WatchRequest {
                at: secs(i as u64),
                replica: 0,
                timeout_seconds: t,
            })
            .collect();
        c.messages(Checker::WatchTimeout)
    }

    #[test]
    fn watch_timeout_passes_the_half_open_range_and_names_a_watch_outside_it() {
        assert!(watches(&[15, 22, 29]).is_empty());
        assert_eq!(
            watches(&[15, 30, 7, 0]),
            [
                "a watch on replica 0 asked for timeoutSeconds=30, outside [15, 30) (min_watch_timeout=15s)",
                "a watch on replica 0 asked for timeoutSeconds=7, outside [15, 30) (min_watch_timeout=15s)",
                "a watch on replica 0 asked for no timeoutSeconds, outside [15, 30) (min_watch_timeout=15s)",
            ]
        );
    }

    #[test]
    fn kube_runtime_subjects_do_not_promise_jittered_timeouts() {
        assert!(super::jitters_watch_timeouts("informer"));
        assert!(!super::jitters_watch_timeouts("kube-runtime-watcher"));
    }
}
