//! The controller faults in force, shared between the fault interpreter (which turns them on
//! and off) and the controller subjects (which consult them on every reconcile).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::scenario::ErrorClass;

#[derive(Debug, Default)]
struct ControlState {
    /// (fault index, only this key, added delay)
    slow: Vec<(usize, Option<String>, Duration)>,
    /// (only this key, class, failures left)
    errors: Vec<(Option<String>, ErrorClass, u32)>,
    /// The shutdown triggers handed out so far, and whether they fired.
    shutdown: Vec<tokio::sync::watch::Sender<bool>>,
    shutdown_fired: bool,
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
    fn injected_errors_are_used_up_one_reconcile_at_a_time() {
        let c = Controls::default();
        c.fail(Some("default/a".into()), ErrorClass::Terminal, 2);
        assert_eq!(c.take_error("default/b"), None);
        assert_eq!(c.take_error("default/a"), Some(ErrorClass::Terminal));
        assert_eq!(c.take_error("default/a"), Some(ErrorClass::Terminal));
        assert_eq!(c.take_error("default/a"), None);
    }
}
