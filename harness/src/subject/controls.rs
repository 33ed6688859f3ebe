//! The subject faults in force, shared between the fault interpreter (which turns them on
//! and off) and the subjects (which consult them on every reconcile or delivered event).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::ErrorClass;

/// A window of flaky reconciles: (fault index, only this key, failure rate, its draws).
type Flaky = (usize, Option<String>, f64, ChaCha8Rng);

#[derive(Debug, Default)]
struct ControlState {
    flaky: Vec<Flaky>,
    /// (fault index, only this key, added delay)
    slow: Vec<(usize, Option<String>, Duration)>,
    /// (only this key, class, failures left)
    errors: Vec<(Option<String>, ErrorClass, u32)>,
    /// The shutdown triggers handed out so far, and whether they fired.
    shutdown: Vec<tokio::sync::watch::Sender<bool>>,
    shutdown_fired: bool,
    /// (fault index, time per delivered event)
    slow_handler: Vec<(usize, Duration)>,
}

/// Controller faults in force (cheap to clone; all clones share them).
#[derive(Debug, Clone, Default)]
pub struct Controls(Arc<Mutex<ControlState>>);

impl Controls {
    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.0.lock().expect("controls lock")
    }

    /// Fault `fault` makes reconciles of `key` (or of every key) take `delay` longer.
    pub fn slow_down(&self, fault: usize, key: Option<String>, delay: Duration) {
        self.lock().slow.push((fault, key, delay));
    }

    /// Fault `fault` ends: its reconciles are no longer slowed.
    pub fn end_slow_down(&self, fault: usize) {
        self.lock().slow.retain(|(f, _, _)| *f != fault);
    }

    /// Fault `fault` makes the subject's handler take `delay` per event.
    pub fn slow_handler(&self, fault: usize, delay: Duration) {
        self.lock().slow_handler.push((fault, delay));
    }

    /// Fault `fault` ends: events are handled at full speed again.
    pub fn end_slow_handler(&self, fault: usize) {
        self.lock().slow_handler.retain(|(f, _)| *f != fault);
    }

    /// Time the handler takes per event now (the longest slow-down in force).
    pub fn handler_delay(&self) -> Duration {
        let st = self.lock();
        st.slow_handler
            .iter()
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default()
    }

    /// The next `times` reconciles of `key` (or of any key) fail with a `class` error.
    pub fn fail(&self, key: Option<String>, class: ErrorClass, times: u32) {
        self.lock().errors.push((key, class, times));
    }

    /// Extra time a reconcile of `key` takes now (the longest slow-down in force).
    pub fn reconcile_delay(&self, key: &str) -> Duration {
        self.lock()
            .slow
            .iter()
            .filter(|(_, k, _)| k.as_deref().is_none_or(|k| k == key))
            .map(|(_, _, d)| *d)
            .max()
            .unwrap_or_default()
    }

    /// Fault `fault` makes each reconcile of `key` (or of any key) fail with probability
    /// `rate`, drawn from `seed`, until it ends.
    pub fn flaky(&self, fault: usize, key: Option<String>, rate: f64, seed: u64) {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        self.lock().flaky.push((fault, key, rate, rng));
    }

    /// Fault `fault` ends: its reconciles no longer fail.
    pub fn end_flaky(&self, fault: usize) {
        self.lock().flaky.retain(|(f, ..)| *f != fault);
    }

    /// Whether this reconcile of `key` must fail, and how (consumes one failure; else the
    /// first flaky window for the key draws).
    pub fn take_error(&self, key: &str) -> Option<ErrorClass> {
        let mut st = self.lock();
        let slot = st
            .errors
            .iter_mut()
            .find(|(k, _, n)| *n > 0 && k.as_deref().is_none_or(|k| k == key));
        if let Some(slot) = slot {
            slot.2 -= 1;
            return Some(slot.1);
        }
        let (_, _, rate, rng) = st
            .flaky
            .iter_mut()
            .find(|(_, k, ..)| k.as_deref().is_none_or(|k| k == key))?;
        let rate = *rate;
        rng.random_bool(rate).then_some(ErrorClass::Retryable)
    }

    /// A new shutdown trigger for a user's controller (fired by [`Controls::fire_shutdown`],
    /// at once if that already happened).
    pub fn shutdown_trigger(&self) -> super::Shutdown {
        let (tx, shutdown) = super::Shutdown::new();
        let mut st = self.lock();
        if st.shutdown_fired {
            let _ = tx.send(true);
        }
        st.shutdown.push(tx);
        shutdown
    }

    /// Fires every shutdown trigger (the run is over).
    pub fn fire_shutdown(&self) {
        let mut st = self.lock();
        st.shutdown_fired = true;
        for tx in &st.shutdown {
            let _ = tx.send(true);
        }
    }

    /// Whether the shutdown triggers fired.
    pub fn shutdown_requested(&self) -> bool {
        self.lock().shutdown_fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_slow_down_for_a_key_wins_until_its_fault_ends() {
        let c = Controls::default();
        c.slow_down(0, None, Duration::from_secs(1));
        c.slow_down(1, Some("default/a".into()), Duration::from_secs(5));
        assert_eq!(c.reconcile_delay("default/a"), Duration::from_secs(5));
        assert_eq!(c.reconcile_delay("default/b"), Duration::from_secs(1));
        c.end_slow_down(1);
        assert_eq!(c.reconcile_delay("default/a"), Duration::from_secs(1));
    }

    #[test]
    fn the_longest_handler_slow_down_wins_until_its_fault_ends() {
        let c = Controls::default();
        assert_eq!(c.handler_delay(), Duration::ZERO);
        c.slow_handler(0, Duration::from_millis(100));
        c.slow_handler(1, Duration::from_secs(2));
        assert_eq!(c.handler_delay(), Duration::from_secs(2));
        c.end_slow_handler(1);
        assert_eq!(c.handler_delay(), Duration::from_millis(100));
    }

    #[test]
    fn flaky_reconciles_fail_at_their_rate_from_their_seed_until_they_end() {
        let draws = |seed| {
            let c = Controls::default();
            c.flaky(3, Some("default/a".into()), 0.5, seed);
            assert_eq!(c.take_error("default/b"), None);
            let out: Vec<_> = (0..64).map(|_| c.take_error("default/a")).collect();
            c.end_flaky(3);
            assert_eq!(c.take_error("default/a"), None);
            out
        };
        let once = draws(7);
        assert_eq!(once, draws(7), "the same seed, the same failures");
        let failed = once.iter().filter(|e| e.is_some()).count();
        assert!(
            (16..=48).contains(&failed),
            "{failed} of 64 failed at rate 0.5"
        );
    }

    #[test]
    fn injected_errors_are_used_up_one_reconcile_at_a_time() {
        let c = Controls::default();
        c.fail(Some("default/a".into()), ErrorClass::Terminal, 2);
        assert_eq!(c.take_error("default/b"), None);
        assert_eq!(c.take_error("default/a"), Some(ErrorClass::Terminal));
        assert_eq!(c.take_error("default/a"), Some(ErrorClass::Terminal));
        assert_eq!(c.take_error("default/a"), None);
    }
}
