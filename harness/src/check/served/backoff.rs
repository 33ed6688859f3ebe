//! `backoff`: a failed request (429 or 5xx) is retried — the same client's next request on
//! the same collection or object — no sooner than the `Retry-After` the server sent, and a
//! run of failures is not retried in a tight loop (more than [`TIGHT_RETRIES`] retries in a
//! row each less than [`MIN_RETRY_GAP`] after the failure before it).

use std::time::Duration;

use super::{Found, ServedEvidence};

/// A retry sooner than this after a failure is "tight".
pub const MIN_RETRY_GAP: Duration = Duration::from_millis(100);

/// Tight retries in a row allowed before it is a tight loop.
pub const TIGHT_RETRIES: usize = 3;

/// How much earlier than `Retry-After` a retry may come (clock and scheduling slack).
const RETRY_AFTER_SLACK: Duration = Duration::from_millis(100);

pub(super) fn backoff(ev: &ServedEvidence<'_>, found: &mut Found<'_>) {
    for ((client, key), reqs) in ev.streams() {
        let mut tight = 0;
        for pair in reqs.windows(2) {
            let (f, next) = (pair[0], pair[1]);
            if !f.failed() {
                tight = 0;
                continue;
            }
            let gap = next.at.saturating_sub(f.at);
            if let Some(r) = f.retry_after {
                let wait = Duration::from_secs(r);
                if gap + RETRY_AFTER_SLACK < wait {
                    found.add(
                        &client,
                        &key,
                        next.at,
                        format!(
                            "retried {:.3}s after a {} that said Retry-After: {r}",
                            gap.as_secs_f64(),
                            f.status
                        ),
                    );
                }
            }
            tight = if gap < MIN_RETRY_GAP { tight + 1 } else { 0 };
            if tight == TIGHT_RETRIES + 1 {
                found.add(
                    &client,
                    &key,
                    next.at,
                    format!(
                        "{} retries in a row less than {}ms after a failure: a tight loop",
                        tight,
                        MIN_RETRY_GAP.as_millis()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Served;
    use crate::scenario::Checker;

    #[test]
    fn backoff_passes_retries_that_wait_for_retry_after_and_grow() {
        let mut c = Served::new("");
        c.req("go", 0, "", 429).retry_after = Some(1);
        c.req("go", 1000, "", 503);
        c.req("go", 1200, "", 503);
        c.req("go", 1600, "", 503);
        c.req("go", 2400, "", 200);
        assert!(c.messages(Checker::Backoff).is_empty());
    }

    #[test]
    fn backoff_finds_a_retry_before_retry_after_and_a_tight_loop() {
        let mut c = Served::new("");
        c.req("eager", 0, "", 429).retry_after = Some(2);
        c.req("eager", 300, "", 200);
        for i in 0..6 {
            c.req("loop", 10 * i, "", 500);
        }
        assert_eq!(
            c.messages(Checker::Backoff),
            [
                "eager: retried 0.300s after a 429 that said Retry-After: 2",
                "loop: 4 retries in a row less than 100ms after a failure: a tight loop",
            ]
        );
    }
}
