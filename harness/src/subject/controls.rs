//! The subject faults in force, shared between the fault interpreter (which turns them on
//! and off) and the subjects (which consult them on every reconcile or delivered event).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::scenario::ErrorClass;

#[derive(Debug, Default)]
struct ControlState {
    /// (fault index, only this key, added delay)
    slow: Vec<(usize, Option<String>, Duration)>,
    /// (only this key, class, failures left)
    errors: Vec<(Option<String>, ErrorClass, u32)>,
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

    /// Whether this reconcile of `key` must fail, and how (consumes one failure).
    pub fn take_error(&self, key: &str) -> Option<ErrorClass> {
        let mut st = self.lock();
        let slot = st
            .errors
            .iter_mut()
            .find(|(k, _, n)| *n > 0 && k.as_deref().is_none_or(|k| k == key))?;
        slot.2 -= 1;
        Some(slot.1)
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
    fn injected_errors_are_used_up_one_reconcile_at_a_time() {
        let c = Controls::default();
        c.fail(Some("default/a".into()), ErrorClass::Terminal, 2);
        assert_eq!(c.take_error("default/b"), None);
        assert_eq!(c.take_error("default/a"), Some(ErrorClass::Terminal));
        assert_eq!(c.take_error("default/a"), Some(ErrorClass::Terminal));
        assert_eq!(c.take_error("default/a"), None);
    }
}
